"""The MQTT link owner against misbehaving peers: every wait has a deadline, failures end in a reconnect."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream

from bridge.clock import SystemClock
from bridge.errors import ChargerUnreachable
from bridge.mqttio import LinkSettings, MqttLink
from tests.integration.mosquitto import eventually, free_port, start_broker

pytestmark = pytest.mark.anyio


def _link(port: int) -> MqttLink:
    settings = LinkSettings("127.0.0.1", port, client_id="t", connect_timeout_s=0.3, backoff_initial_s=0.05)
    return MqttLink(settings, SystemClock(), lambda *_: None, name="t")


async def test_nobody_listening_means_unreachable_and_retries() -> None:
    link = _link(free_port())
    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        with pytest.raises(ChargerUnreachable):
            await link.wait_connected(0.5)
        with pytest.raises(ChargerUnreachable, match="not connected"):
            link.publish("a/b", b"x")
        tg.cancel_scope.cancel()


async def _serve(listener: anyio.abc.SocketListener, handler: object) -> None:
    await listener.serve(handler)  # type: ignore[arg-type]


@pytest.mark.parametrize("answer", [b"", b"\x20\x02\x00\x05", b"\xff\xff\xff\xff\xff garbage"])
async def test_silent_refusing_or_garbage_broker_is_left_and_retried(answer: bytes) -> None:
    """No CONNACK (silence), CONNACK 'not authorised', or garbage: the link drops the socket and dials again."""
    accepted = 0

    async def handler(stream: SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        async with stream:
            try:
                await stream.receive()  # the CONNECT packet
                if answer:
                    await stream.send(answer)
                with anyio.move_on_after(5):
                    while True:
                        await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass  # the link gave up on us: that is the point

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    link = _link(port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_serve, listener, handler)
        await tg.start(link.run)

        async def redialled() -> bool:
            return accepted >= 3

        await eventually(redialled, 5)
        assert not link.connected and link.connects == 0
        tg.cancel_scope.cancel()


@pytest.mark.slow
async def test_keepalive_pings_hold_an_idle_session(tmp_path: Path) -> None:
    """keepalive 1 s and no traffic for 7 s: mosquitto drops a silent client after 1.5 s (checked every few s)."""
    broker = start_broker(tmp_path / "broker")
    try:
        settings = LinkSettings("127.0.0.1", broker.port, client_id="idle", keepalive_s=1)
        link = MqttLink(settings, SystemClock(), lambda *_: None, name="idle")
        async with anyio.create_task_group() as tg:
            await tg.start(link.run)
            await link.wait_connected(5)
            await anyio.sleep(7)
            assert link.connected and link.connects == 1
            tg.cancel_scope.cancel()
    finally:
        broker.stop()
