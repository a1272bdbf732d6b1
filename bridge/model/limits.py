"""UCF Power_Limit/Load_Control, Heartbeat, Device_Configuration (failsafe values)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.model.units import Amperes, NonNegativeWatts, Seconds, UtcDateTime

FAILSAFE_DURATION_MIN = timedelta(hours=2)
FAILSAFE_DURATION_MAX = timedelta(hours=24)
DEFAULT_FAILSAFE_LIMIT_W = 4200.0

#: German §14a: power that must stay available per controllable device, and the
#: simultaneity factor (GZF) by number of devices; 9 stands for "9 or more".
P14A_DEVICE_MINIMUM_W = 4200.0
P14A_DEFAULT_GZF: dict[int, float] = {2: 0.80, 3: 0.75, 4: 0.70, 5: 0.65, 6: 0.60, 7: 0.55, 8: 0.50, 9: 0.45}


class LimitSource(StrEnum):
    """Who imposed a constraint; also names the binding constraint of a Command."""

    HARDWARE = "hardware"  # charger rating, cable, installer limit
    LPC = "lpc"
    LPC_FAILSAFE = "lpc_failsafe"
    P14A = "p14a"
    OPEV = "opev"
    GROUP = "group"
    OSCEV = "oscev"
    CEVC = "cevc"
    LOCAL = "local"  # a local (MQTT/REST) user limit, lower priority than LPC
    NONE = "none"


class LimitCategory(StrEnum):
    """Obligations always win over recommendations (CMB-02)."""

    OBLIGATION = "obligation"
    RECOMMENDATION = "recommendation"


class PowerLimit(BaseModel):
    """Power_Limit: an active power consumption limit (LPC APCL), W >= 0."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value_w: NonNegativeWatts
    active: bool = True
    changeable: bool = True
    duration_s: Seconds | None = None  # None: no expiry (APCL_DUR_02)
    received_at: UtcDateTime | None = None


class PhaseCurrentLimit(BaseModel):
    """Load_Control per phase in A (OPEV obligation, OSCEV recommendation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: LimitSource
    category: LimitCategory
    per_phase_a: tuple[Amperes | None, Amperes | None, Amperes | None]
    active: bool = True


class FailsafeSettings(BaseModel):
    """Device_Configuration LPC failsafe values; persisted (LPC-09)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    consumption_limit_w: NonNegativeWatts = DEFAULT_FAILSAFE_LIMIT_W
    duration_minimum_s: Seconds = FAILSAFE_DURATION_MIN.total_seconds()

    @field_validator("duration_minimum_s")
    @classmethod
    def _duration_in_range(cls, value: float) -> float:
        lo, hi = FAILSAFE_DURATION_MIN.total_seconds(), FAILSAFE_DURATION_MAX.total_seconds()
        if not lo <= value <= hi:
            raise ValueError(f"failsafe duration minimum must be within {lo:.0f}..{hi:.0f} s (2 h..24 h)")
        return value


class Heartbeat(BaseModel):
    """UCF Heartbeat as received from or sent to a peer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    counter: int = Field(ge=0)
    timestamp: UtcDateTime | None = None
    timeout_s: Seconds | None = None


class OperationMode(StrEnum):
    """UCF Operation_Mode (basic charging, BID-02)."""

    CHARGE = "charge"
    STANDBY = "standby"
    DISCHARGE = "discharge"


class Setpoint(BaseModel):
    """UCF Setpoint: a charging power request (BID-03); positive = charge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value_w: float
    active: bool = True
