"""Property tests of the LPC state machine: random heartbeats, writes and time steps.

Each run drives two machines with the same inputs: one whose timers are run exactly at
`next_deadline()` (what the runtime does) and one that is only ticked when an input
arrives (a late poller).  Both must agree, and the safety invariants must hold on both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.usecases.lpc import Lpc, LpcSettings, LpcState, LpcTransition

TIMEOUT = 120.0
EPS = 1e-5
H = 3600.0

heartbeat = st.just(("hb",))
write = st.tuples(
    st.just("write"),
    st.one_of(st.floats(0, 30_000), st.sampled_from([-1.0, float("nan"), float("inf")])),
    st.booleans(),
    st.one_of(st.none(), st.floats(0, 3 * H)),
)
failsafe = st.tuples(
    st.just("fs"),
    st.one_of(st.none(), st.floats(-10, 20_000)),
    st.one_of(st.none(), st.floats(1 * H, 25 * H)),
)
advance = st.tuples(
    st.just("adv"),
    st.one_of(
        st.floats(0, 130),
        st.floats(0, 3 * H),
        st.sampled_from([30.0, 119.9, 120.0, 120.1, 2 * H - 60, 2 * H, 2 * H + 0.5]),  # around the timers
    ),
)
ops = st.lists(st.one_of(heartbeat, write, failsafe, advance, advance), max_size=60)
WALL0 = datetime(2026, 1, 1, tzinfo=UTC)


class SetClock:
    """A test clock set to absolute times, so both machines see bit-identical instants."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return WALL0 + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - not used by Lpc
        raise AssertionError("Lpc must not sleep")


@dataclass
class Driven:
    """One machine plus what the test knows independently about its inputs."""

    clock: SetClock
    lpc: Lpc
    on_time: bool
    transitions: list[LpcTransition] = field(default_factory=list)
    heartbeats: list[float] = field(default_factory=list)
    accepted_value: float | None = None

    def mono(self, t: LpcTransition) -> float:
        """Monotonic time of a transition (the wall time moves with monotonic time)."""
        return (t.at - WALL0).total_seconds()

    def step(self, op: tuple[Any, ...]) -> None:
        match op:
            case ("hb",):
                self.heartbeats.append(self.clock.monotonic())
                self.transitions += self.lpc.heartbeat_received()
            case ("write", value, active, duration):
                result = self.lpc.write_limit(value, active, duration)
                self.transitions += result.transitions
                if result.accepted:
                    self.accepted_value = value
                else:
                    assert result.reason
            case ("fs", limit, duration):
                self.transitions += self.lpc.write_failsafe(limit_w=limit, duration_s=duration).transitions
            case ("adv", _, target):
                self.advance(target)
        self.check()

    def advance(self, target: float) -> None:
        """Move to `target`; the on-time machine stops at every deadline on the way."""
        while self.on_time and (d := self.lpc.next_deadline()) is not None and d <= target:
            self.clock.t = max(self.clock.t, d)
            fired = self.lpc.tick()
            if not fired:  # a tentative deadline (heartbeat judged again then) may pass quietly
                assert (after := self.lpc.next_deadline()) is None or after > d, "deadline did not move"
            self.transitions += fired
        self.clock.t = target

    def check(self) -> None:
        lpc = self.lpc
        assert lpc.state in set(LpcState)
        cap = lpc.effective_cap_w
        if lpc.state is LpcState.LIMITED:
            assert self.accepted_value is not None and cap == self.accepted_value
        elif lpc.state in (LpcState.INIT, LpcState.FAILSAFE):
            assert cap == lpc.failsafe.consumption_limit_w
        else:
            assert cap is None
        d = lpc.next_deadline()
        if self.on_time:
            assert d is None or d > self.clock.monotonic() - 1e-6  # nothing overdue
        if self.on_time:
            assert lpc.tick() == []  # idempotent once on time


def check_history(run: Driven, after_failsafe: str) -> None:
    """Invariants over the whole transition history."""
    state = LpcState.INIT
    failsafe_since = 0.0
    for t in run.transitions:
        assert t.old is state, "transitions chain"
        at = run.mono(t)  # wall times resolve to 1 µs
        before = [b for b in run.heartbeats if b <= at + EPS]
        if t.new is LpcState.FAILSAFE:
            assert before, "never into failsafe without ever having had an EMS"
            assert at - before[-1] == pytest.approx(TIMEOUT, abs=0.01), "entry at last heartbeat + 120 s (LPC-37)"
            failsafe_since = at
        if t.old is LpcState.FAILSAFE:
            timed_out = t.new is LpcState.UNLIMITED_AUTONOMOUS and after_failsafe == "autonomous"
            if not timed_out:
                assert any(b > failsafe_since for b in before), "left failsafe before the heartbeat came back"
                assert at - before[-1] <= TIMEOUT + EPS, "left failsafe without a present heartbeat"
            if t.new is LpcState.UNLIMITED_AUTONOMOUS:
                assert at - failsafe_since >= 2 * H - EPS, "left failsafe before its minimum duration"
        state = t.new
    assert state is run.lpc.state


@settings(max_examples=400, deadline=None)
@given(ops=ops, after=st.sampled_from(["stay", "autonomous"]))
def test_random_sequences_keep_the_invariants_and_timing_does_not_depend_on_polling(
    ops: list[tuple[Any, ...]], after: str
) -> None:
    lpc_settings = LpcSettings(after_failsafe=after)  # type: ignore[arg-type]
    runs = []
    for on_time in (True, False):
        clock = SetClock()
        runs.append(Driven(clock, Lpc(clock, settings=lpc_settings), on_time))
    now = 0.0
    for op in ops:
        if op[0] == "adv":
            now += op[1]
            op = (*op, now)  # the same absolute instant for both machines
        for run in runs:
            run.step(op)
    for run in runs:
        run.transitions += run.lpc.tick()
        check_history(run, after)
    exact, late = runs
    assert exact.lpc.state is late.lpc.state
    assert exact.lpc.effective_cap_w == late.lpc.effective_cap_w
    assert exact.lpc.to_persisted() == late.lpc.to_persisted()
    assert [(x.old, x.new, x.reason) for x in exact.transitions] == [(x.old, x.new, x.reason) for x in late.transitions]
    for x, y in zip(exact.transitions, late.transitions, strict=True):
        assert abs((x.at - y.at).total_seconds()) <= 2e-6  # wall times resolve to 1 µs
