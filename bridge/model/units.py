"""SI units as typed aliases: the canonical model speaks W, Wh, A, V, Hz, s, %.

Vendor scaling (mA, 0.1 kWh, …) happens only in adapters' mapping codecs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

Watts = Annotated[float, Field(description="active power in W")]
NonNegativeWatts = Annotated[float, Field(ge=0, description="active power in W, >= 0")]
WattHours = Annotated[float, Field(ge=0, description="energy in Wh, >= 0")]
Amperes = Annotated[float, Field(ge=0, description="current in A, >= 0")]
Volts = Annotated[float, Field(ge=0, description="voltage in V")]
Hertz = Annotated[float, Field(ge=0, le=100, description="frequency in Hz")]
Seconds = Annotated[float, Field(ge=0, description="duration in s")]
Percent = Annotated[float, Field(ge=0, le=100, description="percent 0..100")]
PhaseCount = Literal[1, 2, 3]


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_require_utc)]
