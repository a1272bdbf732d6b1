"""Failsafe profiles (the charge point falls back by itself) and proxy mode (upstream CSMS kept, bridge limit wins)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from websockets.asyncio.server import ServerConnection, serve

from adapters.ocpp.factory import OcppFactory
from adapters.sim.ocpp_cp import SimCore, SimStation
from adapters.sim.physics import EvProfile
from bridge.clock import FakeClock, SystemClock
from bridge.ports import AdapterDeps, WatchdogKind
from tests.integration.test_ocpp_helpers import command, wait_for

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_failsafe_charge_point_falls_back_when_bridge_is_gone(tmp_path: Path, version: str) -> None:
    clock = FakeClock()
    (tmp_path / "short.yaml").write_text("vendor: short\nfailsafe: {validity_s: 6}\n")
    deps = AdapterDeps(
        clock=clock, state_dir=tmp_path, mapping_dirs=(tmp_path,), options={"host": "127.0.0.1", "port": 0}
    )
    factory = OcppFactory(deps)
    station = SimStation("SIM-1", version, SimCore(clock))
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            async with factory:
                charger = factory.create(
                    "cp1",
                    factory.validate_options({"type": "ocpp", "charge_point_id": "SIM-1", "vendor_profile": "short"}),
                )
                srv = await factory.wait_started()
                tg.start_soon(station.run, f"ws://127.0.0.1:{srv.port}")
                await station.booted.wait()
                await factory.session("SIM-1").ready.wait()  # type: ignore[union-attr]
                assert charger.capabilities.watchdog.kind is WatchdogKind.CHARGER
                assert charger.capabilities.watchdog.timeout_s == 6
                await charger.set_fallback_current(6.0)
                await charger.apply(command("cp1", 14.0))
                assert station.core.effective_limit_a() == pytest.approx(14.0)
                for _ in range(3):  # the bridge is alive: keep_alive() every 3 s keeps the live profile valid
                    clock.advance(3)
                    await charger.keep_alive()
                    assert station.core.effective_limit_a() == pytest.approx(14.0)
            # the bridge is gone (server closed); the charge point is on its own
            await wait_for(lambda: station.cp is None)
            clock.advance(3)
            assert station.core.effective_limit_a() == pytest.approx(14.0)  # still within validTo
            clock.advance(4)
            assert station.core.effective_limit_a() == pytest.approx(6.0)  # expired → the stack-0 fallback
            station.core.physics.plug(EvProfile())
            station.core.sync()
            clock.advance(1)
            station.core.sync()
            assert station.core.physics.actual_current_a == pytest.approx(6.0)


class StandInCsms(LibChargePoint):  # type: ignore[misc]
    """The charger's own back end, written with the ocpp library; it records what reaches it."""

    received: list[str]

    @on("BootNotification")
    def _boot(self, **_: Any) -> Any:
        self.received.append("BootNotification")
        return r16.BootNotification(current_time="2026-01-01T00:00:00Z", interval=300, status="Accepted")

    @on("StatusNotification")
    def _status(self, **_: Any) -> Any:
        self.received.append("StatusNotification")
        return r16.StatusNotification()

    @on("MeterValues")
    def _meter(self, **_: Any) -> Any:
        self.received.append("MeterValues")
        return r16.MeterValues()

    @on("StartTransaction")
    def _start(self, **_: Any) -> Any:
        self.received.append("StartTransaction")
        return r16.StartTransaction(transaction_id=777, id_tag_info={"status": "Accepted"})

    @on("Heartbeat")
    def _hb(self, **_: Any) -> Any:
        return r16.Heartbeat(current_time="2026-01-01T00:00:00Z")


async def test_proxy_mode_forwards_both_ways_and_bridge_limit_wins(tmp_path: Path) -> None:
    upstream: dict[str, StandInCsms] = {}
    connected = anyio.Event()

    async def handler(ws: ServerConnection) -> None:
        cp = StandInCsms(ws.request.path.rsplit("/", 1)[-1], ws)  # type: ignore[union-attr]
        cp.received = []
        upstream["cp"] = cp
        connected.set()
        try:
            await cp.start()
        except Exception:
            return

    with anyio.fail_after(20):
        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as up_server:  # type: ignore[list-item]
            up_port = up_server.sockets[0].getsockname()[1]
            deps = AdapterDeps(clock=SystemClock(), state_dir=tmp_path, options={"host": "127.0.0.1", "port": 0})
            factory = OcppFactory(deps)
            station = SimStation("SIM-1", "1.6", SimCore(SystemClock(), meter_interval_s=60))
            async with factory, anyio.create_task_group() as tg:
                charger = factory.create(
                    "cp1",
                    factory.validate_options(
                        {
                            "type": "ocpp",
                            "charge_point_id": "SIM-1",
                            "proxy": {"upstream_url": f"ws://127.0.0.1:{up_port}/backend"},
                        }
                    ),
                )
                srv = await factory.wait_started()
                tg.start_soon(station.run, f"ws://127.0.0.1:{srv.port}")
                await station.booted.wait()
                await connected.wait()
                await factory.session("SIM-1").ready.wait()  # type: ignore[union-attr]
                csms = upstream["cp"]
                # charger → upstream: the boot and the status reached the stand-in back end
                await wait_for(lambda: {"BootNotification", "StatusNotification"} <= set(csms.received))
                await station.plug()
                await wait_for(lambda: "StartTransaction" in csms.received)
                assert station.core.tx_id == "777"  # the upstream's answer reached the charger
                await wait_for(lambda: factory.session("SIM-1").connector(1).transaction_id == "777")  # type: ignore[union-attr]

                await charger.apply(command("cp1", 10.0))
                store = station.core.store.profiles

                def upstream_profile(pid: int, stack: int, amps: float) -> c16.SetChargingProfile:
                    return c16.SetChargingProfile(
                        connector_id=1,
                        cs_charging_profiles={
                            "charging_profile_id": pid,
                            "stack_level": stack,
                            "charging_profile_purpose": "TxDefaultProfile",
                            "charging_profile_kind": "Relative",
                            "charging_schedule": {
                                "charging_rate_unit": "A",
                                "charging_schedule_period": [{"start_period": 0, "limit": amps}],
                            },
                        },
                    )

                # upstream → charger: its own 32 A profile, on the bridge's own stack level, is forwarded clamped
                result = await csms.call(upstream_profile(77, 8, 32.0))
                assert result.status == "Accepted"
                await wait_for(lambda: 77 in store and 2001 in store)
                assert store[77].periods[0][1] == 10.0  # clamped to the obligation
                assert store[77].stack_level == 7  # moved off the bridge's live layer instead of replacing it
                assert store[77].valid_to is not None  # and bounded in time like the bridge's own live profile
                assert station.core.effective_limit_a() == pytest.approx(10.0)
                # upstream reads the configuration through the bridge (a plain forwarded call)
                conf = await csms.call(c16.GetConfiguration(key=["NumberOfConnectors"]))
                assert conf.configuration_key[0]["value"] == "1"
                # a lower obligation re-clamps the upstream profile too
                await charger.apply(command("cp1", 8.0))
                await wait_for(lambda: store[77].periods[0][1] == 8.0)
                assert station.core.effective_limit_a() == pytest.approx(8.0)
                # the upstream wants less than the bridge allows: the charger gets the upstream's 6 A
                await csms.call(upstream_profile(77, 3, 6.0))
                await wait_for(lambda: station.core.effective_limit_a() == pytest.approx(6.0))
                assert store[2001].periods[0][1] == 6.0  # the bridge's live profile follows the lower wish
                # the upstream's clear reaches the charger; the bridge's obligation alone applies again
                cleared = await csms.call(c16.ClearChargingProfile(id=77))
                assert cleared.status == "Accepted"
                await wait_for(lambda: station.core.effective_limit_a() == pytest.approx(8.0))
                assert 77 not in store
                tg.cancel_scope.cancel()
