"""One coordinator per charger: poll, apply the allocator's command, read back, availability, keep-alive.

It is the single owner of its `Charger`: nobody else calls the adapter for
that charger, so writes never race.  Writes happen only when the command
changes (or the previous write failed); the charger's own watchdog is
refreshed at its cadence by `keep_alive()`.  Timers come from the injected
clock; only the adapter's own network waits use real deadlines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from bridge.clock import Clock, wait_event
from bridge.errors import AdapterError, ChargerUnreachable
from bridge.model import ChargerSnapshot, Command, DeviceState, OperatingState
from bridge.ports import Charger, WatchdogKind
from bridge.runtime.backoff import Backoff

log = logging.getLogger(__name__)

EventSink = Callable[..., None]


@dataclass(frozen=True)
class CoordinatorSettings:
    poll_interval_s: float = 2.0
    request_timeout_s: float = 10.0
    failure_after_s: float = 30.0  # GEN-09: unreachable this long ⇒ operatingState failure
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0


class ChargerCoordinator:
    """Owns one charger; see module docstring."""

    def __init__(
        self,
        charger: Charger,
        clock: Clock,
        settings: CoordinatorSettings = CoordinatorSettings(),
        *,
        on_snapshot: Callable[[ChargerSnapshot], None] | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.charger = charger
        self._clock = clock
        self._settings = settings
        self._on_snapshot = on_snapshot or (lambda _s: None)
        self._on_event = on_event or (lambda *_a, **_k: None)
        self._wake = anyio.Event()
        self._desired: Command | None = None
        self._applied: Command | None = None
        self._fallback_a: float | None = None
        self._fallback_applied: float | None = None
        self._snapshot: ChargerSnapshot | None = None
        self._unreachable_since: float | None = None
        self._last_keep_alive = float("-inf")
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self.degraded_reason: str | None = None

    # -- for the runtime ---------------------------------------------------
    @property
    def charger_id(self) -> str:
        return self.charger.charger_id

    @property
    def snapshot(self) -> ChargerSnapshot | None:
        return self._snapshot

    @property
    def applied_command(self) -> Command | None:
        return self._applied

    def set_command(self, command: Command) -> None:
        """Hand over the allocator's command; the owner task writes it if it changes anything."""
        if command.charger_id != self.charger_id:
            raise ValueError(f"command for {command.charger_id} given to {self.charger_id}")
        self._desired = command
        self._wake.set()

    def set_fallback_current(self, current_a: float) -> None:
        """The current the charger's own watchdog shall fall back to (LPC-42)."""
        self._fallback_a = current_a
        self._wake.set()

    # -- the owner task ----------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        caps = self.charger.capabilities
        if caps.watchdog.kind is WatchdogKind.NONE:
            log.warning(
                "charger %s: watchdog: none — it will keep its last current if the bridge dies",
                self.charger_id,
                extra={"charger": self.charger_id},
            )
        task_status.started()
        while True:
            self._wake = anyio.Event()
            delay = await self._cycle()
            if self._wake.is_set():
                continue  # a new command or fallback arrived during this round: serve it now
            # After a failed write we wait like after any failure (backoff), never spin.
            await wait_event(self._clock, self._wake, delay)

    async def _cycle(self) -> float:
        """One poll/apply/keep-alive round; returns how long to wait before the next."""
        try:
            # A pending limit goes out before the (possibly slow) poll, so it takes effect at once.
            await self._apply_command()
            await self._poll()
            await self._apply_fallback()
            await self._keep_alive()
        except AdapterError as exc:
            self._mark_unreachable(exc)
            return self._backoff.next_delay() if exc.retryable else self._settings.poll_interval_s
        self._backoff.reset()
        return self._settings.poll_interval_s

    async def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            with anyio.fail_after(self._settings.request_timeout_s):
                return await fn()
        except TimeoutError:
            # The adapter's own deadlines should fire first; if not, it is still the charger not answering.
            raise ChargerUnreachable(f"{what} took longer than {self._settings.request_timeout_s:g} s") from None

    async def _poll(self) -> None:
        snapshot: ChargerSnapshot = await self._call("read", self.charger.read)
        if self._unreachable_since is not None:
            log.info("charger %s: reachable again", self.charger_id, extra={"charger": self.charger_id})
            self._on_event("charger_recovered", charger=self.charger_id)
            self._unreachable_since = None
            self._applied = None  # the charger may have restarted: write again
            self._fallback_applied = None
        self._publish(snapshot)

    async def _apply_command(self) -> None:
        desired = self._desired
        if desired is None or desired.same_effect(self._applied):
            return
        readback = await self._call("apply", lambda: self.charger.apply(desired))
        self._applied = desired
        self._last_keep_alive = self._clock.monotonic()  # a write refreshes the watchdog too
        mismatch = (
            not desired.pause
            and desired.current_a is not None
            and readback.current_a is not None
            and readback.current_a > desired.max_current_a + 1e-6
        )
        self.degraded_reason = (
            f"read back {readback.current_a} A above commanded {desired.max_current_a} A" if mismatch else None
        )
        if mismatch:
            log.warning("charger %s: %s", self.charger_id, self.degraded_reason, extra={"charger": self.charger_id})
        log.info(
            "charger %s: applied %s (%s: %s)",
            self.charger_id,
            "pause" if desired.pause else describe_command(desired),
            desired.binding.value,
            desired.reason,
            extra={"charger": self.charger_id},
        )
        self._on_event(
            "limit_applied",
            charger=self.charger_id,
            pause=desired.pause,
            current_a=list(desired.current_a) if desired.current_a else None,
            power_w=desired.power_w,
            phases=desired.phases,
            binding=desired.binding.value,
            reason=desired.reason,
            readback_a=readback.current_a,
        )

    async def _apply_fallback(self) -> None:
        if self._fallback_a is None or self._fallback_a == self._fallback_applied:
            return
        if self.charger.capabilities.watchdog.kind is WatchdogKind.NONE:
            self._fallback_applied = self._fallback_a
            return
        current = self._fallback_a
        await self._call("fallback", lambda: self.charger.set_fallback_current(current))
        self._fallback_applied = current
        self._on_event("fallback_current_set", charger=self.charger_id, current_a=current)

    async def _keep_alive(self) -> None:
        refresh = self.charger.capabilities.watchdog.refresh_s
        if refresh is None:
            return
        now = self._clock.monotonic()
        if now - self._last_keep_alive >= refresh:
            await self._call("keep_alive", self.charger.keep_alive)
            self._last_keep_alive = now

    def _mark_unreachable(self, exc: AdapterError) -> None:
        now = self._clock.monotonic()
        first = self._unreachable_since is None
        if first:
            self._unreachable_since = now
            log.warning("charger %s: %s", self.charger_id, exc, extra={"charger": self.charger_id})
            self._on_event("charger_unreachable", charger=self.charger_id, error=str(exc))
        since = self._unreachable_since if self._unreachable_since is not None else now
        failed = now - since >= self._settings.failure_after_s
        if self._snapshot is not None:
            update: dict[str, Any] = {"available": False, "timestamp": self._clock.now()}
            if failed:
                update["device_state"] = DeviceState(
                    operating_state=OperatingState.FAILURE, last_error_code="unreachable"
                )
            self._publish(self._snapshot.model_copy(update=update), force=first or failed)

    def _publish(self, snapshot: ChargerSnapshot, *, force: bool = True) -> None:
        self._snapshot = snapshot
        if force:
            self._on_snapshot(snapshot)

    async def leave_safe(self, command: Command) -> None:
        """Shutdown: write the safe command once, shielded and time-boxed (called by the runtime)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._settings.request_timeout_s):
            try:
                await self.charger.apply(command)
                log.info("charger %s: left at safe value (%s)", self.charger_id, describe_command(command))
            except AdapterError as exc:
                log.warning("charger %s: could not leave a safe value: %s", self.charger_id, exc)


def describe_command(command: Command) -> str:
    """'pause', '7400 W' or '16 A × 3p' for log lines."""
    if command.pause:
        return "pause"
    if command.power_w is not None:
        return f"{command.power_w:.0f} W"
    phases = f" × {command.phases}p" if command.phases else ""
    return f"{command.max_current_a:g} A{phases}"
