"""Property tests of the pure register codec, checked against the simulator's independent `struct` encoder."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.modbus import codec
from adapters.modbus.mapping import Mapping, Point, PointName
from adapters.sim.modbus_server import sim_words

RANGES = {
    "u16": (0, 2**16 - 1),
    "s16": (-(2**15), 2**15 - 1),
    "u32": (0, 2**32 - 1),
    "s32": (-(2**31), 2**31 - 1),
    "u64": (0, 2**64 - 1),
    "s64": (-(2**63), 2**63 - 1),
}
SCALES = [1.0, 0.1, 0.01, 0.001, 0.06, 10.0, 100.0]
orders = st.sampled_from(["big", "little"])


def make(type_: str, scale: float, word_order: str, byte_order: str) -> tuple[Mapping, Point]:
    point = Point(address=10, type=type_, scale=scale, access="rw")  # type: ignore[arg-type]
    mapping = Mapping(
        vendor="t", model="t", word_order=word_order, byte_order=byte_order, points={PointName.SET_CURRENT: point}
    )  # type: ignore[arg-type]
    return mapping, point


@st.composite
def int_case(draw: st.DrawFn) -> tuple[Mapping, Point, int]:
    type_ = draw(st.sampled_from(sorted(RANGES)))
    mapping, point = make(type_, draw(st.sampled_from(SCALES)), draw(orders), draw(orders))
    lo, hi = RANGES[type_]
    return mapping, point, draw(st.integers(lo, hi))


@given(int_case())
def test_raw_integers_decode_like_the_independent_encoder(case: tuple[Mapping, Point, int]) -> None:
    mapping, point, raw = case
    words = sim_words(point.model_copy(update={"scale": 1.0}), mapping, raw)  # raw words, built with struct
    assert all(0 <= w <= 0xFFFF for w in words) and len(words) == point.words
    assert codec.decode_raw(mapping, point, words) == raw
    assert codec.decode(mapping, point, words) == pytest.approx(raw * point.scale, rel=1e-12, abs=1e-12)


@given(int_case())
def test_every_word_pattern_survives_decode_then_encode(case: tuple[Mapping, Point, int]) -> None:
    mapping, point, raw = case
    words = sim_words(point.model_copy(update={"scale": 1.0}), mapping, raw)
    unscaled = point.model_copy(update={"scale": 1.0})
    assert codec.encode(mapping, unscaled, codec.decode(mapping, unscaled, words)) == words  # type: ignore[arg-type]


@given(
    st.sampled_from(["u16", "u32"]),
    st.sampled_from(SCALES),
    orders,
    orders,
    st.floats(min_value=0, max_value=60_000, allow_nan=False),
)
def test_writes_never_exceed_the_value_and_lose_less_than_one_step(
    type_: str, scale: float, word_order: str, byte_order: str, value: float
) -> None:
    mapping, point = make(type_, scale, word_order, byte_order)
    if value / scale > RANGES[type_][1]:
        return
    written = codec.decode(mapping, point, codec.encode(mapping, point, value))
    assert isinstance(written, float | int)
    assert written <= value + 1e-9 * max(1.0, value)  # the safe side: never above the limit
    assert value - written < scale + 1e-9 * max(1.0, value)


@given(st.sampled_from(["f32", "f64"]), orders, orders, st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_floats_round_trip_in_both_word_orders(type_: str, word_order: str, byte_order: str, value: float) -> None:
    mapping, point = make(type_, 1.0, word_order, byte_order)
    words = codec.encode(mapping, point, value)
    assert words == sim_words(point, mapping, value)
    assert codec.decode(mapping, point, words) == value


def test_float_nan_reads_as_no_value() -> None:
    mapping, point = make("f32", 1.0, "little", "big")
    nan = list(struct.unpack(">HH", struct.pack(">f", math.nan)))[::-1]
    assert codec.decode(mapping, point, nan) is None
