"""The CSMS websocket server: handshake, subprotocol, one task per connected charge point.

Each accepted connection gets a `ChargePointSession` whose link, control task
and (proxy mode) upstream link run in one task group; when the charge point
goes, all three end.  A second connection with the same id replaces the first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from adapters.ocpp import rpc
from adapters.ocpp.link import Link
from adapters.ocpp.options import ProxyOptions, ServerOptions
from adapters.ocpp.security import check_request, peer_common_name, server_ssl_context
from adapters.ocpp.session import ChargePointSession
from bridge.errors import ChargerUnreachable

log = logging.getLogger(__name__)


@dataclass
class Endpoint:
    """What the server needs to know about one allowed charge point."""

    password: str | None
    proxy: ProxyOptions | None
    make_session: Callable[[str], ChargePointSession]  # version → session
    on_upstream_call: Callable[[ChargePointSession, rpc.IncomingCall], Any] | None = None


class CsmsServer:
    """Owns the listening socket; `endpoints` is the allow-list keyed by charge point id."""

    def __init__(self, options: ServerOptions, endpoints: dict[str, Endpoint]) -> None:
        self.options = options
        self.endpoints = endpoints
        self.sessions: dict[str, ChargePointSession] = {}
        self.refused = 0
        self._server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def run(self, *, task_status: anyio.abc.TaskStatus[CsmsServer] = anyio.TASK_STATUS_IGNORED) -> None:
        async with serve(
            self._handle,
            self.options.host,
            self.options.port,
            subprotocols=list(rpc.SUBPROTOCOLS),  # type: ignore[arg-type]
            process_request=self._process_request,
            ssl=server_ssl_context(self.options),
            ping_interval=30,
            ping_timeout=30,
            open_timeout=10,
            max_size=rpc.MAX_FRAME,
        ) as server:
            self._server = server
            log.info(
                "OCPP CSMS listening on %s:%d (security profile %d)",
                self.options.host,
                self.port,
                self.options.security_profile,
            )
            task_status.started(self)
            await anyio.sleep_forever()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        ssl_object = connection.transport.get_extra_info("ssl_object")
        peercert = ssl_object.getpeercert() if ssl_object is not None else None
        passwords = {cp: ep.password for cp, ep in self.endpoints.items()}
        verdict = check_request(
            request.path, request.headers.get("Authorization"), peer_common_name(peercert), self.options, passwords
        )
        if verdict.status:
            self.refused += 1
            log.warning("OCPP: refused %s from %s: %s", request.path, connection.remote_address, verdict.reason)
            headers = Headers([("WWW-Authenticate", 'Basic realm="evbridge"')]) if verdict.status == 401 else None
            response = connection.respond(verdict.status, verdict.reason + "\n")
            if headers:
                response.headers.update(headers)
            return response
        offered = request.headers.get("Sec-WebSocket-Protocol")
        if not offered or not any(p.strip() in rpc.SUBPROTOCOLS for p in offered.split(",")):
            self.refused += 1
            log.warning("OCPP: refused %s: no supported subprotocol offered (%r)", request.path, offered)
            return connection.respond(400, "offer ocpp1.6 or ocpp2.0.1 as websocket subprotocol\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        from adapters.ocpp.security import cp_id_from_path

        cp_id = cp_id_from_path(ws.request.path if ws.request else "") or ""
        endpoint = self.endpoints[cp_id]
        version = rpc.SUBPROTOCOLS[str(ws.subprotocol)]
        session = endpoint.make_session(version)
        session.proxied = endpoint.proxy is not None
        old = self.sessions.get(cp_id)
        if old is not None and old.link is not None:
            log.info("%s: new connection replaces the old one", cp_id)
            await old.link.aclose()
        link = Link(ws, version, cp_id, session.on_call, call_timeout_s=self.options.call_timeout_s)
        session.link = link
        self.sessions[cp_id] = session
        log.info("%s: connected (OCPP %s)", cp_id, version)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.control_loop)
                if endpoint.proxy is not None:
                    tg.start_soon(self._upstream, session, endpoint, ws.subprotocol)
                await link.run()
                tg.cancel_scope.cancel()
        finally:
            if self.sessions.get(cp_id) is session:
                del self.sessions[cp_id]
            log.info("%s: disconnected", cp_id)

    async def _upstream(self, session: ChargePointSession, endpoint: Endpoint, subprotocol: Any) -> None:
        """Keep a connection to the charger's own back end (proxy mode), reconnecting with backoff."""
        assert endpoint.proxy is not None and endpoint.on_upstream_call is not None
        url = endpoint.proxy.upstream_url.rstrip("/") + "/" + session.cp_id
        headers = None
        if endpoint.proxy.password:
            import base64

            token = base64.b64encode(f"{session.cp_id}:{endpoint.proxy.password}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
        delay = 1.0
        handler = endpoint.on_upstream_call

        async def on_call(call: rpc.IncomingCall) -> dict[str, Any] | str:
            result: dict[str, Any] | str = await handler(session, call)
            return result

        while True:
            try:
                async with connect(url, subprotocols=[subprotocol], additional_headers=headers, open_timeout=10) as up:
                    link = Link(
                        up,
                        session.version,
                        f"{session.cp_id}→upstream",
                        on_call,
                        call_timeout_s=self.options.call_timeout_s,
                        id_prefix="up",
                    )
                    session.upstream = link
                    session.upstream_ready.set()
                    log.info("%s: proxy connected to upstream %s", session.cp_id, url)
                    delay = 1.0
                    await link.run()
            except (OSError, ChargerUnreachable, Exception) as exc:
                log.warning("%s: upstream %s unavailable: %s", session.cp_id, url, exc)
            finally:
                session.upstream = None
                session.upstream_ready = anyio.Event()
            await session.clock.sleep(delay)
            delay = min(delay * 2, 60.0)
