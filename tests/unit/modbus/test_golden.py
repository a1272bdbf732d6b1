"""Golden register words built by hand from shared/reference/register-maps, with hand-computed values."""

from __future__ import annotations

import pytest

from adapters.modbus import codec
from adapters.modbus.mapping import PointName, load_mapping


def decode(mapping_name: str, point: PointName, words: list[int]):  # type: ignore[no-untyped-def]
    m = load_mapping(mapping_name)
    return codec.decode(m, m.points[point], words)


def encode(mapping_name: str, point: PointName, value: float) -> list[int]:
    m = load_mapping(mapping_name)
    return codec.encode(m, m.points[point], value)


def test_keba_power_in_mw_energy_in_tenth_wh_and_set_current_in_ma() -> None:
    # 1020..1021 u32 big-endian mW: 0x0001_0DB0 = 69,040 mW = 69.04 W
    assert decode("keba-p30", PointName.POWER, [0x0001, 0x0DB0]) == pytest.approx(69.04)
    # 11 kW = 11,000,000 mW = 0x00A7_D8C0
    assert decode("keba-p30", PointName.POWER, [0x00A7, 0xD8C0]) == pytest.approx(11_000)
    # 1036 u32 in 0.1 Wh: 123,456 → 12,345.6 Wh
    assert decode("keba-p30", PointName.ENERGY, [0x0001, 0xE240]) == pytest.approx(12_345.6)
    # plug 7 = cable at station and EV, locked
    assert decode("keba-p30", PointName.PLUG, [0, 7]) == "connected"
    assert decode("keba-p30", PointName.STATUS, [0, 3]) == "charging"
    # 5004 u16 in mA: 16 A → 16,000; 6.0005 A rounds down to 6,000 (never above the limit)
    assert encode("keba-p30", PointName.SET_CURRENT, 16) == [16_000]
    assert encode("keba-p30", PointName.SET_CURRENT, 6.0009) == [6_000]


def test_heidelberg_tenths_of_amps_on_input_registers() -> None:
    assert decode("heidelberg-energy-control", PointName.CURRENT_L1, [160]) == pytest.approx(16.0)
    assert decode("heidelberg-energy-control", PointName.STATUS, [7]) == "charging"
    assert decode("heidelberg-energy-control", PointName.PLUG, [3]) == "disconnected"
    # 17..18 u32 Wh: 0x0002_0000 = 131,072 Wh
    assert decode("heidelberg-energy-control", PointName.ENERGY, [0x0002, 0x0000]) == 131_072
    # 261 u16 in 0.1 A: 10.69 A → 106 (rounded down), 16 A → 160
    assert encode("heidelberg-energy-control", PointName.SET_CURRENT, 10.69) == [106]
    assert encode("heidelberg-energy-control", PointName.SET_CURRENT, 16) == [160]


def test_alfen_floats_doubles_and_ascii_state() -> None:
    # f32 230.5 V = 0x4366_8000
    assert decode("alfen-eve", PointName.VOLTAGE_L1, [0x4366, 0x8000]) == pytest.approx(230.5)
    # f64 1,000,000.5 Wh = 0x412E_8480_1000_0000
    assert decode("alfen-eve", PointName.ENERGY, [0x412E, 0x8480, 0x1000, 0x0000]) == pytest.approx(1_000_000.5)
    # status "C2" NUL-terminated in 5 registers: 'C' 0x43, '2' 0x32
    assert decode("alfen-eve", PointName.STATUS, [0x4332, 0, 0, 0, 0]) == "charging"
    assert decode("alfen-eve", PointName.PLUG, [0x4100, 0, 0, 0, 0]) == "disconnected"  # "A"
    # 1210 f32: 6.5 A = 0x40D0_0000, one FC16 write of both registers
    assert encode("alfen-eve", PointName.SET_CURRENT, 6.5) == [0x40D0, 0x0000]
    # NaN (unavailable register) is unknown, not a number
    assert decode("alfen-eve", PointName.CURRENT_L1, [0x7FC0, 0x0000]) is None


def test_word_order_little_swaps_registers() -> None:
    m = load_mapping("keba-p30")
    little = m.model_copy(update={"word_order": "little"})
    point = m.points[PointName.POWER]
    assert codec.decode(little, point, [0x0DB0, 0x0001]) == pytest.approx(69.04)
    assert codec.encode(little, point, 69.04) == [0x0DB0, 0x0001]
