"""WebSocket (RFC 6455) for SHIP on top of our TLS stream, with websockets' sans-I/O protocol objects.

SHIP needs: subprotocol `ship` (the server refuses a client that does not offer
it, the client refuses a server that does not select it), binary messages only,
automatic pong answers, a configured maximum message size (websockets closes
with 1009 when a peer exceeds it: the only place an oversized message can be
stopped before it is read).  Fragmented messages are reassembled here.  The
opening handshakes take the caller's deadline; afterwards the connection's
owner task feeds bytes in and writes `data_to_send()` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import anyio
import anyio.abc
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from bridge.errors import RemoteProtocolError

SUBPROTOCOL: Final = Subprotocol("ship")
DEFAULT_PATH: Final = "/ship/"


class WsHandshakeError(RemoteProtocolError):
    retryable = True


@dataclass(frozen=True, slots=True)
class WsMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class WsInvalid:
    reason: str  # e.g. a text message (SHIP allows binary only)
    closed_code: int | None = None  # set when websockets already failed the connection (1002, 1009)


@dataclass(frozen=True, slots=True)
class WsClosed:
    code: int | None
    reason: str


WsEvent = WsMessage | WsInvalid | WsClosed


class WsChannel:
    """Message-level view of a websockets Protocol; does no I/O except in `flush`."""

    def __init__(self, stream: anyio.abc.ByteStream, protocol: Protocol) -> None:
        self.stream = stream
        self.protocol = protocol
        self._fragments: list[bytes] | None = None
        self._fragment_text = False
        self.eof_sent = False
        self._parser_error_reported = False

    def feed(self, data: bytes) -> list[WsEvent]:
        self.protocol.receive_data(data)
        return self._events()

    def feed_eof(self) -> list[WsEvent]:
        self.protocol.receive_eof()
        return [WsClosed(None, "connection lost")]

    def _events(self) -> list[WsEvent]:
        out: list[WsEvent] = []
        for frame in self.protocol.events_received():
            if isinstance(frame, Request | Response):
                continue
            opcode = frame.opcode
            if opcode in (Opcode.BINARY, Opcode.TEXT):
                self._fragment_text = opcode is Opcode.TEXT
                self._fragments = [frame.data]
            elif opcode is Opcode.CONT and self._fragments is not None:
                self._fragments.append(frame.data)
            elif opcode is Opcode.CLOSE:
                close = self.protocol.close_rcvd
                out.append(WsClosed(close.code if close else None, close.reason if close else ""))
                continue
            else:
                continue  # ping (pong already queued by the protocol) and pong
            if frame.fin and self._fragments is not None:
                data = b"".join(self._fragments)
                self._fragments = None
                text = self._fragment_text
                out.append(WsInvalid("text frame (SHIP allows binary only)") if text else WsMessage(data))
        if self.protocol.parser_exc is not None and not self._parser_error_reported:
            self._parser_error_reported = True
            close = self.protocol.close_sent
            code = close.code if close is not None else 1002
            out.append(WsInvalid(f"WebSocket protocol error: {self.protocol.parser_exc}", code))
        return out

    def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)

    def send_close(self, code: int, reason: str) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason[:120])

    def send_ping(self, data: bytes = b"") -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_ping(data)

    @property
    def is_open(self) -> bool:
        return self.protocol.state is State.OPEN

    async def flush(self) -> None:
        await self.write(self.protocol.data_to_send())

    async def write(self, chunks: list[bytes]) -> None:
        """Write chunks taken from `protocol.data_to_send()` (b"" = end of stream)."""
        for data in chunks:
            if data:
                await self.stream.send(data)
            elif not self.eof_sent:
                self.eof_sent = True
                await self.stream.send_eof()


async def _read_events(stream: anyio.abc.ByteStream, protocol: Protocol) -> list[object]:
    while True:
        try:
            data = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            raise WsHandshakeError(f"peer closed during the WebSocket handshake ({type(exc).__name__})") from None
        protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            return list(events)
        if protocol.handshake_exc is not None:
            raise WsHandshakeError(f"WebSocket handshake failed: {protocol.handshake_exc}")


async def server_handshake(stream: anyio.abc.ByteStream, *, max_size: int) -> tuple[WsChannel, list[WsEvent]]:
    """Answer the HTTP upgrade; the caller sets the deadline (ship-go: 10 s)."""
    protocol = ServerProtocol(subprotocols=[SUBPROTOCOL], max_size=max_size)
    channel = WsChannel(stream, protocol)
    events = await _read_events(stream, protocol)
    request = events[0]
    if not isinstance(request, Request):
        raise WsHandshakeError("expected an HTTP upgrade request")
    response = protocol.accept(request)
    protocol.send_response(response)
    await channel.flush()
    if response.status_code != 101 or protocol.handshake_exc is not None:
        raise WsHandshakeError(f"refused WebSocket upgrade: {protocol.handshake_exc or response.status_code}")
    # frames that came in the same read as the request
    protocol.events.extend(e for e in events[1:] if not isinstance(e, Request))
    return channel, channel._events()


async def client_handshake(
    stream: anyio.abc.ByteStream, host: str, port: int, path: str, *, max_size: int
) -> tuple[WsChannel, list[WsEvent]]:
    """Send the HTTP upgrade offering only `ship`; the caller sets the deadline (ship-go: 5 s)."""
    netloc = f"[{host}]" if ":" in host else host
    uri = parse_uri(f"wss://{netloc}:{port}{path or '/'}")
    protocol = ClientProtocol(uri, subprotocols=[SUBPROTOCOL], max_size=max_size)
    channel = WsChannel(stream, protocol)
    protocol.send_request(protocol.connect())
    await channel.flush()
    events = await _read_events(stream, protocol)
    if protocol.handshake_exc is not None:
        exc = protocol.handshake_exc
        detail = str(exc) if isinstance(exc, InvalidHandshake) else repr(exc)
        raise WsHandshakeError(f"WebSocket handshake refused: {detail}")
    if protocol.subprotocol != SUBPROTOCOL:
        raise WsHandshakeError(f"server selected subprotocol {protocol.subprotocol!r}, SHIP needs 'ship'")
    protocol.events.extend(e for e in events[1:] if not isinstance(e, Response))
    return channel, channel._events()
