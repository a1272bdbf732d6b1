"""Mutual TLS for SHIP on anyio streams, both roles, with pyOpenSSL over memory BIOs.

Why not the stdlib `ssl` module: a SHIP server must request the client's
certificate and accept it although it is self-signed and unknown, because
trust is decided afterwards by the certificate's SKI (reference §2.3).
Stdlib `ssl` cannot: with CERT_NONE it never requests a certificate, with
CERT_OPTIONAL/CERT_REQUIRED it verifies the chain and aborts the handshake
("unknown ca"), and it has no verify callback to override that.

How it is solved: an OpenSSL context from pyOpenSSL with
`VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT` (server) or `VERIFY_PEER` (client)
and a verify callback that accepts any chain.  OpenSSL still checks the
CertificateVerify signature, so the peer proves it holds the private key of
the certificate it shows; only the chain-of-trust check is replaced by our own
decision: right after the handshake `TlsStream.peer_ski` is read from the
peer certificate's SubjectKeyIdentifier (20 bytes, or the handshake is
refused) and the node checks it against the trust store / expected SKI.
The `SSL.Connection` runs on memory BIOs and is pumped over an anyio TCP
stream, so TLS is ordinary non-blocking async I/O with deadlines (no threads).
The same code serves the client role (the expected SKI is compared after the
handshake, like ship-go's "SKI does not match").

Parameters as real peers use them (reference §2.2): TLS 1.2 minimum, 1.3
allowed (what two Go peers negotiate), TLS 1.2 suites
ECDHE-ECDSA-AES128-SHA256 (0xC023, SHIP mandatory) and
ECDHE-ECDSA-AES128-GCM-SHA256 (0xC02B), P-256 keys, no renegotiation.
"""

from __future__ import annotations

from typing import Final

import anyio
import anyio.abc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from bridge.eebus.ship.identity import Identity, PeerCertificateError, ski_of_certificate
from bridge.errors import RemoteProtocolError

TLS12_CIPHERS: Final = b"ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256"
_CHUNK: Final = 65536


class TlsError(RemoteProtocolError):
    """The TLS handshake or record layer failed, or the peer certificate has no usable SKI."""

    retryable = True


def _accept_any_chain(_conn: SSL.Connection, _cert: object, _errno: int, _depth: int, _ok: int) -> bool:
    """Chain verification is replaced by the SKI check after the handshake (see module docstring)."""
    return True


def make_context(identity: Identity, *, server: bool) -> SSL.Context:
    """An OpenSSL context presenting `identity` and requesting/accepting any peer certificate."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD if server else SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(TLS12_CIPHERS)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_TICKET)
    ctx.use_certificate(x509.load_pem_x509_certificate(identity.cert_pem))
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    ctx.use_privatekey(key)  # type: ignore[arg-type]
    ctx.check_privatekey()
    mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if server else 0)
    ctx.set_verify(mode, _accept_any_chain)
    return ctx


def _peer_certificate(conn: SSL.Connection) -> x509.Certificate | None:
    try:
        return conn.get_peer_certificate(as_cryptography=True)
    except TypeError:  # pyOpenSSL < 24.3
        legacy = conn.get_peer_certificate()
        return None if legacy is None else legacy.to_cryptography()


class TlsStream(anyio.abc.ByteStream):
    """A TLS connection over a byte stream; one reader and one writer task may use it at the same time."""

    def __init__(self, transport: anyio.abc.ByteStream, conn: SSL.Connection) -> None:
        self.transport = transport
        self._conn = conn
        self._send_lock = anyio.Lock()
        self.peer_certificate: x509.Certificate | None = None
        self.peer_ski = ""

    @classmethod
    async def wrap(cls, transport: anyio.abc.ByteStream, ctx: SSL.Context, *, server: bool) -> TlsStream:
        """Run the handshake (the caller sets the deadline) and read the peer's SKI."""
        conn = SSL.Connection(ctx, None)
        if server:
            conn.set_accept_state()
        else:
            conn.set_connect_state()
        stream = cls(transport, conn)
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                await stream._flush_quietly()
                raise TlsError(f"TLS handshake failed: {exc}") from None
            await stream._flush()
            try:
                data = await transport.receive(_CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                raise TlsError(f"peer closed during the TLS handshake ({type(exc).__name__})") from None
            conn.bio_write(data)
        await stream._flush()
        cert = _peer_certificate(conn)
        if cert is None:
            raise TlsError("peer presented no certificate")
        try:
            stream.peer_ski = ski_of_certificate(cert)
        except PeerCertificateError as exc:
            raise TlsError(f"peer {exc}") from None
        stream.peer_certificate = cert
        return stream

    @property
    def protocol_version(self) -> str:
        return self._conn.get_protocol_version_name()

    @property
    def cipher(self) -> str | None:
        return self._conn.get_cipher_name()

    def _drain(self) -> bytes:
        """Everything OpenSSL has queued for the network (synchronous: no other task can interleave)."""
        chunks = []
        while True:
            try:
                out = self._conn.bio_read(_CHUNK)
            except SSL.WantReadError:
                break
            if not out:
                break
            chunks.append(out)
        return b"".join(chunks)

    async def _flush(self) -> None:
        """Send what OpenSSL queued.  Draining happens before queueing on the (FIFO) lock, so bytes go out
        in the order OpenSSL produced them; with nothing to send there is no lock and no extra loop turn."""
        data = self._drain()
        if not data:
            return
        if self._send_lock.locked():
            await self._send_lock.acquire()
        else:
            self._send_lock.acquire_nowait()
        try:
            await self.transport.send(data)
        finally:
            self._send_lock.release()

    async def _flush_quietly(self) -> None:
        try:
            with anyio.move_on_after(1):
                await self._flush()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    async def receive(self, max_bytes: int = _CHUNK) -> bytes:
        while True:
            try:
                data = self._conn.recv(max_bytes)
                if data:
                    return data
            except SSL.WantReadError:
                pass
            except SSL.ZeroReturnError:
                raise anyio.EndOfStream from None
            except SSL.Error as exc:
                raise anyio.BrokenResourceError(f"TLS error: {exc}") from None
            await self._flush()
            chunk = await self.transport.receive(_CHUNK)  # EndOfStream: the peer closed without close_notify
            self._conn.bio_write(chunk)

    async def send(self, item: bytes) -> None:
        try:
            self._conn.sendall(item)
        except SSL.Error as exc:
            raise anyio.BrokenResourceError(f"TLS error: {exc}") from None
        await self._flush()

    async def send_eof(self) -> None:
        """Send close_notify (TLS cannot half-close; the peer answers or closes)."""
        try:
            self._conn.shutdown()
        except SSL.Error:
            return
        await self._flush()

    async def aclose(self) -> None:
        try:
            self._conn.shutdown()
        except SSL.Error:
            pass
        await self._flush_quietly()
        await self.transport.aclose()
