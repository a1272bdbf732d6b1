"""Allocator behaviour beyond the checklist: phase switching, power control, group sharing and rotation."""

from __future__ import annotations

import pytest

from bridge.clock import FakeClock
from bridge.core.allocator import Allocator, AllocatorSettings, ChargerDemand, GroupBudget
from bridge.core.p14a import P14aSettings
from bridge.model import LimitSource
from bridge.ports import ControlMode
from tests.allocator_helpers import caps, demand, lpc, opev, oscev


def test_phase_switching_charger_goes_single_phase_below_3p_minimum() -> None:
    cmd = Allocator().allocate([demand("c1", lpc(3000), switching=True, max_a=32)]).commands["c1"]
    assert cmd.phases == 1 and cmd.current_a == (13, 13, 13)
    cmd = Allocator().allocate([demand("c1", lpc(11_000), switching=True, max_a=16)]).commands["c1"]
    assert cmd.phases == 3 and cmd.current_a == (15, 15, 15)


def test_switched_phase_count_is_used_not_installed() -> None:
    d = ChargerDemand("c1", caps(phases=3), (lpc(4200),), switched_phases=1)
    assert Allocator().allocate([d]).commands["c1"].current_a == (16, 16, 16)  # 18 A capped at 16 A


def test_power_controlled_charger_gets_watts_rounded_down() -> None:
    d = ChargerDemand(
        "c1", caps(control=ControlMode.POWER).model_copy(update={"power_resolution_w": 100}), (lpc(7777),)
    )
    cmd = Allocator().allocate([d]).commands["c1"]
    assert cmd.power_w == 7700 and cmd.current_a is None


def test_group_equal_shares_and_redistribution() -> None:
    members = [demand("a"), demand("b"), demand("c", max_a=6)]
    group = GroupBudget("g", ("a", "b", "c"), 20_000)
    allocation = Allocator().allocate(members, [group])
    cmds = allocation.commands
    # c can use at most 6 A × 3 × 230 = 4140 W; a and b share the rest equally
    assert cmds["c"].current_a == (6, 6, 6)
    assert cmds["a"].current_a == cmds["b"].current_a == (11, 11, 11)
    assert sum(allocation.group_shares_w["g"].values()) <= 20_000


def test_group_members_without_ev_get_nothing_and_others_share() -> None:
    members = [demand("a"), ChargerDemand("b", caps(), wants_power=False)]
    cmds = Allocator().allocate(members, [GroupBudget("g", ("a", "b"), 8000)]).commands
    assert cmds["a"].current_a == (11, 11, 11)
    assert cmds["b"].pause and cmds["b"].binding is LimitSource.GROUP


def test_group_rotation_lets_every_charger_charge() -> None:
    allocator = Allocator(AllocatorSettings(rotation_s=900, hysteresis_s=0))
    members = [demand(x) for x in "abc"]
    group = GroupBudget("g", ("a", "b", "c"), 2 * 4140 + 100)  # room for two minimums
    charged: set[str] = set()
    for minute in range(0, 2 * 15 + 1):
        cmds = allocator.allocate(members, [group], now=minute * 60.0).commands
        running = {cid for cid, c in cmds.items() if not c.pause}
        assert len(running) == 2
        charged |= running
    assert charged == {"a", "b", "c"}


def test_group_mixed_phases_everyone_gets_minimum_when_budget_allows() -> None:
    # 1p minimum 1380 W + 3p minimum 4140 W = 5520 W: equal W shares (2760 W each) would pause the 3p one
    members = [demand("one", phases=1, max_a=32), demand("three", phases=3, max_a=32)]
    for budget in (5520, 5600, 8000):
        allocation = Allocator().allocate(members, [GroupBudget("g", ("one", "three"), budget)])
        cmds = allocation.commands
        assert not cmds["one"].pause and not cmds["three"].pause, budget
        assert cmds["three"].current_a == (6, 6, 6)
        assert sum(allocation.group_shares_w["g"].values()) <= budget
    # enough for both above their minimums: equal W, each within its own maximum
    shares = Allocator().allocate(members, [GroupBudget("g", ("one", "three"), 9000)]).group_shares_w["g"]
    assert shares == {"one": 4500, "three": 4500}
    shares = Allocator().allocate(members, [GroupBudget("g", ("one", "three"), 20_000)]).group_shares_w["g"]
    assert shares["one"] == 32 * 230 and shares["three"] == 20_000 - 32 * 230


def test_rotation_keeps_chargers_in_place_within_a_period() -> None:
    allocator = Allocator(AllocatorSettings(rotation_s=900, hysteresis_s=0))
    group = GroupBudget("g", ("a", "b", "c"), 2 * 4140 + 100)
    members = [demand(x) for x in "abc"]
    first = {cid for cid, c in allocator.allocate(members, [group], now=0).commands.items() if not c.pause}
    assert first == {"a", "b"}
    # "a" leaves: "c" takes its place at once, "b" keeps charging
    left = [ChargerDemand("a", caps(), wants_power=False), members[1], members[2]]
    cmds = allocator.allocate(left, [group], now=60).commands
    assert cmds["a"].pause and not cmds["b"].pause and not cmds["c"].pause
    # "a" comes back within the period: it waits, nobody is thrown out for it
    cmds = allocator.allocate(members, [group], now=120).commands
    assert cmds["a"].pause and not cmds["b"].pause and not cmds["c"].pause
    # next period: "a" waited longest and gets its turn
    cmds = allocator.allocate(members, [group], now=900).commands
    assert not cmds["a"].pause


def test_rotation_serves_higher_priority_first() -> None:
    allocator = Allocator(AllocatorSettings(rotation_s=900, hysteresis_s=0))
    group = GroupBudget("g", ("a", "b", "c"), 4140 + 100)  # room for one minimum
    members = [demand("a"), demand("b"), ChargerDemand("c", caps(), priority=1)]
    for t in range(0, 3 * 900, 300):
        cmds = allocator.allocate(members, [group], now=float(t)).commands
        assert [cid for cid, c in cmds.items() if not c.pause] == ["c"]


def test_rotation_resumes_after_hysteresis_and_never_overruns_the_budget() -> None:
    allocator = Allocator(AllocatorSettings(rotation_s=900, hysteresis_s=30))
    group = GroupBudget("g", ("a", "b"), 4140 + 100)
    members = [demand("a"), demand("b")]
    running_at: dict[float, set[str]] = {}
    for t in range(0, 1000, 10):
        cmds = allocator.allocate(members, [group], now=float(t)).commands
        running_at[t] = {cid for cid, c in cmds.items() if not c.pause}
        assert len(running_at[t]) <= 1
    assert running_at[890] == {"a"} and running_at[900] == set()  # b waits 30 s above its minimum
    assert running_at[930] == {"b"}


def test_obligation_is_binding_on_a_tie_with_a_recommendation() -> None:
    cmd = Allocator().allocate([demand("c1", oscev(6, 6, 6), lpc(4200))]).commands["c1"]
    assert cmd.current_a == (6, 6, 6) and cmd.binding is LimitSource.LPC


def test_power_controlled_charger_pauses_below_minimum_power() -> None:
    d = ChargerDemand("c1", caps(control=ControlMode.POWER, phases=3), (lpc(4139),))
    assert Allocator().allocate([d]).commands["c1"].pause
    d = ChargerDemand("c1", caps(control=ControlMode.POWER, phases=3), (lpc(4140),))
    assert Allocator().allocate([d]).commands["c1"].power_w == 4140
    d = ChargerDemand("c1", caps(control=ControlMode.POWER, phases=3), (opev(10, 8, 9),))
    cmd = Allocator().allocate([d]).commands["c1"]
    assert cmd.power_w == 8 * 3 * 230 and cmd.binding is LimitSource.OPEV


def test_p14a_warning_once_per_value(caplog: pytest.LogCaptureFixture) -> None:
    allocator = Allocator(AllocatorSettings(p14a=P14aSettings(enabled=True)))
    for _ in range(5):
        allocator.allocate([demand("c1", lpc(3000))])
    allocator.allocate([demand("c1", lpc(2000))])
    warnings = [r for r in caplog.records if "§14a" in r.getMessage()]
    assert len(warnings) == 2


def test_site_nominal_voltage_is_used() -> None:
    allocator = Allocator(AllocatorSettings(nominal_voltage_v=240))
    assert allocator.allocate([demand("c1", lpc(4320))]).commands["c1"].current_a == (6, 6, 6)
    assert allocator.allocate([demand("c1", lpc(4319))]).commands["c1"].pause


def test_phase_switch_up_waits_for_hysteresis_down_is_immediate() -> None:
    allocator = Allocator(AllocatorSettings(hysteresis_s=30))
    d = {w: demand("c1", lpc(w), switching=True, max_a=32) for w in (3000, 11_000)}
    assert allocator.allocate([d[11_000]], now=0).commands["c1"].phases == 3
    cmd = allocator.allocate([d[3000]], now=5).commands["c1"]
    assert cmd.phases == 1 and cmd.current_a == (13, 13, 13)  # down at once, no pause
    cmd = allocator.allocate([d[11_000]], now=10).commands["c1"]
    assert cmd.phases == 1 and cmd.current_a == (32, 32, 32) and "3 phases after 30 s" in cmd.reason
    assert allocator.allocate([d[11_000]], now=39).commands["c1"].phases == 1
    cmd = allocator.allocate([d[11_000]], now=40).commands["c1"]
    assert cmd.phases == 3 and cmd.current_a == (15, 15, 15)
    # a dip back to 1p restarts the wait
    allocator.allocate([d[3000]], now=50)
    allocator.allocate([d[11_000]], now=51)
    assert allocator.allocate([d[11_000]], now=80).commands["c1"].phases == 1
    assert allocator.allocate([d[11_000]], now=81).commands["c1"].phases == 3


def test_group_rotation_on_a_fake_clock_with_default_settings() -> None:
    """3 chargers, budget for 2 minimums, default rotation (15 min) and hysteresis (30 s), 10 s rounds."""
    clock = FakeClock()
    allocator = Allocator()
    members = [demand(x) for x in "abc"]
    group = GroupBudget("g", ("a", "b", "c"), 2 * 4140 + 500)
    charged_at: dict[str, float] = {}
    start = clock.monotonic()
    while clock.monotonic() - start <= 2 * 900:
        allocation = allocator.allocate(members, [group], now=clock.monotonic())
        running = [cid for cid, c in allocation.commands.items() if not c.pause]
        assert 1 <= len(running) <= 2 or clock.monotonic() - start < 30
        assert sum(allocation.group_shares_w["g"].values()) <= group.limit_w  # type: ignore[operator]
        for cid in running:
            charged_at.setdefault(cid, clock.monotonic() - start)
        clock.advance(10)
    assert set(charged_at) == {"a", "b", "c"}
    assert max(charged_at.values()) <= 900 + 30  # the third one starts one hysteresis after the first rotation


@pytest.mark.parametrize("bad", [float("nan"), -1.0])
def test_nan_or_negative_limits_are_refused_not_ignored(bad: float) -> None:
    with pytest.raises(ValueError):
        lpc(bad)
    with pytest.raises(ValueError):
        opev(16, bad, 16)
    with pytest.raises(ValueError):
        GroupBudget("g", ("a",), bad)


def test_no_phase_switch_without_a_power_gain() -> None:
    allocator = Allocator(AllocatorSettings(hysteresis_s=30))
    allocator.allocate([demand("c1", lpc(3000), switching=True, max_a=32)], now=0)  # 1p 13 A
    for t in (10, 50, 100):
        cmd = allocator.allocate([demand("c1", lpc(4200), switching=True, max_a=32)], now=t).commands["c1"]
        assert cmd.phases == 1 and cmd.current_a == (18, 18, 18)  # 4140 W either way: stays on 1p
    cmd = allocator.allocate([demand("c1", lpc(5000), switching=True, max_a=32)], now=110).commands["c1"]
    assert cmd.phases == 1 and cmd.current_a == (21, 21, 21)  # 1p × 21 A = 3p × 7 A = 4830 W: still no switch
