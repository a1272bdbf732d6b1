"""`evbridge.simulators: ocpp` — simulated OCPP charge points that dial the bridge's own CSMS.

    simulators:
      - {type: ocpp, port: 19000, count: 1, prefix: SIM, version: "1.6"}

The charge points are `<prefix>-1 … <prefix>-<count>`; configure chargers
with those `charge_point_id`s.  The bridge starts simulators after its
adapters, so the CSMS is listening; we still wait (bounded) for the port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from adapters.sim.ocpp_cp import SimStation, start_charge_points
from bridge.clock import Clock


@asynccontextmanager
async def make_simulator(options: Mapping[str, Any], clock: Clock) -> AsyncIterator[list[SimStation]]:
    host = str(options.get("host", "127.0.0.1"))
    port = int(options.get("port", 9000))
    with anyio.fail_after(float(options.get("wait_s", 15))):
        while True:
            try:
                stream = await anyio.connect_tcp(host, port)
                await stream.aclose()
                break
            except OSError:
                await anyio.sleep(0.2)  # the CSMS comes up with its first charger
    async with start_charge_points(
        f"ws://{host}:{port}",
        int(options.get("count", 1)),
        clock,
        version=str(options.get("version", "1.6")),
        prefix=str(options.get("prefix", "SIM")),
        meter_interval_s=float(options.get("meter_interval_s", 10)),
    ) as stations:
        yield stations
