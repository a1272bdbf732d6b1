"""`type: mqtt` factory: one broker connection (one owner task) per broker, shared by its chargers.

The factory is the async context manager that owns the link tasks; messages
are routed to chargers by exact topic (a dict lookup, so 500 chargers cost
the same per message as one).
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from typing import Any

from pydantic import BaseModel

from adapters.mqtt.adapter import MqttCharger, MqttOptions
from adapters.mqtt.mapping import load_mapping
from bridge.errors import ConfigError
from bridge.mqttio import LinkSettings, MqttLink
from bridge.ports import AdapterDeps, EndpointOwner

_BROKER_KEYS = ("host", "port", "username", "password", "tls", "client_id")


class _Broker:
    """One link and its topic routing table."""

    def __init__(self, settings: LinkSettings, deps: AdapterDeps) -> None:
        self.routes: dict[str, list[MqttCharger]] = {}
        self.link = MqttLink(settings, deps.clock, self._dispatch, name=f"mqtt-south {settings.host}:{settings.port}")

    def _dispatch(self, topic: str, payload: bytes, _retained: bool) -> None:
        for charger in self.routes.get(topic, ()):
            charger.on_message(topic, payload)


class MqttFactory(EndpointOwner):
    kind = "mqtt"
    options_model = MqttOptions

    def __init__(self, deps: AdapterDeps) -> None:
        self._deps = deps
        self._brokers: dict[tuple[Any, ...], _Broker] = {}

    def validate_options(self, options: MappingType[str, Any]) -> MqttOptions:
        merged = {k: v for k, v in self._deps.options.items() if k in _BROKER_KEYS}
        merged.update(options)
        validated = MqttOptions.model_validate(merged)
        mapping = load_mapping(validated.mapping, self._deps.mapping_dirs)  # MappingError with file:line
        missing = [v for v in mapping.required_variables if v not in {**mapping.variables, **validated.variables}]
        if missing:
            raise ConfigError(f"mapping {validated.mapping} needs variables {missing}", field="variables")
        if validated.meter is not None:
            meter = load_mapping(validated.meter.mapping, self._deps.mapping_dirs)
            if meter.role != "meter":
                raise ConfigError(f"{validated.meter.mapping} is not a meter mapping", field="meter.mapping")
        return validated

    def create(self, charger_id: str, options: BaseModel) -> MqttCharger:
        assert isinstance(options, MqttOptions)
        if self._tg is None:
            raise RuntimeError("MqttFactory: enter the factory (async with) before creating chargers")
        mapping = load_mapping(options.mapping, self._deps.mapping_dirs)
        meter = load_mapping(options.meter.mapping, self._deps.mapping_dirs) if options.meter else None
        settings = options.link_settings(default_client_id=f"evbridge-south-{charger_id}")
        broker = self._brokers.get(settings.key)
        if broker is None:
            broker = _Broker(settings, self._deps)
            self._brokers[settings.key] = broker
            self.start(broker.link.run)
        charger = MqttCharger(charger_id, mapping, options, broker.link, self._deps.clock, meter)
        for topic in charger.topics():
            broker.routes.setdefault(topic, []).append(charger)
        return charger

    def links(self) -> list[MqttLink]:
        """The broker links (tests and metrics look at connection counts)."""
        return [b.link for b in self._brokers.values()]


def make_factory(deps: AdapterDeps) -> MqttFactory:
    """Entry point `evbridge.adapters: mqtt`."""
    return MqttFactory(deps)
