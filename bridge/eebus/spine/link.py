"""Runs one `SpineSession` over one SHIP connection: the thin I/O shell around the pure session.

The owner of the connection is this link: a receiver task feeds datagrams to
the session, a ticker sends due notifies and wakes on `wake()` (a snapshot or
LPC change elsewhere) or at the session's next deadline.  Requests made with
`call()` wait for their reply/result with a deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import anyio

from bridge.clock import Clock, wait_event
from bridge.eebus.spine.device import Entity, FeatureAddress
from bridge.eebus.spine.session import SpineSession

log = logging.getLogger(__name__)

RESPONSE_TIMEOUT_S = 10.0


class SpineTransport(Protocol):
    peer_ski: str

    async def send_spine(self, payload: dict[str, Any]) -> None: ...

    async def receive_spine(self) -> dict[str, Any]: ...


class RequestFailed(Exception):
    """The peer answered a request with an error result, or not at all."""

    def __init__(self, error: int, description: str) -> None:
        super().__init__(f"error {error}: {description}" if description else f"error {error}")
        self.error = error
        self.description = description


class SpineLink:
    def __init__(
        self,
        session: SpineSession,
        transport: SpineTransport,
        clock: Clock,
        *,
        on_tick: Callable[[], None] = lambda: None,
        deadline: Callable[[], float | None] = lambda: None,
        max_idle_s: float = 1.0,
    ) -> None:
        self.session = session
        self.transport = transport
        self.clock = clock
        self._on_tick = on_tick
        self._deadline = deadline
        self._max_idle_s = max_idle_s
        self._wake = anyio.Event()
        self._send_lock = anyio.Lock()
        self.closed = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def send(self, messages: list[dict[str, Any]]) -> None:
        async with self._send_lock:
            for message in messages:
                await self.transport.send_spine(message)

    async def run(self) -> None:
        """Until the connection ends; the session's bindings and subscriptions are dropped then."""
        from bridge.eebus.ship.connection import ShipConnectionClosed

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._ticker)
                await self._receiver()
                tg.cancel_scope.cancel()
        except* ShipConnectionClosed:
            pass  # why: a send racing the close is the normal end of a connection, not an application error
        finally:
            self.session.close()
            self.closed.set()

    async def _receiver(self) -> None:
        from bridge.eebus.ship.connection import ShipConnectionClosed

        while True:
            try:
                message = await self.transport.receive_spine()
            except ShipConnectionClosed:
                return
            out = self.session.receive(message)
            if out:
                await self.send(out)
            self._wake.set()

    async def _ticker(self) -> None:
        while True:
            self._wake = anyio.Event()
            self._on_tick()
            out = self.session.tick()
            if out:
                await self.send(out)
            now = self.clock.monotonic()
            deadlines = [d for d in (self.session.next_deadline(), self._deadline()) if d is not None]
            timeout = min([self._max_idle_s, *(max(0.0, d - now) for d in deadlines)])
            await wait_event(self.clock, self._wake, max(timeout, 0.01))

    async def call(
        self,
        cls: str,
        source: tuple[Entity, int],
        destination: FeatureAddress,
        cmd: dict[str, Any],
        *,
        ack: bool = False,
        timeout_s: float = RESPONSE_TIMEOUT_S,
    ) -> dict[str, Any] | None:
        """Send a request and wait for its reply data (read) or result (write/call); errors raise."""
        done = anyio.Event()
        outcome: list[tuple[int, str, dict[str, Any] | None]] = []

        def finished(error: int, description: str, data: dict[str, Any] | None) -> None:
            outcome.append((error, description, data))
            done.set()

        message = self.session.request(cls, source, destination, cmd, ack=ack, on_done=finished)
        await self.send([message])
        with anyio.move_on_after(timeout_s):
            await done.wait()
        if not outcome:
            raise RequestFailed(2, f"no answer within {timeout_s:.0f} s")
        error, description, data = outcome[0]
        if error:
            raise RequestFailed(error, description)
        return data
