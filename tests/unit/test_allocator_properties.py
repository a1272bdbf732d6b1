"""Property tests: no command above any obligation, groups within budget, equal shares when possible."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.allocator import Allocator, AllocatorSettings, ChargerDemand, Constraint, GroupBudget
from bridge.core.conversion import current_from_power, floor_to, power_from_current
from bridge.core.p14a import P14aSettings
from bridge.model import Command, LimitCategory, LimitSource
from bridge.ports import ControlMode
from tests.allocator_helpers import caps, demand, lpc

amps = st.floats(min_value=0, max_value=80, allow_nan=False)
watts = st.floats(min_value=0, max_value=50_000, allow_nan=False)

obligation = st.one_of(
    st.builds(
        lambda w, s: Constraint(s, power_w=w), watts, st.sampled_from([LimitSource.LPC, LimitSource.LPC_FAILSAFE])
    ),
    st.builds(lambda a, b, c: Constraint(LimitSource.OPEV, current_a=(a, b, c)), amps, amps, amps),
)
recommendation = st.builds(
    lambda a: Constraint(LimitSource.OSCEV, LimitCategory.RECOMMENDATION, current_a=(a, a, a)), amps
)


@st.composite
def demands(draw: st.DrawFn, cid: str = "c1") -> ChargerDemand:
    phases = draw(st.sampled_from([1, 3]))
    min_a = draw(st.sampled_from([6.0, 8.0]))
    max_a = draw(st.floats(min_value=min_a, max_value=63))
    resolution = draw(st.sampled_from([1.0, 0.1, 0.5]))
    switching = draw(st.booleans()) and phases == 3
    constraints = tuple(draw(st.lists(st.one_of(obligation, recommendation), max_size=4)))
    return ChargerDemand(
        cid, caps(phases=phases, max_a=max_a, min_a=min_a, resolution=resolution, switching=switching), constraints
    )


def _phases(d: ChargerDemand, cmd_phases: int | None) -> int:
    return cmd_phases or d.capabilities.characteristics.phases_installed


@settings(max_examples=300, deadline=None)
@given(demands(), st.floats(min_value=0, max_value=1000))
def test_no_command_exceeds_any_obligation(d: ChargerDemand, now: float) -> None:
    cmd = Allocator().allocate([d], now=now).commands["c1"]
    ch = d.capabilities.characteristics
    if cmd.pause:
        assert cmd.max_current_a == 0
        return
    n = _phases(d, cmd.phases)
    current = cmd.max_current_a
    assert ch.min_current_a <= current <= ch.max_current_a
    for c in d.constraints:
        if c.current_a is not None:
            assert current <= min(a for a in c.current_a[:n] if a is not None) + 1e-9
        if c.power_w is not None:
            assert power_from_current(current, n, 230) <= c.power_w + 1e-6


@settings(max_examples=200, deadline=None)
@given(st.lists(demands(), min_size=1, max_size=6), watts, st.floats(min_value=0, max_value=5000))
def test_group_total_never_exceeds_limit(members: list[ChargerDemand], limit: float, now: float) -> None:
    members = [ChargerDemand(f"c{i}", m.capabilities, m.constraints) for i, m in enumerate(members)]
    group = GroupBudget("g", tuple(m.charger_id for m in members), limit)
    cmds = Allocator().allocate(members, [group], now=now).commands
    total = sum(
        power_from_current(cmds[m.charger_id].max_current_a, _phases(m, cmds[m.charger_id].phases), 230)
        for m in members
    )
    assert total <= limit + 1e-6


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=2, max_value=6),
    st.sampled_from([1, 3]),
    st.floats(min_value=0, max_value=60_000),
)
def test_equal_priority_chargers_get_equal_shares_when_budget_allows(n: int, phases: int, limit: float) -> None:
    members = [ChargerDemand(f"c{i}", caps(phases=phases, max_a=32)) for i in range(n)]
    minimum_total = n * power_from_current(6, phases, 230)
    cmds = Allocator().allocate(members, [GroupBudget("g", tuple(m.charger_id for m in members), limit)]).commands
    if limit >= minimum_total:
        currents = {c.max_current_a for c in cmds.values()}
        assert len(currents) == 1 and not any(c.pause for c in cmds.values())


# -- several chargers, power control, §14a registered (floor off), groups, several rounds ----------------


@st.composite
def any_demand(draw: st.DrawFn, cid: str) -> ChargerDemand:
    """Like `demands` but also power-controlled chargers, §14a sources and chargers without an EV."""
    phases = draw(st.sampled_from([1, 3]))
    min_a = draw(st.sampled_from([6.0, 8.0]))
    max_a = draw(st.floats(min_value=min_a, max_value=63))
    resolution = draw(st.sampled_from([1.0, 0.1, 0.5]))
    switching = draw(st.booleans()) and phases == 3
    control = draw(st.sampled_from([ControlMode.CURRENT, ControlMode.POWER]))
    capabilities = caps(phases=phases, max_a=max_a, min_a=min_a, resolution=resolution, switching=switching)
    capabilities = capabilities.model_copy(
        update={"control": control, "power_resolution_w": draw(st.sampled_from([1.0, 10.0, 100.0]))}
    )
    grid = st.builds(lambda w: Constraint(LimitSource.P14A, power_w=w), watts)
    constraints = tuple(draw(st.lists(st.one_of(obligation, recommendation, grid), max_size=4)))
    return ChargerDemand(cid, capabilities, constraints, wants_power=draw(st.booleans()) or True)


def drawn_w(d: ChargerDemand, cmd: Command, volts: float = 230) -> float:
    """The most the charger may draw under `cmd`, in W at nominal voltage."""
    if cmd.pause:
        return 0.0
    if cmd.power_w is not None:
        return cmd.power_w
    return power_from_current(cmd.max_current_a, _phases(d, cmd.phases), volts)


def check_command(d: ChargerDemand, cmd: Command, extra_w: float | None = None) -> None:
    """Invariants of one command: pause is 0, otherwise between min and rating and under every obligation."""
    ch = d.capabilities.characteristics
    n = _phases(d, cmd.phases)
    if cmd.pause:
        assert cmd.max_current_a == 0 and cmd.power_w in (None, 0)
        return
    power = drawn_w(d, cmd)
    assert power >= power_from_current(ch.min_current_a, n, 230) - 1e-6  # never below the minimum
    assert power <= power_from_current(ch.max_current_a, n, 230) + 1e-6
    if cmd.current_a is not None:
        assert ch.min_current_a <= cmd.max_current_a <= ch.max_current_a
        steps = Decimal(repr(cmd.max_current_a)) / Decimal(repr(ch.current_resolution_a))
        assert steps % 1 == 0  # a whole number of the charger's steps
    for c in d.constraints:
        if c.category is not LimitCategory.OBLIGATION:
            continue
        if c.current_a is not None:
            used = [a for a in c.current_a[:n] if a is not None]
            if used:
                assert power <= power_from_current(min(used), n, 230) + 1e-6
                assert cmd.current_a is None or cmd.max_current_a <= min(used) + 1e-9
        if c.power_w is not None:
            assert power <= c.power_w + 1e-6  # §14a registered but floor off: applied as it is
    if extra_w is not None:
        assert power <= extra_w + 1e-6


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=1), min_size=1, max_size=5).flatmap(
        lambda xs: st.tuples(*(any_demand(f"c{i}") for i in range(len(xs))))
    ),
    st.one_of(st.none(), watts),
    st.lists(st.tuples(st.floats(min_value=0, max_value=400), watts), min_size=1, max_size=4),
)
def test_rounds_with_groups_and_p14a_never_exceed_an_obligation(
    members: tuple[ChargerDemand, ...], limit: float | None, rounds: list[tuple[float, float]]
) -> None:
    allocator = Allocator(AllocatorSettings(p14a=P14aSettings(enabled=True, floor=False), hysteresis_s=30))
    now = 0.0
    ids = tuple(m.charger_id for m in members)
    for dt, site_limit in rounds:
        now += dt
        round_members = [
            ChargerDemand(
                m.charger_id,
                m.capabilities,
                (*m.constraints, Constraint(LimitSource.LPC, power_w=site_limit)),
                wants_power=m.wants_power,
            )
            for m in members
        ]
        groups = [GroupBudget("g", ids, limit, LimitSource.LPC)] if limit is not None else []
        allocation = allocator.allocate(round_members, groups, now)
        assert set(allocation.commands) == set(ids)
        for m in round_members:
            share = allocation.group_shares_w.get("g", {}).get(m.charger_id)
            check_command(m, allocation.commands[m.charger_id], share)
        if limit is not None:
            assert sum(drawn_w(m, allocation.commands[m.charger_id]) for m in round_members) <= limit + 1e-6


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 3]), st.booleans(), st.floats(min_value=6, max_value=63), st.booleans()),
        min_size=2,
        max_size=6,
    ),
    watts,
)
def test_mixed_group_everyone_active_charges_when_minimums_fit_and_shares_are_equal(
    spec: list[tuple[int, bool, float, bool]], limit: float
) -> None:
    members = [
        ChargerDemand(f"c{i}", caps(phases=p, max_a=max_a, switching=sw and p == 3), wants_power=wants)
        for i, (p, sw, max_a, wants) in enumerate(spec)
    ]
    allocation = Allocator().allocate(members, [GroupBudget("g", tuple(m.charger_id for m in members), limit)])
    shares = allocation.group_shares_w["g"]
    active = [m for m in members if m.wants_power]
    minimum = {
        m.charger_id: power_from_current(
            6, 1 if m.capabilities.characteristics.phase_switching else _phases(m, None), 230
        )
        for m in active
    }
    maximum = {  # what each can use: its rating rounded down to whole amperes
        m.charger_id: power_from_current(
            floor_to(m.capabilities.characteristics.max_current_a, 1), _phases(m, None), 230
        )
        for m in active
    }
    assert sum(drawn_w(m, allocation.commands[m.charger_id]) for m in members) <= limit + 1e-6
    for m in members:
        if not m.wants_power:
            assert allocation.commands[m.charger_id].pause
    if sum(minimum.values()) > limit:
        return
    for m in active:
        assert not allocation.commands[m.charger_id].pause, m
    # equal W shares: a smaller share is only ever one held at its maximum, or a larger one held at its minimum
    for a in active:
        for b in active:
            sa, sb = shares[a.charger_id], shares[b.charger_id]
            if sa < sb - 1e-6:
                assert sa >= maximum[a.charger_id] - 1e-6 or sb <= minimum[b.charger_id] + 1e-6


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0, max_value=60), watts), min_size=1, max_size=12))
def test_resume_only_after_hysteresis_above_minimum(rounds: list[tuple[float, float]]) -> None:
    allocator = Allocator(AllocatorSettings(hysteresis_s=30))
    d = demand("c1", phases=3)
    now = 0.0
    above_since: float | None = None  # when the limit last rose to ≥ the minimum after a pause
    paused = False
    for dt, limit in rounds:
        now += dt
        cmd = allocator.allocate([ChargerDemand("c1", d.capabilities, (lpc(limit),))], now=now).commands["c1"]
        allowed = current_from_power(limit, 3, 230, 1.0) >= 6
        if not allowed:
            assert cmd.pause
            paused, above_since = True, None
            continue
        if paused:
            above_since = now if above_since is None else above_since
            if now - above_since < 30:
                assert cmd.pause
                continue
            paused = False
        assert not cmd.pause
