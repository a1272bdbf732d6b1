"""Security profiles 2 (TLS + basic auth) and 3 (TLS with client certificates) over loopback."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.sim.ocpp_cp import Quirks
from tests.integration.test_ocpp_helpers import bridge_with_sims, command

pytestmark = pytest.mark.anyio


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, issuer_key: ec.EllipticCurvePrivateKey | None, issuer: str | None, *, ca: bool, san: str | None = None
):  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer or subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(san))]), critical=False
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    c, k = path.with_suffix(".crt"), path.with_suffix(".key")
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return c, k


def _pki(tmp_path: Path) -> dict[str, Path]:
    ca_key, ca = _cert("evbridge test CA", None, None, ca=True)
    _write(tmp_path / "ca", ca_key, ca)
    srv_key, srv = _cert("127.0.0.1", ca_key, "evbridge test CA", ca=False, san="127.0.0.1")
    srv_crt, srv_k = _write(tmp_path / "server", srv_key, srv)
    cp_key, cp = _cert("SIM-1", ca_key, "evbridge test CA", ca=False)
    cp_crt, cp_k = _write(tmp_path / "cp", cp_key, cp)
    rogue_ca_key, _ = _cert("rogue CA", None, None, ca=True)
    rogue_key, rogue = _cert("SIM-1", rogue_ca_key, "rogue CA", ca=False)
    rogue_crt, rogue_k = _write(tmp_path / "rogue", rogue_key, rogue)
    return {
        "ca": tmp_path / "ca.crt",
        "srv_crt": srv_crt,
        "srv_key": srv_k,
        "cp_crt": cp_crt,
        "cp_key": cp_k,
        "rogue_crt": rogue_crt,
        "rogue_key": rogue_k,
    }


def _client_ctx(pki: dict[str, Path], cert: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if cert is not None:
        ctx.load_cert_chain(pki[f"{cert}_crt"], pki[f"{cert}_key"])
    return ctx


async def test_security_profile_2_tls_with_basic_auth(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    server = {"security_profile": 2, "tls_cert": str(pki["srv_crt"]), "tls_key": str(pki["srv_key"])}
    with anyio.fail_after(20):
        async with bridge_with_sims(
            tmp_path,
            server=server,
            charger_extra={"password": "profile-two-secret"},
            sim_kwargs={"password": "profile-two-secret", "ssl": _client_ctx(pki)},
        ) as (factory, (charger,), (station,)):
            await charger.apply(command("cp1", 10.0))
            assert station.core.effective_limit_a() == pytest.approx(10.0)
            srv = factory.server
            assert srv is not None
            from adapters.sim.ocpp_cp import SimCore, SimStation
            from bridge.clock import SystemClock

            # a wrong password over TLS is refused
            intruder = SimStation("SIM-1", "1.6", SimCore(SystemClock(), Quirks()))
            with pytest.raises(Exception, match="401"):
                await intruder.run(f"wss://127.0.0.1:{srv.port}", password="wrong-password", ssl=_client_ctx(pki))


async def test_security_profile_3_client_certificates(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    server = {
        "security_profile": 3,
        "tls_cert": str(pki["srv_crt"]),
        "tls_key": str(pki["srv_key"]),
        "tls_client_ca": str(pki["ca"]),
    }
    with anyio.fail_after(20):
        async with bridge_with_sims(tmp_path, server=server, sim_kwargs={"ssl": _client_ctx(pki, "cp")}) as (
            factory,
            (charger,),
            (station,),
        ):
            await charger.apply(command("cp1", 11.0))
            assert station.core.effective_limit_a() == pytest.approx(11.0)
            srv = factory.server
            assert srv is not None
            from adapters.sim.ocpp_cp import SimCore, SimStation
            from bridge.clock import SystemClock

            for ctx in (_client_ctx(pki, "rogue"), _client_ctx(pki)):  # unknown issuer; no certificate at all
                intruder = SimStation("SIM-1", "1.6", SimCore(SystemClock(), Quirks()))
                with pytest.raises(Exception):  # noqa: B017 - the TLS layer refuses; the exact class depends on timing
                    await intruder.run(f"wss://127.0.0.1:{srv.port}", ssl=ctx)
                assert not intruder.booted.is_set()
            assert factory.session("SIM-1") is not None  # the real one is still connected
