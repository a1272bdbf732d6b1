"""W ↔ A conversions: exact decimal flooring, never above a limit, never rounded up to the minimum."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.conversion import current_from_power, fallback_current_a, floor_to, power_from_current
from bridge.model import Characteristics
from bridge.ports import Capabilities


@pytest.mark.parametrize(
    ("value", "resolution", "expected"),
    [(6.0, 0.1, 6.0), (6.0, 1.0, 6.0), (6.09, 0.1, 6.0), (7.3, 0.1, 7.3), (0.3, 0.1, 0.3), (15.99, 1, 15)],
)
def test_floor_to_is_exact_at_multiples(value: float, resolution: float, expected: float) -> None:
    # 0.3 / 0.1 is 2.9999999999999996 in floats; 7.3 / 0.1 is 72.99999999999999
    assert floor_to(value, resolution) == expected


@pytest.mark.parametrize(
    ("watts", "phases", "resolution", "expected"),
    [
        (4200, 3, 1.0, 6),  # 4200 / 690 = 6.087
        (4140, 3, 1.0, 6),  # exactly 6 A
        (4140, 3, 0.1, 6.0),  # must stay 6.0, not 5.9
        (4139, 3, 1.0, 5),
        (11_000, 3, 1.0, 15),
        (7_000, 1, 1.0, 30),
        (1679, 1, 0.1, 7.3),  # exactly 7.3 A: stays 7.3 (floats give 72.99999… steps)
        (1678, 1, 0.1, 7.2),  # 7.2956… → 7.2
        (1678, 1, 0.01, 7.29),
        (0, 3, 1.0, 0),
        (-5, 3, 1.0, 0),
    ],
)
def test_current_from_power_rounds_down(watts: float, phases: int, resolution: float, expected: float) -> None:
    assert current_from_power(watts, phases, 230, resolution) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=0, max_value=100_000, allow_nan=False),
    st.sampled_from([1, 2, 3]),
    st.sampled_from([220.0, 230.0, 240.0, 120.0]),
    st.sampled_from([1.0, 0.5, 0.1, 0.01, 0.001]),
)
def test_current_from_power_never_exceeds_the_power_and_loses_less_than_one_step(
    watts: float, phases: int, volts: float, resolution: float
) -> None:
    amps = current_from_power(watts, phases, volts, resolution)
    exact = Decimal(repr(watts)) / (Decimal(phases) * Decimal(repr(volts)))
    got = Decimal(repr(amps))
    assert got <= exact  # never above the limit, checked exactly
    assert exact - got < Decimal(repr(resolution))
    assert (got / Decimal(repr(resolution))) % 1 == 0  # a whole number of steps


def test_power_from_current() -> None:
    assert power_from_current(6, 3, 230) == 4140
    assert power_from_current(16, 3, 230) == 11_040
    assert power_from_current(0.1, 1, 230) == 23


def test_fallback_current_is_failsafe_limit_in_amps() -> None:
    ch = Characteristics(phases_installed=3, max_current_a=16, min_current_a=6)
    assert fallback_current_a(4200, ch) == 6
    assert fallback_current_a(4139, ch) == 0  # below the minimum: pause, never 6 A
    assert fallback_current_a(0, ch) == 0
    assert fallback_current_a(1e6, ch) == 16  # never above the rating
    assert fallback_current_a(4200, Capabilities(characteristics=ch)) == 6
    assert fallback_current_a(4200, ch, phases=1) == 16  # 18 A capped at the rating
    assert fallback_current_a(4320, ch, nominal_voltage_v=240) == 6
    assert fallback_current_a(4319, ch, nominal_voltage_v=240) == 0
    fine = Characteristics(phases_installed=1, max_current_a=32, min_current_a=6, current_resolution_a=0.1)
    assert fallback_current_a(1679, fine) == 7.3
    assert fallback_current_a(1678, fine) == 7.2
