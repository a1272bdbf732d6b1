"""One OCPP-J websocket with its owner tasks: a reader, a writer, and a worker for incoming calls.

Only the writer task touches `send`, only the reader `recv`.  Outgoing calls
wait for their answer with a deadline (one outstanding CALL per direction,
as OCPP-J demands).  Incoming calls are answered in arrival order by `on_call`
(which may itself wait, e.g. for an upstream CSMS in proxy mode); replies the
link did not ask for go to `on_foreign_reply`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from adapters.ocpp import rpc
from bridge.errors import ChargerRejected, ChargerUnreachable

log = logging.getLogger(__name__)


class WebSocketLike(Protocol):
    async def recv(self) -> str | bytes: ...

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class CallError(ChargerRejected):
    """The peer answered a CALL with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str) -> None:
        super().__init__(f"{action}: {code} {description}".strip())
        self.code = code


@dataclass
class _Pending:
    action: str
    done: anyio.Event = field(default_factory=anyio.Event)
    reply: rpc.IncomingResult | rpc.IncomingError | None = None


OnCall = Callable[[rpc.IncomingCall], Awaitable[dict[str, Any] | str]]
OnForeignReply = Callable[[str, rpc.IncomingResult | rpc.IncomingError], Awaitable[None]]


class Link:
    """See module docstring.  `on_call` returns a result payload, or a ready frame (proxy pass-through)."""

    def __init__(
        self,
        ws: WebSocketLike,
        version: str,
        name: str,
        on_call: OnCall,
        *,
        on_foreign_reply: OnForeignReply | None = None,
        call_timeout_s: float = 10.0,
        id_prefix: str = "evb",
        validate_incoming: bool = True,
    ) -> None:
        self.ws = ws
        self.version = version
        self.name = name
        self._on_call = on_call
        self._on_foreign_reply = on_foreign_reply
        self._timeout = call_timeout_s
        self._validate = validate_incoming
        self._ids = (f"{id_prefix}-{n}" for n in itertools.count(1))
        self._pending: dict[str, _Pending] = {}
        self._call_lock = anyio.Lock()
        self._out_send, self._out_recv = anyio.create_memory_object_stream[str](256)
        self._in_send: MemoryObjectSendStream[rpc.IncomingCall]
        self._in_recv: MemoryObjectReceiveStream[rpc.IncomingCall]
        self._in_send, self._in_recv = anyio.create_memory_object_stream[rpc.IncomingCall](64)
        self.closed = anyio.Event()
        self.bad_frames = 0

    async def run(self) -> None:
        """Serve the socket until it closes; then every waiting caller gets ChargerUnreachable."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer)
                tg.start_soon(self._worker)
                await self._reader()
                tg.cancel_scope.cancel()
        finally:
            self.closed.set()
            for pending in self._pending.values():
                pending.done.set()

    async def _reader(self) -> None:
        while True:
            try:
                text = await self.ws.recv()
            except Exception as exc:  # websockets.ConnectionClosed and transport errors end the link
                log.info("%s: connection closed (%s)", self.name, type(exc).__name__)
                return
            msg = rpc.decode(text, self.version)
            if isinstance(msg, rpc.BadFrame):
                self.bad_frames += 1
                log.warning("%s: bad frame (%s)", self.name, msg.reason)
                if msg.reply is not None:
                    await self.send_frame(msg.reply)
            elif isinstance(msg, rpc.IncomingCall):
                problem = rpc.validate_call(msg, self.version) if self._validate else None
                if problem is not None:
                    self.bad_frames += 1
                    log.warning("%s: rejected %s: %s", self.name, msg.action, problem)
                    await self.send_frame(problem)
                else:
                    try:
                        self._in_send.send_nowait(msg)
                    except anyio.WouldBlock:
                        await self.send_frame(
                            rpc.error_frame(msg.unique_id, "GenericError", "too many calls in flight")
                        )
            else:
                pending = self._pending.get(msg.unique_id)
                if pending is not None:
                    pending.reply = msg
                    pending.done.set()
                elif self._on_foreign_reply is not None:
                    await self._on_foreign_reply(msg.unique_id, msg)
                else:
                    log.info("%s: reply to unknown call %s ignored", self.name, msg.unique_id)

    async def _writer(self) -> None:
        async for frame in self._out_recv:
            try:
                with anyio.fail_after(self._timeout):
                    await self.ws.send(frame)
            except Exception as exc:  # a stuck or broken socket ends the link; the reader then returns
                log.warning("%s: send failed (%s); closing", self.name, type(exc).__name__)
                with anyio.move_on_after(2):
                    await self.ws.close()
                return

    async def _worker(self) -> None:
        async for call in self._in_recv:
            try:
                result = await self._on_call(call)
            except CallError as exc:
                frame = rpc.error_frame(call.unique_id, exc.code, str(exc))
            except NotImplementedError:
                frame = rpc.error_frame(call.unique_id, "NotImplemented", f"{call.action} is not implemented")
            except Exception:
                log.exception("%s: handler for %s failed", self.name, call.action)
                frame = rpc.error_frame(call.unique_id, "InternalError", f"{call.action} could not be handled")
            else:
                frame = result if isinstance(result, str) else rpc.result_frame(call.unique_id, result)
            try:
                await self.send_frame(frame)
            except ChargerUnreachable:
                return

    async def send_frame(self, frame: str) -> None:
        if self.closed.is_set():
            raise ChargerUnreachable(f"{self.name}: connection closed")
        await self._out_send.send(frame)

    async def call(
        self, action: str, payload: dict[str, Any], *, unique_id: str | None = None, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload; CallError on CALLERROR, ChargerUnreachable on timeout."""
        reply = await self.call_raw(action, payload, unique_id=unique_id, timeout_s=timeout_s)
        if isinstance(reply, rpc.IncomingError):
            raise CallError(action, reply.code, reply.description)
        if self._validate:
            problem = rpc.validate_result(action, reply.payload, self.version)
            if problem is not None:  # a malformed answer is a refusal, never a crash further up
                log.warning("%s: malformed answer to %s: %s", self.name, action, problem)
                raise CallError(action, "FormationViolation", f"malformed answer: {problem}")
        return reply.payload

    async def call_raw(
        self, action: str, payload: dict[str, Any], *, unique_id: str | None = None, timeout_s: float | None = None
    ) -> rpc.IncomingResult | rpc.IncomingError:
        uid = unique_id or next(self._ids)
        async with self._call_lock:
            pending = _Pending(action)
            self._pending[uid] = pending
            try:
                await self.send_frame(rpc.call_frame(uid, action, payload))
                with anyio.move_on_after(timeout_s or self._timeout):
                    await pending.done.wait()
            finally:
                self._pending.pop(uid, None)
        if pending.reply is None:
            why = (
                "connection closed" if self.closed.is_set() else f"no answer within {timeout_s or self._timeout:.0f} s"
            )
            raise ChargerUnreachable(f"{self.name}: {action}: {why}")
        return pending.reply

    async def aclose(self) -> None:
        with anyio.move_on_after(2):
            await self.ws.close()
