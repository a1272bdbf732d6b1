"""UCF Identification and Manufacturer_Information."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ManufacturerInformation(BaseModel):
    """What DeviceClassification manufacturerData carries (EVSECC-01)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    hardware_revision: str | None = None
    brand: str | None = None


class IdentificationType(StrEnum):
    """SPINE identificationType values the bridge can fill (EVCC-06)."""

    RFID = "userRfidTag"
    EUI48 = "eui48"
    EUI64 = "eui64"


class Identification(BaseModel):
    """One identification of the EV or user (RFID UID uppercase hex, no separators)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IdentificationType
    value: str
