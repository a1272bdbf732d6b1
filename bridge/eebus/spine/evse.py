"""The EVSE device a charger (or a group) shows the EMS: LPC, MPC and EVSE commissioning (EVSECC).

Entity layout (eebus-ship-spine.md §5): `[0]` DeviceInformation with
NodeManagement and DeviceClassification; `[1]` EVSE with LoadControl (LPC
limit), DeviceConfiguration (failsafe values), DeviceDiagnosis server (state,
own heartbeat) and client (the EMS heartbeat), ElectricalConnection
(characteristics, phases, permitted values), Measurement (MPC), and
DeviceClassification.  Values come from the canonical snapshot; writes go to
the device's LPC endpoint (the runtime's `ExposedDevice`), which journals and
persists them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from bridge.clock import Clock
from bridge.eebus.spine.device import LocalDevice, UseCase, WriteOutcome
from bridge.eebus.spine.values import format_duration, parse_duration, scaled, timestamp, unscaled
from bridge.errors import RemoteProtocolError
from bridge.model import Characteristics, ChargerSnapshot, OperatingState
from bridge.usecases.lpc import Lpc, WriteResult

log = logging.getLogger(__name__)

EVSE: tuple[int, ...] = (1,)
F_LOADCONTROL, F_DEVCONFIG, F_DIAG_SERVER, F_ELECTRICAL, F_DIAG_CLIENT, F_MEASUREMENT, F_CLASSIFICATION = range(1, 8)

HEARTBEAT_TIMEOUT_S = 60.0
NO_DATA_FAILURE_S = 30.0  # no snapshot at all this long after start: operatingState failure
ENERGY_GUARD = ("EnergyGuard", "limitationOfPowerConsumption")
LPC_LIMIT_ID = 0
KEY_FAILSAFE_LIMIT, KEY_FAILSAFE_DURATION = 0, 1

# Measurement ids (MPC): one per quantity and phase; per-phase ids exist only for installed phases.
M_POWER_TOTAL = 0
M_POWER = (1, 2, 3)
M_CURRENT = (4, 5, 6)
M_VOLTAGE = (7, 8, 9)
M_ENERGY = 10
M_FREQUENCY = 11
PHASE_NAMES = ("a", "b", "c")


class LpcEndpoint(Protocol):
    """What the runtime offers per exposed device (`bridge.runtime.devices.ExposedDevice`)."""

    lpc: Lpc

    def heartbeat(self) -> None: ...

    def write_limit(self, value_w: float, active: bool, duration_s: float | None, *, peer: str = "") -> WriteResult: ...

    def write_failsafe(
        self, *, limit_w: float | None = None, duration_s: float | None = None, peer: str = ""
    ) -> WriteResult: ...


@dataclass
class EvseSource:
    """Where the EVSE device reads from: the latest snapshot and the static characteristics."""

    snapshot: Callable[[], ChargerSnapshot | None]
    characteristics: Characteristics
    endpoint: LpcEndpoint
    frequency: bool = True
    voltage: bool = True  # False where no voltages exist (a group's summed snapshot): no MPC scenario 4
    contractual: bool = False  # a group: contractualConsumptionNominalMax as well
    heartbeat_counter: int = field(default=0)


class EvseDevice:
    """Builds and serves one EVSE SPINE device; see module docstring."""

    def __init__(self, device_id: str, source: EvseSource, clock: Clock, *, vendor: str = "evbridge") -> None:
        self.source = source
        self.clock = clock
        self.device = LocalDevice(f"d:_n:{_clean(vendor)}_{_clean(device_id)}", "ChargingStation")
        self._heartbeat_at = clock.monotonic()
        self._started_at = clock.monotonic()
        self._heartbeat_counter = 0
        self.device.on_heartbeat = self._on_heartbeat
        self._build()

    def _on_heartbeat(self, peer: str) -> None:
        """LPC scenario 3 watches the energy guard, i.e. the connection bound to LoadControl.

        Before any binding every connected EMS counts (the guard connects,
        beats, then binds) unless its use case data shows it is no LPC energy
        guard; once a guard is bound, another EMS (say a HEMS reading MPC)
        cannot keep the device out of failsafe when the guard dies.
        """
        guards = self.device.bound_peers((EVSE, F_LOADCONTROL))
        if guards and peer not in guards:
            log.debug("SPINE: heartbeat from %s ignored: LoadControl is bound to %s", peer, sorted(guards))
            return
        announced = self.device.remote_use_cases.get(peer)
        if not guards and announced is not None and ENERGY_GUARD not in announced:
            # why: a monitoring-only EMS restarting must not throw the chargers into failsafe (LPC-29)
            log.debug("SPINE: heartbeat from %s ignored: it announces no LPC energy guard", peer)
            return
        self.source.endpoint.heartbeat()

    # -- tree -----------------------------------------------------------------------------
    def _build(self) -> None:
        d = self.device
        d.add_feature((0,), 0, "NodeManagement", "special")
        d.add_feature((0,), 1, "DeviceClassification", "server").add(
            "deviceClassificationManufacturerData", self._manufacturer
        )
        d.add_entity(EVSE, "EVSE")
        d.add_feature(EVSE, F_LOADCONTROL, "LoadControl", "server").add(
            "loadControlLimitDescriptionListData", self._limit_descriptions
        ).add("loadControlLimitListData", self._limits, self._write_limits)
        d.add_feature(EVSE, F_DEVCONFIG, "DeviceConfiguration", "server").add(
            "deviceConfigurationKeyValueDescriptionListData", self._key_descriptions
        ).add("deviceConfigurationKeyValueListData", self._key_values, self._write_key_values)
        d.add_feature(EVSE, F_DIAG_SERVER, "DeviceDiagnosis", "server").add(
            "deviceDiagnosisStateData", self._state
        ).add("deviceDiagnosisHeartbeatData", self._heartbeat)
        d.add_feature(EVSE, F_ELECTRICAL, "ElectricalConnection", "server").add(
            "electricalConnectionDescriptionListData", self._ec_descriptions
        ).add("electricalConnectionParameterDescriptionListData", self._ec_parameters).add(
            "electricalConnectionPermittedValueSetListData", self._ec_permitted
        ).add("electricalConnectionCharacteristicListData", self._ec_characteristics)
        d.add_feature(EVSE, F_DIAG_CLIENT, "DeviceDiagnosis", "client")
        d.add_feature(EVSE, F_MEASUREMENT, "Measurement", "server").add(
            "measurementDescriptionListData", self._m_descriptions
        ).add("measurementConstraintsListData", self._m_constraints).add("measurementListData", self._m_values)
        d.add_feature(EVSE, F_CLASSIFICATION, "DeviceClassification", "server").add(
            "deviceClassificationManufacturerData", self._manufacturer
        )
        self._announce_use_cases()

    def _announce_use_cases(self) -> None:
        mpc = [1, 2, 3] + ([4] if self.source.voltage else []) + ([5] if self.source.frequency else [])
        self.device.use_cases = [
            UseCase(EVSE, "ControllableSystem", "limitationOfPowerConsumption", "1.0.0", (1, 2, 3, 4)),
            UseCase(EVSE, "MonitoredUnit", "monitoringOfPowerConsumption", "1.0.0", tuple(mpc)),
            UseCase(EVSE, "EVSE", "evseCommissioningAndConfiguration", "1.0.1", (1, 2)),
        ]

    # -- timers ---------------------------------------------------------------------------------
    def tick(self) -> None:
        """Advance the own heartbeat (GEN-10/11: counter +1, period below the announced timeout)."""
        period = HEARTBEAT_TIMEOUT_S - 2
        now = self.clock.monotonic()
        while now - self._heartbeat_at >= period:
            self._heartbeat_at += period
            self._heartbeat_counter += 1

    def next_deadline(self) -> float:
        return self._heartbeat_at + HEARTBEAT_TIMEOUT_S - 2

    # -- readers ----------------------------------------------------------------------------
    @property
    def _phases(self) -> int:
        return self.source.characteristics.phases_installed

    def _manufacturer(self) -> dict[str, Any]:
        snap = self.source.snapshot()
        info = snap.manufacturer if snap else None
        data: dict[str, Any] = {
            "deviceName": (info.model if info and info.model else "wallbox"),
            "deviceCode": self.device.address,
            "vendorName": (info.vendor if info and info.vendor else "unknown"),
            "brandName": (info.brand or info.vendor if info and (info.brand or info.vendor) else "unknown"),
            "powerSource": "mains3Phase" if self._phases == 3 else "mainsSinglePhase",
        }
        if info and info.serial:
            data["serialNumber"] = info.serial
        if info and info.firmware:
            data["softwareRevision"] = info.firmware
        if info and info.hardware_revision:
            data["hardwareRevision"] = info.hardware_revision
        return data

    def _limit_descriptions(self) -> dict[str, Any]:
        return {
            "loadControlLimitDescriptionData": [
                {
                    "limitId": LPC_LIMIT_ID,
                    "limitType": "signDependentAbsValueLimit",
                    "limitCategory": "obligation",
                    "limitDirection": "consume",
                    "measurementId": M_POWER_TOTAL,
                    "unit": "W",
                    "scopeType": "activePowerLimit",
                }
            ]
        }

    def _limits(self) -> dict[str, Any]:
        limit = self.source.endpoint.lpc.limit
        item: dict[str, Any] = {
            "limitId": LPC_LIMIT_ID,
            "isLimitChangeable": limit.changeable,
            "isLimitActive": limit.active,
            "value": scaled(limit.value_w),
        }
        remaining = self.source.endpoint.lpc.remaining_duration_s()
        if remaining is not None:
            item["timePeriod"] = {"endTime": format_duration(math.ceil(remaining))}
        return {"loadControlLimitData": [item]}

    def _key_descriptions(self) -> dict[str, Any]:
        return {
            "deviceConfigurationKeyValueDescriptionData": [
                {
                    "keyId": KEY_FAILSAFE_LIMIT,
                    "keyName": "failsafeConsumptionActivePowerLimit",
                    "valueType": "scaledNumber",
                    "unit": "W",
                },
                {"keyId": KEY_FAILSAFE_DURATION, "keyName": "failsafeDurationMinimum", "valueType": "duration"},
            ]
        }

    def _key_values(self) -> dict[str, Any]:
        fs = self.source.endpoint.lpc.failsafe
        return {
            "deviceConfigurationKeyValueData": [
                {
                    "keyId": KEY_FAILSAFE_LIMIT,
                    "value": {"scaledNumber": scaled(fs.consumption_limit_w)},
                    "isValueChangeable": True,
                },
                {
                    "keyId": KEY_FAILSAFE_DURATION,
                    "value": {"duration": format_duration(fs.duration_minimum_s)},
                    "isValueChangeable": True,
                },
            ]
        }

    def _state(self) -> dict[str, Any]:
        snap = self.source.snapshot()
        if snap is None:
            # why: a charger unreachable since start never yields a snapshot; after the same
            # 30 s as a lost charger (GEN-09) the EMS must see failure, not a calm standby
            if self.clock.monotonic() - self._started_at >= NO_DATA_FAILURE_S:
                return {"operatingState": OperatingState.FAILURE.value, "lastErrorCode": "no data from the charger"}
            return {"operatingState": OperatingState.STANDBY.value}
        data: dict[str, Any] = {"operatingState": snap.device_state.operating_state.value}
        if snap.device_state.last_error_code:
            data["lastErrorCode"] = snap.device_state.last_error_code
        return data

    def _heartbeat(self) -> dict[str, Any]:
        elapsed = self._heartbeat_at - self.clock.monotonic()
        wall = self.clock.now()
        return {
            "timestamp": timestamp(wall + timedelta(seconds=elapsed)),
            "heartbeatCounter": self._heartbeat_counter,
            "heartbeatTimeout": format_duration(HEARTBEAT_TIMEOUT_S),
        }

    def _ec_descriptions(self) -> dict[str, Any]:
        return {
            "electricalConnectionDescriptionData": [
                {
                    "electricalConnectionId": 0,
                    "powerSupplyType": "ac",
                    "acConnectedPhases": self._phases,
                    "positiveEnergyDirection": "consume",
                }
            ]
        }

    def _parameters(self) -> list[tuple[int, int, str | None, str]]:
        """(parameterId, measurementId, phases, measurement type) — MPC-04/05 linkage."""
        params: list[tuple[int, int, str | None, str]] = [(0, M_POWER_TOTAL, "abc", "real")]
        pid = 1
        for i in range(self._phases):
            for mid, kind in ((M_POWER[i], "real"), (M_CURRENT[i], "real"), (M_VOLTAGE[i], "apparent")):
                if mid in M_VOLTAGE and not self.source.voltage:
                    continue
                params.append((pid, mid, PHASE_NAMES[i], kind))
                pid += 1
        params.append((pid, M_ENERGY, None, "real"))
        if self.source.frequency:
            params.append((pid + 1, M_FREQUENCY, None, "real"))
        return params

    def _ec_parameters(self) -> dict[str, Any]:
        items = []
        for pid, mid, phases, kind in self._parameters():
            item: dict[str, Any] = {
                "electricalConnectionId": 0,
                "parameterId": pid,
                "measurementId": mid,
                "voltageType": "ac",
                "acMeasurementType": kind,
            }
            if phases:
                item["acMeasuredPhases"] = phases
                item["acMeasuredInReferenceTo"] = "neutral"
                item["acMeasurementVariant"] = "rms"
            items.append(item)
        return {"electricalConnectionParameterDescriptionData": items}

    def _ec_permitted(self) -> dict[str, Any]:
        ch = self.source.characteristics
        lo, hi = ch.power_range_w()
        items = [
            {
                "electricalConnectionId": 0,
                "parameterId": 0,
                "permittedValueSet": [{"value": [scaled(0)], "range": [{"min": scaled(lo), "max": scaled(hi)}]}],
            }
        ]
        for pid, mid, _phases, _kind in self._parameters():
            if mid in M_CURRENT:
                items.append(
                    {
                        "electricalConnectionId": 0,
                        "parameterId": pid,
                        "permittedValueSet": [
                            {
                                "value": [scaled(0)],
                                "range": [{"min": scaled(ch.min_current_a), "max": scaled(ch.max_current_a)}],
                            }
                        ],
                    }
                )
        return {"electricalConnectionPermittedValueSetData": items}

    def _ec_characteristics(self) -> dict[str, Any]:
        """LPC scenario 4 nominal max; always `powerConsumptionNominalMax`, a group adds the contractual one.

        An energy guard picks the type by our device type (eebus-go: contractual
        only from an `EnergyManagementSystem`), and we announce a ChargingStation,
        so a group that offered only the contractual value had no nominal max for it.
        """
        kinds = ["powerConsumptionNominalMax"]
        if self.source.contractual:
            kinds.append("contractualConsumptionNominalMax")
        return {
            "electricalConnectionCharacteristicData": [
                {
                    "electricalConnectionId": 0,
                    "parameterId": 0,
                    "characteristicId": i,
                    "characteristicContext": "entity",
                    "characteristicType": kind,
                    "value": scaled(self.source.characteristics.nominal_max_power_w),
                    "unit": "W",
                }
                for i, kind in enumerate(kinds)
            ]
        }

    def _measurement_ids(self) -> list[tuple[int, str, str, str]]:
        """(measurementId, measurementType, unit, scopeType) of what this EVSE offers."""
        out = [(M_POWER_TOTAL, "power", "W", "acPowerTotal")]
        for i in range(self._phases):
            out.append((M_POWER[i], "power", "W", "acPower"))
        for i in range(self._phases):
            out.append((M_CURRENT[i], "current", "A", "acCurrent"))
        for i in range(self._phases if self.source.voltage else 0):
            out.append((M_VOLTAGE[i], "voltage", "V", "acVoltage"))
        out.append((M_ENERGY, "energy", "Wh", "acEnergyConsumed"))
        if self.source.frequency:
            out.append((M_FREQUENCY, "frequency", "Hz", "acFrequency"))
        return out

    def _m_descriptions(self) -> dict[str, Any]:
        return {
            "measurementDescriptionData": [
                {"measurementId": mid, "measurementType": mt, "commodityType": "electricity", "unit": u, "scopeType": s}
                for mid, mt, u, s in self._measurement_ids()
            ]
        }

    def _m_constraints(self) -> dict[str, Any]:
        ch = self.source.characteristics
        limits = {"W": ch.nominal_max_power_w, "A": ch.max_current_a}
        return {
            "measurementConstraintsData": [
                {"measurementId": mid, "valueRangeMin": scaled(0), "valueRangeMax": scaled(limits[u])}
                for mid, _mt, u, _s in self._measurement_ids()
                if u in limits and mid != M_ENERGY
            ]
        }

    def _m_values(self) -> dict[str, Any]:
        snap = self.source.snapshot()
        if snap is None:
            return {"measurementData": []}
        m = snap.measurement.derived()
        values: dict[int, tuple[float | None, str]] = {M_POWER_TOTAL: (m.power_w, m.power_source.value)}
        for i in range(self._phases):
            pp = m.power_per_phase_w[i] if m.power_per_phase_w else None
            values[M_POWER[i]] = (pp, m.power_per_phase_source.value)
            values[M_CURRENT[i]] = (m.current_per_phase_a[i] if m.current_per_phase_a else None, "measuredValue")
            if self.source.voltage:
                voltage = m.voltage_per_phase_v[i] if m.voltage_per_phase_v else None
                values[M_VOLTAGE[i]] = (voltage, "measuredValue")
        values[M_ENERGY] = (m.energy_wh, "measuredValue")
        if self.source.frequency:
            values[M_FREQUENCY] = (m.frequency_hz, "measuredValue")
        state = "normal" if snap.available else "error"  # GEN-09 / MPC-09
        stamp = timestamp(snap.timestamp)
        data = []
        for mid, (value, source) in values.items():
            if value is None:
                continue
            data.append(
                {
                    "measurementId": mid,
                    "valueType": "value",
                    "value": scaled(round(value, 3)),
                    "timestamp": stamp,
                    "valueSource": source,
                    "valueState": state,
                }
            )
        return {"measurementData": data}

    # -- writers ----------------------------------------------------------------------------
    def _write_limits(self, data: dict[str, Any], filters: list[dict[str, Any]], peer: str) -> WriteOutcome:
        items = data.get("loadControlLimitData") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            return WriteOutcome(False, "loadControlLimitData list expected")
        current = self.source.endpoint.lpc.limit
        delete_period = any(
            isinstance(f, dict) and "delete" in (f.get("cmdControl") or {}) and "timePeriod" in _elements(f)
            for f in filters
        )
        for item in items:
            if not isinstance(item, dict):
                return WriteOutcome(False, "limit entry must be an object")
            if item.get("limitId") != LPC_LIMIT_ID:
                return WriteOutcome(False, f"unknown limitId {item.get('limitId')!r}")
            try:
                value = unscaled(item["value"]) if "value" in item else current.value_w
                active = item.get("isLimitActive", current.active)
                if not isinstance(active, bool):
                    raise RemoteProtocolError("isLimitActive must be a boolean")
                duration = None
                if not delete_period:
                    period = item.get("timePeriod")
                    if isinstance(period, dict) and "endTime" in period:
                        duration = parse_duration(period["endTime"])
                    elif period is None and "timePeriod" not in item:
                        duration = self.source.endpoint.lpc.remaining_duration_s() if "value" not in item else None
            except (RemoteProtocolError, KeyError) as exc:
                return WriteOutcome(False, f"invalid limit: {exc}")
            result = self.source.endpoint.write_limit(value, active, duration, peer=peer)
            if not result.accepted:
                return WriteOutcome(False, result.reason)
        return WriteOutcome(True)

    def _write_key_values(self, data: dict[str, Any], filters: list[dict[str, Any]], peer: str) -> WriteOutcome:
        items = data.get("deviceConfigurationKeyValueData") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            return WriteOutcome(False, "deviceConfigurationKeyValueData list expected")
        limit_w: float | None = None
        duration_s: float | None = None
        try:
            for item in items:
                key, value = item.get("keyId"), item.get("value") or {}
                if key == KEY_FAILSAFE_LIMIT:
                    limit_w = unscaled(value.get("scaledNumber"))
                elif key == KEY_FAILSAFE_DURATION:
                    duration_s = parse_duration(value.get("duration"))
                else:
                    return WriteOutcome(False, f"unknown keyId {key!r}")
        except (RemoteProtocolError, AttributeError) as exc:
            return WriteOutcome(False, f"invalid value: {exc}")
        result = self.source.endpoint.write_failsafe(limit_w=limit_w, duration_s=duration_s, peer=peer)
        return WriteOutcome(result.accepted, result.reason)


def _elements(filter_: dict[str, Any]) -> dict[str, Any]:
    for key, value in filter_.items():
        if key.endswith("Elements") and isinstance(value, dict):
            return value
    return {}


def _clean(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-" else "-" for c in text)[:64]
