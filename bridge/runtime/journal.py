"""Append-only event journal: one JSON object per line, fsynced, torn last line skipped on load.

Every limit received, accepted or denied, applied, and every failsafe entry or
exit is recorded with its UTC timestamp, so an integrator can show the grid
operator what the bridge did and when.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EventJournal:
    """Appends events to `path`; safe against a crash in the middle of a write."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        """Cut a last line without its newline (a crash mid-write) so the next append starts clean."""
        try:
            with self.path.open("rb+") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                if size == 0:
                    return
                f.seek(size - 1)
                if f.read(1) == b"\n":
                    return
                f.seek(0)
                data = f.read()
                keep = data.rfind(b"\n") + 1
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
                log.warning("event journal %s: dropped a torn last line (%d bytes)", self.path, size - keep)
        except FileNotFoundError:
            return

    def append(self, timestamp: datetime, kind: str, **fields: Any) -> None:
        record: dict[str, Any] = {"ts": timestamp.isoformat(), "event": kind, **fields}
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode() + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(load_journal(self.path))


def load_journal(path: Path) -> list[dict[str, Any]]:
    """All complete events; a torn (unterminated or unparsable) last line is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    events: list[dict[str, Any]] = []
    for index, raw in enumerate(lines):
        if not raw:
            continue
        is_last = index == len(lines) - 1  # no newline after it: possibly torn
        try:
            events.append(json.loads(raw))
        except ValueError:
            if is_last:
                continue
            raise ValueError(f"{path}:{index + 1}: corrupt journal line") from None
    return events
