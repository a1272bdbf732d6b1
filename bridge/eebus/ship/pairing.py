"""Who may connect: trusted SKIs, a pairing window with a list of pending peers, and refusals.

Decision per incoming/outgoing connection (reference §2.10):
* SKI in the trust store -> `ready`;
* a pairing window is open -> `pending`: the peer is listed and waits (with
  SHIP prolongation) until the user accepts it (`evbridge pair --accept SKI`)
  or the window closes (then `aborted`);
* otherwise REFUSED.  The node still answers `pending` (no prolongation) and
  lists the peer, then sends `aborted` when the peer's wait runs out: an
  immediate `aborted` makes ship-go record "remote denied trust" and stop
  dialing, so a later `evbridge trust add` would not help (verified against
  ship-go; reference §7).  The node logs the refusal with the SKI.
Accepting adds the SKI to the trust store and lets the waiting connection
proceed at once; `trust_changed()` does the same for SKIs added by
`evbridge trust add` in another process.  Shared by all nodes of a process;
whoever creates it runs `run()` so the window closes on time.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from bridge.clock import Clock, wait_event
from bridge.eebus.ship.ski import normalize_ski
from bridge.eebus.ship.statemachine import TrustDecision
from bridge.eebus.ship.trust import TrustStore
from bridge.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingPeer:
    ski: str
    address: str
    device_id: str
    since: float  # clock.monotonic()


@dataclass(slots=True)
class _Waiter:
    peer: PendingPeer
    approve: Callable[[], None]
    deny: Callable[[str], None]


class Pairing:
    """Trust decisions plus the pairing window; all methods are synchronous and cheap."""

    def __init__(self, trust: TrustStore, clock: Clock) -> None:
        self.trust = trust
        self.clock = clock
        self._window_until: float | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._ids = itertools.count()
        self._changed = anyio.Event()

    # ---------------------------------------------------------------- window

    @property
    def window_open(self) -> bool:
        return self._window_until is not None and self.clock.monotonic() < self._window_until

    @property
    def window_remaining(self) -> float:
        return max(0.0, (self._window_until or 0.0) - self.clock.monotonic())

    def open_window(self, seconds: float) -> None:
        self._window_until = self.clock.monotonic() + seconds
        log.warning("SHIP pairing window open for %.0f s: unknown EMSs that connect are listed as pending", seconds)
        self._poke()

    def close_window(self) -> None:
        self._window_until = None
        for token, waiter in list(self._waiters.items()):
            self._waiters.pop(token, None)
            log.warning("SHIP pairing window closed: refusing pending peer SKI %s", waiter.peer.ski)
            waiter.deny("pairing window closed")
        self._poke()

    async def run(self) -> None:
        """Close the window when its time is up (runs for the lifetime of the owner)."""
        while True:
            changed = self._changed
            if self._window_until is None:
                await changed.wait()
                continue
            remaining = self._window_until - self.clock.monotonic()
            if remaining > 0 and await wait_event(self.clock, changed, remaining):
                continue
            if self._window_until is not None and self.clock.monotonic() >= self._window_until:
                self.close_window()

    def _poke(self) -> None:
        old, self._changed = self._changed, anyio.Event()
        old.set()

    # ---------------------------------------------------------------- decisions

    def _reload(self) -> None:
        """Re-read the trust file; a broken file is logged and the last good set stays in force."""
        try:
            self.trust.reload()
        except ConfigError as exc:
            log.error("SHIP trust store not reloaded: %s", exc)

    def decide(self, ski: str) -> TrustDecision:
        self._reload()
        if self.trust.is_trusted(ski):
            return TrustDecision.TRUSTED
        if self.window_open:
            return TrustDecision.PENDING
        return TrustDecision.REFUSED

    def add_pending(
        self, ski: str, address: str, device_id: str, approve: Callable[[], None], deny: Callable[[str], None]
    ) -> int:
        token = next(self._ids)
        peer = PendingPeer(normalize_ski(ski), address, device_id, self.clock.monotonic())
        self._waiters[token] = _Waiter(peer, approve, deny)
        log.warning("SHIP pairing request from SKI %s (%s) for %s: accept with `evbridge pair --accept %s`",
                    peer.ski, address, device_id, peer.ski)  # fmt: skip
        return token

    def remove_pending(self, token: int) -> None:
        self._waiters.pop(token, None)

    def pending(self) -> list[PendingPeer]:
        return [w.peer for w in self._waiters.values()]

    def accept(self, ski: str) -> int:
        """Trust `ski` persistently and release its waiting connections; returns how many were waiting."""
        canonical = normalize_ski(ski)
        self.trust.add(canonical, note="accepted in pairing window")
        return self._approve_trusted(only=canonical)

    def reject(self, ski: str) -> int:
        canonical = normalize_ski(ski)
        count = 0
        for token, waiter in list(self._waiters.items()):
            if waiter.peer.ski == canonical:
                self._waiters.pop(token, None)
                waiter.deny("refused by the user")
                count += 1
        return count

    def trust_changed(self) -> int:
        """The trust file changed (e.g. `evbridge trust add`): release pending peers that are now trusted."""
        self._reload()
        return self._approve_trusted()

    def _approve_trusted(self, only: str | None = None) -> int:
        count = 0
        for token, waiter in list(self._waiters.items()):
            ski = waiter.peer.ski
            if (only is None or ski == only) and self.trust.is_trusted(ski):
                self._waiters.pop(token, None)
                log.warning("SHIP peer SKI %s is trusted now; continuing its handshake", ski)
                waiter.approve()
                count += 1
        return count
