"""In-process simulated charger behind the `Charger` port (the demo's default adapter).

It drives `WallboxPhysics` with the injected clock, so tests run hours of
charging in microseconds, and it has a real watchdog: without `keep_alive()`
for `watchdog_timeout_s` it falls back to its fallback current, like a KEBA or
Alfen would.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from adapters.sim.physics import ChargerWatchdog, EvProfile, ScriptStep, WallboxPhysics, advance_with_watchdog
from bridge.clock import Clock
from bridge.errors import ChargerUnreachable
from bridge.model import (
    AcMeasurement,
    AppliedSetpoint,
    Characteristics,
    ChargerSnapshot,
    Command,
    DeviceState,
    ManufacturerInformation,
    SessionSummary,
    ValueSource,
)
from bridge.ports import AdapterDeps, Capabilities, Watchdog, WatchdogKind


class EvOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity_kwh: float = Field(default=60.0, gt=0)
    soc_pct: float = Field(default=30.0, ge=0, le=100)
    max_current_a: float = Field(default=32.0, gt=0)
    phases: Literal[1, 2, 3] = 3


class ScriptOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: float = Field(ge=0)
    action: Literal["plug", "unplug"]
    ev: EvOptions = EvOptions()


class SimOptions(BaseModel):
    """Options of a `type: sim` charger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sim"] = "sim"
    phases: Literal[1, 2, 3] = 3
    phase_switching: bool = False
    min_current_a: float = Field(default=6.0, ge=0)
    max_current_a: float = Field(default=16.0, gt=0)
    voltage_v: float = Field(default=230.0, gt=0)
    ramp_a_per_s: float = Field(default=4.0, gt=0)
    vendor: str = "evbridge"
    model: str = "Simulated wallbox"
    serial: str = "SIM-0001"
    watchdog_timeout_s: float | None = Field(default=60.0, gt=0)
    fallback_current_a: float = Field(default=6.0, ge=0)
    script: tuple[ScriptOptions, ...] = (ScriptOptions(at_s=0, action="plug"),)


class SimCharger:
    """A simulated charge point; see module docstring."""

    def __init__(self, charger_id: str, options: SimOptions, clock: Clock) -> None:
        self._id = charger_id
        self._options = options
        self._clock = clock
        self._t0 = clock.monotonic()
        self._last = self._t0
        script = tuple(
            ScriptStep(
                at_s=s.at_s,
                ev=None
                if s.action == "unplug"
                else EvProfile(s.ev.capacity_kwh * 1000, s.ev.soc_pct, s.ev.max_current_a, s.ev.phases),
            )
            for s in options.script
        )
        self.physics = WallboxPhysics(
            phases_installed=options.phases,
            min_current_a=options.min_current_a,
            max_current_a=options.max_current_a,
            voltage_v=options.voltage_v,
            ramp_a_per_s=options.ramp_a_per_s,
            script=script,
        )
        self.watchdog = (
            ChargerWatchdog(options.watchdog_timeout_s, options.fallback_current_a, last_refresh_s=0.0)
            if options.watchdog_timeout_s
            else None
        )
        self.reachable = True
        self._session_seq = 0
        self._session: SessionSummary | None = None
        self._commanded_a = 0.0
        self._caps = Capabilities(
            characteristics=Characteristics(
                phases_installed=options.phases,
                min_current_a=options.min_current_a,
                max_current_a=options.max_current_a,
                nominal_voltage_v=options.voltage_v,
                phase_switching=options.phase_switching,
            ),
            per_phase_metering=True,
            frequency=True,
            soc=True,
            watchdog=Watchdog(
                kind=WatchdogKind.CHARGER if self.watchdog else WatchdogKind.NONE,
                timeout_s=options.watchdog_timeout_s,
                refresh_s=options.watchdog_timeout_s / 3 if options.watchdog_timeout_s else None,
                description="simulated charger falls back to its fallback current",
            ),
        )

    @property
    def charger_id(self) -> str:
        return self._id

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def _sync(self) -> None:
        self._last = advance_with_watchdog(
            self.physics, self.watchdog, self._last, self._clock.monotonic(), self._t0, self._commanded_a
        )

    def _check_link(self) -> None:
        if not self.reachable:
            raise ChargerUnreachable(f"simulated charger {self._id} is unreachable")

    async def read(self) -> ChargerSnapshot:
        self._check_link()
        self._sync()
        p = self.physics
        self._track_session()
        n = p.active_phases
        volts = tuple(p.voltage_v if i < n else None for i in range(3))
        return ChargerSnapshot(
            charger_id=self._id,
            timestamp=self._clock.now(),
            manufacturer=ManufacturerInformation(
                vendor=self._options.vendor, model=self._options.model, serial=self._options.serial, firmware="sim-1"
            ),
            characteristics=self._caps.characteristics,
            device_state=DeviceState.from_charging(p.charging_state, p.fault_code),
            ev_connected=p.ev is not None,
            charging_state=p.charging_state,
            active_phases=n,  # type: ignore[arg-type]
            measurement=AcMeasurement(
                power_w=p.power_w,
                power_per_phase_w=tuple(c * p.voltage_v for c in p.currents_a),  # type: ignore[arg-type]
                power_per_phase_source=ValueSource.CALCULATED,
                current_per_phase_a=p.currents_a,
                voltage_per_phase_v=volts,  # type: ignore[arg-type]
                energy_wh=p.energy_wh,
                frequency_hz=p.frequency_hz,
                soc_pct=p.soc_pct,
            ),
            applied=AppliedSetpoint(current_a=p.setpoint_a, enabled=p.enabled, phases=n),  # type: ignore[arg-type]
            session=self._session,
        )

    def _track_session(self) -> None:
        p = self.physics
        if p.ev is not None and (self._session is None or self._session.ended_at is not None):
            self._session_seq += 1
            self._session = SessionSummary(
                session_id=f"{self._id}-{self._session_seq}",
                started_at=self._clock.now(),
                energy_start_wh=p.energy_wh,
            )
        elif p.ev is not None and self._session is not None:
            self._session = self._session.model_copy(update={"energy_wh": p.session_energy_wh})
        elif p.ev is None and self._session is not None and self._session.ended_at is None:
            self._session = self._session.model_copy(update={"ended_at": self._clock.now()})

    async def apply(self, command: Command) -> AppliedSetpoint:
        self._check_link()
        self._sync()
        current = 0.0 if command.pause else command.max_current_a
        if command.power_w is not None and not command.pause:
            current = command.power_w / (self.physics.voltage_v * self.physics.active_phases)
        self._commanded_a = current
        self.physics.enabled = not command.pause
        self.physics.set_current(current)
        if command.phases is not None:
            self.physics.phases_selected = command.phases
        if self.watchdog:
            self.watchdog.refresh(self._clock.monotonic() - self._t0)
        return AppliedSetpoint(current_a=self.physics.setpoint_a, enabled=self.physics.enabled)

    async def keep_alive(self) -> None:
        self._check_link()
        if self.watchdog:
            self.watchdog.refresh(self._clock.monotonic() - self._t0)

    async def set_fallback_current(self, current_a: float) -> None:
        self._check_link()
        if self.watchdog:
            self.watchdog.fallback_current_a = current_a

    async def aclose(self) -> None:
        return None


class SimFactory:
    """Factory of in-process simulated chargers; it owns no shared endpoints."""

    kind = "sim"
    options_model = SimOptions

    def __init__(self, deps: AdapterDeps) -> None:
        self._deps = deps

    def validate_options(self, options: Mapping[str, Any]) -> SimOptions:
        return SimOptions.model_validate(dict(options))

    def create(self, charger_id: str, options: BaseModel) -> SimCharger:
        assert isinstance(options, SimOptions)
        return SimCharger(charger_id, options, self._deps.clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def make_factory(deps: AdapterDeps) -> SimFactory:
    """Entry point `evbridge.adapters: sim`."""
    return SimFactory(deps)
