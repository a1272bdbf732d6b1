"""Shared set-up of the OCPP integration tests: the adapter factory on 127.0.0.1 and simulated charge points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from adapters.ocpp.charger import OcppCharger
from adapters.ocpp.factory import OcppFactory
from adapters.sim.ocpp_cp import Quirks, SimStation, start_charge_points
from bridge.clock import Clock, SystemClock
from bridge.model import Command
from bridge.ports import AdapterDeps


def command(charger_id: str, amps: float | None, *, pause: bool = False) -> Command:
    if pause or amps is None:
        return Command(charger_id=charger_id, pause=True)
    return Command(charger_id=charger_id, current_a=(amps, amps, amps))


@asynccontextmanager
async def bridge_with_sims(
    tmp_path: Path,
    *,
    version: str = "1.6",
    count: int = 1,
    quirks: Quirks = Quirks(),
    vendor_yaml: str | None = None,
    clock: Clock | None = None,
    server: dict[str, Any] | None = None,
    charger_extra: dict[str, Any] | None = None,
    meter_interval_s: float = 30.0,
    sim_kwargs: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[OcppFactory, list[OcppCharger], list[SimStation]]]:
    clock = clock or SystemClock()
    vendor = "generic"
    if vendor_yaml is not None:
        (tmp_path / "testvendor.yaml").write_text(vendor_yaml)
        vendor = "testvendor"
    deps = AdapterDeps(
        clock=clock,
        state_dir=tmp_path,
        mapping_dirs=(tmp_path,),
        options={"host": "127.0.0.1", "port": 0, "call_timeout_s": 5, **(server or {})},
    )
    factory = OcppFactory(deps)
    async with factory:
        chargers = []
        for i in range(count):
            opts = factory.validate_options(
                {"type": "ocpp", "charge_point_id": f"SIM-{i + 1}", "vendor_profile": vendor, **(charger_extra or {})}
            )
            chargers.append(factory.create(f"cp{i + 1}", opts))
        srv = await factory.wait_started()
        scheme = "wss" if srv.options.security_profile >= 2 else "ws"
        url = f"{scheme}://127.0.0.1:{srv.port}/ocpp"
        async with start_charge_points(
            url, count, clock, version=version, quirks=quirks, meter_interval_s=meter_interval_s, **(sim_kwargs or {})
        ) as stations:
            for charger in chargers:
                session = factory.session(charger.options.charge_point_id)
                assert session is not None
                await session.ready.wait()
            yield factory, chargers, stations


async def wait_for(predicate: Any, limit_s: float = 5.0) -> None:
    """Poll a condition on real loopback traffic, bounded."""
    with anyio.fail_after(limit_s):
        while not predicate():  # noqa: ASYNC110 - the condition is state, not an event
            await anyio.sleep(0.01)
