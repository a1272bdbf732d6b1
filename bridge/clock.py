"""Injected time, so every timer in the logic can be tested in microseconds.

Nothing in `bridge` or `adapters` reads the wall clock or sleeps directly:
it receives a `Clock`.  `SystemClock` is the real one; `FakeClock` is driven by
tests (`advance`) and wakes sleepers deterministically.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio


class Clock(Protocol):
    """Source of wall time (UTC) and monotonic time, and a way to wait."""

    def now(self) -> datetime:
        """Timezone-aware UTC wall time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; use it for timers."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


@dataclass(order=True)
class _Sleeper:
    deadline: float
    seq: int
    event: anyio.Event = field(compare=False)


class FakeClock:
    """A clock that only moves when told to.

    `advance(seconds)` moves time forward and wakes every sleeper whose deadline
    has passed; async code that sleeps on this clock then runs on the next
    checkpoint.  Wall time starts at `start` (UTC) and moves with monotonic time.
    """

    def __init__(self, start: datetime | None = None, monotonic_start: float = 1000.0) -> None:
        self._wall0 = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._wall0.tzinfo is None:
            raise ValueError("FakeClock start must be timezone-aware")
        self._mono0 = monotonic_start
        self._mono = monotonic_start
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return (self._wall0 + timedelta(seconds=self._mono - self._mono0)).astimezone(UTC)

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper(self._mono + seconds, next(self._seq), anyio.Event())
        heapq.heappush(self._sleepers, sleeper)
        await sleeper.event.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and release due sleepers."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._mono += seconds
        while self._sleepers and self._sleepers[0].deadline <= self._mono:
            heapq.heappop(self._sleepers).event.set()

    @property
    def pending_sleepers(self) -> int:
        return len(self._sleepers)

    async def run_for(self, seconds: float, step: float = 1.0, *, spins: int = 30) -> None:
        """Let tasks run, then advance `step`, until `seconds` have passed (for tests).

        Uses plain checkpoints rather than `anyio.wait_all_tasks_blocked`, which
        polls with real 0.1 s sleeps on asyncio.
        """
        elapsed = 0.0
        while True:
            for _ in range(spins):
                await anyio.lowlevel.checkpoint()
            if elapsed >= seconds:
                return
            self.advance(min(step, seconds - elapsed))
            elapsed += step


async def wait_event(clock: Clock, event: anyio.Event, timeout_s: float) -> bool:
    """Wait for `event` or `timeout_s` of `clock` time, whichever comes first; True when the event fired.

    Loops that must wake on both a timer and a signal use this, so that tests
    drive them with a FakeClock instead of real time.
    """
    if event.is_set():
        return True
    fired = False
    async with anyio.create_task_group() as tg:

        async def _timer() -> None:
            await clock.sleep(timeout_s)
            tg.cancel_scope.cancel()

        async def _event() -> None:
            nonlocal fired
            await event.wait()
            fired = True
            tg.cancel_scope.cancel()

        tg.start_soon(_timer)
        tg.start_soon(_event)
    return fired
