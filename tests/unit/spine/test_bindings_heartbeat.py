"""Who may write and whose heartbeat counts when several EMSs share one EVSE device."""

from __future__ import annotations

import json
from typing import Any

from bridge.eebus.ship.eebus_json import from_eebus
from bridge.eebus.spine.session import SpineSession
from bridge.usecases.lpc import LpcState
from tests.unit.spine.test_golden import BINDING_EEBUS, STEP6_WRITE, acme


def result_of(out: list[dict[str, Any]]) -> dict[str, Any]:
    results = [m for m in out if m["datagram"]["header"]["cmdClassifier"] == "result"]
    assert len(results) == 1
    return dict(results[0]["datagram"]["payload"]["cmd"][0]["resultData"])


def heartbeat_notify(source_device: str, counter: int, msg: int) -> dict[str, Any]:
    return {
        "datagram": {
            "header": {
                "addressSource": {"device": source_device, "entity": [1], "feature": 5},
                "addressDestination": {"entity": [1], "feature": 5},
                "msgCounter": msg,
                "cmdClassifier": "notify",
            },
            "payload": {
                "cmd": [
                    {
                        "deviceDiagnosisHeartbeatData": {
                            "timestamp": "2026-01-01T00:00:00Z",
                            "heartbeatCounter": counter,
                            "heartbeatTimeout": "PT60S",
                        }
                    }
                ]
            },
        }
    }


def test_other_connection_cannot_write_with_the_bound_clients_address() -> None:
    guard, endpoint, clock = acme()
    assert result_of(guard.receive(from_eebus(json.loads(BINDING_EEBUS)))) == {"errorNumber": 0}
    intruder = SpineSession(guard.device, clock, "intruder-ski")
    # same self-declared SPINE addresses, different SHIP connection (SKI)
    denied = result_of(intruder.receive(json.loads(json.dumps(STEP6_WRITE))))
    assert denied["errorNumber"] == 9
    assert result_of(intruder.receive(from_eebus(json.loads(BINDING_EEBUS))))["errorNumber"] == 7
    assert endpoint.writes == []
    endpoint.heartbeat()
    assert result_of(guard.receive(json.loads(json.dumps(STEP6_WRITE)))) == {"errorNumber": 0}
    assert [w[3] for w in endpoint.writes] == ["eg-ski"]
    # the intruder's binding delete does not remove the guard's binding
    delete = from_eebus(json.loads(BINDING_EEBUS))
    body = delete["datagram"]["payload"]["cmd"][0].pop("nodeManagementBindingRequestCall")["bindingRequest"]
    delete["datagram"]["payload"]["cmd"][0]["nodeManagementBindingDeleteCall"] = {
        "bindingDelete": {"clientAddress": body["clientAddress"], "serverAddress": body["serverAddress"]}
    }
    assert result_of(intruder.receive(delete)) == {"errorNumber": 0}
    assert guard.device.bound_peers(((1,), 1)) == {guard.owner}


def test_reconnect_of_the_same_ems_keeps_the_new_binding_when_the_old_session_closes() -> None:
    old, endpoint, clock = acme()
    assert result_of(old.receive(from_eebus(json.loads(BINDING_EEBUS)))) == {"errorNumber": 0}
    new = SpineSession(old.device, clock, "eg-ski")  # same SKI, new SHIP connection
    # the same EMS binds again over its new connection while the old one still lingers
    assert result_of(new.receive(from_eebus(json.loads(BINDING_EEBUS)))) == {"errorNumber": 0}
    assert result_of(old.receive(json.loads(json.dumps(STEP6_WRITE))))["errorNumber"] == 9
    old.close()
    replacement = SpineSession(old.device, clock, "eg-ski")
    replacement.close()  # a third, short-lived connection of the same EMS ends
    endpoint.heartbeat()
    assert result_of(new.receive(json.loads(json.dumps(STEP6_WRITE)))) == {"errorNumber": 0}


def test_only_the_bound_guards_heartbeat_keeps_lpc_out_of_failsafe() -> None:
    guard, endpoint, clock = acme()
    hems = SpineSession(guard.device, clock, "hems-ski")
    # before any binding, any EMS's heartbeat counts (the guard beats before it binds)
    hems.receive(heartbeat_notify("d:_n:HEMS", 1, 1))
    assert endpoint.lpc.last_heartbeat == clock.monotonic()
    guard.receive(from_eebus(json.loads(BINDING_EEBUS)))
    guard.receive(heartbeat_notify("d:_n:EG_1", 1, 2))
    assert result_of(guard.receive(json.loads(json.dumps(STEP6_WRITE)))) == {"errorNumber": 0}
    assert endpoint.lpc.state is LpcState.LIMITED
    # the guard falls silent; the HEMS keeps beating, which must not count
    for n in range(2, 15):
        clock.advance(10)
        hems.receive(heartbeat_notify("d:_n:HEMS", n, n + 1))
        endpoint.lpc.tick()
    assert endpoint.lpc.state is LpcState.FAILSAFE
    # when the guard's connection is gone, the next guard (here the HEMS) is watched
    guard.close()
    hems.receive(heartbeat_notify("d:_n:HEMS", 20, 30))
    assert endpoint.lpc.last_heartbeat == clock.monotonic()


def use_case_reply(source_device: str, actor: str, name: str, msg: int) -> dict[str, Any]:
    return {
        "datagram": {
            "header": {
                "addressSource": {"device": source_device, "entity": [0], "feature": 0},
                "addressDestination": {"entity": [0], "feature": 0},
                "msgCounter": msg,
                "msgCounterReference": 1,
                "cmdClassifier": "reply",
            },
            "payload": {
                "cmd": [
                    {
                        "nodeManagementUseCaseData": {
                            "useCaseInformation": [
                                {
                                    "address": {"device": source_device, "entity": [1]},
                                    "actor": actor,
                                    "useCaseSupport": [
                                        {"useCaseName": name, "useCaseVersion": "1.0.0", "scenarioSupport": [1]}
                                    ],
                                }
                            ]
                        }
                    }
                ]
            },
        }
    }


def test_monitoring_only_ems_heartbeat_does_not_count_but_a_guard_or_unknown_does() -> None:
    first, endpoint, clock = acme()
    hems = SpineSession(first.device, clock, "hems-ski")
    hems.receive(use_case_reply("d:_n:HEMS", "MonitoringAppliance", "monitoringOfPowerConsumption", 1))
    hems.receive(heartbeat_notify("d:_n:HEMS", 1, 2))
    assert endpoint.lpc.last_heartbeat is None
    unknown = SpineSession(first.device, clock, "old-stack-ski")  # never told its use cases
    clock.advance(1)
    unknown.receive(heartbeat_notify("d:_n:OLD", 1, 1))
    assert endpoint.lpc.last_heartbeat == clock.monotonic()
    guard = SpineSession(first.device, clock, "eg-ski")
    guard.receive(use_case_reply("d:_n:EG_1", "EnergyGuard", "limitationOfPowerConsumption", 1))
    clock.advance(1)
    guard.receive(heartbeat_notify("d:_n:EG_1", 1, 2))
    assert endpoint.lpc.last_heartbeat == clock.monotonic()
    hems.close()
    assert "hems-ski" not in {o.split("#")[0] for o in first.device.remote_use_cases}
