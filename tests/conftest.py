"""Shared fixtures: anyio on asyncio, a fake clock, the `req` marker for checklist ids."""

from __future__ import annotations

import pytest

from bridge.clock import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
