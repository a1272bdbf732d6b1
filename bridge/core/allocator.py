"""The allocator: every active constraint + charger limits → exactly one `Command` per charger.

Pure and deterministic; time comes in as a monotonic `now` (hysteresis,
rotation).  The order is DESIGN.md's control path:

1. Obligations (safety and grid): hardware max, LPC/failsafe and §14a in W,
   OPEV per phase in A, the charger's share of a group limit.  Their minimum
   is a hard ceiling.
2. Optimisation (OSCEV recommendation, CEVC curve, a local user limit) can
   only lower the result further (CMB-02).
3. W→A with the site's nominal voltage and the phases the charger supplies
   (installed, or the switched count), rounded down to its resolution.  Below
   the minimum current it pauses — or switches to one phase where it can and
   one phase gives more power within the cap (use-cases.md §1.7).  After a
   pause it resumes only once the allowed current has stayed ≥ I_min for
   `hysteresis_s` (CMB-03).

Group limits (CMB-05): the group's W budget is shared equally among members
whose EV wants power, each capped by its own obligations, unused share
redistributed.  If the budget cannot give every active member its minimum, as
many as fit charge and the others pause; the paused ones rotate every
`rotation_s` so nobody starves.  The sum never exceeds the budget.

API::

    allocator = Allocator(AllocatorSettings(nominal_voltage_v=230))
    allocation = allocator.allocate(demands, groups, now)
    allocation.commands["garage"]   # Command with binding + reason
"""

from __future__ import annotations

import logging
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
        if self.power_w is not None and self.power_w < 0:
            raise ValueError("power limit must be >= 0")
        if self.current_a is not None and any(c is not None and c < 0 for c in self.current_a):
            raise ValueError("current limit must be >= 0")


@dataclass(frozen=True)
class ChargerDemand:
    """What the allocator knows about one charger for this round."""

    charger_id: str
    capabilities: Capabilities
    constraints: tuple[Constraint, ...] = ()
    wants_power: bool = True  # an EV is connected and not full (used for group sharing)
    switched_phases: int | None = None  # phase-switching chargers: the phases currently selected


@dataclass(frozen=True)
class GroupBudget:
    """One W limit for several chargers (per-group LPC, a fuse, §14a via EMS)."""

    group_id: str
    members: tuple[str, ...]
    limit_w: float | None
    source: LimitSource = LimitSource.LPC


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
        self._rotation: dict[str, tuple[float, int]] = {}  # group → (epoch start, offset)
        self._warned_p14a: set[tuple[str, float]] = set()

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
        candidate = self._best(demand, demand.constraints + extra)
        ch = demand.capabilities.characteristics
        if candidate.current_a < ch.min_current_a or candidate.power_w <= 0:
            self._paused.add(cid)
            self._resume_since.pop(cid, None)
            return Command(charger_id=cid, pause=True, binding=candidate.binding, reason=candidate.reason)
        if cid in self._paused:
            since = self._resume_since.setdefault(cid, now)
            if now - since < self.settings.hysteresis_s:
                reason = f"{candidate.reason}; resume after {self.settings.hysteresis_s:.0f} s above minimum (CMB-03)"
                return Command(charger_id=cid, pause=True, binding=candidate.binding, reason=reason)
            self._paused.discard(cid)
            self._resume_since.pop(cid, None)
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

    def _best(self, demand: ChargerDemand, constraints: tuple[Constraint, ...]) -> _Candidate:
        """The phase count and current giving the most power within every constraint."""
        ch = demand.capabilities.characteristics
        options = [demand.switched_phases or ch.phases_installed]
        if ch.phase_switching:
            options = sorted({ch.phases_installed, 1}, reverse=True)
        best: _Candidate | None = None
        for n in options:
            cand = self._for_phases(demand, constraints, n)
            if cand.current_a < ch.min_current_a:
                cand = _Candidate(0.0, n, 0.0, cand.binding, cand.reason)
            if best is None or cand.power_w > best.power_w:
                best = cand
        assert best is not None
        return best

    def _for_phases(self, demand: ChargerDemand, constraints: tuple[Constraint, ...], n: int) -> _Candidate:
        caps = demand.capabilities
        ch = caps.characteristics
        u = self.settings.nominal_voltage_v
        res = ch.current_resolution_a
        amps = floor_to(ch.max_current_a, res)
        binding, reason = LimitSource.HARDWARE, f"charger rating {ch.max_current_a:g} A"
        ordered = sorted(constraints, key=lambda c: c.category is not LimitCategory.OBLIGATION)
        for c in ordered:
            if c.current_a is not None:
                used = [a for a in c.current_a[:n] if a is not None]
                if used:
                    limit = floor_to(min(used), res)
                    if limit < amps:
                        amps, binding, reason = limit, c.source, f"{c.source.value} {min(used):g} A per phase"
        power_caps = [
            (self._floor_p14a(demand.charger_id, c.power_w, c.source, P14A_DEVICE_MINIMUM_W), c.source)
            for c in ordered
            if c.power_w is not None
        ]
        if caps.control is ControlMode.POWER:
            power = power_from_current(amps, n, u)
            for watts, source in power_caps:
                if watts < power:
                    power, binding, reason = watts, source, f"{source.value} {watts:.0f} W"
            power = floor_to(power, caps.power_resolution_w)
            return _Candidate(power / (n * u), n, power, binding, reason)
        for watts, source in power_caps:
            limit = current_from_power(watts, n, u, res)
            if limit < amps:
                amps, binding = limit, source
                reason = f"{source.value} {watts:.0f} W → {limit:g} A × {n}p at {u:g} V"
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
        if (key, power_w) not in self._warned_p14a:
            self._warned_p14a.add((key, power_w))
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
        if not active:
            return shares
        own_max = {m.charger_id: self._best(m, m.constraints).power_w for m in active}
        minimum = {m.charger_id: self._minimum_power(m) for m in active}
        active = [m for m in active if own_max[m.charger_id] > 0]
        if sum(minimum[m.charger_id] for m in active) <= budget_w:
            chosen = active
        else:
            chosen = self._rotate(group.group_id, active, minimum, budget_w, now)
        for cid, watts in _water_fill([m.charger_id for m in chosen], own_max, budget_w).items():
            shares[cid] = watts
        return shares

    def _minimum_power(self, demand: ChargerDemand) -> float:
        ch = demand.capabilities.characteristics
        n = 1 if ch.phase_switching else (demand.switched_phases or ch.phases_installed)
        return power_from_current(ch.min_current_a, n, self.settings.nominal_voltage_v)

    def _rotate(
        self,
        group_id: str,
        active: list[ChargerDemand],
        minimum: dict[str, float],
        budget_w: float,
        now: float,
    ) -> list[ChargerDemand]:
        """As many members as fit at their minimum, starting at a rotating offset."""
        start, offset = self._rotation.get(group_id, (now, 0))
        if now - start >= self.settings.rotation_s:
            chosen_before = self._fit(_rotated(active, offset), minimum, budget_w)
            offset += max(1, len(chosen_before))
            start = now
        self._rotation[group_id] = (start, offset)
        return self._fit(_rotated(active, offset), minimum, budget_w)

    @staticmethod
    def _fit(ordered: list[ChargerDemand], minimum: dict[str, float], budget_w: float) -> list[ChargerDemand]:
        chosen: list[ChargerDemand] = []
        used = 0.0
        for m in ordered:
            if used + minimum[m.charger_id] <= budget_w:
                chosen.append(m)
                used += minimum[m.charger_id]
        return chosen


def _rotated(items: list[ChargerDemand], offset: int) -> list[ChargerDemand]:
    if not items:
        return items
    k = offset % len(items)
    return items[k:] + items[:k]


def _water_fill(members: list[str], own_max: dict[str, float], budget_w: float) -> dict[str, float]:
    """Equal shares of `budget_w`; a member that cannot use its share gives the rest to the others."""
    shares: dict[str, float] = {}
    remaining = budget_w
    pending = sorted(members, key=lambda m: (own_max[m], m))
    while pending:
        equal = remaining / len(pending)
        m = pending[0]
        if own_max[m] <= equal:
            shares[m] = own_max[m]
            remaining -= own_max[m]
            pending.pop(0)
            continue
        for m in pending:
            shares[m] = equal
        break
    return shares
