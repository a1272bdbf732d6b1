"""Garbage on the wire gets a Modbus exception reply or a closed stream; the simulator keeps serving."""

from __future__ import annotations

import struct
from pathlib import Path

import anyio
import pytest

from adapters.modbus.factory import ModbusFactory
from adapters.modbus.mapping import load_mapping
from adapters.sim.modbus_server import ModbusWallboxSim
from bridge.clock import FakeClock
from bridge.ports import AdapterDeps

pytestmark = pytest.mark.anyio


def mbap(pdu: bytes, *, unit: int = 255, tid: int = 7, protocol: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1 if length is None else length, unit) + pdu


async def exchange(port: int, frame: bytes) -> bytes:
    """Send one frame; return the reply, or b"" when the server closes the stream."""
    with anyio.fail_after(3):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(frame)
            try:
                return await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return b""


@pytest.mark.parametrize(
    ("frame", "reply_pdu"),
    [
        (mbap(b"\x03"), b"\x83\x03"),  # read holding without address/count: illegal data value
        (mbap(b"\x03\x03\xe8\x00\x00"), b"\x83\x03"),  # count 0
        (mbap(b"\x01\x00\x00\x00\x00"), b"\x81\x03"),  # read coils, count 0
        (mbap(b"\x2b\x0e\x01\x00"), b"\xab\x01"),  # unsupported function: illegal function
        (mbap(b"\x10\x13\x8c\x00\x02\x04\x00"), b"\x90\x02"),  # FC16 with fewer bytes than announced
        (mbap(b"\x03\xff\xf0\x00\x02"), b"\x83\x02"),  # nothing there: illegal data address
    ],
)
async def test_malformed_requests_get_exception_replies(frame: bytes, reply_pdu: bytes) -> None:
    async with ModbusWallboxSim(load_mapping("keba-p30"), FakeClock()) as sim:
        reply = await exchange(sim.port, frame)
        assert reply[7:] == reply_pdu and reply[:2] == frame[:2]


@pytest.mark.parametrize(
    "frame",
    [
        mbap(b"", length=1),  # a unit id and no function code
        mbap(b"\x03\x03\xe8\x00\x02", protocol=1),  # not Modbus
        mbap(b"", length=0) + b"\x00",  # length 0
    ],
)
async def test_unframeable_streams_are_closed_and_the_box_keeps_serving(frame: bytes, tmp_path: Path) -> None:
    clock = FakeClock()
    async with (
        ModbusWallboxSim(load_mapping("keba-p30"), clock) as sim,
        ModbusFactory(AdapterDeps(clock, tmp_path)) as factory,
    ):
        assert await exchange(sim.port, frame) == b""
        charger = factory.create(
            "kb",
            factory.validate_options(
                {"mapping": "keba-p30", "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
            ),
        )
        assert (await charger.read()).available
