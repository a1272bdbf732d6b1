"""Golden tests: the codec reproduces, member by member and in order, the worked messages of
shared/reference/eebus-ship-spine.md (§2.7, §2.8, §2.12, §6) in both directions.

The expected JSON is copied from the reference as literals.  Comparisons use the
compact serialisation so that member order (schema order) is pinned too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.eebus.ship import codec
from bridge.eebus.ship.codec import (
    AccessMethods,
    AccessMethodsRequest,
    CmiInit,
    ConnectionClose,
    Data,
    Hello,
    PinState,
    ProtocolHandshake,
    ProtocolHandshakeError,
)
from bridge.eebus.ship.eebus_json import from_eebus, to_eebus_message


def compact(text: str) -> str:
    """The reference's literal, re-serialised without whitespace (member order kept)."""
    return json.dumps(json.loads(text), separators=(",", ":"))


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# --- §2.7 ---------------------------------------------------------------------------------

HELLO_NORMAL = '{"connectionHello":{"phase":"pending","waiting":60000}}'
HELLO_EEBUS = '{"connectionHello":[{"phase":"pending"},{"waiting":60000}]}'

SPINE_NORMAL = """{"datagram":{"header":{"specificationVersion":"1.3.0",
   "addressSource":{"device":"d:_i:12345_Wallbox-1","entity":[0],"feature":0},
   "addressDestination":{"device":"d:_n:EMS_X","entity":[0],"feature":0},
   "msgCounter":5,"cmdClassifier":"read"},
 "payload":{"cmd":[{"nodeManagementUseCaseData":{}}]}}}"""

SPINE_DATA_EEBUS = """{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[
  {"header":[{"specificationVersion":"1.3.0"},
             {"addressSource":[{"device":"d:_i:12345_Wallbox-1"},{"entity":[0]},{"feature":0}]},
             {"addressDestination":[{"device":"d:_n:EMS_X"},{"entity":[0]},{"feature":0}]},
             {"msgCounter":5},{"cmdClassifier":"read"}]},
  {"payload":[{"cmd":[[{"nodeManagementUseCaseData":[]}]]}]}]}}]}"""

ENTITY_INFORMATION_EEBUS = """{"entityInformation":[
   [{"description":[{"entityAddress":[{"entity":[1]}]},{"entityType":"EVSE"}]}],
   [{"description":[{"entityAddress":[{"entity":[1,1]}]},{"entityType":"EV"}]}]
]}"""
ENTITY_INFORMATION_NORMAL = {
    "entityInformation": [
        {"description": {"entityAddress": {"entity": [1]}, "entityType": "EVSE"}},
        {"description": {"entityAddress": {"entity": [1, 1]}, "entityType": "EV"}},
    ]
}


def test_hello_example_both_directions() -> None:
    assert dumps(to_eebus_message(json.loads(HELLO_NORMAL))) == compact(HELLO_EEBUS)
    assert dumps(from_eebus(json.loads(HELLO_EEBUS))) == compact(HELLO_NORMAL)
    frame = codec.encode(Hello("pending", 60000))
    assert frame == b"\x01" + compact(HELLO_EEBUS).encode()
    assert codec.decode(frame) == Hello("pending", 60000)


def test_spine_data_message_example_both_directions() -> None:
    frame = codec.encode_data(json.loads(SPINE_NORMAL))
    assert frame[0] == codec.MSG_DATA
    assert frame[1:].decode() == compact(SPINE_DATA_EEBUS)
    decoded = codec.decode(b"\x02" + SPINE_DATA_EEBUS.encode())
    assert isinstance(decoded, Data)
    assert dumps(decoded.payload) == compact(SPINE_NORMAL)


def test_data_message_accepts_schema_form_payload_array() -> None:
    """Decoders must accept "payload":[{"datagram":…}] as well as ship-go's "payload":{"datagram":…}."""
    wrapped = SPINE_DATA_EEBUS.replace('{"payload":{"datagram":[', '{"payload":[{"datagram":[', 1)
    wrapped = wrapped[: wrapped.rindex("}}]}")] + "}]}]}"
    decoded = codec.decode(b"\x02" + wrapped.encode())
    assert isinstance(decoded, Data)
    assert dumps(decoded.payload) == compact(SPINE_NORMAL)


def test_list_of_complex_items_example() -> None:
    assert from_eebus(json.loads(ENTITY_INFORMATION_EEBUS)) == ENTITY_INFORMATION_NORMAL
    assert dumps(to_eebus_message(ENTITY_INFORMATION_NORMAL)) == compact(ENTITY_INFORMATION_EEBUS)


def test_trailing_nul_is_stripped() -> None:
    assert codec.decode(b"\x01" + HELLO_EEBUS.encode() + b"\x00") == Hello("pending", 60000)


# --- §2.8 handshake and §2.12 close messages --------------------------------------------------

CONTROL_EXAMPLES: list[tuple[Any, int, str]] = [
    (Hello("ready", 60000), 1, '{"connectionHello":[{"phase":"ready"},{"waiting":60000}]}'),
    (
        ProtocolHandshake("announceMax", 1, 0, ("JSON-UTF8",)),
        1,
        """{"messageProtocolHandshake":[{"handshakeType":"announceMax"},
             {"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}""",
    ),
    (
        ProtocolHandshake("select", 1, 0, ("JSON-UTF8",)),
        1,
        """{"messageProtocolHandshake":[{"handshakeType":"select"},
             {"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}""",
    ),
    (PinState("none"), 1, '{"connectionPinState":[{"pinState":"none"}]}'),
    (AccessMethodsRequest(), 1, '{"accessMethodsRequest":[]}'),
    (AccessMethods("Demo-EVSE-234567890"), 1, '{"accessMethods":[{"id":"Demo-EVSE-234567890"}]}'),
    (ProtocolHandshakeError(3), 1, '{"messageProtocolHandshakeError":[{"error":3}]}'),
    (
        Hello("pending", prolongation_request=True),
        1,
        '{"connectionHello":[{"phase":"pending"},{"prolongationRequest":true}]}',
    ),
    (Hello("aborted"), 1, '{"connectionHello":[{"phase":"aborted"}]}'),
    (
        ConnectionClose("announce", 500, "unspecific"),
        3,
        '{"connectionClose":[{"phase":"announce"},{"maxTime":500},{"reason":"unspecific"}]}',
    ),
    (ConnectionClose("confirm"), 3, '{"connectionClose":[{"phase":"confirm"}]}'),
]


@pytest.mark.parametrize(("message", "msg_type", "literal"), CONTROL_EXAMPLES)
def test_control_messages_both_directions(message: Any, msg_type: int, literal: str) -> None:
    wire = bytes([msg_type]) + compact(literal).encode()
    assert codec.encode(message) == wire
    assert codec.decode(wire) == message


def test_cmi_init_is_two_zero_bytes() -> None:
    assert codec.encode(CmiInit()) == bytes([0x00, 0x00])
    assert codec.decode(b"\x00\x00") == CmiInit()


def test_handshake_error_without_wrapper_as_ship_go_sends_it() -> None:
    assert codec.decode(b'\x01{"error":3}') == ProtocolHandshakeError(3)


# --- §6 worked LPC sequence ---------------------------------------------------------------------

DISCOVERY_READ_EEBUS = """{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[
 {"header":[{"specificationVersion":"1.3.0"},
   {"addressSource":[{"device":"d:_n:EG_1"},{"entity":[0]},{"feature":0}]},
   {"addressDestination":[{"entity":[0]},{"feature":0}]},
   {"msgCounter":1},{"cmdClassifier":"read"}]},
 {"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}}]}"""
DISCOVERY_READ_NORMAL = {
    "datagram": {
        "header": {
            "specificationVersion": "1.3.0",
            "addressSource": {"device": "d:_n:EG_1", "entity": [0], "feature": 0},
            "addressDestination": {"entity": [0], "feature": 0},
            "msgCounter": 1,
            "cmdClassifier": "read",
        },
        "payload": {"cmd": [{"nodeManagementDetailedDiscoveryData": {}}]},
    }
}

BINDING_REQUEST_EEBUS = """{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[
 {"header":[{"specificationVersion":"1.3.0"},
   {"addressSource":[{"device":"d:_n:EG_1"},{"entity":[0]},{"feature":0}]},
   {"addressDestination":[{"device":"d:_n:Acme_WB1-0001"},{"entity":[0]},{"feature":0}]},
   {"msgCounter":7},{"cmdClassifier":"call"},{"ackRequest":true}]},
 {"payload":[{"cmd":[[{"nodeManagementBindingRequestCall":[{"bindingRequest":[
   {"clientAddress":[{"device":"d:_n:EG_1"},{"entity":[1]},{"feature":1}]},
   {"serverAddress":[{"device":"d:_n:Acme_WB1-0001"},{"entity":[1]},{"feature":1}]},
   {"serverFeatureType":"LoadControl"}]}]}]]}]}]}}]}"""
BINDING_REQUEST_NORMAL = {
    "datagram": {
        "header": {
            "specificationVersion": "1.3.0",
            "addressSource": {"device": "d:_n:EG_1", "entity": [0], "feature": 0},
            "addressDestination": {"device": "d:_n:Acme_WB1-0001", "entity": [0], "feature": 0},
            "msgCounter": 7,
            "cmdClassifier": "call",
            "ackRequest": True,
        },
        "payload": {
            "cmd": [
                {
                    "nodeManagementBindingRequestCall": {
                        "bindingRequest": {
                            "clientAddress": {"device": "d:_n:EG_1", "entity": [1], "feature": 1},
                            "serverAddress": {"device": "d:_n:Acme_WB1-0001", "entity": [1], "feature": 1},
                            "serverFeatureType": "LoadControl",
                        }
                    }
                }
            ]
        },
    }
}

RESULT_NORMAL = """{"datagram":{"header":{"specificationVersion":"1.3.0",
  "addressSource":{"device":"d:_n:Acme_WB1-0001","entity":[0],"feature":0},
  "addressDestination":{"device":"d:_n:EG_1","entity":[0],"feature":0},
  "msgCounter":12,"msgCounterReference":7,"cmdClassifier":"result"},
 "payload":{"cmd":[{"resultData":{"errorNumber":0}}]}}}"""
RESULT_EEBUS = (
    '{"datagram":[{"header":[{"specificationVersion":"1.3.0"},'
    '{"addressSource":[{"device":"d:_n:Acme_WB1-0001"},{"entity":[0]},{"feature":0}]},'
    '{"addressDestination":[{"device":"d:_n:EG_1"},{"entity":[0]},{"feature":0}]},'
    '{"msgCounter":12},{"msgCounterReference":7},{"cmdClassifier":"result"}]},'
    '{"payload":[{"cmd":[[{"resultData":[{"errorNumber":0}]}]]}]}]}'
)

WRITE_NORMAL = """{"datagram":{"header":{"specificationVersion":"1.3.0",
  "addressSource":{"device":"d:_n:EG_1","entity":[1],"feature":1},
  "addressDestination":{"device":"d:_n:Acme_WB1-0001","entity":[1],"feature":1},
  "msgCounter":31,"cmdClassifier":"write","ackRequest":true},
 "payload":{"cmd":[{"function":"loadControlLimitListData",
   "filter":[{"cmdControl":{"partial":{}}}],
   "loadControlLimitListData":{"loadControlLimitData":[
     {"limitId":0,"isLimitActive":true,"timePeriod":{"endTime":"PT2H"},
      "value":{"number":4200,"scale":0}}]}}]}}}"""
WRITE_EEBUS = (
    '{"datagram":[{"header":[{"specificationVersion":"1.3.0"},'
    '{"addressSource":[{"device":"d:_n:EG_1"},{"entity":[1]},{"feature":1}]},'
    '{"addressDestination":[{"device":"d:_n:Acme_WB1-0001"},{"entity":[1]},{"feature":1}]},'
    '{"msgCounter":31},{"cmdClassifier":"write"},{"ackRequest":true}]},'
    '{"payload":[{"cmd":[[{"function":"loadControlLimitListData"},'
    '{"filter":[[{"cmdControl":[{"partial":[]}]}]]},'
    '{"loadControlLimitListData":[{"loadControlLimitData":[[{"limitId":0},{"isLimitActive":true},'
    '{"timePeriod":[{"endTime":"PT2H"}]},{"value":[{"number":4200},{"scale":0}]}]]}]}]]}]}]}'
)


@pytest.mark.parametrize(
    ("eebus_data", "normal"),
    [(DISCOVERY_READ_EEBUS, DISCOVERY_READ_NORMAL), (BINDING_REQUEST_EEBUS, BINDING_REQUEST_NORMAL)],
    ids=["step1-discovery-read", "step3-binding-request"],
)
def test_lpc_data_messages_both_directions(eebus_data: str, normal: dict[str, Any]) -> None:
    decoded = codec.decode(b"\x02" + eebus_data.encode())
    assert isinstance(decoded, Data)
    assert dumps(decoded.payload) == dumps(normal)
    assert codec.encode(Data(normal)) == b"\x02" + compact(eebus_data).encode()


@pytest.mark.parametrize(
    ("normal", "eebus"),
    [(RESULT_NORMAL, RESULT_EEBUS), (WRITE_NORMAL, WRITE_EEBUS)],
    ids=["step3-result", "step6-write"],
)
def test_lpc_datagrams_both_directions(normal: str, eebus: str) -> None:
    assert dumps(to_eebus_message(json.loads(normal))) == eebus
    assert dumps(from_eebus(json.loads(eebus))) == compact(normal)
    frame = codec.encode_data(json.loads(normal))
    decoded = codec.decode(frame)
    assert isinstance(decoded, Data)
    assert dumps(decoded.payload) == compact(normal)


def test_eebus_bytes_payload_is_inserted_verbatim() -> None:
    frame = codec.encode_data(RESULT_EEBUS.encode())
    assert frame == b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":' + RESULT_EEBUS.encode() + b"}]}"
