"""GEN, SPINE-level LPC, MPC and EVSECC checklist ids (use-cases.md §15), over real TLS with the EMS tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.eebus.spine.link import RequestFailed
from bridge.eebus.spine.values import parse_duration, unscaled
from bridge.model import OperatingState
from tests.eebus_stack import Stack, advance, eebus_stack, until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stack(tmp_path: Path) -> Any:
    async with eebus_stack(tmp_path) as s:
        yield s


async def read(stack: Stack, feature: str, function: str) -> dict[str, Any]:
    return await stack.ems.read(feature, function)


def by_id(items: list[dict[str, Any]], key: str) -> dict[int, dict[str, Any]]:
    return {i[key]: i for i in items}


async def measurements(stack: Stack) -> dict[int, dict[str, Any]]:
    return by_id((await read(stack, "Measurement", "measurementListData"))["measurementData"], "measurementId")


async def descriptions(stack: Stack) -> dict[int, dict[str, Any]]:
    data = await read(stack, "Measurement", "measurementDescriptionListData")
    return by_id(data["measurementDescriptionData"], "measurementId")


# -- GEN -----------------------------------------------------------------------------------


@pytest.mark.req("GEN-01")
async def test_GEN_01_use_cases_announced(stack: Stack) -> None:
    support = {
        (info["actor"], u["useCaseName"]): u
        for info in stack.ems.use_cases["useCaseInformation"]
        for u in info["useCaseSupport"]
    }
    lpc = support[("ControllableSystem", "limitationOfPowerConsumption")]
    assert lpc["useCaseVersion"] == "1.0.0" and lpc["scenarioSupport"] == [1, 2, 3, 4]
    assert 1 in support[("MonitoredUnit", "monitoringOfPowerConsumption")]["scenarioSupport"]
    assert 2 in support[("EVSE", "evseCommissioningAndConfiguration")]["scenarioSupport"]


@pytest.mark.req("GEN-04")
async def test_GEN_04_server_functions_readable_and_notified(stack: Stack) -> None:
    discovery = stack.ems.session.remote_discovery
    assert discovery is not None
    for info in discovery["featureInformation"]:
        desc = info["description"]
        if desc["role"] != "server":
            continue
        server_addr = stack.ems.features.get(desc["featureType"])
        for fn in desc["supportedFunction"]:
            assert "read" in fn["possibleOperations"], fn
            if server_addr is not None and tuple(desc["featureAddress"]["entity"]) == server_addr.entity:
                data = await stack.ems.link.call(
                    "read", stack.ems.ems.client(desc["featureType"]), server_addr, {fn["function"]: {}}
                )
                assert isinstance(data, dict)
    # a subscribed client gets a notify after a value change
    stack.ems.latest.pop("loadControlLimitListData", None)
    await stack.ems.limit(7000)
    await until(lambda: "loadControlLimitListData" in stack.ems.latest, stack.clock)


@pytest.mark.req("GEN-05")
async def test_GEN_05_write_to_read_only_function_is_an_error(stack: Stack) -> None:
    server = stack.ems.features["Measurement"]
    with pytest.raises(RequestFailed) as info:
        await stack.ems.link.call(
            "write",
            stack.ems.ems.client("Measurement"),
            server,
            {"measurementListData": {"measurementData": []}},
            ack=True,
        )
    assert info.value.error != 0


@pytest.mark.req("GEN-06")
async def test_GEN_06_every_write_gets_exactly_one_result(stack: Stack) -> None:
    answered: list[int] = []
    all_answered = anyio.Event()

    def done(error: int) -> None:
        answered.append(error)
        if len(answered) == 3:
            all_answered.set()

    session = stack.ems.session
    for value in (5000, -3, 6000):
        message = session.request(
            "write",
            stack.ems.ems.client("LoadControl"),
            stack.ems.features["LoadControl"],
            {
                "loadControlLimitListData": {
                    "loadControlLimitData": [
                        {"limitId": 0, "isLimitActive": True, "value": {"number": value, "scale": 0}}
                    ]
                }
            },
            ack=True,
            on_done=lambda err, _d, _data: done(err),
        )
        await stack.ems.link.send([message])
    with anyio.fail_after(10):
        await all_answered.wait()
    await anyio.sleep(0.1)  # and no second result for any of them
    assert len(answered) == 3 and answered[0] == 0 and answered[1] == 7 and answered[2] == 0


@pytest.mark.req("GEN-07")
async def test_GEN_07_units_and_scales_match_descriptions(stack: Stack) -> None:
    units = {
        "acPowerTotal": "W",
        "acPower": "W",
        "acCurrent": "A",
        "acVoltage": "V",
        "acEnergyConsumed": "Wh",
        "acFrequency": "Hz",
    }
    desc = await descriptions(stack)
    values = await measurements(stack)
    for mid, d in desc.items():
        assert d["unit"] == units[d["scopeType"]]
        if mid in values:
            assert isinstance(values[mid]["value"]["number"], int) and isinstance(values[mid]["value"]["scale"], int)
    voltage_ids = [m for m, d in desc.items() if d["scopeType"] == "acVoltage"]
    assert unscaled(values[voltage_ids[0]]["value"]) == pytest.approx(230)


@pytest.mark.req("GEN-08")
async def test_GEN_08_consumption_positive(stack: Stack) -> None:
    data = await read(stack, "ElectricalConnection", "electricalConnectionDescriptionListData")
    assert data["electricalConnectionDescriptionData"][0]["positiveEnergyDirection"] == "consume"
    await until(lambda: stack.charger.physics.power_w > 0, stack.clock)
    await advance(stack.clock, 2)
    assert unscaled((await measurements(stack))[0]["value"]) > 0


@pytest.mark.req("GEN-09")
async def test_GEN_09_lost_charger_reports_failure_and_error_values(stack: Stack) -> None:
    stack.charger.reachable = False
    await advance(stack.clock, 5)
    assert all(v["valueState"] == "error" for v in (await measurements(stack)).values())
    await advance(stack.clock, 30)
    state = await read(stack, "DeviceDiagnosis", "deviceDiagnosisStateData")
    assert state["operatingState"] == "failure"


@pytest.mark.req("GEN-10")
async def test_GEN_10_heartbeat_counter_increments_per_notification(stack: Stack) -> None:
    counters: list[int] = []
    for _ in range(3):
        await advance(stack.clock, 58, 2)
        await anyio.sleep(0.05)
        hb = stack.notified("deviceDiagnosisHeartbeatData")
        counters.append(hb["heartbeatCounter"])
        assert hb["timestamp"].endswith("Z")
    assert counters[1] == counters[0] + 1 and counters[2] == counters[1] + 1


@pytest.mark.req("GEN-11")
async def test_GEN_11_heartbeat_period_within_announced_timeout(stack: Stack) -> None:
    hb = await read(stack, "DeviceDiagnosis", "deviceDiagnosisHeartbeatData")
    timeout = parse_duration(hb["heartbeatTimeout"])
    start = hb["heartbeatCounter"]
    await advance(stack.clock, timeout, 1)
    await anyio.sleep(0.05)
    assert stack.notified("deviceDiagnosisHeartbeatData")["heartbeatCounter"] >= start + 1


# -- LPC (SPINE level) ---------------------------------------------------------------------


@pytest.mark.req("LPC-01")
async def test_LPC_01_exactly_one_lpc_limit_description(stack: Stack) -> None:
    items = (await read(stack, "LoadControl", "loadControlLimitDescriptionListData"))["loadControlLimitDescriptionData"]
    lpc = [
        d
        for d in items
        if (d["limitType"], d["limitCategory"], d["limitDirection"], d["scopeType"], d["unit"])
        == ("signDependentAbsValueLimit", "obligation", "consume", "activePowerLimit", "W")
    ]
    assert len(lpc) == 1


@pytest.mark.req("LPC-02")
async def test_LPC_02_initial_limit_changeable_and_inactive(stack: Stack) -> None:
    item = (await read(stack, "LoadControl", "loadControlLimitListData"))["loadControlLimitData"][0]
    assert item["isLimitChangeable"] is True and item["isLimitActive"] is False


@pytest.mark.req("LPC-03")
async def test_LPC_03_failsafe_limit_key(stack: Stack) -> None:
    desc = (await read(stack, "DeviceConfiguration", "deviceConfigurationKeyValueDescriptionListData"))[
        "deviceConfigurationKeyValueDescriptionData"
    ]
    key = next(d for d in desc if d["keyName"] == "failsafeConsumptionActivePowerLimit")
    assert key["valueType"] == "scaledNumber" and key["unit"] == "W"
    values = by_id(
        (await read(stack, "DeviceConfiguration", "deviceConfigurationKeyValueListData"))[
            "deviceConfigurationKeyValueData"
        ],
        "keyId",
    )
    assert unscaled(values[key["keyId"]]["value"]["scaledNumber"]) == 4200
    assert values[key["keyId"]]["isValueChangeable"] is True


@pytest.mark.req("LPC-04")
async def test_LPC_04_failsafe_duration_key_defaults_to_2h(stack: Stack) -> None:
    desc = (await read(stack, "DeviceConfiguration", "deviceConfigurationKeyValueDescriptionListData"))[
        "deviceConfigurationKeyValueDescriptionData"
    ]
    key = next(d for d in desc if d["keyName"] == "failsafeDurationMinimum")
    assert key["valueType"] == "duration"
    values = by_id(
        (await read(stack, "DeviceConfiguration", "deviceConfigurationKeyValueListData"))[
            "deviceConfigurationKeyValueData"
        ],
        "keyId",
    )
    assert values[key["keyId"]]["value"]["duration"] == "PT2H"


@pytest.mark.req("LPC-10")
async def test_LPC_10_nominal_max_is_rated_power(stack: Stack) -> None:
    data = await read(stack, "ElectricalConnection", "electricalConnectionCharacteristicListData")
    item = data["electricalConnectionCharacteristicData"][0]
    assert item["characteristicType"] == "powerConsumptionNominalMax" and item["characteristicContext"] == "entity"
    assert item["unit"] == "W" and unscaled(item["value"]) == 16 * 3 * 230


@pytest.mark.req("LPC-15")
async def test_LPC_15_negative_limit_denied_previous_stays(stack: Stack) -> None:
    await stack.ems.limit(6000)
    with pytest.raises(RequestFailed) as info:
        await stack.ems.limit(-100)
    assert info.value.error != 0
    item = (await read(stack, "LoadControl", "loadControlLimitListData"))["loadControlLimitData"][0]
    assert unscaled(item["value"]) == 6000


@pytest.mark.req("LPC-16")
async def test_LPC_16_not_changeable_denied(stack: Stack) -> None:
    stack.device.lpc.set_changeable(False)
    with pytest.raises(RequestFailed):
        await stack.ems.limit(6000)


@pytest.mark.req("LPC-17")
async def test_LPC_17_accepted_limit_visible_and_notified(stack: Stack) -> None:
    await stack.ems.limit(6500, 600)
    await until(lambda: bool(stack.notified("loadControlLimitListData")), stack.clock)
    notified = stack.notified("loadControlLimitListData")["loadControlLimitData"][0]
    assert unscaled(notified["value"]) == 6500 and notified["isLimitActive"] is True
    assert 590 <= parse_duration(notified["timePeriod"]["endTime"]) <= 600


@pytest.mark.req("LPC-18")
async def test_LPC_18_write_answered_within_10_s(stack: Stack) -> None:
    with anyio.fail_after(10):
        await stack.ems.limit(5000)


@pytest.mark.req("LPC-19")
async def test_LPC_19_denial_uses_error_7_with_description(stack: Stack) -> None:
    with pytest.raises(RequestFailed) as info:
        await stack.ems.failsafe(duration_s=3600)
    assert info.value.error == 7 and "PT2H" in info.value.description


@pytest.mark.req("LPC-38")
async def test_LPC_38_own_heartbeat_in_every_state(stack: Stack) -> None:
    from bridge.usecases.lpc import LpcState

    async def beats_continue() -> None:
        before = stack.notified("deviceDiagnosisHeartbeatData").get("heartbeatCounter", -1)
        await advance(stack.clock, 60, 2)
        await anyio.sleep(0.05)
        assert stack.notified("deviceDiagnosisHeartbeatData")["heartbeatCounter"] > before

    assert stack.device.lpc.state is LpcState.INIT
    await beats_continue()
    await stack.ems.limit(6000)
    assert stack.device.lpc.state is LpcState.LIMITED
    await beats_continue()
    stack.ems.stop_heartbeat()
    await advance(stack.clock, 125, 5)
    assert stack.device.lpc.state is LpcState.FAILSAFE
    await beats_continue()


@pytest.mark.req("LPC-39")
async def test_LPC_39_device_subscribes_to_ems_heartbeat(stack: Stack) -> None:
    subs = [
        s
        for s in stack.ems.session.subscriptions
        if s.server == stack.ems.ems.device.find("DeviceDiagnosis", "server").entity_feature
    ]  # type: ignore[union-attr]
    assert len(subs) == 1 and subs[0].client.entity == (1,)


# -- MPC ------------------------------------------------------------------------------------


@pytest.mark.req("MPC-01")
async def test_MPC_01_power_total_updated_while_charging(stack: Stack) -> None:
    await until(lambda: stack.charger.physics.power_w > 0, stack.clock)
    stamps = set()
    for _ in range(3):
        await advance(stack.clock, 5)
        await anyio.sleep(0.05)
        data = by_id(stack.notified("measurementListData")["measurementData"], "measurementId")
        stamps.add(data[0]["timestamp"])
    assert len(stamps) >= 2


@pytest.mark.req("MPC-02")
async def test_MPC_02_phases_sum_to_total(stack: Stack) -> None:
    await until(lambda: stack.charger.physics.power_w > 0, stack.clock)
    await advance(stack.clock, 2)
    desc, values = await descriptions(stack), await measurements(stack)
    total = unscaled(values[next(m for m, d in desc.items() if d["scopeType"] == "acPowerTotal")]["value"])
    phases = sum(unscaled(values[m]["value"]) for m, d in desc.items() if d["scopeType"] == "acPower")
    assert abs(total - phases) <= max(50, 0.02 * total)


@pytest.mark.req("MPC-03")
async def test_MPC_03_energy_present_and_non_decreasing(stack: Stack) -> None:
    desc = await descriptions(stack)
    mid = next(m for m, d in desc.items() if d["scopeType"] == "acEnergyConsumed")
    assert desc[mid]["unit"] == "Wh"
    readings = []
    for _ in range(4):
        await advance(stack.clock, 10)
        readings.append(unscaled((await measurements(stack))[mid]["value"]))
    assert readings == sorted(readings) and readings[-1] > readings[0]


@pytest.mark.req("MPC-04")
async def test_MPC_04_current_per_phase_linked_to_phases(stack: Stack) -> None:
    desc = await descriptions(stack)
    params = (await read(stack, "ElectricalConnection", "electricalConnectionParameterDescriptionListData"))[
        "electricalConnectionParameterDescriptionData"
    ]
    current_ids = {m for m, d in desc.items() if d["scopeType"] == "acCurrent" and d["unit"] == "A"}
    phases = sorted(p["acMeasuredPhases"] for p in params if p["measurementId"] in current_ids)
    assert phases == ["a", "b", "c"]


@pytest.mark.req("MPC-05")
async def test_MPC_05_voltage_per_phase_against_neutral(stack: Stack) -> None:
    desc = await descriptions(stack)
    params = (await read(stack, "ElectricalConnection", "electricalConnectionParameterDescriptionListData"))[
        "electricalConnectionParameterDescriptionData"
    ]
    voltage = [p for p in params if desc.get(p["measurementId"], {}).get("scopeType") == "acVoltage"]
    assert len(voltage) == 3 and all(p["acMeasuredInReferenceTo"] == "neutral" for p in voltage)


@pytest.mark.req("MPC-06")
async def test_MPC_06_frequency_offered_when_metered(stack: Stack) -> None:
    desc = await descriptions(stack)
    assert any(d["scopeType"] == "acFrequency" and d["unit"] == "Hz" for d in desc.values())
    mpc = next(
        u
        for i in stack.ems.use_cases["useCaseInformation"]
        for u in i["useCaseSupport"]
        if u["useCaseName"] == "monitoringOfPowerConsumption"
    )
    assert 5 in mpc["scenarioSupport"]


@pytest.mark.req("MPC-07")
async def test_MPC_07_derived_values_marked_calculated(stack: Stack) -> None:
    desc, values = await descriptions(stack), await measurements(stack)
    for mid, d in desc.items():
        if mid in values and d["scopeType"] == "acPower":  # the sim derives per-phase power from U·I
            assert values[mid]["valueSource"] == "calculatedValue"
        if mid in values and d["scopeType"] == "acPowerTotal":
            assert values[mid]["valueSource"] == "measuredValue"


@pytest.mark.req("MPC-08")
async def test_MPC_08_idle_charger_reports_zero(stack: Stack) -> None:
    stack.charger.physics.unplug()
    await advance(stack.clock, 3)
    assert unscaled((await measurements(stack))[0]["value"]) == 0


@pytest.mark.req("MPC-09")
async def test_MPC_09_unreachable_values_error_within_30s(stack: Stack) -> None:
    stack.charger.reachable = False
    await advance(stack.clock, 30)
    assert {v["valueState"] for v in (await measurements(stack)).values()} == {"error"}


@pytest.mark.req("MPC-10")
async def test_MPC_10_scenario_1_always_announced(stack: Stack) -> None:
    mpc = [
        u
        for i in stack.ems.use_cases["useCaseInformation"]
        for u in i["useCaseSupport"]
        if u["useCaseName"] == "monitoringOfPowerConsumption"
    ]
    assert len(mpc) == 1 and 1 in mpc[0]["scenarioSupport"] and mpc[0]["useCaseAvailable"]


# -- EVSECC -----------------------------------------------------------------------------------


@pytest.mark.req("EVSECC-01")
async def test_EVSECC_01_manufacturer_data_from_charger(stack: Stack) -> None:
    evse = stack.ems.session.remote_discovery
    assert evse is not None
    data = await read(stack, "DeviceClassification", "deviceClassificationManufacturerData")
    assert data["vendorName"] == "evbridge" and data["deviceName"] == "Simulated wallbox"
    assert data["serialNumber"] == "SIM-0001" and data["softwareRevision"] == "sim-1"


@pytest.mark.req("EVSECC-02")
async def test_EVSECC_02_operating_state_always_present(stack: Stack) -> None:
    state = await read(stack, "DeviceDiagnosis", "deviceDiagnosisStateData")
    assert state["operatingState"] in {s.value for s in OperatingState}


@pytest.mark.req("EVSECC-03")
async def test_EVSECC_03_fault_reported_with_error_code(stack: Stack) -> None:
    stack.charger.physics.fault_code = "E42"
    await advance(stack.clock, 3)
    state = await read(stack, "DeviceDiagnosis", "deviceDiagnosisStateData")
    assert state == {"operatingState": "failure", "lastErrorCode": "E42"}


@pytest.mark.req("EVSECC-04")
async def test_EVSECC_04_fault_cleared(stack: Stack) -> None:
    stack.charger.physics.fault_code = "E42"
    await advance(stack.clock, 3)
    stack.charger.physics.fault_code = None
    await advance(stack.clock, 3)
    state = await read(stack, "DeviceDiagnosis", "deviceDiagnosisStateData")
    assert state["operatingState"] in ("normalOperation", "standby") and "lastErrorCode" not in state
