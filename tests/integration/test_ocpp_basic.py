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
