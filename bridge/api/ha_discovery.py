"""Home Assistant MQTT discovery payloads for one charger (pure: data in, (topic, config) out).

Each charger becomes one HA device with sensors for power, energy, current
per phase, charging state and the active LPC limit, and a binary sensor for
the plug.  Every entity reads the retained JSON state topics of the evbridge
topic tree and is available only while both the bridge (`<base>/status`) and
the charger (`<base>/<charger>/available`) say `online`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bridge.model import ChargerSnapshot, ChargingState


@dataclass(frozen=True)
class Entity:
    component: str  # sensor | binary_sensor
    key: str
    name: str
    source: str  # "state" or "lpc": which JSON topic the value comes from
    template: str
    device_class: str | None = None
    unit: str | None = None
    state_class: str | None = None
    options: tuple[str, ...] | None = None
    icon: str | None = None


ENTITIES: tuple[Entity, ...] = (
    Entity("sensor", "power", "Power", "state", "{{ value_json.power_w }}", "power", "W", "measurement"),
    Entity("sensor", "energy", "Energy", "state", "{{ value_json.energy_wh }}", "energy", "Wh", "total_increasing"),
    *(
        Entity(
            "sensor", f"current_l{i}", f"Current L{i}", "state", f"{{{{ value_json.current_l{i}_a }}}}",
            "current", "A", "measurement",
        )
        for i in (1, 2, 3)
    ),
    Entity(
        "sensor", "state", "Charging state", "state", "{{ value_json.charging_state }}", "enum",
        options=tuple(s.value for s in ChargingState),
    ),
    Entity(
        "sensor", "active_limit", "Active power limit", "lpc",
        "{{ value_json.effective_cap_w }}",  # null (unlimited) renders "None", which HA shows as unknown
        "power", "W", "measurement", icon="mdi:transmission-tower-export",
    ),
    Entity(
        "sensor", "applied_current", "Applied current limit", "state", "{{ value_json.applied_current_a }}",
        "current", "A", "measurement",
    ),
    Entity(
        "binary_sensor", "plug", "EV connected", "state",
        "{{ 'ON' if value_json.ev_connected else 'OFF' }}", "plug",
    ),
)  # fmt: skip


def object_id(node_id: str, charger_id: str, key: str) -> str:
    """HA object ids allow [a-zA-Z0-9_-]; everything else becomes '_'."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", f"{node_id}_{charger_id}_{key}")


def config_topic(prefix: str, component: str, node_id: str, charger_id: str, key: str) -> str:
    return f"{prefix}/{component}/{object_id(node_id, charger_id, key)}/config"


def discovery_configs(
    snapshot: ChargerSnapshot, *, prefix: str, base_topic: str, node_id: str, sw_version: str
) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, payload) for every entity of the charger in `snapshot`."""
    cid = snapshot.charger_id
    m = snapshot.manufacturer
    device: dict[str, Any] = {
        "identifiers": [f"{node_id}_{cid}"],
        "name": cid,
        "manufacturer": m.vendor or "unknown",
        "model": m.model or "EV charger",
    }
    if m.serial:
        device["serial_number"] = m.serial
    if m.firmware:
        device["sw_version"] = m.firmware
    out: list[tuple[str, dict[str, Any]]] = []
    for e in ENTITIES:
        payload: dict[str, Any] = {
            "name": e.name,
            "unique_id": object_id(node_id, cid, e.key),
            "object_id": object_id(node_id, cid, e.key),
            "state_topic": f"{base_topic}/{cid}/{e.source}",
            "value_template": e.template,
            "availability": [
                {"topic": f"{base_topic}/status", "payload_available": "online", "payload_not_available": "offline"},
                {
                    "topic": f"{base_topic}/{cid}/available",
                    "payload_available": "online",
                    "payload_not_available": "offline",
                },
            ],
            "availability_mode": "all",
            "device": device,
            "origin": {"name": "evbridge", "sw": sw_version},
        }
        if e.device_class:
            payload["device_class"] = e.device_class
        if e.unit:
            payload["unit_of_measurement"] = e.unit
        if e.state_class:
            payload["state_class"] = e.state_class
        if e.options:
            payload["options"] = list(e.options)
        if e.icon:
            payload["icon"] = e.icon
        out.append((config_topic(prefix, e.component, node_id, cid, e.key), payload))
    return out


def discovery_topics(prefix: str, node_id: str, charger_id: str) -> list[str]:
    """Every config topic of a charger (to clear them with empty retained messages)."""
    return [config_topic(prefix, e.component, node_id, charger_id, e.key) for e in ENTITIES]
