"""EEBus SHIP (IEC 63380-3, SHIP 1.0.1): identity, trust, TLS + WebSocket transport, mDNS, state machine.

Seam for SPINE and the runtime (stable; extend compatibly)::

    from bridge.eebus.ship import Identity, TrustStore, ShipNode, ShipConnection, MdnsInfo

    identity = Identity.load_or_create(state_dir, "garage")     # key/cert/SKI persisted (0600)
    trust = TrustStore.in_state_dir(state_dir, static=config_skis)  # file-backed, reload()
    node = ShipNode(identity, trust, clock, port=4711, bind="0.0.0.0",
                    mdns_info=MdnsInfo(brand="evbridge", model="SIM", device_type="ChargingStation",
                                       serial="SIM-1", categories=(3,)),
                    max_message_bytes=1 << 20, on_connection=handle)
    async with node:                       # or: await tg.start(node.run)
        conn = await node.connect("10.0.0.5", 4712, expected_ski="...")   # client role

    async def handle(conn: ShipConnection) -> None:   # called once per connection in data exchange
        conn.peer_ski                      # 40 lowercase hex
        conn.peer_ship_id                  # SHIP ID from accessMethods
        await conn.send_spine({"datagram": {...}})     # ordinary JSON; or bytes already in EEBus JSON
        datagram = await conn.receive_spine()           # {"datagram": {...}} in ordinary JSON;
                                                        # raises ShipConnectionClosed at the end
        async for datagram in conn: ...                 # same, ends quietly when the connection closes
        await conn.close("reason")                      # connectionClose announce/confirm, 4001

`on_connection(conn)` runs as a task of the node, once for every incoming
connection and every outgoing one the node dialed by itself (mDNS or
configured peers) that reached data exchange; when it returns the connection
stays open until closed by either side; when it raises, the connection is
closed.  Connections returned by `node.connect()` are not passed to
`on_connection`: the caller owns them.  `node.ski`, `node.port` (the bound
port) and `node.connections` describe the node.  Read datagrams promptly:
while a connection's inbox (1024 datagrams) is full it stops reading the
socket (backpressure), which also delays its pong answers.

Several exposed devices in one process (the runtime): use `hub.ShipHub`:
`hub = ShipHub.from_config(config, state_dir, clock, on_connection)` with
`async def on_connection(device_id, conn)`, then `await tg.start(hub.run)`;
before cancelling, `await hub.aclose()`.  It does what follows for you.
By hand: one `Identity` and
one node per device, ports from `identity.stable_port(state_dir, device_id,
configured)`, one `TrustStore` and one `pairing.Pairing` shared by all nodes
(pass `pairing=`; the runtime then runs `pairing.run()`), and one
`control.ControlServer(control.control_path(state_dir), pairing, lambda:
nodes)` so that `evbridge trust`/`pair` reach the running bridge.  A single
node can instead be given `control_socket=control_path(state_dir)`.  Before
cancelling a node's `run()`, `await node.aclose()` closes its connections the
SHIP way (announce/confirm); `async with node` does that by itself.

Codec helpers for tests and tools: `eebus_json.to_eebus/from_eebus`,
`codec.encode/decode`.  Module map: `ski` (normal form), `eebus_json`,
`codec` (framing, typed messages), `statemachine` (sans-I/O, transition
table), `identity`, `trust`, `pairing`, `tls` (pyOpenSSL memory-BIO TLS for
both roles), `websocket` (websockets sans-I/O over that stream), `connection`,
`node`, `hub` (all nodes of a process), `mdns`, `control` (Unix control
socket), `cli` (`evbridge ski|trust|pair`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.eebus.ship.identity import Identity
from bridge.eebus.ship.ski import normalize_ski
from bridge.eebus.ship.statemachine import ShipTimeouts
from bridge.eebus.ship.trust import TrustStore

if TYPE_CHECKING:
    from bridge.eebus.ship.connection import ShipConnection, ShipConnectionClosed
    from bridge.eebus.ship.hub import DeviceSpec, ShipHub
    from bridge.eebus.ship.mdns import MdnsInfo
    from bridge.eebus.ship.node import PeerAddress, ShipNode

_LAZY = {
    "ShipHub": "bridge.eebus.ship.hub",
    "DeviceSpec": "bridge.eebus.ship.hub",
    "PeerAddress": "bridge.eebus.ship.node",
    "ShipNode": "bridge.eebus.ship.node",
    "ShipConnection": "bridge.eebus.ship.connection",
    "ShipConnectionClosed": "bridge.eebus.ship.connection",
    "MdnsInfo": "bridge.eebus.ship.mdns",
}

__all__ = [
    "DeviceSpec",
    "Identity",
    "MdnsInfo",
    "PeerAddress",
    "ShipConnection",
    "ShipConnectionClosed",
    "ShipHub",
    "ShipNode",
    "ShipTimeouts",
    "TrustStore",
    "normalize_ski",
]


def __getattr__(name: str) -> Any:
    """Transport classes load on first use, so the sans-I/O core imports without anyio/OpenSSL."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
