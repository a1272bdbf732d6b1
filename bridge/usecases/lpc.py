"""LPC (limitation of active power consumption), controllable-system side: a pure state machine.

States Init, Unlimited/controlled, Limited, Failsafe, Unlimited/autonomous with
transitions T1–T14 of use-cases.md §1.5.  No I/O: the machine reads the
injected clock (`monotonic()` for timers, `now()` for timestamps) and the
runtime calls `tick()` at `next_deadline()`.  Decisions for the open points of
the reference:

- Heartbeat *loss* means a heartbeat that was being received stopped for more
  than `heartbeat_timeout_s` (120 s).  A site that never had an EMS goes
  Init → Unlimited/autonomous after `init_timeout_s` (LPC-14) and never into
  Failsafe; from Unlimited/autonomous only a heartbeat received in that state
  that then goes missing leads to Failsafe (LPC-29).
- Failsafe is entered at last heartbeat + timeout, whenever `tick()` notices
  it (LPC-37); T_fs runs from that moment.
- After T_fs with the heartbeat still missing the machine stays in Failsafe
  (LPC-35) unless `after_failsafe="autonomous"`.
- In Init and Failsafe a limit only counts when it follows a present
  heartbeat (in Failsafe: a heartbeat received after Failsafe was entered,
  LPC-32/33).  Such writes are accepted and stored but do not change state.
- T11 (Failsafe → Unlimited/autonomous once T_fs is over and the heartbeat is
  back without a limit) needs the heartbeat still present at that instant,
  strictly: one heartbeat exactly T_rel old does not count (the tie of the two
  120 s timers goes to the safe side).
- A limit without duration (or with duration 0, as eebus-go reports "none")
  never expires; each write restarts the duration.  A duration also runs out
  outside Limited (Init after a restart, Failsafe): the record then simply
  reads inactive, without a state change.
- Every input first runs the timers that were due and afterwards those it made
  due.  Timers fire at their own instant and judge the heartbeat at that
  instant, so a late `tick()` gives the same states and transition times as
  one run exactly at `next_deadline()` (tests/unit/test_lpc_properties.py).
  A deadline may be tentative (T11 while heartbeats still arrive): `tick()`
  then does nothing and the deadline moves on.

Public API (used by the SPINE device and the runtime):
`Lpc(clock, settings=, failsafe=, restored=, name=)`, `state`, `limit`,
`failsafe`, `effective_cap_w`, `heartbeat_received()`, `write_limit()`,
`write_failsafe()`, `tick()`, `next_deadline()`, `remaining_duration_s()`,
`to_persisted()`, `set_changeable()`.  Every method that can change state
returns the `LpcTransition`s it caused (writes: in `WriteResult.transitions`),
each also logged once at INFO with old/new state, reason and time (LPC-40).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from bridge.clock import Clock
from bridge.model import FAILSAFE_DURATION_MAX, FAILSAFE_DURATION_MIN, FailsafeSettings, PowerLimit

log = logging.getLogger(__name__)


class LpcState(StrEnum):
    INIT = "init"
    UNLIMITED_CONTROLLED = "unlimited_controlled"
    LIMITED = "limited"
    FAILSAFE = "failsafe"
    UNLIMITED_AUTONOMOUS = "unlimited_autonomous"


@dataclass(frozen=True)
class LpcSettings:
    """Timers of the use case; shorten them only in tests."""

    heartbeat_timeout_s: float = 120.0
    init_timeout_s: float = 120.0
    recovery_grace_s: float = 120.0
    after_failsafe: Literal["stay", "autonomous"] = "stay"


@dataclass(frozen=True)
class LpcTransition:
    old: LpcState
    new: LpcState
    reason: str
    at: datetime


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a write: denied writes carry a reason (SPINE errorNumber 7 + description)."""

    accepted: bool
    reason: str = ""
    transitions: tuple[LpcTransition, ...] = field(default=())


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Lpc:
    """One controllable system's LPC state; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        *,
        settings: LpcSettings = LpcSettings(),
        failsafe: FailsafeSettings = FailsafeSettings(),
        restored: dict[str, Any] | None = None,
        name: str = "",
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._name = name
        self._failsafe = failsafe
        self._limit = PowerLimit(value_w=0.0, active=False, changeable=True)
        self._limit_expires_at: float | None = None
        if restored:
            self._restore(restored)
        now = clock.monotonic()
        # T1: power-up enters Init with the failsafe cap applied.
        self._state = LpcState.INIT
        self._state_since = now
        self._last_heartbeat: float | None = None
        self._heartbeat_in_autonomous = False
        self._failsafe_since: float | None = None
        self._heartbeat_back_at: float | None = None  # first heartbeat after Failsafe was entered
        log.info(
            "LPC %s: start in %s, failsafe cap %.0f W",
            name,
            self._state.value,
            self._failsafe.consumption_limit_w,
            extra={"lpc_device": name, "lpc_state": self._state.value},
        )

    # -- read side ----------------------------------------------------------
    @property
    def state(self) -> LpcState:
        return self._state

    @property
    def settings(self) -> LpcSettings:
        return self._settings

    @property
    def limit(self) -> PowerLimit:
        """The APCL record as the EMS sees it (value, active, changeable, remaining duration).

        A duration also runs out outside Limited (in Init after a restart, in Failsafe): the
        record then reads inactive without a duration, as after T6, and is persisted that way.
        """
        if self._expired():
            return self._limit.model_copy(update={"active": False, "duration_s": None})
        return self._limit.model_copy(update={"duration_s": self.remaining_duration_s()})

    @property
    def failsafe(self) -> FailsafeSettings:
        return self._failsafe

    @property
    def effective_cap_w(self) -> float | None:
        """The W cap LPC imposes now; None when unlimited (other use cases still apply)."""
        if self._state in (LpcState.INIT, LpcState.FAILSAFE):
            return self._failsafe.consumption_limit_w
        if self._state is LpcState.LIMITED:
            return self._limit.value_w
        return None

    @property
    def last_heartbeat(self) -> float | None:
        return self._last_heartbeat

    def heartbeat_present(self) -> bool:
        return self._heartbeat_fresh(self._clock.monotonic())

    def remaining_duration_s(self) -> float | None:
        """Seconds until the active limit's duration ends; None without a duration or once over."""
        if self._limit_expires_at is None or not self._limit.active or self._expired():
            return None
        return self._limit_expires_at - self._clock.monotonic()

    def _expired(self) -> bool:
        return self._limit_expires_at is not None and self._clock.monotonic() >= self._limit_expires_at

    # -- inputs -------------------------------------------------------------
    def heartbeat_received(self) -> list[LpcTransition]:
        """The EMS's heartbeat arrived (a notify or reply of its DeviceDiagnosis heartbeat)."""
        transitions = self.tick()
        now = self._clock.monotonic()
        recovered = not self._heartbeat_fresh(now)
        self._last_heartbeat = now
        if self._state is LpcState.UNLIMITED_AUTONOMOUS:
            self._heartbeat_in_autonomous = True
        if self._state is LpcState.FAILSAFE and (recovered or self._heartbeat_back_at is None):
            self._heartbeat_back_at = now
            log.info("LPC %s: heartbeat back in failsafe", self._name, extra={"lpc_device": self._name})
        return transitions + self.tick()  # a heartbeat at the end of the grace period completes T11

    def write_limit(self, value_w: float, active: bool, duration_s: float | None = None) -> WriteResult:
        """An APCL write from the EMS; accepted or denied with a reason (§1.6)."""
        pre = self.tick()
        if not _finite(value_w):
            return WriteResult(False, "limit value is not a finite number", tuple(pre))
        if value_w < 0:
            return WriteResult(False, f"negative power limit {value_w} W is not allowed", tuple(pre))
        if not self._limit.changeable:
            return WriteResult(False, "limit is not changeable (isLimitChangeable=false)", tuple(pre))
        if duration_s is not None and (not _finite(duration_s) or duration_s < 0):
            return WriteResult(False, f"invalid limit duration {duration_s!r}", tuple(pre))
        now = self._clock.monotonic()
        self._limit = PowerLimit(
            value_w=float(value_w),
            active=bool(active),
            changeable=True,
            duration_s=duration_s,
            received_at=self._clock.now(),
        )
        self._limit_expires_at = now + duration_s if (active and duration_s is not None and duration_s > 0) else None
        transitions = list(pre)
        heartbeat = self._heartbeat_fresh(now)
        match self._state:
            case LpcState.INIT:
                if heartbeat:
                    transitions += self._leave_for_limit("heartbeat and limit received (T2/T3)")
            case LpcState.FAILSAFE:
                if heartbeat and self._heartbeat_back_at is not None:
                    transitions += self._leave_for_limit("heartbeat back and new limit (T10)")
            case LpcState.UNLIMITED_AUTONOMOUS:
                if heartbeat:
                    transitions += self._leave_for_limit("heartbeat and limit received (T13)")
            case LpcState.LIMITED | LpcState.UNLIMITED_CONTROLLED:
                transitions += self._leave_for_limit("new limit (T5/T7/T8)")
        transitions += self.tick()  # a duration so short that it is already over
        return WriteResult(True, "", tuple(transitions))

    def write_failsafe(self, *, limit_w: float | None = None, duration_s: float | None = None) -> WriteResult:
        """A write of the failsafe values (scenario 2); both are validated before either changes."""
        pre = tuple(self.tick())
        if limit_w is not None:
            if not _finite(limit_w):
                return WriteResult(False, "failsafe limit is not a finite number", pre)
            if limit_w < 0:
                return WriteResult(False, f"negative failsafe limit {limit_w} W is not allowed", pre)
        if duration_s is not None:
            lo, hi = FAILSAFE_DURATION_MIN.total_seconds(), FAILSAFE_DURATION_MAX.total_seconds()
            if not _finite(duration_s) or not lo <= duration_s <= hi:
                return WriteResult(
                    False, f"failsafe duration minimum {duration_s!r} s outside {lo:.0f}..{hi:.0f} s (PT2H..PT24H)", pre
                )
        update: dict[str, float] = {}
        if limit_w is not None:
            update["consumption_limit_w"] = float(limit_w)
        if duration_s is not None:
            update["duration_minimum_s"] = float(duration_s)
        self._failsafe = self._failsafe.model_copy(update=update)
        log.info(
            "LPC %s: failsafe values now %.0f W for at least %s",
            self._name,
            self._failsafe.consumption_limit_w,
            timedelta(seconds=self._failsafe.duration_minimum_s),
            extra={"lpc_device": self._name},
        )
        # a shorter duration can make the end of Failsafe due at once
        return WriteResult(True, "", pre + tuple(self.tick()))

    def set_changeable(self, changeable: bool) -> None:
        """The CS (not the EMS) decides whether the limit may be written (LPC-16)."""
        self._limit = self._limit.model_copy(update={"changeable": changeable})

    # -- timers -------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """Monotonic time at which `tick()` has something to do, or None."""
        events = self._timer_events()
        return min(at for at, _ in events) if events else None

    def tick(self) -> list[LpcTransition]:
        """Run every timer that is due, in time order; safe to call at any time."""
        transitions: list[LpcTransition] = []
        now = self._clock.monotonic()
        for _ in range(10):  # each round moves the state; a handful is always enough
            due = [e for e in self._timer_events() if e[0] <= now]
            if not due:
                break
            at, action = min(due, key=lambda e: e[0])
            transitions += action(at)
        return transitions

    def _timer_events(self) -> list[tuple[float, Callable[[float], list[LpcTransition]]]]:
        """The timers armed in the current state, with what each does when it fires."""
        s = self._settings
        # "missing for more than the timeout": the loss fires just after it, at 1 ms resolution
        hb_loss = None if self._last_heartbeat is None else self._last_heartbeat + s.heartbeat_timeout_s + 1e-3
        events: list[tuple[float, Callable[[float], list[LpcTransition]]]] = []
        match self._state:
            case LpcState.INIT:
                at = self._state_since + s.init_timeout_s
                events.append((at, lambda t: self._go(LpcState.UNLIMITED_AUTONOMOUS, "no heartbeat and limit (T4)", t)))
            case LpcState.LIMITED | LpcState.UNLIMITED_CONTROLLED | LpcState.UNLIMITED_AUTONOMOUS:
                if self._state is LpcState.LIMITED and self._limit_expires_at is not None:
                    events.append((self._limit_expires_at, self._expire_limit))
                watched = self._state is not LpcState.UNLIMITED_AUTONOMOUS or self._heartbeat_in_autonomous
                if hb_loss is not None and watched:
                    events.append((hb_loss, self._enter_failsafe))
            case LpcState.FAILSAFE:
                if (end := self._failsafe_end()) is not None:
                    at, reason = end
                    events.append((at, lambda t: self._go(LpcState.UNLIMITED_AUTONOMOUS, reason, t)))
        return events

    def _failsafe_end(self) -> tuple[float, str] | None:
        """When and why Failsafe may be left without a new limit (T11), or None while it must stay (T12/LPC-35).

        Once due, the heartbeat is judged at the moment of leaving, not when `tick()` runs, so a
        late poller reaches the same decision at the same time as one that woke at the deadline.
        """
        assert self._failsafe_since is not None
        fs_end = self._failsafe_since + self._failsafe.duration_minimum_s
        if self._heartbeat_back_at is not None and self._last_heartbeat is not None:
            end = max(fs_end, self._heartbeat_back_at + self._settings.recovery_grace_s)
            lost_at = self._last_heartbeat + self._settings.heartbeat_timeout_s
            now = self._clock.monotonic()
            # before `end`: present now (a tentative deadline, judged again then); once due: still
            # present at `end` itself, strictly, so one heartbeat exactly T_rel ago does not count
            if (now < end and lost_at >= now) or lost_at > end:
                return end, "failsafe duration over, heartbeat back but no limit (T11)"
        if self._settings.after_failsafe == "autonomous":
            return fs_end, "failsafe duration over, configured to leave (after_failsafe=autonomous)"
        return None  # heartbeat missing: stay; each heartbeat that arrives re-arms the timer

    # -- transitions ----------------------------------------------------------
    def _heartbeat_fresh(self, at: float) -> bool:
        return self._last_heartbeat is not None and at - self._last_heartbeat <= self._settings.heartbeat_timeout_s

    def _expire_limit(self, at: float) -> list[LpcTransition]:
        self._limit = self._limit.model_copy(update={"active": False, "duration_s": None})
        self._limit_expires_at = None
        return self._go(LpcState.UNLIMITED_CONTROLLED, "limit duration elapsed (T6)", at)

    def _enter_failsafe(self, at: float) -> list[LpcTransition]:
        self._failsafe_since = at
        self._heartbeat_back_at = None
        reason = f"heartbeat missing for more than {self._settings.heartbeat_timeout_s:.0f} s (T9)"
        return self._go(LpcState.FAILSAFE, reason, at)

    def _leave_for_limit(self, reason: str) -> list[LpcTransition]:
        now = self._clock.monotonic()
        target = LpcState.LIMITED if self._limit.active else LpcState.UNLIMITED_CONTROLLED
        if target is self._state:
            return []
        return self._go(target, reason, now)

    def _go(self, new: LpcState, reason: str, at: float) -> list[LpcTransition]:
        old = self._state
        self._state = new
        self._state_since = at
        if new is not LpcState.UNLIMITED_AUTONOMOUS:
            self._heartbeat_in_autonomous = False
        if new is not LpcState.FAILSAFE:
            self._failsafe_since = None
            self._heartbeat_back_at = None
        wall = self._clock.now() - timedelta(seconds=max(0.0, self._clock.monotonic() - at))
        transition = LpcTransition(old, new, reason, wall)
        log.info(
            "LPC %s: %s -> %s (%s) at %s",
            self._name,
            old.value,
            new.value,
            reason,
            wall.isoformat(),
            extra={
                "lpc_device": self._name,
                "lpc_old_state": old.value,
                "lpc_new_state": new.value,
                "lpc_reason": reason,
                "lpc_at": wall.isoformat(),
            },
        )
        return [transition]

    # -- persistence --------------------------------------------------------------
    def to_persisted(self) -> dict[str, Any]:
        """JSON-able state that must survive a restart: failsafe values and the last accepted APCL."""
        limit = self.limit
        return {
            "version": 1,
            "failsafe": {
                "consumption_limit_w": self._failsafe.consumption_limit_w,
                "duration_minimum_s": self._failsafe.duration_minimum_s,
            },
            "limit": {
                "value_w": limit.value_w,
                "active": limit.active,
                "changeable": limit.changeable,
                "remaining_s": limit.duration_s,
            },
        }

    def _restore(self, data: dict[str, Any]) -> None:
        try:
            fs = data["failsafe"]
            self._failsafe = FailsafeSettings(
                consumption_limit_w=fs["consumption_limit_w"], duration_minimum_s=fs["duration_minimum_s"]
            )
            lim = data["limit"]
            remaining = lim.get("remaining_s")
            self._limit = PowerLimit(
                value_w=lim["value_w"], active=lim["active"], changeable=lim["changeable"], duration_s=remaining
            )
            if remaining is not None and lim["active"]:
                self._limit_expires_at = self._clock.monotonic() + float(remaining)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("LPC %s: persisted state unusable (%s); starting from defaults", self._name, exc)
