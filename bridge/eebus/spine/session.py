"""One SPINE conversation with one remote device over one SHIP connection — sans-I/O.

`receive(message)` takes a datagram (normal JSON, as the SHIP layer decodes
it) and returns the datagrams to send; `tick()` returns due notifies and
heartbeat-driven messages; `next_deadline()` says when to call it again.
Rules implemented (eebus-ship-spine.md §3): reply/result with
msgCounterReference, ackRequest, NodeManagement (discovery, use cases,
subscriptions, bindings), writes only from a bound client (errorNumber 9),
denials with errorNumber 7 and a description, unknown destinations with 4,
non-writable functions with 7 (GEN-05).  Notifies go to every subscriber on
every change, at most one per function per second per subscriber and always
within a second of the change.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.clock import Clock
from bridge.eebus.spine.datagram import validate_datagram, validate_header
from bridge.eebus.spine.device import Entity, FeatureAddress, LocalDevice
from bridge.eebus.spine.values import parse_duration
from bridge.errors import RemoteProtocolError

log = logging.getLogger(__name__)

NODE_MANAGEMENT: tuple[Entity, int] = ((0,), 0)
NOTIFY_MIN_INTERVAL_S = 1.0
ENDTIME_TOLERANCE_S = 1.5  # whole-second rounding of the remaining duration, plus timer jitter

ERR_GENERAL = 1
ERR_DESTINATION_UNKNOWN = 4
ERR_NOT_SUPPORTED = 6
ERR_REJECTED = 7
ERR_BINDING_NEEDED = 9

NM_READABLE = (
    "nodeManagementDetailedDiscoveryData",
    "nodeManagementUseCaseData",
    "nodeManagementSubscriptionData",
    "nodeManagementBindingData",
    "nodeManagementDestinationListData",
)


class MalformedDatagram(ValueError):
    """The message is not a SPINE datagram we can process; `header` is set when it is still answerable."""

    def __init__(self, problem: str, header: dict[str, Any] | None = None) -> None:
        super().__init__(problem)
        self.header = header


@dataclass
class Subscription:
    client: FeatureAddress
    server: tuple[Entity, int]


@dataclass
class Pending:
    function: str | None
    on_done: Callable[[int, str, dict[str, Any] | None], None] | None


class SpineSession:
    """See module docstring.  `peer` names the connection (the remote SKI) in logs and bindings."""

    def __init__(self, device: LocalDevice, clock: Clock, peer: str) -> None:
        self.device = device
        self.clock = clock
        self.peer = peer
        # Bindings belong to this conversation, not to the SKI: when the same EMS
        # reconnects, the old session's close must not drop the new one's binding.
        self.owner = f"{peer}#{id(self):x}"
        self.remote_device: str | None = None
        self.remote_discovery: dict[str, Any] | None = None
        self.remote_use_cases: dict[str, Any] | None = None
        self.subscriptions: list[Subscription] = []
        self._counter = 0
        # per (subscriber, server feature, function): data last notified, when it was read, when sent
        self._sent: dict[tuple[FeatureAddress, tuple[Entity, int], str], tuple[Any, float, float]] = {}
        self._pending: dict[int, Pending] = {}
        self.on_discovery: Callable[[SpineSession], list[dict[str, Any]]] = lambda _s: []

    # -- building datagrams ------------------------------------------------------------
    def _datagram(
        self,
        cls: str,
        source: tuple[Entity, int],
        destination: FeatureAddress,
        cmd: dict[str, Any],
        *,
        reference: int | None = None,
        ack: bool = False,
    ) -> dict[str, Any]:
        self._counter += 1
        header: dict[str, Any] = {
            "specificationVersion": "1.3.0",
            "addressSource": FeatureAddress(self.device.address, *source).to_json(),
            "addressDestination": destination.to_json(),
            "msgCounter": self._counter,
        }
        if reference is not None:
            header["msgCounterReference"] = reference
        header["cmdClassifier"] = cls
        if ack:
            header["ackRequest"] = True
        return {"datagram": {"header": header, "payload": {"cmd": [omit_empty_lists(cmd)]}}}

    def request(
        self,
        cls: str,
        source: tuple[Entity, int],
        destination: FeatureAddress,
        cmd: dict[str, Any],
        *,
        ack: bool = False,
        on_done: Callable[[int, str, dict[str, Any] | None], None] | None = None,
    ) -> dict[str, Any]:
        """A read/write/call from one of our features; `on_done(errorNumber, description, reply_data)`."""
        message = self._datagram(cls, source, destination, cmd, ack=ack)
        function = next((k for k in cmd if k not in ("function", "filter")), None)
        self._pending[message["datagram"]["header"]["msgCounter"]] = Pending(function, on_done)
        return message

    def _result(self, header: dict[str, Any], error: int, description: str = "") -> dict[str, Any]:
        data: dict[str, Any] = {"errorNumber": error}
        if description:
            data["description"] = description
        dst = FeatureAddress.from_json(header["addressDestination"])
        return self._datagram(
            "result",
            (dst.entity, dst.feature),
            FeatureAddress.from_json(header["addressSource"]),
            {"resultData": data},
            reference=header["msgCounter"],
        )

    # -- receiving ---------------------------------------------------------------------
    def receive(self, message: Any) -> list[dict[str, Any]]:
        try:
            header, cmd = _parse(message)
        except MalformedDatagram as exc:
            cls = exc.header["cmdClassifier"] if exc.header else None
            if exc.header is not None and cls in ("read", "write", "call"):
                log.warning("SPINE from %s: malformed %s answered with an error: %s", self.peer, cls, exc)
                return [self._result(exc.header, ERR_GENERAL, f"malformed {cls}: {exc}")]
            log.warning("SPINE from %s: dropped malformed datagram: %s", self.peer, exc)
            return []
        source = FeatureAddress.from_json(header["addressSource"])
        if source.device:
            self.remote_device = self.remote_device or source.device
        cls = header["cmdClassifier"]
        try:
            out = self._dispatch(cls, header, cmd, source)
        except Exception as exc:  # why: one bad datagram must never end the connection or the process
            log.warning("SPINE from %s: bad %s: %s: %s", self.peer, cls, type(exc).__name__, exc)
            out = (
                [self._result(header, ERR_GENERAL, f"malformed {cls}: {exc}")]
                if cls in ("read", "write", "call")
                else []
            )
        return out + self._due_notifies()

    def _dispatch(
        self, cls: str, header: dict[str, Any], cmd: dict[str, Any], source: FeatureAddress
    ) -> list[dict[str, Any]]:
        dst = FeatureAddress.from_json(header["addressDestination"])
        key = dst.local()
        function = _function_of(cmd)
        if cls == "result":
            self._on_result(header, cmd)
            return []
        if cls in ("reply", "notify"):
            self._on_data(header, function, cmd.get(function) if function else None, source)
            return [self._result(header, 0)] if header.get("ackRequest") else []
        if key == NODE_MANAGEMENT:
            return self._node_management(cls, header, cmd, function, source)
        feature = self.device.features.get(key)
        if feature is None:
            return [self._result(header, ERR_DESTINATION_UNKNOWN, f"no feature {list(key[0])}/{key[1]}")]
        fn = feature.functions.get(function or "")
        if cls == "read":
            if feature.role != "server" or fn is None or fn.read is None:
                return [self._result(header, ERR_REJECTED, f"{function} is not readable here")]
            reply = {function: fn.read()}
            return [self._datagram("reply", key, source, reply, reference=header["msgCounter"])]
        if cls == "write":
            if fn is None or fn.write is None:
                return [self._result(header, ERR_REJECTED, f"{function} is not writable")]
            if not self.device.is_bound(source, key, self.owner):
                return [self._result(header, ERR_BINDING_NEEDED, "write denied: no binding for this client")]
            filters = cmd.get("filter") or []
            if not isinstance(filters, list):
                raise ValueError("filter must be a list")
            outcome = fn.write(cmd[function], filters, self.peer)
            if outcome.accepted:
                return [self._result(header, 0)]
            return [self._result(header, ERR_REJECTED, outcome.description or "rejected")]
        return [self._result(header, ERR_NOT_SUPPORTED, f"{cls} not supported by {feature.feature_type}")]

    def _node_management(
        self, cls: str, header: dict[str, Any], cmd: dict[str, Any], function: str | None, source: FeatureAddress
    ) -> list[dict[str, Any]]:
        if cls == "read":
            data = self._nm_read(function)
            if data is None:
                return [self._result(header, ERR_REJECTED, f"{function} is not readable")]
            return [self._datagram("reply", NODE_MANAGEMENT, source, {function: data}, reference=header["msgCounter"])]
        if cls != "call" or function is None:
            return [self._result(header, ERR_NOT_SUPPORTED, f"{cls} {function} not supported by NodeManagement")]
        body = cmd[function]
        if function == "nodeManagementSubscriptionRequestCall":
            req = body["subscriptionRequest"]
            client, server = (
                FeatureAddress.from_json(req["clientAddress"]),
                FeatureAddress.from_json(req["serverAddress"]),
            )
            if server.local() not in self.device.features and server.local() != NODE_MANAGEMENT:
                return [self._result(header, ERR_DESTINATION_UNKNOWN, "no such server feature")]
            self._subscribe(client, server.local())
            return [self._result(header, 0)]
        if function == "nodeManagementSubscriptionDeleteCall":
            req = body["subscriptionDelete"]
            client, server = (
                FeatureAddress.from_json(req["clientAddress"]),
                FeatureAddress.from_json(req["serverAddress"]),
            )
            self.subscriptions = [
                s for s in self.subscriptions if not (s.client == client and s.server == server.local())
            ]
            return [self._result(header, 0)]
        if function == "nodeManagementBindingRequestCall":
            req = body["bindingRequest"]
            client, server = (
                FeatureAddress.from_json(req["clientAddress"]),
                FeatureAddress.from_json(req["serverAddress"]),
            )
            outcome = self.device.bind(client, server.local(), self.owner, self.peer)
            if not outcome.accepted:
                log.warning("SPINE %s: binding from %s refused: %s", self.peer, client, outcome.description)
                return [self._result(header, ERR_REJECTED, outcome.description)]
            return [self._result(header, 0)]
        if function == "nodeManagementBindingDeleteCall":
            req = body["bindingDelete"]
            client, server = (
                FeatureAddress.from_json(req["clientAddress"]),
                FeatureAddress.from_json(req["serverAddress"]),
            )
            self.device.unbind(client, server.local(), self.owner)
            return [self._result(header, 0)]
        return [self._result(header, ERR_NOT_SUPPORTED, f"{function} not supported")]

    def _nm_read(self, function: str | None) -> dict[str, Any] | None:
        if function == "nodeManagementDetailedDiscoveryData":
            return self.device.detailed_discovery()
        if function == "nodeManagementUseCaseData":
            return self.device.use_case_data()
        if function == "nodeManagementBindingData":
            return self.device.binding_data()
        if function == "nodeManagementSubscriptionData":
            return {
                "subscriptionEntry": [
                    {
                        "subscriptionId": i,
                        "clientAddress": s.client.to_json(),
                        "serverAddress": FeatureAddress(self.device.address, *s.server).to_json(),
                    }
                    for i, s in enumerate(self.subscriptions)
                ]
            }
        if function == "nodeManagementDestinationListData":
            desc = self.device.detailed_discovery()["deviceInformation"]["description"]
            return {"nodeManagementDestinationData": [{"deviceDescription": desc}]}
        return None

    def _subscribe(self, client: FeatureAddress, server: tuple[Entity, int]) -> None:
        if any(s.client == client and s.server == server for s in self.subscriptions):
            return
        self.subscriptions.append(Subscription(client, server))
        now = self.clock.monotonic()
        for name, data in self._current(server).items():
            self._sent[(client, server, name)] = (data, now, now - NOTIFY_MIN_INTERVAL_S)

    def _on_result(self, header: dict[str, Any], cmd: dict[str, Any]) -> None:
        ref = header.get("msgCounterReference")
        pending = self._pending.pop(ref, None) if isinstance(ref, int) else None
        result = cmd.get("resultData") or {}
        error = result.get("errorNumber", 0)
        if error:
            log.info(
                "SPINE %s: request %s answered with error %s: %s", self.peer, ref, error, result.get("description", "")
            )
        if pending and pending.on_done:
            pending.on_done(int(error), str(result.get("description", "")), None)

    def _on_data(self, header: dict[str, Any], function: str | None, data: Any, source: FeatureAddress) -> None:
        ref = header.get("msgCounterReference")
        pending = self._pending.pop(ref, None) if isinstance(ref, int) else None
        if function == "deviceDiagnosisHeartbeatData":
            self.device.on_heartbeat(self.owner)
        if function == "nodeManagementDetailedDiscoveryData" and isinstance(data, dict):
            self.remote_discovery = data
        if function == "nodeManagementUseCaseData" and isinstance(data, dict):
            self.remote_use_cases = data
            self.device.remote_use_cases[self.owner] = announced_use_cases(data)
        if function is not None and isinstance(data, dict):
            self.device.on_reply(self.peer, function, data)
        if pending and pending.on_done:
            pending.on_done(0, "", data if isinstance(data, dict) else None)

    # -- notifies ------------------------------------------------------------------------
    def _current(self, server: tuple[Entity, int]) -> dict[str, Any]:
        if server == NODE_MANAGEMENT:
            return {
                "nodeManagementDetailedDiscoveryData": self.device.detailed_discovery(),
                "nodeManagementUseCaseData": self.device.use_case_data(),
            }
        feature = self.device.features.get(server)
        if feature is None:
            return {}
        out: dict[str, Any] = {}
        for name, fn in feature.functions.items():
            if fn.read is None:
                continue
            try:
                out[name] = fn.read()
            except Exception:  # why: one failing reader must not end every connection's notifies
                log.exception("SPINE: reading %s for notifies failed; skipped this round", name)
        return out

    def _due_notifies(self) -> list[dict[str, Any]]:
        now = self.clock.monotonic()
        out: list[dict[str, Any]] = []
        # subscriptions to features that went away with their entity go too
        self.subscriptions = [
            s for s in self.subscriptions if s.server == NODE_MANAGEMENT or s.server in self.device.features
        ]
        for sub in self.subscriptions:
            for name, data in self._current(sub.server).items():
                key = (sub.client, sub.server, name)
                last_data, read_at, last_time = self._sent.get(key, (None, now, float("-inf")))
                if now - last_time < NOTIFY_MIN_INTERVAL_S or unchanged(data, last_data, now - read_at):
                    continue
                self._sent[key] = (data, now, now)
                if name == "nodeManagementDetailedDiscoveryData" and isinstance(last_data, dict):
                    for partial in discovery_changes(last_data, data):
                        cmd = {"function": name, "filter": [{"cmdControl": {"partial": {}}}], name: partial}
                        out.append(self._datagram("notify", sub.server, sub.client, cmd))
                    continue
                out.append(self._datagram("notify", sub.server, sub.client, {name: data}))
        return out

    def tick(self) -> list[dict[str, Any]]:
        """Notifies that are due now."""
        return self._due_notifies()

    def next_deadline(self) -> float | None:
        """When a held-back notify becomes due (changes within the last second), else None."""
        deadlines = []
        for sub in self.subscriptions:
            now = self.clock.monotonic()
            for name, data in self._current(sub.server).items():
                last_data, read_at, last_time = self._sent.get(
                    (sub.client, sub.server, name), (None, now, float("-inf"))
                )
                if not unchanged(data, last_data, now - read_at):
                    deadlines.append(last_time + NOTIFY_MIN_INTERVAL_S)
        return min(deadlines) if deadlines else None

    def close(self) -> None:
        self.device.drop_peer(self.owner)
        self.subscriptions.clear()


def unchanged(new: Any, old: Any, elapsed_s: float) -> bool:
    """Equal, except that a relative `endTime` counting down with the clock is no change.

    A limit's remaining duration (`timePeriod.endTime`, e.g. `PT9M58S`) is
    reported relative to now, so it differs every second; notifying that would
    send one notify per second per subscriber for nothing new.
    """
    if isinstance(new, dict) and isinstance(old, dict):
        if new.keys() != old.keys():
            return False
        for key, value in new.items():
            if key == "endTime" and isinstance(value, str) and isinstance(old[key], str):
                try:
                    drift = parse_duration(value) - (parse_duration(old[key]) - elapsed_s)
                except RemoteProtocolError:  # an absolute time does not count down
                    drift = 0.0 if value == old[key] else math.inf
                if abs(drift) > ENDTIME_TOLERANCE_S:
                    return False
            elif not unchanged(value, old[key], elapsed_s):
                return False
        return True
    if isinstance(new, list) and isinstance(old, list):
        return len(new) == len(old) and all(unchanged(a, b, elapsed_s) for a, b in zip(new, old, strict=True))
    return bool(new == old)


def announced_use_cases(data: dict[str, Any]) -> set[tuple[str, str]]:
    """(actor, useCaseName) pairs a peer offers; items with useCaseAvailable false do not count."""
    out: set[tuple[str, str]] = set()
    infos = data.get("useCaseInformation")
    for info in infos if isinstance(infos, list) else []:
        if not isinstance(info, dict) or not isinstance(info.get("useCaseSupport"), list):
            continue
        for support in info["useCaseSupport"]:
            if isinstance(support, dict) and support.get("useCaseAvailable", True) is not False:
                out.add((str(info.get("actor")), str(support.get("useCaseName"))))
    return out


def discovery_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Partial detailed-discovery notifies (eebus-ship-spine.md §3.7): entities removed, then added.

    A removed entity is announced with `lastStateChange: removed` and no
    features; an added one with `added` and all of its features, which is
    what eebus-go turns into EntityDisconnected / EntityConnected.
    """

    def entities(data: dict[str, Any]) -> dict[tuple[int, ...], dict[str, Any]]:
        return {
            tuple(e["description"]["entityAddress"]["entity"]): e["description"]
            for e in data.get("entityInformation", [])
        }

    old, new = entities(before), entities(after)
    device = after["deviceInformation"]["description"]["deviceAddress"]
    out: list[dict[str, Any]] = []
    removed = [a for a in old if a not in new]
    added = [a for a in new if a not in old]
    if removed:
        out.append(
            {
                "deviceInformation": {"description": {"deviceAddress": device}},
                "entityInformation": [
                    {"description": {"entityAddress": {"entity": list(a)}, "lastStateChange": "removed"}}
                    for a in removed
                ],
            }
        )
    if added:
        features = [
            f
            for f in after.get("featureInformation", [])
            if tuple(f["description"]["featureAddress"]["entity"]) in added
        ]
        out.append(
            {
                "deviceInformation": {"description": {"deviceAddress": device}},
                "entityInformation": [{"description": {**new[a], "lastStateChange": "added"}} for a in added],
                "featureInformation": features,
            }
        )
    return out


def omit_empty_lists(value: Any) -> Any:
    """Drop members whose value is an empty list (eebus-ship-spine.md §7).

    ship-go turns `[]` into `{}` by string replacement, and Go cannot decode `{}`
    into a list, so one empty list would make eebus-go drop the whole datagram.
    An absent list means the same to every SPINE peer.
    """
    if isinstance(value, dict):
        return {k: omit_empty_lists(v) for k, v in value.items() if not (isinstance(v, list) and not v)}
    if isinstance(value, list):
        return [omit_empty_lists(v) for v in value]
    return value


def _parse(message: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(message, dict) or not isinstance(message.get("datagram"), dict):
        raise MalformedDatagram("no datagram object")
    problem = validate_datagram(message["datagram"])
    if problem is not None:
        header = message["datagram"].get("header")
        answerable = validate_header(header) is None
        raise MalformedDatagram(problem, header if answerable else None)
    dg = message["datagram"]
    return dg["header"], dg["payload"]["cmd"][0]


def _function_of(cmd: dict[str, Any]) -> str | None:
    if isinstance(cmd.get("function"), str):
        return str(cmd["function"])
    return next((k for k in cmd if k not in ("function", "filter")), None)
