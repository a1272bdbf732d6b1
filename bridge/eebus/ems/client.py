"""An EMS connection to one EEBus device: SHIP client, SPINE link, and the energy guard's requests.

`async with ems_connection(clock, state_dir, host, port, ski) as ems:` dials
the device, answers its discovery and heartbeat subscription, discovers its
features, subscribes to and binds LoadControl and DeviceConfiguration, and
sends its own heartbeat every `heartbeat_s` (so the device stays out of
failsafe while the connection lives).  `ems.limit(W, duration)`,
`ems.failsafe(...)`, `ems.read(...)`, `ems.measurements()` then speak LPC/MPC.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bridge.clock import Clock
from bridge.eebus.ship import Identity, TrustStore
from bridge.eebus.ship.node import ShipNode
from bridge.eebus.spine.device import FeatureAddress
from bridge.eebus.spine.ems import (
    EmsDevice,
    binding_call,
    failsafe_write,
    find_feature,
    limit_write,
    subscribe_call,
)
from bridge.eebus.spine.link import SpineLink
from bridge.eebus.spine.session import NODE_MANAGEMENT, SpineSession
from bridge.eebus.spine.values import parse_duration, unscaled

log = logging.getLogger(__name__)

EMS_DEVICE_ID = "ems"


@dataclass
class EmsConnection:
    ems: EmsDevice
    link: SpineLink
    heartbeat_s: float
    features: dict[str, FeatureAddress] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    use_cases: dict[str, Any] = field(default_factory=dict)
    _last_beat: float = 0.0

    @property
    def session(self) -> SpineSession:
        return self.link.session

    def on_tick(self) -> None:
        now = self.ems.clock.monotonic()
        if now - self._last_beat >= self.heartbeat_s:
            self._last_beat = now
            self.ems.beat()

    def next_beat(self) -> float:
        return self._last_beat + self.heartbeat_s

    async def setup(self) -> None:
        """Discovery, use cases, subscriptions and bindings as eebus-go's energy guard does (§6 steps 1–3)."""
        nm = FeatureAddress(None, *NODE_MANAGEMENT)
        discovery = await self.link.call("read", NODE_MANAGEMENT, nm, {"nodeManagementDetailedDiscoveryData": {}})
        assert discovery is not None
        self.use_cases = await self.link.call("read", NODE_MANAGEMENT, nm, {"nodeManagementUseCaseData": {}}) or {}
        remote_nm = FeatureAddress(self.session.remote_device, *NODE_MANAGEMENT)
        for ftype in ("LoadControl", "DeviceConfiguration", "DeviceDiagnosis", "ElectricalConnection", "Measurement"):
            server = find_feature(discovery, ftype)
            if server is None:
                continue
            self.features[ftype] = server
            client = self.ems.client(ftype)
            call = subscribe_call(self.ems, self.session, client, server, ftype)
            await self.link.call("call", NODE_MANAGEMENT, remote_nm, call, ack=True)
            if ftype in ("LoadControl", "DeviceConfiguration"):
                await self.link.call(
                    "call", NODE_MANAGEMENT, remote_nm, binding_call(self.ems, client, server, ftype), ack=True
                )
        classification = find_feature(discovery, "DeviceClassification")
        if classification is not None:
            self.features["DeviceClassification"] = classification

    async def read(self, feature_type: str, function: str) -> dict[str, Any]:
        server = self.features[feature_type]
        data = await self.link.call("read", self.ems.client(feature_type), server, {function: {}})
        return data or {}

    async def limit(self, watts: float, duration_s: float | None = None, *, active: bool = True) -> None:
        """Write the LPC limit; raises RequestFailed with the device's reason when denied."""
        server = self.features["LoadControl"]
        await self.link.call(
            "write", self.ems.client("LoadControl"), server, limit_write(watts, active, duration_s), ack=True
        )

    async def failsafe(self, *, watts: float | None = None, duration_s: float | None = None) -> None:
        server = self.features["DeviceConfiguration"]
        cmd = failsafe_write(watts, duration_s)
        await self.link.call("write", self.ems.client("DeviceConfiguration"), server, cmd, ack=True)

    async def lpc_state(self) -> dict[str, Any]:
        limits = (await self.read("LoadControl", "loadControlLimitListData")).get("loadControlLimitData", [])
        keys = (await self.read("DeviceConfiguration", "deviceConfigurationKeyValueListData")).get(
            "deviceConfigurationKeyValueData", []
        )
        out: dict[str, Any] = {}
        if limits:
            item = limits[0]
            out["limit_w"] = unscaled(item["value"])
            out["active"] = item.get("isLimitActive")
            out["changeable"] = item.get("isLimitChangeable")
            if "timePeriod" in item:
                out["remaining_s"] = parse_duration(item["timePeriod"]["endTime"])
        for item in keys:
            value = item.get("value", {})
            if "scaledNumber" in value:
                out["failsafe_limit_w"] = unscaled(value["scaledNumber"])
            if "duration" in value:
                out["failsafe_duration_s"] = parse_duration(value["duration"])
        return out

    async def measurements(self) -> dict[str, float]:
        """Measurement values by a readable key (acPowerTotal, acCurrent/a, acEnergyConsumed, …)."""
        descriptions = (await self.read("Measurement", "measurementDescriptionListData")).get(
            "measurementDescriptionData", []
        )
        values = (await self.read("Measurement", "measurementListData")).get("measurementData", [])
        return decode_measurements(descriptions, values)

    def stop_heartbeat(self) -> None:
        self.ems.heartbeats_enabled = False


def decode_measurements(descriptions: list[dict[str, Any]], values: list[dict[str, Any]]) -> dict[str, float]:
    scopes: dict[int, str] = {}
    seen: dict[str, int] = {}
    for d in descriptions:
        scope = d.get("scopeType", "?")
        count = seen.get(scope, 0)
        seen[scope] = count + 1
        scopes[d["measurementId"]] = (
            scope if scope not in ("acPower", "acCurrent", "acVoltage") else f"{scope}/{'abc'[count]}"
        )
    return {
        scopes.get(v["measurementId"], str(v["measurementId"])): unscaled(v["value"]) for v in values if "value" in v
    }


@asynccontextmanager
async def ems_connection(
    clock: Clock, state_dir: Path, host: str, port: int, ski: str, *, heartbeat_s: float = 30.0
) -> AsyncIterator[EmsConnection]:
    identity = Identity.load_or_create(state_dir, EMS_DEVICE_ID)
    node = ShipNode(identity, TrustStore(None, static=[ski]), clock, port=None)
    async with anyio.create_task_group() as tg:
        await tg.start(node.run)
        conn = await node.connect(host, port, expected_ski=ski)
        ems = EmsDevice(clock)
        session = SpineSession(ems.device, clock, conn.peer_ski)
        holder: list[EmsConnection] = []
        link = SpineLink(
            session, conn, clock, on_tick=lambda: holder[0].on_tick(), deadline=lambda: holder[0].next_beat()
        )
        connection = EmsConnection(ems, link, heartbeat_s, _last_beat=clock.monotonic())
        holder.append(connection)
        ems.beat()
        ems.device.on_reply = lambda _peer, function, data: connection.latest.__setitem__(function, data)
        tg.start_soon(link.run)
        try:
            await connection.setup()
            yield connection
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(3):
                await conn.close("EMS done")
            tg.cancel_scope.cancel()
