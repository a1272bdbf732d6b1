"""`type: modbus` chargers: one endpoint owner task per TCP address or serial bus, shared by its chargers."""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from typing import Any

from pydantic import BaseModel

from adapters.modbus.adapter import ModbusCharger, ModbusOptions
from adapters.modbus.endpoint import EndpointKey, ModbusEndpoint
from adapters.modbus.mapping import load_mapping
from bridge.errors import ConfigError
from bridge.ports import AdapterDeps, EndpointOwner


class ModbusFactory(EndpointOwner):
    kind = "modbus"
    options_model = ModbusOptions

    def __init__(self, deps: AdapterDeps) -> None:
        self._deps = deps
        self._endpoints: dict[EndpointKey, ModbusEndpoint] = {}

    def validate_options(self, options: MappingType[str, Any]) -> ModbusOptions:
        validated = ModbusOptions.model_validate(dict(options))
        if (validated.host is None) == (validated.serial is None):
            raise ConfigError("give either host (Modbus TCP) or serial (RTU/ASCII)", field="host")
        mapping = load_mapping(validated.mapping, self._deps.mapping_dirs)  # MappingError with file:line
        if validated.socket > mapping.sockets.count:
            raise ConfigError(
                f"{mapping.vendor} {mapping.model} has {mapping.sockets.count} socket(s), not {validated.socket}",
                field="socket",
            )
        return validated

    def create(self, charger_id: str, options: BaseModel) -> ModbusCharger:
        assert isinstance(options, ModbusOptions)
        mapping = load_mapping(options.mapping, self._deps.mapping_dirs)
        if options.host is not None:
            key = EndpointKey(options.host, options.port or mapping.connection.port, "socket")
        else:
            key = EndpointKey(str(options.serial), 0, options.framer if options.framer != "socket" else "rtu")
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            conn = mapping.connection
            endpoint = ModbusEndpoint(
                key,
                self._deps.clock,
                timeout_s=options.timeout_s,
                min_interval_s=(conn.min_interval_ms if options.min_interval_ms is None else options.min_interval_ms)
                / 1000,
                baudrate=options.baudrate or conn.baudrate,
                parity=options.parity or conn.parity,
                stopbits=conn.stopbits,
            )
            self._endpoints[key] = endpoint
            self.start(endpoint.run)
        return ModbusCharger(charger_id, mapping, options, endpoint, self._deps.clock)


def make_factory(deps: AdapterDeps) -> ModbusFactory:
    """Entry point `evbridge.adapters: modbus`."""
    return ModbusFactory(deps)
