"""Strategy decisions and vendor mapping files (schema, file:line errors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.ocpp import strategy
from adapters.ocpp.profiles import LimitValue
from adapters.ocpp.session import ChargePointConfig, _units
from adapters.ocpp.vendor import GENERIC, MAPPINGS_DIR, Purpose, load_vendor_profile, parse_vendor_profile
from bridge.errors import MappingError


def test_units_accept_both_spellings() -> None:
    assert _units("Current,Power") == ("A", "W")
    assert _units("W") == ("W",)
    assert strategy.choose_unit(GENERIC, ChargePointConfig(units=("W",))) == "W"
    assert strategy.choose_unit(GENERIC, ChargePointConfig(units=("A", "W"))) == "A"


def test_stack_and_layering() -> None:
    assert strategy.control_stack(GENERIC, ChargePointConfig(max_stack_level=None)) == 1
    assert strategy.control_stack(GENERIC, ChargePointConfig(max_stack_level=8)) == 8
    zero = ChargePointConfig(max_stack_level=0)
    assert strategy.control_stack(GENERIC, zero) == 0 and not strategy.layered(GENERIC, zero)
    assert strategy.layered(GENERIC, ChargePointConfig(max_stack_level=3))


def test_attempt_chain() -> None:
    vendor = GENERIC.model_copy(update={"limit": GENERIC.limit.model_copy(update={"purpose": Purpose.TX})})
    chain = strategy.attempts(vendor, ChargePointConfig(max_stack_level=4), tx_active=False)
    assert chain[0].purpose is Purpose.TX_DEFAULT and all(a.purpose is not Purpose.TX for a in chain)
    chain = strategy.attempts(vendor, ChargePointConfig(max_stack_level=4), tx_active=True)
    assert chain[0].purpose is Purpose.TX and len(chain) == len(set(chain))
    assert chain[-1] == strategy.Attempt(Purpose.TX, False, 4, "Absolute") or chain[0].purpose is Purpose.TX


def test_composite_and_meter_verdicts() -> None:
    sent = LimitValue("A", 10.0, 3)
    assert strategy.composite_effective(sent, LimitValue("A", 10.0, 3), 230) is True
    assert strategy.composite_effective(sent, LimitValue("A", 6.0, 3), 230) is True  # lower is still safe
    assert strategy.composite_effective(sent, LimitValue("A", 32.0, 3), 230) is False
    assert strategy.composite_effective(sent, LimitValue("W", 6900.0, 3), 230) is True
    assert strategy.composite_effective(sent, None, 230) is None
    assert strategy.meter_violates(10.0, 12.0, 1.0) and not strategy.meter_violates(10.0, 10.9, 1.0)
    assert not strategy.meter_violates(10.0, None, 1.0)


def test_bundled_mappings_load() -> None:
    names = sorted(p.stem for p in (MAPPINGS_DIR / "ocpp").glob("*.yaml"))
    assert "generic" in names and len(names) >= 5
    for name in names:
        assert load_vendor_profile(name).vendor == name


@pytest.mark.parametrize(
    ("text", "location", "field"),
    [
        ("vendor: x\nlimit:\n  unit: kW\n", "bad.yaml:3:3", "limit.unit"),
        ("vendor: x\nverify:\n  retries: 9\n", "bad.yaml:3:3", "verify.retries"),
        ("vendor: x\nlimits: {}\n", "bad.yaml:2:1", "limits"),
        ("limit: {}\n", "bad.yaml:1:1", ""),
    ],
)
def test_bad_mapping_has_file_line_and_field(text: str, location: str, field: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_vendor_profile(text, "bad.yaml")
    assert info.value.location == location
    assert info.value.field == field


def test_unknown_vendor_profile(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="no OCPP vendor profile 'nope'"):
        load_vendor_profile("nope", (tmp_path,))
