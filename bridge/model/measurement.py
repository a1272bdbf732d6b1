"""UCF AC_Measurement: power, energy, current, voltage, frequency in SI units."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bridge.model.units import Amperes, Hertz, Percent, Volts, WattHours, Watts


class ValueSource(StrEnum):
    """Whether a value was metered or computed (MPC-07)."""

    MEASURED = "measuredValue"
    CALCULATED = "calculatedValue"


PhaseTriple = tuple[float | None, float | None, float | None]


class AcMeasurement(BaseModel):
    """One consistent reading of a charge point's meter.

    `None` means "not known" (never 0 for unknown).  Per-phase tuples are
    (L1, L2, L3).  Consumption is positive (GEN-08).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    power_w: Watts | None = None
    power_source: ValueSource = ValueSource.MEASURED
    power_per_phase_w: PhaseTriple | None = None
    power_per_phase_source: ValueSource = ValueSource.MEASURED
    current_per_phase_a: PhaseTriple | None = None
    voltage_per_phase_v: PhaseTriple | None = None
    energy_wh: WattHours | None = None
    frequency_hz: Hertz | None = None
    soc_pct: Percent | None = None

    def derived(self) -> AcMeasurement:
        """Fill what can be computed (P_phase = U·I, P = ΣP_phase), marked calculated."""
        update: dict[str, object] = {}
        per_phase = self.power_per_phase_w
        if per_phase is None and self.current_per_phase_a and self.voltage_per_phase_v:
            per_phase = tuple(
                (i * u) if i is not None and u is not None else None
                for i, u in zip(self.current_per_phase_a, self.voltage_per_phase_v, strict=True)
            )  # type: ignore[assignment]
            update["power_per_phase_w"] = per_phase
            update["power_per_phase_source"] = ValueSource.CALCULATED
        if self.power_w is None and per_phase is not None and any(p is not None for p in per_phase):
            update["power_w"] = sum(p for p in per_phase if p is not None)
            update["power_source"] = ValueSource.CALCULATED
        return self.model_copy(update=update) if update else self


__all__ = ["AcMeasurement", "Amperes", "PhaseTriple", "ValueSource", "Volts"]
