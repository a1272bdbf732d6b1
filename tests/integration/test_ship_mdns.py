"""mDNS on loopback: a node announces `_ship._tcp` with every TXT key; a browsing node finds it and dials it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from bridge.eebus.ship import MdnsInfo, ShipConnection
from bridge.eebus.ship.mdns import SERVICE_TYPE
from tests.integration.test_ship_node import echo, pair_of, running, wait_until

pytestmark = pytest.mark.anyio

INFO = MdnsInfo(brand="Acme", model="WB1", device_type="ChargingStation", serial="0001", categories=(3,))


async def test_announce_has_every_txt_key(tmp_path: Path) -> None:
    a, ta, _, _ = pair_of(tmp_path)
    async with running(a, ta, mdns_info=INFO, mdns_interfaces=["127.0.0.1"]) as na:
        azc = AsyncZeroconf(interfaces=["127.0.0.1"])
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, f"{a.ship_id}.{SERVICE_TYPE}")
            with anyio.fail_after(10):
                while not await info.async_request(azc.zeroconf, 2000):
                    pass
        finally:
            await azc.async_close()
    txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
    assert txt == {
        "txtvers": "1",
        "id": a.ship_id,
        "path": "/ship/",
        "ski": a.ski,
        "register": "false",
        "brand": "Acme",
        "model": "WB1",
        "type": "ChargingStation",
        "serial": "0001",
        "cat": "3",
    }
    assert info.port == na.port
    assert "127.0.0.1" in info.parsed_addresses()


async def test_browsing_node_finds_and_dials_a_trusted_peer(tmp_path: Path) -> None:
    a, ta, b, tb = pair_of(tmp_path)
    seen: list[ShipConnection] = []

    async def on_connection(conn: ShipConnection) -> None:
        seen.append(conn)
        await echo(conn)

    async with (
        running(a, ta, mdns_info=INFO, mdns_interfaces=["127.0.0.1"], on_connection=on_connection) as na,
        running(b, tb, port=None, browse=True, mdns_interfaces=["127.0.0.1"], on_connection=echo) as nb,
    ):
        await wait_until(lambda: a.ski in nb.discovered, 15)
        found = nb.discovered[a.ski]
        assert (found.ship_id, found.port, found.path, found.register) == (a.ship_id, na.port, "/ship/", False)
        assert (found.brand, found.model, found.device_type) == ("Acme", "WB1", "ChargingStation")
        assert found.categories == "3"
        await wait_until(lambda: bool(seen) and seen[0].completed.is_set(), 15)
        assert seen[0].peer_ski == b.ski
        assert nb.connection_for(a.ski) is not None
