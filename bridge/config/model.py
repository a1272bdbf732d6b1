"""The configuration file as pydantic models: every section its own model, unknown keys rejected.

Adapter options (`chargers[].adapter`) are checked by the adapter's own
factory (see `bridge.config.loader`), so a new adapter needs no change here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from bridge.config.secrets import Secret
from bridge.model import FAILSAFE_DURATION_MAX, FAILSAFE_DURATION_MIN, P14A_DEFAULT_GZF, P14A_DEVICE_MINIMUM_W

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> Any:
    """Seconds as a number, or an ISO-8601 duration such as PT2H (what SPINE uses)."""
    if isinstance(value, str):
        match = _ISO_DURATION.match(value.strip())
        if not match or value.strip() in ("P", "PT"):
            raise ValueError(f"expected seconds or an ISO-8601 duration like PT2H, got {value!r}")
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    return value


_ISO_JSON = {"type": "string", "pattern": _ISO_DURATION.pattern, "description": "ISO-8601 duration, e.g. PT2H"}
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=0),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, _ISO_JSON]}),
]
FailsafeDuration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=FAILSAFE_DURATION_MIN.total_seconds(), le=FAILSAFE_DURATION_MAX.total_seconds()),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "minimum": FAILSAFE_DURATION_MIN.total_seconds(),
                    "maximum": FAILSAFE_DURATION_MAX.total_seconds(),
                },
                _ISO_JSON,
            ],
            "description": "seconds or ISO-8601 (PT2H); 2 to 24 hours",
        }
    ),
]
IDENTIFIER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
HOST_PORT_PATTERN = r"^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


class Section(BaseModel):
    # .inf/.nan are never a meaningful limit or timeout (an infinite failsafe limit is no limit at all)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML's yes/no/on/off are booleans; pydantic would take them as 1/0 for a number field."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            types = set(get_args(annotation)) or {annotation}
            if types & {int, float} and bool not in types:
                raise ValueError("expected a number, not a yes/no value")
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_subsections_are_defaults(cls, data: Any) -> Any:
        """`site:` with every line below commented out means "all defaults", not an error."""
        if not isinstance(data, dict):
            return data
        empty = [
            name
            for name, field in cls.model_fields.items()
            if name in data
            and data[name] is None
            and isinstance(field.annotation, type)
            and issubclass(field.annotation, Section)
        ]
        return {**data, **{name: {} for name in empty}} if empty else data


class P14aConfig(Section):
    enabled: bool = False
    floor: bool = False
    gzf: dict[int, float] = Field(default_factory=lambda: dict(P14A_DEFAULT_GZF))
    #: minimum power of every controllable device (SteuVE) behind the one §14a signal, e.g. [4200, 4200, 6000]
    device_minimums_w: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list)
    #: shorthand when every device has the standard 4.2 kW minimum: n devices → device_minimums_w = n × 4200
    steuve_count: int | None = Field(default=None, ge=1, le=1000)

    @model_validator(mode="after")
    def _count_to_minimums(self) -> P14aConfig:
        if self.steuve_count is None:
            return self
        if self.device_minimums_w and len(self.device_minimums_w) != self.steuve_count:
            raise ValueError(
                f"steuve_count {self.steuve_count} disagrees with the {len(self.device_minimums_w)} "
                "device_minimums_w entries (give one of them)"
            )
        if not self.device_minimums_w:
            object.__setattr__(self, "device_minimums_w", [P14A_DEVICE_MINIMUM_W] * self.steuve_count)
        return self


class SiteConfig(Section):
    name: str = "evbridge"
    nominal_voltage_v: float = Field(default=230.0, gt=0, le=480)
    state_dir: Path | None = None
    p14a: P14aConfig = P14aConfig()


class LpcConfig(Section):
    failsafe_limit_w: float = Field(default=4200.0, ge=0)
    failsafe_duration: FailsafeDuration = 7200.0
    heartbeat_timeout_s: float = Field(default=120.0, gt=0)
    init_timeout_s: float = Field(default=120.0, gt=0)
    recovery_grace_s: float = Field(default=120.0, gt=0)
    after_failsafe: Literal["stay", "autonomous"] = "stay"


class LpcOverride(Section):
    failsafe_limit_w: float | None = Field(default=None, ge=0)
    failsafe_duration: FailsafeDuration | None = None


class AllocatorConfig(Section):
    hysteresis_s: float = Field(default=30.0, ge=0)
    rotation_s: float = Field(default=900.0, gt=0)
    recalc_interval_s: float = Field(default=10.0, gt=0, le=10)


class ChargerEebus(Section):
    port: int | None = Field(default=None, ge=1, le=65535)


class ChargerConfig(Section):
    id: Identifier
    name: str | None = None
    adapter: dict[str, Any]
    poll_interval_s: float = Field(default=2.0, gt=0)
    lpc: LpcOverride = LpcOverride()
    eebus: ChargerEebus = ChargerEebus()

    @field_validator("adapter")
    @classmethod
    def _has_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("type"), str):
            raise ValueError("the adapter needs a 'type' (sim, modbus, ocpp, mqtt)")
        return value


class GroupConfig(Section):
    id: Identifier
    name: str | None = None
    chargers: list[Identifier] = Field(min_length=1)
    lpc: LpcOverride = LpcOverride()
    eebus: ChargerEebus = ChargerEebus()


class MdnsConfig(Section):
    enabled: bool = True
    interface: str | None = None


def _normalize_ski(value: Any) -> Any:
    if isinstance(value, str):
        ski = re.sub(r"[\s:\-]", "", value).lower()
        if not re.fullmatch(r"[0-9a-f]{40}", ski):
            raise ValueError("a SKI is 40 hex digits (spaces, colons and dashes allowed)")
        return ski
    return value


Ski = Annotated[str, BeforeValidator(_normalize_ski)]


class EebusConfig(Section):
    enabled: bool = True
    mode: Literal["per-charger", "group"] = "per-charger"
    port_base: int = Field(default=4712, ge=1, le=65000)
    bind: str = "0.0.0.0"
    trusted_skis: list[Ski] = Field(default_factory=list)
    brand: str = "evbridge"
    vendor_code: str = "evbridge"
    device_type: str = "ChargingStation"
    mdns: MdnsConfig = MdnsConfig()
    max_message_bytes: int = Field(default=1 << 20, ge=4096)
    connect_to: list[Annotated[str, Field(pattern=HOST_PORT_PATTERN)]] = Field(default_factory=list)


class MqttTls(Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class HaDiscovery(Section):
    enabled: bool = True
    prefix: str = "homeassistant"


class MqttConfig(Section):
    host: str
    port: int = Field(default=1883, ge=1, le=65535)
    tls: MqttTls | None = None
    username: str | None = None
    password: Secret | None = None
    client_id: str | None = None
    base_topic: str = "evbridge"
    ha_discovery: HaDiscovery = HaDiscovery()
    command_token: Secret | None = None


class ApiConfig(Section):
    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    token: Secret | None = None


class BridgeConfig(Section):
    """The whole file; cross-references (ids, groups) are checked by the loader with their positions."""

    site: SiteConfig = SiteConfig()
    lpc: LpcConfig = LpcConfig()
    allocator: AllocatorConfig = AllocatorConfig()
    chargers: list[ChargerConfig] = Field(min_length=1)
    groups: list[GroupConfig] = Field(default_factory=list)
    eebus: EebusConfig = EebusConfig()
    mqtt: MqttConfig | None = None
    api: ApiConfig = ApiConfig()
    #: wire-level charger simulators the bridge starts on loopback (demo, commissioning tests);
    #: each has a `type` found in the `evbridge.simulators` entry point group
    simulators: list[dict[str, Any]] = Field(default_factory=list)
