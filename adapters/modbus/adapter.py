"""A Modbus charger (one socket) behind the `Charger` port, driven entirely by its mapping file.

Reads turn registers into the canonical snapshot; `apply` writes the set
current (or power) and enable points only when the value changes, then reads
back the current in force; `keep_alive` refreshes the box's own watchdog the
way the map says; `set_fallback_current` programs its failsafe current.
Registers persisted in EEPROM are written at most once a minute when the
value goes up (lower values, the safe direction, are never delayed); a
delayed value is kept pending and written by a later poll, because the
coordinator applies a command only once.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from adapters.modbus import codec
from adapters.modbus.endpoint import ModbusEndpoint
from adapters.modbus.mapping import Mapping, Point, PointName
from bridge.clock import Clock
from bridge.errors import CapabilityNotSupported, ChargerRejected
from bridge.model import (
    AcMeasurement,
    AppliedSetpoint,
    Characteristics,
    ChargerSnapshot,
    ChargingState,
    Command,
    DeviceState,
    ManufacturerInformation,
)
from bridge.ports import Capabilities, ControlMode, Watchdog, WatchdogKind

log = logging.getLogger(__name__)

EEPROM_MIN_INTERVAL_S = 60.0
READ_POINTS = (
    PointName.STATUS,
    PointName.PLUG,
    PointName.POWER,
    PointName.ENERGY,
    PointName.CURRENT_L1,
    PointName.CURRENT_L2,
    PointName.CURRENT_L3,
    PointName.VOLTAGE_L1,
    PointName.VOLTAGE_L2,
    PointName.VOLTAGE_L3,
    PointName.FREQUENCY,
    PointName.APPLIED_CURRENT,
    PointName.ERROR,
    PointName.SOC,
)
IDENTITY_POINTS = (PointName.SERIAL, PointName.FIRMWARE, PointName.MODEL)


class ModbusOptions(BaseModel):
    """Options of a `type: modbus` charger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["modbus"] = "modbus"
    mapping: str = Field(description="vendor-model name from mappings/modbus or a path to a mapping file")
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    serial: str | None = Field(default=None, description="serial device for RTU/ASCII, e.g. /dev/ttyUSB0")
    framer: Literal["socket", "rtu", "ascii"] = "socket"
    baudrate: int | None = None
    parity: Literal["N", "E", "O"] | None = None
    unit_id: int | None = Field(default=None, ge=0, le=255, description="override the map's unit id")
    socket: int = Field(default=1, ge=1, le=16, description="socket of a multi-socket station (one charger each)")
    timeout_s: float = Field(default=3.0, gt=0)
    min_interval_ms: int | None = Field(default=None, ge=0, description="override the map's pause between requests")
    max_current_a: float | None = Field(default=None, gt=0)
    min_current_a: float | None = Field(default=None, ge=0)
    phases: Literal[1, 3] | None = None


class ModbusCharger:
    def __init__(
        self, charger_id: str, mapping: Mapping, options: ModbusOptions, endpoint: ModbusEndpoint, clock: Clock
    ) -> None:
        self._id = charger_id
        self.mapping = mapping
        self.options = options
        self.endpoint = endpoint
        self.clock = clock
        lim = mapping.limits
        wd = mapping.watchdog
        self._caps = Capabilities(
            control=ControlMode.POWER if lim.control == "power" else ControlMode.CURRENT,
            characteristics=Characteristics(
                phases_installed=options.phases or lim.phases,
                min_current_a=options.min_current_a if options.min_current_a is not None else lim.min_current_a,
                max_current_a=min(options.max_current_a or lim.max_current_a, lim.max_current_a),
                current_resolution_a=lim.resolution_a,
                phase_switching=lim.phase_switching and PointName.PHASE_SWITCH in mapping.points,
            ),
            per_phase_metering=PointName.CURRENT_L2 in mapping.points,
            frequency=PointName.FREQUENCY in mapping.points,
            soc=PointName.SOC in mapping.points,
            watchdog=Watchdog(
                kind=WatchdogKind.NONE if wd.kind == "none" else WatchdogKind.CHARGER,
                timeout_s=wd.timeout_s,
                refresh_s=wd.refresh_s or (wd.timeout_s / 3 if wd.timeout_s else None),
                description=wd.description,
            ),
        )
        self._written: dict[PointName, tuple[list[int], float]] = {}
        self._pending: dict[PointName, float | int | str] = {}  # EEPROM writes waiting for the rate limit
        self._identity: ManufacturerInformation | None = None
        self._last_current: float | None = None
        if wd.kind == "none":
            log.warning(
                "%s: watchdog: none - %s %s has no communication watchdog; if the bridge dies it keeps its last "
                "current until someone changes it",
                charger_id,
                mapping.vendor,
                mapping.model,
            )

    @property
    def charger_id(self) -> str:
        return self._id

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def _unit(self, point: Point) -> int:
        if point.unit_id is not None:
            return point.unit_id
        if self.options.unit_id is not None:
            return self.options.unit_id
        unit_ids = self.mapping.sockets.unit_ids
        if unit_ids is not None and not point.station:
            return unit_ids[self.options.socket - 1]
        return self.mapping.connection.unit_id

    def _address(self, point: Point) -> int:
        if point.station or point.unit_id is not None:
            return point.address
        return point.address + (self.options.socket - 1) * self.mapping.sockets.address_stride

    async def _read_point(self, name: PointName) -> Any:
        point = self.mapping.points[name]
        words = await self.endpoint.read(self._unit(point), point.table, self._address(point), point.words)
        return codec.decode(self.mapping, point, words)

    async def _write_point(self, name: PointName, value: float | int | str, *, force: bool = False) -> bool:
        """Write if the words differ from what we last wrote (or `force`); True when written."""
        point = self.mapping.points.get(name)
        if point is None or not point.writable:
            raise CapabilityNotSupported(f"{self.mapping.vendor} {self.mapping.model} has no writable {name.value}")
        words = codec.encode(self.mapping, point, value)
        last = self._written.get(name)
        now = self.clock.monotonic()
        if last is not None and last[0] == words and not force:
            self._pending.pop(name, None)
            return False
        if (
            point.eeprom
            and last is not None
            and now - last[1] < EEPROM_MIN_INTERVAL_S
            and not self._lower(point, words, last[0])
        ):
            if name not in self._pending:
                log.info("%s: %s is kept in EEPROM; this change waits for the rate limit", self._id, name.value)
            self._pending[name] = value
            return False
        function = point.write_function or self.mapping.write_function
        await self.endpoint.write(self._unit(point), point.table, self._address(point), words, function)
        self._written[name] = (words, now)
        self._pending.pop(name, None)
        return True

    def _lower(self, point: Point, new: list[int], old: list[int]) -> bool:
        """True when `new` is a smaller number than `old`: the safe direction, never delayed."""
        a, b = codec.decode(self.mapping, point, new), codec.decode(self.mapping, point, old)
        return isinstance(a, int | float) and isinstance(b, int | float) and a < b

    async def _flush_pending(self) -> None:
        for name, value in list(self._pending.items()):
            await self._write_point(name, value)

    # -- Charger port ---------------------------------------------------------------------------
    async def read(self) -> ChargerSnapshot:
        if self._pending:
            await self._flush_pending()
        values: dict[PointName, Any] = {}
        for name in READ_POINTS:
            point = self.mapping.points.get(name)
            if point is not None and point.readable:
                values[name] = await self._read_point(name)
        if self._identity is None:
            self._identity = await self._read_identity()
        return self._snapshot(values)

    async def _read_identity(self) -> ManufacturerInformation:
        ident: dict[str, str] = {}
        for name, field in ((PointName.SERIAL, "serial"), (PointName.FIRMWARE, "firmware"), (PointName.MODEL, "model")):
            point = self.mapping.points.get(name)
            if point is not None and point.readable:
                try:
                    ident[field] = str(await self._read_point(name))
                except ChargerRejected:
                    continue
        ident.setdefault("model", self.mapping.model)
        return ManufacturerInformation(vendor=self.mapping.vendor, **ident)

    def _snapshot(self, v: dict[PointName, Any]) -> ChargerSnapshot:
        def num(name: PointName) -> float | None:
            value = v.get(name)
            return float(value) if isinstance(value, int | float) else None

        status = v.get(PointName.STATUS)
        state = ChargingState(status) if status in ChargingState._value2member_map_ else ChargingState.UNKNOWN
        power = num(PointName.POWER)
        if state is ChargingState.UNKNOWN and power is not None:
            state = ChargingState.CHARGING if power > 50 else ChargingState.IDLE
        plug = v.get(PointName.PLUG)
        connected = {"connected": True, "disconnected": False}.get(plug) if isinstance(plug, str) else None
        if connected is None and state is ChargingState.CHARGING:
            connected = True
        if connected is False and state is ChargingState.SUSPENDED_EVSE:
            state = ChargingState.IDLE
        currents = (num(PointName.CURRENT_L1), num(PointName.CURRENT_L2), num(PointName.CURRENT_L3))
        volts = (num(PointName.VOLTAGE_L1), num(PointName.VOLTAGE_L2), num(PointName.VOLTAGE_L3))
        error = v.get(PointName.ERROR)
        error_code = str(error) if error not in (None, 0, "0", 0.0) else None
        n = self._caps.characteristics.phases_installed
        active = sum(1 for c in currents if c is not None and c > 0.5) or None
        return ChargerSnapshot(
            charger_id=self._id,
            timestamp=self.clock.now(),
            manufacturer=self._identity
            or ManufacturerInformation(vendor=self.mapping.vendor, model=self.mapping.model),
            characteristics=self._caps.characteristics,
            device_state=DeviceState.from_charging(state, error_code if state is ChargingState.FAULT else None),
            ev_connected=connected,
            charging_state=state,
            active_phases=(3 if active and active >= 2 and n == 3 else 1) if active else None,  # type: ignore[arg-type]
            measurement=AcMeasurement(
                power_w=max(0.0, power) if power is not None else None,
                current_per_phase_a=currents if any(c is not None for c in currents) else None,  # type: ignore[arg-type]
                voltage_per_phase_v=volts if any(x is not None for x in volts) else None,  # type: ignore[arg-type]
                energy_wh=num(PointName.ENERGY),
                frequency_hz=num(PointName.FREQUENCY),
                soc_pct=num(PointName.SOC),
            ),
            applied=AppliedSetpoint(
                current_a=num(PointName.APPLIED_CURRENT) if PointName.APPLIED_CURRENT in v else self._last_current
            ),
        )

    async def apply(self, command: Command) -> AppliedSetpoint:
        points = self.mapping.points
        if command.phases is not None and PointName.PHASE_SWITCH in points:
            await self._write_point(PointName.PHASE_SWITCH, "one_phase" if command.phases == 1 else "three_phase")
        if self._caps.control is ControlMode.POWER and PointName.SET_POWER in points:
            watts = 0.0 if command.pause else float(command.power_w or 0.0)
            await self._write_point(PointName.SET_POWER, watts)
        else:
            amps = 0.0 if command.pause else command.max_current_a
            set_point = points[PointName.SET_CURRENT]
            if command.pause and PointName.ENABLE in points:
                await self._write_point(PointName.ENABLE, "disable" if points[PointName.ENABLE].enum else 0)
                amps = self._caps.characteristics.min_current_a  # the box is disabled; keep a legal setpoint
            elif command.pause and set_point.off_value is not None:
                amps = set_point.off_value
            await self._write_point(PointName.SET_CURRENT, amps)
            if PointName.SET_CURRENT not in self._pending:
                self._last_current = 0.0 if command.pause else amps
            if not command.pause and PointName.ENABLE in points:
                await self._write_point(PointName.ENABLE, "enable" if points[PointName.ENABLE].enum else 1)
        if self.mapping.connection.readback_delay_ms:
            await anyio.sleep(self.mapping.connection.readback_delay_ms / 1000)  # the box's own settling time
        readback: float | None = self._last_current
        if PointName.APPLIED_CURRENT in points and points[PointName.APPLIED_CURRENT].readable:
            value = await self._read_point(PointName.APPLIED_CURRENT)
            readback = float(value) if isinstance(value, int | float) else None
            if readback is not None and not command.pause and readback > command.max_current_a + 0.01:
                log.warning(
                    "%s: read back %.2f A above the commanded %.2f A", self._id, readback, command.max_current_a
                )
        return AppliedSetpoint(current_a=0.0 if command.pause else readback, enabled=not command.pause)

    async def keep_alive(self) -> None:
        wd = self.mapping.watchdog
        if wd.kind == "write_register":
            point = self.mapping.points[PointName.WATCHDOG]
            value = point.value if point.value is not None else int(wd.timeout_s or 60)
            await self._write_point(PointName.WATCHDOG, value, force=True)
        elif wd.kind == "rewrite_setpoint":
            last = self._written.get(PointName.SET_CURRENT) or self._written.get(PointName.SET_POWER)
            if last is None:
                return
            name = PointName.SET_CURRENT if PointName.SET_CURRENT in self._written else PointName.SET_POWER
            point = self.mapping.points[name]
            await self.endpoint.write(
                self._unit(point),
                point.table,
                self._address(point),
                last[0],
                point.write_function or self.mapping.write_function,
            )
        elif wd.kind == "any_traffic":
            point = next(p for p in self.mapping.points.values() if p.readable)
            await self.endpoint.read(self._unit(point), point.table, self._address(point), point.words)

    async def set_fallback_current(self, current_a: float) -> None:
        point = self.mapping.points.get(PointName.FAILSAFE_CURRENT)
        if point is None or not point.writable:
            return  # the box's safe current is set on the box itself (e.g. Alfen ACE)
        await self._write_point(PointName.FAILSAFE_CURRENT, current_a)

    async def aclose(self) -> None:
        return None
