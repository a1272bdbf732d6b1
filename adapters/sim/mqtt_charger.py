"""A go-e-like MQTT charger simulator (API v2 key set) driving `WallboxPhysics`, against a real broker.

`GoeDevice` is the pure part: physics plus go-e keys; commands in
(`handle_set(key, payload)`), retained state messages out (`messages()`).
`MqttChargerSimulator` is the I/O owner: one broker connection for any number
of simulated chargers (a fleet for benchmarks), publishing every
`publish_interval_s` of its clock and answering `<key>/set` commands at once.

In-process use (tests, demo)::

    sim = MqttChargerSimulator(LinkSettings("127.0.0.1", port), clock, [GoeSimConfig(serial="000001")])
    async with anyio.create_task_group() as tg:
        await tg.start(sim.run)
    # or: async with sim: ...   (owns its task group)

Config (`simulators:` entry point `mqtt`): `{type: mqtt, port: 1883, serials: ["000001"]}`; the broker
must already run.  Stand-alone: `python -m adapters.sim.mqtt_charger --port 1883 --serial 000001`.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup, TaskStatus

from adapters.sim.physics import EvProfile, ScriptStep, WallboxPhysics
from bridge.clock import Clock, SystemClock
from bridge.errors import ChargerUnreachable
from bridge.model import ChargingState
from bridge.mqttio import LinkSettings, MqttLink

log = logging.getLogger(__name__)

_CAR = {
    ChargingState.IDLE: 1,
    ChargingState.CHARGING: 2,
    ChargingState.SUSPENDED_EVSE: 3,
    ChargingState.SUSPENDED_EV: 4,
    ChargingState.FINISHED: 4,
    ChargingState.FAULT: 5,
    ChargingState.UNKNOWN: 0,
}


@dataclass(frozen=True)
class GoeSimConfig:
    serial: str
    base: str = "go-eCharger"
    phases: int = 3
    min_current_a: float = 6.0
    max_current_a: float = 16.0
    voltage_v: float = 230.0
    ramp_a_per_s: float = 100.0
    initial_current_a: float = 16.0
    script: tuple[ScriptStep, ...] = (ScriptStep(0.0, EvProfile()),)
    firmware: str = "sim-056.2"


@dataclass
class GoeDevice:
    """One simulated go-e charger: physics + go-e API v2 keys (pure, time passed in)."""

    config: GoeSimConfig
    physics: WallboxPhysics = field(init=False)
    frc: int = 0
    psm: int = 0
    malformed: bool = False  # publish garbage instead of JSON (tests of the bridge's robustness)
    energy_override_wh: float | None = None  # benchmarks stamp the publish time here
    _published: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = self.config
        self.physics = WallboxPhysics(
            phases_installed=c.phases,
            min_current_a=c.min_current_a,
            max_current_a=c.max_current_a,
            voltage_v=c.voltage_v,
            ramp_a_per_s=c.ramp_a_per_s,
            script=c.script,
        )
        self.physics.set_current(c.initial_current_a)

    @property
    def prefix(self) -> str:
        return f"{self.config.base}/{self.config.serial}"

    def handle_set(self, key: str, payload: bytes) -> bool:
        """Apply one `<key>/set` command like the firmware; False when rejected (bad key or value)."""
        try:
            value = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return False
        p = self.physics
        if key == "amp" and isinstance(value, int | float) and not isinstance(value, bool):
            if not 6 <= value <= self.config.max_current_a:
                return False
            p.set_current(float(value))
        elif key == "frc" and value in (0, 1, 2) and not isinstance(value, bool):
            self.frc = int(value)
            p.enabled = self.frc != 1
        elif key == "psm" and value in (0, 1, 2) and not isinstance(value, bool):
            self.psm = int(value)
            p.phases_selected = {0: None, 1: 1, 2: 3}[self.psm]
        else:
            return False
        return True

    def state(self) -> dict[str, object]:
        p = self.physics
        n = p.active_phases
        volts = [round(p.voltage_v if i < n else 0.0, 1) for i in range(3)]
        amps = [round(a, 2) for a in p.currents_a]
        powers = [round(a * p.voltage_v, 1) for a in p.currents_a]
        nrg = [*volts, 0, *amps, *powers, 0, round(p.power_w, 1), 100, 100, 100, 0]
        energy = self.energy_override_wh if self.energy_override_wh is not None else round(p.energy_wh, 3)
        return {
            "car": _CAR[p.charging_state],
            "alw": bool(p.enabled),  # allowed to charge (frc is not "off"), with or without a car
            "amp": int(p.setpoint_a),
            "ama": int(self.config.max_current_a),
            "frc": self.frc,
            "psm": self.psm,
            "nrg": nrg,
            "eto": energy,
            "wh": round(p.session_energy_wh, 3),
            "err": 0,
            "sse": self.config.serial,
            "fwv": self.config.firmware,
        }

    def messages(self, *, only_changed: bool) -> list[tuple[str, bytes]]:
        """(topic, payload) of every key, or only of those whose payload changed since the last call."""
        out: list[tuple[str, bytes]] = []
        for key, value in self.state().items():
            payload = b"{not json" if self.malformed else json.dumps(value).encode()
            if only_changed and self._published.get(key) == payload:
                continue
            self._published[key] = payload
            out.append((f"{self.prefix}/{key}", payload))
        return out


class MqttChargerSimulator:
    """Owner of one broker connection serving a fleet of simulated go-e chargers; see module docstring."""

    def __init__(
        self,
        settings: LinkSettings,
        clock: Clock,
        chargers: Sequence[GoeSimConfig],
        *,
        publish_interval_s: float = 1.0,
    ) -> None:
        if not settings.client_id:
            settings = replace(settings, client_id=f"evbridge-sim-{chargers[0].serial if chargers else 'empty'}")
        self._clock = clock
        self.interval_s = publish_interval_s
        self.devices = {c.serial: GoeDevice(c) for c in chargers}
        self._by_prefix = {d.prefix: d for d in self.devices.values()}
        self.link = MqttLink(settings, clock, self._on_message, name="mqtt-sim")
        self._last = clock.monotonic()
        self.rejected: list[tuple[str, bytes]] = []
        for device in self.devices.values():
            self.link.subscribe(f"{device.prefix}/+/set", 1)
        self.link.add_connect_hook(self._publish_all)

    def device(self, serial: str) -> GoeDevice:
        return self.devices[serial]

    def _advance(self) -> None:
        now = self._clock.monotonic()
        dt, self._last = max(0.0, now - self._last), now
        for device in self.devices.values():
            device.physics.advance(dt)

    def _publish(self, device: GoeDevice, *, only_changed: bool, always: tuple[str, ...] = ()) -> None:
        for topic, payload in device.messages(only_changed=only_changed):
            self.link.publish(topic, payload, qos=0, retain=True)
        for key in always:  # periodic keys go out every tick even unchanged, like the firmware's nrg
            topic, payload = f"{device.prefix}/{key}", device._published.get(key)
            if payload is not None:
                self.link.publish(topic, payload, qos=0, retain=True)

    def _publish_all(self) -> None:
        for device in self.devices.values():
            device._published.clear()
            try:
                self._publish(device, only_changed=False)
            except ChargerUnreachable:
                return

    def _on_message(self, topic: str, payload: bytes, _retained: bool) -> None:
        prefix, _, rest = topic.rpartition("/")  # …/<key>/set
        if rest != "set":
            return
        prefix, _, key = prefix.rpartition("/")
        device = self._by_prefix.get(prefix)
        if device is None:
            return
        self._advance()
        if not device.handle_set(key, payload):
            self.rejected.append((topic, payload))
            log.info("sim %s: rejected %s=%r", device.config.serial, key, payload[:40])
        try:
            self._publish(device, only_changed=True)
        except ChargerUnreachable:
            pass

    def publish_tick(self, serials: Sequence[str] | None = None) -> None:
        """Advance physics and publish the changed keys plus nrg of every (or the given) charger: one firmware tick."""
        self._advance()
        for device in self.devices.values() if serials is None else (self.devices[s] for s in serials):
            self._publish(device, only_changed=True, always=("nrg",))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(self.link.run)
            task_status.started()
            while True:
                await self._clock.sleep(self.interval_s)
                if self.link.connected:
                    try:
                        self.publish_tick()
                    except ChargerUnreachable:
                        continue

    async def __aenter__(self) -> Self:
        self._cm = anyio.create_task_group()
        self._tg: TaskGroup = await self._cm.__aenter__()
        await self._tg.start(self.run)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        self._tg.cancel_scope.cancel()
        return await self._cm.__aexit__(et, e, tb)


def make_simulator(options: Mapping[str, Any], clock: Clock) -> MqttChargerSimulator:
    """Entry point `evbridge.simulators: mqtt`: `{type: mqtt, host, port, serials: [...], publish_interval_s}`."""
    serials = options.get("serials") or [options.get("serial", "000001")]
    settings = LinkSettings(
        host=str(options.get("host", "127.0.0.1")),
        port=int(options.get("port", 1883)),
        username=options.get("username"),
        password=options.get("password"),
    )
    configs = [GoeSimConfig(serial=str(s), max_current_a=float(options.get("max_current_a", 16.0))) for s in serials]
    return MqttChargerSimulator(
        settings, clock, configs, publish_interval_s=float(options.get("publish_interval_s", 1.0))
    )


async def _serve(host: str, port: int, serials: list[str]) -> None:
    async with make_simulator({"host": host, "port": port, "serials": serials}, SystemClock()):
        print(f"simulated go-e chargers {', '.join(serials)} on mqtt://{host}:{port}", flush=True)
        await anyio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="go-e MQTT charger simulator (needs a running broker)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--serial", action="append", default=[])
    args = parser.parse_args()
    anyio.run(_serve, args.host, args.port, args.serial or ["000001"], backend="asyncio")


if __name__ == "__main__":
    main()
