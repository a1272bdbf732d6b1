"""What one MQTT charger last said, point by point, with ages: pure, time passed in.

The client shell feeds every message of a subscribed topic into `on_message`;
`snapshot()` turns the freshest values into a canonical `ChargerSnapshot`.
A charger is *available* while a good message (or the liveness topic) arrived
within the staleness timeout; malformed payloads do not count, so a device
that only sends garbage goes stale and the core treats it as unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.mqtt.codec import PayloadError, Value, decode_parsed, parse_payload, render
from adapters.mqtt.mapping import Mapping, Point, PointName
from bridge.model import (
    AcMeasurement,
    AppliedSetpoint,
    Characteristics,
    ChargerSnapshot,
    ChargingState,
    DeviceState,
    ManufacturerInformation,
    ValueSource,
)

_IEC61851 = {
    "A": ChargingState.IDLE,
    "B": ChargingState.SUSPENDED_EVSE,
    "C": ChargingState.CHARGING,
    "D": ChargingState.CHARGING,
    "E": ChargingState.FAULT,
    "F": ChargingState.FAULT,
}


@dataclass
class Reading:
    value: Value | None
    at: float  # monotonic seconds


@dataclass
class ChargerState:
    """Latest values of one charger (and its optional add-on meter)."""

    mapping: Mapping
    variables: dict[str, str]
    stale_after_s: float
    meter: Mapping | None = None
    meter_variables: dict[str, str] = field(default_factory=dict)
    values: dict[PointName, Reading] = field(default_factory=dict)
    meter_values: dict[PointName, Reading] = field(default_factory=dict)
    last_good: float | None = None
    last_error: str | None = None
    offline: bool = False
    _routes: dict[str, list[tuple[Point, bool]]] = field(default_factory=dict)
    _liveness: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for mapping, variables, is_meter in (
            (self.mapping, self.variables, False),
            (self.meter, self.meter_variables, True),
        ):
            if mapping is None:
                continue
            for point in mapping.points:
                if point.access == "r":
                    self._routes.setdefault(render(point.topic, variables), []).append((point, is_meter))
            if mapping.liveness is not None:
                self._liveness[render(mapping.liveness.topic, variables)] = mapping.liveness.offline_payloads

    def topics(self) -> list[str]:
        """Every topic to subscribe to."""
        return sorted(set(self._routes) | set(self._liveness))

    def on_message(self, topic: str, payload: bytes, now: float) -> list[str]:
        """Apply one message; returns the problems found (logged by the caller, the values stay as they were)."""
        problems: list[str] = []
        good = False
        if topic in self._liveness:
            text = payload.decode("utf-8", "replace").strip()
            self.offline = text in self._liveness[topic]
            good = not self.offline
        parsed: dict[str, Any] = {}  # go-e `nrg` feeds eight points: parse the JSON once
        for point, is_meter in self._routes.get(topic, ()):
            try:
                if point.parse not in parsed:
                    try:
                        parsed[point.parse] = parse_payload(payload, point.parse)
                    except PayloadError as exc:
                        parsed[point.parse] = exc
                document = parsed[point.parse]
                if isinstance(document, PayloadError):
                    raise document
                value = decode_parsed(point, document)
            except PayloadError as exc:
                problems.append(f"{topic} ({point.name.value}): {exc}")
                continue
            (self.meter_values if is_meter else self.values)[point.name] = Reading(value, now)
            good = True
        if good:
            self.last_good = now
        if problems:
            self.last_error = problems[-1]
        return problems

    def available(self, now: float) -> bool:
        return not self.offline and self.last_good is not None and now - self.last_good <= self.stale_after_s

    def _fresh(self, name: PointName, now: float) -> Value | None:
        """Meter values win for measurements; a point older than its own stale_after_s is unknown."""
        for table, mapping in ((self.meter_values, self.meter), (self.values, self.mapping)):
            reading = table.get(name)
            if reading is None or mapping is None:
                continue
            point = mapping.point(name)
            limit = point.stale_after_s if point is not None and point.stale_after_s else None
            if limit is not None and now - reading.at > limit:
                continue
            return reading.value
        return None

    def _num(self, name: PointName, now: float) -> float | None:
        value = self._fresh(name, now)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def snapshot(
        self, charger_id: str, wall_now: datetime, now: float, characteristics: Characteristics
    ) -> ChargerSnapshot:
        n = PointName
        status = self._fresh(n.STATUS, now)
        enabled_raw = self._fresh(n.ENABLED, now)
        enabled = enabled_raw if isinstance(enabled_raw, bool) else None
        state = ChargingState.UNKNOWN
        if isinstance(status, str):
            if status in _IEC61851:
                state = _IEC61851[status]
                if state is ChargingState.SUSPENDED_EVSE and enabled:
                    state = ChargingState.SUSPENDED_EV
            elif status in ChargingState._value2member_map_:
                state = ChargingState(status)
        plug = self._fresh(n.PLUG, now)
        if isinstance(plug, str):
            plug = plug in ("connected", "true", "B", "C", "D")
        connected: bool | None = plug if isinstance(plug, bool) else None
        if connected is None and state is not ChargingState.UNKNOWN and state is not ChargingState.FAULT:
            connected = state is not ChargingState.IDLE
        power = self._num(n.POWER, now)
        if state is ChargingState.UNKNOWN and power is not None:
            state = ChargingState.CHARGING if power > 50 else ChargingState.IDLE
        currents = tuple(self._num(p, now) for p in (n.CURRENT_L1, n.CURRENT_L2, n.CURRENT_L3))
        volts = tuple(self._num(p, now) for p in (n.VOLTAGE_L1, n.VOLTAGE_L2, n.VOLTAGE_L3))
        phases_raw = self._num(n.PHASES, now)
        phases = int(phases_raw) if phases_raw in (1.0, 2.0, 3.0) else None
        if phases is None and any(c is not None for c in currents) and state is ChargingState.CHARGING:
            phases = sum(1 for c in currents if c is not None and c > 0.5) or None
        measurement = AcMeasurement(
            power_w=power,
            current_per_phase_a=currents if any(c is not None for c in currents) else None,  # type: ignore[arg-type]
            voltage_per_phase_v=volts if any(v is not None for v in volts) else None,  # type: ignore[arg-type]
            energy_wh=self._num(n.ENERGY, now),
            frequency_hz=self._num(n.FREQUENCY, now),
            soc_pct=self._num(n.SOC, now),
        ).derived()
        if measurement.power_per_phase_w is not None and power is None:
            measurement = measurement.model_copy(update={"power_per_phase_source": ValueSource.CALCULATED})
        error = self._fresh(n.ERROR, now)
        error_code = None if error in (None, 0.0, "0", "", False) else str(error)
        if error_code is not None and state is ChargingState.UNKNOWN:
            state = ChargingState.FAULT
        serial = self._fresh(n.SERIAL, now)
        firmware = self._fresh(n.FIRMWARE, now)
        return ChargerSnapshot(
            charger_id=charger_id,
            timestamp=wall_now,
            available=self.available(now),
            manufacturer=ManufacturerInformation(
                vendor=self.mapping.vendor,
                model=self.mapping.model,
                serial=str(serial) if serial is not None else self.variables.get("serial"),
                firmware=str(firmware) if firmware is not None else None,
            ),
            characteristics=characteristics,
            device_state=DeviceState.from_charging(state, error_code if state is ChargingState.FAULT else None),
            ev_connected=connected,
            charging_state=state,
            active_phases=phases,  # type: ignore[arg-type]
            measurement=measurement,
            applied=AppliedSetpoint(current_a=self._num(n.APPLIED_CURRENT, now), enabled=enabled),
        )
