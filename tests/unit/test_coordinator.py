"""The coordinator writes only on change, keeps the watchdog alive and reports unreachable chargers."""

from __future__ import annotations

import anyio
import pytest

from adapters.sim.adapter import SimCharger, SimOptions
from bridge.clock import FakeClock
from bridge.core.coordinator import ChargerCoordinator, CoordinatorSettings
from bridge.model import ChargerSnapshot, Command, LimitSource, OperatingState

pytestmark = pytest.mark.anyio


class CountingCharger(SimCharger):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__("c1", SimOptions(watchdog_timeout_s=30), clock)
        self.applies: list[Command] = []
        self.keep_alives = 0

    async def apply(self, command: Command):  # type: ignore[no-untyped-def]
        self.applies.append(command)
        return await super().apply(command)

    async def keep_alive(self) -> None:
        self.keep_alives += 1
        await super().keep_alive()


async def _settle(clock: FakeClock, seconds: float) -> None:
    await clock.run_for(seconds)


def _cmd(amps: float) -> Command:
    return Command(charger_id="c1", current_a=(amps, amps, amps), binding=LimitSource.LPC, reason="test")


async def test_writes_only_on_change_and_keeps_watchdog_alive() -> None:
    clock = FakeClock()
    charger = CountingCharger(clock)
    snapshots: list[ChargerSnapshot] = []
    coordinator = ChargerCoordinator(
        charger, clock, CoordinatorSettings(poll_interval_s=1), on_snapshot=snapshots.append
    )
    async with anyio.create_task_group() as tg:
        await tg.start(coordinator.run)
        coordinator.set_command(_cmd(10))
        await _settle(clock, 5)
        coordinator.set_command(_cmd(10))  # same effect: no second write
        await _settle(clock, 60)
        assert [c.max_current_a for c in charger.applies] == [10]
        assert charger.keep_alives >= 5  # refresh every timeout/3 = 10 s
        assert charger.physics.setpoint_a == 10
        assert not charger.watchdog.tripped  # type: ignore[union-attr]
        coordinator.set_command(_cmd(6))
        await _settle(clock, 1)
        assert [c.max_current_a for c in charger.applies] == [10, 6]
        assert snapshots and snapshots[-1].available
        tg.cancel_scope.cancel()


async def test_unreachable_charger_is_reported_failed_and_recovers() -> None:
    clock = FakeClock()
    charger = CountingCharger(clock)
    snapshots: list[ChargerSnapshot] = []
    events: list[str] = []
    coordinator = ChargerCoordinator(
        charger,
        clock,
        CoordinatorSettings(poll_interval_s=1, failure_after_s=30, backoff_max_s=4),
        on_snapshot=snapshots.append,
        on_event=lambda kind, **_: events.append(kind),
    )
    async with anyio.create_task_group() as tg:
        await tg.start(coordinator.run)
        coordinator.set_command(_cmd(8))
        await _settle(clock, 3)
        charger.reachable = False
        await _settle(clock, 10)
        assert snapshots[-1].available is False
        assert snapshots[-1].device_state.operating_state is not OperatingState.FAILURE
        await _settle(clock, 30)
        assert snapshots[-1].device_state.operating_state is OperatingState.FAILURE
        charger.reachable = True
        await _settle(clock, 6)
        assert snapshots[-1].available is True
        assert events.count("charger_unreachable") == 1
        assert "charger_recovered" in events
        # after recovery the command is written again (the charger may have rebooted)
        assert [c.max_current_a for c in charger.applies] == [8, 8]
        tg.cancel_scope.cancel()


async def test_failing_write_waits_for_backoff_instead_of_spinning() -> None:
    clock = FakeClock()
    charger = CountingCharger(clock)
    calls = 0

    async def failing_apply(command: Command):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        from bridge.errors import ChargerUnreachable

        raise ChargerUnreachable("down")

    charger.apply = failing_apply  # type: ignore[method-assign]
    coordinator = ChargerCoordinator(charger, clock, CoordinatorSettings(poll_interval_s=1, backoff_max_s=4))
    async with anyio.create_task_group() as tg:
        await tg.start(coordinator.run)
        coordinator.set_command(_cmd(10))
        await clock.run_for(0)  # no time passes: at most a couple of attempts, not thousands
        assert calls <= 2
        await clock.run_for(20)
        assert 3 <= calls <= 20  # retried with backoff while time passes
        tg.cancel_scope.cancel()
