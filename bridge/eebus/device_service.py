"""EEBus service of the runtime: one SHIP node and one EVSE SPINE device per exposed device.

Seam with the runtime (wired in `bridge/runtime/eebus_wiring.py`):
`EebusService(exposures, clock, state_dir, settings)` where each `Exposure`
names a device id, its `EvseSource` (snapshot getter, static characteristics,
the LPC endpoint, and which optional MPC quantities exist: `frequency`,
`voltage`; `contractual` for a group) and the mDNS facts.  The LPC endpoint is
the runtime's `ExposedDevice` (`lpc`, `heartbeat()`, `write_limit()`,
`write_failsafe()`), which journals, persists and triggers the reallocation.
`run()` starts the nodes, a shared pairing window and the control socket
(`evbridge trust`/`pair` reach the running bridge), and per SHIP connection a
`SpineLink` around a `SpineSession`.  After each connection reaches data
exchange the device reads the EMS's discovery and use cases (a monitoring-only
EMS's heartbeat does not count for LPC) and subscribes to its DeviceDiagnosis
heartbeat (LPC-39).  `changed()` wakes every link so notifies follow a
snapshot or LPC change within a second; LPC timers are the runtime's
(`ExposedDevice.tick()`), the device's own heartbeat is ticked by the links.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import TaskStatus

from bridge.clock import Clock
from bridge.eebus.ship import Identity, TrustStore
from bridge.eebus.ship.control import ControlServer, control_path
from bridge.eebus.ship.identity import stable_port
from bridge.eebus.ship.mdns import MdnsInfo
from bridge.eebus.ship.node import PeerAddress, ShipNode
from bridge.eebus.ship.pairing import Pairing
from bridge.eebus.spine.device import FeatureAddress
from bridge.eebus.spine.ems import find_feature
from bridge.eebus.spine.evse import EVSE, F_DIAG_CLIENT, EvseDevice, EvseSource
from bridge.eebus.spine.link import RequestFailed, SpineLink
from bridge.eebus.spine.session import NODE_MANAGEMENT, SpineSession

log = logging.getLogger(__name__)

SUBSCRIBE_ATTEMPTS = 3
SUBSCRIBE_RETRY_S = 2.0


@dataclass(frozen=True)
class Exposure:
    device_id: str
    source: EvseSource
    port: int | None = None
    brand: str = "evbridge"
    model: str = "evbridge"
    serial: str = ""


@dataclass(frozen=True)
class EebusSettings:
    bind: str = "0.0.0.0"
    port_base: int = 4712
    trusted_skis: tuple[str, ...] = ()
    mdns: bool = True
    mdns_interfaces: list[str] | None = None
    max_message_bytes: int = 1 << 20
    peers: tuple[PeerAddress, ...] = ()
    vendor: str = "evbridge"


@dataclass
class RunningDevice:
    exposure: Exposure
    evse: EvseDevice
    node: ShipNode
    links: set[SpineLink] = field(default_factory=set)


class EebusService:
    """See module docstring."""

    def __init__(self, exposures: Sequence[Exposure], clock: Clock, state_dir: Path, settings: EebusSettings) -> None:
        self.clock = clock
        self.state_dir = state_dir
        self.settings = settings
        self.trust = TrustStore.in_state_dir(state_dir, static=settings.trusted_skis)
        self.pairing = Pairing(self.trust, clock)
        self.devices: dict[str, RunningDevice] = {}
        for exposure in exposures:
            identity = Identity.load_or_create(state_dir, exposure.device_id)
            port = stable_port(
                state_dir, exposure.device_id, exposure.port, host=settings.bind, base=settings.port_base
            )
            evse = EvseDevice(exposure.device_id, exposure.source, clock, vendor=settings.vendor)
            running = RunningDevice(exposure, evse, None)  # type: ignore[arg-type]
            running.node = ShipNode(
                identity,
                self.trust,
                clock,
                port=port,
                bind=settings.bind,
                mdns_info=MdnsInfo(
                    brand=exposure.brand, model=exposure.model, serial=exposure.serial, device_type="ChargingStation"
                )
                if settings.mdns
                else None,
                mdns_interfaces=settings.mdns_interfaces,
                max_message_bytes=settings.max_message_bytes,
                on_connection=lambda conn, r=running: self._serve(r, conn),
                pairing=self.pairing,
                peers=settings.peers,
            )
            self.devices[exposure.device_id] = running

    def changed(self) -> None:
        """A snapshot or LPC state changed: let every link look for notifies to send."""
        for running in self.devices.values():
            for link in running.links:
                link.wake()

    async def run(self, *, task_status: TaskStatus[EebusService] = anyio.TASK_STATUS_IGNORED) -> None:
        control = ControlServer(
            control_path(self.state_dir), self.pairing, lambda: [d.node for d in self.devices.values()]
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.pairing.run)
            await tg.start(control.serve)
            for running in self.devices.values():
                await tg.start(running.node.run)
                log.info(
                    "EEBus device %s: SHIP port %d, SKI %s",
                    running.exposure.device_id,
                    running.node.port,
                    running.node.ski,
                )
            task_status.started(self)

    async def _serve(self, running: RunningDevice, conn) -> None:  # type: ignore[no-untyped-def]
        session = SpineSession(running.evse.device, self.clock, conn.peer_ski)
        link = SpineLink(session, conn, self.clock, on_tick=running.evse.tick, deadline=running.evse.next_deadline)
        running.links.add(link)
        log.info("EEBus device %s: EMS %s connected", running.exposure.device_id, conn.peer_ski)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_heartbeat, link)
                await link.run()
                tg.cancel_scope.cancel()
        finally:
            running.links.discard(link)
            log.info("EEBus device %s: EMS %s disconnected", running.exposure.device_id, conn.peer_ski)


async def watch_heartbeat(link: SpineLink) -> None:
    """LPC-39: read the EMS's discovery, subscribe to its DeviceDiagnosis server, read its heartbeat once."""
    session = link.session
    own_nm = NODE_MANAGEMENT
    try:
        discovery = await link.call(
            "read", own_nm, FeatureAddress(None, *NODE_MANAGEMENT), {"nodeManagementDetailedDiscoveryData": {}}
        )
        try:  # which EMS is it: only an LPC energy guard's heartbeat counts (EvseDevice._on_heartbeat)
            remote = FeatureAddress(None, *NODE_MANAGEMENT)
            await link.call("read", own_nm, remote, {"nodeManagementUseCaseData": {}})
        except RequestFailed as exc:
            log.info("SPINE %s: the EMS did not tell its use cases: %s", session.peer, exc)
        server = find_feature(discovery or {}, "DeviceDiagnosis", "server")
        if server is None:
            log.info("SPINE %s: the EMS offers no heartbeat (DeviceDiagnosis server)", session.peer)
            return
        client = FeatureAddress(session.device.address, EVSE, F_DIAG_CLIENT)
        body = {
            "subscriptionRequest": {
                "clientAddress": client.to_json(),
                "serverAddress": server.to_json(),
                "serverFeatureType": "DeviceDiagnosis",
            }
        }
        remote_nm = FeatureAddress(server.device, *NODE_MANAGEMENT)
        for attempt in range(1, SUBSCRIBE_ATTEMPTS + 1):
            try:
                await link.call("call", own_nm, remote_nm, {"nodeManagementSubscriptionRequestCall": body}, ack=True)
                break
            except RequestFailed as exc:
                # why: spine-go refuses a subscription from a client feature it has not yet
                # seen in our discovery, and it reads our discovery in parallel with ours
                if attempt == SUBSCRIBE_ATTEMPTS:
                    raise
                log.info("SPINE %s: heartbeat subscription refused (%s); retrying", session.peer, exc)
                await link.clock.sleep(SUBSCRIBE_RETRY_S)
        await link.call("read", (EVSE, F_DIAG_CLIENT), server, {"deviceDiagnosisHeartbeatData": {}})
    except RequestFailed as exc:
        log.warning("SPINE %s: could not subscribe to the EMS heartbeat: %s", session.peer, exc)
