"""Proxy mode, pure part: combine the upstream CSMS's profiles with the bridge's obligation.

The charger must get min(upstream's wish, bridge's obligation).  The bridge
therefore (a) evaluates the upstream profiles it forwarded to find the limit
the upstream wants now, and lowers its own live profile to it, and (b)
forwards every upstream profile clamped to the obligation, with a `validTo`
inside the bridge's refresh window and moved off the bridge's fallback layer,
so that when the bridge dies the charger still falls back to the failsafe.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from adapters.ocpp.profiles import Version, clamp_profile, iso, parse_time, schedules_of

_MAX = ("ChargePointMaxProfile", "ChargingStationMaxProfile")
_RECURRENCE = {"Daily": 86400.0, "Weekly": 604800.0}


def _period_limit_a(
    profile: dict[str, Any], version: Version, now: datetime, voltage_v: float, phases: int
) -> float | None:
    """The limit (A) of one profile at `now`, or None when it does not apply now."""
    valid_from, valid_to = profile.get("validFrom"), profile.get("validTo")
    if valid_from and now < parse_time(valid_from):
        return None
    if valid_to and now >= parse_time(valid_to):
        return None
    schedules = schedules_of(version, profile)
    if not schedules:
        return None
    sched = schedules[0]
    kind = profile.get("chargingProfileKind")
    start = sched.get("startSchedule")
    offset = 0.0  # Relative: the transaction start is not known here; its first period is the conservative choice
    if kind in ("Absolute", "Recurring") and start:
        offset = (now - parse_time(start)).total_seconds()
        if kind == "Recurring":
            offset %= _RECURRENCE.get(profile.get("recurrencyKind", "Daily"), 86400.0)
        if offset < 0:
            return None
    duration = sched.get("duration")
    if duration is not None and offset >= float(duration):
        return None
    limit = None
    for period in sorted(sched.get("chargingSchedulePeriod", []), key=lambda p: float(p.get("startPeriod", 0))):
        if float(period.get("startPeriod", 0)) <= offset:
            n = int(period.get("numberPhases", phases))
            value = float(period["limit"])
            limit = value if sched.get("chargingRateUnit") == "A" else value / (voltage_v * n)
    return limit


def wanted_current_a(
    version: Version,
    entries: list[tuple[int, dict[str, Any]]],
    connector_id: int,
    now: datetime,
    *,
    tx_active: bool,
    voltage_v: float,
    phases: int,
) -> float | None:
    """What the upstream's profiles allow on `connector_id` now (None: they do not limit it)."""
    best: dict[str, tuple[tuple[int, int], float]] = {}
    for conn, profile in entries:
        if conn not in (0, connector_id):
            continue
        purpose = str(profile.get("chargingProfilePurpose"))
        if purpose == "TxProfile" and not tx_active:
            continue
        limit = _period_limit_a(profile, version, now, voltage_v, phases)
        if limit is None:
            continue
        rank = (int(profile.get("stackLevel", 0)), 1 if conn == connector_id else 0)
        group = "max" if purpose in _MAX else purpose
        if group not in best or rank > best[group][0]:
            best[group] = (rank, limit)
    tx = best.get("TxProfile") or best.get("TxDefaultProfile")
    limits = [v[1] for v in (best.get("max"), tx) if v is not None]
    return min(limits) if limits else None


def forwardable(
    version: Version,
    profile: dict[str, Any],
    *,
    obligation_a: float,
    voltage_v: float,
    now: datetime,
    validity_s: float | None,
    fallback_purpose: str,
    fallback_stack: int,
    control: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The upstream profile as the charger may get it: clamped, bounded in time, off the bridge's own layers.

    Moving it off the bridge's live layer (`control` = purpose, stack level) is safe in both directions:
    the live profile already carries min(obligation, upstream wish) and the forwarded one is clamped.
    """
    out = clamp_profile(version, profile, obligation_a, voltage_v)
    purpose, stack = out.get("chargingProfilePurpose"), int(out.get("stackLevel", 0))
    if validity_s is not None:
        limit_to = now + timedelta(seconds=validity_s)
        current = profile.get("validTo")
        if current is None or parse_time(current) > limit_to:
            out["validTo"] = iso(limit_to)
        if purpose == fallback_purpose and stack <= fallback_stack:
            stack = fallback_stack + 1  # never replace the bridge's failsafe layer
    if control is not None and (purpose, stack) == control:
        lower = stack - 1
        if lower >= 0 and not (validity_s is not None and purpose == fallback_purpose and lower <= fallback_stack):
            stack = lower
    out["stackLevel"] = stack
    return out
