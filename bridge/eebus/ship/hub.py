"""All SHIP nodes of one process: one per exposed device, sharing trust store, pairing and control socket.

This is what the runtime composes: `ShipHub.from_config(config, state_dir,
clock, on_connection)` then `await tg.start(hub.run)`.  Each exposed device
(a charger, or a group in group mode) gets its own persisted identity and
stable port; every node announces itself via one shared zeroconf instance,
browses for trusted EMSs and dials them, and `evbridge trust`/`pair` reach all
nodes through one control socket.  `on_connection(device_id, conn)` is called
for each connection in data exchange, so SPINE can bind it to that device.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import ifaddr
from zeroconf.asyncio import AsyncZeroconf

from bridge.clock import Clock
from bridge.eebus.ship.connection import ShipConnection
from bridge.eebus.ship.control import ControlServer, control_path
from bridge.eebus.ship.identity import DEFAULT_SHIP_PORT, Identity, stable_port
from bridge.eebus.ship.mdns import MdnsInfo
from bridge.eebus.ship.node import PeerAddress, ShipNode
from bridge.eebus.ship.pairing import Pairing
from bridge.eebus.ship.statemachine import ShipTimeouts
from bridge.eebus.ship.trust import TrustStore

log = logging.getLogger(__name__)

OnDeviceConnection = Callable[[str, ShipConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One exposed EEBus device."""

    device_id: str
    port: int | None = None  # configured; None: allocated once and persisted
    mdns: MdnsInfo = field(default_factory=MdnsInfo)


def interface_addresses(name: str) -> list[str]:
    """IPv4 addresses of a network interface (config `eebus.mdns.interface`)."""
    return [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        if adapter.nice_name == name or adapter.name == name
        for ip in adapter.ips
        if isinstance(ip.ip, str)
    ]


def device_specs(config: Any) -> list[DeviceSpec]:
    """The exposed devices of a `bridge.config` BridgeConfig: chargers, or groups in group mode."""
    eebus = config.eebus
    group_mode = getattr(eebus, "mode", "per-charger") == "group"
    chargers = {c.id: c for c in config.chargers}
    devices = []
    for item in config.groups if group_mode else config.chargers:
        adapter = getattr(item, "adapter", None) or {}
        serial = str(adapter.get("serial", "")) if isinstance(adapter, dict) else ""
        model = getattr(item, "name", None) or (adapter.get("type") if isinstance(adapter, dict) else None)
        if group_mode and not serial:
            serial = ",".join(str(chargers[c].id) for c in getattr(item, "chargers", []) if c in chargers)[:32]
        info = MdnsInfo(
            brand=getattr(eebus, "brand", "evbridge"),
            model=str(model or "evbridge"),
            device_type=getattr(eebus, "device_type", "ChargingStation"),
            serial=serial,
        )
        devices.append(DeviceSpec(str(item.id), getattr(getattr(item, "eebus", None), "port", None), info))
    return devices


class ShipHub:
    """Owns the nodes; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        clock: Clock,
        devices: Sequence[DeviceSpec],
        *,
        on_connection: OnDeviceConnection,
        trusted_skis: Sequence[str] = (),
        bind: str = "0.0.0.0",
        port_base: int = DEFAULT_SHIP_PORT,
        mdns: bool = True,
        mdns_interfaces: list[str] | None = None,
        max_message_bytes: int = 1 << 20,
        peers: Sequence[PeerAddress] = (),
        timeouts: ShipTimeouts | None = None,
        control_socket: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.clock = clock
        self.trust = TrustStore.in_state_dir(state_dir, static=trusted_skis)
        self.pairing = Pairing(self.trust, clock)
        self.mdns = mdns
        self.mdns_interfaces = mdns_interfaces
        self.control_socket = control_socket
        probe_host = bind if bind not in ("", "0.0.0.0", "::") else "0.0.0.0"
        self.nodes: dict[str, ShipNode] = {}
        for spec in devices:
            identity = Identity.load_or_create(state_dir, spec.device_id)
            port = stable_port(state_dir, spec.device_id, spec.port, host=probe_host, base=port_base)
            self.nodes[spec.device_id] = ShipNode(
                identity,
                self.trust,
                clock,
                port=port,
                bind=bind,
                mdns_info=spec.mdns if mdns else None,
                max_message_bytes=max_message_bytes,
                on_connection=functools.partial(on_connection, spec.device_id),
                timeouts=timeouts,
                pairing=self.pairing,
                peers=peers,
                browse=mdns,
                mdns_interfaces=mdns_interfaces,
            )

    @classmethod
    def from_config(
        cls, config: Any, state_dir: Path, clock: Clock, on_connection: OnDeviceConnection, **overrides: Any
    ) -> ShipHub:
        """Build from a `bridge.config` BridgeConfig (read by attribute, so it tolerates added fields)."""
        eebus = config.eebus
        devices = device_specs(config)
        mdns_config = getattr(eebus, "mdns", None)
        interface = getattr(mdns_config, "interface", None)
        options: dict[str, Any] = {
            "trusted_skis": list(getattr(eebus, "trusted_skis", [])),
            "bind": getattr(eebus, "bind", "0.0.0.0"),
            "port_base": getattr(eebus, "port_base", DEFAULT_SHIP_PORT),
            "mdns": getattr(mdns_config, "enabled", True),
            "mdns_interfaces": interface_addresses(interface) if interface else None,
            "max_message_bytes": getattr(eebus, "max_message_bytes", 1 << 20),
            "peers": [PeerAddress.parse(text) for text in getattr(eebus, "connect_to", [])],
        }
        options.update(overrides)
        return cls(state_dir, clock, devices, on_connection=on_connection, **options)

    async def run(self, *, task_status: anyio.abc.TaskStatus[ShipHub] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every node (and the control socket) until cancelled; call `aclose()` first for a SHIP-style goodbye."""
        async with contextlib.AsyncExitStack() as stack:
            if self.mdns:
                azc = AsyncZeroconf(interfaces=self.mdns_interfaces) if self.mdns_interfaces else AsyncZeroconf()
                stack.push_async_callback(_shielded_close, azc)
                for node in self.nodes.values():
                    node.use_zeroconf(azc)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.pairing.run)
                if self.control_socket:
                    nodes = list(self.nodes.values())
                    await tg.start(ControlServer(control_path(self.state_dir), self.pairing, lambda: nodes).serve)
                for node in self.nodes.values():
                    await tg.start(node.run)
                task_status.started(self)
                await anyio.sleep_forever()

    async def aclose(self) -> None:
        """Close all connections of all nodes the SHIP way (bounded)."""
        async with anyio.create_task_group() as tg:
            for node in self.nodes.values():
                tg.start_soon(node.aclose)


async def _shielded_close(azc: AsyncZeroconf) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(3):
        await azc.async_close()
