"""Handshake checks of the CSMS: charge point id from the path, allow-list, basic auth, client certificate.

Pure functions over the request path, headers and peer certificate, so each
security profile rule is testable without a socket.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from adapters.ocpp.options import ServerOptions


@dataclass(frozen=True)
class Verdict:
    cp_id: str | None
    status: int  # 0 = accepted, else the HTTP status to refuse with
    reason: str = ""


def cp_id_from_path(path: str) -> str | None:
    """`/ocpp/CP-1` → `CP-1` (the last non-empty segment, URL-decoded; query ignored)."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    return unquote(segments[-1]) if segments else None


def check_basic_auth(header: str | None, cp_id: str, password: str | None) -> bool:
    """HTTP Basic with user = charge point id, password = the configured AuthorizationKey."""
    if password is None:
        return True  # legacy boxes without auth: allowed only when no password is configured
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user.encode(), cp_id.encode()) and hmac.compare_digest(given.encode(), password.encode())


def check_request(
    path: str,
    auth_header: str | None,
    peer_cn: str | None,
    server: ServerOptions,
    passwords: dict[str, str | None],
) -> Verdict:
    """Decide a handshake: unknown ids never get in; profile 1/2 need the password, profile 3 the certificate."""
    cp_id = cp_id_from_path(path)
    if cp_id is None or cp_id not in passwords:
        return Verdict(cp_id, 404, f"unknown charge point id {cp_id!r}")
    if server.security_profile in (1, 2):
        if passwords[cp_id] is None:
            return Verdict(cp_id, 401, "security profile needs a password for this charge point")
        if not check_basic_auth(auth_header, cp_id, passwords[cp_id]):
            return Verdict(cp_id, 401, "basic authentication failed")
    elif server.security_profile == 0 and not check_basic_auth(auth_header, cp_id, passwords[cp_id]):
        return Verdict(cp_id, 401, "basic authentication failed")
    if server.security_profile == 3 and peer_cn != cp_id:
        return Verdict(cp_id, 403, f"client certificate CN {peer_cn!r} does not match {cp_id!r}")
    return Verdict(cp_id, 0)


def server_ssl_context(server: ServerOptions) -> ssl.SSLContext | None:
    """TLS 1.2+ for profiles 2 and 3; profile 3 requires a client certificate from `tls_client_ca`."""
    if server.security_profile < 2:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(Path(str(server.tls_cert)), Path(str(server.tls_key)))
    if server.security_profile == 3:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(server.tls_client_ca))
    return ctx


def peer_common_name(peercert: dict[str, object] | None) -> str | None:
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):  # type: ignore[attr-defined]
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
