"""Killing the bridge (SIGKILL) leaves the box to its own watchdog: it falls back to the failsafe current."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest
import yaml

from adapters.modbus.mapping import load_mapping
from adapters.sim.modbus_server import ModbusWallboxSim
from bridge.clock import FakeClock, SystemClock

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]

BRIDGE = r"""
import sys, anyio
from pathlib import Path
from adapters.modbus.factory import ModbusFactory
from bridge.clock import SystemClock
from bridge.model import Command, LimitSource
from bridge.ports import AdapterDeps

async def main(port):
    async with ModbusFactory(AdapterDeps(SystemClock(), Path("."))) as factory:
        options = {"mapping": "keba-p30", "host": "127.0.0.1", "port": port, "min_interval_ms": 0}
        box = factory.create("kb", factory.validate_options(options))
        await box.set_fallback_current(6)
        await box.keep_alive()
        await box.apply(Command(charger_id="kb", current_a=(16, 16, 16), binding=LimitSource.NONE))
        print("ready", flush=True)
        while True:
            await box.keep_alive()
            await anyio.sleep(0.05)

anyio.run(main, int(sys.argv[1]), backend="asyncio")
"""


async def test_sigkilled_bridge_makes_the_box_fall_back(tmp_path: Path) -> None:
    clock = FakeClock()
    async with ModbusWallboxSim(load_mapping("keba-p30"), clock) as sim:
        proc = await anyio.open_process([sys.executable, "-c", BRIDGE, str(sim.port)], cwd=ROOT)
        try:
            assert proc.stdout is not None
            with anyio.fail_after(20):
                line = await proc.stdout.receive()
            assert b"ready" in line
            clock.advance(30)
            with anyio.fail_after(5):  # real keep-alives arrive over the socket; poll them, bounded
                while sim.physics.setpoint_a != 16 or sum(1 for n, _ in sim.writes if n == "watchdog") < 3:  # type: ignore[union-attr]  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        sim.handle_pdu(255, bytes([3, 0x03, 0xE8, 0, 2]))  # any later request lets the box's clock run
        assert sim.physics.setpoint_a == 16  # within the 60 s timeout it keeps the bridge's value  # type: ignore[union-attr]
        clock.advance(61)
        sim.handle_pdu(255, bytes([3, 0x03, 0xE8, 0, 2]))
        assert sim.physics.setpoint_a == 6  # type: ignore[union-attr]
        assert sim.watchdog is not None and sim.watchdog.tripped


async def test_sigkilled_bridge_short_watchdog_in_real_time(tmp_path: Path) -> None:
    """Same, end to end on the wall clock: a test map with a 1 s watchdog, the box falls back within it."""
    text = (ROOT / "mappings" / "modbus" / "keba-p30.yaml").read_text()
    doc = yaml.safe_load(text)
    doc["watchdog"]["timeout_s"] = 1
    doc["watchdog"]["refresh_s"] = 0.2
    doc["points"]["watchdog"]["value"] = 1
    path = tmp_path / "keba-short-watchdog.yaml"
    path.write_text(yaml.safe_dump(doc))
    script = BRIDGE.replace('"mapping": "keba-p30"', f'"mapping": {str(path)!r}')
    async with ModbusWallboxSim(load_mapping(str(path)), SystemClock()) as sim:
        proc = await anyio.open_process([sys.executable, "-c", script, str(sim.port)], cwd=ROOT)
        try:
            assert proc.stdout is not None
            with anyio.fail_after(20):
                assert b"ready" in await proc.stdout.receive()
            with anyio.fail_after(5):
                while sum(1 for n, _ in sim.writes if n == "watchdog") < 5:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            sim.handle_pdu(255, bytes([3, 0x03, 0xE8, 0, 2]))
            assert sim.physics is not None and sim.physics.setpoint_a == 16  # alive: the bridge's value
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        killed = anyio.current_time()
        with anyio.fail_after(5):
            while sim.physics.setpoint_a != 6:
                await anyio.sleep(0.05)
                sim.handle_pdu(255, bytes([3, 0x03, 0xE8, 0, 2]))  # the box looks at its clock on traffic
        assert anyio.current_time() - killed < 1.5
        assert sim.watchdog is not None and sim.watchdog.tripped
