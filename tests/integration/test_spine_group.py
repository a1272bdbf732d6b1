"""Group mode over real TLS: one EEBus device for two chargers; the EMS's limit is shared, MPC is the sum."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bridge.clock import FakeClock
from bridge.config import load_config_text
from bridge.core.coordinator import CoordinatorSettings
from bridge.eebus.ems.client import ems_connection
from bridge.eebus.ship import Identity
from bridge.eebus.spine.values import unscaled
from bridge.runtime.app import Bridge
from bridge.runtime.eebus_wiring import run_eebus
from bridge.usecases.lpc import LpcState
from tests.eebus_stack import advance, free_port, until

pytestmark = pytest.mark.anyio


async def test_group_device_shares_the_limit_and_sums_measurements(tmp_path: Path) -> None:
    bridge_state, ems_state = tmp_path / "bridge", tmp_path / "ems"
    ems_ski = Identity.load_or_create(ems_state, "ems").ski
    group_ski = Identity.load_or_create(bridge_state, "office").ski
    port = free_port()
    config = f"""
chargers:
  - id: bay-1
    adapter: {{type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}}
  - id: bay-2
    adapter: {{type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}}
groups:
  - id: office
    chargers: [bay-1, bay-2]
    eebus: {{port: {port}}}
eebus:
  bind: 127.0.0.1
  mdns: {{enabled: false}}
  trusted_skis: [{ems_ski}]
"""
    clock = FakeClock()
    bridge = Bridge(
        load_config_text(config, "group.yaml"), clock, bridge_state, coordinator_settings=CoordinatorSettings(1)
    )
    async with anyio.create_task_group() as tg:
        await tg.start(lambda task_status: bridge.run(extra_services=[run_eebus], task_status=task_status))
        await anyio.sleep(0.3)
        members = [bridge.chargers[c].charger.physics for c in ("bay-1", "bay-2")]  # type: ignore[attr-defined]
        async with ems_connection(clock, ems_state, "127.0.0.1", port, group_ski, heartbeat_s=30) as ems:
            # an aggregating controllable system announces its contractual maximum (LPC-10)
            data = await ems.read("ElectricalConnection", "electricalConnectionCharacteristicListData")
            kinds = {
                i["characteristicType"]: unscaled(i["value"]) for i in data["electricalConnectionCharacteristicData"]
            }
            assert kinds["contractualConsumptionNominalMax"] == kinds["powerConsumptionNominalMax"] == 2 * 16 * 3 * 230
            await ems.limit(8280)  # 12 A on three phases in all
            assert bridge.devices["office"].lpc.state is LpcState.LIMITED
            await advance(clock, 40)  # past the allocator's hysteresis for a paused member
            await until(lambda: all(p.setpoint_a == 6 for p in members), clock)
            assert sum(p.power_w for p in members) <= 8280
            await advance(clock, 2)
            values = await ems.measurements()
            assert values["acPowerTotal"] == pytest.approx(sum(p.power_w for p in members), abs=1)
            assert values["acCurrent/a"] == pytest.approx(12, abs=0.1)
        tg.cancel_scope.cancel()
