"""The whole control path to a simulated OCPP charge point: LPC write → allocator → coordinator → charging profile."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from adapters.sim.ocpp_cp import SimCore, SimStation
from bridge.clock import SystemClock
from bridge.config import load_config_text
from bridge.core.coordinator import CoordinatorSettings
from bridge.runtime.app import Bridge
from tests.integration.test_ocpp_helpers import wait_for

pytestmark = pytest.mark.anyio

CONFIG = """
chargers:
  - id: box
    adapter:
      type: ocpp
      charge_point_id: RT-1
      max_current_a: 16
      server: {host: 127.0.0.1, port: 0}
"""


async def test_lpc_limit_reaches_an_ocpp_charge_point(tmp_path: Path) -> None:
    clock = SystemClock()
    station = SimStation("RT-1", "1.6", SimCore(clock))
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            bridge = Bridge(
                load_config_text(CONFIG, "test.yaml"),
                clock,
                tmp_path,
                coordinator_settings=CoordinatorSettings(poll_interval_s=0.2),
            )
            await tg.start(bridge.run)
            charger = bridge.chargers["box"].charger
            server = await charger._hub.wait_started()  # type: ignore[attr-defined]
            tg.start_soon(station.run, f"ws://127.0.0.1:{server.port}")
            await station.booted.wait()
            # Init: the failsafe cap (4200 W → 6 A) and the fallback profile reach the charge point
            await wait_for(lambda: station.core.effective_limit_a() == pytest.approx(6.0), limit_s=10)
            await wait_for(lambda: {1001, 2001} <= set(station.core.store.profiles), limit_s=10)
            assert station.core.store.profiles[1001].periods[0][1] == 6.0  # the fallback layer holds the safe current
            device = bridge.devices["box"]
            device.heartbeat()
            assert device.write_limit(6900, True, None, peer="ems").accepted
            await wait_for(lambda: station.core.effective_limit_a() == pytest.approx(10.0), limit_s=10)
            snapshot = bridge.chargers["box"].coordinator.snapshot
            assert snapshot is not None and snapshot.manufacturer.vendor == "evbridge-sim"
            tg.cancel_scope.cancel()
