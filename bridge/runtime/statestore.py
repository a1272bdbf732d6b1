"""Atomic JSON state files: after a crash at any moment a file holds the old or the new state, never a mix.

Write path: temp file in the same directory, write, flush, fsync, rename over
the target, fsync the directory (so the rename itself survives power loss).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir


def default_state_dir() -> Path:
    """Per-user data directory (e.g. ~/.local/share/evbridge); the Docker image mounts /var/lib/evbridge."""
    return Path(user_data_dir("evbridge", appauthor=False))


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically and durably; file mode 0600 by default (keys, SKIs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class StateStore:
    """Named JSON documents under one state directory (e.g. `lpc/garage.json`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        candidate = (self.root / name).resolve()
        if self.root.resolve() not in candidate.parents:
            raise ValueError(f"state name {name!r} leaves the state directory")
        return candidate

    def save(self, name: str, document: Any) -> None:
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        atomic_write_bytes(self.path(name), data)

    def load(self, name: str) -> Any | None:
        """The stored document, or None when it was never written."""
        try:
            return json.loads(self.path(name).read_bytes())
        except FileNotFoundError:
            return None
