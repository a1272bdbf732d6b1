"""MQTT northbound: the canonical snapshots and LPC state on a broker, Home Assistant discovery, local limits.

Topic tree (all JSON unless noted, all retained except `…/result`):

    <base>/status                       "online" | "offline" (last will)
    <base>/<charger>/available          "online" | "offline"  (snapshot.available)
    <base>/<charger>/state              flat summary for dashboards/HA (power_w, energy_wh, current_l1_a, …)
    <base>/<charger>/snapshot           the full canonical ChargerSnapshot
    <base>/<charger>/lpc                LPC state (state, effective_cap_w, limit_w, limit_active, failsafe_…)
    <base>/<charger>/local_limit        the local limit in force: {"limit_w": W | null}
    <base>/<charger>/local_limit/set    command (only when a command token is configured):
                                        {"token": "<token>", "limit_w": W | null}
    <base>/<charger>/local_limit/result {"ok": bool, "error": str | null}   (not retained)
    <prefix>/<component>/<object_id>/config   Home Assistant discovery

Nothing is lost over a broker restart: every retained message is kept in a
cache and republished after each reconnect (the broker may have forgotten
them); removed chargers get empty retained messages, also after a reconnect.
Accepted local limits go to `local_limits` as `(charger_id, watts | None)`;
the runtime turns them into `LimitSource.LOCAL` constraints, below LPC.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bridge import __version__
from bridge.api.ha_discovery import discovery_configs, discovery_topics
from bridge.clock import Clock
from bridge.errors import ChargerUnreachable
from bridge.model import ChargerSnapshot
from bridge.mqttio import LinkSettings, MqttLink, TlsSettings

log = logging.getLogger(__name__)

MAX_LOCAL_LIMIT_W = 1_000_000.0


@dataclass(frozen=True)
class MqttNorthSettings:
    """Plain settings; `from_config()` maps the `mqtt:` config section onto them."""

    link: LinkSettings
    base_topic: str = "evbridge"
    ha_discovery: bool = True
    ha_prefix: str = "homeassistant"
    node_id: str = "evbridge"  # prefix of HA unique ids; one per bridge instance (see docs/scale-out.md)
    command_token: str | None = None  # None: no command topic is subscribed at all
    qos: int = 1

    @staticmethod
    def from_config(cfg: Any, *, node_id: str = "evbridge") -> MqttNorthSettings:
        """From a `bridge.config.model.MqttConfig` (duck-typed: bridge.api does not import bridge.config)."""

        def secret(value: Any) -> str | None:
            return None if value is None else value.get_secret_value()

        tls = None
        if cfg.tls is not None:
            tls = TlsSettings(cfg.tls.ca_file, cfg.tls.cert_file, cfg.tls.key_file, cfg.tls.insecure)
        base = cfg.base_topic.rstrip("/")
        link = LinkSettings(
            host=cfg.host,
            port=cfg.port,
            client_id=cfg.client_id or f"{node_id}-north",
            username=cfg.username,
            password=secret(cfg.password),
            tls=tls,
            will_topic=f"{base}/status",
            will_payload=b"offline",
        )
        return MqttNorthSettings(
            link=link,
            base_topic=base,
            ha_discovery=cfg.ha_discovery.enabled,
            ha_prefix=cfg.ha_discovery.prefix,
            node_id=node_id,
            command_token=secret(getattr(cfg, "command_token", None)),
        )


def snapshot_state(snapshot: ChargerSnapshot) -> dict[str, Any]:
    """The flat JSON summary published on `<base>/<charger>/state`."""
    m = snapshot.measurement
    currents = m.current_per_phase_a or (None, None, None)
    volts = m.voltage_per_phase_v or (None, None, None)
    return {
        "timestamp": snapshot.timestamp.isoformat(),
        "available": snapshot.available,
        "charging_state": snapshot.charging_state.value,
        "operating_state": snapshot.device_state.operating_state.value,
        "error_code": snapshot.device_state.last_error_code,
        "ev_connected": snapshot.ev_connected,
        "active_phases": snapshot.active_phases,
        "power_w": m.power_w,
        "energy_wh": m.energy_wh,
        **{f"current_l{i + 1}_a": currents[i] for i in range(3)},
        **{f"voltage_l{i + 1}_v": volts[i] for i in range(3)},
        "soc_pct": m.soc_pct,
        "applied_current_a": snapshot.applied.current_a,
        "applied_power_w": snapshot.applied.power_w,
        "enabled": snapshot.applied.enabled,
        "session_energy_wh": snapshot.session.energy_wh if snapshot.session else None,
    }


def lpc_state(lpc: Any) -> dict[str, Any]:
    """The JSON for `publish_lpc` from a `bridge.usecases.lpc.Lpc` (duck-typed)."""
    limit = lpc.limit
    return {
        "state": str(getattr(lpc.state, "value", lpc.state)),
        "effective_cap_w": lpc.effective_cap_w,
        "limit_w": limit.value_w,
        "limit_active": limit.active,
        "limit_remaining_s": limit.duration_s,
        "failsafe_limit_w": lpc.failsafe.consumption_limit_w,
        "failsafe_duration_s": lpc.failsafe.duration_minimum_s,
    }


def parse_local_limit(payload: bytes, token: str) -> float | None:
    """Validate one local-limit command; ValueError with a reason the sender gets back."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("payload is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError('payload must be an object {"token": …, "limit_w": W | null}')
    given = data.get("token")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
        raise ValueError("not authorised")
    if "limit_w" not in data:
        raise ValueError("limit_w missing (null clears the limit)")
    value = data["limit_w"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("limit_w must be a number of watts or null")
    if not 0 <= value <= MAX_LOCAL_LIMIT_W:
        raise ValueError(f"limit_w must be within 0..{MAX_LOCAL_LIMIT_W:.0f} W")
    return float(value)


class MqttNorthbound:
    """The northbound MQTT service; see module docstring.  Run it in the runtime's task group."""

    def __init__(self, settings: MqttNorthSettings, clock: Clock) -> None:
        link = settings.link
        if link.will_topic is None:
            link = replace(link, will_topic=f"{settings.base_topic}/status", will_payload=b"offline")
        self.settings = settings
        self._clock = clock
        self._base = settings.base_topic
        self.link = MqttLink(link, clock, self._on_message, name="mqtt-north")
        self.link.add_connect_hook(self._republish)
        self._retained: dict[str, bytes] = {}
        self._tombstones: set[str] = set()
        self._chargers: dict[str, tuple[Any, ...]] = {}  # charger id → device identity published in discovery
        self._local: dict[str, float | None] = {}
        send, receive = anyio.create_memory_object_stream[tuple[str, float | None]](256)
        self._send: MemoryObjectSendStream[tuple[str, float | None]] = send
        self.local_limits: MemoryObjectReceiveStream[tuple[str, float | None]] = receive
        if settings.command_token:
            self.link.subscribe(f"{self._base}/+/local_limit/set", settings.qos)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the broker connection until cancelled.

        A stop closes the socket without DISCONNECT, so the broker publishes the last will
        (`<base>/status` = offline) on a clean stop as on a crash.
        """
        try:
            await self.link.run(task_status=task_status)
        finally:
            self._send.close()

    # -- publishing ------------------------------------------------------------
    def _put(self, topic: str, payload: bytes) -> None:
        """Remember a retained message and send it when connected (otherwise on the next connect)."""
        self._tombstones.discard(topic)
        if self._retained.get(topic) == payload:
            return
        self._retained[topic] = payload
        self._send_now(topic, payload, retain=True)

    def _send_now(self, topic: str, payload: bytes, *, retain: bool) -> None:
        if not self.link.connected:
            return
        try:
            self.link.publish(topic, payload, qos=self.settings.qos, retain=retain)
        except ChargerUnreachable:
            pass  # the connect hook republishes everything

    def _republish(self) -> None:
        self.link.publish(f"{self._base}/status", b"online", qos=self.settings.qos, retain=True)
        for topic in sorted(self._tombstones):
            self.link.publish(topic, b"", qos=self.settings.qos, retain=True)
        self._tombstones.clear()
        for topic, payload in self._retained.items():
            self.link.publish(topic, payload, qos=self.settings.qos, retain=True)

    def publish_snapshot(self, snapshot: ChargerSnapshot) -> None:
        """Publish one charger's snapshot (and its discovery configs the first time or when identity changes)."""
        cid = snapshot.charger_id
        s = self.settings
        m = snapshot.manufacturer
        identity = (m.vendor, m.model, m.serial, m.firmware)
        if s.ha_discovery and self._chargers.get(cid) != identity:
            configs = discovery_configs(
                snapshot, prefix=s.ha_prefix, base_topic=self._base, node_id=s.node_id, sw_version=__version__
            )
            for topic, config in configs:
                self._put(topic, json.dumps(config, sort_keys=True).encode())
        self._chargers[cid] = identity
        self._put(f"{self._base}/{cid}/available", b"online" if snapshot.available else b"offline")
        self._put(f"{self._base}/{cid}/state", json.dumps(snapshot_state(snapshot)).encode())
        self._put(f"{self._base}/{cid}/snapshot", snapshot.model_dump_json().encode())
        if cid not in self._local:
            self._local[cid] = None
            self._put(f"{self._base}/{cid}/local_limit", b'{"limit_w": null}')

    def publish_lpc(self, charger_id: str, state: Mapping[str, Any]) -> None:
        """Publish the LPC state (see `lpc_state()`); HA's active-limit sensor reads `effective_cap_w`."""
        self._put(f"{self._base}/{charger_id}/lpc", json.dumps(dict(state), sort_keys=True, default=str).encode())

    def remove_charger(self, charger_id: str) -> None:
        """Clear every retained message of the charger, discovery configs included (HA removes the device)."""
        topics = [t for t in self._retained if t.startswith(f"{self._base}/{charger_id}/")]
        topics += discovery_topics(self.settings.ha_prefix, self.settings.node_id, charger_id)
        for suffix in ("available", "state", "snapshot", "lpc", "local_limit"):
            topics.append(f"{self._base}/{charger_id}/{suffix}")
        for topic in dict.fromkeys(topics):
            self._retained.pop(topic, None)
            self._tombstones.add(topic)
            if self.link.connected:
                try:
                    self.link.publish(topic, b"", qos=self.settings.qos, retain=True)
                    self._tombstones.discard(topic)
                except ChargerUnreachable:
                    pass
        self._chargers.pop(charger_id, None)
        self._local.pop(charger_id, None)

    # -- commands --------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        token = self.settings.command_token
        parts = topic.split("/")
        base_parts = self._base.split("/")
        if token is None or len(parts) != len(base_parts) + 3 or parts[-2:] != ["local_limit", "set"]:
            return
        charger_id = parts[len(base_parts)]
        result_topic = f"{self._base}/{charger_id}/local_limit/result"
        if retained:
            # a stale retained command must not act after a restart; tell the sender and ignore it
            self._send_now(result_topic, b'{"ok": false, "error": "retained commands are ignored"}', retain=False)
            return
        if charger_id not in self._chargers:
            self._send_now(result_topic, b'{"ok": false, "error": "unknown charger"}', retain=False)
            return
        try:
            watts = parse_local_limit(payload, token)
        except ValueError as exc:
            log.warning("local limit for %s rejected: %s", charger_id, exc)
            self._send_now(result_topic, json.dumps({"ok": False, "error": str(exc)}).encode(), retain=False)
            return
        try:
            self._send.send_nowait((charger_id, watts))
        except anyio.WouldBlock:
            self._send_now(result_topic, b'{"ok": false, "error": "busy, try again"}', retain=False)
            return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return
        self._local[charger_id] = watts
        self._put(f"{self._base}/{charger_id}/local_limit", json.dumps({"limit_w": watts}).encode())
        self._send_now(result_topic, b'{"ok": true, "error": null}', retain=False)
        log.info("local limit for %s: %s", charger_id, "cleared" if watts is None else f"{watts:.0f} W")


def northbound_service(settings: MqttNorthSettings) -> Callable[[Any], Awaitable[None]]:
    """A `Bridge.run(extra_services=…)` service: snapshots and LPC state out, local limits in.

    Duck-typed on the runtime's `Bridge` (clock, chargers[id].device_id, devices[id].lpc,
    snapshot_listeners, set_local_limit) because bridge.api does not import bridge.runtime.
    LPC state is published once a second; unchanged payloads are not resent.
    """

    async def service(bridge: Any) -> None:
        north = MqttNorthbound(settings, bridge.clock)
        bridge.snapshot_listeners.append(north.publish_snapshot)

        async def lpc_loop() -> None:
            while True:
                for cid, handle in list(bridge.chargers.items()):
                    device = bridge.devices.get(handle.device_id)
                    if device is not None:
                        north.publish_lpc(cid, lpc_state(device.lpc))
                await bridge.clock.sleep(1.0)

        try:
            async with anyio.create_task_group() as tg:
                await tg.start(north.run)
                tg.start_soon(lpc_loop)
                async for charger_id, watts in north.local_limits:
                    if charger_id in bridge.chargers:
                        bridge.set_local_limit(charger_id, watts)
        finally:
            bridge.snapshot_listeners.remove(north.publish_snapshot)

    return service
