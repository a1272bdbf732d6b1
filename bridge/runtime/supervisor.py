"""Keep a task running: restart it after an unexpected failure with exponential backoff and jitter.

One charger's bug or library crash must never take down the other chargers
or the EEBus side; cancellation (shutdown) passes straight through.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

from bridge.clock import Clock
from bridge.runtime.backoff import Backoff

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Awaitable[None]]


async def supervise(
    name: str,
    run_once: TaskFactory,
    clock: Clock,
    *,
    backoff: Backoff | None = None,
    healthy_after_s: float = 60.0,
    on_crash: Callable[[str, BaseException], None] | None = None,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run `run_once()` forever; when it raises, log, wait the backoff delay and run it again.

    A task that ran for `healthy_after_s` before failing starts the backoff over.
    A task that returns normally is not restarted.
    """
    policy = backoff or Backoff(base_s=1.0, maximum_s=60.0)
    task_status.started()
    while True:
        started = clock.monotonic()
        try:
            await run_once()
            return
        except Exception as exc:  # why: isolate one task's failure from the rest of the bridge
            if clock.monotonic() - started >= healthy_after_s:
                policy.reset()
            delay = policy.next_delay()
            log.error("%s failed: %s: %s; restarting in %.1f s", name, type(exc).__name__, exc, delay, exc_info=exc)
            if on_crash is not None:
                on_crash(name, exc)
            await clock.sleep(delay)
