"""SHIP nodes over real TLS sockets on loopback: handshakes, trust, pairing, restart, double connections.

Short configured SHIP timeouts keep the suite fast; every wait is bounded with fail_after.
"""

from __future__ import annotations

import logging
import random
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge import cli
from bridge.clock import SystemClock
from bridge.eebus.ship import Identity, ShipConnection, ShipConnectionClosed, ShipNode, ShipTimeouts, TrustStore
from bridge.eebus.ship.control import control_path, request
from bridge.eebus.ship.identity import stable_port
from bridge.eebus.ship.statemachine import Role
from bridge.eebus.ship.tls import TlsError

pytestmark = pytest.mark.anyio

FAST = ShipTimeouts(
    cmi=3,
    hello_init=4,
    hello_inc=4,
    prolong_threshold=2,
    prot=3,
    pin=3,
    access=3,
    abort_close_delay=0.1,
    close_max_time=0.3,
    close_confirm_delay=0.1,
)
DATAGRAM: dict[str, Any] = {
    "datagram": {
        "header": {"specificationVersion": "1.3.0", "msgCounter": 1, "cmdClassifier": "read"},
        "payload": {"cmd": [{"nodeManagementDetailedDiscoveryData": {}}]},
    }
}


@asynccontextmanager
async def running(identity: Identity, trust: TrustStore, **kwargs: Any) -> AsyncIterator[ShipNode]:
    kwargs.setdefault("port", 0)
    kwargs.setdefault("timeouts", FAST)
    kwargs.setdefault("ping_interval", 0)
    node = ShipNode(identity, trust, SystemClock(), bind="127.0.0.1", rng=random.Random(1), **kwargs)
    async with node:
        yield node


async def echo(conn: ShipConnection) -> None:
    async for datagram in conn:
        await conn.send_spine(datagram)


Peers = tuple[Identity, TrustStore, Identity, TrustStore]


def pair_of(tmp_path: Path, trust_a: bool = True, trust_b: bool = True) -> Peers:
    a = Identity.load_or_create(tmp_path / "a", "wallbox")
    b = Identity.load_or_create(tmp_path / "b", "ems")
    trust_store_a = TrustStore.in_state_dir(tmp_path / "a", static=[b.ski] if trust_a else [])
    trust_store_b = TrustStore.in_state_dir(tmp_path / "b", static=[a.ski] if trust_b else [])
    return a, trust_store_a, b, trust_store_b


async def round_trip(conn: ShipConnection) -> None:
    await conn.send_spine(DATAGRAM)
    assert await conn.receive_spine() == DATAGRAM


async def wait_until(predicate: Any, limit: float = 10.0) -> None:
    """Poll a condition that no event signals (node registries), bounded."""
    with anyio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def test_handshake_completes_in_both_directions(tmp_path: Path) -> None:
    a, ta, b, tb = pair_of(tmp_path)
    async with running(a, ta, on_connection=echo) as na, running(b, tb, on_connection=echo) as nb:
        with anyio.fail_after(15):
            to_a = await nb.connect("127.0.0.1", na.port, expected_ski=a.ski)
            assert to_a.role is Role.CLIENT and to_a.peer_ski == a.ski and to_a.peer_ship_id == a.ship_id
            assert to_a.channel.stream.protocol_version == "TLSv1.3"  # type: ignore[attr-defined]
            await round_trip(to_a)
            await to_a.close("test done")
            assert to_a.closed.is_set() and to_a.close_reason == "test done"

            to_b = await na.connect("127.0.0.1", nb.port, expected_ski=b.ski.upper())
            assert to_b.peer_ski == b.ski and to_b.peer_ship_id == b.ship_id
            await round_trip(to_b)
            await to_b.close()


async def test_untrusted_ski_is_refused_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, ta, b, tb = pair_of(tmp_path, trust_a=False)
    caplog.set_level(logging.INFO)
    async with running(a, ta, on_connection=echo) as na, running(b, tb) as nb:
        with anyio.fail_after(15), pytest.raises(ShipConnectionClosed, match="peer aborted"):
            await nb.connect("127.0.0.1", na.port, expected_ski=a.ski)
        assert f"peer SKI {b.ski} from" in caplog.text and "is not trusted" in caplog.text
        await wait_until(lambda: na.connections == [] and na.pairing.pending() == [])  # server side winds down
        assert f"refused peer SKI {b.ski}" in caplog.text


async def test_client_refuses_a_server_with_another_ski(tmp_path: Path) -> None:
    a, ta, b, tb = pair_of(tmp_path)
    async with running(a, ta) as na, running(b, tb) as nb:
        with anyio.fail_after(10), pytest.raises(TlsError, match="SKI does not match"):
            await nb.connect("127.0.0.1", na.port, expected_ski="00" * 20)


async def test_pairing_window_lists_pending_peer_and_accept_lets_it_in(tmp_path: Path) -> None:
    a, ta, b, tb = pair_of(tmp_path, trust_a=False)
    async with (
        running(a, ta, on_connection=echo, control_socket=control_path(tmp_path / "a")) as na,
        running(b, tb) as nb,
    ):
        socket_path = control_path(tmp_path / "a")
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
        reply = await anyio.to_thread.run_sync(request, socket_path, {"cmd": "bogus"})
        assert reply == {"ok": False, "error": "unknown command 'bogus'"}
        argv = ["pair", "--minutes", "1", "--state-dir", str(tmp_path / "a")]
        assert await anyio.to_thread.run_sync(cli.main, argv) == 0
        result: list[ShipConnection] = []

        async def dial() -> None:
            result.append(await nb.connect("127.0.0.1", na.port, expected_ski=a.ski))

        async with anyio.create_task_group() as tg:
            tg.start_soon(dial)
            await wait_until(lambda: [p.ski for p in na.pairing.pending()] == [b.ski])
            await anyio.sleep(FAST.hello_init + 1)  # longer than the peer's 4 s wait: prolongation keeps it alive
            assert na.pairing.pending() and not result
            rc = await anyio.to_thread.run_sync(
                cli.main, ["pair", "--accept", b.ski.upper(), "--state-dir", str(tmp_path / "a")]
            )
            assert rc == 0
        with anyio.fail_after(10):
            await round_trip(result[0])
        assert TrustStore.in_state_dir(tmp_path / "a").is_trusted(b.ski)


async def test_trust_add_reaches_running_bridge_and_refused_peer_connects(tmp_path: Path) -> None:
    a, ta, b, tb = pair_of(tmp_path, trust_a=False)
    async with (
        running(a, ta, on_connection=echo, control_socket=control_path(tmp_path / "a")) as na,
        running(b, tb) as nb,
    ):
        with anyio.fail_after(10), pytest.raises(ShipConnectionClosed):
            await nb.connect("127.0.0.1", na.port, expected_ski=a.ski)
        spaced = " ".join(b.ski[i : i + 4] for i in range(0, 40, 4))
        rc = await anyio.to_thread.run_sync(cli.main, ["trust", "add", spaced, "--state-dir", str(tmp_path / "a")])
        assert rc == 0
        with anyio.fail_after(10):
            conn = await nb.connect("127.0.0.1", na.port, expected_ski=a.ski)
            await round_trip(conn)
        await conn.close()
        # trusting while the refused peer is still waiting in its hello phase lets that very connection in
        rc = await anyio.to_thread.run_sync(cli.main, ["trust", "remove", b.ski, "--state-dir", str(tmp_path / "a")])
        assert rc == 0
        result: list[ShipConnection] = []

        async def dial() -> None:
            result.append(await nb.connect("127.0.0.1", na.port, expected_ski=a.ski))

        async with anyio.create_task_group() as tg:
            tg.start_soon(dial)
            await wait_until(lambda: [p.ski for p in na.pairing.pending()] == [b.ski])
            rc = await anyio.to_thread.run_sync(cli.main, ["trust", "add", b.ski, "--state-dir", str(tmp_path / "a")])
            assert rc == 0
        with anyio.fail_after(10):
            await round_trip(result[0])
        conn = result[0]
        rc = await anyio.to_thread.run_sync(cli.main, ["trust", "remove", b.ski, "--state-dir", str(tmp_path / "a")])
        assert rc == 0
        with anyio.fail_after(5):
            await conn.closed.wait()  # removing trust closes the running connection (announce, 4001)
        assert conn.close_reason == "peer closed: removedConnection"
        with anyio.fail_after(10), pytest.raises(ShipConnectionClosed):
            await nb.connect("127.0.0.1", na.port, expected_ski=a.ski)


async def test_restart_keeps_ski_and_port(tmp_path: Path) -> None:
    state = tmp_path / "a"
    _, _, b, tb = pair_of(tmp_path)
    first = Identity.load_or_create(state, "wallbox")
    port = stable_port(state, "wallbox", host="127.0.0.1")
    trust = TrustStore.in_state_dir(state, static=[b.ski])
    async with running(first, trust, port=port) as na, running(b, tb) as nb:
        assert na.port == port
        with anyio.fail_after(10):
            await (await nb.connect("127.0.0.1", port, expected_ski=first.ski)).close()
    again = Identity.load_or_create(state, "wallbox")
    assert again.ski == first.ski and again.ship_id == first.ship_id
    assert stable_port(state, "wallbox", host="127.0.0.1") == port
    async with running(again, TrustStore.in_state_dir(state, static=[b.ski]), port=port), running(b, tb) as nb:
        with anyio.fail_after(10):
            await (await nb.connect("127.0.0.1", port, expected_ski=first.ski)).close()


async def test_double_connection_resolves_to_the_one_initiated_by_the_higher_ski(tmp_path: Path) -> None:
    a, ta, b, tb = pair_of(tmp_path)
    async with running(a, ta, on_connection=echo) as na, running(b, tb, on_connection=echo) as nb:
        outcomes: list[Any] = []

        async def dial(node: ShipNode, port: int, ski: str) -> None:
            try:
                outcomes.append(await node.connect("127.0.0.1", port, expected_ski=ski))
            except ShipConnectionClosed as exc:
                outcomes.append(exc)

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(dial, na, nb.port, b.ski)
                tg.start_soon(dial, nb, na.port, a.ski)
            await wait_until(lambda: len(na.connections) == 1 and len(nb.connections) == 1)
            await anyio.sleep(0.5)  # stays resolved, no flapping
            assert len(na.connections) == 1 and len(nb.connections) == 1
        high, low = (na, nb) if a.ski > b.ski else (nb, na)
        assert high.connections[0].role is Role.CLIENT  # initiated by the higher SKI
        assert low.connections[0].role is Role.SERVER
        survivor = high.connections[0]
        await wait_until(lambda: survivor.completed.is_set())
        with anyio.fail_after(5):
            await round_trip(survivor)
