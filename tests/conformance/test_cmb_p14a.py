"""Limit combination (CMB) and German §14a (P14A) ids of use-cases.md §15.13."""

from __future__ import annotations

import logging

import pytest

from bridge.core.allocator import Allocator, AllocatorSettings, ChargerDemand, Constraint, GroupBudget
from bridge.core.conversion import power_from_current
from bridge.core.p14a import DEFAULT_GZF, P14aSettings, SteuveKind, device_minimum_w, gzf, p_min_14a
from bridge.model import LimitCategory, LimitSource
from tests.allocator_helpers import demand, lpc, opev, oscev


@pytest.mark.req("CMB-01")
def test_CMB_01_effective_current_is_min_over_all_caps() -> None:
    allocator = Allocator()
    curve = Constraint(LimitSource.CEVC, LimitCategory.RECOMMENDATION, power_w=9000)
    cmd = allocator.allocate([demand("c1", lpc(8000), opev(12, 14, 13), oscev(16, 16, 16), curve)]).commands["c1"]
    assert cmd.current_a == (11, 11, 11)  # LPC 8000 W → 11.59 A → 11 A is the lowest
    assert cmd.binding is LimitSource.LPC
    cmd = allocator.allocate([demand("c1", lpc(11_000), opev(12, 9, 13))]).commands["c1"]
    assert cmd.current_a == (9, 9, 9) and cmd.binding is LimitSource.OPEV


@pytest.mark.req("CMB-02")
def test_CMB_02_optimisation_never_raises_above_obligation() -> None:
    allocator = Allocator()
    for rec in (6, 10, 14, 32, 63):
        cmd = allocator.allocate([demand("c1", opev(10, 10, 10), oscev(rec, rec, rec))]).commands["c1"]
        assert cmd.max_current_a <= 10
    local = Constraint(LimitSource.LOCAL, LimitCategory.RECOMMENDATION, power_w=20_000)
    cmd = allocator.allocate([demand("c1", lpc(4200), local)]).commands["c1"]
    assert cmd.current_a == (6, 6, 6) and cmd.binding is LimitSource.LPC


@pytest.mark.req("CMB-03")
def test_CMB_03_resume_only_after_hysteresis() -> None:
    allocator = Allocator(AllocatorSettings(hysteresis_s=30))
    assert allocator.allocate([demand("c1", lpc(11_000))], now=0).commands["c1"].current_a == (15, 15, 15)
    assert allocator.allocate([demand("c1", lpc(2000))], now=1).commands["c1"].pause  # immediately
    for t in (2, 10, 31.9):
        assert allocator.allocate([demand("c1", lpc(11_000))], now=t).commands["c1"].pause
    assert allocator.allocate([demand("c1", lpc(11_000))], now=32).commands["c1"].current_a == (15, 15, 15)
    # a dip below the minimum restarts the hysteresis
    allocator.allocate([demand("c1", lpc(1000))], now=40)
    allocator.allocate([demand("c1", lpc(11_000))], now=41)
    allocator.allocate([demand("c1", lpc(1000))], now=60)
    assert allocator.allocate([demand("c1", lpc(11_000))], now=75).commands["c1"].pause


@pytest.mark.req("CMB-04")
def test_CMB_04_allocation_is_a_pure_function_of_inputs_so_it_can_run_every_round() -> None:
    # The runtime recomputes on every input change and at least every 10 s (recalc_interval_s);
    # here: repeated rounds with the same inputs give the same command, a changed input a new one.
    allocator = Allocator()
    first = allocator.allocate([demand("c1", lpc(7000))], now=0).commands["c1"]
    assert allocator.allocate([demand("c1", lpc(7000))], now=10).commands["c1"] == first
    assert allocator.allocate([demand("c1", lpc(9000))], now=20).commands["c1"].current_a == (13, 13, 13)


@pytest.mark.req("CMB-05")
def test_CMB_05_group_sum_never_exceeds_group_limit() -> None:
    allocator = Allocator()
    members = [demand(f"c{i}", phases=3 if i % 2 else 1, max_a=32) for i in range(4)]
    for limit in (0, 3000, 4200, 9000, 15_000, 30_000, 100_000):
        group = GroupBudget("g", tuple(m.charger_id for m in members), limit)
        cmds = allocator.allocate(members, [group], now=0).commands
        total = sum(
            power_from_current(c.max_current_a, caps_of(members, cid).characteristics.phases_installed, 230)
            for cid, c in cmds.items()
        )
        assert total <= limit + 1e-6


def caps_of(members: list[ChargerDemand], cid: str):  # type: ignore[no-untyped-def]
    return next(m.capabilities for m in members if m.charger_id == cid)


@pytest.mark.req("P14A-01")
def test_P14A_01_minimum_formula() -> None:
    assert p_min_14a([4200]) == 4200
    assert p_min_14a([4200, 4200]) == pytest.approx(7560)
    assert p_min_14a([4200] * 3) == pytest.approx(10_500)
    assert p_min_14a([4200] * 4) == pytest.approx(13_020)


@pytest.mark.req("P14A-02")
def test_P14A_02_gzf_table_defaults_and_configurable() -> None:
    assert [gzf(n) for n in range(2, 12)] == [0.80, 0.75, 0.70, 0.65, 0.60, 0.55, 0.50, 0.45, 0.45, 0.45]
    custom = dict(DEFAULT_GZF) | {2: 0.9}
    assert p_min_14a([4200, 4200], custom) == pytest.approx(4200 + 0.9 * 4200)
    assert P14aSettings(device_minimums_w=(4200, 4200), gzf_table=custom).minimum_w == pytest.approx(7980)
    sparse = {2: 0.8, 9: 0.45}  # a gap takes the entry below it (the higher factor)
    assert [gzf(n, sparse) for n in (2, 5, 8, 9, 20)] == [0.8, 0.8, 0.8, 0.45, 0.45]
    assert gzf(3, {5: 0.6}) == 0.6 and gzf(3, {}) == 1.0


@pytest.mark.req("P14A-03")
def test_P14A_03_large_heat_pump_minimum_is_40_percent() -> None:
    assert device_minimum_w(SteuveKind.HEAT_PUMP, 19_700) == pytest.approx(7880)
    assert device_minimum_w(SteuveKind.HEAT_PUMP, 11_000) == 4200  # not above 11 kW
    assert device_minimum_w(SteuveKind.CHARGING_POINT, 22_000) == 4200


@pytest.mark.req("P14A-04")
def test_P14A_04_low_limit_warns_and_is_applied_as_is(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    allocator = Allocator(AllocatorSettings(p14a=P14aSettings(enabled=True, floor=False)))
    cmd = allocator.allocate([demand("c1", lpc(3000))]).commands["c1"]
    assert cmd.pause
    assert any("below the §14a minimum" in r.getMessage() for r in caplog.records)
    caplog.clear()
    # no §14a registration: no warning
    Allocator().allocate([demand("c1", lpc(3000))])
    assert not caplog.records


@pytest.mark.req("P14A-05")
def test_P14A_05_floor_keeps_4200_w_available() -> None:
    allocator = Allocator(AllocatorSettings(p14a=P14aSettings(enabled=True, floor=True)))
    assert allocator.allocate([demand("c1", lpc(1000))]).commands["c1"].current_a == (6, 6, 6)
    assert allocator.allocate([demand("c2", lpc(0), phases=1, max_a=32)]).commands["c2"].current_a == (18, 18, 18)
    # the floor is for grid limits only: a fuse (OPEV) below it still wins
    assert allocator.allocate([demand("c3", lpc(1000), opev(4, 4, 4))]).commands["c3"].pause
    # and it is off by default
    assert Allocator().allocate([demand("c1", lpc(1000))]).commands["c1"].pause


@pytest.mark.req("P14A-05")
def test_P14A_05_floor_for_a_group_is_p_min_of_its_chargers() -> None:
    allocator = Allocator(AllocatorSettings(p14a=P14aSettings(enabled=True, floor=True)))
    members = [demand("a"), demand("b")]
    allocation = allocator.allocate(members, [GroupBudget("g", ("a", "b"), 1000)])
    assert sum(allocation.group_shares_w["g"].values()) == pytest.approx(7560)  # 4.2 kW + 0.8 × 4.2 kW
    # 7560 W do not hold two 3-phase minimums (2 × 4140 W): one charges with all of it, the other waits its turn
    running = [c for c in allocation.commands.values() if not c.pause]
    assert [c.current_a for c in running] == [(10, 10, 10)]  # 7560 / 690 = 10.96 → 10 A
    # floor off: the same group limit pauses both
    cmds = Allocator(AllocatorSettings(p14a=P14aSettings(enabled=True))).allocate(
        members, [GroupBudget("g", ("a", "b"), 1000)]
    )
    assert all(c.pause for c in cmds.commands.values())


@pytest.mark.req("P14A-04")
def test_P14A_04_low_group_limit_warns_and_is_applied_as_is(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    allocator = Allocator(AllocatorSettings(p14a=P14aSettings(enabled=True)))
    members = [demand("a"), demand("b")]
    allocation = allocator.allocate(members, [GroupBudget("g", ("a", "b"), 7000)])
    assert sum(allocation.group_shares_w["g"].values()) <= 7000
    assert any("below the §14a minimum 7560 W" in r.getMessage() for r in caplog.records)
