"""Behavioural LPC conformance (use-cases.md §15.2), one test per checklist id, on a fake clock."""

from __future__ import annotations

import logging

import pytest

from bridge.clock import FakeClock
from bridge.model import FailsafeSettings
from bridge.runtime.statestore import StateStore
from bridge.usecases.lpc import Lpc, LpcSettings, LpcState

H = 3600.0


def make(clock: FakeClock, **kw: object) -> Lpc:
    return Lpc(clock, name="evse", **kw)  # type: ignore[arg-type]


def limited(clock: FakeClock, watts: float = 5000.0, duration: float | None = None) -> Lpc:
    lpc = make(clock)
    lpc.heartbeat_received()
    assert lpc.write_limit(watts, True, duration).accepted
    assert lpc.state is LpcState.LIMITED
    return lpc


def beat_for(clock: FakeClock, lpc: Lpc, seconds: float, every: float = 30.0) -> None:
    """Keep the EMS heartbeat going for `seconds`."""
    elapsed = 0.0
    while elapsed < seconds:
        step = min(every, seconds - elapsed)
        clock.advance(step)
        elapsed += step
        lpc.heartbeat_received()
        lpc.tick()


def into_failsafe(clock: FakeClock, lpc: Lpc) -> None:
    clock.advance(120.5)
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE


@pytest.mark.req("LPC-05")
def test_LPC_05_failsafe_duration_below_two_hours_denied(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    result = lpc.write_failsafe(duration_s=1 * H + 59 * 60)
    assert not result.accepted and "PT2H" in result.reason
    assert lpc.failsafe.duration_minimum_s == 2 * H


@pytest.mark.req("LPC-06")
def test_LPC_06_failsafe_duration_above_24_hours_denied(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    assert not lpc.write_failsafe(duration_s=24 * H + 60).accepted
    assert lpc.failsafe.duration_minimum_s == 2 * H


@pytest.mark.req("LPC-07")
def test_LPC_07_failsafe_duration_bounds_accepted(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    assert lpc.write_failsafe(duration_s=2 * H).accepted
    assert lpc.failsafe.duration_minimum_s == 2 * H
    assert lpc.write_failsafe(duration_s=24 * H).accepted
    assert lpc.failsafe.duration_minimum_s == 24 * H


@pytest.mark.req("LPC-08")
def test_LPC_08_negative_failsafe_limit_denied(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    result = lpc.write_failsafe(limit_w=-1)
    assert not result.accepted and "negative" in result.reason
    assert lpc.failsafe.consumption_limit_w == 4200
    assert not lpc.write_failsafe(limit_w=float("nan")).accepted
    # a denied duration in the same write leaves the limit unchanged too
    assert not lpc.write_failsafe(limit_w=3000, duration_s=60).accepted
    assert lpc.failsafe.consumption_limit_w == 4200


@pytest.mark.req("LPC-09")
def test_LPC_09_failsafe_values_persist_across_restart(fake_clock: FakeClock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = StateStore(tmp_path)
    lpc = make(fake_clock)
    assert lpc.write_failsafe(limit_w=3000, duration_s=5 * H).accepted
    store.save("lpc/evse.json", lpc.to_persisted())
    restarted = make(FakeClock(), restored=store.load("lpc/evse.json"))
    assert restarted.failsafe == FailsafeSettings(consumption_limit_w=3000, duration_minimum_s=5 * H)
    assert restarted.effective_cap_w == 3000


@pytest.mark.req("LPC-11")
def test_LPC_11_startup_in_init_with_failsafe_cap(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock, failsafe=FailsafeSettings(consumption_limit_w=3500))
    assert lpc.state is LpcState.INIT
    assert lpc.effective_cap_w == 3500


@pytest.mark.req("LPC-12")
def test_LPC_12_init_heartbeat_and_active_limit_goes_limited(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    lpc.heartbeat_received()
    result = lpc.write_limit(5000, True)
    assert result.accepted
    assert [(t.old, t.new) for t in result.transitions] == [(LpcState.INIT, LpcState.LIMITED)]
    assert lpc.effective_cap_w == 5000


@pytest.mark.req("LPC-12")
def test_LPC_12_limit_must_follow_the_heartbeat(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    assert lpc.write_limit(5000, True).accepted
    assert lpc.state is LpcState.INIT  # a limit alone is not enough
    lpc.heartbeat_received()
    assert lpc.state is LpcState.INIT  # it must follow the heartbeat
    assert lpc.write_limit(5000, True).accepted
    assert lpc.state is LpcState.LIMITED


@pytest.mark.req("LPC-13")
def test_LPC_13_init_heartbeat_and_inactive_limit_goes_unlimited_controlled(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    lpc.heartbeat_received()
    assert lpc.write_limit(5000, False).accepted
    assert lpc.state is LpcState.UNLIMITED_CONTROLLED
    assert lpc.effective_cap_w is None


@pytest.mark.req("LPC-14")
def test_LPC_14_init_without_ems_goes_autonomous_after_120s(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    assert lpc.next_deadline() == fake_clock.monotonic() + 120
    fake_clock.advance(119.9)
    assert lpc.tick() == [] and lpc.state is LpcState.INIT
    fake_clock.advance(0.2)
    lpc.tick()
    assert lpc.state is LpcState.UNLIMITED_AUTONOMOUS
    assert lpc.effective_cap_w is None
    # a site that never had an EMS never goes to failsafe
    fake_clock.advance(10 * H)
    assert lpc.tick() == [] and lpc.state is LpcState.UNLIMITED_AUTONOMOUS


@pytest.mark.req("LPC-20")
def test_LPC_20_limit_with_duration_is_released(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock, duration=60)
    fake_clock.advance(30)
    lpc.heartbeat_received()
    assert lpc.remaining_duration_s() == pytest.approx(30)
    fake_clock.advance(29.9)
    lpc.tick()
    assert lpc.state is LpcState.LIMITED
    fake_clock.advance(0.2)
    transitions = lpc.tick()
    assert [t.new for t in transitions] == [LpcState.UNLIMITED_CONTROLLED]
    assert lpc.limit.active is False
    assert lpc.effective_cap_w is None


@pytest.mark.req("LPC-21")
def test_LPC_21_limit_without_duration_does_not_expire(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock, duration=None)
    beat_for(fake_clock, lpc, 15 * 60)
    assert lpc.state is LpcState.LIMITED and lpc.effective_cap_w == 5000
    assert lpc.remaining_duration_s() is None


@pytest.mark.req("LPC-22")
def test_LPC_22_new_limit_replaces_value_and_restarts_duration(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock, duration=100)
    fake_clock.advance(80)
    lpc.heartbeat_received()
    assert lpc.write_limit(3000, True, 100).accepted
    assert lpc.effective_cap_w == 3000
    fake_clock.advance(90)  # 170 s after the first write: the first duration would be over
    lpc.tick()
    assert lpc.state is LpcState.LIMITED
    fake_clock.advance(11)
    lpc.tick()
    assert lpc.state is LpcState.UNLIMITED_CONTROLLED


@pytest.mark.req("LPC-27")
def test_LPC_27_failsafe_after_heartbeat_loss(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    assert lpc.next_deadline() == pytest.approx(fake_clock.monotonic() + 120, abs=0.01)
    fake_clock.advance(120.0)
    lpc.tick()
    assert lpc.state is LpcState.LIMITED
    fake_clock.advance(0.1)
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE
    assert lpc.effective_cap_w == 4200


@pytest.mark.req("LPC-28")
def test_LPC_28_failsafe_from_unlimited_controlled(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    lpc.heartbeat_received()
    lpc.write_limit(0, False)
    assert lpc.state is LpcState.UNLIMITED_CONTROLLED
    into_failsafe(fake_clock, lpc)


@pytest.mark.req("LPC-29")
def test_LPC_29_autonomous_goes_failsafe_only_after_a_heartbeat_in_that_state(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock)
    fake_clock.advance(121)
    lpc.tick()
    assert lpc.state is LpcState.UNLIMITED_AUTONOMOUS
    fake_clock.advance(1000)
    lpc.tick()
    assert lpc.state is LpcState.UNLIMITED_AUTONOMOUS
    lpc.heartbeat_received()  # an EMS appears
    into_failsafe(fake_clock, lpc)


@pytest.mark.req("LPC-30")
def test_LPC_30_heartbeat_gaps_up_to_120s_do_not_trigger_failsafe(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    for _ in range(50):
        fake_clock.advance(119.99)
        assert lpc.tick() == []
        lpc.heartbeat_received()
    assert lpc.state is LpcState.LIMITED


@pytest.mark.req("LPC-31")
def test_LPC_31_heartbeat_back_without_limit_stays_failsafe_until_duration(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    into_failsafe(fake_clock, lpc)
    entered = fake_clock.monotonic() - 0.5  # entry is last heartbeat + 120 s
    beat_for(fake_clock, lpc, 2 * H - 10)
    assert lpc.state is LpcState.FAILSAFE
    assert lpc.effective_cap_w == 4200
    beat_for(fake_clock, lpc, entered + 2 * H - fake_clock.monotonic() + 1, every=1)
    assert lpc.state is LpcState.UNLIMITED_AUTONOMOUS


@pytest.mark.req("LPC-32")
def test_LPC_32_heartbeat_and_limit_leave_failsafe_immediately(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    into_failsafe(fake_clock, lpc)
    fake_clock.advance(60)
    lpc.heartbeat_received()
    result = lpc.write_limit(6000, True)
    assert [t.new for t in result.transitions] == [LpcState.LIMITED]
    assert lpc.effective_cap_w == 6000
    into_failsafe(fake_clock, lpc)
    lpc.heartbeat_received()
    lpc.write_limit(6000, False)
    assert lpc.state is LpcState.UNLIMITED_CONTROLLED


@pytest.mark.req("LPC-33")
def test_LPC_33_limit_without_heartbeat_does_not_end_failsafe(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    into_failsafe(fake_clock, lpc)
    result = lpc.write_limit(7000, True)
    assert result.accepted and result.transitions == ()
    assert lpc.state is LpcState.FAILSAFE and lpc.effective_cap_w == 4200
    # the heartbeat alone does not end it either: the limit must follow it
    lpc.heartbeat_received()
    assert lpc.state is LpcState.FAILSAFE


@pytest.mark.req("LPC-34")
def test_LPC_34_after_duration_heartbeat_but_no_limit_within_grace_goes_autonomous(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    into_failsafe(fake_clock, lpc)
    fake_clock.advance(2 * H)  # duration over, heartbeat still missing
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE
    lpc.heartbeat_received()  # heartbeat recovers after the duration
    beat_for(fake_clock, lpc, 119, every=1)
    assert lpc.state is LpcState.FAILSAFE  # 120 s grace for the EMS to state a limit
    beat_for(fake_clock, lpc, 2, every=1)
    assert lpc.state is LpcState.UNLIMITED_AUTONOMOUS


@pytest.mark.req("LPC-35")
def test_LPC_35_duration_over_and_heartbeat_missing_stays_failsafe(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    into_failsafe(fake_clock, lpc)
    fake_clock.advance(30 * H)
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE and lpc.effective_cap_w == 4200
    assert lpc.next_deadline() is None


@pytest.mark.req("LPC-35")
def test_LPC_35_configured_to_leave_after_duration(fake_clock: FakeClock) -> None:
    lpc = make(fake_clock, settings=LpcSettings(after_failsafe="autonomous"))
    lpc.heartbeat_received()
    lpc.write_limit(5000, True)
    into_failsafe(fake_clock, lpc)
    fake_clock.advance(2 * H - 1)
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE
    fake_clock.advance(1)
    lpc.tick()
    assert lpc.state is LpcState.UNLIMITED_AUTONOMOUS


@pytest.mark.req("LPC-36")
def test_LPC_36_failsafe_limit_change_in_failsafe_applies_immediately(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    into_failsafe(fake_clock, lpc)
    assert lpc.write_failsafe(limit_w=2500).accepted
    assert lpc.effective_cap_w == 2500


@pytest.mark.req("LPC-37")
def test_LPC_37_failsafe_entry_measured_from_last_heartbeat(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock)
    last_beat = fake_clock.monotonic()
    wall_at_beat = fake_clock.now()
    fake_clock.advance(125)  # the poller notices 5 s late
    (transition,) = lpc.tick()
    assert transition.new is LpcState.FAILSAFE
    assert (transition.at - wall_at_beat).total_seconds() == pytest.approx(120, abs=0.01)
    # T_fs runs from last heartbeat + 120 s, so with the heartbeat back the exit is at exactly that + 2 h + grace
    lpc.heartbeat_received()
    assert lpc.next_deadline() == pytest.approx(last_beat + 120 + 2 * H)


@pytest.mark.req("LPC-40")
def test_LPC_40_state_changes_are_logged(fake_clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge.usecases.lpc")
    lpc = make(fake_clock)
    lpc.heartbeat_received()
    lpc.write_limit(5000, True)
    records = [r for r in caplog.records if getattr(r, "lpc_new_state", None)]
    assert len(records) == 1
    record = records[0]
    assert record.lpc_old_state == "init"  # type: ignore[attr-defined]
    assert record.lpc_new_state == "limited"  # type: ignore[attr-defined]
    assert "T2" in record.lpc_reason  # type: ignore[attr-defined]
    assert record.lpc_at.startswith("2026-")  # type: ignore[attr-defined]
    assert "init -> limited" in record.getMessage()


@pytest.mark.req("LPC-41")
def test_LPC_41_last_limit_persists_but_restart_begins_in_init(fake_clock: FakeClock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = StateStore(tmp_path)
    lpc = limited(fake_clock, watts=6000, duration=600)
    fake_clock.advance(100)
    store.save("lpc/evse.json", lpc.to_persisted())
    clock2 = FakeClock()
    again = make(clock2, restored=store.load("lpc/evse.json"))
    assert again.state is LpcState.INIT
    assert again.effective_cap_w == 4200
    assert again.limit.value_w == 6000 and again.limit.active
    assert again.remaining_duration_s() == pytest.approx(500)
    again.heartbeat_received()
    again.write_limit(6000, True)
    assert again.state is LpcState.LIMITED


@pytest.mark.req("LPC-15")
def test_negative_or_non_numeric_limit_denied_and_previous_stays(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock, watts=5000)
    for bad in (-1.0, float("inf"), float("nan")):
        result = lpc.write_limit(bad, True)
        assert not result.accepted and result.reason
    assert lpc.effective_cap_w == 5000


@pytest.mark.req("LPC-16")
def test_limit_not_changeable_denied(fake_clock: FakeClock) -> None:
    lpc = limited(fake_clock, watts=5000)
    lpc.set_changeable(False)
    assert not lpc.write_limit(3000, True).accepted
    assert lpc.effective_cap_w == 5000
