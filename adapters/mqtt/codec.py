"""Pure payload codec for mapped MQTT points: bytes in → engineering value out, and back for commands.

No I/O, no clock: the client shell hands in payloads and gets values or a
`PayloadError`, which it logs and ignores (the point then ages into staleness).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from adapters.mqtt.mapping import PLACEHOLDER, Point, enum_key

_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]")
_MAX_PAYLOAD = 64 * 1024


class PayloadError(ValueError):
    """A payload does not fit its point's description (bad JSON, missing path, unmapped enum…)."""


Value = float | str | bool


def render(template: str, variables: dict[str, str]) -> str:
    """Fill `{name}` placeholders; unknown names stay (the loader already rejected them)."""
    return PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


def parse_payload(payload: bytes, parse: str) -> Any:
    """Decode the raw payload as the point says: json, raw text, number or bool."""
    if len(payload) > _MAX_PAYLOAD:
        raise PayloadError(f"payload of {len(payload)} bytes is too large")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8") from None
    if parse == "raw":
        return text
    if parse == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise PayloadError(f"not JSON: {text[:40]!r}") from None
    if parse == "number":
        try:
            number = float(text)
        except ValueError:
            raise PayloadError(f"not a number: {text[:40]!r}") from None
        if not math.isfinite(number):
            raise PayloadError(f"not a finite number: {text[:40]!r}")
        return number
    if parse == "bool":
        low = text.lower()
        if low in ("true", "1", "on", "yes"):
            return True
        if low in ("false", "0", "off", "no"):
            return False
        raise PayloadError(f"not a boolean: {text[:40]!r}")
    raise PayloadError(f"unknown parse mode {parse!r}")


def extract(document: Any, path: str | None) -> Any:
    """The JSON path subset `$`, `.key`, `[index]`."""
    if path is None or path == "$":
        return document
    value = document
    for match in _PATH_PART.finditer(path, 1):
        key, index = match.group(1), match.group(2)
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise PayloadError(f"{path}: no key {key!r}")
            value = value[key]
        else:
            i = int(index)
            if not isinstance(value, list) or i >= len(value):
                raise PayloadError(f"{path}: no index {i}")
            value = value[i]
    return value


def decode(point: Point, payload: bytes) -> Value | None:
    """Engineering value of `point` from one payload; None for an explicit JSON null (value unknown)."""
    return decode_parsed(point, parse_payload(payload, point.parse))


def decode_parsed(point: Point, document: Any) -> Value | None:
    """Like `decode` for a payload already parsed with `point.parse` (one parse serves many points)."""
    raw = extract(document, point.path)
    if raw is None:
        return None
    if point.enum is not None:
        key = enum_key(raw)
        if key not in point.enum:
            raise PayloadError(f"value {key!r} is not in the enum map {sorted(point.enum)}")
        return point.enum[key]
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        value = float(raw) * point.scale
        if not math.isfinite(value):
            raise PayloadError("value is not finite")
        return value
    if isinstance(raw, str):
        if point.unit is not None:  # a numeric point sent as text ("16")
            try:
                number = float(raw)
            except ValueError:
                raise PayloadError(f"not a number: {raw[:40]!r}") from None
            if not math.isfinite(number):
                raise PayloadError("value is not finite")
            return number * point.scale
        return raw
    raise PayloadError(f"unexpected JSON {type(raw).__name__} at {point.path or '$'}")


def to_raw(point: Point, value: float) -> float:
    """Engineering → raw (divide by scale), floored so a current limit never rounds upwards."""
    raw = value / point.scale
    return math.floor(raw + 1e-9) if point.scale > 0 else math.ceil(raw - 1e-9)


def encode(point: Point, value: float | bool, variables: dict[str, str]) -> bytes:
    """The payload of a command point for engineering `value`.

    `enum_write` maps the engineering value (e.g. enable true → go-e frc 2)
    before the template is filled; numeric values are divided by the scale
    and rounded down (never above a limit).
    """
    if point.enum_write is not None:
        key = enum_key(value)
        if key not in point.enum_write:
            raise PayloadError(f"{point.name.value}: no enum_write entry for {key!r}")
        mapped = point.enum_write[key]
        fields = {"value": enum_key(mapped), "value_int": enum_key(mapped), "value_bool": enum_key(mapped)}
        fields["onoff"] = str(mapped).upper() if isinstance(mapped, str) else ("ON" if mapped else "OFF")
    elif isinstance(value, bool):
        fields = {
            "value": "true" if value else "false",
            "value_int": "1" if value else "0",
            "value_bool": "true" if value else "false",
            "onoff": "ON" if value else "OFF",
        }
    else:
        if not math.isfinite(value):
            raise PayloadError(f"{point.name.value}: value is not finite")
        raw_int = to_raw(point, value)
        raw = value / point.scale
        fields = {
            "value": repr(float(raw)),
            "value_int": str(int(raw_int)),
            "value_bool": "true" if raw else "false",
            "onoff": "ON" if raw else "OFF",
        }
    return render(point.template, {**variables, **fields}).encode("utf-8")
