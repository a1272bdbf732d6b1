"""UCF Device_State, EV_Connected and the charging state of a charge point."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class OperatingState(StrEnum):
    """SPINE DeviceDiagnosis operatingState values we use (EVCC-09, EVSECC-02)."""

    NORMAL = "normalOperation"
    STANDBY = "standby"
    FAILURE = "failure"
    FINISHED = "finished"
    SERVICE = "serviceNeeded"
    OFF = "off"


class ChargingState(StrEnum):
    """What the charge point is doing (use-cases.md §0.4)."""

    UNKNOWN = "unknown"
    IDLE = "idle"  # no EV or EV not yet charging
    CHARGING = "charging"
    SUSPENDED_EV = "suspended_ev"  # EV does not take power (full, timer)
    SUSPENDED_EVSE = "suspended_evse"  # charger withholds power (paused, limit below minimum)
    FINISHED = "finished"
    FAULT = "fault"


class DeviceState(BaseModel):
    """Device_State: operating state plus the charger's own error code (EVSECC-03)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operating_state: OperatingState = OperatingState.STANDBY
    last_error_code: str | None = None

    @staticmethod
    def from_charging(state: ChargingState, error_code: str | None = None) -> DeviceState:
        """The EVCC-09 mapping from charging state to operatingState."""
        mapping = {
            ChargingState.CHARGING: OperatingState.NORMAL,
            ChargingState.SUSPENDED_EV: OperatingState.STANDBY,
            ChargingState.SUSPENDED_EVSE: OperatingState.STANDBY,
            ChargingState.IDLE: OperatingState.STANDBY,
            ChargingState.UNKNOWN: OperatingState.STANDBY,
            ChargingState.FINISHED: OperatingState.FINISHED,
            ChargingState.FAULT: OperatingState.FAILURE,
        }
        return DeviceState(operating_state=mapping[state], last_error_code=error_code)


class CommunicationStandard(StrEnum):
    """DeviceConfiguration communicationsStandard (EVCC-03)."""

    IEC61851 = "iec61851"
    ISO15118_2_ED1 = "iso15118-2ed1"
    ISO15118_2_ED2 = "iso15118-2ed2"
