"""Pure charging-profile arithmetic and wire payloads for OCPP 1.6J and 2.0.1.

Command → limit in the unit the charger takes (always rounded *down*, never
above the obligation), the two-layer failsafe (a persistent low-stack profile
with the safe current plus a live profile with `validTo`), composite-schedule
parsing for verification, and clamping of an upstream CSMS's profile in proxy
mode.  No I/O, no clock reads: `now` is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from adapters.ocpp.vendor import Purpose

Version = Literal["1.6", "2.0.1"]
Unit = Literal["A", "W"]

FALLBACK_ID_BASE = 1000
CONTROL_ID_BASE = 2000
TX_ID_BASE = 3000
START_SKEW = timedelta(seconds=60)  # startSchedule in the past: a fast CP clock still applies the profile


def iso(dt: datetime) -> str:
    """UTC timestamp the way chargers parse it best: `2026-01-01T00:00:00Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def floor_to(value: float, decimals: int) -> float:
    """Round toward zero at `decimals` places (the safe side for a limit); 1e-9 absorbs float noise."""
    scale = 10**decimals
    return math.floor(value * scale + 1e-9) / scale


@dataclass(frozen=True)
class LimitValue:
    """One limit as it goes on the wire."""

    unit: Unit
    limit: float
    phases: int

    def as_current(self, voltage_v: float) -> float:
        return self.limit if self.unit == "A" else self.limit / (voltage_v * self.phases)


def command_limit(
    *,
    pause: bool,
    current_a: float,
    power_w: float | None,
    unit: Unit,
    phases: int,
    voltage_v: float,
    min_current_a: float,
    decimals: int = 1,
) -> LimitValue:
    """The wire limit for a command: 0 when paused or below the minimum current, else rounded down."""
    if pause:
        return LimitValue(unit, 0.0, phases)
    amps = current_a
    if power_w is not None:
        by_power = power_w / (voltage_v * phases)
        amps = min(amps, by_power) if current_a > 0 else by_power
    if amps + 1e-9 < min_current_a:
        return LimitValue(unit, 0.0, phases)  # below the minimum: pause, never round up
    if unit == "A":
        return LimitValue("A", floor_to(amps, decimals), phases)
    caps = [power_w] if power_w is not None else []
    if current_a > 0 or power_w is None:
        caps.append(current_a * voltage_v * phases)
    return LimitValue("W", floor_to(min(caps), 0), phases)


def purpose_name(purpose: Purpose, version: Version) -> str:
    if purpose is Purpose.CHARGE_POINT_MAX and version == "2.0.1":
        return "ChargingStationMaxProfile"
    return purpose.value


def build_profile(
    version: Version,
    *,
    profile_id: int,
    purpose: Purpose,
    stack_level: int,
    kind: Literal["Absolute", "Relative"],
    value: LimitValue,
    now: datetime,
    valid_to: datetime | None = None,
    transaction_id: str | int | None = None,
    number_phases: bool = True,
) -> dict[str, Any]:
    """A chargingProfile object (camelCase) for `SetChargingProfile`."""
    period: dict[str, Any] = {"startPeriod": 0, "limit": value.limit}
    if number_phases:
        period["numberPhases"] = value.phases
    schedule: dict[str, Any] = {"chargingRateUnit": value.unit, "chargingSchedulePeriod": [period]}
    if kind == "Absolute":
        schedule["startSchedule"] = iso(now - START_SKEW)
    profile: dict[str, Any] = {
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose_name(purpose, version),
        "chargingProfileKind": kind,
    }
    if valid_to is not None:
        profile["validTo"] = iso(valid_to)
    if version == "1.6":
        profile["chargingProfileId"] = profile_id
        if transaction_id is not None and purpose is Purpose.TX:
            profile["transactionId"] = int(transaction_id)
        profile["chargingSchedule"] = schedule
    else:
        profile["id"] = profile_id
        if transaction_id is not None and purpose is Purpose.TX:
            profile["transactionId"] = str(transaction_id)
        schedule["id"] = profile_id
        profile["chargingSchedule"] = [schedule]
    return profile


def set_profile_payload(version: Version, connector_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    if version == "1.6":
        return {"connectorId": connector_id, "csChargingProfiles": profile}
    return {"evseId": connector_id, "chargingProfile": profile}


def composite_request(version: Version, connector_id: int, unit: Unit, duration_s: int = 60) -> dict[str, Any]:
    if version == "1.6":
        return {"connectorId": connector_id, "duration": duration_s, "chargingRateUnit": unit}
    return {"evseId": connector_id, "duration": duration_s, "chargingRateUnit": unit}


def composite_first_limit(version: Version, payload: dict[str, Any]) -> LimitValue | None:
    """The limit in force now according to a GetCompositeSchedule answer (None: no schedule/rejected)."""
    if payload.get("status") != "Accepted":
        return None
    schedule = payload.get("chargingSchedule") if version == "1.6" else payload.get("schedule")
    if not isinstance(schedule, dict):
        return None
    periods = schedule.get("chargingSchedulePeriod") or []
    if not periods:
        return None
    first = min(periods, key=lambda p: float(p.get("startPeriod", 0)))
    unit: Unit = "W" if schedule.get("chargingRateUnit") == "W" else "A"
    return LimitValue(unit, float(first["limit"]), int(first.get("numberPhases", 3)))


def schedules_of(version: Version, profile: dict[str, Any]) -> list[dict[str, Any]]:
    sched = profile.get("chargingSchedule")
    if version == "1.6":
        return [sched] if isinstance(sched, dict) else []
    return [s for s in sched or [] if isinstance(s, dict)]


def clamp_profile(version: Version, profile: dict[str, Any], max_current_a: float, voltage_v: float) -> dict[str, Any]:
    """A copy of an upstream profile whose every period stays at or below the bridge's obligation."""
    clamped = dict(profile)
    new_schedules = []
    for sched in schedules_of(version, profile):
        unit = sched.get("chargingRateUnit", "A")
        periods = []
        for period in sched.get("chargingSchedulePeriod", []):
            phases = int(period.get("numberPhases", 3))
            cap = floor_to(max_current_a, 1) if unit == "A" else floor_to(max_current_a * voltage_v * phases, 0)
            periods.append({**period, "limit": min(float(period["limit"]), cap)})
        new_schedules.append({**sched, "chargingSchedulePeriod": periods})
    clamped["chargingSchedule"] = new_schedules[0] if version == "1.6" else new_schedules
    return clamped


def profile_id_of(version: Version, profile: dict[str, Any]) -> int:
    return int(profile["chargingProfileId"] if version == "1.6" else profile["id"])
