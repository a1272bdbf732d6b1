"""Hub construction from a configuration (no sockets: nodes are built, not run)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bridge.clock import FakeClock
from bridge.eebus.ship.hub import ShipHub
from bridge.eebus.ship.node import PeerAddress


def test_peer_address_parse() -> None:
    assert PeerAddress.parse("ems.local:4711") == PeerAddress("ems.local", 4711)
    assert PeerAddress.parse("[fd00::1]:4712", "ab" * 20) == PeerAddress("fd00::1", 4712, "ab" * 20)


async def _ignore(device_id: str, conn: Any) -> None:
    return None


def test_group_mode_exposes_groups_with_configured_ports(tmp_path: Path) -> None:
    def charger(device_id: str) -> Any:
        return SimpleNamespace(id=device_id, name=None, adapter={"type": "sim"}, eebus=SimpleNamespace(port=None))

    config = SimpleNamespace(
        chargers=[charger("a"), charger("b")],
        groups=[SimpleNamespace(id="carpark", name="Car park", chargers=["a", "b"], eebus=SimpleNamespace(port=5123))],
        eebus=SimpleNamespace(
            mode="group",
            bind="127.0.0.1",
            trusted_skis=[],
            brand="Acme",
            device_type="ChargingStation",
            mdns=SimpleNamespace(enabled=True, interface=None),
            connect_to=["10.0.0.9:4711"],
        ),
    )
    hub = ShipHub.from_config(config, tmp_path, FakeClock(), _ignore)
    assert list(hub.nodes) == ["carpark"]
    node = hub.nodes["carpark"]
    assert node.port == 5123 and node.browse
    assert node.mdns_info is not None
    assert (node.mdns_info.brand, node.mdns_info.model, node.mdns_info.serial) == ("Acme", "Car park", "a,b")
    assert node.peers == [PeerAddress("10.0.0.9", 4711)]
