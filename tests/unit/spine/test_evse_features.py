"""What the EVSE device announces follows what its source can deliver (MPC scenarios 4 and 5)."""

from __future__ import annotations

from bridge.clock import FakeClock
from bridge.eebus.spine.evse import F_ELECTRICAL, F_MEASUREMENT, EvseDevice, EvseSource
from bridge.model import Characteristics
from tests.unit.spine.test_golden import Endpoint


def device(**flags: bool) -> EvseDevice:
    clock = FakeClock()
    return EvseDevice("g", EvseSource(lambda: None, Characteristics(), Endpoint(clock), **flags), clock)


def mpc_scenarios(evse: EvseDevice) -> list[int]:
    (mpc,) = [u for u in evse.device.use_cases if u.name == "monitoringOfPowerConsumption"]
    return list(mpc.scenarios)


def scopes(evse: EvseDevice) -> list[str]:
    read = evse.device.features[((1,), F_MEASUREMENT)].functions["measurementDescriptionListData"].read
    assert read is not None
    return [d["scopeType"] for d in read()["measurementDescriptionData"]]


def test_without_voltages_no_scenario_4_and_no_voltage_ids() -> None:
    evse = device(voltage=False, frequency=False)
    assert mpc_scenarios(evse) == [1, 2, 3]
    assert "acVoltage" not in scopes(evse)
    params = evse.device.features[((1,), F_ELECTRICAL)].functions["electricalConnectionParameterDescriptionListData"]
    assert params.read is not None
    linked = {p["measurementId"] for p in params.read()["electricalConnectionParameterDescriptionData"]}
    measured = evse.device.features[((1,), F_MEASUREMENT)].functions["measurementDescriptionListData"].read
    assert measured is not None
    assert linked == {d["measurementId"] for d in measured()["measurementDescriptionData"]}


def test_a_metered_charger_announces_all_five() -> None:
    evse = device()
    assert mpc_scenarios(evse) == [1, 2, 3, 4, 5]
    assert scopes(evse).count("acVoltage") == 3 and "acFrequency" in scopes(evse)


def test_charger_never_reached_reports_failure_after_30_s() -> None:
    clock = FakeClock()
    evse = EvseDevice("g", EvseSource(lambda: None, Characteristics(), Endpoint(clock)), clock)
    state = evse.device.features[((1,), 3)].functions["deviceDiagnosisStateData"].read
    assert state is not None
    assert state() == {"operatingState": "standby"}
    clock.advance(29)
    assert state()["operatingState"] == "standby"
    clock.advance(1)
    assert state() == {"operatingState": "failure", "lastErrorCode": "no data from the charger"}
