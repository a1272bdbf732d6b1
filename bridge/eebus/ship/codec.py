"""SHIP message framing and typed control messages (reference §2.6–§2.8, §2.12).

A SHIP message is one WebSocket binary message: a type byte and a body.  Type 0
is CMI init (body `00`), types 1 (control), 2 (data) and 3 (end) carry EEBus
JSON.  `decode` turns bytes into one of the typed messages below or raises
`ShipCodecError`; `encode` is the exact inverse, with members in schema order,
so golden tests pin every field.  Pure and stdlib-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from bridge.eebus.ship.eebus_json import from_eebus, to_eebus_message
from bridge.errors import RemoteProtocolError

MSG_INIT: Final = 0x00
MSG_CONTROL: Final = 0x01
MSG_DATA: Final = 0x02
MSG_END: Final = 0x03

SPINE_PROTOCOL_ID: Final = "ee1.0"
FORMAT_JSON_UTF8: Final = "JSON-UTF8"
CMI_INIT: Final = bytes([MSG_INIT, 0x00])
_DATA_PREFIX: Final = b'\x02{"data":[{"header":[{"protocolId":"' + SPINE_PROTOCOL_ID.encode() + b'"}]},{"payload":'

HELLO_PHASES: Final = frozenset({"pending", "ready", "aborted"})
HANDSHAKE_TYPES: Final = frozenset({"announceMax", "select"})
PIN_STATES: Final = frozenset({"required", "optional", "pinOk", "none"})
CLOSE_PHASES: Final = frozenset({"announce", "confirm"})

# messageProtocolHandshakeError.error values (SHIP 13.4.4.2)
PROT_ERR_TIMEOUT: Final = 1
PROT_ERR_UNEXPECTED: Final = 2
PROT_ERR_SELECTION_MISMATCH: Final = 3


class ShipCodecError(RemoteProtocolError):
    """The bytes are not a valid SHIP message."""


@dataclass(frozen=True, slots=True)
class CmiInit:
    """Connection mode initialisation: `00 00`."""


@dataclass(frozen=True, slots=True)
class Hello:
    phase: str
    waiting_ms: int | None = None
    prolongation_request: bool | None = None


@dataclass(frozen=True, slots=True)
class ProtocolHandshake:
    handshake_type: str
    major: int = 1
    minor: int = 0
    formats: tuple[str, ...] = (FORMAT_JSON_UTF8,)


@dataclass(frozen=True, slots=True)
class ProtocolHandshakeError:
    error: int


@dataclass(frozen=True, slots=True)
class PinState:
    pin_state: str
    input_permission: str | None = None


@dataclass(frozen=True, slots=True)
class AccessMethodsRequest:
    pass


@dataclass(frozen=True, slots=True)
class AccessMethods:
    ship_id: str
    dns_sd_mdns: bool = False
    dns_uri: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionClose:
    phase: str
    max_time_ms: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Data:
    """A SPINE datagram in ordinary JSON (`{"datagram": {...}}`)."""

    payload: dict[str, Any]


ShipMessage = (
    CmiInit
    | Hello
    | ProtocolHandshake
    | ProtocolHandshakeError
    | PinState
    | AccessMethodsRequest
    | AccessMethods
    | ConnectionClose
    | Data
)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def control_body(msg: ShipMessage) -> dict[str, Any]:
    """The ordinary-JSON body of a control/end message (members in schema order)."""
    if isinstance(msg, Hello):
        hello: dict[str, Any] = {"phase": msg.phase}
        if msg.waiting_ms is not None:
            hello["waiting"] = msg.waiting_ms
        if msg.prolongation_request is not None:
            hello["prolongationRequest"] = msg.prolongation_request
        return {"connectionHello": hello}
    if isinstance(msg, ProtocolHandshake):
        return {
            "messageProtocolHandshake": {
                "handshakeType": msg.handshake_type,
                "version": {"major": msg.major, "minor": msg.minor},
                "formats": {"format": list(msg.formats)},
            }
        }
    if isinstance(msg, ProtocolHandshakeError):
        return {"messageProtocolHandshakeError": {"error": msg.error}}
    if isinstance(msg, PinState):
        pin: dict[str, Any] = {"pinState": msg.pin_state}
        if msg.input_permission is not None:
            pin["inputPermission"] = msg.input_permission
        return {"connectionPinState": pin}
    if isinstance(msg, AccessMethodsRequest):
        return {"accessMethodsRequest": {}}
    if isinstance(msg, AccessMethods):
        methods: dict[str, Any] = {"id": msg.ship_id}
        if msg.dns_sd_mdns:
            methods["dnsSd_mDns"] = {}
        if msg.dns_uri is not None:
            methods["dns"] = {"uri": msg.dns_uri}
        return {"accessMethods": methods}
    if isinstance(msg, ConnectionClose):
        close: dict[str, Any] = {"phase": msg.phase}
        if msg.max_time_ms is not None:
            close["maxTime"] = msg.max_time_ms
        if msg.reason is not None:
            close["reason"] = msg.reason
        return {"connectionClose": close}
    raise TypeError(f"not a control message: {msg!r}")


def encode(msg: ShipMessage) -> bytes:
    """A typed SHIP message -> the bytes of one WebSocket binary message."""
    if isinstance(msg, CmiInit):
        return CMI_INIT
    if isinstance(msg, Data):
        return encode_data(msg.payload)
    msg_type = MSG_END if isinstance(msg, ConnectionClose) else MSG_CONTROL
    return bytes([msg_type]) + _dumps(to_eebus_message(control_body(msg)))


def encode_data(payload: dict[str, Any] | bytes) -> bytes:
    """SHIP data message around a SPINE datagram.

    `payload` is the datagram in ordinary JSON (`{"datagram": {...}}`), or the
    datagram already in EEBus JSON as bytes (inserted verbatim).  Like ship-go,
    the payload value is the datagram object itself, not wrapped in an array.
    """
    spine = bytes(payload) if isinstance(payload, bytes | bytearray) else _dumps(to_eebus_message(payload))
    return _DATA_PREFIX + spine + b"}]}"


# ---------------------------------------------------------------- decoding


def decode(frame: bytes) -> ShipMessage:
    """Bytes of one WebSocket binary message -> typed SHIP message (or ShipCodecError)."""
    if len(frame) < 2:
        raise ShipCodecError(f"SHIP message too short ({len(frame)} bytes)")
    msg_type = frame[0]
    if msg_type == MSG_INIT:
        if frame[1:] not in (b"\x00", b"\x00\x00"):
            raise ShipCodecError("CMI init body must be 0x00")
        return CmiInit()
    if msg_type not in (MSG_CONTROL, MSG_DATA, MSG_END):
        raise ShipCodecError(f"unknown SHIP message type 0x{msg_type:02x}")
    body = frame[1:].rstrip(b"\x00")  # one vendor appends NUL (reference §7)
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ShipCodecError(f"SHIP message body is not UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ShipCodecError("SHIP message body must be an object with one root element")
    if msg_type == MSG_DATA:
        return _decode_data(obj)
    msg = _decode_control(from_eebus(obj))
    if (msg_type == MSG_END) != isinstance(msg, ConnectionClose):
        raise ShipCodecError(f"message type 0x{msg_type:02x} does not match {type(msg).__name__}")
    return msg


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShipCodecError(f"{where}: expected an element, got {type(value).__name__}")
    return value


def _int(value: Any, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ShipCodecError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _str(value: Any, where: str, allowed: frozenset[str] | None = None) -> str:
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        expected = f"one of {sorted(allowed)}" if allowed else "a string"
        raise ShipCodecError(f"{where}: expected {expected}, got {value!r}")
    return value


def _opt_int(body: dict[str, Any], key: str, where: str) -> int | None:
    return None if key not in body else _int(body[key], f"{where}.{key}")


def _decode_control(obj: dict[str, Any]) -> ShipMessage:
    ((root, raw),) = obj.items()
    if root == "connectionHello":
        body = _obj(raw, root)
        prolong = body.get("prolongationRequest")
        if prolong is not None and not isinstance(prolong, bool):
            raise ShipCodecError(f"connectionHello.prolongationRequest: expected a boolean, got {prolong!r}")
        return Hello(
            _str(body.get("phase"), "connectionHello.phase", HELLO_PHASES),
            _opt_int(body, "waiting", root),
            prolong,
        )
    if root == "messageProtocolHandshake":
        body = _obj(raw, root)
        version = _obj(body.get("version"), f"{root}.version")
        formats = _obj(body.get("formats"), f"{root}.formats").get("format")
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
            raise ShipCodecError(f"{root}.formats.format: expected a list of strings, got {formats!r}")
        return ProtocolHandshake(
            _str(body.get("handshakeType"), f"{root}.handshakeType", HANDSHAKE_TYPES),
            _int(version.get("major"), f"{root}.version.major"),
            _int(version.get("minor"), f"{root}.version.minor"),
            tuple(formats),
        )
    if root == "messageProtocolHandshakeError":
        return ProtocolHandshakeError(_int(_obj(raw, root).get("error"), f"{root}.error"))
    if root == "error":  # ship-go marshals the handshake error without its wrapper
        return ProtocolHandshakeError(_int(raw, "error"))
    if root == "connectionPinState":
        body = _obj(raw, root)
        permission = body.get("inputPermission")
        return PinState(
            _str(body.get("pinState"), f"{root}.pinState", PIN_STATES),
            None if permission is None else _str(permission, f"{root}.inputPermission", frozenset({"busy", "ok"})),
        )
    if root == "accessMethodsRequest":
        _obj(raw, root)
        return AccessMethodsRequest()
    if root == "accessMethods":
        body = _obj(raw, root)
        dns = body.get("dns")
        uri = None
        if dns is not None:
            uri_value = _obj(dns, f"{root}.dns").get("uri")
            uri = None if uri_value is None else _str(uri_value, f"{root}.dns.uri")
        return AccessMethods(_str(body.get("id"), f"{root}.id"), "dnsSd_mDns" in body, uri)
    if root == "connectionClose":
        body = _obj(raw, root)
        reason = body.get("reason")
        return ConnectionClose(
            _str(body.get("phase"), f"{root}.phase", CLOSE_PHASES),
            _opt_int(body, "maxTime", root),
            None if reason is None else _str(reason, f"{root}.reason"),
        )
    raise ShipCodecError(f"unknown SHIP control message {root!r}")


def _decode_data(obj: dict[str, Any]) -> Data:
    raw = obj.get("data")
    if not isinstance(raw, list):
        raise ShipCodecError("data message: expected {'data': [...]}")
    header: Any = None
    payload: Any = None
    for item in raw:
        if not isinstance(item, dict) or len(item) != 1:
            raise ShipCodecError("data message: members must be single-member objects")
        ((key, value),) = item.items()
        if key == "header":
            header = from_eebus(value)
        elif key == "payload":
            payload = value
    if not isinstance(header, dict) or header.get("protocolId") != SPINE_PROTOCOL_ID:
        raise ShipCodecError(f"data message: header.protocolId must be {SPINE_PROTOCOL_ID!r}")
    # ship-go sends "payload":{"datagram":[...]}; the schema form is "payload":[{"datagram":[...]}]
    if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], dict):
        payload = payload[0]
    if not isinstance(payload, dict) or not isinstance(payload.get("datagram"), list):
        raise ShipCodecError("data message: payload must hold a SPINE datagram")
    return Data(from_eebus(payload))
