"""OCPP-J framing errors per version and the handshake rules of the security profiles."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.ocpp import rpc
from adapters.ocpp.options import ServerOptions
from adapters.ocpp.security import check_basic_auth, check_request, cp_id_from_path


def test_decode_kinds() -> None:
    assert rpc.decode('[2,"a","Heartbeat",{}]', "1.6") == rpc.IncomingCall("a", "Heartbeat", {})
    assert rpc.decode('[3,"a",{"x":1}]', "1.6") == rpc.IncomingResult("a", {"x": 1})
    assert isinstance(rpc.decode('[4,"a","NotSupported","no",{}]', "1.6"), rpc.IncomingError)
    bad = rpc.decode(b"\x00", "1.6")
    assert isinstance(bad, rpc.BadFrame) and json.loads(bad.reply or "")[2] == "FormationViolation"
    bad = rpc.decode('[2, 5, "Heartbeat", {}]', "2.0.1")
    assert isinstance(bad, rpc.BadFrame) and json.loads(bad.reply or "")[2] == "FormatViolation"
    bad = rpc.decode('[2, "id", "Heartbeat", []]', "1.6")
    assert isinstance(bad, rpc.BadFrame) and json.loads(bad.reply or "")[1] == "id"
    assert isinstance(rpc.decode("x" * (rpc.MAX_FRAME + 1), "1.6"), rpc.BadFrame)


def test_error_code_spelling_per_version() -> None:
    assert rpc.error_code("1.6", "FormatViolation") == "FormationViolation"
    assert rpc.error_code("1.6", "OccurrenceConstraintViolation") == "OccurenceConstraintViolation"
    assert rpc.error_code("2.0.1", "FormationViolation") == "FormatViolation"


def test_cp_id_from_path() -> None:
    assert cp_id_from_path("/ocpp/CP%201?x=1") == "CP 1"
    assert cp_id_from_path("/") is None


def _basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_basic_auth() -> None:
    assert check_basic_auth(_basic("CP1", "pw-123456"), "CP1", "pw-123456")
    assert not check_basic_auth(_basic("CP2", "pw-123456"), "CP1", "pw-123456")
    assert not check_basic_auth("Basic !!!", "CP1", "pw-123456")
    assert not check_basic_auth(None, "CP1", "pw-123456")
    assert check_basic_auth(None, "CP1", None)


@pytest.mark.parametrize(
    ("profile", "path", "auth", "cn", "status"),
    [
        (0, "/CP2", None, None, 0),  # legacy box: no password configured, none asked
        (0, "/CP1", None, None, 401),  # a configured password is always checked
        (0, "/OTHER", None, None, 404),
        (1, "/CP1", None, None, 401),
        (1, "/CP1", _basic("CP1", "pw-123456"), None, 0),
        (1, "/CP2", _basic("CP2", "x"), None, 401),  # profile 1 needs a password configured
        (3, "/CP1", None, "CP1", 0),
        (3, "/CP1", None, "CP9", 403),
    ],
)
def test_check_request(profile: int, path: str, auth: str | None, cn: str | None, status: int) -> None:
    extra = {"tls_cert": "c", "tls_key": "k", "tls_client_ca": "ca"} if profile >= 2 else {}
    server = ServerOptions(security_profile=profile, **extra)  # type: ignore[arg-type]
    assert check_request(path, auth, cn, server, {"CP1": "pw-123456", "CP2": None}).status == status


def test_server_options_need_tls_files() -> None:
    with pytest.raises(ValueError, match="tls_cert"):
        ServerOptions(security_profile=2)
    with pytest.raises(ValueError, match="tls_client_ca"):
        ServerOptions(security_profile=3, tls_cert="c", tls_key="k")  # type: ignore[arg-type]


def test_validate_result() -> None:
    assert rpc.validate_result("SetChargingProfile", {"status": "Accepted"}, "1.6") is None
    assert rpc.validate_result("SetChargingProfile", {"status": "Maybe"}, "1.6") is not None
    bad_composite = {"status": "Accepted", "chargingSchedule": {"chargingRateUnit": "A"}}
    assert rpc.validate_result("GetCompositeSchedule", bad_composite, "1.6") is not None
