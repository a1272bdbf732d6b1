"""Local control socket: `evbridge trust`/`evbridge pair` reach a running bridge without a restart.

A Unix stream socket `<state>/ship/control.sock` inside the owner-only (0700)
SHIP state directory, itself 0600.  Protocol: one JSON object per line in,
one per line out, `{"ok": true, ...}` or `{"ok": false, "error": "..."}`.

Commands: `status`, `trust.reload`, `pair.open` (`seconds`), `pair.close`,
`pair.list`, `pair.accept` (`ski`), `pair.reject` (`ski`).
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from bridge.eebus.ship.identity import ship_dir
from bridge.eebus.ship.pairing import Pairing
from bridge.eebus.ship.ski import InvalidSki, normalize_ski

if TYPE_CHECKING:
    from bridge.eebus.ship.node import ShipNode

log = logging.getLogger(__name__)

SOCKET_NAME: Final = "control.sock"
MAX_LINE: Final = 65536
REQUEST_TIMEOUT: Final = 5.0


def control_path(state_dir: Path) -> Path:
    return ship_dir(state_dir) / SOCKET_NAME


class ControlServer:
    """Serves the control socket for the nodes of this process (they share one `Pairing`)."""

    def __init__(self, path: Path, pairing: Pairing, nodes: Callable[[], Sequence[ShipNode]]) -> None:
        self.path = path
        self.pairing = pairing
        self.nodes = nodes

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.path.exists():
            if _is_alive(self.path):
                raise RuntimeError(f"another evbridge already serves {self.path}")
            self.path.unlink()
        listener = await anyio.create_unix_listener(self.path)
        self.path.chmod(0o600)
        try:
            async with anyio.create_task_group() as tg:
                task_status.started()
                await listener.serve(self._handle, tg)
        finally:
            self.path.unlink(missing_ok=True)

    async def _handle(self, stream: anyio.abc.ByteStream) -> None:
        async with stream:
            reader = BufferedByteReceiveStream(stream)
            while True:
                try:
                    with anyio.fail_after(60):
                        line = await reader.receive_until(b"\n", MAX_LINE)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound, TimeoutError):
                    return
                except (anyio.BrokenResourceError, OSError):
                    return
                reply = self.execute(line)
                try:
                    await stream.send(json.dumps(reply).encode() + b"\n")
                except (anyio.BrokenResourceError, OSError):
                    return

    def execute(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request must be a JSON object")
            return {"ok": True, **self._dispatch(str(request.get("cmd", "")), request)}
        except (ValueError, InvalidSki, KeyError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # e.g. the trust file cannot be written: answer, keep serving
            log.exception("SHIP control request failed")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _dispatch(self, cmd: str, request: dict[str, Any]) -> dict[str, Any]:
        pairing = self.pairing
        if cmd == "status":
            return {"devices": [_node_status(n) for n in self.nodes()], **self._pair_state()}
        if cmd == "trust.reload":
            released = pairing.trust_changed()
            return {"released": released, "closed": sum(node.revoke_untrusted() for node in self.nodes())}
        if cmd == "pair.open":
            seconds = float(request.get("seconds", 300))
            if not 0 < seconds <= 24 * 3600:
                raise ValueError("seconds must be in (0, 86400]")
            pairing.open_window(seconds)
            return self._pair_state()
        if cmd == "pair.close":
            pairing.close_window()
            return self._pair_state()
        if cmd == "pair.list":
            return self._pair_state()
        if cmd == "pair.accept":
            ski = normalize_ski(str(request["ski"]))
            log.warning("SHIP: user accepted SKI %s", ski)
            return {"ski": ski, "released": pairing.accept(ski)}
        if cmd == "pair.reject":
            ski = normalize_ski(str(request["ski"]))
            return {"ski": ski, "refused": pairing.reject(ski)}
        raise ValueError(f"unknown command {cmd!r}")

    def _pair_state(self) -> dict[str, Any]:
        return {
            "window_open": self.pairing.window_open,
            "remaining_s": round(self.pairing.window_remaining, 1),
            "pending": [{"ski": p.ski, "address": p.address, "device": p.device_id} for p in self.pairing.pending()],
        }


def _node_status(node: ShipNode) -> dict[str, Any]:
    return {
        "device": node.identity.device_id,
        "ski": node.ski,
        "ship_id": node.ship_id,
        "port": node.port,
        "connections": [
            {"ski": c.peer_ski, "address": c.peer_address, "role": c.role.value, "state": c.state}
            for c in node.connections
        ],
    }


def _is_alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class ControlUnavailable(OSError):
    """No bridge is listening on the control socket."""


def request(path: Path, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
    """One request/response on the control socket (blocking; for the CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControlUnavailable(f"no running evbridge at {path} ({exc.strerror})") from None
        sock.sendall(json.dumps(message).encode() + b"\n")
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(MAX_LINE)
            if not chunk:
                break
            buffer += chunk
    reply: dict[str, Any] = json.loads(buffer or b"{}")
    return reply
