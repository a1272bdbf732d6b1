"""Every mapping file validates, and every point round-trips between the simulator and the adapter.

The simulator encodes with its own code (`sim_words`), the adapter decodes
with `adapters.modbus.codec`: values must agree, raw words are asserted, and
writes are checked as the words that arrive at the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.modbus import codec
from adapters.modbus.factory import ModbusFactory
from adapters.modbus.mapping import Mapping, Point, PointName, Table, available_mappings, load_mapping, mapping_schema
from adapters.sim.modbus_server import ModbusWallboxSim, sim_words
from bridge.clock import FakeClock
from bridge.errors import MappingError
from bridge.model import Command, LimitSource
from bridge.ports import AdapterDeps

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = available_mappings()


def sample_value(point: Point) -> float | int | str:
    if point.type == "string":
        return "EVB1"
    if point.table in (Table.COIL, Table.DISCRETE):
        return 1
    steps = {
        "u16": 1234,
        "s16": -123,
        "bitfield": 5,
        "u32": 123_456,
        "s32": -123_456,
        "u64": 2**40 + 7,
        "s64": -(2**33),
        "f32": 230.5,
        "f64": 12345.25,
    }
    return steps[point.type] * point.scale if point.type not in ("f32", "f64") else steps[point.type]


def test_at_least_fifteen_vendor_maps_and_schema_file_is_current() -> None:
    assert len(MAPPINGS) >= 15
    schema_path = ROOT / "mappings" / "modbus.schema.json"
    assert json.loads(schema_path.read_text()) == mapping_schema(), "regenerate: python -m adapters.modbus.schema"


@pytest.mark.parametrize("name", MAPPINGS)
def test_every_point_round_trips_through_the_codec(name: str) -> None:
    m: Mapping = load_mapping(name)
    assert m.sources and all(p.source in m.sources for p in m.points.values() if p.source)
    for point_name, point in m.points.items():
        if point.enum:
            for label in set(point.enum.values()):
                raw = next(k for k, v in point.enum.items() if v == label)
                words = sim_words(point, m, raw if isinstance(raw, str) else raw * point.scale)
                assert codec.decode(m, point, words) == label, (point_name, label)
            continue
        value = sample_value(point)
        words = sim_words(point, m, value)
        assert len(words) == point.words
        decoded = codec.decode(m, point, words)
        if isinstance(value, str):
            assert decoded == value
        else:
            assert decoded == pytest.approx(value, rel=1e-6), point_name
        if point.writable:
            assert codec.encode(m, point, value) == words, point_name


@pytest.mark.anyio
@pytest.mark.parametrize("name", MAPPINGS)
async def test_adapter_reads_and_controls_every_map_over_the_wire(name: str, tmp_path: Path) -> None:
    clock = FakeClock()
    m = load_mapping(name)
    async with ModbusWallboxSim(m, clock) as sim, ModbusFactory(AdapterDeps(clock, tmp_path)) as factory:
        options = factory.validate_options(
            {"mapping": name, "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}
        )
        charger = factory.create("c", options)
        power_control = PointName.SET_CURRENT not in m.points
        # whole steps of every map's register (ABL: 0.06 A; Compleo: 100 W, 10 A x 690 V = 6900 W)
        amps = 10.0 if power_control else 12.0
        watts = amps * 230 * m.limits.phases
        command = (
            Command(charger_id="c", power_w=watts, binding=LimitSource.LPC)
            if power_control
            else Command(charger_id="c", current_a=(amps, amps, amps), binding=LimitSource.LPC)
        )
        await charger.apply(command)
        point = m.points[PointName.SET_POWER if power_control else PointName.SET_CURRENT]
        unit = m.unit_of(point)
        raw = [sim.registers[(unit, point.table, point.address + i)] for i in range(point.words)]
        assert raw == sim_words(point, m, watts if power_control else amps)
        clock.advance(3)
        snap = await charger.read()
        assert snap.ev_connected in (True, None)
        if PointName.POWER in m.points:
            assert snap.measurement.power_w == pytest.approx(watts, abs=2)
        if PointName.CURRENT_L1 in m.points:
            assert snap.measurement.current_per_phase_a[0] == pytest.approx(amps, abs=0.01)  # type: ignore[index]
        assert sim.physics is not None and sim.physics.power_w == pytest.approx(watts, abs=2)
        await charger.keep_alive()
        await charger.apply(Command(charger_id="c", pause=True, binding=LimitSource.LPC))
        clock.advance(3)
        snap = await charger.read()
        assert sim.physics.power_w == pytest.approx(0, abs=1)
        if PointName.POWER in m.points:
            assert snap.measurement.power_w == pytest.approx(0, abs=1)


@pytest.mark.anyio
@pytest.mark.parametrize("name", MAPPINGS)
async def test_every_point_round_trips_through_the_adapter_over_the_wire(name: str, tmp_path: Path) -> None:
    """Registers planted in the simulator (its own encoder) read back through the adapter; writes land as words."""
    clock = FakeClock()
    m = load_mapping(name)
    async with ModbusWallboxSim(m, clock) as sim, ModbusFactory(AdapterDeps(clock, tmp_path)) as factory:
        sim.faults.frozen = True
        charger = factory.create(
            "c",
            factory.validate_options({"mapping": name, "host": "127.0.0.1", "port": sim.port, "min_interval_ms": 0}),
        )
        for point_name, point in m.points.items():
            unit = m.unit_of(point)
            samples: list[float | int | str] = sorted(set(point.enum.values())) if point.enum else [sample_value(point)]
            for value in samples:
                raw: float | int | str = value
                if point.enum:
                    raw = next(k for k, v in point.enum.items() if v == value)
                    raw = raw if isinstance(raw, str) else raw * point.scale
                words = sim_words(point, m, raw)
                if point.readable:
                    for i, word in enumerate(words):
                        sim.registers[(unit, point.table, point.address + i)] = word
                    got = await charger._read_point(point_name)
                    assert got == (value if isinstance(value, str) else pytest.approx(value, rel=1e-6)), point_name
                if point.writable:
                    for i in range(point.words):
                        sim.registers[(unit, point.table, point.address + i)] = 0
                    await charger._write_point(point_name, value, force=True)
                    on_wire = [sim.registers[(unit, point.table, point.address + i)] for i in range(point.words)]
                    assert on_wire == words, (point_name, value)


def test_wrong_mapping_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vendor: X\nmodel: Y\npoints:\n  set_current: {address: 5, type: u17, access: w}\n")
    with pytest.raises(MappingError) as info:
        load_mapping(str(bad))
    assert info.value.location == f"{bad}:4:29" and info.value.field == "points.set_current.type"
    with pytest.raises(MappingError, match="did you mean"):
        load_mapping("keba-p3O")


def test_quoted_enum_keys_on_a_numeric_point_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "quoted.yaml"
    bad.write_text(
        "vendor: X\nmodel: Y\npoints:\n  set_current: {address: 5, access: w}\n"
        "  status: {address: 6, enum: {'3': charging}}\n"
    )
    with pytest.raises(MappingError, match="must be numbers") as info:
        load_mapping(str(bad))
    assert info.value.location.startswith(f"{bad}:5:") and info.value.field == "points.status"
