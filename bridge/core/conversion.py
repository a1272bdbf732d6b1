"""W ↔ A conversions that round toward the safe side (never above a limit).

Decimal arithmetic, because 4200 / 690 in floats, or 6.0 A at 0.1 A
resolution, must not drift one step down or up.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from bridge.model import Characteristics
from bridge.ports import Capabilities


def _d(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def floor_to(value: float, resolution: float) -> float:
    """Round `value` down to a multiple of `resolution` (> 0)."""
    steps = (_d(value) / _d(resolution)).to_integral_value(rounding=ROUND_FLOOR)
    return float(steps * _d(resolution))


def current_from_power(power_w: float, phases: int, voltage_v: float, resolution_a: float) -> float:
    """I = P / (n × U_nom), rounded down to the charger's resolution (LPC-25)."""
    if power_w <= 0:
        return 0.0
    exact = _d(power_w) / (_d(phases) * _d(voltage_v))
    steps = (exact / _d(resolution_a)).to_integral_value(rounding=ROUND_FLOOR)
    return float(steps * _d(resolution_a))


def power_from_current(current_a: float, phases: int, voltage_v: float) -> float:
    """P = I × n × U_nom (what a current setpoint allows at most)."""
    return float(_d(current_a) * _d(phases) * _d(voltage_v))


def fallback_current_a(
    failsafe_w: float,
    charger: Characteristics | Capabilities,
    phases: int | None = None,
    nominal_voltage_v: float | None = None,
) -> float:
    """The current a charger's own watchdog falls back to: the failsafe limit in A, 0 below the minimum (LPC-42).

    `phases` defaults to the installed phases: the watchdog does not switch
    phases, so a 3p-capable charger must be assumed to draw on all three.
    Pass the site's `nominal_voltage_v` (as the allocator uses); without it
    the charger's own nominal voltage is used.  Never above the rating.
    """
    ch = charger.characteristics if isinstance(charger, Capabilities) else charger
    n = phases or ch.phases_installed
    u = nominal_voltage_v if nominal_voltage_v is not None else ch.nominal_voltage_v
    amps = current_from_power(failsafe_w, n, u, ch.current_resolution_a)
    amps = min(amps, floor_to(ch.max_current_a, ch.current_resolution_a))
    return amps if amps >= ch.min_current_a else 0.0
