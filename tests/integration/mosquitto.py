"""Start a real mosquitto for a test: free loopback port, generated config (plain, password, TLS).

Never skipped: a missing binary fails the test with the package to install.
Certificates for the TLS mode are generated here with `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge.clock import SystemClock
from bridge.mqttio import LinkSettings, MqttLink

Mode = Literal["plain", "password", "tls"]
USERNAME = "evbridge"
PASSWORD = "s3cret-pw"


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()), None
    )
    if path is None:
        pytest.fail("mosquitto binary not found: install the Debian package 'mosquitto' (apt-get install -y mosquitto)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_files(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A throw-away CA and a server certificate for `host` (IP SAN and localhost)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evbridge test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key_file.chmod(0o600)
    return files


@dataclass
class Mosquitto:
    """One broker process; `restart()` keeps the port (and, without persistence, forgets retained messages)."""

    directory: Path
    mode: Mode = "plain"
    port: int = field(default_factory=free_port)
    tls: TlsFiles | None = None
    _proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr", "log_type error"]
        if os.geteuid() == 0:  # as root mosquitto would drop to user 'mosquitto', who cannot read the test dir
            lines.append("user root")
        if self.mode == "plain":
            lines.append("allow_anonymous true")
        else:
            passwd = self.directory / "passwd"
            passwd.write_text("")
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            if not Path(tool).is_file():
                pytest.fail("mosquitto_passwd not found: install the Debian package 'mosquitto'")
            subprocess.run([tool, "-b", str(passwd), USERNAME, PASSWORD], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        if self.mode == "tls":
            self.tls = make_tls_files(self.directory)
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                "tls_version tlsv1.2",
            ]
        self.config = self.directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                pytest.fail(f"mosquitto exited at start: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        pytest.fail(f"mosquitto did not listen on port {self.port} within 10 s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def start_broker(directory: Path, mode: Mode = "plain") -> Mosquitto:
    broker = Mosquitto(directory, mode)
    broker.start()
    return broker


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0, step_s: float = 0.05) -> None:
    """Poll `check` (bounded: at most within_s/step_s tries) until it holds; fail the test otherwise."""
    for _ in range(max(1, int(within_s / step_s))):
        if await check():
            return
        await anyio.sleep(step_s)
    pytest.fail(f"condition not reached within {within_s} s")


class Observer:
    """A plain subscriber that records what the broker delivers (retained flag included)."""

    def __init__(self, port: int, topic_filter: str = "#", name: str = "observer") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.retained: dict[str, bytes] = {}
        self.link = MqttLink(LinkSettings("127.0.0.1", port, client_id=name), SystemClock(), self._on, name=name)
        self.link.subscribe(topic_filter, 1)

    def _on(self, topic: str, payload: bytes, retained: bool) -> None:
        self.messages.append((topic, payload, retained))
        if payload:
            self.retained[topic] = payload
        else:
            self.retained.pop(topic, None)


@asynccontextmanager
async def observing(port: int, name: str = "observer") -> AsyncIterator[Observer]:
    obs = Observer(port, name=name)
    async with anyio.create_task_group() as tg:
        await tg.start(obs.link.run)
        await obs.link.wait_connected(5)
        yield obs
        tg.cancel_scope.cancel()
