"""Canonical IEC 63380 model of a charger, in use case function (UCF) vocabulary and SI units.

Pure pydantic: no I/O, no clock reads.  Every other part translates to and
from these types.
"""

from bridge.model.characteristics import Characteristics
from bridge.model.identity import Identification, IdentificationType, ManufacturerInformation
from bridge.model.limits import (
    DEFAULT_FAILSAFE_LIMIT_W,
    FAILSAFE_DURATION_MAX,
    FAILSAFE_DURATION_MIN,
    P14A_DEFAULT_GZF,
    P14A_DEVICE_MINIMUM_W,
    FailsafeSettings,
    Heartbeat,
    LimitCategory,
    LimitSource,
    OperationMode,
    PhaseCurrentLimit,
    PowerLimit,
    Setpoint,
)
from bridge.model.measurement import AcMeasurement, PhaseTriple, ValueSource
from bridge.model.session import (
    ConsumptionCurve,
    CurveSlot,
    IncentiveSlot,
    IncentiveTable,
    IncentiveTier,
    MaximumPowerLimitationCurve,
    SessionSummary,
)
from bridge.model.snapshot import AppliedSetpoint, ChargerSnapshot, Command
from bridge.model.state import ChargingState, CommunicationStandard, DeviceState, OperatingState

__all__ = [
    "DEFAULT_FAILSAFE_LIMIT_W",
    "FAILSAFE_DURATION_MAX",
    "FAILSAFE_DURATION_MIN",
    "P14A_DEFAULT_GZF",
    "P14A_DEVICE_MINIMUM_W",
    "AcMeasurement",
    "AppliedSetpoint",
    "Characteristics",
    "ChargerSnapshot",
    "ChargingState",
    "Command",
    "CommunicationStandard",
    "ConsumptionCurve",
    "CurveSlot",
    "DeviceState",
    "FailsafeSettings",
    "Heartbeat",
    "Identification",
    "IdentificationType",
    "IncentiveSlot",
    "IncentiveTable",
    "IncentiveTier",
    "LimitCategory",
    "LimitSource",
    "ManufacturerInformation",
    "MaximumPowerLimitationCurve",
    "OperatingState",
    "OperationMode",
    "PhaseCurrentLimit",
    "PhaseTriple",
    "PowerLimit",
    "SessionSummary",
    "Setpoint",
    "ValueSource",
]
