"""UCF Characteristics and Charging_Power_Limit: what the charger can do at most."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.model.units import Amperes, PhaseCount, Volts, Watts


class Characteristics(BaseModel):
    """Static electrical facts of one charge point.

    `phases_installed` is how many phases are wired; `nominal_voltage_v` is the
    site's nominal voltage used for every W→A conversion (never the measured one).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    phases_installed: PhaseCount = 3
    min_current_a: Amperes = 6.0
    max_current_a: Amperes = 16.0
    current_resolution_a: float = Field(default=1.0, gt=0)
    nominal_voltage_v: Volts = 230.0
    phase_switching: bool = False
    bidirectional: bool = False

    @model_validator(mode="after")
    def _min_below_max(self) -> Characteristics:
        if self.min_current_a > self.max_current_a:
            raise ValueError("min_current_a must not exceed max_current_a")
        return self

    @property
    def nominal_max_power_w(self) -> Watts:
        """powerConsumptionNominalMax (LPC-10): rated A × phases × U_nom."""
        return self.max_current_a * self.phases_installed * self.nominal_voltage_v

    def power_range_w(self, phases: int | None = None) -> tuple[Watts, Watts]:
        """Charging_Power_Limit (EVCC-08): min and max power for `phases` phases."""
        n = phases or self.phases_installed
        return (self.min_current_a * n * self.nominal_voltage_v, self.max_current_a * n * self.nominal_voltage_v)
