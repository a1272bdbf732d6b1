"""Trusted peer SKIs: from the configuration (fixed) and from the state directory (edited by the CLI).

The file `<state>/ship/trust.json` is written atomically (0600) and re-read
when its modification time changes, so `evbridge trust add` in another process
takes effect in a running bridge after `reload()` (the control socket asks for
that).  SKIs are stored in canonical form only (`ski.normalize_ski`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bridge.eebus.ship.identity import ship_dir
from bridge.eebus.ship.ski import normalize_ski
from bridge.errors import ConfigError
from bridge.runtime.statestore import atomic_write_bytes


@dataclass(frozen=True, slots=True)
class TrustEntry:
    ski: str
    source: str  # "config" or "state"
    note: str = ""


class TrustStore:
    """The set of SKIs we say `ready` to."""

    def __init__(self, path: Path | None, static: Iterable[str] = ()) -> None:
        self.path = path
        self._static = {normalize_ski(s) for s in static}
        self._stored: dict[str, str] = {}
        self._mtime: int | None = None
        self.reload()

    @classmethod
    def in_state_dir(cls, state_dir: Path, static: Iterable[str] = ()) -> TrustStore:
        return cls(ship_dir(state_dir) / "trust.json", static)

    def reload(self) -> bool:
        """Re-read the file if it changed; True when the trusted set changed."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            changed = bool(self._stored)
            self._stored, self._mtime = {}, None
            return changed
        if mtime == self._mtime:
            return False
        try:
            document = json.loads(self.path.read_text())
            stored = {normalize_ski(item["ski"]): str(item.get("note", "")) for item in document["trusted"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"trust store is unreadable: {exc}", location=str(self.path)) from None
        changed = stored.keys() != self._stored.keys()
        self._stored, self._mtime = stored, mtime
        return changed

    def is_trusted(self, ski: str) -> bool:
        canonical = normalize_ski(ski)
        return canonical in self._static or canonical in self._stored

    def add(self, ski: str, note: str = "") -> bool:
        """Trust `ski` persistently; False when it already was."""
        self.reload()
        canonical = normalize_ski(ski)
        if canonical in self._stored:
            return False
        self._stored[canonical] = note
        self._save()
        return canonical not in self._static

    def remove(self, ski: str) -> bool:
        """Forget `ski`; False when the state directory did not hold it (config SKIs stay)."""
        self.reload()
        canonical = normalize_ski(ski)
        if self._stored.pop(canonical, None) is None:
            return False
        self._save()
        return True

    def entries(self) -> list[TrustEntry]:
        self.reload()
        out = [TrustEntry(s, "config") for s in sorted(self._static)]
        out += [TrustEntry(s, "state", note) for s, note in sorted(self._stored.items()) if s not in self._static]
        return out

    def _save(self) -> None:
        if self.path is None:
            return
        document = {"version": 1, "trusted": [{"ski": s, "note": n} for s, n in sorted(self._stored.items())]}
        atomic_write_bytes(self.path, json.dumps(document, indent=1).encode())
        self._mtime = self.path.stat().st_mtime_ns
