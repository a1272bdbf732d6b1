"""LPC ids about turning a W limit into what the charger gets (use-cases.md §15.2)."""

from __future__ import annotations

import pytest

from adapters.sim.adapter import SimCharger, SimOptions
from adapters.sim.physics import EvProfile, ScriptStep, WallboxPhysics
from bridge.clock import FakeClock
from bridge.core.allocator import Allocator
from bridge.core.conversion import fallback_current_a
from bridge.model import Characteristics, LimitSource
from tests.allocator_helpers import demand, lpc

pytestmark = pytest.mark.anyio


def command_for(watts: float, **cap_kw: object):  # type: ignore[no-untyped-def]
    return Allocator().allocate([demand("c1", lpc(watts), **cap_kw)]).commands["c1"]


@pytest.mark.req("LPC-23")
def test_LPC_23_limit_below_minimum_power_pauses_never_6A() -> None:
    cmd = command_for(1000, phases=3)
    assert cmd.pause and cmd.current_a is None and cmd.max_current_a == 0
    assert cmd.binding is LimitSource.LPC
    # 4139 W is one watt short of 3 × 6 A × 230 V
    assert command_for(4139, phases=3).pause
    assert not command_for(4140, phases=3).pause


@pytest.mark.req("LPC-24")
def test_LPC_24_zero_watts_pauses() -> None:
    assert command_for(0).pause
    assert command_for(0, phases=1).pause


@pytest.mark.req("LPC-25")
@pytest.mark.parametrize(
    ("watts", "phases", "max_a", "expected"),
    [(4200, 3, 16, 6), (11_000, 3, 16, 15), (7_000, 1, 32, 30), (7_000, 1, 16, 16), (22_080, 3, 32, 32)],
)
def test_LPC_25_current_is_floor_of_power_over_phases_times_230(
    watts: float, phases: int, max_a: float, expected: float
) -> None:
    cmd = command_for(watts, phases=phases, max_a=max_a)
    assert cmd.current_a == (expected, expected, expected)


@pytest.mark.req("LPC-25")
def test_LPC_25_charger_resolution_rounds_down() -> None:
    cmd = command_for(4200, phases=3, resolution=0.1)
    assert cmd.current_a == (6.0, 6.0, 6.0)  # 6.0869… → 6.0, never 6.1
    cmd = command_for(5000, phases=3, resolution=0.1)
    assert cmd.current_a == (7.2, 7.2, 7.2)  # 7.246… → 7.2
    cmd = command_for(5000, phases=3, resolution=0.001)
    assert cmd.current_a == (7.246, 7.246, 7.246)


@pytest.mark.req("LPC-26")
def test_LPC_26_measured_power_stays_below_limit_after_reaction_time() -> None:
    allocator = Allocator()
    for limit_w in (4200, 5000, 7400, 9000, 11_000):
        box = WallboxPhysics(script=(ScriptStep(0, EvProfile()),), max_current_a=16, ramp_a_per_s=2)
        box.set_current(16)
        box.advance(30)  # charging at full power first
        cmd = allocator.allocate([demand("c1", lpc(limit_w))]).commands["c1"]
        box.set_current(cmd.max_current_a)
        box.enabled = not cmd.pause
        box.advance(10)  # IEC 61851 gives the EV 5 s; the sim ramps down at once
        assert box.power_w <= limit_w + max(0.03 * limit_w, 100)
        assert box.power_w <= limit_w  # in fact the conversion keeps it at or below the limit


@pytest.mark.req("LPC-42")
async def test_LPC_42_charger_fallback_current_is_failsafe_limit_in_amps() -> None:
    clock = FakeClock()
    charger = SimCharger("c1", SimOptions(watchdog_timeout_s=20, max_current_a=16), clock)
    ch: Characteristics = charger.capabilities.characteristics
    assert fallback_current_a(4200, ch) == 6
    assert fallback_current_a(3000, ch) == 0  # below 6 A: the fallback pauses
    assert fallback_current_a(50_000, ch) == 16  # never above the rating
    await charger.set_fallback_current(fallback_current_a(4200, ch))
    await charger.apply(Allocator().allocate([demand("c1", lpc(11_000))]).commands["c1"])
    clock.advance(10)
    snap = await charger.read()
    assert snap.measurement.power_w == pytest.approx(15 * 230 * 3)
    clock.advance(25)  # bridge silent: the charger's own watchdog trips
    snap = await charger.read()
    assert snap.measurement.power_w is not None and snap.measurement.power_w <= 4200
    assert snap.applied.current_a == 6
