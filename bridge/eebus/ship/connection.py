"""One SHIP connection: the owner task that pumps TLS/WebSocket bytes through the state machine.

The owner (`run`) is the only code that touches the protocol objects and
writes to the socket.  Around it, inside its own task group, a reader task
forwards received bytes, a timer task turns the state machine's deadline into
`tick` events on the injected clock, and a keep-alive task sends WebSocket
pings (ship-go drops links without traffic after 60 s).  Applications talk to
the owner through a command queue (`send_spine`, `close`, trust decisions) and
receive SPINE datagrams from an inbox.  Network waits have deadlines: each
write, the closing handshake.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bridge.clock import Clock, wait_event
from bridge.eebus.ship.statemachine import (
    AwaitingTrust,
    CloseTransport,
    Completed,
    Effect,
    Role,
    Send,
    ShipStateMachine,
    SpineReceived,
)
from bridge.eebus.ship.websocket import WsChannel, WsClosed, WsEvent, WsInvalid, WsMessage
from bridge.errors import BridgeError, LocalProtocolError

log = logging.getLogger(__name__)

WRITE_TIMEOUT: Final = 10.0  # ship-go write deadline
CLOSE_GRACE: Final = 2.0  # wait this long for the peer's close after ours
PING_INTERVAL: Final = 50.0
PONG_TIMEOUT: Final = 60.0
INBOX_SIZE: Final = 1024
NET_BACKLOG: Final = 16


class ShipConnectionClosed(BridgeError):
    """The SHIP connection is closed (or never reached data exchange)."""

    retryable = True


class ShipConnection:
    """A SHIP connection to one peer; see the package docstring for the application API."""

    def __init__(
        self,
        channel: WsChannel,
        machine: ShipStateMachine,
        *,
        peer_ski: str,
        peer_address: str,
        clock: Clock,
        on_completed: Callable[[ShipConnection], None] | None = None,
        on_awaiting_trust: Callable[[ShipConnection], None] | None = None,
        ping_interval: float = PING_INTERVAL,
        pong_timeout: float = PONG_TIMEOUT,
    ) -> None:
        self.channel = channel
        self.machine = machine
        self.peer_ski = peer_ski
        self.peer_address = peer_address
        self.clock = clock
        self.completed = anyio.Event()
        self.closed = anyio.Event()
        self._on_completed = on_completed
        self._on_awaiting_trust = on_awaiting_trust
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self._cmd_tx, self._cmd_rx = anyio.create_memory_object_stream[tuple[Any, ...]](math.inf)
        self._inbox_tx: MemoryObjectSendStream[dict[str, Any]]
        self._inbox_rx: MemoryObjectReceiveStream[dict[str, Any]]
        self._inbox_tx, self._inbox_rx = anyio.create_memory_object_stream[dict[str, Any]](INBOX_SIZE)
        self.notify_app = False  # the node hands it to on_connection when complete
        self.explicit_trust = False  # dialed with an expected SKI: trusted for this connection, whatever the store says
        self.pairing_tokens: list[int] = []  # pending-list entries to remove when it ends
        self._net_slots = anyio.Semaphore(NET_BACKLOG)  # bounds buffered network reads (backpressure to TCP)
        self._changed = anyio.Event()
        self._last_rx = clock.monotonic()
        self._transport_done = False

    # ------------------------------------------------------------ application API

    @property
    def role(self) -> Role:
        return self.machine.role

    @property
    def peer_ship_id(self) -> str | None:
        return self.machine.peer_ship_id

    @property
    def state(self) -> str:
        return self.machine.state.value

    @property
    def close_reason(self) -> str | None:
        return self.machine.close_reason

    async def send_spine(self, payload: dict[str, Any] | bytes) -> None:
        """Queue a SPINE datagram (`{"datagram": {...}}` or EEBus-JSON bytes) for the peer."""
        if self.closed.is_set() or not self.completed.is_set():
            raise ShipConnectionClosed(f"SHIP connection to {self.peer_ski} is not in data exchange ({self.state})")
        self._command("send", payload)

    async def receive_spine(self) -> dict[str, Any]:
        """The next SPINE datagram from the peer; ShipConnectionClosed once the connection is over."""
        try:
            return await self._inbox_rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise ShipConnectionClosed(f"SHIP connection to {self.peer_ski} closed: {self.close_reason}") from None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                yield await self.receive_spine()
            except ShipConnectionClosed:
                return

    async def close(self, reason: str = "close") -> None:
        """Close as SHIP wants it for the current state and wait (bounded) until it is closed."""
        self._command("close", reason)
        with anyio.move_on_after(self.machine.timeouts.close_max_time + CLOSE_GRACE + 1):
            await self.closed.wait()

    def request_close(self, reason: str = "close") -> None:
        """Like `close`, without waiting (for synchronous callers)."""
        self._command("close", reason)

    def grant_trust(self) -> None:
        self._command("trust")

    def deny_trust(self, reason: str) -> None:
        self._command("deny", reason)

    def drop(self, code: int, reason: str) -> None:
        """Close with a WebSocket code now (double connection, shutdown)."""
        self._command("drop", code, reason)

    def _command(self, *command: Any) -> None:
        try:
            self._cmd_tx.send_nowait(command)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    # ------------------------------------------------------------ owner

    async def run(self, initial: list[WsEvent] | None = None) -> None:
        """Own the connection until it is closed; never raises for network or protocol trouble."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._reader)
                tg.start_soon(self._timer)
                if self._ping_interval > 0:
                    tg.start_soon(self._keepalive)
                await self._apply(self.machine.start())
                await self._handle_ws(initial or [])
                async for command in self._cmd_rx:
                    deadline = self.machine.next_deadline
                    await self._handle(command)
                    if self._transport_done:
                        break
                    if self.machine.next_deadline != deadline or command[0] == "tick":
                        old, self._changed = self._changed, anyio.Event()
                        old.set()  # wake the timer task only when the deadline moved
                tg.cancel_scope.cancel()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError, TimeoutError) as exc:
            log.info("SHIP %s: transport failed: %s", self.peer_ski, exc)
            if self.machine.close_reason is None:
                self.machine.close_reason = f"transport failed: {exc}"
        finally:
            self.machine.connection_lost()
            self._cmd_tx.close()
            self._inbox_tx.close()
            self.closed.set()
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await self.channel.stream.aclose()
            level = logging.WARNING if self.machine.error else logging.INFO
            log.log(level, "SHIP connection %s %s (%s) closed: %s", self.role.value, self.peer_ski,
                    self.peer_address, self.machine.close_reason)  # fmt: skip

    async def _reader(self) -> None:
        try:
            while True:
                await self._net_slots.acquire()
                data = await self.channel.stream.receive()
                self._cmd_tx.send_nowait(("net", data))
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self._command("eof")

    async def _timer(self) -> None:
        while True:
            changed = self._changed
            deadline = self.machine.next_deadline
            if deadline is None:
                await changed.wait()
                continue
            delay = deadline - self.clock.monotonic()
            if delay > 0 and await wait_event(self.clock, changed, delay):
                continue
            self._command("tick")
            await changed.wait()

    async def _keepalive(self) -> None:
        while True:
            await self.clock.sleep(self._ping_interval)
            self._command("ping")

    async def _handle(self, command: tuple[Any, ...]) -> None:
        kind = command[0]
        if kind == "net":
            self._last_rx = self.clock.monotonic()
            self._net_slots.release()
            await self._handle_ws(self.channel.feed(command[1]))
        elif kind == "eof":
            self.channel.feed_eof()
            self._transport_done = True
        elif kind == "tick":
            await self._apply(self.machine.tick())
        elif kind == "send":
            try:
                await self._apply(self.machine.send_spine(command[1]))
            except LocalProtocolError as exc:
                log.info("SHIP %s: dropped outgoing SPINE message: %s", self.peer_ski, exc)
        elif kind == "close":
            await self._apply(self.machine.close(command[1]))
        elif kind == "trust":
            await self._apply(self.machine.grant_trust())
        elif kind == "deny":
            await self._apply(self.machine.deny_trust(command[1]))
        elif kind == "drop":
            await self._apply(self.machine.drop(command[1], command[2]))
        elif kind == "ping":
            if self.clock.monotonic() - self._last_rx > self._pong_timeout:
                await self._apply(self.machine.drop(4001, "no data or pong from the peer for too long"))
            else:
                self.channel.send_ping()
                await self._write()

    async def _handle_ws(self, events: list[WsEvent]) -> None:
        for event in events:
            if isinstance(event, WsMessage):
                await self._apply(self.machine.receive_frame(event.data))
            elif isinstance(event, WsInvalid) and event.closed_code is not None:
                # websockets already sent its close (1009 too big, 1002 framing): no SHIP message can follow
                log.warning("SHIP %s (%s): %s; closed with %d", self.peer_ski, self.peer_address, event.reason,
                            event.closed_code)  # fmt: skip
                self.machine.error = event.reason
                await self._apply(self.machine.drop(event.closed_code, event.reason))
            elif isinstance(event, WsInvalid):
                await self._apply(self.machine.receive_invalid(event.reason))
            elif isinstance(event, WsClosed):
                if self.machine.close_reason is None:
                    self.machine.close_reason = f"peer closed the WebSocket ({event.code} {event.reason})".strip()
                self._transport_done = True
        await self._write()

    async def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                if self.channel.is_open:
                    self.channel.send_binary(effect.data)
            elif isinstance(effect, CloseTransport):
                if self.machine.error:
                    log.warning("SHIP %s (%s): %s; closing with %d", self.peer_ski, self.peer_address,
                                self.machine.error, effect.code)  # fmt: skip
                self.channel.send_close(effect.code, effect.reason)
                await self._write()
                await self._await_peer_close()
            elif isinstance(effect, Completed):
                self.completed.set()
                if self._on_completed is not None:
                    self._on_completed(self)
            elif isinstance(effect, SpineReceived):
                await self._inbox_tx.send(effect.datagram)
            elif isinstance(effect, AwaitingTrust) and self._on_awaiting_trust is not None:
                self._on_awaiting_trust(self)
        await self._write()

    async def _write(self) -> None:
        chunks = self.channel.protocol.data_to_send()
        if chunks:
            with anyio.fail_after(WRITE_TIMEOUT):
                await self.channel.write(chunks)

    async def _await_peer_close(self) -> None:
        """After our close frame: read until the peer answers or closes, for at most CLOSE_GRACE."""
        with anyio.move_on_after(CLOSE_GRACE):
            while not self._transport_done:
                command = await self._cmd_rx.receive()
                if command[0] == "net":
                    self._net_slots.release()
                    self.channel.feed(command[1])
                    await self._write()
                    if self.channel.protocol.close_rcvd is not None:
                        break
                elif command[0] == "eof":
                    break
        self._transport_done = True
