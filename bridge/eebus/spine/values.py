"""SPINE primitive types: ScaledNumber, ISO-8601 durations, UTC timestamps (eebus-ship-spine.md §3.10)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bridge.errors import RemoteProtocolError

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def scaled(value: float) -> dict[str, int]:
    """ScaledNumber with the fewest decimals that represent `value` exactly (up to 3 places)."""
    d = Decimal(repr(float(value))).normalize()
    exponent = int(d.as_tuple().exponent)  # type: ignore[arg-type]
    scale = max(-3, min(0, exponent))
    number = int((d / (Decimal(10) ** scale)).to_integral_value())
    return {"number": number, "scale": scale} if scale else {"number": number, "scale": 0}


def unscaled(data: Any) -> float:
    """Decode {"number": n, "scale": s}; any combination is accepted, scale defaults to 0."""
    if not isinstance(data, dict) or "number" not in data:
        raise RemoteProtocolError(f"not a ScaledNumber: {data!r}")
    number, scale = data["number"], data.get("scale", 0)
    if not isinstance(number, int) or isinstance(number, bool) or not isinstance(scale, int) or isinstance(scale, bool):
        raise RemoteProtocolError(f"ScaledNumber parts must be integers: {data!r}")
    if not -20 <= scale <= 20:
        raise RemoteProtocolError(f"ScaledNumber scale out of range: {scale}")
    return float(Decimal(number) * (Decimal(10) ** scale))


def parse_duration(text: Any) -> float:
    """xs:duration → seconds (years and months are not used by SPINE here and are refused)."""
    if not isinstance(text, str):
        raise RemoteProtocolError(f"not a duration: {text!r}")
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "PT", "-P", "-PT") or text.strip().endswith("T"):
        raise RemoteProtocolError(f"not an ISO-8601 duration: {text!r}")
    if m["y"] or m["mo"]:
        raise RemoteProtocolError(f"durations with years or months are ambiguous: {text!r}")
    seconds = (
        int(m["w"] or 0) * 604800
        + int(m["d"] or 0) * 86400
        + int(m["h"] or 0) * 3600
        + int(m["mi"] or 0) * 60
        + float(m["s"] or 0)
    )
    return -seconds if m["sign"] else seconds


def format_duration(seconds: float) -> str:
    """Seconds → compact xs:duration (`PT2H`, `PT1H30M`, `PT59.5S`, `PT0S`)."""
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{sign}PT"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if secs or out.endswith("T"):
        out += f"{secs:g}S" if secs != int(secs) else f"{int(secs)}S"
    return out


def timestamp(moment: datetime) -> str:
    """UTC with `Z`, as eebus-go writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
