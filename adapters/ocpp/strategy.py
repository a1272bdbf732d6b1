"""Pure decisions of the limit strategy: which profile to try, whether it took effect.

Inputs are the vendor mapping, what the charge point told us (max stack level,
units) and whether a transaction runs; outputs are ordered attempts and
verdicts.  The charger shell only executes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.ocpp.profiles import LimitValue, Unit
from adapters.ocpp.session import ChargePointConfig
from adapters.ocpp.vendor import Purpose, VendorProfile


@dataclass(frozen=True)
class Attempt:
    purpose: Purpose
    station_level: bool  # connector/EVSE 0 instead of the charger's own
    stack_level: int
    kind: Literal["Absolute", "Relative"]


def choose_unit(vendor: VendorProfile, config: ChargePointConfig) -> Unit:
    """The vendor file wins; else amps when the charge point takes amps (per-phase obligations map 1:1)."""
    if vendor.limit.unit != "auto":
        return vendor.limit.unit
    return "A" if "A" in config.units else "W"


def control_stack(vendor: VendorProfile, config: ChargePointConfig) -> int:
    if vendor.limit.stack_level != "auto":
        level = vendor.limit.stack_level
    elif config.max_stack_level is None:
        level = vendor.failsafe.stack_level + 1
    else:
        level = max(config.max_stack_level, 0)
    if config.max_stack_level is not None:
        level = min(level, config.max_stack_level)
    return level


def layered(vendor: VendorProfile, config: ChargePointConfig) -> bool:
    """True when a persistent fallback profile can sit below the live one (failsafe by validity)."""
    if not vendor.failsafe.enabled:
        return False
    stack = control_stack(vendor, config)
    if vendor.failsafe.purpose is Purpose.TX_DEFAULT and vendor.limit.purpose is Purpose.CHARGE_POINT_MAX:
        return True
    return stack > vendor.failsafe.stack_level


def attempts(vendor: VendorProfile, config: ChargePointConfig, tx_active: bool) -> list[Attempt]:
    """The vendor's preferred profile first, then the override chain of reference §8 (deduplicated)."""
    stack = control_stack(vendor, config)
    kind = vendor.limit.kind
    purpose = vendor.limit.purpose
    if purpose is Purpose.TX and not tx_active:
        purpose = Purpose.TX_DEFAULT  # a TxProfile without a transaction is rejected by spec (quirk 13)
    chain = [
        Attempt(purpose, purpose is Purpose.CHARGE_POINT_MAX, stack, kind),
        Attempt(purpose, purpose is Purpose.CHARGE_POINT_MAX, stack, "Relative"),
        Attempt(Purpose.TX_DEFAULT, False, stack, kind),
        Attempt(Purpose.TX_DEFAULT, False, stack, "Relative"),
        Attempt(Purpose.TX_DEFAULT, False, 0, "Relative"),
    ]
    if tx_active:
        chain.append(Attempt(Purpose.TX, False, stack, kind))
    seen: list[Attempt] = []
    for item in chain:
        if item not in seen:
            seen.append(item)
    return seen


def composite_effective(sent: LimitValue, got: LimitValue | None, voltage_v: float) -> bool | None:
    """None: cannot tell; True when the composite is at or below what we sent (lower is still safe)."""
    if got is None:
        return None
    margin = 0.05 if got.unit == "A" else 0.05 * voltage_v * got.phases
    if got.unit == sent.unit:
        return got.limit <= sent.limit + margin
    return got.as_current(voltage_v) <= sent.as_current(voltage_v) + 0.05


def meter_violates(limit_a: float, measured_max_a: float | None, tolerance_a: float) -> bool:
    """The EV draws more than the limit allows (quirks 9, 10, 17: Accepted but not applied)."""
    return measured_max_a is not None and measured_max_a > limit_a + tolerance_a
