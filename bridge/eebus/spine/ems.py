"""The EMS side of SPINE (energy guard / CEM role) used by `evbridge ems` and the tests.

A small local device — entity `[1]` of type CEM with client features for
LoadControl, DeviceConfiguration, ElectricalConnection, Measurement,
DeviceDiagnosis and DeviceClassification, plus a DeviceDiagnosis server for
its own heartbeat — and the requests an energy guard sends (eebus-ship-spine.md
§6): discovery, subscriptions, bindings, reads, limit and failsafe writes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bridge.clock import Clock
from bridge.eebus.spine.device import Entity, FeatureAddress, LocalDevice, UseCase
from bridge.eebus.spine.session import NODE_MANAGEMENT, SpineSession
from bridge.eebus.spine.values import format_duration, scaled, timestamp

CEM: Entity = (1,)
CLIENT_FEATURES = {
    "LoadControl": 1,
    "DeviceConfiguration": 2,
    "ElectricalConnection": 3,
    "DeviceDiagnosis": 4,
    "Measurement": 6,
    "DeviceClassification": 7,
}
F_DIAG_SERVER = 5
EMS_HEARTBEAT_TIMEOUT_S = 60.0


class EmsDevice:
    """Local EMS device with its own heartbeat (LPC scenario 3, EMS side)."""

    def __init__(self, clock: Clock, name: str = "evbridge-ems") -> None:
        self.clock = clock
        self.device = LocalDevice(f"d:_n:{name}", "EnergyManagementSystem")
        self.device.add_feature((0,), 0, "NodeManagement", "special")
        self.device.add_entity(CEM, "CEM")
        for feature_type, number in CLIENT_FEATURES.items():
            self.device.add_feature(CEM, number, feature_type, "client")
        self.device.add_feature(CEM, F_DIAG_SERVER, "DeviceDiagnosis", "server").add(
            "deviceDiagnosisHeartbeatData", self._heartbeat
        )
        self.device.use_cases = [
            UseCase(CEM, "EnergyGuard", "limitationOfPowerConsumption", "1.0.0", (1, 2, 3, 4)),
            UseCase(CEM, "MonitoringAppliance", "monitoringOfPowerConsumption", "1.0.0", (1, 2, 3, 4, 5)),
            UseCase(CEM, "CEM", "evseCommissioningAndConfiguration", "1.0.1", (1, 2)),
        ]
        self.heartbeat_counter = 0
        self.heartbeats_enabled = True
        self._heartbeat_at = clock.monotonic()

    def _heartbeat(self) -> dict[str, Any]:
        return {
            "timestamp": timestamp(self.clock.now() - timedelta(seconds=self.clock.monotonic() - self._heartbeat_at)),
            "heartbeatCounter": self.heartbeat_counter,
            "heartbeatTimeout": format_duration(EMS_HEARTBEAT_TIMEOUT_S),
        }

    def beat(self) -> None:
        """One heartbeat: subscribers (the device's DeviceDiagnosis client) get it as a notify."""
        if self.heartbeats_enabled:
            self.heartbeat_counter += 1
            self._heartbeat_at = self.clock.monotonic()

    def client(self, feature_type: str) -> tuple[Entity, int]:
        return (CEM, CLIENT_FEATURES[feature_type])


def find_feature(discovery: dict[str, Any], feature_type: str, role: str = "server") -> FeatureAddress | None:
    """The first remote feature of that type and role in a detailed discovery reply."""
    device = discovery.get("deviceInformation", {}).get("description", {}).get("deviceAddress", {}).get("device")
    for info in discovery.get("featureInformation", []):
        desc = info.get("description", {})
        if desc.get("featureType") == feature_type and desc.get("role") == role:
            addr = desc.get("featureAddress", {})
            return FeatureAddress(device, tuple(addr.get("entity", [])), int(addr.get("feature", 0)))
    return None


def remote_node_management(session: SpineSession) -> FeatureAddress:
    return FeatureAddress(session.remote_device, *NODE_MANAGEMENT)


def subscribe_call(
    ems: EmsDevice, session: SpineSession, client: tuple[Entity, int], server: FeatureAddress, ftype: str
) -> dict[str, Any]:
    body = {
        "subscriptionRequest": {
            "clientAddress": FeatureAddress(ems.device.address, *client).to_json(),
            "serverAddress": server.to_json(),
            "serverFeatureType": ftype,
        }
    }
    return {"nodeManagementSubscriptionRequestCall": body}


def binding_call(ems: EmsDevice, client: tuple[Entity, int], server: FeatureAddress, ftype: str) -> dict[str, Any]:
    body = {
        "bindingRequest": {
            "clientAddress": FeatureAddress(ems.device.address, *client).to_json(),
            "serverAddress": server.to_json(),
            "serverFeatureType": ftype,
        }
    }
    return {"nodeManagementBindingRequestCall": body}


def limit_write(value_w: float, active: bool, duration_s: float | None) -> dict[str, Any]:
    """The LPC write of eebus-go's energy guard (§6 step 6); without duration the period is deleted."""
    item: dict[str, Any] = {"limitId": 0, "isLimitActive": active, "value": scaled(value_w)}
    filters: list[dict[str, Any]] = [{"cmdControl": {"partial": {}}}]
    if duration_s is not None:
        item["timePeriod"] = {"endTime": format_duration(duration_s)}
    else:
        filters.insert(
            0,
            {
                "cmdControl": {"delete": {}},
                "loadControlLimitListDataSelectors": {"limitId": 0},
                "loadControlLimitDataElements": {"timePeriod": {}},
            },
        )
    return {
        "function": "loadControlLimitListData",
        "filter": filters,
        "loadControlLimitListData": {"loadControlLimitData": [item]},
    }


def failsafe_write(limit_w: float | None, duration_s: float | None) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    if limit_w is not None:
        items.append({"keyId": 0, "value": {"scaledNumber": scaled(limit_w)}})
    if duration_s is not None:
        items.append({"keyId": 1, "value": {"duration": format_duration(duration_s)}})
    return {
        "function": "deviceConfigurationKeyValueListData",
        "filter": [{"cmdControl": {"partial": {}}}],
        "deviceConfigurationKeyValueListData": {"deviceConfigurationKeyValueData": items},
    }
