"""`ChargerSnapshot` (what a charger is) and `Command` (what it shall do)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.model.characteristics import Characteristics
from bridge.model.identity import Identification, ManufacturerInformation
from bridge.model.limits import LimitSource
from bridge.model.measurement import AcMeasurement
from bridge.model.session import SessionSummary
from bridge.model.state import ChargingState, CommunicationStandard, DeviceState
from bridge.model.units import Amperes, NonNegativeWatts, PhaseCount, UtcDateTime


class AppliedSetpoint(BaseModel):
    """What the charger reports as currently in force (read back after a write)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    current_a: Amperes | None = None
    power_w: NonNegativeWatts | None = None
    enabled: bool | None = None
    phases: PhaseCount | None = None


class ChargerSnapshot(BaseModel):
    """Everything the bridge knows about one charge point at one moment.

    Immutable; only the charger's coordinator replaces it.  `available=False`
    means the link to the charger is down (GEN-09): values may be stale.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    charger_id: str = Field(min_length=1)
    timestamp: UtcDateTime
    available: bool = True
    manufacturer: ManufacturerInformation = ManufacturerInformation()
    characteristics: Characteristics = Characteristics()
    device_state: DeviceState = DeviceState()
    ev_connected: bool | None = None
    charging_state: ChargingState = ChargingState.UNKNOWN
    active_phases: PhaseCount | None = None
    measurement: AcMeasurement = AcMeasurement()
    applied: AppliedSetpoint = AppliedSetpoint()
    identifications: tuple[Identification, ...] = ()
    communication_standard: CommunicationStandard | None = None
    session: SessionSummary | None = None


class Command(BaseModel):
    """The one instruction for one charger, computed by the allocator.

    Current-controlled chargers use `current_a` (per phase, L1..L3, symmetric
    unless asymmetric charging is supported); power-controlled ones `power_w`.
    `pause=True` means 0 A / disabled.  `binding` and `reason` say which
    constraint decided the value, for logs, journal and the status page.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    charger_id: str
    pause: bool = False
    current_a: tuple[Amperes, Amperes, Amperes] | None = None
    power_w: NonNegativeWatts | None = None
    phases: PhaseCount | None = None
    binding: LimitSource = LimitSource.NONE
    reason: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Command:
        if self.pause:
            if self.current_a is not None and any(c != 0 for c in self.current_a):
                raise ValueError("a paused command carries no current")
            if self.power_w not in (None, 0):
                raise ValueError("a paused command carries no power")
        return self

    @property
    def max_current_a(self) -> float:
        """The highest per-phase current of this command (0 when paused)."""
        if self.pause or self.current_a is None:
            return 0.0
        return max(self.current_a)

    def same_effect(self, other: Command | None) -> bool:
        """True when sending `other` after this one would change nothing at the charger."""
        if other is None:
            return False
        return (self.pause, self.current_a, self.power_w, self.phases) == (
            other.pause,
            other.current_a,
            other.power_w,
            other.phases,
        )
