"""The whole control path in-process: LPC device → allocator → coordinator → simulated charger, on a fake clock."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bridge.clock import FakeClock
from bridge.config import load_config_text
from bridge.core.coordinator import CoordinatorSettings
from bridge.runtime.app import Bridge
from bridge.runtime.journal import load_journal
from bridge.usecases.lpc import LpcState

pytestmark = pytest.mark.anyio

CONFIG = """
chargers:
  - id: garage
    adapter: {type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}
  - id: bay-1
    adapter: {type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}
  - id: bay-2
    adapter: {type: sim, phases: 1, max_current_a: 32, ramp_a_per_s: 100}
groups:
  - id: office
    chargers: [bay-1, bay-2]
"""


async def start(tmp_path: Path, clock: FakeClock, tg: anyio.abc.TaskGroup) -> Bridge:
    bridge = Bridge(
        load_config_text(CONFIG, "test.yaml"),
        clock,
        tmp_path,
        coordinator_settings=CoordinatorSettings(poll_interval_s=1),
    )
    await tg.start(bridge.run)
    await clock.run_for(3)
    return bridge


def physics(bridge: Bridge, cid: str):  # type: ignore[no-untyped-def]
    return bridge.chargers[cid].charger.physics  # type: ignore[attr-defined]


async def test_lpc_limit_reaches_the_charger_and_failsafe_follows_heartbeat_loss(tmp_path: Path) -> None:
    clock = FakeClock()
    async with anyio.create_task_group() as tg:
        bridge = await start(tmp_path, clock, tg)
        garage = bridge.devices["garage"]
        assert garage.lpc.state is LpcState.INIT
        assert physics(bridge, "garage").setpoint_a == 6  # failsafe 4200 W → 6 A (LPC-11)
        garage.heartbeat()
        assert garage.write_limit(11_000, True, None, peer="ems").accepted
        await clock.run_for(2)
        assert physics(bridge, "garage").setpoint_a == 15
        assert physics(bridge, "garage").power_w == pytest.approx(15 * 3 * 230)
        for _ in range(4):  # heartbeats keep it limited
            await clock.run_for(30)
            garage.heartbeat()
        assert garage.lpc.state is LpcState.LIMITED
        await clock.run_for(125)  # EMS silent
        assert garage.lpc.state is LpcState.FAILSAFE
        assert physics(bridge, "garage").setpoint_a == 6
        denied = garage.write_limit(-5, True, None)
        assert not denied.accepted
        tg.cancel_scope.cancel()
    events = [e["event"] for e in load_journal(tmp_path / "journal.jsonl")]
    for kind in (
        "limit_received",
        "limit_accepted",
        "limit_applied",
        "failsafe_entered",
        "limit_denied",
        "bridge_stopped",
    ):
        assert kind in events, kind
    persisted = bridge.store.load("lpc/garage.json")
    assert persisted["limit"]["value_w"] == 11_000


async def test_group_limit_is_shared_and_never_exceeded(tmp_path: Path) -> None:
    clock = FakeClock()
    async with anyio.create_task_group() as tg:
        bridge = await start(tmp_path, clock, tg)
        office = bridge.devices["office"]
        office.heartbeat()
        office.write_limit(9000, True, None)
        await clock.run_for(3)
        # In Init the 4200 W failsafe had room for one minimum only, so bay-2 was paused and
        # resumes only after the CMB-03 hysteresis of 30 s.
        assert physics(bridge, "bay-2").setpoint_a == 0
        await clock.run_for(30)
        total = physics(bridge, "bay-1").power_w + physics(bridge, "bay-2").power_w
        assert 0 < total <= 9000
        assert physics(bridge, "bay-1").setpoint_a == 6  # 4500 W / 690 V
        assert physics(bridge, "bay-2").setpoint_a == 19  # 4500 W / 230 V
        tg.cancel_scope.cancel()


async def test_restart_restores_failsafe_values_and_starts_in_init(tmp_path: Path) -> None:
    clock = FakeClock()
    async with anyio.create_task_group() as tg:
        bridge = await start(tmp_path, clock, tg)
        assert bridge.devices["garage"].write_failsafe(limit_w=6000, duration_s=3 * 3600).accepted
        tg.cancel_scope.cancel()
    # shutdown left the charger at its safe value: 6000 W → 8 A
    assert physics(bridge, "garage").setpoint_a == 8
    clock2 = FakeClock()
    async with anyio.create_task_group() as tg:
        again = await start(tmp_path, clock2, tg)
        assert again.devices["garage"].lpc.failsafe.consumption_limit_w == 6000
        assert again.devices["garage"].lpc.state is LpcState.INIT
        assert physics(again, "garage").setpoint_a == 8
        await clock2.run_for(121)
        assert again.devices["garage"].lpc.state is LpcState.UNLIMITED_AUTONOMOUS
        assert physics(again, "garage").setpoint_a == 16
        tg.cancel_scope.cancel()


async def test_local_limit_only_reduces(tmp_path: Path) -> None:
    clock = FakeClock()
    async with anyio.create_task_group() as tg:
        bridge = await start(tmp_path, clock, tg)
        garage = bridge.devices["garage"]
        garage.heartbeat()
        garage.write_limit(7000, True, None)
        bridge.set_local_limit("garage", 20_000)
        await clock.run_for(2)
        assert physics(bridge, "garage").setpoint_a == 10
        bridge.set_local_limit("garage", 5000)
        await clock.run_for(2)
        assert physics(bridge, "garage").setpoint_a == 7
        tg.cancel_scope.cancel()


def test_group_device_sums_member_measurements() -> None:
    from datetime import UTC, datetime

    from bridge.model import AcMeasurement, ChargerSnapshot, ChargingState, DeviceState, OperatingState
    from bridge.runtime.eebus_wiring import sum_snapshots

    t = datetime(2026, 1, 1, tzinfo=UTC)
    three = ChargerSnapshot(
        charger_id="a",
        timestamp=t,
        charging_state=ChargingState.CHARGING,
        measurement=AcMeasurement(current_per_phase_a=(10, 10, 10), voltage_per_phase_v=(230, 230, 230), energy_wh=100),
    )
    one = ChargerSnapshot(
        charger_id="b",
        timestamp=t,
        measurement=AcMeasurement(power_w=2300, current_per_phase_a=(10, 0, 0), energy_wh=50),
        device_state=DeviceState(operating_state=OperatingState.FAILURE, last_error_code="E1"),
    )
    total = sum_snapshots("g", [three, one])
    assert total is not None
    assert total.measurement.power_w == 6900 + 2300
    assert total.measurement.current_per_phase_a == (20, 10, 10)
    assert total.measurement.energy_wh == 150
    assert total.device_state.operating_state is OperatingState.FAILURE and total.device_state.last_error_code == "E1"
    assert sum_snapshots("g", [None, None]) is None
    assert sum_snapshots("g", [three, None]).available is False  # type: ignore[union-attr]


async def test_fallback_current_uses_the_site_voltage(tmp_path: Path) -> None:
    config = (
        "site: {nominal_voltage_v: 240}\nchargers:\n  - id: c\n    adapter: {type: sim, phases: 3, ramp_a_per_s: 100}\n"
    )
    clock = FakeClock()
    bridge = Bridge(
        load_config_text(config, "t.yaml"), clock, tmp_path, coordinator_settings=CoordinatorSettings(poll_interval_s=1)
    )
    async with anyio.create_task_group() as tg:
        await tg.start(bridge.run)
        await clock.run_for(2)
        charger = bridge.chargers["c"].charger
        # 4200 W at 3 × 240 V is 5.8 A: below 6 A, so the watchdog fallback pauses (at 230 V it would be 6 A = 4320 W)
        assert charger.watchdog.fallback_current_a == 0  # type: ignore[attr-defined]
        tg.cancel_scope.cancel()
