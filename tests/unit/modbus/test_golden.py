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


def test_abl_duty_cycle_masked_state_and_no_data_sentinel() -> None:
    # 0x0014: PWM duty in 0.1 %, raw = A / 0.06: 16 A → 266.67 → 266 (rounded down), 6 A → 100
    assert encode("abl-emh", PointName.SET_CURRENT, 16) == [266]
    assert encode("abl-emh", PointName.SET_CURRENT, 6) == [100]
    assert decode("abl-emh", PointName.SET_CURRENT, [266]) == pytest.approx(15.96)
    # 0x0004: state in the low byte; the high byte does not matter
    assert decode("abl-emh", PointName.STATUS, [0x01C2]) == "charging"
    assert decode("abl-emh", PointName.STATUS, [0x00F4]) == "fault"  # upstream communication timeout
    assert decode("abl-emh", PointName.PLUG, [0x00A1]) == "disconnected"
    assert decode("abl-emh", PointName.PLUG, [0x00B2]) == "connected"
    # currents in 0.1 A; 0x03E8 means "no value", not 100 A
    assert decode("abl-emh", PointName.CURRENT_L1, [160]) == pytest.approx(16.0)
    assert decode("abl-emh", PointName.CURRENT_L1, [0x03E8]) is None
    # enable: 0xE0E0 disables the outlet, 0xA1A1 releases it
    assert encode("abl-emh", PointName.ENABLE, "disable") == [0xE0E0]  # type: ignore[arg-type]
    assert encode("abl-emh", PointName.ENABLE, "enable") == [0xA1A1]  # type: ignore[arg-type]


def test_compleo_power_in_100_w_steps_and_status_bits() -> None:
    # 0x0100 max power in 100 W: 11,040 W → 110 (rounded down to 11,000 W), 6,900 W → 69
    assert encode("compleo-solo", PointName.SET_POWER, 11_040) == [110]
    assert encode("compleo-solo", PointName.SET_POWER, 6_900) == [69]
    assert decode("compleo-solo", PointName.POWER, [69]) == 6_900
    # 0x0101 bit 0 vehicle, bit 1 charging
    assert decode("compleo-solo", PointName.STATUS, [0b11]) == "charging"
    assert decode("compleo-solo", PointName.STATUS, [0b01]) == "suspended_evse"
    assert decode("compleo-solo", PointName.STATUS, [0b00]) == "idle"
    assert decode("compleo-solo", PointName.PLUG, [0b11]) == "connected"
    assert decode("compleo-solo", PointName.PLUG, [0b10]) == "disconnected"


def test_phoenix_em_low_word_first_and_hundredths_of_kw() -> None:
    # 120 s32 in 0.01 kW, low word first: 1104 = 0x0000_0450 → [0x0450, 0x0000] → 11,040 W
    assert decode("phoenix-em-cp-pp-eth", PointName.POWER, [0x0450, 0x0000]) == pytest.approx(11_040)
    # 114 s32 mA: 16,000 = 0x0000_3E80
    assert decode("phoenix-em-cp-pp-eth", PointName.CURRENT_L1, [0x3E80, 0x0000]) == pytest.approx(16.0)
    # 128 u32 in 0.01 kWh: 100,000 = 0x0001_86A0 → [0x86A0, 0x0001] → 1,000,000 Wh
    assert decode("phoenix-em-cp-pp-eth", PointName.ENERGY, [0x86A0, 0x0001]) == pytest.approx(1_000_000)
    # 100: 'C' (0x43) in the low byte
    assert decode("phoenix-em-cp-pp-eth", PointName.STATUS, [0x0043]) == "charging"
