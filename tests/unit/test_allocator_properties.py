"""Property tests: no command above any obligation, groups within budget, equal shares when possible."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.allocator import Allocator, ChargerDemand, Constraint, GroupBudget
from bridge.core.conversion import power_from_current
from bridge.model import LimitCategory, LimitSource
from tests.allocator_helpers import caps

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
