"""Pure physics of a wallbox with a car plugged in; time is passed in, never read.

Power follows the commanded current × voltage × phases with a ramp (an EV takes
a few seconds to follow a PWM change), energy integrates, the battery fills and
the car stops drawing when it is full.  Every wire-level simulator (Modbus,
OCPP, MQTT) and the in-process sim adapter drive this one model, so they all
behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.model import ChargingState


@dataclass(frozen=True)
class EvProfile:
    """The car: battery size, state of charge at plug-in, what it can draw."""

    capacity_wh: float = 60_000.0
    soc_pct: float = 30.0
    max_current_a: float = 32.0
    phases: int = 3
    target_soc_pct: float = 100.0


@dataclass(frozen=True)
class ScriptStep:
    """At `at_s` seconds of simulated time, plug `ev` in (or unplug when `ev` is None)."""

    at_s: float
    ev: EvProfile | None


@dataclass
class WallboxPhysics:
    """State of one simulated charge point; `advance(dt)` moves it forward."""

    phases_installed: int = 3
    min_current_a: float = 6.0
    max_current_a: float = 16.0
    voltage_v: float = 230.0
    frequency_hz: float = 50.0
    ramp_a_per_s: float = 4.0
    script: tuple[ScriptStep, ...] = ()
    # commanded
    setpoint_a: float = 0.0
    enabled: bool = True
    phases_selected: int | None = None  # for phase-switching boxes; None = installed
    # state
    elapsed_s: float = 0.0
    ev: EvProfile | None = None
    soc_pct: float | None = None
    actual_current_a: float = 0.0
    energy_wh: float = 0.0
    session_start_wh: float | None = None
    fault_code: str | None = None
    _script_pos: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self._run_script()

    # -- commands ---------------------------------------------------------
    def plug(self, ev: EvProfile) -> None:
        self.ev = ev
        self.soc_pct = ev.soc_pct
        self.session_start_wh = self.energy_wh

    def unplug(self) -> None:
        self.ev = None
        self.soc_pct = None
        self.actual_current_a = 0.0
        self.session_start_wh = None

    def set_current(self, current_a: float) -> None:
        if current_a < 0:
            raise ValueError("current must not be negative")
        self.setpoint_a = min(current_a, self.max_current_a)

    # -- derived ----------------------------------------------------------
    @property
    def active_phases(self) -> int:
        installed = self.phases_selected or self.phases_installed
        return min(installed, self.ev.phases) if self.ev else installed

    @property
    def target_current_a(self) -> float:
        """What the car would draw now: 0 below the IEC 61851 minimum, never above any cap."""
        if self.ev is None or not self.enabled or self.fault_code is not None:
            return 0.0
        if self.soc_pct is not None and self.soc_pct >= self.ev.target_soc_pct:
            return 0.0
        allowed = min(self.setpoint_a, self.max_current_a, self.ev.max_current_a)
        return allowed if allowed >= self.min_current_a else 0.0

    @property
    def power_w(self) -> float:
        return self.actual_current_a * self.voltage_v * self.active_phases

    @property
    def currents_a(self) -> tuple[float, float, float]:
        n = self.active_phases
        return tuple(self.actual_current_a if i < n else 0.0 for i in range(3))  # type: ignore[return-value]

    @property
    def session_energy_wh(self) -> float:
        return 0.0 if self.session_start_wh is None else self.energy_wh - self.session_start_wh

    @property
    def charging_state(self) -> ChargingState:
        if self.fault_code is not None:
            return ChargingState.FAULT
        if self.ev is None:
            return ChargingState.IDLE
        if self.actual_current_a > 0:
            return ChargingState.CHARGING
        if self.soc_pct is not None and self.soc_pct >= self.ev.target_soc_pct:
            return ChargingState.SUSPENDED_EV
        return ChargingState.SUSPENDED_EVSE

    # -- time -------------------------------------------------------------
    def advance(self, dt_s: float) -> None:
        """Move `dt_s` seconds forward in small steps (ramp and battery integrate)."""
        if dt_s < 0:
            raise ValueError("time does not run backwards")
        remaining = dt_s
        while remaining > 0:
            step = min(remaining, 1.0)
            self._step(step)
            remaining -= step

    def _step(self, dt: float) -> None:
        self.elapsed_s += dt
        self._run_script()
        target = self.target_current_a
        delta = target - self.actual_current_a
        max_delta = self.ramp_a_per_s * dt
        if abs(delta) <= max_delta or target == 0.0:
            # An EV stops drawing at once when the PWM says 0 or it is full.
            self.actual_current_a = target
        else:
            self.actual_current_a += max_delta if delta > 0 else -max_delta
        energy = self.power_w * dt / 3600.0
        self.energy_wh += energy
        if self.ev is not None and self.soc_pct is not None and energy > 0:
            self.soc_pct = min(100.0, self.soc_pct + 100.0 * energy / self.ev.capacity_wh)

    def _run_script(self) -> None:
        while self._script_pos < len(self.script) and self.script[self._script_pos].at_s <= self.elapsed_s:
            step = self.script[self._script_pos]
            self._script_pos += 1
            if step.ev is None:
                self.unplug()
            else:
                self.plug(step.ev)


@dataclass
class ChargerWatchdog:
    """A charger-side communication watchdog: fall back to a safe current when not refreshed."""

    timeout_s: float
    fallback_current_a: float
    last_refresh_s: float = 0.0
    tripped: bool = False

    def refresh(self, now_s: float) -> None:
        self.last_refresh_s = now_s
        self.tripped = False

    def check(self, now_s: float) -> bool:
        """True when the watchdog has expired (the charger must use the fallback current)."""
        if now_s - self.last_refresh_s > self.timeout_s:
            self.tripped = True
        return self.tripped


def advance_with_watchdog(
    physics: WallboxPhysics, watchdog: ChargerWatchdog | None, last: float, now: float, t0: float, commanded_a: float
) -> float:
    """Advance `physics` from `last` to `now` (monotonic); the watchdog trips at its exact moment.

    `t0` is the monotonic time the watchdog's clock starts at.  On expiry the
    box falls back to min(commanded, fallback) — and stops when the fallback
    is 0 — like a real charger does, not only at the next request.
    """
    if watchdog is not None and not watchdog.tripped:
        trip_at = t0 + watchdog.last_refresh_s + watchdog.timeout_s
        if trip_at < now:
            physics.advance(max(0.0, trip_at - last))
            last = max(last, trip_at)
    if watchdog is not None and watchdog.check(now - t0):
        physics.set_current(min(commanded_a, watchdog.fallback_current_a))
        physics.enabled = physics.enabled and watchdog.fallback_current_a > 0
    physics.advance(max(0.0, now - last))
    return now
