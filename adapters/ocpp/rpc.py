"""Sans-I/O OCPP-J framing: text frame in → typed message or the error reply to send.

Uses the `ocpp` library's frame parser and JSON schemas, and maps its error
classes onto the codes each protocol version defines (1.6 says
`FormationViolation` and `OccurenceConstraintViolation`, 2.0.1 says
`FormatViolation`, `OccurrenceConstraintViolation` and `RpcFrameworkError`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ocpp import exceptions as oe
from ocpp.messages import Call, CallResult, _validate_payload, unpack

SUBPROTOCOLS = {"ocpp1.6": "1.6", "ocpp2.0.1": "2.0.1"}
MAX_FRAME = 256 * 1024


@dataclass(frozen=True)
class IncomingCall:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class IncomingResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class IncomingError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadFrame:
    """An unusable frame; `reply` is the CALLERROR to send back (None when none is due)."""

    reply: str | None
    reason: str


Incoming = IncomingCall | IncomingResult | IncomingError | BadFrame


def error_code(version: str, code: str) -> str:
    """The library's error code spelled the way `version` defines it."""
    if version == "1.6":
        return {
            "FormatViolation": "FormationViolation",
            "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
        }.get(code, code)
    return {
        "FormationViolation": "FormatViolation",
        "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
    }.get(code, code)


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, unique_id, action, payload], separators=(",", ":"))


def result_frame(unique_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([3, unique_id, payload], separators=(",", ":"))


def error_frame(unique_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps([4, unique_id, code, description[:255], details or {}], separators=(",", ":"), default=str)


def _unique_id_of(text: str) -> str:
    """Best effort message id of a broken frame; "-1" when it cannot be read (2.0.1 rule)."""
    try:
        data = json.loads(text)
    except ValueError:
        return "-1"
    if isinstance(data, list) and len(data) > 1 and isinstance(data[1], str):
        return data[1]
    return "-1"


def decode(text: str | bytes, version: str) -> Incoming:
    """Parse one frame; never raises."""
    if isinstance(text, bytes):
        return BadFrame(
            error_frame("-1", error_code(version, "FormationViolation"), "binary frames are not OCPP-J"), "binary"
        )
    if len(text) > MAX_FRAME:
        return BadFrame(error_frame("-1", error_code(version, "FormationViolation"), "frame too large"), "too large")
    try:
        msg = unpack(text)
    except oe.OCPPError as exc:
        code = "RpcFrameworkError" if version == "2.0.1" else "FormationViolation"
        if isinstance(exc, oe.PropertyConstraintViolationError):
            code = "PropertyConstraintViolation" if version == "1.6" else "MessageTypeNotSupported"
        return BadFrame(
            error_frame(_unique_id_of(text), code, str(exc.description), {"cause": str(exc.details)}), str(exc)
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return BadFrame(error_frame("-1", error_code(version, "FormationViolation"), "not an OCPP-J frame"), str(exc))
    if isinstance(msg, Call):
        if not isinstance(msg.unique_id, str) or not isinstance(msg.action, str) or not isinstance(msg.payload, dict):
            return BadFrame(
                error_frame(_unique_id_of(text), error_code(version, "FormationViolation"), "malformed CALL"), "call"
            )
        return IncomingCall(msg.unique_id, msg.action, msg.payload)
    if isinstance(msg, CallResult):
        if not isinstance(msg.payload, dict):
            return BadFrame(None, "malformed CALLRESULT")
        return IncomingResult(str(msg.unique_id), msg.payload)
    details = msg.error_details if isinstance(msg.error_details, dict) else {}
    return IncomingError(str(msg.unique_id), str(msg.error_code), str(msg.error_description), details)


def validate_call(call: IncomingCall, version: str) -> str | None:
    """None when the payload fits the action's schema, else the CALLERROR frame to answer with."""
    try:
        _validate_payload(Call(call.unique_id, call.action, call.payload), version)
    except oe.OCPPError as exc:
        return error_frame(
            call.unique_id, error_code(version, exc.code), str(exc.description), {"cause": str(exc.details)[:200]}
        )
    except ValueError:
        return error_frame(call.unique_id, "NotImplemented", f"unknown action {call.action}")
    return None


def validate_result(action: str, payload: dict[str, Any], version: str) -> str | None:
    """None when a CALLRESULT payload fits the schema of `action`, else a reason."""
    result = CallResult("x", payload, action)
    try:
        _validate_payload(result, version)
    except oe.OCPPError as exc:
        return f"{exc.code}: {exc.description}"
    return None
