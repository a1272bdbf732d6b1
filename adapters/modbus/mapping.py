"""Modbus mapping files (`mappings/modbus/<vendor>-<model>.yaml`): the pydantic schema and the loader.

A new wallbox model needs only such a file.  Points come from a fixed
vocabulary (`PointName`); each says where it lives (table, address, unit id),
how it is encoded (type, word/byte order, scale) and how raw values map to
the canonical vocabulary (enums).  Wrong files raise `MappingError` with
file:line:column and the field path.
"""

from __future__ import annotations

import difflib
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bridge.errors import MappingError
from bridge.yamlpos import format_path, load_positioned


class PointName(StrEnum):
    STATUS = "status"  # enum → ChargingState value
    PLUG = "plug"  # enum → "connected" / "disconnected"
    POWER = "power_w"
    ENERGY = "energy_wh"
    CURRENT_L1 = "current_l1"
    CURRENT_L2 = "current_l2"
    CURRENT_L3 = "current_l3"
    VOLTAGE_L1 = "voltage_l1"
    VOLTAGE_L2 = "voltage_l2"
    VOLTAGE_L3 = "voltage_l3"
    FREQUENCY = "frequency_hz"
    PHASES = "phases"
    SOC = "soc_pct"
    SET_CURRENT = "set_current"
    SET_POWER = "set_power"
    APPLIED_CURRENT = "applied_current"  # read back of the current limit in force
    ENABLE = "enable"
    PHASE_SWITCH = "phase_switch"
    WATCHDOG = "watchdog"  # register written to keep the box's communication watchdog alive
    FAILSAFE_CURRENT = "failsafe_current"
    SERIAL = "serial"
    FIRMWARE = "firmware"
    MODEL = "model"
    ERROR = "error"
    MAX_HW_CURRENT = "max_hw_current"


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"


RegisterType = Literal["u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64", "string", "bitfield"]
WORDS = {"u16": 1, "s16": 1, "bitfield": 1, "u32": 2, "s32": 2, "f32": 2, "u64": 4, "s64": 4, "f64": 4}
CHARGING_STATES = {"unknown", "idle", "charging", "suspended_ev", "suspended_evse", "finished", "fault"}


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: Table = Table.HOLDING
    address: int = Field(ge=0, le=65535)
    unit_id: int | None = Field(default=None, ge=0, le=255)
    type: RegisterType = "u16"
    count: int | None = Field(default=None, ge=1, le=125)
    scale: float = 1.0
    unit: str | None = None
    enum: dict[int, str] | dict[str, str] | None = None  # raw number (or text of a string point) → label
    access: Literal["r", "w", "rw"] = "r"
    write_function: Literal[5, 6, 15, 16] | None = None
    min: float | None = None
    max: float | None = None
    resolution: float | None = Field(default=None, gt=0)
    off_value: float | None = None
    eeprom: bool = False
    mask: int | None = Field(default=None, ge=1, description="AND-ed with the raw integer before enum/scale")
    no_data: list[int] = Field(default_factory=list, description="raw sentinels meaning 'no value' (e.g. 0xFFFFFFFF)")
    word_order: Literal["big", "little"] | None = None
    byte_order: Literal["big", "little"] | None = None
    station: bool = False  # belongs to the station, not a socket: no per-socket unit id or address offset
    value: int | None = None  # watchdog: the raw value to write (default: the timeout in s)
    note: str = ""
    confidence: Literal["manual", "peer-code", "forum", "inferred", "test"] = "inferred"
    source: str = ""

    @model_validator(mode="after")
    def _count(self) -> Point:
        if self.type == "string":
            if self.count is None:
                raise ValueError("a string point needs a count (registers)")
        elif self.table in (Table.COIL, Table.DISCRETE):
            if self.type not in ("u16", "bitfield"):
                raise ValueError("coils and discrete inputs are single bits (type u16)")
        elif self.count is not None and self.count != WORDS[self.type]:
            raise ValueError(f"type {self.type} takes {WORDS[self.type]} registers, not {self.count}")
        if self.table in (Table.INPUT, Table.DISCRETE) and "w" in self.access:
            raise ValueError(f"{self.table.value} registers are read-only")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.enum and self.type != "string" and any(isinstance(k, str) for k in self.enum):
            raise ValueError("enum keys of a numeric point must be numbers (unquoted)")
        if self.mask is not None and (self.type in ("f32", "f64", "string") or "w" in self.access):
            raise ValueError("mask applies to read-only integer points")
        return self

    @property
    def words(self) -> int:
        if self.table in (Table.COIL, Table.DISCRETE):
            return 1
        return self.count if self.type == "string" else WORDS[self.type]  # type: ignore[return-value]

    @property
    def readable(self) -> bool:
        return "r" in self.access

    @property
    def writable(self) -> bool:
        return "w" in self.access


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=255)
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    single_connection: bool = False
    min_interval_ms: int = Field(default=0, ge=0)
    readback_delay_ms: int = Field(default=0, ge=0)


class WatchdogSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["write_register", "any_traffic", "rewrite_setpoint", "none"]
    timeout_s: float | None = Field(default=None, gt=0)
    refresh_s: float | None = Field(default=None, gt=0)
    description: str = ""


class Sockets(BaseModel):
    """How socket n (1-based) of a multi-socket station is addressed; each socket is one configured charger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(default=1, ge=1, le=16)
    unit_ids: list[int] | None = Field(default=None, description="unit id of each socket (Alfen: [1, 2])")
    address_stride: int = Field(default=0, ge=0, description="added to socket points' addresses per socket (Etrel 100)")

    @model_validator(mode="after")
    def _one_way(self) -> Sockets:
        if self.unit_ids is not None and len(self.unit_ids) != self.count:
            raise ValueError(f"unit_ids needs one unit id per socket ({self.count})")
        return self


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    control: Literal["current", "power"] = "current"
    phases: Literal[1, 3] = 3
    min_current_a: float = 6.0
    max_current_a: float = 16.0
    resolution_a: float = Field(default=1.0, gt=0)
    phase_switching: bool = False


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    vendor: str
    model: str
    also_sold_as: list[str] = Field(default_factory=list)
    protocol: Literal["modbus-tcp", "modbus-rtu", "modbus-tcp+rtu", "modbus-ascii"] = "modbus-tcp"
    connection: Connection = Connection()
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    write_function: Literal[6, 16] = 16
    limits: Limits = Limits()
    watchdog: WatchdogSpec = WatchdogSpec(kind="none")
    sockets: Sockets = Sockets()
    points: dict[PointName, Point]
    identify: dict[str, str] = Field(default_factory=dict)  # point name → text expected in it (probe)
    quirks: list[str] = Field(default_factory=list)
    sources: dict[str, str] = Field(default_factory=dict)
    confidence: Literal["manual", "peer-code", "forum", "inferred", "test"] = "inferred"

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        p = self.points
        if PointName.SET_CURRENT not in p and PointName.SET_POWER not in p:
            raise ValueError("a mapping needs set_current or set_power")
        for name in (PointName.SET_CURRENT, PointName.SET_POWER, PointName.ENABLE, PointName.WATCHDOG):
            if name in p and not p[name].writable:
                raise ValueError(f"point {name.value} must be writable (access w or rw)")
        if self.watchdog.kind == "write_register" and PointName.WATCHDOG not in p:
            raise ValueError("watchdog kind write_register needs a 'watchdog' point")
        if PointName.STATUS in p and p[PointName.STATUS].enum:
            unknown = set(p[PointName.STATUS].enum.values()) - CHARGING_STATES
            if unknown:
                raise ValueError(f"status enum values must be among {sorted(CHARGING_STATES)}; got {sorted(unknown)}")
        if PointName.PLUG in p and p[PointName.PLUG].enum:
            unknown = set(p[PointName.PLUG].enum.values()) - {"connected", "disconnected"}
            if unknown:
                raise ValueError(f"plug enum values must be connected/disconnected; got {sorted(unknown)}")
        return self

    def word_order_of(self, point: Point) -> str:
        return point.word_order or self.word_order

    def byte_order_of(self, point: Point) -> str:
        return point.byte_order or self.byte_order

    def unit_of(self, point: Point) -> int:
        return self.connection.unit_id if point.unit_id is None else point.unit_id


def bundled_mapping_dir() -> Path:
    checkout = Path(__file__).resolve().parents[2] / "mappings" / "modbus"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("bridge") / "_data" / "mappings" / "modbus"))


def available_mappings() -> list[str]:
    return sorted(p.stem for p in bundled_mapping_dir().glob("*.yaml"))


def resolve_mapping_path(name_or_path: str, extra_dirs: tuple[Path, ...] = ()) -> Path:
    """A path to a file, or a name looked up in the site's mapping directories first, then the bundled maps."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    for directory in (*extra_dirs, bundled_mapping_dir()):
        candidate = Path(directory) / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    close = difflib.get_close_matches(name_or_path, available_mappings(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(available_mappings())}"
    raise MappingError(f"unknown Modbus mapping {name_or_path!r}{hint}", location=name_or_path)


@cache
def load_mapping(name_or_path: str, extra_dirs: tuple[Path, ...] = ()) -> Mapping:
    """Load and validate a mapping (cached: mapping objects are immutable)."""
    path = resolve_mapping_path(name_or_path, extra_dirs)
    doc = load_positioned(path.read_text(encoding="utf-8"), str(path))
    try:
        return Mapping.model_validate(doc.data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        message = err["msg"].removeprefix("Value error, ")
        got: Any = err.get("input")
        if not isinstance(got, dict | list):
            message += f" (got {got!r})"
        raise MappingError(message, location=doc.locate(loc), field=format_path(loc)) from None


def mapping_schema() -> dict[str, Any]:
    return Mapping.model_json_schema()
