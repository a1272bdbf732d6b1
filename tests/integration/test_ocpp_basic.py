"""OCPP 1.6J and 2.0.1 over loopback websockets: boot, transaction, meter values, limit applied and verified."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bridge.model import ChargingState, IdentificationType
from tests.integration.test_ocpp_helpers import bridge_with_sims, command, wait_for

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_boot_transaction_meter_and_limit(tmp_path: Path, version: str) -> None:
    with anyio.fail_after(20):
        async with bridge_with_sims(tmp_path, version=version) as (factory, (charger,), (station,)):
            snap = await charger.read()
            assert snap.manufacturer.vendor == "evbridge-sim" and snap.manufacturer.model == "SimBox"
            session = factory.session("SIM-1")
            assert session is not None
            # boot configuration reached the charge point
            if version == "1.6":
                assert station.cp.config["MeterValueSampleInterval"] == "10"  # type: ignore[union-attr]
                assert "Current.Import" in station.cp.config["MeterValuesSampledData"]  # type: ignore[union-attr]
            else:
                assert station.cp.variables[("SampledDataCtrlr", "TxUpdatedInterval")] == "10"  # type: ignore[union-attr]
            assert session.config.max_stack_level == 8

            await station.plug(id_tag="04a1b2c3")
            await wait_for(lambda: session.connector(1).transaction_id is not None)
            applied = await charger.apply(command("cp1", 10.37))
            assert applied.current_a == pytest.approx(10.3)  # rounded down, never above
            assert station.core.effective_limit_a() == pytest.approx(10.3)
            await station.cp.send_meter()  # type: ignore[union-attr]
            await wait_for(
                lambda: session.connector(1).current_a[0] is not None and session.connector(1).current_a[0] <= 10.3
            )
            snap = await charger.read()
            assert snap.ev_connected is True
            assert snap.measurement.current_per_phase_a == (10.3, 10.3, 10.3)
            assert snap.measurement.voltage_per_phase_v == (230.0, 230.0, 230.0)
            assert snap.measurement.power_w == pytest.approx(10.3 * 230 * 3)
            assert snap.measurement.soc_pct is not None
            assert snap.session is not None and snap.session.identifications[0].kind is IdentificationType.RFID
            assert snap.session.identifications[0].value == "04A1B2C3"
            assert snap.applied.current_a == pytest.approx(10.3)
            assert snap.device_state.last_error_code is None
            if version == "1.6":
                await station.cp.status()  # type: ignore[union-attr]
                await wait_for(lambda: session.connector(1).charging_state is ChargingState.CHARGING)

            await charger.apply(command("cp1", None, pause=True))
            assert station.core.effective_limit_a() == 0.0
            await station.cp.stop_transaction()  # type: ignore[union-attr]
            await wait_for(
                lambda: session.connector(1).session is not None and session.connector(1).session.ended_at is not None
            )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_two_connectors_are_two_chargers(tmp_path: Path, version: str) -> None:
    """One charge point, connectors/EVSEs 1 and 2 configured as two chargers sharing one connection."""
    from adapters.ocpp.factory import OcppFactory
    from adapters.sim.ocpp_cp import SimCore, SimStation
    from bridge.clock import SystemClock
    from bridge.ports import AdapterDeps

    deps = AdapterDeps(clock=SystemClock(), state_dir=tmp_path, options={"host": "127.0.0.1", "port": 0})
    factory = OcppFactory(deps)
    station = SimStation("DUO", version, SimCore(SystemClock()))
    with anyio.fail_after(15):
        async with factory, anyio.create_task_group() as tg:
            left, right = (
                factory.create(
                    f"duo-{n}", factory.validate_options({"type": "ocpp", "charge_point_id": "DUO", "connector_id": n})
                )
                for n in (1, 2)
            )
            srv = await factory.wait_started()
            tg.start_soon(station.run, f"ws://127.0.0.1:{srv.port}")
            await station.booted.wait()
            await factory.session("DUO").ready.wait()  # type: ignore[union-attr]
            await left.set_fallback_current(6.0)
            await right.set_fallback_current(6.0)
            await left.apply(command("duo-1", 10.0))
            await right.apply(command("duo-2", 7.0))
            assert station.core.effective_limit_a(1) == pytest.approx(10.0)
            assert station.core.effective_limit_a(2) == pytest.approx(7.0)
            assert (await left.read()).charger_id == "duo-1" and (await right.read()).charger_id == "duo-2"
            assert {1001, 1002, 2001, 2002} <= set(station.core.store.profiles)
            tg.cancel_scope.cancel()
