"""Serve `ModbusWallboxSim` boxes as Modbus RTU (or ASCII) on the master side of a pseudo-terminal pair.

`os.openpty()` gives a pty pair; the adapter opens the slave device path
(`/dev/pts/N`) as its serial port with pymodbus' RTU framer, exactly as it
opens `/dev/ttyUSB0` on a real RS-485 bus.  Frames are delimited by the
request layout of each function code and checked with the Modbus CRC-16.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import tty
from types import TracebackType
from typing import Self

from adapters.sim.modbus_server import ModbusWallboxSim


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def lrc(data: bytes) -> int:
    """Modbus ASCII longitudinal redundancy check: two's complement of the byte sum."""
    return (-sum(data)) & 0xFF


def request_length(buffer: bytes) -> int | None:
    """Bytes of the RTU request starting at buffer[0], or None when more are needed."""
    if len(buffer) < 2:
        return None
    fc = buffer[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return 9 + buffer[6] if len(buffer) >= 7 else None
    return 4  # unknown function: unit, fc, crc — answered with "illegal function"


class RtuPtyServer:
    """`async with RtuPtyServer({1: sim1, 2: sim2}) as bus: bus.device` is the serial port to open.

    Each simulated box answers to its bus address; a request for an address
    with no box gets no answer, as on a real RS-485 bus.
    """

    def __init__(self, boxes: dict[int, ModbusWallboxSim], *, framer: str = "rtu") -> None:
        self.boxes = boxes
        self.framer = framer
        self.ignore_next = 0  # requests to leave unanswered (a frame lost on a noisy bus)
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.device = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="rtu-sim", daemon=True)
        self.frames = 0
        self.crc_errors = 0

    async def __aenter__(self) -> Self:
        self._thread.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._master)
        os.close(self._slave)

    def _answer(self, unit: int, pdu: bytes) -> bytes | None:
        box = self.boxes.get(unit)
        if box is None:
            return None  # nobody at that address: silence, the master times out
        if self.ignore_next > 0:
            self.ignore_next -= 1
            return None
        self.frames += 1
        return bytes([unit]) + box.handle_pdu(box.mapping.connection.unit_id, pdu)

    def _serve(self) -> None:
        if self.framer == "ascii":
            self._serve_ascii()
            return
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                buffer = b""  # a silent gap (> 3.5 characters) ends any partial frame
                continue
            buffer += os.read(self._master, 256)
            while (length := request_length(buffer)) is not None and len(buffer) >= length:
                frame, buffer = buffer[:length], buffer[length:]
                if crc16(frame[:-2]) != struct.unpack("<H", frame[-2:])[0]:
                    self.crc_errors += 1
                    buffer = b""
                    break
                reply = self._answer(frame[0], frame[1:-2])
                if reply is not None:
                    os.write(self._master, reply + struct.pack("<H", crc16(reply)))

    def _serve_ascii(self) -> None:
        """Modbus ASCII: ':' + hex(unit, PDU, LRC) + CR LF, as ABL's controllers speak it."""
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            buffer += os.read(self._master, 256)
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                start = line.rfind(b":")
                try:
                    frame = bytes.fromhex(line[start + 1 :].decode("ascii")) if start >= 0 else b""
                except (UnicodeDecodeError, ValueError):
                    frame = b""
                if len(frame) < 3 or lrc(frame[:-1]) != frame[-1]:
                    self.crc_errors += 1
                    continue
                reply = self._answer(frame[0], frame[1:-1])
                if reply is not None:
                    os.write(self._master, b":" + (reply + bytes([lrc(reply)])).hex().upper().encode() + b"\r\n")
