"""A SHIP node: one exposed device's listener, dialer, mDNS presence and connection registry.

Owns a task group; every connection's owner task, the accept loop, mDNS and
the dial loops live in it.  Policy lives here, protocol in `statemachine`:
which peers get `ready`/`pending`/`aborted` (via `Pairing`), the
double-connection rule, reconnect pacing, and handing connections that
reached data exchange to the application (`on_connection`).

Double connections (reference §2.11, ship-go's rule): of two connections
between the same two nodes in opposite directions, keep the one initiated by
the node with the higher SKI (lowercase hex string order) and close the
other with WebSocket 1000 "double connection".  Both ends apply the same
rule, so they agree without talking.  Two connections in the same direction
mean the peer reconnected: once the newer one completes its handshake it
replaces the (stale) older one.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from zeroconf.asyncio import AsyncZeroconf

from bridge.clock import Clock
from bridge.eebus.ship.connection import ShipConnection, ShipConnectionClosed
from bridge.eebus.ship.identity import Identity
from bridge.eebus.ship.mdns import MdnsBrowser, MdnsInfo, ShipService, local_addresses, service_info
from bridge.eebus.ship.pairing import Pairing
from bridge.eebus.ship.ski import normalize_ski
from bridge.eebus.ship.statemachine import CLOSE_DOUBLE, Role, ShipStateMachine, ShipTimeouts, TrustDecision
from bridge.eebus.ship.tls import TlsError, TlsStream, make_context
from bridge.eebus.ship.trust import TrustStore
from bridge.eebus.ship.websocket import (
    DEFAULT_PATH,
    WsChannel,
    WsEvent,
    WsHandshakeError,
    client_handshake,
    server_handshake,
)

log = logging.getLogger(__name__)

OnConnection = Callable[[ShipConnection], Awaitable[None]]
_HANDSHAKE_ERRORS = (TlsError, WsHandshakeError, TimeoutError, OSError, anyio.EndOfStream, anyio.BrokenResourceError)
# ship-go's reconnect pacing: random delay from these ranges by attempt number
_DIAL_DELAYS = ((0.0, 3.0), (3.0, 10.0), (10.0, 20.0))


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A peer to dial, configured as host:port, with its SKI when known."""

    host: str
    port: int
    ski: str | None = None
    path: str = DEFAULT_PATH

    @classmethod
    def parse(cls, text: str, ski: str | None = None) -> PeerAddress:
        """`host:port` or `[v6]:port`."""
        host, _, port = text.rpartition(":")
        return cls(host.strip("[]"), int(port), ski)


class ShipNode:
    """SHIP server and client for one exposed device (see the package docstring for the API)."""

    def __init__(
        self,
        identity: Identity,
        trust_store: TrustStore,
        clock: Clock,
        *,
        port: int | None = 4711,
        bind: str = "0.0.0.0",
        mdns_info: MdnsInfo | None = None,
        max_message_bytes: int = 1 << 20,
        on_connection: OnConnection | None = None,
        timeouts: ShipTimeouts | None = None,
        pairing: Pairing | None = None,
        peers: Sequence[PeerAddress] = (),
        browse: bool = False,
        zeroconf: AsyncZeroconf | None = None,
        mdns_interfaces: list[str] | None = None,
        handshake_timeout: float = 10.0,
        dial_timeout: float = 5.0,
        ping_interval: float = 50.0,
        control_socket: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.identity = identity
        self.trust_store = trust_store
        self.clock = clock
        self.port = port
        self.bind = bind
        self.mdns_info = mdns_info
        self.max_message_bytes = max_message_bytes
        self.timeouts = timeouts or ShipTimeouts()
        self._owns_pairing = pairing is None
        self.pairing = pairing or Pairing(trust_store, clock)
        self.peers = list(peers)
        self.browse = browse
        self.handshake_timeout = handshake_timeout
        self.dial_timeout = dial_timeout
        self.ping_interval = ping_interval
        self.control_socket = control_socket
        self.discovered: dict[str, ShipService] = {}
        self._on_connection = on_connection
        self._zeroconf = zeroconf
        self._mdns_interfaces = mdns_interfaces
        self._server_ctx = make_context(identity, server=True)
        self._client_ctx = make_context(identity, server=False)
        self._rng = rng or random.Random()
        self._conns: dict[str, list[ShipConnection]] = {}
        self._dialing: set[str] = set()
        self._tg: anyio.abc.TaskGroup | None = None
        self._owner_tg: anyio.abc.TaskGroup | None = None

    # ------------------------------------------------------------ properties

    @property
    def ski(self) -> str:
        return self.identity.ski

    @property
    def ship_id(self) -> str:
        return self.identity.ship_id

    @property
    def connections(self) -> list[ShipConnection]:
        return [c for conns in self._conns.values() for c in conns if not c.closed.is_set()]

    def connection_for(self, ski: str) -> ShipConnection | None:
        """The live connection in data exchange with `ski`, if any."""
        for conn in self._conns.get(normalize_ski(ski), []):
            if conn.completed.is_set() and not conn.closed.is_set():
                return conn
        return None

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ShipNode:
        self._owner_tg = anyio.create_task_group()
        await self._owner_tg.__aenter__()
        try:
            await self._owner_tg.start(self.run)
        except BaseException:
            self._owner_tg.cancel_scope.cancel()
            await self._owner_tg.__aexit__(*sys.exc_info())
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._owner_tg is not None
        with anyio.CancelScope(shield=True):
            await self.aclose()
        self._owner_tg.cancel_scope.cancel()
        return await self._owner_tg.__aexit__(exc_type, exc, tb)

    async def aclose(self, reason: str = "shutdown", limit: float = 1.5) -> None:
        """Close every connection the SHIP way (announce/confirm), bounded; call before cancelling `run`."""
        with anyio.move_on_after(limit):
            async with anyio.create_task_group() as tg:
                for conn in self.connections:
                    tg.start_soon(conn.close, reason)

    async def run(self, *, task_status: anyio.abc.TaskStatus[ShipNode] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled."""
        async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
            self._tg = tg
            if self.port is not None:
                listener = await anyio.create_tcp_listener(local_host=self.bind, local_port=self.port)
                stack.push_async_callback(self._shielded, listener.aclose)
                self.port = listener.extra(SocketAttribute.local_port)
                tg.start_soon(listener.serve, self._handle_incoming, tg)
                log.info("SHIP %s listening on %s:%d, SKI %s", self.identity.device_id, self.bind, self.port, self.ski)
            if self.mdns_info is not None or self.browse:
                await self._start_mdns(stack, tg)
            if self._owns_pairing:
                tg.start_soon(self.pairing.run)
            if self.control_socket is not None:
                from bridge.eebus.ship.control import ControlServer

                control = ControlServer(self.control_socket, self.pairing, lambda: [self])
                await tg.start(control.serve)
            for peer in self.peers:
                self._start_dial_loop(peer.host, peer.port, normalize_ski(peer.ski) if peer.ski else None, peer.path)
            task_status.started(self)
            await anyio.sleep_forever()

    async def _start_mdns(self, stack: contextlib.AsyncExitStack, tg: anyio.abc.TaskGroup) -> None:
        azc = self._zeroconf
        if azc is None:
            interfaces: Any = self._mdns_interfaces if self._mdns_interfaces else None
            azc = AsyncZeroconf(interfaces=interfaces) if interfaces else AsyncZeroconf()
            stack.push_async_callback(self._shielded, azc.async_close)
        if self.mdns_info is not None and self.port is not None:
            addresses = self._mdns_interfaces or local_addresses(self.bind)
            info = service_info(self.mdns_info, ship_id=self.ship_id, ski=self.ski, port=self.port, addresses=addresses)
            await azc.async_register_service(info)
            stack.push_async_callback(self._shielded, azc.async_unregister_service, info)
            log.info("SHIP %s announced via mDNS as %s", self.identity.device_id, info.name)
        if self.browse:
            tg.start_soon(MdnsBrowser(azc, self.ski, self._on_service_found).run)

    @staticmethod
    async def _shielded(func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(3):
            await func(*args)

    def use_zeroconf(self, zeroconf: AsyncZeroconf) -> None:
        """Share one zeroconf instance between the nodes of a process (set before `run`)."""
        self._zeroconf = zeroconf

    def _require_running(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            raise RuntimeError("ShipNode is not running (use `async with node` or `await tg.start(node.run)`)")
        return self._tg

    # ------------------------------------------------------------ server role

    async def _handle_incoming(self, sock: anyio.abc.SocketStream) -> None:
        address = _address(sock)
        try:
            with anyio.fail_after(self.handshake_timeout):
                tls = await TlsStream.wrap(sock, self._server_ctx, server=True)
                channel, events = await server_handshake(tls, max_size=self.max_message_bytes)
        except _HANDSHAKE_ERRORS as exc:
            log.warning("SHIP %s: incoming connection from %s failed before SHIP: %s",
                        self.identity.device_id, address, exc or type(exc).__name__)  # fmt: skip
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await sock.aclose()
            return
        await self._run_connection(channel, events, Role.SERVER, tls.peer_ski, address, notify_app=True)

    # ------------------------------------------------------------ client role

    async def connect(
        self, host: str, port: int, expected_ski: str | None = None, *, path: str = DEFAULT_PATH
    ) -> ShipConnection:
        """Dial a peer and return the connection once it reached data exchange.

        With `expected_ski` the peer must present exactly that SKI (ship-go:
        "SKI does not match") and is trusted for this connection, as the user
        named it; without it the trust store / pairing window decide.
        """
        tg = self._require_running()
        expected = normalize_ski(expected_ski) if expected_ski else None
        channel, events, peer_ski, address = await self._dial(host, port, expected, path)
        conn, admitted = self._prepare(channel, Role.CLIENT, peer_ski, address, expected is not None)
        if not admitted:
            await self._refuse_double(channel, address)
            survivor = self._survivor(peer_ski)
            if survivor is None:
                raise ShipConnectionClosed(f"double connection to {peer_ski} was resolved against us")
            conn = survivor
        else:
            tg.start_soon(self._own, conn, events, False)
        total = sum((self.timeouts.cmi, self.timeouts.hello_init, self.timeouts.prot, self.timeouts.pin))
        with anyio.fail_after(total + self.timeouts.access + 5):
            await _wait_any(conn.completed, conn.closed)
        if not conn.completed.is_set() or conn.closed.is_set():
            raise ShipConnectionClosed(f"SHIP handshake with {peer_ski} at {address} failed: {conn.close_reason}")
        return conn

    async def _dial(
        self, host: str, port: int, expected: str | None, path: str
    ) -> tuple[WsChannel, list[WsEvent], str, str]:
        """TCP + TLS + WebSocket to a peer; like ship-go, retry without the path if the upgrade fails."""
        try:
            return await self._dial_once(host, port, expected, path)
        except WsHandshakeError:
            if path in ("", "/"):
                raise
            return await self._dial_once(host, port, expected, "/")

    async def _dial_once(
        self, host: str, port: int, expected: str | None, path: str
    ) -> tuple[WsChannel, list[WsEvent], str, str]:
        with anyio.fail_after(self.dial_timeout + self.handshake_timeout):
            sock = await anyio.connect_tcp(host, port)
            address = _address(sock)
            try:
                tls = await TlsStream.wrap(sock, self._client_ctx, server=False)
                if expected is not None and tls.peer_ski != expected:
                    raise TlsError(f"SKI does not match: expected {expected}, peer presented {tls.peer_ski}")
                with anyio.fail_after(self.dial_timeout):
                    channel, events = await client_handshake(tls, host, port, path, max_size=self.max_message_bytes)
            except BaseException:
                with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                    await sock.aclose()
                raise
        return channel, events, tls.peer_ski, address

    def _start_dial_loop(self, host: str, port: int, ski: str | None, path: str) -> None:
        key = ski or f"{host}:{port}"
        if key in self._dialing:
            return
        self._dialing.add(key)
        self._require_running().start_soon(self._dial_loop, host, port, ski, path, key)

    async def _dial_loop(self, host: str, port: int, ski: str | None, path: str, key: str) -> None:
        """Keep one connection to a peer, with ship-go's randomised pacing.

        With a SKI (configured with it, or found by mDNS) the peer must present
        it and is dialed only while trusted; a peer configured as host:port
        alone is dialed and then judged by the trust store like an incoming one.
        """
        configured_ski = ski is not None
        attempt = 0
        try:
            while True:
                low, high = _DIAL_DELAYS[min(attempt, len(_DIAL_DELAYS) - 1)]
                await self.clock.sleep(self._rng.uniform(low, high))
                existing = self._live(ski) if ski else None
                if existing is not None:
                    await existing.closed.wait()
                    attempt = 0
                    continue
                if ski and not self.pairing.trust.is_trusted(ski):
                    attempt = min(attempt + 1, len(_DIAL_DELAYS) - 1)
                    continue
                service = self.discovered.get(ski) if ski else None
                target_host, target_port = (service.addresses[0], service.port) if service else (host, port)
                attempt += 1
                try:
                    channel, events, peer_ski, address = await self._dial(target_host, target_port, ski, path)
                except _HANDSHAKE_ERRORS as exc:
                    log.info("SHIP %s: dialing %s at %s:%d failed: %s", self.identity.device_id, ski or "peer",
                             target_host, target_port, exc or type(exc).__name__)  # fmt: skip
                    continue
                ski = peer_ski
                completed = await self._run_connection(
                    channel, events, Role.CLIENT, peer_ski, address, True, configured_ski
                )
                if completed:
                    attempt = 0
        finally:
            self._dialing.discard(key)

    def _on_service_found(self, service: ShipService) -> None:
        self.discovered[service.ski] = service
        if service.addresses and self.pairing.trust.is_trusted(service.ski):
            self._start_dial_loop(service.addresses[0], service.port, service.ski, service.path)

    # ------------------------------------------------------------ connections

    def _prepare(
        self, channel: WsChannel, role: Role, peer_ski: str, address: str, explicit_trust: bool
    ) -> tuple[ShipConnection, bool]:
        decision = TrustDecision.TRUSTED if explicit_trust else self.pairing.decide(peer_ski)
        undecided = decision is TrustDecision.REFUSED
        if undecided:
            # Not `aborted` at once: ship-go treats that as "remote denied trust" and stops dialing.  The peer
            # waits in the pending list (no prolongation) so that `evbridge trust add` can still let it in.
            log.warning("SHIP %s: peer SKI %s from %s is not trusted; it is refused unless trusted within its "
                        "hello wait (`evbridge trust add %s` or `evbridge pair --accept %s`)",
                        self.identity.device_id, peer_ski, address, peer_ski, peer_ski)  # fmt: skip
            decision = TrustDecision.PENDING
        machine = ShipStateMachine(role, self.clock, self.ship_id, decision, self.timeouts)
        machine.allow_waiting = not undecided
        conn = ShipConnection(
            channel,
            machine,
            peer_ski=peer_ski,
            peer_address=address,
            clock=self.clock,
            on_completed=self._completed,
            on_awaiting_trust=self._awaiting_trust,
            ping_interval=self.ping_interval,
        )
        conn.explicit_trust = explicit_trust
        return conn, self._admit(conn)

    async def _run_connection(
        self,
        channel: WsChannel,
        events: list[WsEvent],
        role: Role,
        peer_ski: str,
        address: str,
        notify_app: bool,
        explicit_trust: bool = False,
    ) -> bool:
        conn, admitted = self._prepare(channel, role, peer_ski, address, explicit_trust)
        if not admitted:
            await self._refuse_double(channel, address)
            return False
        await self._own(conn, events, notify_app)
        return conn.completed.is_set()

    async def _own(self, conn: ShipConnection, events: list[WsEvent], notify_app: bool) -> None:
        conn.notify_app = notify_app
        try:
            await conn.run(events)
        except Exception:  # a bug in one connection must not take the node and its other connections down
            log.exception("SHIP %s: connection with %s failed unexpectedly", self.identity.device_id, conn.peer_ski)
        finally:
            if conn.pairing_tokens and not conn.completed.is_set():
                log.warning("SHIP %s: refused peer SKI %s from %s: not trusted (%s)", self.identity.device_id,
                            conn.peer_ski, conn.peer_address, conn.close_reason)  # fmt: skip
            for token in conn.pairing_tokens:
                self.pairing.remove_pending(token)
            conns = self._conns.get(conn.peer_ski, [])
            if conn in conns:
                conns.remove(conn)
            if not conns:
                self._conns.pop(conn.peer_ski, None)

    def _completed(self, conn: ShipConnection) -> None:
        log.info("SHIP %s: connection %s with SKI %s (%s, SHIP ID %s) in data exchange", self.identity.device_id,
                 conn.role.value, conn.peer_ski, conn.peer_address, conn.peer_ship_id)  # fmt: skip
        for stale in self._conns.get(conn.peer_ski, []):
            if stale is not conn and stale.role is conn.role and not stale.closed.is_set():
                log.info("SHIP %s: %s reconnected; closing the older link", self.identity.device_id, conn.peer_ski)
                stale.drop(CLOSE_DOUBLE, "double connection")
        if conn.notify_app and self._on_connection is not None:
            self._require_running().start_soon(self._serve_app, conn)

    def revoke_untrusted(self) -> int:
        """Close connections whose SKI was removed from the trust store (like ship-go's unregister)."""
        count = 0
        for conn in self.connections:
            if not conn.explicit_trust and conn.completed.is_set() and not self.trust_store.is_trusted(conn.peer_ski):
                log.warning("SHIP %s: SKI %s is no longer trusted; closing its connection", self.identity.device_id,
                            conn.peer_ski)  # fmt: skip
                conn.request_close("removedConnection")
                count += 1
        return count

    def _awaiting_trust(self, conn: ShipConnection) -> None:
        token = self.pairing.add_pending(
            conn.peer_ski, conn.peer_address, self.identity.device_id, conn.grant_trust, conn.deny_trust
        )
        conn.pairing_tokens.append(token)

    async def _serve_app(self, conn: ShipConnection) -> None:
        assert self._on_connection is not None
        try:
            await self._on_connection(conn)
        except ShipConnectionClosed:
            pass
        except Exception:
            log.exception("SHIP %s: application handler for %s failed; closing", self.identity.device_id, conn.peer_ski)
            await conn.close("application error")

    # ------------------------------------------------------------ double connections

    def _initiator(self, conn: ShipConnection) -> str:
        return conn.peer_ski if conn.role is Role.SERVER else self.ski

    def _admit(self, new: ShipConnection) -> bool:
        keep_new = True
        for old in [c for c in self._conns.get(new.peer_ski, []) if not c.closed.is_set()]:
            if old.role is new.role:
                continue  # a reconnect: the older one is closed once the new one completes (_completed)
            if self._initiator(new) > self._initiator(old):
                log.info("SHIP %s: double connection with %s: keeping the new %s one", self.identity.device_id,
                         new.peer_ski, new.role.value)  # fmt: skip
                old.drop(CLOSE_DOUBLE, "double connection")
            else:
                keep_new = False
        if keep_new:
            self._conns.setdefault(new.peer_ski, []).append(new)
        else:
            log.info("SHIP %s: double connection with %s: closing the new %s one", self.identity.device_id,
                     new.peer_ski, new.role.value)  # fmt: skip
        return keep_new

    def _live(self, ski: str) -> ShipConnection | None:
        for conn in self._conns.get(ski, []):
            if not conn.closed.is_set():
                return conn
        return None

    def _survivor(self, ski: str) -> ShipConnection | None:
        return self._live(ski)

    @staticmethod
    async def _refuse_double(channel: WsChannel, address: str) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(1):
            try:
                channel.send_close(CLOSE_DOUBLE, "double connection")
                await channel.flush()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            await channel.stream.aclose()


def _address(sock: anyio.abc.SocketStream) -> str:
    try:
        host, port = sock.extra(SocketAttribute.remote_address)[:2]
    except (TypeError, ValueError, anyio.TypedAttributeLookupError):
        return "?"
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


async def _wait_any(*events: anyio.Event) -> None:
    async with anyio.create_task_group() as tg:

        async def waiter(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(waiter, event)
