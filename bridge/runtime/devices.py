"""What the EMS sees: exposed LPC devices (one per charger, or one per group).

An `ExposedDevice` wraps the `Lpc` state machine of one controllable system
with the chargers behind it.  Every input from the EMS goes through it, so
that each limit received, accepted or denied and each state change is
journaled, the LPC state is persisted atomically (LPC-09, LPC-41), and the
runtime recomputes the allocation at once.  The EEBus layer calls
`write_limit`, `write_failsafe` and `heartbeat` here, never `Lpc` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.clock import Clock
from bridge.model import LimitSource
from bridge.runtime.journal import EventJournal
from bridge.runtime.statestore import StateStore
from bridge.usecases.lpc import Lpc, LpcState, LpcTransition, WriteResult

log = logging.getLogger(__name__)


@dataclass
class ExposedDevice:
    """One controllable system towards the EMS; see module docstring."""

    device_id: str
    members: tuple[str, ...]
    lpc: Lpc
    clock: Clock
    store: StateStore
    journal: EventJournal
    is_group: bool = False
    on_change: Callable[[], None] = field(default=lambda: None)

    @property
    def state_name(self) -> str:
        return f"lpc/{self.device_id}.json"

    @property
    def cap_source(self) -> LimitSource:
        return LimitSource.LPC if self.lpc.state is LpcState.LIMITED else LimitSource.LPC_FAILSAFE

    # -- inputs from the EMS --------------------------------------------------
    def heartbeat(self) -> None:
        self._record(self.lpc.heartbeat_received())

    def write_limit(self, value_w: float, active: bool, duration_s: float | None, *, peer: str = "") -> WriteResult:
        self.journal.append(
            self.clock.now(),
            "limit_received",
            device=self.device_id,
            value_w=value_w,
            active=active,
            duration_s=duration_s,
            peer=peer,
        )
        result = self.lpc.write_limit(value_w, active, duration_s)
        self._answer("limit", result, peer)
        return result

    def write_failsafe(
        self, *, limit_w: float | None = None, duration_s: float | None = None, peer: str = ""
    ) -> WriteResult:
        self.journal.append(
            self.clock.now(),
            "failsafe_received",
            device=self.device_id,
            limit_w=limit_w,
            duration_s=duration_s,
            peer=peer,
        )
        result = self.lpc.write_failsafe(limit_w=limit_w, duration_s=duration_s)
        self._answer("failsafe", result, peer)
        return result

    # -- timers -----------------------------------------------------------------
    def tick(self) -> None:
        transitions = self.lpc.tick()
        if transitions:
            self._record(transitions)

    # -- internals ----------------------------------------------------------------
    def _answer(self, what: str, result: WriteResult, peer: str) -> None:
        self.journal.append(
            self.clock.now(),
            f"{what}_{'accepted' if result.accepted else 'denied'}",
            device=self.device_id,
            reason=result.reason,
            peer=peer,
        )
        if not result.accepted:
            log.warning("%s: %s write denied: %s", self.device_id, what, result.reason)
        self._record(list(result.transitions), force=result.accepted)

    def _record(self, transitions: list[LpcTransition], *, force: bool = False) -> None:
        for t in transitions:
            kind = "failsafe_entered" if t.new is LpcState.FAILSAFE else "lpc_state"
            if t.old is LpcState.FAILSAFE:
                kind = "failsafe_left"
            self.journal.append(t.at, kind, device=self.device_id, old=t.old.value, new=t.new.value, reason=t.reason)
        if transitions or force:
            self.persist()
            self.on_change()

    def persist(self) -> None:
        self.store.save(self.state_name, self.lpc.to_persisted())
