"""The whole path over a real mosquitto: config → runtime → MQTT go-e charger (simulated), LPC and a local limit
sent over the northbound command topic, snapshots and LPC state on the northbound topic tree."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import anyio
import pytest

from adapters.sim.mqtt_charger import GoeSimConfig, MqttChargerSimulator
from bridge.api.mqtt_north import MqttNorthSettings, northbound_service
from bridge.clock import SystemClock
from bridge.config import load_config_text
from bridge.core.coordinator import CoordinatorSettings
from bridge.mqttio import LinkSettings
from bridge.runtime.app import Bridge
from tests.integration.mosquitto import eventually, observing, start_broker

pytestmark = pytest.mark.anyio

CONFIG = """
mqtt: {{host: 127.0.0.1, port: {port}, base_topic: site/evbridge, command_token: tok-1}}
chargers:
  - id: garage
    adapter: {{type: mqtt, mapping: goe, port: {port}, variables: {{serial: E2E1}}, max_current_a: 16}}
"""


async def holds(check: object) -> bool:
    return bool(check)


async def test_lpc_and_local_limit_reach_an_mqtt_charger(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker")
    try:
        loaded = load_config_text(CONFIG.format(port=broker.port), "site.yaml")
        assert loaded.config.mqtt is not None
        settings = MqttNorthSettings.from_config(loaded.config.mqtt, node_id="site")
        clock = SystemClock()
        bridge = Bridge(
            loaded, clock, tmp_path / "state", coordinator_settings=CoordinatorSettings(poll_interval_s=0.2)
        )
        sim = MqttChargerSimulator(
            LinkSettings("127.0.0.1", broker.port), clock, [GoeSimConfig("E2E1")], publish_interval_s=0.2
        )
        async with sim, anyio.create_task_group() as tg, observing(broker.port) as obs:
            services = [northbound_service(settings)]
            await tg.start(partial(bridge.run, extra_services=services))

            def sim_setpoint() -> float:
                return sim.device("E2E1").physics.setpoint_a

            # Init: the failsafe limit 4200 W → 6 A on three phases
            await eventually(lambda: holds(sim_setpoint() == 6), 10)
            garage = bridge.devices["garage"]
            garage.heartbeat()
            assert garage.write_limit(6900, True, None, peer="ems").accepted
            await eventually(lambda: holds(sim_setpoint() == 10), 10)  # 6900 W / 690 V = 10 A

            # northbound: state, LPC and discovery are on the broker
            await eventually(lambda: holds("site/evbridge/garage/lpc" in obs.retained), 5)
            await eventually(
                lambda: holds(json.loads(obs.retained["site/evbridge/garage/lpc"])["effective_cap_w"] == 6900), 5
            )
            state = json.loads(obs.retained["site/evbridge/garage/state"])
            assert state["available"] is True and state["ev_connected"] is True
            assert any(t.startswith("homeassistant/sensor/site_garage_power") for t in obs.retained)

            # a local limit over MQTT is lower than LPC here: it binds
            obs.link.publish("site/evbridge/garage/local_limit/set", b'{"token": "tok-1", "limit_w": 4600}', qos=1)
            await eventually(lambda: holds(sim_setpoint() == 6), 10)  # 4600 / 690 = 6.67 → 6 A
            # a local limit above LPC does not raise anything (CMB-02)
            obs.link.publish("site/evbridge/garage/local_limit/set", b'{"token": "tok-1", "limit_w": 20000}', qos=1)
            await eventually(lambda: holds(sim_setpoint() == 10), 10)
            assert bridge.chargers["garage"].local_limit_w == 20000
            # a wrong token changes nothing
            obs.link.publish("site/evbridge/garage/local_limit/set", b'{"token": "nope", "limit_w": 0}', qos=1)
            await anyio.sleep(0.5)
            assert bridge.chargers["garage"].local_limit_w == 20000 and sim_setpoint() == 10
            bridge.stop()
    finally:
        broker.stop()
