"""Small builders shared by the allocator tests."""

from __future__ import annotations

from bridge.core.allocator import ChargerDemand, Constraint
from bridge.model import Characteristics, LimitCategory, LimitSource
from bridge.ports import Capabilities, ControlMode


def caps(
    phases: int = 3,
    max_a: float = 16,
    min_a: float = 6,
    resolution: float = 1.0,
    switching: bool = False,
    control: ControlMode = ControlMode.CURRENT,
) -> Capabilities:
    return Capabilities(
        control=control,
        characteristics=Characteristics(
            phases_installed=phases,  # type: ignore[arg-type]
            max_current_a=max_a,
            min_current_a=min_a,
            current_resolution_a=resolution,
            phase_switching=switching,
        ),
    )


def lpc(watts: float, source: LimitSource = LimitSource.LPC) -> Constraint:
    return Constraint(source, power_w=watts)


def opev(*amps: float | None) -> Constraint:
    padded = (*amps, None, None, None)[:3]
    return Constraint(LimitSource.OPEV, current_a=padded)  # type: ignore[arg-type]


def oscev(*amps: float | None) -> Constraint:
    padded = (*amps, None, None, None)[:3]
    return Constraint(LimitSource.OSCEV, LimitCategory.RECOMMENDATION, current_a=padded)  # type: ignore[arg-type]


def demand(cid: str = "c1", *constraints: Constraint, **cap_kw: object) -> ChargerDemand:
    return ChargerDemand(cid, caps(**cap_kw), tuple(constraints))  # type: ignore[arg-type]
