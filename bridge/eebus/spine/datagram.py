"""SPINE datagram header and payload models (eebus-ship-spine.md §3.2, §3.3), for validating input.

The session keeps working on plain dicts (insertion order is schema order, as
the EEBus JSON codec needs), but every received datagram is first checked
against these models, so a wrong type anywhere in the header is answered as a
malformed datagram instead of surfacing later as an odd error.  Unknown
members are allowed: newer SPINE versions add fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CmdClassifier = Literal["read", "reply", "notify", "write", "call", "result"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Address(_Model):
    device: str | None = Field(default=None, max_length=256)
    entity: list[int] = Field(max_length=16)
    feature: int = Field(ge=0)


class Header(_Model):
    specificationVersion: str | None = None  # accept any: peers send 1.1.1, 1.2.0, 1.3.0
    addressSource: Address
    addressDestination: Address
    addressOriginator: Address | None = None
    msgCounter: int = Field(ge=0)
    msgCounterReference: int | None = Field(default=None, ge=0)
    cmdClassifier: CmdClassifier
    ackRequest: bool | None = None
    timestamp: str | None = None


class Payload(_Model):
    cmd: list[dict[str, Any]] = Field(min_length=1)  # one cmd per datagram in practice; we use cmd[0]


class Datagram(_Model):
    header: Header
    payload: Payload


def validate_datagram(datagram: Any) -> str | None:
    """None when the datagram is well-formed, else a short description of the first problems."""
    return _problems(Datagram, datagram)


def validate_header(header: Any) -> str | None:
    """None when the header alone is well-formed (then a bad payload can still be answered)."""
    return _problems(Header, header)


def _problems(model: type[BaseModel], data: Any) -> str | None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)[:3]]
        return "; ".join(problems)
    return None
