"""`type: ocpp` adapter factory: owns the one CSMS server and knows every configured charger.

Server settings: `AdapterDeps.options` (keys of `ServerOptions`) when the
runtime passes any, else the `server:` block of the first OCPP charger; all
chargers naming a `server:` block must agree.  The server starts in
`__aenter__` when the settings are known, else as soon as the first charger
is created (create() does no I/O itself: it hands the settings to the owner
task).  Chargers of one charge point (several connectors/EVSEs) share its
connection and appear as one charger each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import anyio
from pydantic import BaseModel

from adapters.ocpp import rpc
from adapters.ocpp.charger import OcppCharger
from adapters.ocpp.options import OcppOptions, ServerOptions
from adapters.ocpp.server import CsmsServer, Endpoint
from adapters.ocpp.session import ChargePointSession, ConnectorController
from adapters.ocpp.vendor import load_vendor_profile
from bridge.errors import ConfigError
from bridge.ports import AdapterDeps

log = logging.getLogger(__name__)


class OcppFactory:
    """See module docstring."""

    kind = "ocpp"
    options_model = OcppOptions

    def __init__(self, deps: AdapterDeps) -> None:
        self._deps = deps
        self._server_options: ServerOptions | None = (
            ServerOptions.model_validate(dict(deps.options)) if deps.options else None
        )
        self._chargers: dict[str, dict[int, OcppCharger]] = {}
        self._options: dict[str, OcppOptions] = {}
        self.server: CsmsServer | None = None
        self._configured = anyio.Event()
        self._started = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    # -- AdapterFactory --------------------------------------------------------
    def validate_options(self, options: Mapping[str, Any]) -> OcppOptions:
        parsed = OcppOptions.model_validate(dict(options))
        load_vendor_profile(parsed.vendor_profile, self._deps.mapping_dirs)  # a missing/bad mapping fails at validate
        return parsed

    def create(self, charger_id: str, options: BaseModel) -> OcppCharger:
        assert isinstance(options, OcppOptions)
        if options.server is not None:
            if self._server_options is None:
                self._server_options = options.server
            elif options.server != self._server_options:
                raise ConfigError(
                    f"charger {charger_id}: all OCPP chargers must name the same server settings (one CSMS per bridge)",
                    field="adapter.server",
                )
        connectors = self._chargers.setdefault(options.charge_point_id, {})
        if options.connector_id in connectors:
            raise ConfigError(
                f"charger {charger_id}: connector {options.connector_id} of {options.charge_point_id} configured twice",
                field="adapter.connector_id",
            )
        first = self._options.get(options.charge_point_id)
        if first is not None and (first.proxy != options.proxy or first.password != options.password):
            raise ConfigError(
                f"charger {charger_id}: connectors of {options.charge_point_id} must share password and proxy",
                field="adapter.proxy",
            )
        self._options.setdefault(options.charge_point_id, options)
        vendor = load_vendor_profile(options.vendor_profile, self._deps.mapping_dirs)
        charger = OcppCharger(charger_id, options, vendor, self, self._deps.clock)
        connectors[options.connector_id] = charger
        if self._server_options is not None:
            self._configured.set()
        return charger

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._serve)
        if self._server_options is not None:
            self._configured.set()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(exc_type, exc, tb)

    # -- hub -------------------------------------------------------------------
    def session(self, cp_id: str) -> ChargePointSession | None:
        return self.server.sessions.get(cp_id) if self.server is not None else None

    async def wait_started(self) -> CsmsServer:
        """For tests and the demo: the running server (its port when port 0 was configured)."""
        await self._started.wait()
        assert self.server is not None
        return self.server

    async def _serve(self) -> None:
        await self._configured.wait()
        assert self._server_options is not None
        endpoints = {cp: self._endpoint(cp) for cp in self._chargers}
        self.server = CsmsServer(self._server_options, endpoints)
        await self._tg.start(self.server.run)  # type: ignore[union-attr]
        self._started.set()

    def _endpoint(self, cp_id: str) -> Endpoint:
        options = self._options[cp_id]

        def controllers() -> dict[int, ConnectorController]:
            return dict(self._chargers.get(cp_id, {}))

        def measurands() -> tuple[str, ...]:
            chosen: list[str] = []
            for charger in self._chargers.get(cp_id, {}).values():
                if charger.vendor.meter.configure:
                    chosen += [m for m in charger.vendor.meter.measurands if m not in chosen]
            return tuple(chosen)

        def make_session(version: str) -> ChargePointSession:
            assert self._server_options is not None
            return ChargePointSession(cp_id, version, self._deps.clock, self._server_options, controllers, measurands)

        return Endpoint(options.password, options.proxy, make_session, self._on_upstream_call)

    async def _on_upstream_call(self, session: ChargePointSession, call: rpc.IncomingCall) -> dict[str, Any] | str:
        """Proxy mode: forward the upstream CSMS's call; its charging profiles are clamped to our obligation."""
        payload = call.payload
        if call.action == "SetChargingProfile":
            connector = int(payload.get("connectorId", payload.get("evseId", 0)))
            key = "csChargingProfiles" if session.version == "1.6" else "chargingProfile"
            chargers = self._chargers.get(session.cp_id, {})
            targets = [chargers[connector]] if connector in chargers else list(chargers.values())
            original = payload[key]
            forwarded = [charger.clamp_upstream(connector, original) for charger in targets]
            lowest = min(range(len(targets)), key=lambda i: targets[i].obligation_a())
            payload = {**payload, key: forwarded[lowest]}
            session.wake()  # the chargers re-apply: their live profile follows a lower upstream wish
        elif call.action == "ClearChargingProfile":
            pid = payload.get("id", payload.get("chargingProfileId"))
            for charger in self._chargers.get(session.cp_id, {}).values():
                charger.forget_upstream(None if pid is None else int(pid))
            session.wake()
        if session.link is None:
            return rpc.error_frame(call.unique_id, "GenericError", "charge point not connected")
        reply = await session.link.call_raw(call.action, payload, unique_id=call.unique_id)
        if isinstance(reply, rpc.IncomingError):
            return rpc.error_frame(call.unique_id, reply.code, reply.description, reply.details)
        return rpc.result_frame(call.unique_id, reply.payload)


def make_factory(deps: AdapterDeps) -> OcppFactory:
    """Entry point `evbridge.adapters: ocpp`."""
    return OcppFactory(deps)
