"""Pure payload codec: property tests for scale/rounding, JSON paths, enums, templates and garbage input."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.mqtt.codec import PayloadError, decode, encode, extract, parse_payload, to_raw
from adapters.mqtt.mapping import Point, PointName, load_mapping

GOE = load_mapping("goe")
WARP = load_mapping("warp")


def point(**kw: object) -> Point:
    return Point.model_validate({"name": "power_w", "topic": "t", **kw})


def test_warp_current_scale_is_milliamps_both_ways() -> None:
    set_current = WARP.point(PointName.SET_CURRENT)
    assert set_current is not None
    assert encode(set_current, 16.0, {}) == b'{"current": 16000}'
    assert encode(set_current, 6.4999, {}) == b'{"current": 6499}'
    applied = WARP.point(PointName.APPLIED_CURRENT)
    assert applied is not None
    assert decode(applied, b'{"current": 16000}') == pytest.approx(16.0)


def test_goe_points() -> None:
    enable = GOE.point(PointName.ENABLE)
    phases = GOE.point(PointName.SET_PHASES)
    amp = GOE.point(PointName.SET_CURRENT)
    status = GOE.point(PointName.STATUS)
    power = GOE.point(PointName.POWER)
    assert enable and phases and amp and status and power
    assert encode(enable, True, {}) == b"2" and encode(enable, False, {}) == b"1"
    assert encode(phases, 1, {}) == b"1" and encode(phases, 3, {}) == b"2"
    with pytest.raises(PayloadError):
        encode(phases, 2, {})
    assert encode(amp, 10.99, {}) == b"10"  # never above the limit
    assert [decode(status, str(v).encode()) for v in range(6)] == ["unknown", "A", "C", "B", "suspended_ev", "F"]
    with pytest.raises(PayloadError):
        decode(status, b"9")
    nrg = [230, 231, 229, 0, 10, 10, 10, 2300, 2310, 2290, 0, 6900, 99, 99, 99, 0]
    assert decode(power, json.dumps(nrg).encode()) == 6900.0


@given(
    amps=st.floats(min_value=0, max_value=80, allow_nan=False),
    scale=st.sampled_from([1.0, 0.1, 0.01, 0.001, 10.0]),
)
def test_encode_rounds_down_and_decodes_back(amps: float, scale: float) -> None:
    p = point(name="set_current", access="w", scale=scale, template="{value_int}")
    raw = int(encode(p, amps, {}))
    back = raw * scale
    assert back <= amps + 1e-9 * max(1.0, amps)  # never above the commanded value
    assert amps - back < scale + 1e-9  # and at most one raw step below
    assert raw == to_raw(p, amps)


@given(st.binary(max_size=200), st.sampled_from(["json", "raw", "number", "bool"]))
def test_garbage_never_raises_anything_but_payload_error(payload: bytes, parse: str) -> None:
    p = point(parse=parse, path="$.a[1].b" if parse == "json" else None, enum={"1": "A"} if parse == "raw" else None)
    try:
        value = decode(p, payload)
    except PayloadError:
        return
    assert value is None or isinstance(value, float | str | bool)
    if isinstance(value, float):
        assert math.isfinite(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_json_path_subset_matches_python_indexing(doc: object) -> None:
    # walk a path that exists and check extract() finds the same object
    path, expected = "$", doc
    while isinstance(expected, dict | list) and expected:
        if isinstance(expected, dict):
            key = sorted(expected)[0]
            path, expected = f"{path}.{key}", expected[key]
        else:
            path, expected = f"{path}[{len(expected) - 1}]", expected[-1]
    assert extract(doc, path) == expected
    with pytest.raises(PayloadError):
        extract(doc, path + ".zz[7]")


def test_parse_modes() -> None:
    assert parse_payload(b" 12.5 ", "number") == 12.5
    assert parse_payload(b"ON", "bool") is True and parse_payload(b"off", "bool") is False
    assert parse_payload(b"Online", "raw") == "Online"
    for bad, mode in [(b"nan", "number"), (b"inf", "number"), (b"maybe", "bool"), (b"{", "json"), (b"\xff", "raw")]:
        with pytest.raises(PayloadError):
            parse_payload(bad, mode)
    with pytest.raises(PayloadError):
        parse_payload(b"1" * 70_000, "raw")


def test_numeric_text_and_null() -> None:
    p = point(unit="W", scale=1000)  # kWh on the wire as a JSON string
    assert decode(p, b'"1.5"') == 1500.0
    assert decode(p, b"null") is None
    with pytest.raises(PayloadError):
        decode(p, b'"abc"')
    with pytest.raises(PayloadError):
        decode(p, b"1e400")  # JSON parses to inf


def test_template_with_variables_and_onoff() -> None:
    p = point(name="switch", access="w", topic="cmnd/{topic}/POWER", template="{onoff}")
    assert encode(p, True, {"topic": "plug1"}) == b"ON" and encode(p, False, {}) == b"OFF"
    q = point(
        name="enable", access="w", template='{"state": "{value}"}', enum_write={True: "active", False: "disabled"}
    )
    assert encode(q, True, {}) == b'{"state": "active"}'
