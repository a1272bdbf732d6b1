"""The connection owner runs SHIP timers and WebSocket keep-alive on the injected clock.

A real loopback TCP connection (TLS is irrelevant here) with a silent client:
a FakeClock moves 60 s without any real sleeping, and the server sends its
WebSocket ping at 50 s and `aborted` at 60 s, then closes with 4452 after 1 s.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute
from websockets.frames import Opcode

from bridge.clock import FakeClock
from bridge.eebus.ship import codec
from bridge.eebus.ship.codec import CmiInit, Hello
from bridge.eebus.ship.connection import ShipConnection
from bridge.eebus.ship.statemachine import CLOSE_REJECTED, Role, ShipStateMachine, TrustDecision
from bridge.eebus.ship.websocket import WsChannel, client_handshake, server_handshake

pytestmark = pytest.mark.anyio


async def next_events(channel: WsChannel, clock: FakeClock, advance: float) -> list[Any]:
    """Advance fake time, then collect what the server sent (bounded real wait)."""
    await clock.run_for(advance, step=0.5)
    events: list[Any] = []
    with anyio.move_on_after(0.5):
        while True:
            try:
                data = await channel.stream.receive()
            except anyio.EndOfStream:
                break
            channel.protocol.receive_data(data)
            for frame in channel.protocol.events_received():
                if frame.opcode is Opcode.BINARY:
                    events.append(codec.decode(frame.data))
                elif frame.opcode in (Opcode.PING, Opcode.CLOSE):
                    events.append(frame.opcode)
            await channel.flush()
    return events


async def test_hello_timeout_and_ping_on_the_fake_clock() -> None:
    clock = FakeClock()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        client_sock = await anyio.connect_tcp("127.0.0.1", port)
        server_sock = await listener.listeners[0].accept()
        channels: dict[str, WsChannel] = {}
        upgraded = anyio.Event()

        async def serve() -> None:
            channels["server"], _ = await server_handshake(server_sock, max_size=1 << 20)
            upgraded.set()

        with anyio.fail_after(5):
            tg.start_soon(serve)
            client, _ = await client_handshake(client_sock, "127.0.0.1", port, "/ship/", max_size=1 << 20)
            await upgraded.wait()
        machine = ShipStateMachine(Role.SERVER, clock, "server-id", TrustDecision.TRUSTED)
        conn = ShipConnection(channels["server"], machine, peer_ski="00" * 20, peer_address="test", clock=clock)
        tg.start_soon(conn.run)

        client.send_binary(codec.encode(CmiInit()))
        await client.flush()
        assert await next_events(client, clock, 0) == [CmiInit(), Hello("ready", 60000)]
        assert await next_events(client, clock, 49) == []
        assert await next_events(client, clock, 1) == [Opcode.PING]  # keep-alive every 50 s
        assert await next_events(client, clock, 9) == []
        assert await next_events(client, clock, 1) == [Hello("aborted")]  # tHelloInit = 60 s
        assert await next_events(client, clock, 1) == [Opcode.CLOSE]  # 1 s after aborted
        assert client.protocol.close_rcvd is not None and client.protocol.close_rcvd.code == CLOSE_REJECTED
        with anyio.fail_after(5):
            await conn.closed.wait()
        await client_sock.aclose()
