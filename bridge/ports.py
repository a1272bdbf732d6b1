"""The `Charger` port every adapter implements, its capability protocols, and the adapter registry.

The core talks to every wallbox through this module only.  Adapters are found
through the `evbridge.adapters` entry point group, so `bridge` never imports
`adapters`.  An entry point names a callable `(AdapterDeps) -> AdapterFactory`.

Lifecycle: the runtime enters each factory (`async with factory:`), which owns
the shared endpoint tasks (one owner per Modbus bus or gateway IP, the OCPP
server, the MQTT client), then calls `create()` per configured charger.  Charger
methods send requests to those owners and wait with a deadline; they raise
`bridge.errors.AdapterError` subclasses only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel, ConfigDict, Field

from bridge.clock import Clock
from bridge.errors import ConfigError
from bridge.model import AppliedSetpoint, Characteristics, ChargerSnapshot, Command

ENTRY_POINT_GROUP = "evbridge.adapters"
SIMULATOR_GROUP = "evbridge.simulators"


class ControlMode(StrEnum):
    """How the charger takes a limit: a current per phase (most) or a power (some OCPP/MQTT)."""

    CURRENT = "current"
    POWER = "power"


class WatchdogKind(StrEnum):
    """Whether the charger falls back by itself when the bridge dies."""

    CHARGER = "charger"  # the charger's own watchdog/validity (register, OCPP profile validity)
    NONE = "none"  # keeps its last current if the bridge dies: warned at start-up


class Watchdog(BaseModel):
    """The charger's own communication-loss fallback, as far as the adapter can set it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: WatchdogKind = WatchdogKind.NONE
    timeout_s: float | None = Field(default=None, gt=0)
    refresh_s: float | None = Field(default=None, gt=0)
    description: str = ""


class Capabilities(BaseModel):
    """What one charger can do; decides which use cases are announced and how commands look."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    control: ControlMode = ControlMode.CURRENT
    characteristics: Characteristics = Characteristics()
    power_resolution_w: float = Field(default=1.0, gt=0)
    can_pause: bool = True
    per_phase_metering: bool = False
    frequency: bool = False
    soc: bool = False
    identification: bool = False
    asymmetric_current: bool = False
    watchdog: Watchdog = Watchdog()


@runtime_checkable
class MeasurementReader(Protocol):
    async def read(self) -> ChargerSnapshot:
        """A fresh snapshot; raises ChargerUnreachable when the link is down."""
        ...


@runtime_checkable
class LimitWriter(Protocol):
    async def apply(self, command: Command) -> AppliedSetpoint:
        """Make the charger follow `command` (current or power, pause/resume, phases).

        Returns what the charger reports back after the write (read-back).
        Raises ChargerRejected, ChargerUnreachable or CapabilityNotSupported.
        """
        ...


@runtime_checkable
class KeepAlive(Protocol):
    async def keep_alive(self) -> None:
        """Refresh the charger's own watchdog so it does not fall back; no-op without one."""
        ...


@runtime_checkable
class FailsafeProgrammer(Protocol):
    async def set_fallback_current(self, current_a: float) -> None:
        """Program the current the charger falls back to when the bridge is gone (LPC-42)."""
        ...


class Charger(MeasurementReader, LimitWriter, KeepAlive, FailsafeProgrammer, Protocol):
    """One charge point (one socket/connector/EVSE) as the core sees it."""

    @property
    def charger_id(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def aclose(self) -> None:
        """Release what this charger holds; the charger is left at its safe value by the caller first."""
        ...


@dataclass(frozen=True)
class AdapterDeps:
    """What the runtime injects into every adapter factory."""

    clock: Clock
    state_dir: Path
    mapping_dirs: tuple[Path, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)  # adapter-wide settings from the config


class AdapterFactory(Protocol):
    """Creates chargers of one kind and owns the shared endpoint tasks they use."""

    kind: str
    #: the pydantic model `validate_options` returns: `evbridge schema` publishes its JSON Schema and
    #: the config loader uses it for "did you mean" on a typo'd option
    options_model: type[BaseModel]

    def validate_options(self, options: Mapping[str, Any]) -> BaseModel:
        """Check one charger's adapter options; raise pydantic.ValidationError or ConfigError."""
        ...

    def create(self, charger_id: str, options: BaseModel) -> Charger:
        """A charger for validated `options`; no I/O happens here."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...


class EndpointOwner:
    """Base for adapter factories that own connection tasks: entering opens their task group, leaving ends them.

    `start(fn)` runs an owner task (one per Modbus bus, MQTT broker, …) for as
    long as the factory is entered; starting one before entering is a bug.
    """

    _tg: TaskGroup | None = None

    def start(self, fn: Callable[[], Awaitable[Any]]) -> None:
        if self._tg is None:
            raise RuntimeError(f"{type(self).__name__}: enter the factory (async with) before creating chargers")
        self._tg.start_soon(fn)

    async def __aenter__(self) -> Self:
        self._cm = anyio.create_task_group()
        self._tg = await self._cm.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        result = await self._cm.__aexit__(exc_type, exc, tb)
        self._tg = None
        return result


class AdapterRegistry:
    """Finds adapter factories by kind through entry points; one per runtime, never global."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self._group = group

    def kinds(self) -> list[str]:
        return sorted(ep.name for ep in entry_points(group=self._group))

    def factory(self, kind: str, deps: AdapterDeps) -> AdapterFactory:
        """Build the factory for `kind`; ConfigError names the known kinds when it is unknown."""
        for ep in entry_points(group=self._group):
            if ep.name == kind:
                make = ep.load()
                factory: AdapterFactory = make(deps)
                return factory
        known = ", ".join(self.kinds()) or "none installed"
        raise ConfigError(f"unknown adapter type {kind!r} (known: {known})")


class SimulatorFactory(Protocol):
    """`(options, clock) -> async context manager` that serves a simulated charger on loopback."""

    def __call__(self, options: Mapping[str, Any], clock: Clock) -> Any: ...


def simulator(kind: str, group: str = SIMULATOR_GROUP) -> SimulatorFactory:
    """The simulator factory registered for `kind` (ConfigError naming the known ones otherwise)."""
    for ep in entry_points(group=group):
        if ep.name == kind:
            factory: SimulatorFactory = ep.load()
            return factory
    known = ", ".join(sorted(ep.name for ep in entry_points(group=group))) or "none installed"
    raise ConfigError(f"unknown simulator type {kind!r} (known: {known})")
