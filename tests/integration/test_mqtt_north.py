"""Northbound MQTT against a real mosquitto: topic tree, Home Assistant discovery, restart, local limits.

Home Assistant MQTT discovery rules checked here (from HA's MQTT discovery documentation):
  R1 the config topic is `<discovery_prefix>/<component>/<object_id>/config`, component in {sensor, binary_sensor},
     object_id of [a-zA-Z0-9_-] only;
  R2 the payload is a JSON object with a `unique_id` that is unique across all entities;
  R3 a `device` block with `identifiers` (non-empty list), `name`, `manufacturer` and `model`; all entities of one
     charger share the same identifiers, different chargers have different identifiers;
  R4 a `state_topic` that the bridge publishes (retained) and whose JSON has every key the value_template reads;
  R5 `availability` (list of {topic, payload_available, payload_not_available}) whose topics are published;
  R6 numeric sensors carry `device_class`, `unit_of_measurement` and `state_class` (energy: total_increasing with
     unit Wh/kWh; power: measurement with W; current: measurement with A); an enum sensor carries device_class
     enum and `options` and no unit;
  R7 removing a charger publishes an empty retained payload on each of its config topics, so a new subscriber
     sees none of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from bridge.api.mqtt_north import MqttNorthbound, MqttNorthSettings
from bridge.clock import SystemClock
from bridge.model import AcMeasurement, ChargerSnapshot, ChargingState, ManufacturerInformation
from bridge.mqttio import LinkSettings
from tests.integration.mosquitto import Mosquitto, eventually, observing, start_broker

pytestmark = pytest.mark.anyio
TOKEN = "local-token-123"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


def snapshot(cid: str, power: float = 7360.0, serial: str = "SN-1") -> ChargerSnapshot:
    return ChargerSnapshot(
        charger_id=cid,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        manufacturer=ManufacturerInformation(vendor="go-e", model="Gemini", serial=serial, firmware="56.2"),
        ev_connected=True,
        charging_state=ChargingState.CHARGING,
        active_phases=3,
        measurement=AcMeasurement(
            power_w=power, energy_wh=12345.0, current_per_phase_a=(10.7, 10.6, 10.7), voltage_per_phase_v=(230,) * 3
        ),
    )


def settings(port: int, **kw: object) -> MqttNorthSettings:
    link = LinkSettings("127.0.0.1", port, client_id="north", backoff_initial_s=0.05, backoff_max_s=0.2)
    return MqttNorthSettings(link=link, node_id="site1", **kw)  # type: ignore[arg-type]


@asynccontextmanager
async def northbound(port: int, **kw: object) -> AsyncIterator[MqttNorthbound]:
    north = MqttNorthbound(settings(port, **kw), SystemClock())
    async with anyio.create_task_group() as tg:
        await tg.start(north.run)
        await north.link.wait_connected(5)
        yield north
        tg.cancel_scope.cancel()


def lpc() -> dict[str, object]:
    return {"state": "limited", "effective_cap_w": 4200.0, "limit_w": 4200.0, "limit_active": True}


def check_discovery(retained: dict[str, bytes], chargers: list[str]) -> None:
    configs = {t: json.loads(p) for t, p in retained.items() if t.startswith("homeassistant/")}
    assert configs, "no discovery configs published"
    unique_ids: set[str] = set()
    identifiers: dict[str, set[str]] = {}
    for topic, cfg in configs.items():
        m = re.fullmatch(r"homeassistant/(sensor|binary_sensor)/([a-zA-Z0-9_-]+)/config", topic)
        assert m, f"R1: bad config topic {topic}"
        assert isinstance(cfg, dict)
        assert cfg.get("unique_id") and cfg["unique_id"] not in unique_ids, f"R2: {topic}"
        unique_ids.add(cfg["unique_id"])
        dev = cfg.get("device")
        assert isinstance(dev, dict) and dev.get("identifiers") and dev.get("name"), f"R3: {topic}"
        assert dev.get("manufacturer") and dev.get("model"), f"R3: {topic}"
        cid = next(c for c in chargers if f"_{c}_" in m.group(2))
        identifiers.setdefault(cid, set()).add(json.dumps(dev["identifiers"]))
        state_topic = cfg.get("state_topic")
        assert state_topic in retained, f"R4: {topic} state_topic {state_topic} not published"
        state = json.loads(retained[state_topic])
        for key in re.findall(r"value_json\.(\w+)", cfg.get("value_template", "")):
            assert key in state, f"R4: {topic} template reads {key} missing in {state_topic}"
        avail = cfg.get("availability")
        assert isinstance(avail, list) and avail, f"R5: {topic}"
        for a in avail:
            assert a["topic"] in retained and a["payload_available"] and a["payload_not_available"], f"R5: {topic}"
        if m.group(1) == "sensor":
            if cfg.get("device_class") == "enum":
                assert cfg.get("options") and "unit_of_measurement" not in cfg, f"R6: {topic}"
            else:
                assert cfg.get("device_class") and cfg.get("unit_of_measurement") and cfg.get("state_class"), topic
                expected = {"energy": ("total_increasing", {"Wh", "kWh"}), "power": ("measurement", {"W", "kW"})}
                expected["current"] = ("measurement", {"A"})
                sc, units = expected[cfg["device_class"]]
                assert cfg["state_class"] == sc and cfg["unit_of_measurement"] in units, f"R6: {topic}"
    assert all(len(ids) == 1 for ids in identifiers.values()), "R3: one device per charger"
    assert len({next(iter(ids)) for ids in identifiers.values()}) == len(chargers), "R3: distinct devices"
    classes = {cfg.get("device_class") for cfg in configs.values()}
    assert {"power", "energy", "current", "enum"} <= classes
    assert any("active_limit" in t for t in configs), "the active limit is exposed"


async def test_topic_tree_and_discovery_then_removal(broker: Mosquitto) -> None:
    async with northbound(broker.port) as north:
        north.publish_snapshot(snapshot("wb1"))
        north.publish_snapshot(snapshot("wb2", serial="SN-2"))
        north.publish_lpc("wb1", lpc())
        north.publish_lpc("wb2", lpc())
        await anyio.sleep(0.2)
        async with observing(broker.port) as obs:  # a new subscriber gets the retained state
            await eventually(lambda: _async(len(obs.retained) >= 2 * 14 + 1), 5)
            assert obs.retained["evbridge/status"] == b"online"
            assert obs.retained["evbridge/wb1/available"] == b"online"
            state = json.loads(obs.retained["evbridge/wb1/state"])
            assert state["power_w"] == 7360.0 and state["charging_state"] == "charging"
            full = ChargerSnapshot.model_validate_json(obs.retained["evbridge/wb1/snapshot"])
            assert full == snapshot("wb1")
            assert json.loads(obs.retained["evbridge/wb1/lpc"])["effective_cap_w"] == 4200.0
            assert all(retained for t, _p, retained in obs.messages)
            check_discovery(obs.retained, ["wb1", "wb2"])

            north.remove_charger("wb2")
            await eventually(lambda: _async(not any("wb2" in t for t in obs.retained)), 5)
        async with observing(broker.port, "observer2") as fresh:
            await eventually(lambda: _async("evbridge/wb1/state" in fresh.retained), 5)
            await anyio.sleep(0.2)
            assert not any("wb2" in t for t in fresh.retained), "R7: removed charger still retained"
            assert any("site1_wb1_" in t for t in fresh.retained)


async def _async(value: bool) -> bool:
    return value


async def test_broker_restart_republishes_everything(broker: Mosquitto) -> None:
    async with northbound(broker.port) as north:
        north.publish_snapshot(snapshot("wb1"))
        north.publish_lpc("wb1", lpc())
        async with observing(broker.port) as obs:
            await eventually(lambda: _async("evbridge/wb1/lpc" in obs.retained), 5)
            before = dict(obs.retained)
        connects = north.link.connects
        broker.restart()  # no persistence: the broker forgets every retained message
        # published while the broker is down: must not be lost either
        north.publish_snapshot(snapshot("wb1", power=3000.0))
        await eventually(lambda: _async(north.link.connects > connects and north.link.connected), 10)
        async with observing(broker.port, "observer2") as obs:
            await eventually(lambda: _async(set(before) <= set(obs.retained)), 5)
            assert json.loads(obs.retained["evbridge/wb1/state"])["power_w"] == 3000.0
            for topic, payload in before.items():
                if topic not in ("evbridge/wb1/state", "evbridge/wb1/snapshot"):
                    assert obs.retained[topic] == payload, topic


async def test_last_will_marks_bridge_offline(broker: Mosquitto) -> None:
    async with observing(broker.port) as obs, northbound(broker.port) as north:
        north.publish_snapshot(snapshot("wb1"))
        await eventually(lambda: _async(obs.retained.get("evbridge/status") == b"online"), 5)
        client = north.link._client
        assert client is not None
        sock = client.socket()
        assert sock is not None
        sock.shutdown(2)  # the connection dies without DISCONNECT: the broker sends the last will
        await eventually(lambda: _async(("evbridge/status", b"offline", False) in obs.messages), 5)
        await eventually(lambda: _async(obs.retained.get("evbridge/status") == b"online"), 10)  # and back


async def test_local_limit_command(broker: Mosquitto) -> None:
    async with northbound(broker.port, command_token=TOKEN) as north, observing(broker.port) as obs:
        north.publish_snapshot(snapshot("wb1"))
        results: list[dict[str, object]] = []

        def send(payload: object, cid: str = "wb1") -> None:
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            obs.link.publish(f"evbridge/{cid}/local_limit/set", raw, qos=1)

        async def result_count(n: int) -> bool:
            results[:] = [json.loads(p) for t, p, _r in obs.messages if t == "evbridge/wb1/local_limit/result"]
            return len(results) >= n

        send({"token": TOKEN, "limit_w": 3000})
        with anyio.fail_after(5):
            assert await north.local_limits.receive() == ("wb1", 3000.0)
        await eventually(lambda: result_count(1), 5)
        assert results[-1] == {"ok": True, "error": None}
        await eventually(lambda: _async(obs.retained.get("evbridge/wb1/local_limit") == b'{"limit_w": 3000.0}'), 5)

        for n, bad in enumerate(
            [
                {"token": "wrong", "limit_w": 1000},
                {"limit_w": 1000},
                {"token": TOKEN, "limit_w": -5},
                {"token": TOKEN, "limit_w": "lots"},
                {"token": TOKEN},
                b"\xff\xfe not json",
                [1, 2],
            ],
            start=2,
        ):
            send(bad)
            await eventually(lambda n=n: result_count(n), 5)
            assert results[-1]["ok"] is False, bad
        send({"token": TOKEN, "limit_w": 1000}, cid="nope")  # unknown charger: answered on its own result topic
        send({"token": TOKEN, "limit_w": None})
        with anyio.fail_after(5):
            assert await north.local_limits.receive() == ("wb1", None)  # nothing from the rejected ones came through
        assert north.link.connected


async def test_no_command_topic_without_token(broker: Mosquitto) -> None:
    async with northbound(broker.port) as north, observing(broker.port) as obs:
        north.publish_snapshot(snapshot("wb1"))
        obs.link.publish("evbridge/wb1/local_limit/set", json.dumps({"token": "", "limit_w": 10}).encode(), qos=1)
        await anyio.sleep(0.3)
        with pytest.raises(anyio.WouldBlock):
            north.local_limits.receive_nowait()
        assert not any(t.endswith("/result") for t, _p, _r in obs.messages)
