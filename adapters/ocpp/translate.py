"""Pure translation of OCPP messages into the canonical model (no handlers, no sockets).

Values arrive in many shapes (strings in 1.6, numbers in 2.0.1, kW or W, unit
multipliers, empty strings when idle, SoC in the wrong unit); everything ends
as SI values or `None` ("unknown", never 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.model import ChargingState, ManufacturerInformation

PHASES = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}


def manufacturer_from_boot(version: str, payload: dict[str, Any]) -> ManufacturerInformation:
    """BootNotification → Manufacturer_Information (identity)."""
    if version == "1.6":
        return ManufacturerInformation(
            vendor=payload.get("chargePointVendor"),
            model=payload.get("chargePointModel"),
            serial=payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
            firmware=payload.get("firmwareVersion"),
        )
    station = payload.get("chargingStation", {})
    return ManufacturerInformation(
        vendor=station.get("vendorName"),
        model=station.get("model"),
        serial=station.get("serialNumber"),
        firmware=station.get("firmwareVersion"),
    )


@dataclass(frozen=True)
class StatusUpdate:
    charging_state: ChargingState
    ev_connected: bool | None
    error_code: str | None = None
    available: bool = True


_STATUS_16: dict[str, tuple[ChargingState, bool | None]] = {
    "Available": (ChargingState.IDLE, False),
    "Preparing": (ChargingState.IDLE, True),
    "Charging": (ChargingState.CHARGING, True),
    "SuspendedEV": (ChargingState.SUSPENDED_EV, True),
    "SuspendedEVSE": (ChargingState.SUSPENDED_EVSE, True),
    "Finishing": (ChargingState.FINISHED, True),
    "Reserved": (ChargingState.IDLE, False),
    "Unavailable": (ChargingState.IDLE, None),
    "Faulted": (ChargingState.FAULT, None),
}


def status_16(payload: dict[str, Any]) -> StatusUpdate:
    """1.6 StatusNotification → charging state, EV connected, error code."""
    state, connected = _STATUS_16.get(payload.get("status", ""), (ChargingState.UNKNOWN, None))
    code = payload.get("errorCode")
    vendor_code = payload.get("vendorErrorCode")
    error = None if code in (None, "NoError") else (f"{code}:{vendor_code}" if vendor_code else code)
    return StatusUpdate(state, connected, error, available=payload.get("status") != "Unavailable")


def connector_status_201(status: str) -> StatusUpdate:
    """2.0.1 connectorStatus (StatusNotification / NotifyEvent AvailabilityState)."""
    if status == "Occupied":
        return StatusUpdate(ChargingState.IDLE, True)
    if status == "Faulted":
        return StatusUpdate(ChargingState.FAULT, None, "Faulted")
    if status == "Unavailable":
        return StatusUpdate(ChargingState.IDLE, None, available=False)
    return StatusUpdate(ChargingState.IDLE, False)


_CHARGING_201 = {
    "Charging": ChargingState.CHARGING,
    "EVConnected": ChargingState.IDLE,
    "SuspendedEV": ChargingState.SUSPENDED_EV,
    "SuspendedEVSE": ChargingState.SUSPENDED_EVSE,
    "Idle": ChargingState.IDLE,
}


def charging_state_201(value: str | None) -> ChargingState | None:
    return _CHARGING_201.get(value or "")


@dataclass
class MeterReading:
    """What one MeterValues/TransactionEvent sample set said; absent values stay None."""

    power_w: float | None = None
    energy_wh: float | None = None
    current_a: list[float | None] = field(default_factory=lambda: [None, None, None])
    voltage_v: list[float | None] = field(default_factory=lambda: [None, None, None])
    current_offered_a: float | None = None
    power_offered_w: float | None = None
    soc_pct: float | None = None

    @property
    def max_current_a(self) -> float | None:
        known = [c for c in self.current_a if c is not None]
        return max(known) if known else None


_SCALE = {"W": 1.0, "kW": 1000.0, "Wh": 1.0, "kWh": 1000.0, "A": 1.0, "V": 1.0, "Percent": 1.0}


def _number(sample: dict[str, Any], version: str) -> tuple[float, str | None] | None:
    raw = sample.get("value")
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            return None  # idle boxes send empty strings (Amperfied)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if version == "1.6":
        unit = sample.get("unit")
    else:
        uom = sample.get("unitOfMeasure") or {}
        unit = uom.get("unit")
        value *= 10 ** int(uom.get("multiplier", 0))
    return value, unit


def meter_reading(version: str, meter_values: list[dict[str, Any]]) -> MeterReading:
    """MeterValues/TransactionEvent `meterValue[]` → one reading (the latest sample of each measurand wins)."""
    reading = MeterReading()
    for entry in meter_values:
        for sample in entry.get("sampledValue", []):
            parsed = _number(sample, version)
            if parsed is None:
                continue
            value, unit = parsed
            measurand = sample.get("measurand", "Energy.Active.Import.Register")
            scale = _SCALE.get(unit or "", 1.0)
            phase = PHASES.get(sample.get("phase", ""))
            if measurand == "Energy.Active.Import.Register":
                reading.energy_wh = value * (scale if unit else 1.0)
            elif measurand == "Power.Active.Import" and phase is None:
                reading.power_w = value * scale
            elif measurand == "Current.Import":
                for i in [phase] if phase is not None else [0, 1, 2]:
                    reading.current_a[i] = value
            elif measurand == "Voltage":
                for i in [phase] if phase is not None else [0, 1, 2]:
                    reading.voltage_v[i] = value
            elif measurand == "Current.Offered":
                reading.current_offered_a = value
            elif measurand == "Power.Offered":
                reading.power_offered_w = value * scale
            elif measurand == "SoC" and unit in (None, "Percent") and 0 <= value <= 100:
                reading.soc_pct = value  # SoC "in V" (Amperfied) is ignored
    return reading
