"""Partial NodeManagement notifies when an entity appears or disappears (eebus-ship-spine.md §3.7, §5)."""

from __future__ import annotations

from typing import Any

from bridge.eebus.spine.device import FeatureAddress, UseCase
from bridge.eebus.spine.session import SpineSession
from tests.unit.spine.test_golden import acme

EMS_NM = FeatureAddress("d:_n:EG_1", (0,), 0)
EMS_LC = FeatureAddress("d:_n:EG_1", (1,), 1)

# the EV plug-in notify of the reference, with the features of [1,1] filled in for this device
PLUG_IN = {
    "function": "nodeManagementDetailedDiscoveryData",
    "filter": [{"cmdControl": {"partial": {}}}],
    "nodeManagementDetailedDiscoveryData": {
        "deviceInformation": {"description": {"deviceAddress": {"device": "d:_n:Acme_WB1-0001"}}},
        "entityInformation": [
            {"description": {"entityAddress": {"entity": [1, 1]}, "entityType": "EV", "lastStateChange": "added"}}
        ],
        "featureInformation": [
            {
                "description": {
                    "featureAddress": {"entity": [1, 1], "feature": 1},
                    "featureType": "LoadControl",
                    "role": "server",
                    "supportedFunction": [
                        {"function": "loadControlLimitListData", "possibleOperations": {"read": {}}},
                    ],
                }
            }
        ],
    },
}
UNPLUG = {
    "function": "nodeManagementDetailedDiscoveryData",
    "filter": [{"cmdControl": {"partial": {}}}],
    "nodeManagementDetailedDiscoveryData": {
        "deviceInformation": {"description": {"deviceAddress": {"device": "d:_n:Acme_WB1-0001"}}},
        "entityInformation": [{"description": {"entityAddress": {"entity": [1, 1]}, "lastStateChange": "removed"}}],
    },
}


def call(session: SpineSession, function: str, body: dict[str, Any], counter: int) -> dict[str, Any]:
    message = {
        "datagram": {
            "header": {
                "addressSource": EMS_NM.to_json(),
                "addressDestination": {"entity": [0], "feature": 0},
                "msgCounter": counter,
                "cmdClassifier": "call",
                "ackRequest": True,
            },
            "payload": {"cmd": [{function: body}]},
        }
    }
    (result,) = [m for m in session.receive(message) if m["datagram"]["header"]["cmdClassifier"] == "result"]
    return dict(result["datagram"]["payload"]["cmd"][0]["resultData"])


def request(kind: str, client: FeatureAddress, server: FeatureAddress, ftype: str) -> dict[str, Any]:
    return {kind: {"clientAddress": client.to_json(), "serverAddress": server.to_json(), "serverFeatureType": ftype}}


def notifies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        m["datagram"]["payload"]["cmd"][0] for m in messages if m["datagram"]["header"]["cmdClassifier"] == "notify"
    ]


def test_ev_entity_added_and_removed_with_partial_notifies() -> None:
    session, _, clock = acme()
    device = session.device
    nm = FeatureAddress(device.address, (0,), 0)
    sub = request("subscriptionRequest", EMS_NM, nm, "NodeManagement")
    assert call(session, "nodeManagementSubscriptionRequestCall", sub, 1) == {"errorNumber": 0}
    clock.advance(2)
    assert session.tick() == []

    # plug-in: entity [1,1] with its features, and the EV's use case
    device.add_entity((1, 1), "EV")
    device.add_feature((1, 1), 1, "LoadControl", "server").add("loadControlLimitListData", lambda: {})
    device.use_cases.append(UseCase((1, 1), "EV", "evCommissioningAndConfiguration", "1.0.1", (1, 2, 3, 8)))
    sent = notifies(session.tick())
    assert sent[0] == PLUG_IN
    use_cases = sent[1]["nodeManagementUseCaseData"]["useCaseInformation"]  # full list, not partial
    assert "filter" not in sent[1] and any(i["actor"] == "EV" for i in use_cases)
    assert len(sent) == 2

    # the EMS subscribes to and binds the EV's LoadControl
    ev_lc = FeatureAddress(device.address, (1, 1), 1)
    assert call(
        session,
        "nodeManagementSubscriptionRequestCall",
        request("subscriptionRequest", EMS_LC, ev_lc, "LoadControl"),
        2,
    ) == {"errorNumber": 0}
    assert call(
        session, "nodeManagementBindingRequestCall", request("bindingRequest", EMS_LC, ev_lc, "LoadControl"), 3
    ) == {"errorNumber": 0}

    # unplug within the same second: coalesced, then sent within a second
    clock.advance(0.2)
    device.remove_entity((1, 1))
    assert notifies(session.tick()) == []
    clock.advance(0.8)
    sent = notifies(session.tick())
    assert sent[0] == UNPLUG
    assert not any(i["actor"] == "EV" for i in sent[1]["nodeManagementUseCaseData"]["useCaseInformation"])
    assert device.bound_peers(((1, 1), 1)) == set()
    assert all(s.server != ((1, 1), 1) for s in session.subscriptions)
    assert ((1,), 1) in device.features  # the EVSE stays


def test_a_counting_down_limit_duration_is_not_notified_every_second() -> None:
    session, endpoint, clock = acme()
    lc = FeatureAddress(session.device.address, (1,), 1)
    sub = request("subscriptionRequest", EMS_LC, lc, "LoadControl")
    assert call(session, "nodeManagementSubscriptionRequestCall", sub, 1) == {"errorNumber": 0}
    endpoint.heartbeat()
    assert endpoint.write_limit(5000, True, 600).accepted
    clock.advance(1)
    (first,) = notifies(session.tick())
    assert first["loadControlLimitListData"]["loadControlLimitData"][0]["timePeriod"] == {"endTime": "PT9M59S"}
    for _ in range(30):  # the remaining duration counts down: nothing new to tell
        clock.advance(1)
        assert notifies(session.tick()) == []
        assert session.next_deadline() is None
    assert endpoint.write_limit(5000, True, 600).accepted  # same value, duration restarted: a change
    clock.advance(1)
    (restart,) = notifies(session.tick())
    assert restart["loadControlLimitListData"]["loadControlLimitData"][0]["timePeriod"] == {"endTime": "PT9M59S"}
    clock.advance(600)  # expiry: the limit becomes inactive and that is notified
    endpoint.lpc.tick()
    (expired,) = notifies(session.tick())
    item = expired["loadControlLimitListData"]["loadControlLimitData"][0]
    assert item["isLimitActive"] is False and "timePeriod" not in item


def test_unchanged_treats_only_a_counting_down_relative_end_time_as_no_change() -> None:
    from bridge.eebus.spine.session import unchanged

    absolute = {"x": [{"timePeriod": {"endTime": "2026-01-01T00:00:00Z"}, "v": 1}]}
    assert unchanged(absolute, absolute, 100)
    assert not unchanged({"x": [{"timePeriod": {"endTime": "2026-01-01T00:00:01Z"}, "v": 1}]}, absolute, 0)
    assert unchanged({"t": {"endTime": "PT50S"}}, {"t": {"endTime": "PT60S"}}, 10)
    assert not unchanged({"t": {"endTime": "PT60S"}}, {"t": {"endTime": "PT60S"}}, 10)  # restarted
    assert not unchanged({"v": 2}, {"v": 1}, 0) and unchanged({"v": 1}, {"v": 1}, 99)
    assert not unchanged({"t": {"endTime": "PT60S"}}, {"t": {}}, 0)
