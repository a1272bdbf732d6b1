"""Allocator behaviour beyond the checklist: phase switching, power control, group sharing and rotation."""

from __future__ import annotations

from bridge.core.allocator import Allocator, AllocatorSettings, ChargerDemand, GroupBudget
from bridge.model import LimitSource
from bridge.ports import ControlMode
from tests.allocator_helpers import caps, demand, lpc


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
