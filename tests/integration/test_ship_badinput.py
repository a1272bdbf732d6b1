"""Bad input over real TLS sockets: each bad connection is closed the SHIP way, the node and others stay up."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.eebus.ship import codec
from bridge.eebus.ship.codec import CmiInit, Hello
from bridge.eebus.ship.identity import Identity
from bridge.eebus.ship.statemachine import CLOSE_REJECTED, CLOSE_SHIP
from bridge.eebus.ship.tls import TlsStream, make_context
from bridge.eebus.ship.websocket import WsChannel, WsClosed, WsMessage, client_handshake
from tests.integration.test_ship_node import echo, pair_of, round_trip, running

pytestmark = pytest.mark.anyio


async def raw_client(port: int, identity: Identity) -> WsChannel:
    sock = await anyio.connect_tcp("127.0.0.1", port)
    tls = await TlsStream.wrap(sock, make_context(identity, server=False), server=False)
    channel, events = await client_handshake(tls, "127.0.0.1", port, "/ship/", max_size=1 << 22)
    assert events == []
    return channel


async def send(channel: WsChannel, data: bytes) -> None:
    channel.send_binary(data)
    await channel.flush()


async def read_until_closed(channel: WsChannel) -> tuple[list[Any], int | None, str]:
    """Messages the server sent, then its close code and reason."""
    messages: list[Any] = []
    with anyio.fail_after(5):
        while True:
            try:
                data = await channel.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return messages, None, "eof"
            for event in channel.feed(data):
                if isinstance(event, WsMessage):
                    messages.append(codec.decode(event.data))
                elif isinstance(event, WsClosed):
                    await channel.flush()
                    return messages, event.code, event.reason
            await channel.flush()


@pytest.fixture
def peers(tmp_path: Path) -> Any:
    return pair_of(tmp_path)


async def test_bad_input_closes_only_the_offending_connection(peers: Any, tmp_path: Path) -> None:
    a, ta, b, tb = peers
    c = Identity.load_or_create(tmp_path / "c", "other-ems")  # the misbehaving (but trusted) peer
    ta.add(c.ski)
    async with running(a, ta, on_connection=echo, max_message_bytes=4096) as na, running(b, tb) as nb:
        with anyio.fail_after(10):
            good = await nb.connect("127.0.0.1", na.port, expected_ski=a.ski)
            await round_trip(good)

        # wrong state order: access methods instead of CMI init -> close 4001 with the reason
        channel = await raw_client(na.port, c)
        await send(channel, codec.encode(codec.AccessMethods("x")))
        messages, code, reason = await read_until_closed(channel)
        assert messages == [] and code == CLOSE_SHIP and "unexpected access" in reason

        # malformed JSON in the hello phase -> hello aborted, then 4452
        channel = await raw_client(na.port, c)
        await send(channel, codec.encode(CmiInit()))
        await send(channel, b'\x01{"connectionHello":[{"phase":')
        messages, code, _ = await read_until_closed(channel)
        assert messages == [CmiInit(), Hello("ready", 4000), Hello("aborted")] and code == CLOSE_REJECTED

        # wrong JSON shape (unknown phase) -> same
        channel = await raw_client(na.port, c)
        await send(channel, codec.encode(CmiInit()))
        await send(channel, b'\x01{"connectionHello":[{"phase":"maybe"}]}')
        messages, code, _ = await read_until_closed(channel)
        assert messages[-1] == Hello("aborted") and code == CLOSE_REJECTED

        # a text frame (SHIP is binary only) during CMI -> 4001
        channel = await raw_client(na.port, c)
        channel.protocol.send_text(b"hello")
        await channel.flush()
        _, code, reason = await read_until_closed(channel)
        assert code == CLOSE_SHIP and "text frame" in reason

        # oversized message (over max_message_bytes) -> WebSocket 1009
        channel = await raw_client(na.port, c)
        await send(channel, b"\x01" + b" " * 10_000)
        _, code, _ = await read_until_closed(channel)
        assert code == 1009

        # too short / unknown type byte -> 4001
        channel = await raw_client(na.port, c)
        await send(channel, b"\x07")
        _, code, reason = await read_until_closed(channel)
        assert code == CLOSE_SHIP and "too short" in reason

        # not TLS at all, then a plain HTTP request over TLS without the ship subprotocol
        async with await anyio.connect_tcp("127.0.0.1", na.port) as sock:
            await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with anyio.fail_after(5):
                try:
                    while await sock.receive():
                        pass
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
        sock2 = await anyio.connect_tcp("127.0.0.1", na.port)
        tls = await TlsStream.wrap(sock2, make_context(c, server=False), server=False)
        await tls.send(b"GET /ship/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
        with anyio.fail_after(5):
            answer = await tls.receive()
        assert answer.startswith(b"HTTP/1.1 400")
        await tls.aclose()

        # the process and the established connection are fine; new connections still work
        with anyio.fail_after(10):
            await round_trip(good)
            assert not good.closed.is_set()
            await good.close()
            again = await nb.connect("127.0.0.1", na.port, expected_ski=a.ski)
            await round_trip(again)


async def test_stdlib_tls12_client_with_the_mandatory_ship_cipher(peers: Any) -> None:
    """An independent TLS stack (stdlib ssl) limited to TLS 1.2 + ECDHE-ECDSA-AES128-SHA256 gets through to CMI."""
    a, ta, b, _ = peers
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA256")
    ctx.load_cert_chain(b.cert_path, b.key_path)
    async with running(a, ta) as na:
        with anyio.fail_after(10):
            stream = await anyio.connect_tcp("127.0.0.1", na.port, ssl_context=ctx, tls_standard_compatible=False)
            ssl_object = stream.extra(anyio.streams.tls.TLSAttribute.ssl_object)
            assert ssl_object.version() == "TLSv1.2"
            assert ssl_object.cipher()[0] == "ECDHE-ECDSA-AES128-SHA256"
            peer_der = stream.extra(anyio.streams.tls.TLSAttribute.peer_certificate_binary)
            from bridge.eebus.ship.identity import ski_of_der

            assert ski_of_der(peer_der) == a.ski
            channel, _ = await client_handshake(stream, "127.0.0.1", na.port, "/ship/", max_size=1 << 20)
            await send(channel, codec.encode(CmiInit()))
            received: list[Any] = []
            while len(received) < 2:
                for event in channel.feed(await stream.receive()):
                    if isinstance(event, WsMessage):
                        received.append(codec.decode(event.data))
            assert received == [CmiInit(), Hello("ready", 4000)]
            await stream.aclose()
