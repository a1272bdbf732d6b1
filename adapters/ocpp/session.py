"""One connected charge point: message handlers, per-connector state, and the setup after boot.

Handlers only update state (through `translate`) and answer; anything that
needs to send a CALL to the charge point (configuration after boot,
re-installing profiles, re-applying a limit that did not take) runs in the
session's control task, woken through an event.  In proxy mode the charge
point's calls are also forwarded to the upstream CSMS, whose answer wins.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import anyio

from adapters.ocpp import rpc, translate
from adapters.ocpp.link import Link
from adapters.ocpp.options import ServerOptions
from adapters.ocpp.profiles import iso, parse_time
from bridge.clock import Clock, wait_event
from bridge.errors import AdapterError
from bridge.model import ChargingState, Identification, IdentificationType, ManufacturerInformation, SessionSummary

log = logging.getLogger(__name__)


class ConnectorController(Protocol):
    """The charger object of one connector, as the session sees it."""

    def on_meter(self, reading: translate.MeterReading) -> None: ...

    def on_boot(self) -> None: ...

    def on_transaction(self) -> None: ...

    async def service(self) -> None:
        """Do pending work (re-install after boot, re-apply); called from the control task."""
        ...


@dataclass
class ConnectorState:
    """What one connector/EVSE reported most recently."""

    charging_state: ChargingState = ChargingState.UNKNOWN
    ev_connected: bool | None = None
    error_code: str | None = None
    available: bool = True
    power_w: float | None = None
    energy_wh: float | None = None
    current_a: list[float | None] = field(default_factory=lambda: [None, None, None])
    voltage_v: list[float | None] = field(default_factory=lambda: [None, None, None])
    current_offered_a: float | None = None
    soc_pct: float | None = None
    transaction_id: str | None = None
    id_tag: str | None = None
    session: SessionSummary | None = None
    meter_at: float | None = None  # clock.monotonic() of the last meter reading

    def merge(self, reading: translate.MeterReading, now_mono: float) -> None:
        for name in ("power_w", "energy_wh", "current_offered_a", "soc_pct"):
            value = getattr(reading, name)
            if value is not None:
                setattr(self, name, value)
        for i in range(3):
            if reading.current_a[i] is not None:
                self.current_a[i] = reading.current_a[i]
            if reading.voltage_v[i] is not None:
                self.voltage_v[i] = reading.voltage_v[i]
        self.meter_at = now_mono
        if self.session is not None and self.session.ended_at is None and self.energy_wh is not None:
            start = self.session.energy_start_wh
            if start is None:
                self.session = self.session.model_copy(update={"energy_start_wh": self.energy_wh})
            else:
                self.session = self.session.model_copy(update={"energy_wh": max(0.0, self.energy_wh - start)})


@dataclass
class ChargePointConfig:
    """What the charge point told us about its smart charging (GetConfiguration / GetVariables)."""

    max_stack_level: int | None = None
    units: tuple[str, ...] = ("A", "W")
    number_of_connectors: int | None = None
    smart_charging: bool = True


def _units(raw: str) -> tuple[str, ...]:
    """`Current,Power` or the short spellings `A,W` some firmwares report (quirk 12)."""
    out: list[str] = []
    for item in raw.replace(" ", "").split(","):
        if item in ("Current", "A"):
            out.append("A")
        elif item in ("Power", "W"):
            out.append("W")
    return tuple(out) or ("A", "W")


class ChargePointSession:
    """See module docstring; owned by the CSMS server's task for this connection."""

    def __init__(
        self,
        cp_id: str,
        version: str,
        clock: Clock,
        server: ServerOptions,
        controllers: Callable[[], dict[int, ConnectorController]],
        measurands: Callable[[], tuple[str, ...]],
    ) -> None:
        self.cp_id = cp_id
        self.version = version
        self.clock = clock
        self.server = server
        self._controllers = controllers
        self._measurands = measurands
        self.connectors: dict[int, ConnectorState] = {}
        self.manufacturer = ManufacturerInformation()
        self.config = ChargePointConfig()
        self.link: Link | None = None
        self.upstream: Link | None = None
        self.proxied = False  # set by the server when an upstream CSMS is configured
        self.upstream_ready = anyio.Event()
        self.booted = anyio.Event()
        self.ready = anyio.Event()  # configuration after boot done
        self.boot_count = 0
        self._wake = anyio.Event()
        self._needs_setup = False
        self._tx_ids = itertools.count(1)
        self.last_seen = clock.monotonic()

    def connector(self, connector_id: int) -> ConnectorState:
        return self.connectors.setdefault(connector_id, ConnectorState())

    def wake(self) -> None:
        self._wake.set()

    # -- control task ------------------------------------------------------
    async def control_loop(self) -> None:
        """Setup after each boot, then serve controllers' pending work; every wait bounded."""
        while True:
            self._wake = anyio.Event()
            if self._needs_setup:
                self._needs_setup = False
                try:
                    await self._setup()
                except AdapterError as exc:
                    log.warning("%s: setup after boot failed: %s", self.cp_id, exc)
                self.ready.set()
            if self.ready.is_set():
                for controller in list(self._controllers().values()):
                    try:
                        await controller.service()
                    except AdapterError as exc:
                        log.warning("%s: %s", self.cp_id, exc)
            await wait_event(self.clock, self._wake, 5.0)

    async def _setup(self) -> None:
        assert self.link is not None
        srv = self.server
        measurands = ",".join(self._measurands())
        if self.version == "1.6":
            reply = await self.link.call(
                "GetConfiguration",
                {
                    "key": [
                        "ChargeProfileMaxStackLevel",
                        "ChargingScheduleAllowedChargingRateUnit",
                        "NumberOfConnectors",
                    ]
                },
            )
            for item in reply.get("configurationKey", []):
                key, value = item.get("key"), item.get("value")
                if value is None:
                    continue
                if key == "ChargeProfileMaxStackLevel" and value.strip().isdigit():
                    self.config.max_stack_level = int(value)
                elif key == "ChargingScheduleAllowedChargingRateUnit":
                    self.config.units = _units(value)
                elif key == "NumberOfConnectors" and value.strip().isdigit():
                    self.config.number_of_connectors = int(value)
            for key, value in (
                ("MeterValueSampleInterval", str(srv.meter_interval_s)),
                ("MeterValuesSampledData", measurands),
                ("HeartbeatInterval", str(srv.heartbeat_interval_s)),
            ):
                if not value:
                    continue
                result = await self.link.call("ChangeConfiguration", {"key": key, "value": value})
                if result.get("status") not in ("Accepted", "RebootRequired"):
                    log.warning("%s: ChangeConfiguration %s=%s: %s", self.cp_id, key, value, result.get("status"))
        else:
            reply = await self.link.call(
                "GetVariables",
                {
                    "getVariableData": [
                        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "ProfileStackLevel"}},
                        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "RateUnit"}},
                    ]
                },
            )
            for item in reply.get("getVariableResult", []):
                name, value = item.get("variable", {}).get("name"), item.get("attributeValue")
                if item.get("attributeStatus") != "Accepted" or value is None:
                    continue
                if name == "ProfileStackLevel" and value.strip().isdigit():
                    self.config.max_stack_level = int(value)
                elif name == "RateUnit":
                    self.config.units = _units(value)
            data = [
                ("SampledDataCtrlr", "TxUpdatedInterval", str(srv.meter_interval_s)),
                ("SampledDataCtrlr", "TxUpdatedMeasurands", measurands),
                ("AlignedDataCtrlr", "Interval", str(srv.meter_interval_s)),
                ("AlignedDataCtrlr", "Measurands", measurands),
                ("OCPPCommCtrlr", "HeartbeatInterval", str(srv.heartbeat_interval_s)),
            ]
            result = await self.link.call(
                "SetVariables",
                {
                    "setVariableData": [
                        {"attributeValue": v, "component": {"name": c}, "variable": {"name": n}}
                        for c, n, v in data
                        if v
                    ]
                },
            )
            for item in result.get("setVariableResult", []):
                if item.get("attributeStatus") != "Accepted":
                    log.warning(
                        "%s: SetVariables %s: %s", self.cp_id, item.get("variable"), item.get("attributeStatus")
                    )

    # -- incoming calls from the charge point -------------------------------
    async def on_call(self, call: rpc.IncomingCall) -> dict[str, Any] | str:
        self.last_seen = self.clock.monotonic()
        handler = getattr(self, f"_{'v16' if self.version == '1.6' else 'v201'}_{call.action}", None)
        if handler is None:
            raise NotImplementedError(call.action)
        local: dict[str, Any] = handler(call.payload)
        if self.proxied and self.upstream is None:
            with anyio.move_on_after(self.server.call_timeout_s / 2):
                await self.upstream_ready.wait()  # the first messages after connect go upstream too
        if self.upstream is not None and not self.upstream.closed.is_set():
            try:
                reply = await self.upstream.call_raw(call.action, call.payload, unique_id=call.unique_id)
            except AdapterError as exc:
                log.warning("%s: upstream did not answer %s (%s); answering locally", self.cp_id, call.action, exc)
                return local
            if isinstance(reply, rpc.IncomingError):
                return rpc.error_frame(call.unique_id, reply.code, reply.description, reply.details)
            if call.action == "StartTransaction" and "transactionId" in reply.payload:
                self._rename_transaction(str(local["transactionId"]), str(reply.payload["transactionId"]))
            return rpc.result_frame(call.unique_id, reply.payload)
        return local

    def _rename_transaction(self, local_id: str, upstream_id: str) -> None:
        """In proxy mode the upstream CSMS numbers transactions; follow its id."""
        for state in self.connectors.values():
            if state.transaction_id == local_id:
                state.transaction_id = upstream_id

    def _now(self) -> str:
        return iso(self.clock.now())

    def _booted(self, payload: dict[str, Any]) -> None:
        self.manufacturer = translate.manufacturer_from_boot(self.version, payload)
        self.boot_count += 1
        self.booted.set()
        self.ready = anyio.Event()
        self._needs_setup = True
        for controller in self._controllers().values():
            controller.on_boot()  # many firmwares drop profiles on reboot: re-install everything
        self.wake()

    def _meter(self, connector_id: int, meter_value: list[dict[str, Any]]) -> None:
        reading = translate.meter_reading(self.version, meter_value)
        self.connector(connector_id).merge(reading, self.clock.monotonic())
        controller = self._controllers().get(connector_id)
        if controller is not None:
            controller.on_meter(reading)

    def _transaction_changed(self, connector_id: int) -> None:
        controller = self._controllers().get(connector_id)
        if controller is not None:
            controller.on_transaction()
            self.wake()

    def _start_session(self, state: ConnectorState, tx_id: str, id_tag: str | None, when: datetime) -> None:
        idents = (Identification(kind=IdentificationType.RFID, value=id_tag.upper()),) if id_tag else ()
        state.transaction_id = tx_id
        state.id_tag = id_tag
        state.session = SessionSummary(
            session_id=f"{self.cp_id}-{tx_id}", started_at=when, energy_start_wh=state.energy_wh, identifications=idents
        )

    def _end_session(self, state: ConnectorState, when: datetime, meter_wh: float | None) -> None:
        if state.session is not None:
            update: dict[str, Any] = {"ended_at": when}
            if meter_wh is not None and state.session.energy_start_wh is not None:
                update["energy_wh"] = max(0.0, meter_wh - state.session.energy_start_wh)
            state.session = state.session.model_copy(update=update)
        state.transaction_id = None

    # OCPP 1.6 handlers
    def _v16_BootNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        self._booted(p)
        return {"status": "Accepted", "currentTime": self._now(), "interval": self.server.heartbeat_interval_s}

    def _v16_Heartbeat(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": self._now()}

    def _v16_StatusNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        update = translate.status_16(p)
        state = self.connector(int(p["connectorId"]))
        state.charging_state, state.ev_connected = update.charging_state, update.ev_connected
        state.error_code, state.available = update.error_code, update.available
        return {}

    def _v16_MeterValues(self, p: dict[str, Any]) -> dict[str, Any]:
        self._meter(int(p["connectorId"]), p.get("meterValue", []))
        return {}

    def _v16_Authorize(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"idTagInfo": {"status": "Accepted"}}

    def _v16_StartTransaction(self, p: dict[str, Any]) -> dict[str, Any]:
        state = self.connector(int(p["connectorId"]))
        tx_id = next(self._tx_ids)
        state.energy_wh = float(p["meterStart"])
        self._start_session(state, str(tx_id), p.get("idTag"), parse_time(p["timestamp"]))
        self._transaction_changed(int(p["connectorId"]))
        return {"transactionId": tx_id, "idTagInfo": {"status": "Accepted"}}

    def _v16_StopTransaction(self, p: dict[str, Any]) -> dict[str, Any]:
        for state in self.connectors.values():
            if state.transaction_id == str(p["transactionId"]):
                state.energy_wh = float(p["meterStop"])
                self._end_session(state, parse_time(p["timestamp"]), float(p["meterStop"]))
        for cid in self.connectors:
            self._transaction_changed(cid)
        return {"idTagInfo": {"status": "Accepted"}}

    def _v16_DataTransfer(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

    def _v16_FirmwareStatusNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _v16_DiagnosticsStatusNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    # OCPP 2.0.1 handlers
    def _v201_BootNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        self._booted(p)
        return {"status": "Accepted", "currentTime": self._now(), "interval": self.server.heartbeat_interval_s}

    def _v201_Heartbeat(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": self._now()}

    def _v201_StatusNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        self._connector_status(int(p["evseId"]), p["connectorStatus"])
        return {}

    def _connector_status(self, evse_id: int, status: str) -> None:
        update = translate.connector_status_201(status)
        state = self.connector(evse_id)
        state.ev_connected, state.error_code, state.available = update.ev_connected, update.error_code, update.available
        if update.charging_state is ChargingState.FAULT or not update.ev_connected:
            state.charging_state = update.charging_state

    def _v201_NotifyEvent(self, p: dict[str, Any]) -> dict[str, Any]:
        for event in p.get("eventData", []):
            evse = event.get("component", {}).get("evse", {})
            if event.get("variable", {}).get("name") == "AvailabilityState" and "id" in evse:
                self._connector_status(int(evse["id"]), str(event.get("actualValue", "")))
        return {}

    def _v201_MeterValues(self, p: dict[str, Any]) -> dict[str, Any]:
        self._meter(int(p["evseId"]), p.get("meterValue", []))
        return {}

    def _v201_Authorize(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"idTokenInfo": {"status": "Accepted"}}

    def _v201_TransactionEvent(self, p: dict[str, Any]) -> dict[str, Any]:
        info = p["transactionInfo"]
        tx_id = str(info["transactionId"])
        evse_id = int(p.get("evse", {}).get("id", 0))
        if evse_id == 0:
            evse_id = next((i for i, s in self.connectors.items() if s.transaction_id == tx_id), 1)
        state = self.connector(evse_id)
        when = parse_time(p["timestamp"])
        if p.get("meterValue"):
            self._meter(evse_id, p["meterValue"])
        token = p.get("idToken", {}).get("idToken")
        if p["eventType"] == "Started" or (state.transaction_id != tx_id and p["eventType"] == "Updated"):
            self._start_session(state, tx_id, token, when)
            self._transaction_changed(evse_id)
        elif token and state.session is not None and not state.session.identifications:
            ident = Identification(kind=IdentificationType.RFID, value=token.upper())
            state.session = state.session.model_copy(update={"identifications": (ident,)})
            state.id_tag = token
        charging = translate.charging_state_201(info.get("chargingState"))
        if charging is not None:
            state.charging_state = charging
            state.ev_connected = True if charging is not ChargingState.IDLE else state.ev_connected
        if p["eventType"] == "Ended":
            self._end_session(state, when, state.energy_wh)
            state.charging_state = ChargingState.IDLE
            self._transaction_changed(evse_id)
        return {"idTokenInfo": {"status": "Accepted"}} if token else {}

    def _v201_NotifyReport(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _v201_SecurityEventNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _v201_FirmwareStatusNotification(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _v201_ReportChargingProfiles(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _v201_NotifyChargingLimit(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _v201_DataTransfer(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}
