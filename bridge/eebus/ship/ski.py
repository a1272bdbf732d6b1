"""SKI (Subject Key Identifier) strings: one canonical form, compared only after normalising.

Users paste SKIs from vendor UIs in upper case, grouped with spaces, colons or
dashes; ship-go compares the 40-char lowercase hex form.  Everything in the
SHIP package stores and compares that canonical form only.
"""

from __future__ import annotations

import re

from bridge.errors import ConfigError

_SEPARATORS = re.compile(r"[\s:\-]")
_HEX40 = re.compile(r"[0-9a-f]{40}")


class InvalidSki(ConfigError):
    """A string that is not a SKI (after removing separators it must be 40 hex digits)."""


def normalize_ski(text: str) -> str:
    """Canonical SKI: 40 lowercase hex characters; accepts spaces, colons, dashes and any case."""
    candidate = _SEPARATORS.sub("", text).lower()
    if not _HEX40.fullmatch(candidate):
        raise InvalidSki(f"not a SKI: {text!r} (expected 40 hex digits, separators allowed)")
    return candidate


def format_ski_grouped(ski: str) -> str:
    """The SKI in groups of four, as many vendor UIs print it (for humans only)."""
    canonical = normalize_ski(ski)
    return " ".join(canonical[i : i + 4] for i in range(0, 40, 4))
