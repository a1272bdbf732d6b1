"""The local SPINE device tree: entities, features, functions, use cases, and the binding table.

A `Function` has a reader (current data, normal JSON) and, if writable, a
writer that applies a (partial) write and says whether it was accepted.  The
device knows nothing about connections; `SpineSession` routes datagrams to it.
Bindings live here, not per connection, because a server feature accepts one
binding at a time across every EMS connected to the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Entity = tuple[int, ...]
Reader = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class WriteOutcome:
    """What a writer decided: errorNumber 0 when accepted, else 7 (commandRejected) with a description."""

    accepted: bool
    description: str = ""


Writer = Callable[[dict[str, Any], list[dict[str, Any]], str], WriteOutcome]


@dataclass(frozen=True)
class FeatureAddress:
    device: str | None
    entity: Entity
    feature: int

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entity": list(self.entity), "feature": self.feature}
        if self.device is not None:
            out = {"device": self.device, **out}
        return out

    @staticmethod
    def from_json(data: Any) -> FeatureAddress:
        if not isinstance(data, dict):
            raise ValueError(f"not a feature address: {data!r}")
        entity = data.get("entity")
        feature = data.get("feature")
        device = data.get("device")
        if not isinstance(entity, list) or not all(isinstance(e, int) and not isinstance(e, bool) for e in entity):
            raise ValueError(f"bad entity address: {entity!r}")
        if not isinstance(feature, int) or isinstance(feature, bool):
            raise ValueError(f"bad feature number: {feature!r}")
        if device is not None and not isinstance(device, str):
            raise ValueError(f"bad device address: {device!r}")
        return FeatureAddress(device, tuple(entity), feature)

    def local(self) -> tuple[Entity, int]:
        return (self.entity, self.feature)


@dataclass
class Function:
    name: str
    read: Reader | None
    write: Writer | None = None

    def operations(self) -> dict[str, Any]:
        ops: dict[str, Any] = {}
        if self.read is not None:
            ops["read"] = {}
        if self.write is not None:
            ops["write"] = {"partial": {}}
        return ops


@dataclass
class Feature:
    entity: Entity
    feature: int
    feature_type: str
    role: str  # server | client | special
    functions: dict[str, Function] = field(default_factory=dict)

    @property
    def entity_feature(self) -> tuple[Entity, int]:
        return (self.entity, self.feature)

    def add(self, name: str, read: Reader | None, write: Writer | None = None) -> Feature:
        self.functions[name] = Function(name, read, write)
        return self


@dataclass
class UseCase:
    entity: Entity
    actor: str
    name: str
    version: str
    scenarios: tuple[int, ...]
    available: bool = True


@dataclass
class Binding:
    client: FeatureAddress
    server: tuple[Entity, int]
    peer: str  # the SPINE session (`SpineSession.owner`: SKI + connection) it came over
    ski: str = ""  # the authenticated EMS behind that session


# What NodeManagement offers (eebus-ship-spine.md §3.7); the session serves these itself.
NODE_MANAGEMENT_FUNCTIONS: tuple[tuple[str, bool], ...] = (
    ("nodeManagementDetailedDiscoveryData", True),
    ("nodeManagementUseCaseData", True),
    ("nodeManagementSubscriptionData", True),
    ("nodeManagementSubscriptionRequestCall", False),
    ("nodeManagementSubscriptionDeleteCall", False),
    ("nodeManagementBindingData", True),
    ("nodeManagementBindingRequestCall", False),
    ("nodeManagementBindingDeleteCall", False),
    ("nodeManagementDestinationListData", True),
)


def _supported_functions(f: Feature) -> dict[str, Any]:
    """`supportedFunction` of a feature, omitted when empty (ship-go turns `[]` into `{}`, which Go cannot parse)."""
    if f.feature_type == "NodeManagement":
        items = [{"function": n, "possibleOperations": {"read": {}} if r else {}} for n, r in NODE_MANAGEMENT_FUNCTIONS]
    else:
        items = [{"function": fn.name, "possibleOperations": fn.operations()} for fn in f.functions.values()]
    return {"supportedFunction": items} if items else {}


class LocalDevice:
    """One SPINE device (the EVSE of a charger, a group, or the EMS tool)."""

    def __init__(self, address: str, device_type: str) -> None:
        self.address = address
        self.device_type = device_type
        self.entities: dict[Entity, str] = {(0,): "DeviceInformation"}
        self.features: dict[tuple[Entity, int], Feature] = {}
        self.use_cases: list[UseCase] = []
        self.bindings: list[Binding] = []
        self.exclusive_binding = True
        self.on_heartbeat: Callable[[str], None] = lambda _owner: None  # the session's `owner`
        self.on_reply: Callable[[str, str, dict[str, Any]], None] = lambda _peer, _fn, _data: None
        # (actor, useCaseName) each connected EMS announced, by session owner; absent until read
        self.remote_use_cases: dict[str, set[tuple[str, str]]] = {}

    def add_entity(self, entity: Entity, entity_type: str) -> None:
        """Also while connected (an EV plugged in): subscribers get a partial `added` notify."""
        self.entities[entity] = entity_type

    def remove_entity(self, entity: Entity) -> None:
        """The entity, its sub-entities, their features, use cases and bindings go; subscribers get `removed`."""

        def below(e: Entity) -> bool:
            return e[: len(entity)] == entity

        self.entities = {e: t for e, t in self.entities.items() if not below(e)}
        self.features = {k: f for k, f in self.features.items() if not below(f.entity)}
        self.use_cases = [u for u in self.use_cases if not below(u.entity)]
        self.bindings = [b for b in self.bindings if not below(b.server[0])]

    def add_feature(self, entity: Entity, feature: int, feature_type: str, role: str) -> Feature:
        f = Feature(entity, feature, feature_type, role)
        self.features[(entity, feature)] = f
        return f

    def feature_address(self, f: Feature) -> FeatureAddress:
        return FeatureAddress(self.address, f.entity, f.feature)

    def find(self, feature_type: str, role: str, entity: Entity | None = None) -> Feature | None:
        for f in self.features.values():
            if f.feature_type == feature_type and f.role == role and (entity is None or f.entity == entity):
                return f
        return None

    # -- NodeManagement data -----------------------------------------------------------
    def detailed_discovery(self) -> dict[str, Any]:
        return {
            "specificationVersionList": {"specificationVersion": ["1.3.0"]},
            "deviceInformation": {
                "description": {
                    "deviceAddress": {"device": self.address},
                    "deviceType": self.device_type,
                    "networkFeatureSet": "smart",
                }
            },
            "entityInformation": [
                {"description": {"entityAddress": {"entity": list(e)}, "entityType": t}}
                for e, t in sorted(self.entities.items())
            ],
            "featureInformation": [
                {
                    "description": {
                        "featureAddress": {"entity": list(f.entity), "feature": f.feature},
                        "featureType": f.feature_type,
                        "role": f.role,
                        **_supported_functions(f),
                    }
                }
                for _, f in sorted(self.features.items())
            ],
        }

    def use_case_data(self) -> dict[str, Any]:
        grouped: dict[tuple[Entity, str], list[UseCase]] = {}
        for uc in self.use_cases:
            grouped.setdefault((uc.entity, uc.actor), []).append(uc)
        return {
            "useCaseInformation": [
                {
                    "address": {"device": self.address, "entity": list(entity)},
                    "actor": actor,
                    "useCaseSupport": [
                        {
                            "useCaseName": uc.name,
                            "useCaseVersion": uc.version,
                            "useCaseAvailable": uc.available,
                            "scenarioSupport": list(uc.scenarios),
                            "useCaseDocumentSubRevision": "release",
                        }
                        for uc in ucs
                    ],
                }
                for (entity, actor), ucs in grouped.items()
            ]
        }

    def binding_data(self) -> dict[str, Any]:
        return {
            "bindingEntry": [
                {
                    "bindingId": i,
                    "clientAddress": b.client.to_json(),
                    "serverAddress": FeatureAddress(self.address, *b.server).to_json(),
                }
                for i, b in enumerate(self.bindings)
            ]
        }

    # -- bindings ------------------------------------------------------------------
    def bind(self, client: FeatureAddress, server: tuple[Entity, int], peer: str, ski: str = "") -> WriteOutcome:
        """Bindings belong to the SHIP connection they came over: a client address is only a claim.

        The same EMS (same SKI) binding again over a new connection takes its
        binding over, since the old connection may linger a moment after a reconnect.
        """
        if server not in self.features or self.features[server].role != "server":
            return WriteOutcome(False, "binding target is not a server feature of this device")
        for b in self.bindings:
            if b.server == server:
                if b.client == client and (b.peer == peer or (ski and b.ski == ski)):
                    b.peer = peer
                    return WriteOutcome(True)
                if self.exclusive_binding or b.client == client:
                    return WriteOutcome(False, "feature is already bound to another client")
        self.bindings.append(Binding(client, server, peer, ski))
        return WriteOutcome(True)

    def unbind(self, client: FeatureAddress, server: tuple[Entity, int], peer: str) -> None:
        self.bindings = [b for b in self.bindings if not (b.client == client and b.server == server and b.peer == peer)]

    def is_bound(self, client: FeatureAddress, server: tuple[Entity, int], peer: str) -> bool:
        """Only the connection that made the binding may write: another EMS cannot reuse its address."""
        return any(b.client == client and b.server == server and b.peer == peer for b in self.bindings)

    def bound_peers(self, server: tuple[Entity, int]) -> set[str]:
        return {b.peer for b in self.bindings if b.server == server}

    def drop_peer(self, peer: str) -> None:
        """A connection closed: its bindings go (eebus-go binds again after reconnect)."""
        self.bindings = [b for b in self.bindings if b.peer != peer]
        self.remote_use_cases.pop(peer, None)
