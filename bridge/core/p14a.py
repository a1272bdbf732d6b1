"""German §14a EnWG minimum power (BNetzA BK6-22-300): use-cases.md §14, P14A-01..05.

The grid operator may dim a controllable device (SteuVE) but 4.2 kW must stay
available per device; with control via an EMS the sum over n devices must stay
at or above P_min = 4.2 kW + (n − 1) × GZF(n) × 4.2 kW.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bridge.model import P14A_DEFAULT_GZF, P14A_DEVICE_MINIMUM_W

LARGE_DEVICE_THRESHOLD_W = 11_000.0
DEFAULT_GZF: Mapping[int, float] = P14A_DEFAULT_GZF


class SteuveKind(StrEnum):
    CHARGING_POINT = "charging_point"
    HEAT_PUMP = "heat_pump"
    COOLING = "cooling"
    BATTERY = "battery"


def device_minimum_w(kind: SteuveKind, nominal_w: float) -> float:
    """4.2 kW, or 0.4 × nominal input for heat pumps/cooling above 11 kW (P14A-03)."""
    if kind in (SteuveKind.HEAT_PUMP, SteuveKind.COOLING) and nominal_w > LARGE_DEVICE_THRESHOLD_W:
        return 0.4 * nominal_w
    return P14A_DEVICE_MINIMUM_W


def gzf(n: int, table: Mapping[int, float] = DEFAULT_GZF) -> float:
    """Simultaneity factor for n devices (P14A-02).

    A configured table may be sparse: n uses the entry of the largest key ≤ n
    (n ≥ the largest key: that key's value), below the smallest key that key's
    value.  The factor falls with n, so a gap errs towards a higher minimum;
    an empty table counts every device fully (1.0).
    """
    if n < 2:
        return 0.0
    if not table:
        return 1.0
    below = [k for k in table if k <= n]
    return table[max(below)] if below else table[min(table)]


def p_min_14a(minimums_w: Sequence[float], table: Mapping[int, float] = DEFAULT_GZF) -> float:
    """Minimum total for n devices under one EMS signal (P14A-01).

    The largest device minimum counts fully, the others with GZF(n); with all
    devices at 4.2 kW this is 4.2 kW + (n − 1) × GZF(n) × 4.2 kW.
    """
    if not minimums_w:
        return 0.0
    ordered = sorted(minimums_w, reverse=True)
    return ordered[0] + gzf(len(ordered), table) * sum(ordered[1:])


@dataclass(frozen=True)
class P14aSettings:
    """§14a registration of the site; `floor` is off by default (P14A-04/05)."""

    enabled: bool = False
    floor: bool = False
    gzf_table: Mapping[int, float] = field(default_factory=lambda: dict(DEFAULT_GZF))
    #: minimums of all SteuVE behind the one EMS signal (other devices too, e.g. a heat pump)
    device_minimums_w: tuple[float, ...] = (P14A_DEVICE_MINIMUM_W,)

    @property
    def minimum_w(self) -> float:
        return p_min_14a(self.device_minimums_w, self.gzf_table)
