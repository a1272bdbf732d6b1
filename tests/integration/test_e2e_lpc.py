"""End to end over real TLS on loopback: EMS tool → SHIP → SPINE → LPC → allocator → simulated charger.

The bridge and the EMS share a FakeClock for the use-case timers (120 s
heartbeat supervision without a real two-minute wait); bytes travel over real
sockets, so each fake-time step also yields a few real milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bridge.clock import FakeClock
from bridge.config import load_config_text
from bridge.core.coordinator import CoordinatorSettings
from bridge.eebus.ems.client import ems_connection
from bridge.eebus.ship import Identity
from bridge.eebus.spine.link import RequestFailed
from bridge.runtime.app import Bridge
from bridge.runtime.eebus_wiring import run_eebus
from bridge.usecases.lpc import LpcState
from tests.eebus_stack import advance, free_port, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path, int, str]:
    bridge_state, ems_state = tmp_path / "bridge", tmp_path / "ems"
    ems_ski = Identity.load_or_create(ems_state, "ems").ski
    device_ski = Identity.load_or_create(bridge_state, "garage").ski
    return bridge_state, ems_state, free_port(), f"{ems_ski}|{device_ski}"


def make_bridge(state: Path, port: int, ems_ski: str, clock: FakeClock) -> Bridge:
    config = f"""
chargers:
  - id: garage
    adapter: {{type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}}
    eebus: {{port: {port}}}
eebus:
  bind: 127.0.0.1
  mdns: {{enabled: false}}
  trusted_skis: [{ems_ski}]
"""
    return Bridge(
        load_config_text(config, "e2e.yaml"), clock, state, coordinator_settings=CoordinatorSettings(poll_interval_s=1)
    )


async def test_ems_limit_reaches_charger_and_failsafe_follows_heartbeat_loss(site: tuple[Path, Path, int, str]) -> None:
    bridge_state, ems_state, port, skis = site
    ems_ski, device_ski = skis.split("|")
    clock = FakeClock()
    bridge = make_bridge(bridge_state, port, ems_ski, clock)
    async with anyio.create_task_group() as tg:
        await tg.start(lambda task_status: bridge.run(extra_services=[run_eebus], task_status=task_status))
        await anyio.sleep(0.3)  # listener up
        physics = bridge.chargers["garage"].charger.physics  # type: ignore[attr-defined]
        device = bridge.devices["garage"]
        async with ems_connection(clock, ems_state, "127.0.0.1", port, device_ski, heartbeat_s=30) as ems:
            # use cases announced (GEN-01) and LPC data readable
            infos = ems.use_cases["useCaseInformation"]
            names = {u["useCaseName"] for i in infos for u in i["useCaseSupport"]}
            assert {"limitationOfPowerConsumption", "monitoringOfPowerConsumption"} <= names
            await ems.limit(4200)
            await until(lambda: physics.setpoint_a == 6, clock)
            assert device.lpc.state is LpcState.LIMITED

            # the power notify follows: 6 A × 3 × 230 V
            def notified_power() -> float | None:
                data = ems.latest.get("measurementListData", {}).get("measurementData", [])
                return next(
                    (v["value"]["number"] * 10 ** v["value"].get("scale", 0) for v in data if v["measurementId"] == 0),
                    None,
                )

            await until(lambda: notified_power() == pytest.approx(4140), clock)
            # a negative limit is denied with errorNumber 7 and the old one stays
            with pytest.raises(RequestFailed) as denied:
                await ems.limit(-1)
            assert denied.value.error == 7 and denied.value.description
            await ems.failsafe(watts=5000, duration_s=7200)
            await ems.limit(11_000)
            await until(lambda: physics.setpoint_a == 15, clock)
            # heartbeats keep it limited for minutes of fake time
            await advance(clock, 300)
            assert device.lpc.state is LpcState.LIMITED
            ems.stop_heartbeat()
            await anyio.sleep(0.2)  # a heartbeat notify already on its way still arrives
            last = device.lpc.last_heartbeat
            assert last is not None and clock.monotonic() - last <= 30
            # no failsafe up to 120 s after the last heartbeat the device received (LPC-30) ...
            await advance(clock, last + 119 - clock.monotonic())
            assert device.lpc.state is LpcState.LIMITED
            await until(lambda: device.lpc.state is LpcState.FAILSAFE, clock)
            await until(lambda: physics.setpoint_a == 7, clock)  # failsafe 5000 W → 7 A
            state = await ems.lpc_state()
            assert state["failsafe_limit_w"] == 5000 and state["failsafe_duration_s"] == 7200
        tg.cancel_scope.cancel()
