"""Per-device SHIP identity: a self-signed ECDSA P-256 certificate whose SKI is the device's name.

The SKI is what every EMS pairs with, so it must never change: the key and
certificate are created once, on first start, and persisted under
`<state>/ship/devices/<device_id>/` (mode 0600, atomic writes).  The
certificate has the shape ship-go emits and expects (reference §2.1):
subject OU/O/C/CN, CA:TRUE, KeyUsage digitalSignature (critical), a 20-byte
SubjectKeyIdentifier = SHA-1 of the uncompressed public point, 10 years valid.
The device's SHIP port is stable too: configured, or allocated once and
stored next to the key.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge.errors import ConfigError
from bridge.runtime.statestore import atomic_write_bytes

DEFAULT_SHIP_PORT = 4711
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_VALIDITY = datetime.timedelta(days=3650)


class PeerCertificateError(ValueError):
    """The peer's certificate cannot identify it (no 20-byte SubjectKeyIdentifier)."""


def ship_dir(state_dir: Path) -> Path:
    """Everything SHIP keeps lives here (keys, trust store, control socket); owner-only."""
    path = state_dir / "ship"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def device_dir(state_dir: Path, device_id: str) -> Path:
    if not _DEVICE_ID.fullmatch(device_id):
        raise ConfigError(f"device id {device_id!r} must be 1-64 of A-Z a-z 0-9 _ . - (it names a state directory)")
    path = ship_dir(state_dir) / "devices" / device_id
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def ski_of_certificate(cert: x509.Certificate) -> str:
    """The SKI a SHIP peer presents: its SubjectKeyIdentifier extension, 20 bytes, as 40 lowercase hex."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        raise PeerCertificateError("certificate does not provide a SKI") from None
    if len(ext.value.digest) != 20:
        raise PeerCertificateError(f"certificate SKI has {len(ext.value.digest)} bytes, SHIP requires 20")
    return ext.value.digest.hex()


def ski_of_der(der: bytes) -> str:
    return ski_of_certificate(x509.load_der_x509_certificate(der))


def create_certificate(
    common_name: str, *, organization: str = "evbridge", unit: str = "EVSE", country: str = "DE"
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key pair and ship-go-compatible self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())  # SHA-1 of the 65-byte point
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(128) | 1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@dataclass(frozen=True, slots=True)
class Identity:
    """Key, certificate, SKI and SHIP ID of one exposed device."""

    device_id: str
    ski: str
    ship_id: str
    cert_pem: bytes
    key_pem: bytes
    cert_path: Path
    key_path: Path

    @classmethod
    def load_or_create(
        cls, state_dir: Path, device_id: str, *, common_name: str | None = None, ship_id: str | None = None
    ) -> Identity:
        """The persisted identity of `device_id`, created (once) if there is none yet."""
        directory = device_dir(state_dir, device_id)
        key_path, cert_path = directory / "key.pem", directory / "cert.pem"
        if not key_path.exists() or not cert_path.exists():
            key, cert = create_certificate(common_name or f"evbridge-{device_id}")
            key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            atomic_write_bytes(key_path, key_pem)
            atomic_write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        key_pem, cert_pem = key_path.read_bytes(), cert_path.read_bytes()
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
            ski = ski_of_certificate(cert)
        except (ValueError, PeerCertificateError) as exc:
            message = f"SHIP identity is unreadable ({exc}); restore it from a backup"
            raise ConfigError(message, location=str(directory)) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise ConfigError("SHIP key does not match the certificate", location=str(directory))
        return cls(device_id, ski, ship_id or f"evbridge-{device_id}-{ski[:8]}", cert_pem, key_pem, cert_path, key_path)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _port_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def stable_port(
    state_dir: Path,
    device_id: str,
    configured: int | None = None,
    *,
    host: str = "0.0.0.0",
    base: int = DEFAULT_SHIP_PORT,
) -> int:
    """The device's SHIP port: the configured one, else the one allocated on first start (persisted).

    Allocation starts at `base` (eebus-go's default is 4711; the config's
    `eebus.port_base`) and skips ports that another device already holds or
    that are busy right now.
    """
    if configured is not None:
        return configured
    path = device_dir(state_dir, device_id) / "port.json"
    if path.exists():
        try:
            return int(json.loads(path.read_text())["port"])
        except (ValueError, KeyError, TypeError) as exc:
            message = f"unreadable SHIP port file ({exc}); delete it to allocate anew"
            raise ConfigError(message, location=str(path)) from None
    taken = set()
    for other in (ship_dir(state_dir) / "devices").glob("*/port.json"):
        try:
            taken.add(int(json.loads(other.read_text())["port"]))
        except (ValueError, KeyError, TypeError):
            continue
    port = base
    while port in taken or not _port_free(port, host):
        port += 1
        if port > 65535:
            raise ConfigError(f"no free TCP port for SHIP above {base}")
    atomic_write_bytes(path, json.dumps({"port": port}).encode())
    return port
