"""Golden tests: the worked LPC sequence of eebus-ship-spine.md §6, produced and parsed field by field.

The expected messages are copied from the reference as literals, so our
device (server) and our EMS tool (client) cannot share a mistake unnoticed.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.clock import FakeClock
from bridge.eebus.ship.eebus_json import from_eebus, to_eebus
from bridge.eebus.spine.device import FeatureAddress
from bridge.eebus.spine.ems import limit_write
from bridge.eebus.spine.evse import EvseDevice, EvseSource
from bridge.eebus.spine.session import SpineSession
from bridge.model import Characteristics
from bridge.usecases.lpc import Lpc, WriteResult

# §6 step 1, the SHIP data message's SPINE part in EEBus JSON (the SHIP header stripped)
STEP1_EEBUS = """{"datagram":[
 {"header":[{"specificationVersion":"1.3.0"},
   {"addressSource":[{"device":"d:_n:EG_1"},{"entity":[0]},{"feature":0}]},
   {"addressDestination":[{"entity":[0]},{"feature":0}]},
   {"msgCounter":1},{"cmdClassifier":"read"}]},
 {"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}"""

BINDING_EEBUS = """{"datagram":[
 {"header":[{"specificationVersion":"1.3.0"},
   {"addressSource":[{"device":"d:_n:EG_1"},{"entity":[0]},{"feature":0}]},
   {"addressDestination":[{"device":"d:_n:Acme_WB1-0001"},{"entity":[0]},{"feature":0}]},
   {"msgCounter":7},{"cmdClassifier":"call"},{"ackRequest":true}]},
 {"payload":[{"cmd":[[{"nodeManagementBindingRequestCall":[{"bindingRequest":[
   {"clientAddress":[{"device":"d:_n:EG_1"},{"entity":[1]},{"feature":1}]},
   {"serverAddress":[{"device":"d:_n:Acme_WB1-0001"},{"entity":[1]},{"feature":1}]},
   {"serverFeatureType":"LoadControl"}]}]}]]}]}]}"""

BINDING_ANSWER = {
    "datagram": {
        "header": {
            "specificationVersion": "1.3.0",
            "addressSource": {"device": "d:_n:Acme_WB1-0001", "entity": [0], "feature": 0},
            "addressDestination": {"device": "d:_n:EG_1", "entity": [0], "feature": 0},
            "msgCounter": 12,
            "msgCounterReference": 7,
            "cmdClassifier": "result",
        },
        "payload": {"cmd": [{"resultData": {"errorNumber": 0}}]},
    }
}

STEP6_WRITE = {
    "datagram": {
        "header": {
            "specificationVersion": "1.3.0",
            "addressSource": {"device": "d:_n:EG_1", "entity": [1], "feature": 1},
            "addressDestination": {"device": "d:_n:Acme_WB1-0001", "entity": [1], "feature": 1},
            "msgCounter": 31,
            "cmdClassifier": "write",
            "ackRequest": True,
        },
        "payload": {
            "cmd": [
                {
                    "function": "loadControlLimitListData",
                    "filter": [{"cmdControl": {"partial": {}}}],
                    "loadControlLimitListData": {
                        "loadControlLimitData": [
                            {
                                "limitId": 0,
                                "isLimitActive": True,
                                "timePeriod": {"endTime": "PT2H"},
                                "value": {"number": 4200, "scale": 0},
                            }
                        ]
                    },
                }
            ]
        },
    }
}


class Endpoint:
    def __init__(self, clock: FakeClock) -> None:
        self.lpc = Lpc(clock)
        self.writes: list[tuple[float, bool, float | None, str]] = []

    def heartbeat(self) -> None:
        self.lpc.heartbeat_received()

    def write_limit(self, value_w: float, active: bool, duration_s: float | None, *, peer: str = "") -> WriteResult:
        self.writes.append((value_w, active, duration_s, peer))
        return self.lpc.write_limit(value_w, active, duration_s)

    def write_failsafe(
        self, *, limit_w: float | None = None, duration_s: float | None = None, peer: str = ""
    ) -> WriteResult:
        return self.lpc.write_failsafe(limit_w=limit_w, duration_s=duration_s)


def acme() -> tuple[SpineSession, Endpoint, FakeClock]:
    clock = FakeClock()
    endpoint = Endpoint(clock)
    evse = EvseDevice("WB1-0001", EvseSource(lambda: None, Characteristics(), endpoint), clock, vendor="Acme")
    assert evse.device.address == "d:_n:Acme_WB1-0001"
    return SpineSession(evse.device, clock, "eg-ski"), endpoint, clock


def test_step1_discovery_read_is_parsed_and_answered() -> None:
    session, _, _ = acme()
    message = from_eebus(json.loads(STEP1_EEBUS))
    (reply,) = session.receive(message)
    header = reply["datagram"]["header"]
    assert header["addressSource"] == {"device": "d:_n:Acme_WB1-0001", "entity": [0], "feature": 0}
    assert header["addressDestination"] == {"device": "d:_n:EG_1", "entity": [0], "feature": 0}
    assert header["msgCounterReference"] == 1 and header["cmdClassifier"] == "reply"
    data = reply["datagram"]["payload"]["cmd"][0]["nodeManagementDetailedDiscoveryData"]
    assert data["deviceInformation"]["description"] == {
        "deviceAddress": {"device": "d:_n:Acme_WB1-0001"},
        "deviceType": "ChargingStation",
        "networkFeatureSet": "smart",
    }
    entities = [e["description"] for e in data["entityInformation"]]
    assert {"entityAddress": {"entity": [1]}, "entityType": "EVSE"} in entities
    nm = data["featureInformation"][0]["description"]
    assert nm["featureAddress"] == {"entity": [0], "feature": 0} and nm["role"] == "special"
    # §6: LoadControl server on EVSE feature 1 with limit list read+write
    lc = next(f["description"] for f in data["featureInformation"] if f["description"]["featureType"] == "LoadControl")
    assert lc["featureAddress"] == {"entity": [1], "feature": 1} and lc["role"] == "server"
    ops = {f["function"]: f["possibleOperations"] for f in lc["supportedFunction"]}
    assert set(ops["loadControlLimitListData"]) == {"read", "write"} and set(
        ops["loadControlLimitDescriptionListData"]
    ) == {"read"}
    # and back to EEBus JSON it keeps the array-of-single-key-objects form
    wire = to_eebus(reply)
    assert wire[0]["datagram"][0]["header"][0] == {"specificationVersion": "1.3.0"}


def test_binding_request_answer_matches_reference_field_by_field() -> None:
    session, _, _ = acme()
    session._counter = 11  # so our next counter is the reference's 12
    (answer,) = session.receive(from_eebus(json.loads(BINDING_EEBUS)))
    assert answer == BINDING_ANSWER


def test_step6_write_accepted_after_binding_and_applied() -> None:
    session, endpoint, _ = acme()
    session.receive(from_eebus(json.loads(BINDING_EEBUS)))
    endpoint.heartbeat()
    out = session.receive(STEP6_WRITE)
    result = out[0]["datagram"]
    assert result["header"]["msgCounterReference"] == 31 and result["header"]["cmdClassifier"] == "result"
    assert result["header"]["addressSource"] == {"device": "d:_n:Acme_WB1-0001", "entity": [1], "feature": 1}
    assert result["payload"]["cmd"] == [{"resultData": {"errorNumber": 0}}]
    assert endpoint.writes == [(4200.0, True, 7200.0, "eg-ski")]


def test_step6_write_without_binding_is_refused() -> None:
    session, endpoint, _ = acme()
    (result,) = session.receive(STEP6_WRITE)
    data = result["datagram"]["payload"]["cmd"][0]["resultData"]
    assert data["errorNumber"] == 9 and "binding" in data["description"]
    assert endpoint.writes == []


def test_ems_tool_writes_the_reference_limit_message() -> None:
    cmd = limit_write(4200, True, 7200)
    expected = STEP6_WRITE["datagram"]["payload"]["cmd"][0]  # type: ignore[index]
    assert cmd == expected


def test_step4_limit_and_failsafe_replies_shape() -> None:
    session, _, _ = acme()
    eg_lc = {"device": "d:_n:EG_1", "entity": [1], "feature": 1}
    read: dict[str, Any] = {
        "datagram": {
            "header": {
                "specificationVersion": "1.3.0",
                "addressSource": eg_lc,
                "addressDestination": {"device": "d:_n:Acme_WB1-0001", "entity": [1], "feature": 1},
                "msgCounter": 20,
                "cmdClassifier": "read",
            },
            "payload": {"cmd": [{"loadControlLimitListData": {}}]},
        }
    }
    (reply,) = session.receive(read)
    assert reply["datagram"]["header"]["addressDestination"] == eg_lc
    item = reply["datagram"]["payload"]["cmd"][0]["loadControlLimitListData"]["loadControlLimitData"][0]
    assert item == {"limitId": 0, "isLimitChangeable": True, "isLimitActive": False, "value": {"number": 0, "scale": 0}}
    read["datagram"]["header"]["addressDestination"]["feature"] = 2
    read["datagram"]["payload"]["cmd"] = [{"deviceConfigurationKeyValueListData": {}}]
    (reply,) = session.receive(read)
    keys = reply["datagram"]["payload"]["cmd"][0]["deviceConfigurationKeyValueListData"][
        "deviceConfigurationKeyValueData"
    ]
    assert keys == [
        {"keyId": 0, "value": {"scaledNumber": {"number": 4200, "scale": 0}}, "isValueChangeable": True},
        {"keyId": 1, "value": {"duration": "PT2H"}, "isValueChangeable": True},
    ]


def test_malformed_and_unknown_destinations_get_protocol_answers() -> None:
    session, _, _ = acme()
    assert session.receive({"not": "a datagram"}) == []
    assert session.receive({"datagram": {"header": {}, "payload": {}}}) == []
    unknown = json.loads(json.dumps(STEP6_WRITE))
    unknown["datagram"]["header"]["addressDestination"] = FeatureAddress(None, (9,), 9).to_json()
    (result,) = session.receive(unknown)
    assert result["datagram"]["payload"]["cmd"][0]["resultData"]["errorNumber"] == 4
    bad_value = json.loads(json.dumps(STEP6_WRITE))
    session.receive(from_eebus(json.loads(BINDING_EEBUS)))
    bad_value["datagram"]["payload"]["cmd"][0]["loadControlLimitListData"]["loadControlLimitData"][0]["value"] = "lots"
    (result,) = session.receive(bad_value)
    assert result["datagram"]["payload"]["cmd"][0]["resultData"]["errorNumber"] == 7


def test_second_ems_cannot_bind_the_same_feature() -> None:
    session, _, clock = acme()
    session.receive(from_eebus(json.loads(BINDING_EEBUS)))
    other = SpineSession(session.device, clock, "other-ski")
    second = json.loads(json.dumps(from_eebus(json.loads(BINDING_EEBUS))))
    second["datagram"]["header"]["addressSource"]["device"] = "d:_n:EG_2"
    second["datagram"]["payload"]["cmd"][0]["nodeManagementBindingRequestCall"]["bindingRequest"]["clientAddress"][
        "device"
    ] = "d:_n:EG_2"
    (result,) = other.receive(second)
    assert result["datagram"]["payload"]["cmd"][0]["resultData"]["errorNumber"] == 7
    # when the first EMS goes away its binding goes with it and the second may bind
    session.close()
    (result,) = other.receive(second)
    assert result["datagram"]["payload"]["cmd"][0]["resultData"] == {"errorNumber": 0}


# §3.7: NodeManagement in the detailed discovery reply, copied from the reference
NODE_MANAGEMENT_DESCRIPTION = json.loads("""
    {"description":{"featureAddress":{"entity":[0],"feature":0},"featureType":"NodeManagement","role":"special",
      "supportedFunction":[
        {"function":"nodeManagementDetailedDiscoveryData","possibleOperations":{"read":{}}},
        {"function":"nodeManagementUseCaseData","possibleOperations":{"read":{}}},
        {"function":"nodeManagementSubscriptionData","possibleOperations":{"read":{}}},
        {"function":"nodeManagementSubscriptionRequestCall","possibleOperations":{}},
        {"function":"nodeManagementSubscriptionDeleteCall","possibleOperations":{}},
        {"function":"nodeManagementBindingData","possibleOperations":{"read":{}}},
        {"function":"nodeManagementBindingRequestCall","possibleOperations":{}},
        {"function":"nodeManagementBindingDeleteCall","possibleOperations":{}}]}}
""")


def _walk(value: Any) -> list[Any]:
    out = [value]
    if isinstance(value, dict):
        for v in value.values():
            out += _walk(v)
    elif isinstance(value, list):
        for v in value:
            out += _walk(v)
    return out


def test_discovery_node_management_matches_reference_and_has_no_empty_lists() -> None:
    session, _, _ = acme()
    (reply,) = session.receive(from_eebus(json.loads(STEP1_EEBUS)))
    data = reply["datagram"]["payload"]["cmd"][0]["nodeManagementDetailedDiscoveryData"]
    nm = data["featureInformation"][0]
    expected = NODE_MANAGEMENT_DESCRIPTION["description"]["supportedFunction"]
    assert nm["description"]["supportedFunction"][: len(expected)] == expected
    assert {k: v for k, v in nm["description"].items() if k != "supportedFunction"} == {
        k: v for k, v in NODE_MANAGEMENT_DESCRIPTION["description"].items() if k != "supportedFunction"
    }
    # the DeviceDiagnosis client has no functions: the member is omitted, never `[]`
    client = next(f["description"] for f in data["featureInformation"] if f["description"]["role"] == "client")
    assert client["featureType"] == "DeviceDiagnosis" and "supportedFunction" not in client
    # ship-go replaces every `[]` by `{}` in the text; Go cannot decode `{}` into a list
    assert not any(isinstance(v, list) and not v for v in _walk(reply))


def test_empty_measurement_list_is_sent_without_the_empty_list() -> None:
    session, _, _ = acme()  # no snapshot yet: no measurement values
    read = {
        "datagram": {
            "header": {
                "addressSource": {"device": "d:_n:EG_1", "entity": [1], "feature": 6},
                "addressDestination": {"entity": [1], "feature": 6},
                "msgCounter": 3,
                "cmdClassifier": "read",
            },
            "payload": {"cmd": [{"measurementListData": {}}]},
        }
    }
    (reply,) = session.receive(read)
    assert reply["datagram"]["payload"]["cmd"] == [{"measurementListData": {}}]
