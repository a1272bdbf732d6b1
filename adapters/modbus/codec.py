"""Pure register codec: raw 16-bit words ↔ engineering values for one mapping point.

`engineering = raw × scale`; writes divide and round *down* (toward the safe
side for limits).  Multi-register values follow the point's word order
(big = high word first) and byte order inside each register.
"""

from __future__ import annotations

import math
import struct

from adapters.modbus.mapping import Mapping, Point, Table
from bridge.errors import MappingError

_STRUCT = {
    "u16": "H",
    "s16": "h",
    "bitfield": "H",
    "u32": "I",
    "s32": "i",
    "u64": "Q",
    "s64": "q",
    "f32": "f",
    "f64": "d",
}


def _bytes_from_words(words: list[int], word_order: str, byte_order: str) -> bytes:
    ordered = words if word_order == "big" else list(reversed(words))
    out = bytearray()
    for w in ordered:
        pair = w.to_bytes(2, "big")
        out += pair if byte_order == "big" else pair[::-1]
    return bytes(out)


def _words_from_bytes(data: bytes, word_order: str, byte_order: str) -> list[int]:
    words = []
    for i in range(0, len(data), 2):
        pair = data[i : i + 2]
        words.append(int.from_bytes(pair if byte_order == "big" else pair[::-1], "big"))
    return words if word_order == "big" else list(reversed(words))


def decode_raw(mapping: Mapping, point: Point, words: list[int]) -> int | float | str:
    """The raw value (before scale and enum) of `words` read for `point`."""
    if len(words) != point.words:
        raise MappingError(f"expected {point.words} registers, got {len(words)}")
    if point.table in (Table.COIL, Table.DISCRETE):
        return int(bool(words[0]))
    data = _bytes_from_words(words, mapping.word_order_of(point), mapping.byte_order_of(point))
    if point.type == "string":
        return data.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()
    (value,) = struct.unpack(">" + _STRUCT[point.type], data)
    return value


def decode(mapping: Mapping, point: Point, words: list[int]) -> int | float | str | None:
    """Engineering value: scaled number, enum label, or text; None for a NaN float or a `no_data` sentinel."""
    raw = decode_raw(mapping, point, words)
    if isinstance(raw, int):
        if raw in point.no_data:
            return None  # the box's "no value" sentinel, not a zero reading
        if point.mask is not None:
            raw &= point.mask
    if isinstance(raw, str):
        return point.enum.get(raw, f"unknown:{raw}") if point.enum is not None else raw  # type: ignore[call-overload]
    if isinstance(raw, float) and math.isnan(raw):
        return None
    if point.enum is not None:
        return point.enum.get(int(raw), f"unknown:{int(raw)}")  # type: ignore[call-overload]
    return raw * point.scale if point.scale != 1 else raw


def encode(mapping: Mapping, point: Point, value: float | int | str) -> list[int]:
    """Words to write for an engineering `value`; numbers are rounded down to the register's step."""
    if point.table in (Table.COIL, Table.DISCRETE):
        if isinstance(value, str):
            value = _raw_of_label(point, value)
        return [1 if value else 0]
    if point.type == "string":
        data = str(value).encode("ascii")[: 2 * point.words].ljust(2 * point.words, b"\x00")
        return (
            _words_from_bytes(data, "big", mapping.byte_order_of(point))
            if mapping.word_order_of(point) == "big"
            else _words_from_bytes(data, "little", mapping.byte_order_of(point))
        )
    if isinstance(value, str):
        raw: int | float = _raw_of_label(point, value)
    elif point.type in ("f32", "f64"):
        raw = value / point.scale
    elif isinstance(value, int) and point.scale == 1:
        raw = value  # exact: a float division would lose u64/s64 values beyond 2**53
    else:
        raw = math.floor(round(value / point.scale, 9))
    fmt = _STRUCT[point.type]
    try:
        data = struct.pack(">" + fmt, raw if fmt in "fd" else int(raw))
    except struct.error as exc:
        raise MappingError(f"value {value!r} does not fit {point.type}: {exc}") from None
    return _words_from_bytes(data, mapping.word_order_of(point), mapping.byte_order_of(point))


def _raw_of_label(point: Point, label: str) -> int:
    if point.enum is None:
        raise MappingError(f"text value {label!r} for a point without enum")
    reverse = {v: k for k, v in point.enum.items()}
    if label not in reverse or not isinstance(reverse[label], int):
        raise MappingError(f"{label!r} is not one of {sorted(reverse)}")
    return int(reverse[label])
