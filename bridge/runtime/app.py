"""Composition root: builds adapters, coordinators, LPC devices and the allocator from the config and runs them.

Task layout (every task belongs to the bridge's task group):
- one supervised coordinator task per charger (poll, apply, keep-alive);
- the control loop: runs LPC timers, recomputes the allocation on every
  change and at least every `allocator.recalc_interval_s` (CMB-04), hands
  commands to the coordinators, programs each charger's own fallback current;
- optional services (EEBus, MQTT northbound) started by `Bridge.run` callers
  through `extra_services`.

On shutdown (SIGINT/SIGTERM cancel the group) every charger is left at its
safe value: the failsafe limit converted to A (paused below the minimum).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from bridge.clock import Clock, wait_event
from bridge.config.loader import LoadedConfig
from bridge.config.model import BridgeConfig, LpcOverride
from bridge.core.allocator import Allocator, AllocatorSettings, ChargerDemand, Constraint, GroupBudget
from bridge.core.conversion import fallback_current_a
from bridge.core.coordinator import ChargerCoordinator, CoordinatorSettings, describe_command
from bridge.core.p14a import P14aSettings
from bridge.model import ChargerSnapshot, ChargingState, Command, FailsafeSettings, LimitCategory, LimitSource
from bridge.ports import AdapterDeps, AdapterFactory, AdapterRegistry, Charger, simulator
from bridge.runtime.devices import ExposedDevice
from bridge.runtime.journal import EventJournal
from bridge.runtime.statestore import StateStore
from bridge.runtime.supervisor import supervise
from bridge.usecases.lpc import Lpc, LpcSettings

log = logging.getLogger(__name__)

Service = Callable[["Bridge"], Awaitable[None]]


@dataclass
class ChargerHandle:
    charger: Charger
    coordinator: ChargerCoordinator
    device_id: str
    local_limit_w: float | None = None


class Bridge:
    """One site: its chargers, its exposed LPC devices, the allocator; see module docstring."""

    def __init__(
        self,
        loaded: LoadedConfig,
        clock: Clock,
        state_dir: Path,
        *,
        registry: AdapterRegistry | None = None,
        coordinator_settings: CoordinatorSettings | None = None,
    ) -> None:
        self.config: BridgeConfig = loaded.config
        self._options = loaded.adapter_options
        self.clock = clock
        self.state_dir = state_dir
        self.store = StateStore(state_dir)
        self.journal = EventJournal(state_dir / "journal.jsonl")
        self._registry = registry or AdapterRegistry()
        self._coordinator_settings = coordinator_settings
        cfg = self.config
        self.allocator = Allocator(
            AllocatorSettings(
                nominal_voltage_v=cfg.site.nominal_voltage_v,
                hysteresis_s=cfg.allocator.hysteresis_s,
                rotation_s=cfg.allocator.rotation_s,
                p14a=P14aSettings(
                    enabled=cfg.site.p14a.enabled,
                    floor=cfg.site.p14a.floor,
                    gzf_table=dict(cfg.site.p14a.gzf),
                    device_minimums_w=tuple(cfg.site.p14a.device_minimums_w) or (4200.0,),
                ),
            )
        )
        self.devices: dict[str, ExposedDevice] = {}
        self.chargers: dict[str, ChargerHandle] = {}
        self._changed = anyio.Event()
        self._stop = anyio.Event()
        self._last_commands: dict[str, Command] = {}
        self._last_logged: dict[str, tuple[Any, ...]] = {}
        self.snapshot_listeners: list[Callable[[ChargerSnapshot], None]] = []
        self.allocation_listeners: list[Callable[[dict[str, Command]], None]] = []
        self._build_devices()

    # -- construction ------------------------------------------------------------
    def _lpc_for(self, device_id: str, override: LpcOverride) -> Lpc:
        base = self.config.lpc
        failsafe = FailsafeSettings(
            consumption_limit_w=override.failsafe_limit_w
            if override.failsafe_limit_w is not None
            else base.failsafe_limit_w,
            duration_minimum_s=override.failsafe_duration or base.failsafe_duration,
        )
        settings = LpcSettings(
            heartbeat_timeout_s=base.heartbeat_timeout_s,
            init_timeout_s=base.init_timeout_s,
            recovery_grace_s=base.recovery_grace_s,
            after_failsafe=base.after_failsafe,
        )
        restored = self.store.load(f"lpc/{device_id}.json")
        if restored is not None:
            log.info("%s: restored LPC state (failsafe values, last limit) from %s", device_id, self.state_dir)
        return Lpc(self.clock, settings=settings, failsafe=failsafe, restored=restored, name=device_id)

    def _build_devices(self) -> None:
        grouped: dict[str, str] = {}
        for group in self.config.groups:
            self.devices[group.id] = self._device(group.id, tuple(group.chargers), group.lpc, is_group=True)
            grouped.update({member: group.id for member in group.chargers})
        for charger in self.config.chargers:
            if charger.id not in grouped:
                self.devices[charger.id] = self._device(charger.id, (charger.id,), charger.lpc, is_group=False)
        self._device_of = {c.id: grouped.get(c.id, c.id) for c in self.config.chargers}

    def _device(
        self, device_id: str, members: tuple[str, ...], override: LpcOverride, *, is_group: bool
    ) -> ExposedDevice:
        device = ExposedDevice(
            device_id,
            members,
            self._lpc_for(device_id, override),
            self.clock,
            self.store,
            self.journal,
            is_group=is_group,
            on_change=self.request_recompute,
        )
        device.persist()
        return device

    # -- public API for services -----------------------------------------------------
    def stop(self) -> None:
        """Graceful shutdown: stop the control tasks, leave every charger at its safe value, close adapters."""
        self._stop.set()

    async def _stop_when_asked(self, scope: anyio.CancelScope) -> None:
        await self._stop.wait()
        scope.cancel()

    def request_recompute(self) -> None:
        self._changed.set()

    def snapshot(self, charger_id: str) -> ChargerSnapshot | None:
        return self.chargers[charger_id].coordinator.snapshot if charger_id in self.chargers else None

    def set_local_limit(self, charger_id: str, watts: float | None) -> None:
        """A local (MQTT/REST) limit: lower priority than LPC, it can only reduce (CMB-02)."""
        self.chargers[charger_id].local_limit_w = watts
        self.journal.append(self.clock.now(), "local_limit", charger=charger_id, value_w=watts)
        self.request_recompute()

    # -- running -------------------------------------------------------------------
    async def run(
        self, *, extra_services: Sequence[Service] = (), task_status: TaskStatus[Bridge] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with AsyncExitStack() as stack:
            factories = await self._enter_factories(stack)
            for charger_cfg in self.config.chargers:
                factory = factories[charger_cfg.adapter["type"]]
                charger = factory.create(charger_cfg.id, self._options[charger_cfg.id])
                coordinator = ChargerCoordinator(
                    charger,
                    self.clock,
                    self._coordinator_settings or CoordinatorSettings(poll_interval_s=charger_cfg.poll_interval_s),
                    on_snapshot=self._on_snapshot,
                    on_event=self._on_charger_event,
                )
                self.chargers[charger_cfg.id] = ChargerHandle(charger, coordinator, self._device_of[charger_cfg.id])
            # Simulators (demo, commissioning) start after the adapters so that a charge point can dial
            # the CSMS, and before the coordinators so that a Modbus box answers the first poll.
            for sim_options in self.config.simulators:
                try:
                    await stack.enter_async_context(simulator(sim_options["type"])(sim_options, self.clock))
                except OSError as exc:
                    raise OSError(f"simulator {sim_options}: {exc.strerror or exc}") from exc
                log.info("started simulator %s", sim_options)
            self.journal.append(self.clock.now(), "bridge_started", chargers=list(self.chargers))
            try:
                async with anyio.create_task_group() as tg:
                    self._recompute()  # first commands (Init: failsafe cap) before any charger task writes
                    for cid, handle in self.chargers.items():
                        tg.start_soon(_supervised, f"charger {cid}", handle.coordinator.run, self.clock)
                    tg.start_soon(self._control_loop)
                    for service in extra_services:
                        tg.start_soon(service, self)
                    tg.start_soon(self._stop_when_asked, tg.cancel_scope)
                    task_status.started(self)
            finally:
                # After stop(): the adapters' connection owners are still running, so the safe values
                # really reach the chargers.  After an outer cancellation we still try, shielded.
                await self._leave_safe()

    async def _enter_factories(self, stack: AsyncExitStack) -> dict[str, AdapterFactory]:
        factories: dict[str, AdapterFactory] = {}
        deps = AdapterDeps(clock=self.clock, state_dir=self.state_dir)
        for kind in sorted({c.adapter["type"] for c in self.config.chargers}):
            factories[kind] = await stack.enter_async_context(self._registry.factory(kind, deps))
        return factories

    async def _control_loop(self) -> None:
        interval = self.config.allocator.recalc_interval_s
        while True:
            self._changed = anyio.Event()
            self._recompute()
            now = self.clock.monotonic()
            deadlines = [d for dev in self.devices.values() if (d := dev.lpc.next_deadline()) is not None]
            timeout = min([interval, *(max(0.0, d - now) for d in deadlines)])
            await wait_event(self.clock, self._changed, timeout)

    def _recompute(self) -> None:
        """LPC timers → constraints → allocation → commands and fallback currents (control path steps 2–4)."""
        for device in self.devices.values():
            device.tick()
        demands: list[ChargerDemand] = []
        groups: list[GroupBudget] = []
        for device in self.devices.values():
            cap = device.lpc.effective_cap_w
            if device.is_group:
                groups.append(GroupBudget(device.device_id, device.members, cap, device.cap_source))
        for cid, handle in self.chargers.items():
            device = self.devices[handle.device_id]
            constraints: list[Constraint] = []
            cap = device.lpc.effective_cap_w
            if not device.is_group and cap is not None:
                constraints.append(Constraint(device.cap_source, power_w=cap))
            if handle.local_limit_w is not None:
                constraints.append(
                    Constraint(LimitSource.LOCAL, LimitCategory.RECOMMENDATION, power_w=handle.local_limit_w)
                )
            snapshot = handle.coordinator.snapshot
            caps = handle.charger.capabilities
            demands.append(
                ChargerDemand(
                    cid,
                    caps,
                    tuple(constraints),
                    wants_power=_wants_power(snapshot),
                    switched_phases=snapshot.applied.phases
                    if snapshot and caps.characteristics.phase_switching
                    else None,
                )
            )
            share = device.lpc.failsafe.consumption_limit_w / len(device.members)
            handle.coordinator.set_fallback_current(
                fallback_current_a(share, caps.characteristics, nominal_voltage_v=self.config.site.nominal_voltage_v)
            )
        allocation = self.allocator.allocate(demands, groups, self.clock.monotonic())
        for cid, command in allocation.commands.items():
            previous = self._last_commands.get(cid)
            if not command.same_effect(previous):
                log.info("%s: command %s — %s", cid, describe_command(command), command.reason or command.binding.value)
            self._last_commands[cid] = command
            self.chargers[cid].coordinator.set_command(command)
        for listener in self.allocation_listeners:
            listener(allocation.commands)

    async def _leave_safe(self) -> None:
        with anyio.CancelScope(shield=True):
            for cid, handle in self.chargers.items():
                device = self.devices[handle.device_id]
                share = device.lpc.failsafe.consumption_limit_w / len(device.members)
                amps = fallback_current_a(
                    share,
                    handle.charger.capabilities.characteristics,
                    nominal_voltage_v=self.config.site.nominal_voltage_v,
                )
                safe = (
                    Command(charger_id=cid, pause=True, binding=LimitSource.LPC_FAILSAFE, reason="shutdown")
                    if amps <= 0
                    else Command(
                        charger_id=cid,
                        current_a=(amps, amps, amps),
                        binding=LimitSource.LPC_FAILSAFE,
                        reason="shutdown",
                    )
                )
                await handle.coordinator.leave_safe(safe)
                await handle.charger.aclose()
            self.journal.append(self.clock.now(), "bridge_stopped")

    # -- callbacks --------------------------------------------------------------------
    def _on_snapshot(self, snapshot: ChargerSnapshot) -> None:
        key = (
            snapshot.available,
            snapshot.ev_connected,
            snapshot.charging_state,
            snapshot.device_state.operating_state,
        )
        power = snapshot.measurement.power_w
        previous = self._last_logged.get(snapshot.charger_id)
        if previous is None or previous[0] != key or _power_moved(previous[1], power):
            log.info(
                "%s: %s, EV %s, %s, %s",
                snapshot.charger_id,
                "online" if snapshot.available else "UNREACHABLE",
                {True: "connected", False: "not connected", None: "unknown"}[snapshot.ev_connected],
                snapshot.charging_state.value,
                "power unknown" if power is None else f"{power / 1000:.2f} kW",
            )
            self._last_logged[snapshot.charger_id] = (key, power)
            if previous is None or previous[0] != key:
                self.request_recompute()  # an EV plugged in or left: group shares change
        for listener in self.snapshot_listeners:
            listener(snapshot)

    def _on_charger_event(self, kind: str, **fields: Any) -> None:
        self.journal.append(self.clock.now(), kind, **fields)


async def _supervised(name: str, run: Callable[[], Awaitable[None]], clock: Clock) -> None:
    await supervise(name, run, clock)


def _wants_power(snapshot: ChargerSnapshot | None) -> bool:
    if snapshot is None or snapshot.ev_connected is None:
        return True  # unknown: do not starve it
    if not snapshot.ev_connected:
        return False
    return snapshot.charging_state not in (ChargingState.SUSPENDED_EV, ChargingState.FINISHED, ChargingState.FAULT)


def _power_moved(before: float | None, after: float | None) -> bool:
    if before is None or after is None:
        return before != after
    return abs(after - before) > max(100.0, 0.1 * abs(before))
