"""EEBus JSON ⇄ ordinary JSON (reference §2.7).

SHIP and SPINE do not use ordinary JSON objects on the wire: every complex
element becomes an array of single-member objects in schema order, a list of
complex items is an array of such arrays, an empty complex element is `[]`.
The root of a message stays an object.  SHIP and SPINE code works on ordinary
dicts (insertion order = schema order) and converts only at the wire.

The decoder is structure-aware rather than ship-go's string replacement, but
yields the same result for every SHIP/SPINE shape: an array whose items are
all single-member objects is an object; `[]` is an empty complex element `{}`.
"""

from __future__ import annotations

from typing import Any


def to_eebus(value: Any) -> Any:
    """Ordinary JSON value -> EEBus JSON value (dict keys keep their order)."""
    if isinstance(value, dict):
        return [{key: to_eebus(item)} for key, item in value.items()]
    if isinstance(value, list):
        return [to_eebus(item) for item in value]
    return value


def to_eebus_message(message: dict[str, Any]) -> dict[str, Any]:
    """A whole message: the root object stays an object, its members are converted."""
    return {key: to_eebus(item) for key, item in message.items()}


def _is_object_array(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(item, dict) and len(item) == 1 for item in value)


def from_eebus(value: Any) -> Any:
    """EEBus JSON value -> ordinary JSON value."""
    if isinstance(value, dict):
        return {key: from_eebus(item) for key, item in value.items()}
    if isinstance(value, list):
        if not value:
            return {}
        if _is_object_array(value):
            out: dict[str, Any] = {}
            for item in value:
                ((key, inner),) = item.items()
                out[key] = from_eebus(inner)
            return out
        return [from_eebus(item) for item in value]
    return value
