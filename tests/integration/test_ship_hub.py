"""ShipHub: one node per exposed device from a configuration, shared trust and control socket."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from bridge import cli
from bridge.clock import SystemClock
from bridge.eebus.ship import Identity, ShipConnection, ShipNode, TrustStore
from bridge.eebus.ship.hub import ShipHub
from bridge.eebus.ship.identity import stable_port
from tests.integration.test_ship_node import FAST, echo, round_trip, wait_until

pytestmark = pytest.mark.anyio


def charger(device_id: str, adapter: dict[str, Any]) -> Any:
    return SimpleNamespace(id=device_id, name=None, adapter=adapter, eebus=SimpleNamespace(port=None))


def config(ems_ski: str, connect_to: list[str]) -> Any:
    return SimpleNamespace(
        chargers=[charger("garage", {"type": "sim", "serial": "SIM-1"}), charger("carport", {"type": "sim"})],
        groups=[],
        eebus=SimpleNamespace(
            mode="per-charger",
            bind="127.0.0.1",
            port_base=24711,
            trusted_skis=[ems_ski.upper()],
            brand="evbridge",
            device_type="ChargingStation",
            mdns=SimpleNamespace(enabled=False, interface=None),
            max_message_bytes=1 << 20,
            connect_to=connect_to,
        ),
    )


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, device_id: str, conn: ShipConnection) -> None:
        self.seen.append((device_id, conn.role.value))
        await echo(conn)


def ems_node(tmp_path: Path, port: int | None) -> ShipNode:
    identity = Identity.load_or_create(tmp_path / "ems", "ems")
    return ShipNode(identity, TrustStore(None, []), SystemClock(), port=port, bind="127.0.0.1", timeouts=FAST,
                    ping_interval=0, on_connection=echo, rng=random.Random(2))  # fmt: skip


async def test_hub_exposes_each_charger_with_its_own_ski_and_port(tmp_path: Path) -> None:
    ems = ems_node(tmp_path, None)
    recorder = Recorder()
    state = tmp_path / "bridge"
    hub = ShipHub.from_config(config(ems.ski, []), state, SystemClock(), recorder, timeouts=FAST)
    assert set(hub.nodes) == {"garage", "carport"}
    garage, carport = hub.nodes["garage"], hub.nodes["carport"]
    assert garage.ski != carport.ski and garage.mdns_info is None
    async with ems, anyio.create_task_group() as tg:
        await tg.start(hub.run)
        assert garage.port == stable_port(state, "garage") and garage.port >= 24711 and carport.port != garage.port
        with anyio.fail_after(15):
            for node in (garage, carport):
                conn = await ems.connect("127.0.0.1", node.port, expected_ski=node.ski)
                await round_trip(conn)
        await wait_until(lambda: len(recorder.seen) == 2)
        assert sorted(recorder.seen) == [("carport", "server"), ("garage", "server")]
        rc = await anyio.to_thread.run_sync(cli.main, ["pair", "--minutes", "1", "--state-dir", str(state)])
        assert rc == 0 and hub.pairing.window_open  # one control socket for every device
        await hub.aclose()
        tg.cancel_scope.cancel()


async def test_hub_dials_an_ems_configured_as_host_port(tmp_path: Path) -> None:
    ems = ems_node(tmp_path, 0)
    recorder = Recorder()
    async with ems, anyio.create_task_group() as tg:
        hub = ShipHub.from_config(
            config(ems.ski, [f"127.0.0.1:{ems.port}"]), tmp_path / "bridge", SystemClock(), recorder, timeouts=FAST
        )
        for node in hub.nodes.values():
            ems.trust_store.add(node.ski)
        await tg.start(hub.run)
        await wait_until(lambda: len(recorder.seen) == 2, 15)
        assert sorted(recorder.seen) == [("carport", "client"), ("garage", "client")]
        assert len(ems.connections) == 2
        await hub.aclose()
        tg.cancel_scope.cancel()
