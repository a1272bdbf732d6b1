"""Pure charging-profile store of a simulated charge point: stacking and composite schedules.

Semantics (OCPP 1.6 §3.13 / 2.0.1 K): within a purpose the highest stack level
that is valid now wins (a connector's own profile before connector 0's);
the TxProfile replaces the TxDefaultProfile while a transaction runs; the
result is min(ChargePointMax, Tx/TxDefault).  validFrom/validTo and the
schedule's start/duration bound each profile.  Limits are compared in amps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX = ("ChargePointMaxProfile", "ChargingStationMaxProfile")


@dataclass(frozen=True)
class Profile:
    profile_id: int
    connector_id: int
    stack_level: int
    purpose: str
    kind: str
    unit: str
    periods: tuple[tuple[float, float, int], ...]  # (startPeriod s, limit, numberPhases)
    start: datetime | None = None
    duration_s: float | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None
    installed_at: datetime | None = None


class ProfileStore:
    """Installed profiles of one charge point."""

    def __init__(self, voltage_v: float = 230.0) -> None:
        self.voltage_v = voltage_v
        self.profiles: dict[int, Profile] = {}

    def install(self, profile: Profile) -> None:
        """Same id replaces; same purpose + stack level + connector replaces too."""
        for pid, old in list(self.profiles.items()):
            if pid == profile.profile_id or (
                old.purpose == profile.purpose
                and old.stack_level == profile.stack_level
                and old.connector_id == profile.connector_id
            ):
                del self.profiles[pid]
        self.profiles[profile.profile_id] = profile

    def clear(self, profile_id: int | None = None, connector_id: int | None = None, purpose: str | None = None) -> int:
        gone = [
            pid
            for pid, p in self.profiles.items()
            if (profile_id is None or pid == profile_id)
            and (connector_id is None or p.connector_id == connector_id)
            and (purpose is None or p.purpose == purpose)
        ]
        for pid in gone:
            del self.profiles[pid]
        return len(gone)

    def end_transaction(self, connector_id: int) -> None:
        for pid, p in list(self.profiles.items()):
            if p.purpose == "TxProfile" and p.connector_id == connector_id:
                del self.profiles[pid]

    def _amps(self, profile: Profile, limit: float, phases: int) -> float:
        return limit if profile.unit == "A" else limit / (self.voltage_v * phases)

    def _limit_of(self, profile: Profile, now: datetime, tx_start: datetime | None) -> float | None:
        if profile.valid_from is not None and now < profile.valid_from:
            return None
        if profile.valid_to is not None and now >= profile.valid_to:
            return None
        if profile.kind == "Relative":
            start = tx_start or profile.installed_at or now
        else:
            start = profile.start or profile.installed_at or now
        offset = (now - start).total_seconds()
        if offset < 0 or (profile.duration_s is not None and offset >= profile.duration_s):
            return None
        current = None
        for begin, limit, phases in sorted(profile.periods):
            if begin <= offset:
                current = self._amps(profile, limit, phases)
        return current

    def _winner(
        self, purposes: tuple[str, ...], connector_id: int, now: datetime, tx_start: datetime | None
    ) -> float | None:
        best: tuple[int, int, float] | None = None
        for p in self.profiles.values():
            if p.purpose not in purposes or p.connector_id not in (0, connector_id):
                continue
            limit = self._limit_of(p, now, tx_start)
            if limit is None:
                continue
            rank = (p.stack_level, 1 if p.connector_id == connector_id else 0)
            if best is None or rank > best[:2]:
                best = (*rank, limit)
        return None if best is None else best[2]

    def limit_at(
        self, connector_id: int, now: datetime, *, tx_start: datetime | None = None, tx_id: str | None = None
    ) -> float | None:
        """Composite limit in A at `now` (None: no profile limits this connector)."""
        cap = self._winner(MAX, 0, now, tx_start)
        tx = self._winner(("TxProfile",), connector_id, now, tx_start) if tx_id is not None else None
        if tx is None:
            tx = self._winner(("TxDefaultProfile",), connector_id, now, tx_start)
        limits = [x for x in (cap, tx) if x is not None]
        return min(limits) if limits else None

    def composite(
        self,
        connector_id: int,
        now: datetime,
        duration_s: int,
        *,
        tx_start: datetime | None = None,
        tx_id: str | None = None,
    ) -> list[tuple[int, float | None]]:
        """(offset s, limit A) change points over the next `duration_s` seconds."""
        points = {0}
        for p in self.profiles.values():
            for t in (p.valid_from, p.valid_to):
                if t is not None and now < t < now + timedelta(seconds=duration_s):
                    points.add(int((t - now).total_seconds()))
        out: list[tuple[int, float | None]] = []
        for offset in sorted(points):
            limit = self.limit_at(connector_id, now + timedelta(seconds=offset), tx_start=tx_start, tx_id=tx_id)
            if not out or out[-1][1] != limit:
                out.append((offset, limit))
        return out
