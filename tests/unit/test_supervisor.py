"""A crashing task is restarted with growing delays; a finished one is not."""

from __future__ import annotations

import itertools
import random

import anyio
import pytest

from bridge.clock import FakeClock
from bridge.runtime.backoff import Backoff
from bridge.runtime.supervisor import supervise

pytestmark = pytest.mark.anyio


async def test_restarts_with_backoff_until_success() -> None:
    clock = FakeClock()
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(clock.monotonic())
        if len(starts) < 4:
            raise RuntimeError("boom")

    crashes: list[str] = []
    backoff = Backoff(base_s=1, maximum_s=8, rng=random.Random(1))
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: supervise("flaky", flaky, clock, backoff=backoff, on_crash=lambda n, e: crashes.append(n))
        )
        await clock.run_for(30, step=0.25)
    assert len(starts) == 4
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # full-jitter delays lie in [d/2, d] for d = 1, 2, 4 (quantised to the 0.25 s step)
    for gap, nominal in zip(gaps, (1, 2, 4), strict=True):
        assert nominal / 2 <= gap <= nominal + 0.25
    assert crashes == ["flaky"] * 3


def test_backoff_is_capped_and_resets() -> None:
    b = Backoff(base_s=1, maximum_s=10, rng=random.Random(0))
    delays = [b.next_delay() for _ in range(10)]
    assert max(delays) <= 10
    assert delays[-1] >= 5
    b.reset()
    assert b.next_delay() <= 1


def test_backoff_survives_thousands_of_failures() -> None:
    b = Backoff(base_s=1, maximum_s=60, rng=random.Random(0))
    for _ in range(5000):
        assert 0 < b.next_delay() <= 60
