"""Notify coalescing and robustness of the pure SPINE session."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.clock import FakeClock
from bridge.eebus.spine.device import FeatureAddress, LocalDevice
from bridge.eebus.spine.session import SpineSession

CLIENT = FeatureAddress("d:_n:EMS", (1,), 6)


def device_with_value(box: dict[str, Any]) -> LocalDevice:
    device = LocalDevice("d:_n:dev", "ChargingStation")
    device.add_feature((0,), 0, "NodeManagement", "special")
    device.add_entity((1,), "EVSE")
    device.add_feature((1,), 6, "Measurement", "server").add("measurementListData", lambda: {"v": box["v"]})
    return device


def subscribe(session: SpineSession) -> None:
    call = {
        "datagram": {
            "header": {
                "addressSource": {"device": "d:_n:EMS", "entity": [0], "feature": 0},
                "addressDestination": {"entity": [0], "feature": 0},
                "msgCounter": 1,
                "cmdClassifier": "call",
            },
            "payload": {
                "cmd": [
                    {
                        "nodeManagementSubscriptionRequestCall": {
                            "subscriptionRequest": {
                                "clientAddress": CLIENT.to_json(),
                                "serverAddress": {"device": "d:_n:dev", "entity": [1], "feature": 6},
                                "serverFeatureType": "Measurement",
                            }
                        }
                    }
                ]
            },
        }
    }
    (result,) = session.receive(call)
    assert result["datagram"]["payload"]["cmd"][0]["resultData"]["errorNumber"] == 0


def test_notifies_at_most_once_per_second_and_within_a_second() -> None:
    clock = FakeClock()
    box = {"v": 0}
    session = SpineSession(device_with_value(box), clock, "peer")
    subscribe(session)
    assert session.tick() == []  # nothing changed since subscribing
    sent: list[tuple[float, int]] = []
    for step in range(100):  # the value changes every 100 ms for 10 s
        box["v"] = step + 1
        for message in session.tick():
            sent.append((clock.monotonic(), message["datagram"]["payload"]["cmd"][0]["measurementListData"]["v"]))
        deadline = session.next_deadline()
        assert deadline is None or deadline <= clock.monotonic() + 1.0
        clock.advance(0.1)
    times = [t for t, _ in sent]
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(times))
    assert 9 <= len(sent) <= 11
    # the last change is delivered within a second
    clock.advance(1.0)
    (last,) = session.tick()
    assert last["datagram"]["payload"]["cmd"][0]["measurementListData"]["v"] == 100
    assert last["datagram"]["header"]["addressDestination"] == CLIENT.to_json()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["header", "payload", "x"]), json_values, max_size=3), json_values)
def test_fuzz_session_never_raises(datagram: dict[str, Any], cmd: Any) -> None:
    clock = FakeClock()
    session = SpineSession(device_with_value({"v": 1}), clock, "peer")
    session.receive({"datagram": datagram})
    header = {
        "addressSource": {"entity": [0], "feature": 0},
        "addressDestination": {"entity": [1], "feature": 6},
        "msgCounter": 5,
        "cmdClassifier": "write",
    }
    for cls in ("read", "write", "call", "notify", "reply", "result"):
        header["cmdClassifier"] = cls
        for dst in ({"entity": [1], "feature": 6}, {"entity": [0], "feature": 0}):
            header["addressDestination"] = dst
            out = session.receive({"datagram": {"header": dict(header), "payload": {"cmd": [cmd]}}})
            for message in out:
                assert message["datagram"]["header"]["cmdClassifier"] in ("reply", "result", "notify")


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(["loadControlLimitListData", "deviceConfigurationKeyValueListData"]), json_values)
def test_fuzz_evse_writes_are_answered_never_raise(data: Any, function: str, filters: Any) -> None:
    import json

    from bridge.eebus.ship.eebus_json import from_eebus
    from tests.unit.spine.test_golden import BINDING_EEBUS, acme

    session, endpoint, _ = acme()
    session.receive(from_eebus(json.loads(BINDING_EEBUS)))
    bind_dc = from_eebus(json.loads(BINDING_EEBUS))
    request = bind_dc["datagram"]["payload"]["cmd"][0]["nodeManagementBindingRequestCall"]["bindingRequest"]
    request["serverAddress"]["feature"] = 2
    request["serverFeatureType"] = "DeviceConfiguration"
    session.receive(bind_dc)
    feature = 1 if function == "loadControlLimitListData" else 2
    message = {
        "datagram": {
            "header": {
                "addressSource": {"device": "d:_n:EG_1", "entity": [1], "feature": 1},
                "addressDestination": {"entity": [1], "feature": feature},
                "msgCounter": 40,
                "cmdClassifier": "write",
                "ackRequest": True,
            },
            "payload": {"cmd": [{"function": function, "filter": filters, function: data}]},
        }
    }
    out = session.receive(message)
    assert session.device.is_bound(FeatureAddress("d:_n:EG_1", (1,), 1), ((1,), feature), session.owner)
    results = [m for m in out if m["datagram"]["header"]["cmdClassifier"] == "result"]
    assert len(results) == 1
    assert endpoint.lpc.limit.value_w >= 0


def test_header_types_are_checked_and_a_bad_payload_is_still_answered() -> None:
    session = SpineSession(device_with_value({"v": 1}), FakeClock(), "peer")
    header: dict[str, Any] = {
        "specificationVersion": "1.3.0",
        "addressSource": {"device": "d:_n:EMS", "entity": [1], "feature": 6},
        "addressDestination": {"entity": [1], "feature": 6},
        "msgCounter": 9,
        "cmdClassifier": "read",
    }
    read = {"datagram": {"header": header, "payload": {"cmd": [{"measurementListData": {}}]}}}
    (reply,) = session.receive(read)
    assert reply["datagram"]["header"]["cmdClassifier"] == "reply"
    for bad in ({"ackRequest": "yes"}, {"msgCounter": True}, {"msgCounter": -1}, {"addressSource": {"entity": [1]}}):
        assert (
            session.receive({"datagram": {"header": {**header, **bad}, "payload": read["datagram"]["payload"]}}) == []
        )
    (result,) = session.receive({"datagram": {"header": header, "payload": {"cmd": []}}})
    data = result["datagram"]["payload"]["cmd"][0]["resultData"]
    assert data["errorNumber"] == 1 and "payload.cmd" in data["description"]
    assert result["datagram"]["header"]["msgCounterReference"] == 9


def test_a_failing_reader_is_answered_with_an_error_and_skipped_in_notifies() -> None:
    clock = FakeClock()
    box: dict[str, Any] = {"v": 1}
    device = device_with_value(box)

    def broken() -> dict[str, Any]:
        raise RuntimeError("snapshot getter bug")

    device.features[((1,), 6)].add("measurementDescriptionListData", broken)
    session = SpineSession(device, clock, "peer")
    subscribe(session)
    box["v"] = 2
    clock.advance(1)
    (notify,) = session.tick()
    assert notify["datagram"]["payload"]["cmd"][0] == {"measurementListData": {"v": 2}}
    read = {
        "datagram": {
            "header": {
                "addressSource": CLIENT.to_json(),
                "addressDestination": {"entity": [1], "feature": 6},
                "msgCounter": 4,
                "cmdClassifier": "read",
            },
            "payload": {"cmd": [{"measurementDescriptionListData": {}}]},
        }
    }
    (result,) = session.receive(read)
    assert result["datagram"]["payload"]["cmd"][0]["resultData"]["errorNumber"] == 1
