"""Charger quirks (shared/reference/ocpp-chargers.md §7): the limit still gets applied, or the charger is degraded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from adapters.sim.ocpp_cp import Quirks
from bridge.errors import ChargerRejected
from bridge.model import OperatingState
from bridge.ports import WatchdogKind
from tests.integration.test_ocpp_helpers import bridge_with_sims, command, wait_for

pytestmark = pytest.mark.anyio

FAST_METER_CHECK = "vendor: test\nverify: {meter_grace_s: 0, retries: 1}\n"


def sent_profiles(station: object) -> list[dict[str, Any]]:
    return [p for action, p in station.core.received if action == "SetChargingProfile"]  # type: ignore[attr-defined]


def schedule(profile: dict[str, Any]) -> dict[str, Any]:
    """1.6 has one chargingSchedule, 2.0.1 a list of them."""
    sched = profile["charging_schedule"]
    return sched if isinstance(sched, dict) else sched[0]


def connector(profile: dict[str, Any]) -> int:
    return int(profile.get("connector_id", profile.get("evse_id", -1)))


def purpose(profile: dict[str, Any]) -> str:
    return str(profile["charging_profile_purpose"]).replace("ChargingStationMaxProfile", "ChargePointMaxProfile")


VERSIONS = pytest.mark.parametrize("version", ["1.6", "2.0.1"])


@VERSIONS
@pytest.mark.parametrize("units", ["Power", "W"])
async def test_quirk_watts_only(tmp_path: Path, units: str, version: str) -> None:
    """Huawei (11) and the short spelling "W" (12): the limit goes out in W, rounded down, and takes effect."""
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, version=version, quirks=Quirks(units=units)) as (
            _,
            (charger,),
            (station,),
        ):
            await charger.apply(command("cp1", 10.0))
            last = schedule(sent_profiles(station)[-1])
            assert last["charging_rate_unit"] == "W"
            assert last["charging_schedule_period"][0]["limit"] == 6900
            assert station.core.effective_limit_a() == pytest.approx(10.0)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_quirk_ignores_profiles_reports_degraded(tmp_path: Path, version: str) -> None:
    """go-e / Amperfied (9, 10, 17): Accepted, composite looks right, but the EV keeps drawing 32 A."""
    with anyio.fail_after(15):
        async with bridge_with_sims(
            tmp_path, version=version, quirks=Quirks(ignores_profiles=True), vendor_yaml=FAST_METER_CHECK
        ) as (_, (charger,), (station,)):
            await station.plug()
            station.core.sync()
            station.core.physics.advance(1.0)  # the EV has ramped up to what the box (wrongly) allows
            await charger.apply(command("cp1", 8.0))
            await wait_for(lambda: charger.degraded is not None, limit_s=10)
            snap = await charger.read()
            assert snap.device_state.operating_state is OperatingState.SERVICE
            assert snap.device_state.last_error_code is not None
            assert snap.device_state.last_error_code.startswith("limit_not_applied")
            # it was re-applied once before giving up
            assert len([p for p in sent_profiles(station) if p.get("stack_level") == 8]) >= 2


@VERSIONS
async def test_quirk_max_stack_level_zero(tmp_path: Path, version: str) -> None:
    """(4, 16) ChargeProfileMaxStackLevel 0: one layer only; the limit applies and the watchdog is reported NONE."""
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, version=version, quirks=Quirks(max_stack_level=0)) as (
            _,
            (charger,),
            (station,),
        ):
            await charger.set_fallback_current(6.0)
            await charger.apply(command("cp1", 12.0))
            assert station.core.effective_limit_a() == pytest.approx(12.0)
            assert all(p["stack_level"] == 0 for p in sent_profiles(station))
            assert all("valid_to" not in p for p in sent_profiles(station))  # no expiry without a layer below
            assert charger.capabilities.watchdog.kind is WatchdogKind.NONE


@VERSIONS
@pytest.mark.parametrize("quirk", [Quirks(rejects_connector_0=True), Quirks(rejects_charge_point_max=True)])
async def test_quirk_rejects_station_max_profile(tmp_path: Path, quirk: Quirks, version: str) -> None:
    """EVBox (1, 2) / single-connector boxes (23): ChargePointMaxProfile on connector 0 refused → TxDefault on 1."""
    vendor = "vendor: test\nlimit: {purpose: ChargePointMaxProfile}\n"
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, version=version, quirks=quirk, vendor_yaml=vendor) as (
            _,
            (charger,),
            (station,),
        ):
            await charger.apply(command("cp1", 9.0))
            purposes = [(connector(p), purpose(p)) for p in sent_profiles(station)]
            assert (0, "ChargePointMaxProfile") in purposes
            assert purposes[-1] == (1, "TxDefaultProfile")
            assert station.core.effective_limit_a() == pytest.approx(9.0)


@VERSIONS
async def test_quirk_absolute_profiles_ignored(tmp_path: Path, version: str) -> None:
    """Wallbox fw < 5 (6): Absolute Accepted but not honoured → composite check catches it → Relative works."""
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, version=version, quirks=Quirks(absolute_ignored=True)) as (
            _,
            (charger,),
            (station,),
        ):
            await charger.apply(command("cp1", 7.0))
            kinds = [p["charging_profile_kind"] for p in sent_profiles(station)]
            assert kinds[:2] == ["Absolute", "Relative"]
            assert station.core.effective_limit_a() == pytest.approx(7.0)
            assert charger.degraded is None


@pytest.mark.parametrize("skew", [45.0, -45.0])
async def test_quirk_clock_skew(tmp_path: Path, skew: float) -> None:
    """(20) a charge point clock 45 s off still applies the limit: startSchedule lies 60 s in the past."""
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, quirks=Quirks(clock_skew_s=skew)) as (_, (charger,), (station,)):
            await charger.apply(command("cp1", 11.0))
            assert station.core.effective_limit_a() == pytest.approx(11.0)


@VERSIONS
async def test_quirk_tx_profile_only_during_transaction(tmp_path: Path, version: str) -> None:
    """(13, 14) a vendor that wants TxProfiles: TxDefault before the session, TxProfile with transactionId during it."""
    vendor = "vendor: test\nlimit: {purpose: TxProfile}\n"
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, version=version, vendor_yaml=vendor) as (factory, (charger,), (station,)):
            await charger.apply(command("cp1", 8.0))
            assert sent_profiles(station)[-1]["charging_profile_purpose"] == "TxDefaultProfile"
            await station.plug()
            session = factory.session("SIM-1")
            await wait_for(lambda: session.connector(1).transaction_id is not None)  # type: ignore[union-attr]
            await charger.apply(command("cp1", 9.0))
            last = sent_profiles(station)[-1]
            assert last["charging_profile_purpose"] == "TxProfile"
            assert str(last["transaction_id"]) == station.core.tx_id
            assert station.core.effective_limit_a() == pytest.approx(9.0)


@VERSIONS
async def test_quirk_drops_profiles_on_reboot(tmp_path: Path, version: str) -> None:
    """(§4) some firmwares lose their profiles on reboot: the bridge re-installs fallback and live profile on Boot."""
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, version=version) as (_, (charger,), (station,)):
            await charger.set_fallback_current(6.0)
            await charger.apply(command("cp1", 10.0))
            ids = set(station.core.store.profiles)
            assert ids == {1001, 2001}
            station.core.store.profiles.clear()  # the reboot
            assert station.core.effective_limit_a() is None
            await station.cp.boot()  # type: ignore[union-attr]
            await wait_for(lambda: set(station.core.store.profiles) == ids)
            assert station.core.effective_limit_a() == pytest.approx(10.0)


async def test_quirk_meter_config_read_only(tmp_path: Path) -> None:
    """(32) MeterValuesSampledData is read-only: configuration goes on, limits still work."""
    with anyio.fail_after(15):
        async with bridge_with_sims(tmp_path, quirks=Quirks(meter_config_readonly=True)) as (_, (charger,), (station,)):
            assert station.cp.config["MeterValuesSampledData"] == "Energy.Active.Import.Register"  # type: ignore[union-attr]
            assert station.cp.config["MeterValueSampleInterval"] == "10"  # type: ignore[union-attr]
            await charger.apply(command("cp1", 13.0))
            assert station.core.effective_limit_a() == pytest.approx(13.0)


async def test_quirk_rejects_everything_raises(tmp_path: Path) -> None:
    """A box that takes no unit we can send: apply() raises ChargerRejected and the charger reports degraded."""
    with anyio.fail_after(15):
        async with bridge_with_sims(
            tmp_path, quirks=Quirks(units="Power"), vendor_yaml="vendor: t\nlimit: {unit: A}\n"
        ) as (
            _,
            (charger,),
            _stations,
        ):
            with pytest.raises(ChargerRejected):
                await charger.apply(command("cp1", 10.0))
            assert (await charger.read()).device_state.operating_state is OperatingState.SERVICE
