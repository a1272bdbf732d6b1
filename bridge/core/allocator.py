"""The allocator: every active constraint + charger limits → exactly one `Command` per charger.

Pure (no I/O, no clock): time comes in as a monotonic `now` for the only
state it keeps — pause hysteresis, phase-switch hysteresis and group
rotation — which lives in the `Allocator` object, never in globals.  The order
is DESIGN.md's control path:

1. Obligations (safety and grid): hardware max (rating), LPC or its failsafe
   and §14a in W, OPEV per phase in A, the charger's share of a group limit.
   Their minimum is a hard ceiling.
2. Optimisation (OSCEV per phase in A, CEVC curve in W, a local user limit in
   W — all `LimitCategory.RECOMMENDATION`) can only lower the result (CMB-02);
   on a tie the obligation is reported as binding.
3. W→A with the site's nominal voltage (never the measured one) and the
   phases the charger supplies (installed, or for a phase-switching charger
   the count the allocator picks), rounded down to its resolution in exact
   decimal arithmetic.  Power-controlled chargers get W rounded down to
   `power_resolution_w`.  Below the minimum current it pauses (never rounded
   up) — or runs on one phase where it can switch and one phase gives more
   power within the cap (use-cases.md §1.7).  After a pause it resumes only
   once the allowed current has stayed ≥ I_min for `hysteresis_s` (CMB-03);
   a switch up from 1 to 3 phases waits the same time, a switch down is
   immediate.

Group limits (CMB-05): the group's W budget goes to the members whose EV
wants power.  If every such member's minimum fits, each gets
clamp(level, own minimum, own maximum) for the highest common level the
budget allows — equal W shares, a member that cannot use its share leaves it
to the others, a 3-phase member next to 1-phase ones still gets its minimum.
If not, as many as fit charge (higher `priority` first, then whoever waited
longest), the others pause; at every `rotation_s` the order is drawn again
so nobody starves, and within a period the charging ones keep their place.
The sum of the members' commands never exceeds the budget.

§14a (use-cases.md §14): with `P14aSettings.enabled` a grid limit (LPC,
failsafe, §14a) below the §14a minimum is logged as a warning and applied as
it is; with `floor` on it is raised to 4.2 kW per charger, or to P_min,14a for
a group.  A fuse (OPEV) or the rating below that still wins.

API (frozen dataclasses, all in this module)::

    Constraint(source: LimitSource, category=OBLIGATION, power_w: float | None = None,
               current_a: tuple[float | None, float | None, float | None] | None = None)
    ChargerDemand(charger_id, capabilities: bridge.ports.Capabilities, constraints: tuple[Constraint, ...] = (),
                  wants_power=True, switched_phases: int | None = None, priority=0)
    GroupBudget(group_id, members: tuple[str, ...], limit_w: float | None, source=LimitSource.LPC)
    AllocatorSettings(nominal_voltage_v=230.0, hysteresis_s=30.0, rotation_s=900.0,
                      p14a=P14aSettings(enabled=False, floor=False, gzf_table=..., device_minimums_w=(4200,)))

    allocator = Allocator(AllocatorSettings(nominal_voltage_v=230))
    allocation = allocator.allocate(demands, groups, now)   # every round, same object
    allocation.commands["garage"]     # bridge.model.Command with binding + reason
    allocation.group_shares_w["car-park"]["garage"]   # W share given to each member

`wants_power` only matters in groups (no EV or EV full → no share);
`switched_phases` is the phase count of a charger that cannot switch itself
but is wired/set to fewer phases than installed.  A group with `limit_w=None`
imposes nothing.  The charger's own watchdog value comes from
`bridge.core.conversion.fallback_current_a`.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bridge.core.conversion import current_from_power, floor_to, power_from_current
from bridge.core.p14a import P14A_DEVICE_MINIMUM_W, P14aSettings, p_min_14a
from bridge.model import Command, LimitCategory, LimitSource
from bridge.ports import Capabilities, ControlMode

log = logging.getLogger(__name__)

PhaseCaps = tuple[float | None, float | None, float | None]

#: sources that express the grid operator's limit (subject to the §14a floor)
GRID_SOURCES = (LimitSource.LPC, LimitSource.LPC_FAILSAFE, LimitSource.P14A)


@dataclass(frozen=True)
class Constraint:
    """One active limit on one charger: a total power in W and/or per-phase currents in A."""

    source: LimitSource
    category: LimitCategory = LimitCategory.OBLIGATION
    power_w: float | None = None
    current_a: PhaseCaps | None = None

    def __post_init__(self) -> None:
        # NaN compares false with everything: it would silently drop the limit, so it is refused
        if self.power_w is not None and not self.power_w >= 0:
            raise ValueError(f"power limit must be >= 0, got {self.power_w}")
        if self.current_a is not None and any(c is not None and not c >= 0 for c in self.current_a):
            raise ValueError(f"current limit must be >= 0, got {self.current_a}")


@dataclass(frozen=True)
class ChargerDemand:
    """What the allocator knows about one charger for this round."""

    charger_id: str
    capabilities: Capabilities
    constraints: tuple[Constraint, ...] = ()
    wants_power: bool = True  # an EV is connected and not full (used for group sharing)
    switched_phases: int | None = None  # phase-switching chargers: the phases currently selected
    priority: int = 0  # group deficit only: higher priority keeps charging first


@dataclass(frozen=True)
class GroupBudget:
    """One W limit for several chargers (per-group LPC, a fuse, §14a via EMS)."""

    group_id: str
    members: tuple[str, ...]
    limit_w: float | None
    source: LimitSource = LimitSource.LPC

    def __post_init__(self) -> None:
        if self.limit_w is not None and not self.limit_w >= 0:
            raise ValueError(f"group limit must be >= 0, got {self.limit_w}")


@dataclass(frozen=True)
class AllocatorSettings:
    nominal_voltage_v: float = 230.0
    hysteresis_s: float = 30.0
    rotation_s: float = 900.0
    p14a: P14aSettings = field(default_factory=P14aSettings)


@dataclass(frozen=True)
class Allocation:
    commands: dict[str, Command]
    group_shares_w: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class _Candidate:
    """The best command for one charger under its own obligations, before hysteresis."""

    current_a: float
    phases: int
    power_w: float
    binding: LimitSource
    reason: str


class Allocator:
    """Stateful only for hysteresis and rotation; everything else is recomputed each round."""

    def __init__(self, settings: AllocatorSettings = AllocatorSettings()) -> None:
        self.settings = settings
        self._paused: set[str] = set()
        self._resume_since: dict[str, float] = {}
        self._phases: dict[str, int] = {}  # phase-switching chargers: the phase count last commanded
        self._phase_up_since: dict[str, float] = {}
        self._rotation: dict[str, _Rotation] = {}
        self._warned_p14a: dict[tuple[str, LimitSource], float] = {}  # last value warned about, no repeats

    # -- public -------------------------------------------------------------
    def allocate(
        self, demands: Iterable[ChargerDemand], groups: Sequence[GroupBudget] = (), now: float = 0.0
    ) -> Allocation:
        by_id = {d.charger_id: d for d in demands}
        extra: dict[str, list[Constraint]] = {cid: [] for cid in by_id}
        shares: dict[str, dict[str, float]] = {}
        for group in groups:
            members = [by_id[m] for m in group.members if m in by_id]
            if group.limit_w is None or not members:
                continue
            budget = self._floor_p14a(group.group_id, group.limit_w, group.source, self._group_minimum(len(members)))
            group_shares = self._share_group(group, budget, members, now)
            shares[group.group_id] = group_shares
            for cid, share in group_shares.items():
                extra[cid].append(Constraint(LimitSource.GROUP, power_w=share))
        commands = {cid: self._command(demand, tuple(extra[cid]), now) for cid, demand in by_id.items()}
        return Allocation(commands, shares)

    # -- one charger -----------------------------------------------------------
    def _command(self, demand: ChargerDemand, extra: tuple[Constraint, ...], now: float) -> Command:
        cid = demand.charger_id
        constraints = demand.constraints + extra
        candidate = self._best(demand, constraints)
        ch = demand.capabilities.characteristics
        if candidate.power_w <= 0:  # below the minimum at every phase count (never rounded up)
            self._paused.add(cid)
            self._resume_since.pop(cid, None)
            self._phases.pop(cid, None)  # a paused charger may resume on any phase count
            self._phase_up_since.pop(cid, None)
            reason = f"{candidate.reason}; below the minimum {ch.min_current_a:g} A → pause"
            return Command(charger_id=cid, pause=True, binding=candidate.binding, reason=reason)
        if cid in self._paused:
            since = self._resume_since.setdefault(cid, now)
            if now - since < self.settings.hysteresis_s:
                reason = f"{candidate.reason}; resume after {self.settings.hysteresis_s:.0f} s above minimum (CMB-03)"
                return Command(charger_id=cid, pause=True, binding=candidate.binding, reason=reason)
            self._paused.discard(cid)
            self._resume_since.pop(cid, None)
        if ch.phase_switching:
            candidate = self._hold_phases(demand, constraints, candidate, now)
        if demand.capabilities.control is ControlMode.POWER:
            return Command(
                charger_id=cid,
                power_w=candidate.power_w,
                phases=candidate.phases if ch.phase_switching else None,  # type: ignore[arg-type]
                binding=candidate.binding,
                reason=candidate.reason,
            )
        amps = candidate.current_a
        return Command(
            charger_id=cid,
            current_a=(amps, amps, amps),
            phases=candidate.phases if ch.phase_switching else None,  # type: ignore[arg-type]
            binding=candidate.binding,
            reason=candidate.reason,
        )

    def _hold_phases(
        self, demand: ChargerDemand, constraints: tuple[Constraint, ...], candidate: _Candidate, now: float
    ) -> _Candidate:
        """Switch up (1p → 3p) only after `hysteresis_s`; switch down at once.

        Every phase switch interrupts charging, so a cap that wobbles around
        the 3-phase minimum must not toggle the relay each round.  Staying on
        fewer phases is always within the constraints (it is computed under them).
        """
        cid = demand.charger_id
        before = self._phases.get(cid)
        if before is not None and candidate.phases != before:
            held = self._for_phases(demand, constraints, before)
            if held.power_w > 0 and held.power_w >= candidate.power_w:
                self._phase_up_since.pop(cid, None)  # nothing to gain (e.g. 1p × 18 A = 3p × 6 A): no switch
                return held
            if held.power_w > 0 and candidate.phases > before:
                since = self._phase_up_since.setdefault(cid, now)
                if now - since < self.settings.hysteresis_s:
                    held.reason += f"; {candidate.phases} phases after {self.settings.hysteresis_s:.0f} s"
                    return held
        self._phase_up_since.pop(cid, None)
        self._phases[cid] = candidate.phases
        return candidate

    def _best(self, demand: ChargerDemand, constraints: tuple[Constraint, ...]) -> _Candidate:
        """The phase count and current giving the most power within every constraint."""
        ch = demand.capabilities.characteristics
        options = [demand.switched_phases or ch.phases_installed]
        if ch.phase_switching:
            options = sorted({ch.phases_installed, 1}, reverse=True)
        best: _Candidate | None = None
        for n in options:
            cand = self._for_phases(demand, constraints, n)
            if best is None or cand.power_w > best.power_w:
                best = cand
        assert best is not None
        return best

    def _for_phases(self, demand: ChargerDemand, constraints: tuple[Constraint, ...], n: int) -> _Candidate:
        """Min over all constraints at `n` phases, in the charger's own unit (A or W).

        Obligations are visited before recommendations and only a strictly
        lower limit takes over, so on a tie the obligation is the binding one.
        """
        caps = demand.capabilities
        ch = caps.characteristics
        u = self.settings.nominal_voltage_v
        res = ch.current_resolution_a
        by_power = caps.control is ControlMode.POWER
        amps = floor_to(ch.max_current_a, res)
        watts = power_from_current(ch.max_current_a, n, u)
        binding, reason = LimitSource.HARDWARE, f"charger rating {ch.max_current_a:g} A"
        ordered = sorted(constraints, key=lambda c: c.category is not LimitCategory.OBLIGATION)
        for c in ordered:
            if c.current_a is not None:
                used = [a for a in c.current_a[:n] if a is not None]
                if used:
                    if by_power:
                        limit_w = power_from_current(min(used), n, u)
                        if limit_w < watts:
                            watts, binding, reason = limit_w, c.source, f"{c.source.value} {min(used):g} A per phase"
                    else:
                        limit = floor_to(min(used), res)
                        if limit < amps:
                            amps, binding, reason = limit, c.source, f"{c.source.value} {min(used):g} A per phase"
            if c.power_w is not None:
                cap_w = self._floor_p14a(demand.charger_id, c.power_w, c.source, P14A_DEVICE_MINIMUM_W)
                if by_power:
                    if cap_w < watts:
                        watts, binding, reason = cap_w, c.source, f"{c.source.value} {cap_w:.0f} W"
                else:
                    limit = current_from_power(cap_w, n, u, res)
                    if limit < amps:
                        amps, binding = limit, c.source
                        reason = f"{c.source.value} {cap_w:.0f} W → {limit:g} A × {n}p at {u:g} V"
        if by_power:
            watts = floor_to(watts, caps.power_resolution_w)
            if watts < power_from_current(ch.min_current_a, n, u):
                return _Candidate(0.0, n, 0.0, binding, reason)
            return _Candidate(current_from_power(watts, n, u, res), n, watts, binding, reason)
        if amps < ch.min_current_a:
            return _Candidate(0.0, n, 0.0, binding, reason)
        return _Candidate(amps, n, power_from_current(amps, n, u), binding, reason)

    def _group_minimum(self, members: int) -> float:
        """P_min,14a for a group: the configured devices if given, else one 4.2 kW device per member."""
        p14a = self.settings.p14a
        if len(p14a.device_minimums_w) > 1:
            return p14a.minimum_w
        return p_min_14a([P14A_DEVICE_MINIMUM_W] * members, p14a.gzf_table)

    def _floor_p14a(self, key: str, power_w: float, source: LimitSource, minimum: float) -> float:
        """§14a: warn below the minimum (P14A-04); raise to it only with `floor` on (P14A-05)."""
        p14a = self.settings.p14a
        if not p14a.enabled or source not in GRID_SOURCES:
            return power_w
        if power_w >= minimum:
            return power_w
        if self._warned_p14a.get((key, source)) != power_w:
            self._warned_p14a[(key, source)] = power_w
            log.warning(
                "%s: grid limit %.0f W is below the §14a minimum %.0f W; %s",
                key,
                power_w,
                minimum,
                "raised to the minimum (p14a_floor)" if p14a.floor else "applied as it is",
            )
        return minimum if p14a.floor else power_w

    # -- groups ----------------------------------------------------------------
    def _share_group(
        self, group: GroupBudget, budget_w: float, members: list[ChargerDemand], now: float
    ) -> dict[str, float]:
        """W share per member; members without demand get 0, the sum never exceeds `budget_w`."""
        shares = {m.charger_id: 0.0 for m in members}
        active = sorted((m for m in members if m.wants_power), key=lambda m: m.charger_id)
        own_max = {m.charger_id: self._best(m, m.constraints).power_w for m in active}
        active = [m for m in active if own_max[m.charger_id] > 0]
        if not active:
            return shares
        minimum = {m.charger_id: min(self._minimum_power(m), own_max[m.charger_id]) for m in active}
        rotation = self._rotation.setdefault(group.group_id, _Rotation(start=now))
        if sum(minimum.values()) <= budget_w:
            chosen = active
            # remember who charges, the earlier ones first, so a returning deficit throws nobody out
            ids = [m.charger_id for m in active]
            before = [cid for cid in rotation.current if cid in ids]
            rotation.current = (*before, *(cid for cid in ids if cid not in before))
        else:
            chosen = self._rotate(rotation, active, minimum, budget_w, now)
        shares.update(_water_fill([m.charger_id for m in chosen], minimum, own_max, budget_w))
        return shares

    def _minimum_power(self, demand: ChargerDemand) -> float:
        """The least power the charger can run with: 1 phase where it can switch (use-cases.md §1.7)."""
        ch = demand.capabilities.characteristics
        n = 1 if ch.phase_switching else (demand.switched_phases or ch.phases_installed)
        return power_from_current(ch.min_current_a, n, self.settings.nominal_voltage_v)

    def _rotate(
        self,
        rotation: _Rotation,
        active: list[ChargerDemand],
        minimum: dict[str, float],
        budget_w: float,
        now: float,
    ) -> list[ChargerDemand]:
        """Not everyone's minimum fits: as many as fit charge, the others wait their turn.

        At the start of each rotation period the order is: higher priority
        first, then whoever has waited longest since it last charged.  Within a
        period the chosen chargers keep their place (a charger that leaves frees
        its place at once), so nobody is paused and resumed needlessly.
        """

        def waited(m: ChargerDemand) -> tuple[int, float, str]:
            return (-m.priority, rotation.last_served.get(m.charger_id, -math.inf), m.charger_id)

        if now - rotation.start >= self.settings.rotation_s:
            rotation.start = now
            ordered = sorted(active, key=waited)
        else:
            keep = {cid: i for i, cid in enumerate(rotation.current)}
            ordered = sorted(active, key=lambda m: (keep.get(m.charger_id, len(keep)), waited(m)))
        chosen = _fit(ordered, minimum, budget_w)
        rotation.current = tuple(m.charger_id for m in chosen)
        for m in chosen:
            rotation.last_served[m.charger_id] = now
        return chosen


@dataclass
class _Rotation:
    """Per-group fairness state for budgets below everyone's minimum (explicit, no globals)."""

    start: float
    current: tuple[str, ...] = ()
    last_served: dict[str, float] = field(default_factory=dict)


def _fit(ordered: list[ChargerDemand], minimum: dict[str, float], budget_w: float) -> list[ChargerDemand]:
    """Take members in order while their minimums fit the budget (a big one may be skipped for a small one)."""
    chosen: list[ChargerDemand] = []
    used = 0.0
    for m in ordered:
        if used + minimum[m.charger_id] <= budget_w:
            chosen.append(m)
            used += minimum[m.charger_id]
    return chosen


def _water_fill(members: list[str], low: dict[str, float], high: dict[str, float], budget_w: float) -> dict[str, float]:
    """Equal W shares within each member's [minimum, own maximum], summing to at most `budget_w`.

    Each member gets clamp(level, low, high) for the highest common level
    the budget allows: a member that cannot use the level gives the rest to
    the others, and a member whose minimum is above the level (3 phases next
    to 1 phase) still gets its minimum.  The caller guarantees Σ low ≤ budget.
    """
    if not members:
        return {}
    if sum(high[m] for m in members) <= budget_w:
        return {m: high[m] for m in members}

    def total(level: float) -> float:
        return sum(min(high[m], max(low[m], level)) for m in members)

    points = sorted({low[m] for m in members} | {high[m] for m in members})
    # total() is non-decreasing: find the last breakpoint within the budget (bisection, O(n log n))
    k = bisect.bisect_right(points, budget_w, key=total) - 1
    level = points[max(k, 0)]
    if 0 <= k < len(points) - 1:
        lo, hi = points[k], points[k + 1]
        slope = sum(1 for m in members if low[m] <= lo and high[m] >= hi)  # members between their bounds
        level = lo + (budget_w - total(lo)) / slope if slope else lo
    shares = {m: min(high[m], max(low[m], level)) for m in members}
    excess = sum(shares.values()) - budget_w
    if excess > 0:  # float dust: take it from the members above their minimum, never below it
        for m in members:
            take = min(excess, shares[m] - low[m])
            shares[m] -= take
            excess -= take
    return shares
