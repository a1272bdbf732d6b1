"""Southbound MQTT against a real mosquitto: the go-e mapping reads and controls the go-e simulator."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import ValidationError

from adapters.mqtt.adapter import MqttCharger
from adapters.mqtt.factory import MqttFactory
from adapters.sim.mqtt_charger import GoeSimConfig, MqttChargerSimulator
from bridge.clock import FakeClock, SystemClock
from bridge.errors import ChargerUnreachable, ConfigError, MappingError
from bridge.model import ChargerSnapshot, ChargingState, Command
from bridge.mqttio import LinkSettings, TlsSettings
from bridge.ports import AdapterDeps, AdapterRegistry, WatchdogKind, simulator
from tests.integration.mosquitto import PASSWORD, USERNAME, Mosquitto, eventually, observing, start_broker

pytestmark = pytest.mark.anyio


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


def _link(broker: Mosquitto, **extra: Any) -> LinkSettings:
    return LinkSettings("127.0.0.1", broker.port, **extra)


@asynccontextmanager
async def running(
    broker: Mosquitto, tmp_path: Path, options: dict[str, Any], sim_link: LinkSettings, serial: str = "000042"
) -> AsyncIterator[tuple[MqttCharger, MqttChargerSimulator, MqttFactory]]:
    clock = SystemClock()
    sim = MqttChargerSimulator(sim_link, clock, [GoeSimConfig(serial=serial)], publish_interval_s=0.1)
    factory = MqttFactory(AdapterDeps(clock=clock, state_dir=tmp_path))
    async with anyio.create_task_group() as tg, factory:
        await tg.start(sim.run)
        validated = factory.validate_options(
            {"type": "mqtt", "mapping": "goe", "variables": {"serial": serial}, "port": broker.port, **options}
        )
        charger = factory.create("wb1", validated)
        yield charger, sim, factory
        tg.cancel_scope.cancel()


async def until(charger: MqttCharger, pred: Callable[[ChargerSnapshot], bool], within_s: float = 5) -> None:
    async def check() -> bool:
        try:
            return pred(await charger.read())
        except ChargerUnreachable:
            return False

    await eventually(check, within_s)


async def until_true(pred: Callable[[], bool], within_s: float = 5) -> None:
    async def check() -> bool:
        return pred()

    await eventually(check, within_s)


async def first_snapshot(charger: MqttCharger) -> ChargerSnapshot:
    async def _ok() -> bool:
        try:
            snap = await charger.read()
        except ChargerUnreachable:
            return False
        return snap.measurement.power_w is not None and snap.charging_state is not ChargingState.UNKNOWN

    await eventually(_ok, 5)
    return await charger.read()


async def test_goe_read_and_control(broker: Mosquitto, tmp_path: Path) -> None:
    async with running(broker, tmp_path, {}, _link(broker)) as (charger, sim, _):
        snap = await first_snapshot(charger)
        device = sim.device("000042")
        assert snap.available
        assert snap.manufacturer.vendor == "go-e" and snap.manufacturer.serial == "000042"
        assert snap.ev_connected is True
        await until(charger, lambda s: s.measurement.power_w == pytest.approx(16 * 230 * 3, rel=0.01), 5)
        snap = await charger.read()
        assert snap.charging_state is ChargingState.CHARGING
        assert snap.measurement.current_per_phase_a == pytest.approx((16.0, 16.0, 16.0))
        assert snap.applied.current_a == 16.0

        # limit to 10.7 A: rounded down to 10 A on the wire, confirmed through `amp`
        applied = await charger.apply(Command(charger_id="wb1", current_a=(10.7, 10.7, 10.7)))
        assert applied.current_a == 10.0 and applied.enabled is True
        assert device.physics.setpoint_a == 10.0 and device.frc == 2
        await until(charger, lambda s: s.measurement.power_w == pytest.approx(10 * 230 * 3, rel=0.01), 5)

        # pause: frc=1, confirmed through `alw`
        applied = await charger.apply(Command(charger_id="wb1", pause=True))
        assert applied.enabled is False
        assert device.frc == 1 and device.physics.enabled is False
        await until(charger, lambda s: s.charging_state is not ChargingState.CHARGING, 5)
        assert (await charger.read()).charging_state is ChargingState.SUSPENDED_EVSE

        # below the minimum current means pause, never a current under 6 A
        await charger.apply(Command(charger_id="wb1", current_a=(16, 16, 16)))
        assert device.frc == 2
        await charger.apply(Command(charger_id="wb1", current_a=(4, 4, 4)))
        assert device.frc == 1 and device.physics.setpoint_a == 16.0
        # phase switching: psm 1 = force 1-phase, 2 = force 3-phase
        assert charger.capabilities.characteristics.phase_switching
        await charger.apply(Command(charger_id="wb1", current_a=(16, 16, 16), phases=1))
        await until_true(lambda: device.psm == 1)
        await until(charger, lambda s: s.active_phases == 1 and s.measurement.power_w == pytest.approx(16 * 230))
        await charger.apply(Command(charger_id="wb1", current_a=(16, 16, 16), phases=3))
        await until_true(lambda: device.psm == 2)
        assert sim.rejected == []


async def test_malformed_payloads_mark_stale_and_process_stays_up(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running(broker, tmp_path, {"stale_after_s": 0.6}, _link(broker)) as (charger, sim, factory):
        await first_snapshot(charger)
        sim.device("000042").malformed = True
        await until(charger, lambda s: not s.available, 5)
        snap = await charger.read()
        assert snap.available is False
        assert snap.measurement.power_w is not None  # last known values are kept, marked unavailable
        assert any("malformed payload" in r.getMessage() for r in caplog.records)
        assert factory.links()[0].connected  # the connection survived the garbage
        # the device recovers: good payloads make the charger available again
        sim.device("000042").malformed = False
        await until(charger, lambda s: s.available, 5)


async def test_password_connection(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker", "password")
    try:
        opts = {"username": USERNAME, "password": PASSWORD}
        sim_link = _link(broker, username=USERNAME, password=PASSWORD)
        async with running(broker, tmp_path, opts, sim_link) as (charger, _sim, _):
            snap = await first_snapshot(charger)
            assert snap.available
        # a wrong password never gets a session: reads say unreachable, nothing crashes
        async with running(broker, tmp_path, {"username": USERNAME, "password": "wrong"}, sim_link) as (c2, _s, f):
            await anyio.sleep(0.5)
            assert not f.links()[0].connected
            with pytest.raises(ChargerUnreachable):
                await c2.read()
    finally:
        broker.stop()


async def test_tls_connection(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker", "tls")
    assert broker.tls is not None
    try:
        tls = {"ca_file": str(broker.tls.ca_file)}
        opts = {"username": USERNAME, "password": PASSWORD, "tls": tls}
        sim_link = _link(broker, username=USERNAME, password=PASSWORD, tls=TlsSettings(ca_file=broker.tls.ca_file))
        async with running(broker, tmp_path, opts, sim_link) as (charger, sim, _):
            snap = await first_snapshot(charger)
            assert snap.available
            await charger.apply(Command(charger_id="wb1", current_a=(8, 8, 8)))
            assert sim.device("000042").physics.setpoint_a == 8.0
        # without the CA the broker's certificate is not trusted: no session
        async with running(broker, tmp_path, {**opts, "tls": {}}, sim_link) as (_c2, _s, f):
            await anyio.sleep(0.5)
            assert not f.links()[0].connected
    finally:
        broker.stop()


async def test_broker_restart_southbound_reconnects(broker: Mosquitto, tmp_path: Path) -> None:
    async with running(broker, tmp_path, {}, _link(broker, backoff_initial_s=0.05, backoff_max_s=0.2)) as (
        charger,
        sim,
        factory,
    ):
        await first_snapshot(charger)
        link = factory.links()[0]
        before = link.connects
        broker.restart()
        await until_true(lambda: link.connects > before and link.connected, 10)
        await charger.apply(Command(charger_id="wb1", current_a=(7, 7, 7)))
        assert sim.device("000042").physics.setpoint_a == 7.0


KEEPALIVE_MAPPING = """\
vendor: Test
model: keep-alive box
required_variables: [id]
keepalive: {topic: "box/{id}/heartbeat", payload: "{id}-alive", interval_s: 5}
points:
  - {name: power_w, topic: "box/{id}/power", parse: number, unit: W}
  - {name: set_current, access: w, topic: "box/{id}/current/set", template: "{value_int}", off_value: 0}
"""


async def test_registry_keepalive_and_off_value(broker: Mosquitto, tmp_path: Path) -> None:
    """Through the entry point: a mapping from a user mapping dir with keep-alive and an off value instead of enable."""
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "kbox.yaml").write_text(KEEPALIVE_MAPPING)
    clock = SystemClock()
    deps = AdapterDeps(
        clock=clock, state_dir=tmp_path, mapping_dirs=(tmp_path / "maps",), options={"port": broker.port}
    )
    factory = AdapterRegistry().factory("mqtt", deps)
    async with anyio.create_task_group() as tg, observing(broker.port) as obs, factory:
        charger = factory.create(
            "k1", factory.validate_options({"type": "mqtt", "mapping": "kbox", "variables": {"id": "7"}})
        )
        assert charger.capabilities.watchdog.kind is WatchdogKind.CHARGER
        assert charger.capabilities.watchdog.refresh_s == 5
        assert charger.capabilities.can_pause
        await until_true(lambda: factory.links()[0].connected)
        obs.link.publish("box/7/power", b"1234.5", retain=True)
        await until(charger, lambda s: s.measurement.power_w == 1234.5)
        await charger.keep_alive()
        await charger.apply(Command(charger_id="k1", current_a=(9.9, 9.9, 9.9)))
        await charger.apply(Command(charger_id="k1", pause=True))
        await until_true(lambda: len([m for m in obs.messages if m[0] != "box/7/power"]) >= 3)
        sent = [(t, p) for t, p, _r in obs.messages if t != "box/7/power"]
        assert sent == [("box/7/heartbeat", b"7-alive"), ("box/7/current/set", b"9"), ("box/7/current/set", b"0")]
        tg.cancel_scope.cancel()


async def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    factory = MqttFactory(AdapterDeps(clock=SystemClock(), state_dir=tmp_path))
    with pytest.raises(ConfigError, match="needs variables"):
        factory.validate_options({"type": "mqtt", "mapping": "goe"})
    with pytest.raises(ConfigError, match="not a meter mapping"):
        factory.validate_options({"mapping": "goe", "variables": {"serial": "1"}, "meter": {"mapping": "warp"}})
    with pytest.raises(MappingError, match="did you mean"):
        factory.validate_options({"mapping": "go-e", "variables": {"serial": "1"}})
    with pytest.raises(ValidationError):
        factory.validate_options({"mapping": "goe", "variables": {"serial": "1"}, "password": "x"})


async def test_simulator_entry_point(broker: Mosquitto, tmp_path: Path) -> None:
    """`simulators: [{type: mqtt, …}]` in a config starts the go-e fleet through this entry point."""
    clock = SystemClock()
    make = simulator("mqtt")
    factory = MqttFactory(AdapterDeps(clock=clock, state_dir=tmp_path))
    async with make({"port": broker.port, "serials": ["S1", "S2"], "publish_interval_s": 0.1}, clock) as sim, factory:
        assert set(sim.devices) == {"S1", "S2"}
        chargers = [
            factory.create(
                s, factory.validate_options({"mapping": "goe", "port": broker.port, "variables": {"serial": s}})
            )
            for s in ("S1", "S2")
        ]
        for charger in chargers:
            await until(charger, lambda s: s.available and s.manufacturer.serial is not None)
        assert [(await c.read()).manufacturer.serial for c in chargers] == ["S1", "S2"]


def test_password_from_env_or_file_and_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    factory = MqttFactory(AdapterDeps(clock=SystemClock(), state_dir=tmp_path))
    base = {"mapping": "goe", "variables": {"serial": "1"}, "username": "u"}
    monkeypatch.setenv("EVB_MQTT_PW", "from-env")
    (tmp_path / "pw").write_text("from-file\n")
    env = factory.validate_options({**base, "password": {"env": "EVB_MQTT_PW"}})
    file = factory.validate_options({**base, "password": {"file": str(tmp_path / "pw")}})
    assert env.link_settings("c").password == "from-env" and file.link_settings("c").password == "from-file"
    assert "from-env" not in repr(env) and "from-env" not in str(env.model_dump())
    with pytest.raises(ValidationError, match="EVB_MISSING"):
        factory.validate_options({**base, "password": {"env": "EVB_MISSING"}})


async def test_switch_socket_charger_keeps_relay_off_for_min_off_time(broker: Mosquitto, tmp_path: Path) -> None:
    """Tasmota relay: a limit below the cable's fixed current switches off at once; on again only after min_off_s."""
    clock = FakeClock()  # the adapter's timers; the broker link itself works in real time
    factory = MqttFactory(AdapterDeps(clock=clock, state_dir=tmp_path))
    async with anyio.create_task_group() as tg, observing(broker.port) as relay, factory:

        def on_command(topic: str, payload: bytes, _retained: bool) -> None:  # the relay answers like Tasmota
            if topic == "cmnd/plug1/POWER":
                relay.link.publish("stat/plug1/POWER", payload, retain=True)

        relay.link._on_message = lambda t, p, r: (relay._on(t, p, r), on_command(t, p, r))  # type: ignore[method-assign]
        options = {"mapping": "tasmota-switch", "port": broker.port, "variables": {"topic": "plug1"}}
        charger = factory.create("granny", factory.validate_options(options))
        assert charger.capabilities.can_pause and charger.capabilities.characteristics.min_current_a == 10
        await until_true(lambda: factory.links()[0].connected)
        relay.link.publish("stat/plug1/POWER", b"ON", retain=True)
        await until(charger, lambda s: s.applied.enabled is True)

        def commands() -> list[bytes]:
            return [p for t, p, _r in relay.messages if t == "cmnd/plug1/POWER"]

        assert (await charger.apply(Command(charger_id="granny", current_a=(8, 8, 8)))).enabled is False
        assert commands() == [b"OFF"]  # 8 A < the cable's 10 A: off at once (confirmed by stat/…/POWER)
        clock.advance(60)
        applied = await charger.apply(Command(charger_id="granny", current_a=(16, 16, 16)))
        assert applied.enabled is False  # still within min_off_s: stays off (OFF is repeated, never ON)
        await anyio.sleep(0.2)
        assert set(commands()) == {b"OFF"}
        clock.advance(241)
        assert (await charger.apply(Command(charger_id="granny", current_a=(16, 16, 16)))).enabled is True
        assert commands()[-1] == b"ON" and commands().count(b"ON") == 1
        tg.cancel_scope.cancel()
