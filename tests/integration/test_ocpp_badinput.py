"""Bad input from a charge point gets the OCPP error reply, the connection stays up; unknown ids never get in."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from adapters.ocpp.factory import OcppFactory
from bridge.clock import SystemClock
from bridge.ports import AdapterDeps

pytestmark = pytest.mark.anyio


async def _factory(tmp_path: Path) -> OcppFactory:
    deps = AdapterDeps(clock=SystemClock(), state_dir=tmp_path, options={"host": "127.0.0.1", "port": 0})
    return OcppFactory(deps)


@pytest.mark.parametrize(
    ("version", "frame", "code"),
    [
        ("1.6", "this is not json", "FormationViolation"),
        ("1.6", '{"not": "a list"}', "FormationViolation"),
        ("1.6", '[2, "u1", "FlyToTheMoon", {}]', "NotImplemented"),
        (
            "1.6",
            '[2, "u2", "BootNotification", {"chargePointVendor": 5, "chargePointModel": "x"}]',
            "TypeConstraintViolation",
        ),
        ("1.6", '[2, "u3", "BootNotification", {"chargePointModel": "x"}]', "ProtocolError"),
        (
            "1.6",
            '[2, "u4", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Dancing"}]',
            "FormationViolation",
        ),
        ("1.6", '[9, "u5", "Heartbeat", {}]', "PropertyConstraintViolation"),
        ("2.0.1", "{{{", "RpcFrameworkError"),
        ("2.0.1", '[2, "v1", "FlyToTheMoon", {}]', "NotImplemented"),
        ("2.0.1", '[2, "v2", "Heartbeat", {"extra": 1}]', "FormatViolation"),
        (
            "2.0.1",
            '[2, "v3", "StatusNotification", {"timestamp": "x", "evseId": "one", "connectorId": 1, '
            '"connectorStatus": "Available"}]',
            "TypeConstraintViolation",
        ),
    ],
)
async def test_bad_frames_get_ocpp_error_and_connection_stays(
    tmp_path: Path, version: str, frame: str, code: str
) -> None:
    factory = await _factory(tmp_path)
    with anyio.fail_after(10):
        async with factory:
            factory.create("c1", factory.validate_options({"type": "ocpp", "charge_point_id": "CP-BAD"}))
            factory.create("c2", factory.validate_options({"type": "ocpp", "charge_point_id": "CP-GOOD"}))
            srv = await factory.wait_started()
            sub = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
            base = f"ws://127.0.0.1:{srv.port}/ocpp"
            async with (
                connect(f"{base}/CP-BAD", subprotocols=[sub]) as bad,
                connect(f"{base}/CP-GOOD", subprotocols=[sub]) as good,
            ):  # type: ignore[list-item]
                await bad.send(frame)
                reply = json.loads(await bad.recv())
                assert reply[0] == 4 and reply[2] == code, reply
                # the same connection still works, and so does the other one
                for ws in (bad, good):
                    await ws.send('[2, "hb", "Heartbeat", {}]')
                    answer = json.loads(await ws.recv())
                    assert answer[0] == 3 and answer[1] == "hb" and "currentTime" in answer[2]
                assert srv.sessions["CP-BAD"].link.bad_frames == 1  # type: ignore[union-attr]


async def test_unknown_charge_point_id_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    factory = await _factory(tmp_path)
    with anyio.fail_after(10):
        async with factory:
            factory.create("c1", factory.validate_options({"type": "ocpp", "charge_point_id": "CP-1"}))
            srv = await factory.wait_started()
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{srv.port}/ocpp/INTRUDER", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                    pass
            assert info.value.response.status_code == 404
            with pytest.raises(InvalidStatus) as info:  # known id, but no OCPP subprotocol offered
                async with connect(f"ws://127.0.0.1:{srv.port}/ocpp/CP-1"):
                    pass
            assert info.value.response.status_code == 400
            assert srv.refused == 2 and "INTRUDER" not in srv.sessions
            assert any("INTRUDER" in r.getMessage() for r in caplog.records)


async def test_basic_auth_profile_1(tmp_path: Path) -> None:
    deps = AdapterDeps(
        clock=SystemClock(), state_dir=tmp_path, options={"host": "127.0.0.1", "port": 0, "security_profile": 1}
    )
    factory = OcppFactory(deps)
    with anyio.fail_after(10):
        async with factory:
            factory.create(
                "c1",
                factory.validate_options({"type": "ocpp", "charge_point_id": "CP-1", "password": "s3cret-pass-1234"}),
            )
            srv = await factory.wait_started()
            url = f"ws://127.0.0.1:{srv.port}/CP-1"
            for creds in (None, "CP-1:wrong-password", "CP-2:s3cret-pass-1234"):
                import base64

                headers = {"Authorization": "Basic " + base64.b64encode(creds.encode()).decode()} if creds else None
                with pytest.raises(InvalidStatus) as info:
                    async with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers):  # type: ignore[list-item]
                        pass
                assert info.value.response.status_code == 401
            ok = {"Authorization": "Basic " + base64.b64encode(b"CP-1:s3cret-pass-1234").decode()}
            async with connect(url, subprotocols=["ocpp1.6"], additional_headers=ok) as ws:  # type: ignore[list-item]
                await ws.send('[2, "hb", "Heartbeat", {}]')
                assert json.loads(await ws.recv())[0] == 3


async def test_malformed_answers_from_the_charger_are_refusals(tmp_path: Path) -> None:
    """A charge point answering our calls with schema-violating payloads: apply() raises ChargerRejected, link stays."""
    from bridge.errors import ChargerRejected
    from bridge.model import Command

    factory = await _factory(tmp_path)
    with anyio.fail_after(15):
        async with factory, anyio.create_task_group() as tg:
            charger = factory.create("c1", factory.validate_options({"type": "ocpp", "charge_point_id": "ODD"}))
            srv = await factory.wait_started()
            async with connect(f"ws://127.0.0.1:{srv.port}/ODD", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]

                async def answer_nonsense() -> None:
                    async for raw in ws:
                        msg = json.loads(raw)
                        if msg[0] == 2:
                            await ws.send(json.dumps([3, msg[1], {"status": "Maybe"}]))

                await ws.send('[2, "b1", "BootNotification", {"chargePointVendor": "Odd", "chargePointModel": "X"}]')
                assert json.loads(await ws.recv())[2]["status"] == "Accepted"
                tg.start_soon(answer_nonsense)
                await srv.sessions["ODD"].ready.wait()
                with pytest.raises(ChargerRejected, match="not applied"):
                    await charger.apply(Command(charger_id="c1", current_a=(10.0, 10.0, 10.0)))
                assert not srv.sessions["ODD"].link.closed.is_set()  # type: ignore[union-attr]
                snap = await charger.read()
                assert snap.manufacturer.vendor == "Odd"
                tg.cancel_scope.cancel()
