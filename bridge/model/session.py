"""UCF Session_Summary and the energy-planning data of CEVC."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bridge.model.identity import Identification
from bridge.model.units import NonNegativeWatts, Seconds, UtcDateTime, WattHours


class SessionSummary(BaseModel):
    """One charging session (EVCS-01): meter delta since plug-in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    started_at: UtcDateTime
    ended_at: UtcDateTime | None = None
    energy_start_wh: WattHours | None = None
    energy_wh: WattHours = 0.0
    identifications: tuple[Identification, ...] = ()


class CurveSlot(BaseModel):
    """One slot of a time series: from `start_s` (relative) for `duration_s`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_s: Seconds
    duration_s: Seconds = Field(gt=0)
    value_w: NonNegativeWatts


class MaximumPowerLimitationCurve(BaseModel):
    """UCF Maximum_Power_Limitation_Curve (CEVC sc.2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slots: tuple[CurveSlot, ...]
    received_at: UtcDateTime | None = None


class ConsumptionCurve(BaseModel):
    """UCF Consumption_Curve: the charging plan the charger publishes (CEVC sc.4)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slots: tuple[CurveSlot, ...]


class IncentiveTier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    boundaries_w: tuple[float, ...] = Field(max_length=3)
    incentives: tuple[tuple[str, float], ...] = Field(min_length=1, max_length=3)


class IncentiveSlot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start_s: Seconds
    duration_s: Seconds = Field(gt=0)
    tiers: tuple[IncentiveTier, ...] = Field(min_length=1, max_length=3)


class IncentiveTable(BaseModel):
    """UCF Incentive_Table (CEVC sc.3): one tariff, 1–3 tiers (CEVC-08)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str | None = None
    slots: tuple[IncentiveSlot, ...]
