"""Regressions found by running eebus-go (energy guard LPC + MPC client) against `evbridge run`.

The request datagrams are the ones eebus-go sent on the wire (EEBus JSON, SHIP
header stripped), see bridge/eebus/spine/INTEROP.md.  Each test reads our
answer the way eebus-go does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.clock import FakeClock
from bridge.eebus.ship.eebus_json import from_eebus, to_eebus_message
from bridge.eebus.spine.device import FeatureAddress
from bridge.eebus.spine.evse import EvseDevice, EvseSource
from bridge.eebus.spine.session import NODE_MANAGEMENT, SpineSession
from bridge.model import AcMeasurement, Characteristics, ChargerSnapshot, ManufacturerInformation
from bridge.usecases.lpc import Lpc, WriteResult

DISCOVERY_READ = """{"datagram":[{"header":[{"specificationVersion":"1.3.0"},
 {"addressSource":[{"device":"d:_n:Interop_GoHEMS-1"},{"entity":[0]},{"feature":0}]},
 {"addressDestination":[{"entity":[0]},{"feature":0}]},{"msgCounter":1},{"cmdClassifier":"read"}]},
 {"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}"""

# eebus-go ElectricalConnection client RequestCharacteristics(nil, nil) to the office group
CHARACTERISTICS_READ = """{"datagram":[{"header":[{"specificationVersion":"1.3.0"},
 {"addressSource":[{"device":"d:_n:Interop_GoHEMS-1"},{"entity":[1]},{"feature":4}]},
 {"addressDestination":[{"device":"d:_n:evbridge_office"},{"entity":[1]},{"feature":4}]},
 {"msgCounter":20},{"cmdClassifier":"read"}]},
 {"payload":[{"cmd":[[{"electricalConnectionCharacteristicListData":[]}]]}]}]}"""


# eebus-go (CEM entity with eg/lpc and ma/mpc) answering our nodeManagementUseCaseData read
USE_CASE_REPLY = """{"datagram":[{"header":[{"specificationVersion":"1.3.0"},
 {"addressSource":[{"device":"d:_n:Interop_GoHEMS-1"},{"entity":[0]},{"feature":0}]},
 {"addressDestination":[{"device":"d:_n:evbridge_garage"},{"entity":[0]},{"feature":0}]},
 {"msgCounter":5},{"msgCounterReference":3},{"cmdClassifier":"reply"}]},
 {"payload":[{"cmd":[[{"nodeManagementUseCaseData":[{"useCaseInformation":[
  [{"address":[{"device":"d:_n:Interop_GoHEMS-1"},{"entity":[1]}]},{"actor":"EnergyGuard"},
   {"useCaseSupport":[[{"useCaseName":"limitationOfPowerConsumption"},{"useCaseVersion":"1.0.0"},
   {"useCaseAvailable":true},{"scenarioSupport":[1,2,3,4]},{"useCaseDocumentSubRevision":"release"}]]}],
  [{"address":[{"device":"d:_n:Interop_GoHEMS-1"},{"entity":[1]}]},{"actor":"MonitoringAppliance"},
   {"useCaseSupport":[[{"useCaseName":"monitoringOfPowerConsumption"},{"useCaseVersion":"1.0.0"},
   {"useCaseAvailable":true},{"scenarioSupport":[1,2,3,4,5]},{"useCaseDocumentSubRevision":"release"}]]}]
 ]}]}]]}]}]}"""

# eebus-go's StartHeartbeat() notify to our DeviceDiagnosis client
HEARTBEAT_NOTIFY = """{"datagram":[{"header":[{"specificationVersion":"1.3.0"},
 {"addressSource":[{"device":"d:_n:Interop_GoHEMS-1"},{"entity":[1]},{"feature":5}]},
 {"addressDestination":[{"device":"d:_n:evbridge_garage"},{"entity":[1]},{"feature":5}]},
 {"msgCounter":26},{"cmdClassifier":"notify"}]},
 {"payload":[{"cmd":[[{"deviceDiagnosisHeartbeatData":[{"timestamp":"2026-11-25T08:49:12Z"},
 {"heartbeatCounter":3},{"heartbeatTimeout":"PT4S"}]}]]}]}]}"""


class Endpoint:
    def __init__(self, clock: FakeClock) -> None:
        self.lpc = Lpc(clock)

    def heartbeat(self) -> None:
        self.lpc.heartbeat_received()

    def write_limit(self, value_w: float, active: bool, duration_s: float | None, *, peer: str = "") -> WriteResult:
        return self.lpc.write_limit(value_w, active, duration_s)

    def write_failsafe(
        self, *, limit_w: float | None = None, duration_s: float | None = None, peer: str = ""
    ) -> WriteResult:
        return self.lpc.write_failsafe(limit_w=limit_w, duration_s=duration_s)


def group_session() -> SpineSession:
    """The demo's office group: a ChargingStation device whose source is marked contractual."""
    clock = FakeClock()
    chars = Characteristics(phases_installed=3, min_current_a=0, max_current_a=32, nominal_voltage_v=230)
    source = EvseSource(lambda: None, chars, Endpoint(clock), frequency=False, contractual=True)
    evse = EvseDevice("office", source, clock)
    return SpineSession(evse.device, clock, "eg-ski")


def charging_session() -> SpineSession:
    """A charging 3-phase charger with every MPC value present."""
    clock = FakeClock()
    snapshot = ChargerSnapshot(
        charger_id="garage",
        timestamp=datetime(2026, 11, 25, 8, 30, 28, tzinfo=UTC),
        ev_connected=True,
        manufacturer=ManufacturerInformation(vendor="Acme", model="WB1", serial="0001", brand="Acme"),
        measurement=AcMeasurement(
            current_per_phase_a=(6.0, 6.0, 6.0),
            voltage_per_phase_v=(230.0, 230.0, 230.0),
            energy_wh=9.461,
            frequency_hz=50.0,
        ),
    )
    chars = Characteristics(phases_installed=3, min_current_a=6, max_current_a=16, nominal_voltage_v=230)
    evse = EvseDevice("garage", EvseSource(lambda: snapshot, chars, Endpoint(clock)), clock)
    return SpineSession(evse.device, clock, "eg-ski")


def wire(message: dict[str, Any]) -> dict[str, Any]:
    """What eebus-go gets: our answer through the EEBus JSON encoding and back."""
    result: dict[str, Any] = from_eebus(json.loads(json.dumps(to_eebus_message(message))))
    return result


def ship_go_decode(text: str) -> Any:
    """ship-go's EEBus JSON → JSON step is plain byte replacement (ship/helper.go), not a parser.

    Our encoder is structure-aware; this checks that its output is also
    decoded to the intended document by that replacement, as eebus-go sees it.
    """
    for old, new in (("[{", "{"), ("},{", ","), ("}]", "}"), ("[]", "{}")):
        text = text.replace(old, new)
    return json.loads(text)


def readable_functions(session: SpineSession) -> list[tuple[tuple[tuple[int, ...], int], str]]:
    out = [
        (NODE_MANAGEMENT, fn)
        for fn in (
            "nodeManagementDetailedDiscoveryData",
            "nodeManagementUseCaseData",
            "nodeManagementSubscriptionData",
            "nodeManagementBindingData",
            "nodeManagementDestinationListData",
        )
    ]
    for key, feature in sorted(session.device.features.items()):
        out += [(key, f.name) for f in feature.functions.values() if f.read is not None]
    return out


def eebus_go_nominal_max_type(device_type: str) -> str:
    """eebus-go usecases/eg/lpc characteristicType(): contractual only from an EnergyManagementSystem."""
    if device_type == "EnergyManagementSystem":
        return "contractualConsumptionNominalMax"
    return "powerConsumptionNominalMax"


def test_group_nominal_max_is_found_by_eebus_go_filter() -> None:
    session = group_session()
    (discovery,) = session.receive(from_eebus(json.loads(DISCOVERY_READ)))
    data = wire(discovery)["datagram"]["payload"]["cmd"][0]["nodeManagementDetailedDiscoveryData"]
    wanted = eebus_go_nominal_max_type(data["deviceInformation"]["description"]["deviceType"])

    (reply,) = session.receive(from_eebus(json.loads(CHARACTERISTICS_READ)))
    header = reply["datagram"]["header"]
    assert header["cmdClassifier"] == "reply" and header["msgCounterReference"] == 20
    items = wire(reply)["datagram"]["payload"]["cmd"][0]["electricalConnectionCharacteristicListData"][
        "electricalConnectionCharacteristicData"
    ]
    matches = [i for i in items if i["characteristicContext"] == "entity" and i["characteristicType"] == wanted]
    assert len(matches) == 1, items
    assert matches[0]["unit"] == "W" and matches[0]["value"] == {"number": 22080, "scale": 0}


def test_group_keeps_contractual_value_with_its_own_id() -> None:
    session = group_session()
    (reply,) = session.receive(from_eebus(json.loads(CHARACTERISTICS_READ)))
    items = reply["datagram"]["payload"]["cmd"][0]["electricalConnectionCharacteristicListData"][
        "electricalConnectionCharacteristicData"
    ]
    by_type = {i["characteristicType"]: i for i in items}
    assert set(by_type) == {"powerConsumptionNominalMax", "contractualConsumptionNominalMax"}
    assert len({i["characteristicId"] for i in items}) == len(items)


@pytest.mark.parametrize("make", [charging_session, group_session], ids=["charger", "group"])
def test_every_reply_survives_ship_go_string_decoding(make: Any) -> None:
    session = make()
    client = FeatureAddress("d:_n:Interop_GoHEMS-1", (1,), 4)
    functions = readable_functions(session)
    assert len(functions) > 15
    for counter, ((entity, feature), function) in enumerate(functions, start=1):
        request = {
            "datagram": {
                "header": {
                    "specificationVersion": "1.3.0",
                    "addressSource": client.to_json(),
                    "addressDestination": {
                        "device": session.device.address,
                        "entity": list(entity),
                        "feature": feature,
                    },
                    "msgCounter": counter,
                    "cmdClassifier": "read",
                },
                "payload": {"cmd": [{function: {}}]},
            }
        }
        (reply,) = session.receive(request)
        assert reply["datagram"]["header"]["cmdClassifier"] == "reply", (function, reply)
        on_wire = json.dumps(to_eebus_message(reply), separators=(",", ":"), ensure_ascii=False)
        assert ship_go_decode(on_wire) == json.loads(json.dumps(reply)), function


def garage() -> tuple[SpineSession, Endpoint, FakeClock]:
    clock = FakeClock()
    endpoint = Endpoint(clock)
    evse = EvseDevice("garage", EvseSource(lambda: None, Characteristics(), endpoint), clock)
    return SpineSession(evse.device, clock, "go-ski"), endpoint, clock


def test_eebus_go_energy_guard_use_cases_and_heartbeat_count() -> None:
    session, endpoint, clock = garage()
    assert session.receive(from_eebus(json.loads(USE_CASE_REPLY))) == []
    clock.advance(1)
    session.receive(from_eebus(json.loads(HEARTBEAT_NOTIFY)))
    assert endpoint.lpc.last_heartbeat == clock.monotonic()


def test_eebus_go_monitoring_only_heartbeat_does_not_arm_lpc() -> None:
    session, endpoint, clock = garage()
    reply = from_eebus(json.loads(USE_CASE_REPLY))
    infos = reply["datagram"]["payload"]["cmd"][0]["nodeManagementUseCaseData"]["useCaseInformation"]
    infos[:] = [i for i in infos if i["actor"] == "MonitoringAppliance"]
    session.receive(reply)
    clock.advance(1)
    session.receive(from_eebus(json.loads(HEARTBEAT_NOTIFY)))
    assert endpoint.lpc.last_heartbeat is None
