"""Regressions found by running eebus-go (energy guard LPC + MPC client) against `evbridge run`.

The request datagrams are the ones eebus-go sent on the wire (EEBus JSON, SHIP
header stripped), see bridge/eebus/spine/INTEROP.md.  Each test reads our
answer the way eebus-go does.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.clock import FakeClock
from bridge.eebus.ship.eebus_json import from_eebus, to_eebus
from bridge.eebus.spine.evse import EvseDevice, EvseSource
from bridge.eebus.spine.session import SpineSession
from bridge.model import Characteristics
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


def wire(message: dict[str, Any]) -> dict[str, Any]:
    """What eebus-go gets: our answer through the EEBus JSON encoding and back."""
    result: dict[str, Any] = from_eebus(json.loads(json.dumps(to_eebus(message))))
    return result


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
