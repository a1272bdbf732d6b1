"""MQTT mapping files (`mappings/mqtt/<vendor>.yaml`): the pydantic schema and the loader.

A charger whose firmware speaks MQTT needs only such a file: per point a topic
template, how the payload is parsed (json/raw/number/bool), a JSON path, a
scale (engineering = raw × scale, writes divide), a unit and an enum map;
commands are a topic plus a payload template.  Wrong files raise
`MappingError` with file:line:column and the field path.
"""

from __future__ import annotations

import difflib
import json
import re
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bridge.errors import MappingError
from bridge.yamlpos import format_path, load_positioned


class PointName(StrEnum):
    """The fixed point vocabulary (same names as the Modbus maps where they overlap)."""

    STATUS = "status"  # enum → IEC 61851 letter (A..F) or a ChargingState value
    PLUG = "plug"  # bool or enum → connected/disconnected
    ENABLED = "enabled"  # bool: charging allowed (read back of `enable`)
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
    APPLIED_CURRENT = "applied_current"
    SERIAL = "serial"
    FIRMWARE = "firmware"
    ERROR = "error"
    MAX_HW_CURRENT = "max_hw_current"
    # writes
    SET_CURRENT = "set_current"
    ENABLE = "enable"
    SET_PHASES = "set_phases"
    SWITCH = "switch"  # on/off relay (switch-socket chargers, Shelly/Tasmota)


WRITE_POINTS = {PointName.SET_CURRENT, PointName.ENABLE, PointName.SET_PHASES, PointName.SWITCH}
TEMPLATE_KEYS = {"value", "value_int", "value_bool", "onoff"}
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
PATH_RE = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_\-]*|\[\d+\])*$")

Parse = Literal["json", "raw", "number", "bool"]


def enum_key(value: Any) -> str:
    """The canonical text of a raw value as an enum key: 1, 1.0 and "1" are the same key; true → "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PointName
    access: Literal["r", "w"] = "r"
    topic: str = Field(min_length=1)
    parse: Parse = "json"
    path: str | None = None
    scale: float = 1.0
    unit: str | None = None
    enum: dict[str, str] | None = None  # raw (canonical text) → vocabulary value
    enum_write: dict[str, Any] | None = None  # engineering value (canonical text) → raw value for the template
    template: str = "{value}"
    min: float | None = None
    max: float | None = None
    off_value: float | None = None  # raw value that means "stop" (WARP current 0)
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    stale_after_s: float | None = Field(default=None, gt=0)
    confidence: Literal["P", "M", "I"] | None = None
    source: str | None = None

    @field_validator("enum", "enum_write", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {enum_key(k): v for k, v in value.items()}
        return value

    @field_validator("path")
    @classmethod
    def _path_subset(cls, value: str | None) -> str | None:
        if value is not None and not PATH_RE.match(value):
            raise ValueError("JSON path supports only $, .key and [index], e.g. $.meter.power or $[11]")
        return value

    @field_validator("scale")
    @classmethod
    def _scale_nonzero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("scale must not be 0 (engineering = raw × scale; writes divide by it)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        writable = self.name in WRITE_POINTS
        if writable and self.access != "w":
            raise ValueError(f"{self.name.value} is a command point: set access: w")
        if not writable and self.access == "w":
            raise ValueError(f"{self.name.value} is a read point; command points are {sorted(WRITE_POINTS)}")
        if self.path is not None and self.parse != "json":
            raise ValueError("path needs parse: json")
        return self


class Liveness(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    max_age_s: float = Field(gt=0)
    offline_payloads: tuple[str, ...] = ()  # e.g. Tasmota LWT "Offline"


class KeepAliveSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    payload: str
    interval_s: float = Field(gt=0)
    qos: Literal[0, 1, 2] = 1


class Defaults(BaseModel):
    """Electrical facts the firmware does not publish; the charger options can override them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phases: Literal[1, 2, 3] = 3
    min_current_a: float = Field(default=6.0, ge=0)
    max_current_a: float = Field(default=16.0, gt=0)
    current_resolution_a: float = Field(default=1.0, gt=0)
    phase_switching: bool = False


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: str
    model: str
    protocol: Literal["mqtt"] = "mqtt"
    role: Literal["charger", "meter"] = "charger"
    variables: dict[str, str] = Field(default_factory=dict)
    required_variables: tuple[str, ...] = ()
    stale_after_s: float = Field(default=60.0, gt=0)
    min_write_interval_s: float = Field(default=0.0, ge=0)
    # switch-socket chargers (a relay, no current control): set defaults.min_current_a = max_current_a = the
    # fixed current so any lower limit switches off; after switching off wait this long before switching on
    # again (protects the EV from relay chatter; switching off is never delayed)
    min_off_s: float = Field(default=300.0, ge=0)
    liveness: Liveness | None = None
    keepalive: KeepAliveSpec | None = None
    defaults: Defaults = Defaults()
    points: tuple[Point, ...] = Field(min_length=1)
    notes: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Mapping:
        known = set(self.variables) | set(self.required_variables)
        seen: set[PointName] = set()
        for i, point in enumerate(self.points):
            if point.name in seen:
                raise ValueError(f"points[{i}]: point {point.name.value} is defined twice")
            seen.add(point.name)
            for name in PLACEHOLDER.findall(point.topic):
                if name not in known:
                    raise ValueError(f"points[{i}].topic: unknown placeholder {{{name}}} (variables: {sorted(known)})")
            for name in PLACEHOLDER.findall(point.template):
                if name not in known | TEMPLATE_KEYS:
                    raise ValueError(
                        f"points[{i}].template: unknown placeholder {{{name}}} "
                        f"(use {sorted(TEMPLATE_KEYS)} or a variable)"
                    )
        if self.role == "charger" and not seen & {PointName.SET_CURRENT, PointName.ENABLE, PointName.SWITCH}:
            raise ValueError("a charger mapping needs a command point (set_current, enable or switch)")
        return self

    def point(self, name: PointName) -> Point | None:
        for p in self.points:
            if p.name == name:
                return p
        return None


def bundled_mapping_dir() -> Path:
    """Mappings shipped in the wheel; falls back to the source tree in editable installs."""
    packaged = Path(str(resources.files("bridge"))) / "_data" / "mappings" / "mqtt"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "mappings" / "mqtt"


def available_mappings() -> list[str]:
    return sorted(p.stem for p in bundled_mapping_dir().glob("*.yaml"))


def resolve_mapping_path(name_or_path: str, extra_dirs: tuple[Path, ...] = ()) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    for directory in (*extra_dirs, bundled_mapping_dir()):
        path = directory / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    close = difflib.get_close_matches(name_or_path, available_mappings(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (bundled: {', '.join(available_mappings())})"
    raise MappingError(f"unknown MQTT mapping {name_or_path!r}{hint}", location=name_or_path)


@cache
def _load(path: Path) -> Mapping:
    text = path.read_text(encoding="utf-8")
    doc = load_positioned(text, str(path))
    try:
        return Mapping.model_validate(doc.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        nested = re.match(r"^(points\[(\d+)\](?:\.(\w+))?): ", message)
        if nested:  # a cross-field check names its own position
            loc = ("points", int(nested.group(2)), *((nested.group(3),) if nested.group(3) else ()))
            message = message[nested.end() :]
        raise MappingError(message, location=doc.locate(loc), field=format_path(loc)) from None


def load_mapping(name_or_path: str, extra_dirs: tuple[Path, ...] = ()) -> Mapping:
    """Load and validate one mapping by bundled name (`goe`) or path; cached per file."""
    return _load(resolve_mapping_path(name_or_path, extra_dirs).resolve())


def mapping_schema() -> dict[str, Any]:
    """The JSON Schema of mapping files (written to mappings/mqtt.schema.json)."""
    schema = Mapping.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "evbridge MQTT charger mapping"
    return schema
