"""`type: mqtt` chargers: the client shell between a shared broker link and the pure `ChargerState`.

Reads never touch the network: the firmware publishes (mostly retained)
state, the factory's link owner feeds every message in, `read()` builds the
snapshot from the freshest values.  Commands are published with the point's
QoS/retain flags and verified, where the mapping has a read-back point, by
watching that topic within a deadline (MQTT devices rarely acknowledge).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.mqtt.codec import PayloadError, encode, render
from adapters.mqtt.mapping import Mapping, PointName
from adapters.mqtt.state import ChargerState
from bridge.clock import Clock, wait_event
from bridge.errors import CapabilityNotSupported, ChargerRejected, ChargerUnreachable
from bridge.model import AppliedSetpoint, Characteristics, ChargerSnapshot, Command
from bridge.mqttio import LinkSettings, MqttLink, TlsSettings
from bridge.ports import Capabilities, Watchdog, WatchdogKind
from bridge.secrets import Secret

log = logging.getLogger(__name__)


class TlsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class MeterOptions(BaseModel):
    """An add-on meter (Shelly/Tasmota) for a charger without one; its measurements win."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mapping: str
    variables: dict[str, str] = Field(default_factory=dict)


class MqttOptions(BaseModel):
    """Options of a `type: mqtt` charger; broker fields may also come from the adapter-wide options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["mqtt"] = "mqtt"
    mapping: str
    variables: dict[str, str] = Field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: Secret | None = None  # "pw", {env: NAME}, {file: p}
    tls: TlsOptions | None = None
    client_id: str | None = None
    phases: Literal[1, 2, 3] | None = None
    min_current_a: float | None = Field(default=None, ge=0)
    max_current_a: float | None = Field(default=None, gt=0)
    stale_after_s: float | None = Field(default=None, gt=0)
    verify_timeout_s: float = Field(default=10.0, gt=0)
    connect_wait_s: float = Field(default=5.0, ge=0)
    meter: MeterOptions | None = None

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttOptions:
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self

    def link_settings(self, default_client_id: str) -> LinkSettings:
        tls = None
        if self.tls is not None:
            tls = TlsSettings(self.tls.ca_file, self.tls.cert_file, self.tls.key_file, self.tls.insecure)
        return LinkSettings(
            host=self.host,
            port=self.port,
            client_id=self.client_id or default_client_id,
            username=self.username,
            password=self.password.get_secret_value() if self.password is not None else None,
            tls=tls,
        )


UpdateListener = Callable[[str], None]


class MqttCharger:
    """One mapped MQTT charger; see module docstring."""

    def __init__(
        self,
        charger_id: str,
        mapping: Mapping,
        options: MqttOptions,
        link: MqttLink,
        clock: Clock,
        meter: Mapping | None = None,
    ) -> None:
        self._id = charger_id
        self._mapping = mapping
        self._options = options
        self._link = link
        self._clock = clock
        self._variables = {**mapping.variables, **options.variables}
        missing = [v for v in mapping.required_variables if v not in self._variables]
        if missing:
            raise ChargerRejected(f"charger {charger_id}: mapping needs variables {missing}")
        self.state = ChargerState(
            mapping,
            self._variables,
            options.stale_after_s or mapping.stale_after_s,
            meter=meter,
            meter_variables={
                **(meter.variables if meter else {}),
                **(options.meter.variables if options.meter else {}),
            },
        )
        self._updated = anyio.Event()
        self._listeners: list[UpdateListener] = []
        self._last_write: dict[PointName, tuple[bytes, float]] = {}
        self._off_since: float | None = None  # switch-socket chargers: when the relay was switched off
        d = mapping.defaults
        has = {p.name for p in mapping.points}
        self._caps = Capabilities(
            characteristics=Characteristics(
                phases_installed=options.phases or d.phases,
                min_current_a=options.min_current_a if options.min_current_a is not None else d.min_current_a,
                max_current_a=options.max_current_a or d.max_current_a,
                current_resolution_a=d.current_resolution_a,
                phase_switching=d.phase_switching and PointName.SET_PHASES in has,
            ),
            can_pause=bool(
                has & {PointName.ENABLE, PointName.SWITCH}
                or (PointName.SET_CURRENT in has and mapping.point(PointName.SET_CURRENT).off_value is not None)  # type: ignore[union-attr]
            ),
            per_phase_metering=PointName.CURRENT_L1 in has,
            soc=PointName.SOC in has,
            watchdog=Watchdog(
                kind=WatchdogKind.CHARGER if mapping.keepalive else WatchdogKind.NONE,
                timeout_s=mapping.keepalive.interval_s * 3 if mapping.keepalive else None,
                refresh_s=mapping.keepalive.interval_s if mapping.keepalive else None,
                description=f"{mapping.vendor} {mapping.model} over MQTT"
                + ("" if mapping.keepalive else ": keeps its last current when the bridge dies"),
            ),
        )
        for topic in self.state.topics():
            link.subscribe(topic, 1)

    @property
    def charger_id(self) -> str:
        return self._id

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def topics(self) -> list[str]:
        return self.state.topics()

    def add_listener(self, listener: UpdateListener) -> None:
        """Called with the charger id after every applied message (metrics, benchmarks)."""
        self._listeners.append(listener)

    def on_message(self, topic: str, payload: bytes) -> None:
        """Called by the link owner for every message on one of our topics."""
        problems = self.state.on_message(topic, payload, self._clock.monotonic())
        for problem in problems:
            log.warning("charger %s: ignored malformed payload on %s", self._id, problem)
        self._updated.set()
        self._updated = anyio.Event()
        for listener in self._listeners:
            listener(self._id)

    async def read(self) -> ChargerSnapshot:
        if not self._link.connected:
            raise ChargerUnreachable(f"charger {self._id}: no MQTT session with {self._options.host}")
        if self.state.last_good is None:
            raise ChargerUnreachable(f"charger {self._id}: nothing received yet on {self.state.topics()[:3]}")
        return self.state.snapshot(self._id, self._clock.now(), self._clock.monotonic(), self._caps.characteristics)

    def _publish(self, name: PointName, value: float | bool) -> None:
        point = self._mapping.point(name)
        if point is None:
            raise CapabilityNotSupported(f"charger {self._id}: mapping has no {name.value} point")
        try:
            payload = encode(point, value, self._variables)
        except PayloadError as exc:
            raise ChargerRejected(str(exc)) from None
        now = self._clock.monotonic()
        last = self._last_write.get(name)
        if last is not None and last[0] == payload and now - last[1] < self._mapping.min_write_interval_s:
            return  # the firmware asks not to be written too often; nothing changed anyway
        self._link.publish(render(point.topic, self._variables), payload, qos=point.qos, retain=point.retain)
        self._last_write[name] = (payload, now)

    async def apply(self, command: Command) -> AppliedSetpoint:
        if not self._link.connected:
            # At start-up the first command usually comes before the broker session: wait a little, bounded.
            await self._link.wait_connected(self._options.connect_wait_s)
        chars = self._caps.characteristics
        current = command.max_current_a
        if command.power_w is not None and not command.pause and command.current_a is None:
            phases = command.phases or chars.phases_installed
            current = command.power_w / (chars.nominal_voltage_v * phases)
        has = {p.name for p in self._mapping.points}
        set_current = self._mapping.point(PointName.SET_CURRENT)
        min_a = max(chars.min_current_a, set_current.min if set_current is not None and set_current.min else 0.0)
        pause = command.pause or current < min_a
        if not pause and PointName.SWITCH in has and PointName.ENABLE not in has and self._off_since is not None:
            waited = self._clock.monotonic() - self._off_since
            if waited < self._mapping.min_off_s:
                log.info("charger %s: relay stays off for %.0f s more", self._id, self._mapping.min_off_s - waited)
                pause = True
        if pause:
            if PointName.ENABLE in has:
                self._publish(PointName.ENABLE, False)
            elif set_current is not None and set_current.off_value is not None:
                self._publish(PointName.SET_CURRENT, set_current.off_value * set_current.scale)
            elif PointName.SWITCH in has:
                self._publish(PointName.SWITCH, False)
                if self._off_since is None:
                    self._off_since = self._clock.monotonic()
            else:
                raise CapabilityNotSupported(f"charger {self._id}: mapping cannot pause")
        else:
            current = min(current, chars.max_current_a)
            if set_current is not None:
                if set_current.max is not None:
                    current = min(current, set_current.max)
                self._publish(PointName.SET_CURRENT, current)
            if PointName.ENABLE in has:
                self._publish(PointName.ENABLE, True)
            elif PointName.SWITCH in has:
                self._publish(PointName.SWITCH, True)
                self._off_since = None
        if command.phases is not None and PointName.SET_PHASES in has and chars.phase_switching:
            self._publish(PointName.SET_PHASES, command.phases)
        await self._verify(0.0 if pause else current, pause)
        applied = self.state.values.get(PointName.APPLIED_CURRENT)
        enabled = self.state.values.get(PointName.ENABLED)
        return AppliedSetpoint(
            current_a=float(applied.value) if applied and isinstance(applied.value, float) else None,
            enabled=enabled.value if enabled and isinstance(enabled.value, bool) else (not pause),
        )

    async def _verify(self, expected_a: float, pause: bool) -> None:
        """Wait for the read-back topics to show the new setpoint; ChargerRejected when they never do."""
        has_current = self._mapping.point(PointName.APPLIED_CURRENT) is not None
        has_enabled = self._mapping.point(PointName.ENABLED) is not None
        if not has_current and not has_enabled:
            return
        deadline = self._clock.monotonic() + self._options.verify_timeout_s
        tolerance = max(0.1, self._caps.characteristics.current_resolution_a)
        while True:
            ok = True
            applied = self.state.values.get(PointName.APPLIED_CURRENT)
            enabled = self.state.values.get(PointName.ENABLED)
            if has_enabled and (enabled is None or enabled.value is not (not pause)):
                ok = False
            if has_current and not pause:
                value = applied.value if applied else None
                ok = ok and isinstance(value, float) and abs(value - expected_a) <= tolerance
            if ok:
                return
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise ChargerRejected(
                    f"charger {self._id}: setpoint {'pause' if pause else f'{expected_a:.1f} A'} "
                    f"not confirmed within {self._options.verify_timeout_s} s"
                )
            await wait_event(self._clock, self._updated, remaining)

    async def keep_alive(self) -> None:
        spec = self._mapping.keepalive
        if spec is None:
            return
        self._link.publish(render(spec.topic, self._variables), render(spec.payload, self._variables), qos=spec.qos)

    async def set_fallback_current(self, current_a: float) -> None:
        """MQTT firmwares expose no fallback current; the watchdog kind NONE tells the runtime so."""
        return None

    async def aclose(self) -> None:
        return None
