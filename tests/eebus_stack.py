"""A bridge with one simulated charger exposed over real TLS on loopback, and the EMS tool connected to it.

Use-case timers run on a FakeClock shared by both sides; bytes go over real
sockets, so each fake-time step also yields a few real milliseconds.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bridge.clock import FakeClock
from bridge.config import load_config_text
from bridge.core.coordinator import CoordinatorSettings
from bridge.eebus.ems.client import EmsConnection, ems_connection
from bridge.eebus.ship import Identity
from bridge.runtime.app import Bridge
from bridge.runtime.devices import ExposedDevice
from bridge.runtime.eebus_wiring import run_eebus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def advance(clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    elapsed = 0.0
    while elapsed < seconds:
        clock.advance(step)
        elapsed += step
        await anyio.sleep(0.003)


async def until(predicate: Callable[[], bool], clock: FakeClock, limit_s: float = 10.0, step: float = 0.5) -> None:
    with anyio.fail_after(limit_s):
        while not predicate():
            await advance(clock, step, step)


SIM_3P = "{type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}"


@dataclass
class Stack:
    bridge: Bridge
    ems: EmsConnection
    clock: FakeClock

    @property
    def device(self) -> ExposedDevice:
        return self.bridge.devices["garage"]

    @property
    def charger(self) -> Any:
        return self.bridge.chargers["garage"].charger

    def notified(self, function: str) -> dict[str, Any]:
        return self.ems.latest.get(function, {})


@asynccontextmanager
async def eebus_stack(
    tmp_path: Path, adapter: str = "{type: sim, phases: 3, max_current_a: 16, ramp_a_per_s: 100}"
) -> AsyncIterator[Stack]:
    bridge_state, ems_state = tmp_path / "bridge", tmp_path / "ems"
    ems_ski = Identity.load_or_create(ems_state, "ems").ski
    device_ski = Identity.load_or_create(bridge_state, "garage").ski
    port = free_port()
    config = f"""
chargers:
  - id: garage
    adapter: {adapter}
    eebus: {{port: {port}}}
eebus:
  bind: 127.0.0.1
  mdns: {{enabled: false}}
  trusted_skis: [{ems_ski}]
"""
    clock = FakeClock()
    bridge = Bridge(
        load_config_text(config, "stack.yaml"),
        clock,
        bridge_state,
        coordinator_settings=CoordinatorSettings(poll_interval_s=1),
    )
    async with anyio.create_task_group() as tg:
        await tg.start(lambda task_status: bridge.run(extra_services=[run_eebus], task_status=task_status))
        with anyio.fail_after(5):
            while True:  # wait for the SHIP listener
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                    await stream.aclose()
                    break
                except OSError:
                    await anyio.sleep(0.02)
        async with ems_connection(clock, ems_state, "127.0.0.1", port, device_ski, heartbeat_s=30) as ems:
            await advance(clock, 2)  # first poll, first notifies
            yield Stack(bridge, ems, clock)
        tg.cancel_scope.cancel()
