"""Per-vendor smart-charging strategy, loaded from `mappings/ocpp/<vendor>.yaml`.

A mapping says how a charger takes a limit (purpose, connector, unit, stack
level, kind, decimals, minimum current, phases), whether a failsafe layer can
be built from profile validity, and how to verify.  Errors carry file:line and
the field path, like the core's configuration errors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.errors import MappingError
from bridge.yamlpos import format_path, load_positioned


def _mappings_dir() -> Path:
    """The checkout's `mappings/`, or the copy the wheel ships under `bridge/_data/mappings`."""
    checkout = Path(__file__).resolve().parents[2] / "mappings"
    if (checkout / "ocpp.schema.json").is_file():
        return checkout
    return Path(str(resources.files("bridge") / "_data" / "mappings"))


MAPPINGS_DIR = _mappings_dir()
SCHEMA_PATH = MAPPINGS_DIR / "ocpp.schema.json"


class Purpose(StrEnum):
    CHARGE_POINT_MAX = "ChargePointMaxProfile"  # 2.0.1: ChargingStationMaxProfile
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Verify(StrEnum):
    COMPOSITE_AND_METER = "composite_and_meter"
    COMPOSITE = "composite"
    METER = "meter"
    NONE = "none"


class LimitStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: Purpose = Purpose.TX_DEFAULT
    unit: Literal["auto", "A", "W"] = "auto"  # auto: from ChargingScheduleAllowedChargingRateUnit
    stack_level: int | Literal["auto"] = "auto"  # auto: max(1, ChargeProfileMaxStackLevel)
    kind: Literal["Absolute", "Relative"] = "Absolute"
    decimals: int = Field(default=1, ge=0, le=1)
    min_current_a: float = Field(default=6.0, ge=0)
    number_phases: bool = True  # send numberPhases in each period
    transaction_id: bool = True  # include the transaction id in a TxProfile


class FailsafeStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    purpose: Purpose = Purpose.TX_DEFAULT
    stack_level: int = Field(default=0, ge=0)
    validity_s: float = Field(default=120.0, gt=0)  # validTo of the live (control) profile


class VerifyStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Verify = Verify.COMPOSITE_AND_METER
    retries: int = Field(default=1, ge=0, le=5)  # re-applications before "degraded"
    meter_grace_s: float = Field(default=15.0, ge=0)  # time the EV gets to follow a lower limit
    meter_tolerance_a: float = Field(default=1.0, ge=0)


class MeterStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    configure: bool = True
    measurands: tuple[str, ...] = (
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Current.Import",
        "Voltage",
        "Current.Offered",
        "SoC",
    )
    min_interval_s: int = Field(default=0, ge=0)


class VendorProfile(BaseModel):
    """One `mappings/ocpp/<vendor>.yaml` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: str
    description: str = ""
    limit: LimitStrategy = LimitStrategy()
    failsafe: FailsafeStrategy = FailsafeStrategy()
    verify: VerifyStrategy = VerifyStrategy()
    meter: MeterStrategy = MeterStrategy()


GENERIC = VendorProfile(vendor="generic", description="spec-conformant charge point")


def _schema() -> dict[str, object]:
    data: dict[str, object] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def parse_vendor_profile(text: str, source: str) -> VendorProfile:
    """Validate one mapping text against the JSON Schema and the model; one MappingError with file:line."""
    doc = load_positioned(text, source)
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(doc.data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        path = tuple(err.path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            path = (*path, extra[0]) if extra else path
        raise MappingError(err.message, location=doc.locate(path), field=format_path(path))
    try:
        return VendorProfile.model_validate(doc.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = tuple(first["loc"])
        raise MappingError(first["msg"], location=doc.locate(path), field=format_path(path)) from None


def load_vendor_profile(name: str, search: Sequence[Path] = ()) -> VendorProfile:
    """Find `<name>.yaml` in `search` dirs (their `ocpp/` subdir too) and the bundled mappings."""
    candidates = [d / f"{name}.yaml" for d in search] + [d / "ocpp" / f"{name}.yaml" for d in search]
    candidates.append(MAPPINGS_DIR / "ocpp" / f"{name}.yaml")
    for path in candidates:
        if path.is_file():
            return parse_vendor_profile(path.read_text(encoding="utf-8"), str(path))
    if name == "generic":
        return GENERIC
    raise MappingError(f"no OCPP vendor profile {name!r} (looked for {', '.join(str(c) for c in candidates)})")
