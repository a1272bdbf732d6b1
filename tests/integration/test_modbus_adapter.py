"""The Modbus adapter against the wire simulator on loopback: read, control, watchdog, chaos."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml

from adapters.modbus.factory import ModbusFactory
from adapters.modbus.mapping import PointName, load_mapping, resolve_mapping_path
from adapters.sim.modbus_server import ModbusWallboxSim
from bridge.clock import FakeClock
from bridge.errors import ChargerRejected, ChargerUnreachable, ConfigError
from bridge.model import ChargingState, Command, LimitSource
from bridge.ports import AdapterDeps, WatchdogKind

pytestmark = pytest.mark.anyio


def cmd(amps: float | None = None, pause: bool = False) -> Command:
    current = None if amps is None else (amps, amps, amps)
    return Command(charger_id="kb", current_a=current, pause=pause, binding=LimitSource.LPC, reason="test")


async def test_keba_read_control_and_keep_alive(tmp_path: Path) -> None:
    clock = FakeClock()
    mapping = load_mapping("keba-p30")
    async with ModbusWallboxSim(mapping, clock) as sim, ModbusFactory(AdapterDeps(clock, tmp_path)) as factory:
        options = factory.validate_options(
            {"type": "modbus", "mapping": "keba-p30", "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
        )
        charger = factory.create("kb", options)
        assert charger.capabilities.watchdog.kind is WatchdogKind.CHARGER
        clock.advance(2)
        snap = await charger.read()
        assert snap.ev_connected is True and snap.charging_state is ChargingState.CHARGING
        assert (
            snap.manufacturer.vendor == "KEBA" and snap.manufacturer.serial == "22041234"
        )  # u32 serial of a string sim serial
        applied = await charger.apply(cmd(10))
        assert applied.current_a == 10
        assert ("set_current", 10.0) in sim.writes and ("enable", 1.0) in sim.writes
        clock.advance(5)
        snap = await charger.read()
        assert snap.measurement.power_w == pytest.approx(10 * 3 * 230)
        assert snap.measurement.current_per_phase_a == (10, 10, 10)
        # writes only on change
        before = len(sim.writes)
        await charger.apply(cmd(10))
        assert len(sim.writes) == before
        await charger.set_fallback_current(6)
        assert ("failsafe_current", 6.0) in sim.writes
        # keep-alive writes the watchdog register every time
        await charger.keep_alive()
        await charger.keep_alive()
        assert sum(1 for name, _ in sim.writes if name == "watchdog") == 2
        # pause disables the box
        await charger.apply(cmd(pause=True))
        clock.advance(2)
        snap = await charger.read()
        assert snap.measurement.power_w == 0 and ("enable", 0.0) in sim.writes


async def test_keba_watchdog_falls_back_when_not_refreshed(tmp_path: Path) -> None:
    clock = FakeClock()
    async with (
        ModbusWallboxSim(load_mapping("keba-p30"), clock) as sim,
        ModbusFactory(AdapterDeps(clock, tmp_path)) as factory,
    ):
        charger = factory.create(
            "kb",
            factory.validate_options(
                {"mapping": "keba-p30", "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
            ),
        )
        await charger.set_fallback_current(6)
        await charger.keep_alive()
        await charger.apply(cmd(16))
        clock.advance(50)
        await charger.keep_alive()
        clock.advance(50)
        assert (await charger.read()).measurement.current_per_phase_a == (16, 16, 16)
        clock.advance(61)  # no keep-alive for longer than the 60 s timeout
        assert (await charger.read()).measurement.current_per_phase_a == (6, 6, 6)


async def test_chaos_exceptions_slow_answers_and_dropped_connections(tmp_path: Path) -> None:
    clock = FakeClock()
    async with (
        ModbusWallboxSim(load_mapping("keba-p30"), clock) as sim,
        ModbusFactory(AdapterDeps(clock, tmp_path)) as factory,
    ):
        options = factory.validate_options(
            {"mapping": "keba-p30", "host": "127.0.0.1", "port": sim.port, "timeout_s": 0.5, "min_interval_ms": 0}
        )
        charger = factory.create("kb", options)
        await charger.read()
        sim.faults.exception_code = 4
        with pytest.raises(ChargerRejected, match="device failure"):
            await charger.read()
        sim.faults.exception_code = None
        await charger.read()
        await sim.drop_connections()
        with pytest.raises(ChargerUnreachable):
            await charger.read()
        clock.advance(5)  # past the reconnect backoff
        await charger.read()
        sim.faults.refuse = True
        await sim.drop_connections()
        clock.advance(5)
        with pytest.raises(ChargerUnreachable):
            await charger.read()
        sim.faults.refuse = False
        clock.advance(60)
        snap = await charger.read()
        assert snap.available
        # a box that answers too slowly: the request times out, the link is dropped and rebuilt
        sim.faults.delay_s = 10.0  # on the box's (fake) clock: it never answers within our 0.5 s
        with pytest.raises(ChargerUnreachable, match="no answer"):
            await charger.read()
        sim.faults.delay_s = 0.0
        clock.advance(15)  # lets the stuck answer go out and the reconnect backoff pass
        assert (await charger.read()).available


async def test_single_connection_quirk_is_respected_by_sharing_one_endpoint(tmp_path: Path) -> None:
    clock = FakeClock()
    mapping = load_mapping("keba-p30")
    assert mapping.connection.single_connection
    async with ModbusWallboxSim(mapping, clock) as sim, ModbusFactory(AdapterDeps(clock, tmp_path)) as factory:
        a = factory.create(
            "a",
            factory.validate_options(
                {"mapping": "keba-p30", "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
            ),
        )
        b = factory.create(
            "b",
            factory.validate_options(
                {"mapping": "keba-p30", "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
            ),
        )
        assert a.endpoint is b.endpoint
        async with anyio.create_task_group() as tg:
            for charger in (a, b, a, b):
                tg.start_soon(charger.read)
        assert sim.requests > 0
        assert PointName.SET_CURRENT in mapping.points


async def test_map_without_watchdog_says_so_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    async with ModbusFactory(AdapterDeps(clock, tmp_path)) as factory:
        with caplog.at_level("WARNING", logger="adapters.modbus.adapter"):
            charger = factory.create("px", factory.validate_options({"mapping": "phoenix-ev-cc", "host": "127.0.0.1"}))
    assert charger.capabilities.watchdog.kind is WatchdogKind.NONE
    messages = [r.getMessage() for r in caplog.records]
    assert any("watchdog: none" in m and "keeps its last current" in m for m in messages)


async def test_eeprom_register_raised_at_most_once_a_minute_lowered_at_once(tmp_path: Path) -> None:
    doc = yaml.safe_load(resolve_mapping_path("keba-p30").read_text())
    doc["points"]["set_current"]["eeprom"] = True
    path = tmp_path / "keba-eeprom.yaml"
    path.write_text(yaml.safe_dump(doc))
    clock = FakeClock()
    async with (
        ModbusWallboxSim(load_mapping(str(path)), clock) as sim,
        ModbusFactory(AdapterDeps(clock, tmp_path)) as factory,
    ):
        charger = factory.create(
            "kb",
            factory.validate_options(
                {"mapping": str(path), "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
            ),
        )

        def currents() -> list[float]:
            return [v for name, v in sim.writes if name == "set_current"]

        await charger.apply(cmd(10))
        clock.advance(1)
        applied = await charger.apply(cmd(16))  # raising within the minute waits
        assert currents() == [10.0] and applied.current_a != 16
        await charger.apply(cmd(8))  # lowering (the safe direction) is never delayed
        assert currents() == [10.0, 8.0]
        await charger.apply(cmd(16))
        clock.advance(30)
        await charger.read()
        assert currents() == [10.0, 8.0]
        clock.advance(31)  # a minute after the last write: the pending value goes out with the next poll
        await charger.read()
        assert currents() == [10.0, 8.0, 16.0]
        await charger.read()
        assert currents() == [10.0, 8.0, 16.0]


@pytest.mark.parametrize(("name", "unit", "address_offset"), [("alfen-eve", 2, 0), ("etrel-inch", 1, 100)])
async def test_second_socket_of_a_station_is_its_own_charger(
    name: str, unit: int, address_offset: int, tmp_path: Path
) -> None:
    clock = FakeClock()
    mapping = load_mapping(name)
    async with (
        ModbusWallboxSim(mapping, clock, socket=2) as sim,
        ModbusFactory(AdapterDeps(clock, tmp_path)) as factory,
    ):
        options = {"mapping": name, "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
        second = factory.create("s2", factory.validate_options({**options, "socket": 2}))
        await second.apply(cmd(12))
        point = mapping.points[PointName.SET_CURRENT]
        assert (unit, point.table, point.address + address_offset) in sim.registers
        clock.advance(3)
        assert (await second.read()).measurement.current_per_phase_a == pytest.approx((12, 12, 12))
        first = factory.create("s1", factory.validate_options(options))
        with pytest.raises(ChargerRejected, match="illegal data address"):
            await first.read()  # socket 1 is not served by this simulated box: a different unit/address
        with pytest.raises(ConfigError, match="socket"):
            factory.validate_options({**options, "socket": 3})


async def test_site_mapping_directory_is_searched_before_the_bundled_maps(tmp_path: Path) -> None:
    site = tmp_path / "maps"
    site.mkdir()
    text = resolve_mapping_path("keba-p30").read_text()
    (site / "my-box.yaml").write_text(text.replace("vendor: KEBA", "vendor: Own"))
    async with ModbusFactory(AdapterDeps(FakeClock(), tmp_path, mapping_dirs=(site,))) as factory:
        charger = factory.create("own", factory.validate_options({"mapping": "my-box", "host": "127.0.0.1"}))
        assert charger.mapping.vendor == "Own"
