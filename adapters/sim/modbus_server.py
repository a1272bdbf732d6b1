"""A Modbus TCP wallbox simulator that serves any mapping file, with the shared wallbox physics.

It encodes and decodes registers with code of its own (`struct` directly, not
`adapters.modbus.codec`), so a mistake in the adapter's codec cannot cancel
out in the tests.  It honours the mapping's watchdog (falls back to the
failsafe current when not refreshed in time) and quirks (single TCP
connection), and can inject faults: dropped connections, slow answers,
Modbus exceptions.

    async with ModbusWallboxSim(load_mapping("keba-p30"), clock) as sim:
        sim.port  # serve on 127.0.0.1:sim.port
"""

from __future__ import annotations

import argparse
import logging
import struct
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import SocketStream, TaskGroup

from adapters.modbus.mapping import Mapping, Point, PointName, Table, load_mapping
from adapters.sim.physics import ChargerWatchdog, EvProfile, ScriptStep, WallboxPhysics, advance_with_watchdog
from bridge.clock import Clock, SystemClock

log = logging.getLogger(__name__)

_FMT = {"u16": "H", "s16": "h", "bitfield": "H", "u32": "I", "s32": "i", "u64": "Q", "s64": "q", "f32": "f", "f64": "d"}
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 2, 3, 4


def sim_words(point: Point, mapping: Mapping, value: float | int | str) -> list[int]:
    """Raw register words for an engineering value, written independently of the adapter's codec."""
    word_order = point.word_order or mapping.word_order
    byte_order = point.byte_order or mapping.byte_order
    if point.table in (Table.COIL, Table.DISCRETE):
        return [1 if value else 0]
    if point.type == "string":
        raw = str(value).encode()[: point.words * 2].ljust(point.words * 2, b"\0")
    else:
        number = value if point.scale == 1 else value / point.scale  # ints stay exact (u64 beyond 2**53)
        packed = number if point.type in ("f32", "f64") else round(number)
        raw = struct.pack(">" + _FMT[point.type], packed)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if byte_order == "little":
        words = [w[::-1] for w in words]
    if word_order == "little" and point.type != "string":
        words.reverse()
    return [int.from_bytes(w, "big") for w in words]


def sim_value(point: Point, mapping: Mapping, words: list[int]) -> float:
    """Engineering value of written words (numbers only), again without the adapter's codec."""
    word_order = point.word_order or mapping.word_order
    byte_order = point.byte_order or mapping.byte_order
    if point.table in (Table.COIL, Table.DISCRETE):
        return float(words[0])
    ordered = list(reversed(words)) if word_order == "little" else list(words)
    raw = b"".join(w.to_bytes(2, "big")[:: -1 if byte_order == "little" else 1] for w in ordered)
    (number,) = struct.unpack(">" + _FMT[point.type], raw)
    return float(number) * point.scale


@dataclass
class Faults:
    """Switchable misbehaviour for chaos tests."""

    delay_s: float = 0.0
    exception_code: int | None = None
    refuse: bool = False
    frozen: bool = False  # registers stay as a test planted them (physics and refresh paused)


@dataclass
class ModbusWallboxSim:
    mapping: Mapping
    clock: Clock = field(default_factory=SystemClock)
    host: str = "127.0.0.1"
    port: int = 0
    serial: str = "SIM-MB-0001"
    fallback_current_a: float | None = None
    physics: WallboxPhysics | None = None
    faults: Faults = field(default_factory=Faults)
    socket: int = 1

    def __post_init__(self) -> None:
        lim = self.mapping.limits
        self.physics = self.physics or WallboxPhysics(
            phases_installed=lim.phases,
            min_current_a=lim.min_current_a,
            max_current_a=lim.max_current_a,
            ramp_a_per_s=100.0,
            script=(ScriptStep(0, EvProfile()),),
        )
        self.physics.setpoint_a = lim.max_current_a
        self.registers: dict[tuple[int, Table, int], int] = {}
        self.writes: list[tuple[str, float]] = []
        self.requests = 0
        self._last = self.clock.monotonic()
        self._t0 = self._last
        self._commanded_a = lim.max_current_a
        spec = self.mapping.watchdog
        self.watchdog = (
            ChargerWatchdog(
                spec.timeout_s, self.fallback_current_a if self.fallback_current_a is not None else lim.min_current_a
            )
            if spec.kind != "none" and spec.timeout_s
            else None
        )
        self._connections = 0
        self._tg: TaskGroup | None = None
        self._streams: set[SocketStream] = set()
        self._listener: anyio.abc.SocketListener | None = None
        self._refresh()

    def at(self, point: Point) -> tuple[int, int]:
        """(unit id, address) of a point on this box, which serves socket `self.socket` of its station."""
        if point.unit_id is not None:
            return point.unit_id, point.address
        sockets = self.mapping.sockets
        if point.station:
            return self.mapping.connection.unit_id, point.address
        unit = sockets.unit_ids[self.socket - 1] if sockets.unit_ids else self.mapping.connection.unit_id
        return unit, point.address + (self.socket - 1) * sockets.address_stride

    # -- physics <-> registers ---------------------------------------------------------------
    def _now(self) -> float:
        return self.clock.monotonic() - self._t0

    def _sync(self) -> None:
        assert self.physics is not None
        self._last = advance_with_watchdog(
            self.physics, self.watchdog, self._last, self.clock.monotonic(), self._t0, self._commanded_a
        )

    def _put(self, name: PointName, value: float | int | str | None) -> None:
        point = self.mapping.points.get(name)
        if point is None or value is None or not point.readable:
            return
        if point.enum is not None and isinstance(value, str):
            reverse = {label: raw for raw, label in point.enum.items()}
            if value not in reverse:
                return
            raw = reverse[value]
            value = raw if isinstance(raw, str) else raw * point.scale
        for i, word in enumerate(sim_words(point, self.mapping, value)):
            unit, address = self.at(point)
            self.registers[(unit, point.table, address + i)] = word

    def _refresh(self) -> None:
        p = self.physics
        assert p is not None
        state = p.charging_state.value
        self._put(
            PointName.STATUS, state if state != "suspended_ev" or self._has_status("suspended_ev") else "suspended_evse"
        )
        status, plug = self.mapping.points.get(PointName.STATUS), self.mapping.points.get(PointName.PLUG)
        if plug is not None and not (
            status is not None and (status.table, status.address) == (plug.table, plug.address)
        ):
            self._put(PointName.PLUG, "connected" if p.ev else "disconnected")
        self._put(PointName.POWER, round(p.power_w))
        self._put(PointName.ENERGY, round(p.energy_wh, 1))
        for i, name in enumerate((PointName.CURRENT_L1, PointName.CURRENT_L2, PointName.CURRENT_L3)):
            self._put(name, round(p.currents_a[i], 3))
        for name in (PointName.VOLTAGE_L1, PointName.VOLTAGE_L2, PointName.VOLTAGE_L3):
            self._put(name, p.voltage_v)
        self._put(PointName.FREQUENCY, p.frequency_hz)
        self._put(PointName.PHASES, "three_phase" if p.active_phases == 3 else "one_phase")
        self._put(PointName.APPLIED_CURRENT, p.setpoint_a)
        self._put(PointName.MAX_HW_CURRENT, self.mapping.limits.max_current_a)
        for name, text, number in (
            (PointName.SERIAL, self.serial, 22041234),
            (PointName.MODEL, self.mapping.model[:20], 311010),
            (PointName.FIRMWARE, "1.2.3", 10203),
        ):
            point = self.mapping.points.get(name)
            self._put(name, text if point is not None and point.type == "string" else number)
        self._put(PointName.ERROR, 0)
        if self.watchdog:
            self._put(PointName.FAILSAFE_CURRENT, self.watchdog.fallback_current_a)

    def _has_status(self, label: str) -> bool:
        point = self.mapping.points.get(PointName.STATUS)
        return bool(point and point.enum and label in point.enum.values())

    def _written(self, unit: int, table: Table, address: int, count: int) -> None:
        """Apply writes that cover a writable point completely."""
        assert self.physics is not None
        for name, point in self.mapping.points.items():
            at_unit, at = self.at(point)
            if not point.writable or at_unit != unit or point.table is not table:
                continue
            if not (address <= at and at + point.words <= address + count):
                continue
            words = [self.registers.get((unit, table, at + i), 0) for i in range(point.words)]
            value = sim_value(point, self.mapping, words)
            self.writes.append((name.value, value))
            if name is PointName.SET_CURRENT:
                self._commanded_a = value
                self.physics.set_current(value)
                self._refresh_watchdog("rewrite_setpoint")
            elif name is PointName.SET_POWER:
                self._commanded_a = value / (self.physics.voltage_v * self.physics.active_phases)
                self.physics.set_current(self._commanded_a)
                self._refresh_watchdog("rewrite_setpoint")
            elif name is PointName.ENABLE:
                label = point.enum.get(int(value / point.scale)) if point.enum else None
                self.physics.enabled = label in ("enable", "on", "enabled") if label else value != 0
            elif name is PointName.WATCHDOG:
                self._refresh_watchdog("write_register")
            elif name is PointName.FAILSAFE_CURRENT and self.watchdog:
                self.watchdog.fallback_current_a = value
            elif name is PointName.PHASE_SWITCH:
                label = point.enum.get(int(value)) if point.enum else None
                self.physics.phases_selected = 1 if label == "one_phase" or value == 1 else 3

    def _refresh_watchdog(self, kind: str) -> None:
        if self.watchdog and self.mapping.watchdog.kind in (kind, "any_traffic"):
            self.watchdog.refresh(self._now())

    # -- Modbus PDU handling ---------------------------------------------------------------------
    def handle_pdu(self, unit: int, pdu: bytes) -> bytes:
        """One request PDU in, one response PDU out (exceptions included); bad input never raises."""
        self.requests += 1
        if not pdu:
            return bytes([0x80, ILLEGAL_FUNCTION])
        try:
            return self._handle(unit, pdu)
        except Exception:
            log.exception("Modbus sim: request %s failed", pdu.hex())
            return bytes([(pdu[0] | 0x80) & 0xFF, DEVICE_FAILURE])

    def _handle(self, unit: int, pdu: bytes) -> bytes:
        fc = pdu[0]
        if self.faults.exception_code is not None:
            return bytes([fc | 0x80, self.faults.exception_code])
        if not self.faults.frozen:
            self._sync()
            if self.mapping.watchdog.kind == "any_traffic":
                self._refresh_watchdog("any_traffic")
            self._refresh()
        tables = {1: Table.COIL, 2: Table.DISCRETE, 3: Table.HOLDING, 4: Table.INPUT}
        try:
            if fc in (3, 4):
                address, count = struct.unpack(">HH", pdu[1:5])
                if not 1 <= count <= 125:
                    return bytes([fc | 0x80, ILLEGAL_VALUE])
                words = [self._read(unit, tables[fc], address + i) for i in range(count)]
                if any(w is None for w in words):
                    return bytes([fc | 0x80, ILLEGAL_ADDRESS])
                return bytes([fc, 2 * count]) + b"".join(struct.pack(">H", w) for w in words)  # type: ignore[arg-type]
            if fc in (1, 2):
                address, count = struct.unpack(">HH", pdu[1:5])
                if not 1 <= count <= 2000:
                    return bytes([fc | 0x80, ILLEGAL_VALUE])
                bits = [self._read(unit, tables[fc], address + i) for i in range(count)]
                if any(b is None for b in bits):
                    return bytes([fc | 0x80, ILLEGAL_ADDRESS])
                packed = bytearray((count + 7) // 8)
                for i, b in enumerate(bits):
                    if b:
                        packed[i // 8] |= 1 << (i % 8)
                return bytes([fc, len(packed)]) + bytes(packed)
            if fc == 6:
                address, value = struct.unpack(">HH", pdu[1:5])
                if not self._writable(unit, Table.HOLDING, address, 1):
                    return bytes([fc | 0x80, ILLEGAL_ADDRESS])
                self.registers[(unit, Table.HOLDING, address)] = value
                self._written(unit, Table.HOLDING, address, 1)
                return pdu[:5]
            if fc == 16:
                address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
                if nbytes != 2 * count or not self._writable(unit, Table.HOLDING, address, count):
                    return bytes([fc | 0x80, ILLEGAL_ADDRESS])
                for i in range(count):
                    (self.registers[(unit, Table.HOLDING, address + i)],) = struct.unpack(
                        ">H", pdu[6 + 2 * i : 8 + 2 * i]
                    )
                self._written(unit, Table.HOLDING, address, count)
                return pdu[:5]
            if fc == 5:
                address, value = struct.unpack(">HH", pdu[1:5])
                if not self._writable(unit, Table.COIL, address, 1):
                    return bytes([fc | 0x80, ILLEGAL_ADDRESS])
                self.registers[(unit, Table.COIL, address)] = 1 if value == 0xFF00 else 0
                self._written(unit, Table.COIL, address, 1)
                return pdu[:5]
        except struct.error:
            return bytes([fc | 0x80, ILLEGAL_VALUE])
        return bytes([fc | 0x80, ILLEGAL_FUNCTION])

    def _read(self, unit: int, table: Table, address: int) -> int | None:
        key = (unit, table, address)
        if key in self.registers:
            return self.registers[key]
        for point in self.mapping.points.values():
            if (
                self.at(point)[0] == unit
                and point.table is table
                and self.at(point)[1] <= address < self.at(point)[1] + point.words
            ):
                return 0  # a write-only register reads as 0
        return None

    def _writable(self, unit: int, table: Table, address: int, count: int) -> bool:
        for i in range(count):
            if not any(
                p.writable
                and self.at(p)[0] == unit
                and p.table is table
                and self.at(p)[1] <= address + i < self.at(p)[1] + p.words
                for p in self.mapping.points.values()
            ):
                return False
        return True

    # -- TCP server ---------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self.port = self._listener.extra(anyio.abc.SocketAttribute.local_port)
        self._cm = anyio.create_task_group()
        self._tg = await self._cm.__aenter__()
        self._tg.start_soon(self._listener.serve, self._serve_client)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None and self._listener is not None
        self._tg.cancel_scope.cancel()
        await self._cm.__aexit__(et, e, tb)
        await self._listener.aclose()

    async def drop_connections(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()

    async def _serve_client(self, stream: SocketStream) -> None:
        async with stream:
            if self.faults.refuse or (self.mapping.connection.single_connection and self._connections >= 1):
                return
            self._connections += 1
            self._streams.add(stream)
            buffer = b""
            try:
                while True:
                    while len(buffer) < 7 or len(buffer) < 6 + struct.unpack(">H", buffer[4:6])[0]:
                        buffer += await stream.receive()
                    protocol, length = struct.unpack(">HH", buffer[2:6])
                    if protocol != 0 or not 2 <= length <= 254:
                        log.info("Modbus sim: invalid MBAP header %s, closing the connection", buffer[:7].hex())
                        return  # a real Modbus TCP server drops a stream it cannot frame
                    frame, buffer = buffer[: 6 + length], buffer[6 + length :]
                    tid, unit = frame[:2], frame[6]
                    if self.faults.delay_s:
                        await self.clock.sleep(self.faults.delay_s)
                    response = self.handle_pdu(unit, frame[7:])
                    await stream.send(tid + b"\0\0" + struct.pack(">H", len(response) + 1) + bytes([unit]) + response)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            finally:
                self._connections -= 1
                self._streams.discard(stream)


def make_simulator(options: dict[str, object], clock: Clock) -> ModbusWallboxSim:
    """Entry point `evbridge.simulators: modbus`: `{type: modbus, mapping: keba-p30, port: 15020}`."""
    return ModbusWallboxSim(
        load_mapping(str(options["mapping"])),
        clock,
        host=str(options.get("host", "127.0.0.1")),
        port=int(options.get("port", 0)),  # type: ignore[call-overload]
        serial=str(options.get("serial", "SIM-MB-0001")),
    )


async def _serve_forever(mapping_name: str, host: str, port: int) -> None:
    async with ModbusWallboxSim(load_mapping(mapping_name), host=host, port=port) as sim:
        print(f"simulated {sim.mapping.vendor} {sim.mapping.model} on {host}:{sim.port}", flush=True)
        await anyio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Modbus TCP wallbox simulator")
    parser.add_argument("--mapping", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1502)
    args = parser.parse_args()
    anyio.run(_serve_forever, args.mapping, args.host, args.port, backend="asyncio")


if __name__ == "__main__":
    main()
