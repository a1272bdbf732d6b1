"""Northbound pure parts: local-limit command validation, HA object ids, settings from the config section."""

from __future__ import annotations

import json

import pytest

from bridge.api.ha_discovery import ENTITIES, discovery_topics, object_id
from bridge.api.mqtt_north import MqttNorthSettings, parse_local_limit
from bridge.config.model import MqttConfig


def cmd(**kw: object) -> bytes:
    return json.dumps(kw).encode()


def test_local_limit_validation() -> None:
    assert parse_local_limit(cmd(token="t", limit_w=3680), "t") == 3680.0
    assert parse_local_limit(cmd(token="t", limit_w=None), "t") is None
    for bad in (
        cmd(token="x", limit_w=1),
        cmd(limit_w=1),
        cmd(token="t"),
        cmd(token="t", limit_w=-1),
        cmd(token="t", limit_w=True),
        cmd(token="t", limit_w=2e6),
        b"NaN",
        b'{"token": "t", "limit_w": NaN}',
        b"\xff",
    ):
        with pytest.raises(ValueError):
            parse_local_limit(bad, "t")


def test_object_ids_are_sanitised_and_unique() -> None:
    assert object_id("site 1", "wb/2", "power") == "site_1_wb_2_power"
    topics = discovery_topics("homeassistant", "site1", "wb1")
    assert len(topics) == len(set(topics)) == len(ENTITIES)


def test_settings_from_config_section() -> None:
    cfg = MqttConfig.model_validate(
        {"host": "broker", "port": 8883, "username": "u", "password": "p", "tls": {"ca_file": "/ca.pem"},
         "base_topic": "site/a/", "ha_discovery": {"prefix": "ha"}, "command_token": "tok"}
    )  # fmt: skip
    s = MqttNorthSettings.from_config(cfg, node_id="siteA")
    assert s.link.host == "broker" and s.link.port == 8883 and s.link.password == "p"
    assert s.link.tls is not None and str(s.link.tls.ca_file) == "/ca.pem"
    assert s.base_topic == "site/a" and s.ha_prefix == "ha" and s.command_token == "tok"
    assert s.link.will_topic == "site/a/status" and s.link.will_payload == b"offline"
