"""Modbus RTU over a pseudo-terminal pair: two boxes on one bus share one owner task."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from adapters.modbus.factory import ModbusFactory
from adapters.modbus.mapping import load_mapping
from adapters.sim.modbus_rtu import RtuPtyServer, crc16
from adapters.sim.modbus_server import ModbusWallboxSim
from bridge.clock import FakeClock
from bridge.errors import ChargerUnreachable
from bridge.model import Command, LimitSource
from bridge.ports import AdapterDeps

pytestmark = pytest.mark.anyio


def test_crc16_reference_value() -> None:
    # "01 03 00 00 00 0A" has the well-known Modbus CRC C5CD (sent low byte first: CD C5)
    assert crc16(bytes.fromhex("01030000000A")) == 0xCDC5


async def test_heidelberg_over_rtu_bus(tmp_path: Path) -> None:
    clock = FakeClock()
    sim = ModbusWallboxSim(load_mapping("heidelberg-energy-control"), clock)
    sim2 = ModbusWallboxSim(load_mapping("heidelberg-energy-control"), clock)
    async with RtuPtyServer({1: sim, 2: sim2}) as bus, ModbusFactory(AdapterDeps(clock, tmp_path)) as factory:
        # a pseudo-terminal refuses parity settings (EINVAL); the box itself uses 8E1
        options = {
            "mapping": "heidelberg-energy-control",
            "serial": bus.device,
            "framer": "rtu",
            "timeout_s": 1,
            "parity": "N",
        }
        box1 = factory.create("hd1", factory.validate_options({**options, "unit_id": 1}))
        box2 = factory.create("hd2", factory.validate_options({**options, "unit_id": 2}))
        assert box1.endpoint is box2.endpoint  # one owner per bus: requests never interleave
        with anyio.fail_after(10):
            await box1.apply(Command(charger_id="hd1", current_a=(8, 8, 8), binding=LimitSource.LPC))
            clock.advance(2)
            snap = await box1.read()
            assert snap.measurement.current_per_phase_a == (8, 8, 8)
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(box1.read)
                    tg.start_soon(box2.read)
        assert bus.crc_errors == 0 and bus.frames > 10
        assert ("set_current", 8.0) in sim.writes and not sim2.writes
        box3 = factory.create("hd3", factory.validate_options({**options, "unit_id": 3}))
        with pytest.raises(ChargerUnreachable):  # no box at address 3
            await box3.read()
        # a dead box on the bus must not take the bus down for the others
        with anyio.fail_after(10):
            assert (await box1.read()).available
            # one lost answer on a noisy bus is retried on the same port
            bus.ignore_next = 1
            assert (await box2.read()).available


async def test_abl_over_modbus_ascii(tmp_path: Path) -> None:
    clock = FakeClock()
    sim = ModbusWallboxSim(load_mapping("abl-emh"), clock)
    async with RtuPtyServer({1: sim}, framer="ascii") as bus, ModbusFactory(AdapterDeps(clock, tmp_path)) as factory:
        options = {"mapping": "abl-emh", "serial": bus.device, "framer": "ascii", "timeout_s": 1, "parity": "N"}
        abl = factory.create("abl", factory.validate_options(options))
        with anyio.fail_after(10):
            await abl.apply(Command(charger_id="abl", current_a=(12, 12, 12), binding=LimitSource.LPC))
            clock.advance(2)
            snap = await abl.read()
        assert ("set_current", pytest.approx(12.0)) in sim.writes and ("enable", 0xA1A1) in sim.writes
        assert snap.measurement.current_per_phase_a == pytest.approx((12, 12, 12))
        assert snap.charging_state.value == "charging" and snap.ev_connected
        assert bus.frames > 3 and bus.crc_errors == 0
