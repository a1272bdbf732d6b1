"""LPC state machine edge cases beyond the checklist: late polling, durations that run out
outside Limited, restore of damaged state, and writes whose effect is due at once."""

from __future__ import annotations

import logging

import pytest

from bridge.clock import FakeClock
from bridge.model import FailsafeSettings
from bridge.usecases.lpc import Lpc, LpcSettings, LpcState

H = 3600.0


def limited(clock: FakeClock, *, duration: float | None = None, **kw: object) -> Lpc:
    lpc = Lpc(clock, name="evse", **kw)  # type: ignore[arg-type]
    lpc.heartbeat_received()
    assert lpc.write_limit(5000, True, duration).accepted
    assert lpc.state is LpcState.LIMITED
    return lpc


def beat(clock: FakeClock, lpc: Lpc, until: float, every: float = 30.0) -> None:
    """Heartbeats every `every` s up to monotonic time `until`, without ticking in between."""
    while clock.monotonic() + every <= until:
        clock.advance(every)
        lpc.heartbeat_received()


def test_late_poll_leaves_failsafe_at_the_moment_the_heartbeat_was_present() -> None:
    """T11 is decided at failsafe end + grace, not when a late `tick()` runs."""
    clocks = (FakeClock(), FakeClock())
    machines = [limited(c) for c in clocks]
    for clock, lpc in zip(clocks, machines, strict=True):
        clock.advance(121)
        lpc.tick()
        assert lpc.state is LpcState.FAILSAFE
        lpc.heartbeat_received()  # back at entry + ~1 s
    fs_end = 1000 + 120 + 1e-3 + 2 * H
    exact, late = machines
    # exact: heartbeats up to the end of failsafe, then woken at the deadline
    beat(clocks[0], exact, fs_end - 5)
    assert exact.next_deadline() == pytest.approx(fs_end)
    clocks[0].advance(fs_end - clocks[0].monotonic())
    (t_exact,) = exact.tick()
    # late: same heartbeats, then the EMS falls silent and nobody ticks for 10 minutes
    beat(clocks[1], late, fs_end - 5)
    clocks[1].advance(600)
    (t_late,) = late.tick()
    assert (t_exact.old, t_exact.new) == (t_late.old, t_late.new) == (LpcState.FAILSAFE, LpcState.UNLIMITED_AUTONOMOUS)
    assert t_late.at == t_exact.at
    assert "T11" in t_late.reason


def test_failsafe_stays_when_the_heartbeat_is_gone_again_at_its_end() -> None:
    clock = FakeClock()
    lpc = limited(clock)
    clock.advance(121)
    lpc.tick()
    lpc.heartbeat_received()  # back briefly, then silent again
    assert lpc.next_deadline() is not None  # tentative: judged again at the end of T_fs
    clock.advance(2 * H)
    assert lpc.tick() == []
    assert lpc.state is LpcState.FAILSAFE
    assert lpc.next_deadline() is None  # nothing to wake for until a heartbeat arrives


def test_second_recovery_restarts_the_grace_period() -> None:
    clock = FakeClock()
    lpc = limited(clock)
    clock.advance(121)
    lpc.tick()
    clock.advance(2 * H)  # duration over, still silent: stays (LPC-35)
    lpc.heartbeat_received()
    clock.advance(200)  # lost again
    assert lpc.tick() == [] and lpc.state is LpcState.FAILSAFE
    lpc.heartbeat_received()  # back again: a fresh 120 s to state a limit
    back = clock.monotonic()
    beat(clock, lpc, back + 119, every=1)
    assert lpc.tick() == [] and lpc.state is LpcState.FAILSAFE
    beat(clock, lpc, back + 121, every=1)
    assert lpc.state is LpcState.UNLIMITED_AUTONOMOUS


def test_limit_duration_runs_out_during_failsafe() -> None:
    clock = FakeClock()
    lpc = limited(clock, duration=600)
    clock.advance(121)
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE
    assert lpc.limit.active and lpc.remaining_duration_s() == pytest.approx(479)
    clock.advance(500)
    assert lpc.tick() == []
    assert lpc.limit.active is False and lpc.limit.duration_s is None
    assert lpc.remaining_duration_s() is None
    assert lpc.to_persisted()["limit"] == {"value_w": 5000, "active": False, "changeable": True, "remaining_s": None}
    assert lpc.effective_cap_w == 4200


def test_restored_limit_runs_out_during_init() -> None:
    clock = FakeClock()
    saved = limited(FakeClock(), duration=60).to_persisted()
    lpc = Lpc(clock, restored=saved)
    assert lpc.limit.active and lpc.remaining_duration_s() == pytest.approx(60)
    clock.advance(61)
    lpc.tick()
    assert lpc.state is LpcState.INIT
    assert not lpc.limit.active and lpc.remaining_duration_s() is None


def test_restored_limit_with_no_time_left_is_inactive() -> None:
    saved = {
        "failsafe": {"consumption_limit_w": 3000, "duration_minimum_s": 2 * H},
        "limit": {"value_w": 6000, "active": True, "changeable": True, "remaining_s": 0.0},
    }
    lpc = Lpc(FakeClock(), restored=saved)
    assert lpc.limit.active is False
    assert lpc.effective_cap_w == 3000


@pytest.mark.parametrize(
    "damaged",
    [
        {},
        {"failsafe": {"consumption_limit_w": -5, "duration_minimum_s": 2 * H}},
        {"failsafe": {"consumption_limit_w": 3000, "duration_minimum_s": 60}},
        {"failsafe": "x"},
    ],
)
def test_damaged_persisted_state_falls_back_to_defaults(damaged: dict, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[type-arg]
    caplog.set_level(logging.ERROR, logger="bridge.usecases.lpc")
    lpc = Lpc(FakeClock(), restored=damaged or {"version": 1})
    assert lpc.failsafe == FailsafeSettings()
    assert lpc.state is LpcState.INIT and lpc.effective_cap_w == 4200
    assert any("persisted state unusable" in r.getMessage() for r in caplog.records)


def test_duration_zero_means_no_expiry() -> None:
    """eebus-go reports Duration 0 for "no duration" (§1.5 note): never treat it as expired."""
    clock = FakeClock()
    lpc = limited(clock, duration=0)
    beat(clock, lpc, clock.monotonic() + 3600)
    lpc.tick()
    assert lpc.state is LpcState.LIMITED and lpc.limit.active


def test_duration_already_over_at_write_is_released_in_the_same_call() -> None:
    clock = FakeClock()
    lpc = Lpc(clock)
    lpc.heartbeat_received()
    result = lpc.write_limit(5000, True, 1e-300)  # shorter than the clock can resolve
    assert [t.new for t in result.transitions] == [LpcState.LIMITED, LpcState.UNLIMITED_CONTROLLED]
    assert lpc.next_deadline() is not None and lpc.next_deadline() > clock.monotonic()


def test_shorter_failsafe_duration_ends_failsafe_in_the_same_write() -> None:
    clock = FakeClock()
    lpc = limited(clock, settings=LpcSettings(after_failsafe="autonomous"))
    assert lpc.write_failsafe(duration_s=10 * H).accepted
    clock.advance(120.5 + 3 * H)
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE
    result = lpc.write_failsafe(duration_s=2 * H)
    assert result.accepted
    (t,) = result.transitions
    assert t.new is LpcState.UNLIMITED_AUTONOMOUS
    entered = FakeClock().now().timestamp() + 120.001  # last heartbeat at the start + 120 s
    assert t.at.timestamp() == pytest.approx(entered + 2 * H, abs=1e-6)  # when it became due, not now


def test_shortened_timers_for_integration_tests() -> None:
    clock = FakeClock()
    fast = LpcSettings(heartbeat_timeout_s=2, init_timeout_s=3, recovery_grace_s=1)
    idle = Lpc(clock, settings=fast)
    clock.advance(3)
    idle.tick()
    assert idle.state is LpcState.UNLIMITED_AUTONOMOUS
    lpc = limited(clock, settings=fast)
    clock.advance(2)
    assert lpc.tick() == []
    clock.advance(0.01)
    lpc.tick()
    assert lpc.state is LpcState.FAILSAFE


def test_writes_while_not_changeable_are_denied_in_every_state() -> None:
    clock = FakeClock()
    lpc = Lpc(clock)
    lpc.set_changeable(False)
    result = lpc.write_limit(1000, True, None)
    assert not result.accepted and "isLimitChangeable" in result.reason
    assert lpc.limit.value_w == 0 and not lpc.limit.active


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_bad_durations_are_denied(bad: float) -> None:
    lpc = limited(FakeClock())
    result = lpc.write_limit(3000, True, bad)
    assert not result.accepted and "duration" in result.reason
    assert lpc.effective_cap_w == 5000


def test_a_single_heartbeat_after_the_duration_does_not_release_failsafe() -> None:
    """An EMS that sends one heartbeat and dies again must not end Failsafe at the tie of T_rel and T_hb."""
    clock = FakeClock()
    lpc = limited(clock)
    clock.advance(121)
    lpc.tick()
    clock.advance(3 * H)
    lpc.heartbeat_received()
    clock.advance(120)  # grace over, and the heartbeat exactly 120 s old
    assert lpc.tick() == []
    clock.advance(10 * H)
    assert lpc.tick() == [] and lpc.state is LpcState.FAILSAFE and lpc.effective_cap_w == 4200
