"""The simulated wallbox behaves like a real one: ramp, energy, full battery, minimum current."""

from __future__ import annotations

import pytest

from adapters.sim.physics import ChargerWatchdog, EvProfile, ScriptStep, WallboxPhysics
from bridge.model import ChargingState


def test_power_follows_current_with_ramp() -> None:
    box = WallboxPhysics(script=(ScriptStep(0, EvProfile()),), ramp_a_per_s=4.0)
    box.set_current(16)
    box.advance(1)
    assert box.actual_current_a == pytest.approx(4.0)
    box.advance(3)
    assert box.actual_current_a == pytest.approx(16.0)
    assert box.power_w == pytest.approx(16 * 230 * 3)
    assert box.charging_state is ChargingState.CHARGING


def test_energy_integrates_and_battery_fills_then_stops() -> None:
    ev = EvProfile(capacity_wh=1000.0, soc_pct=90.0)
    box = WallboxPhysics(script=(ScriptStep(0, ev),), ramp_a_per_s=100.0)
    box.set_current(16)
    box.advance(3600)
    assert box.soc_pct == pytest.approx(100.0)
    assert box.actual_current_a == 0.0
    assert box.charging_state is ChargingState.SUSPENDED_EV
    # 10 % of 1 kWh went in (within one simulation step of overshoot)
    assert 100.0 <= box.session_energy_wh <= 100.0 + 16 * 230 * 3 / 3600


def test_below_minimum_current_the_car_draws_nothing() -> None:
    box = WallboxPhysics(script=(ScriptStep(0, EvProfile()),))
    box.set_current(5.9)
    box.advance(10)
    assert box.power_w == 0.0
    assert box.charging_state is ChargingState.SUSPENDED_EVSE


def test_plug_script_and_session_energy_reset() -> None:
    box = WallboxPhysics(
        script=(ScriptStep(0, EvProfile()), ScriptStep(100, None), ScriptStep(200, EvProfile())),
        ramp_a_per_s=100,
    )
    box.set_current(10)
    box.advance(99)
    assert box.session_energy_wh > 0
    box.advance(2)
    assert box.ev is None and box.power_w == 0
    box.advance(100)
    assert box.ev is not None
    assert box.session_energy_wh < 10 * 230 * 3 * 2 / 3600 + 1e-9


def test_one_phase_car_on_three_phase_box() -> None:
    box = WallboxPhysics(script=(ScriptStep(0, EvProfile(phases=1)),), ramp_a_per_s=100)
    box.set_current(16)
    box.advance(2)
    assert box.active_phases == 1
    assert box.currents_a == (16.0, 0.0, 0.0)


def test_watchdog_trips_only_after_timeout() -> None:
    dog = ChargerWatchdog(timeout_s=10, fallback_current_a=6)
    dog.refresh(0)
    assert not dog.check(10)
    assert dog.check(10.1)
    dog.refresh(11)
    assert not dog.check(12)
