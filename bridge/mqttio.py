"""One MQTT connection as an anyio service: paho-mqtt 2.x driven by a single owner task.

Why our own loop instead of `loop_start()`: paho's thread would be a second
owner of the socket and its callbacks would run outside the event loop.  Here
`MqttLink.run()` is the only owner: it connects (the blocking TCP/TLS connect
runs in a worker thread with paho's connect timeout as deadline), then reads
when the socket is readable, writes when paho has queued bytes, and calls
`loop_misc()` every second for keep-alive pings.  A lost connection is retried
with capped exponential backoff; every (re)connect resubscribes and calls the
`on_connect` hooks, so owners can republish their retained state.

Both the southbound adapter (`adapters/mqtt`) and the northbound service
(`bridge/api/mqtt_north.py`) use this module; it imports only stdlib, paho,
anyio and `bridge.clock`/`bridge.errors`.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import paho.mqtt.client as paho
from anyio.abc import TaskStatus
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from bridge.clock import Clock
from bridge.errors import ChargerUnreachable

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], None]  # topic, payload, retained
ConnectHook = Callable[[], None]


@dataclass(frozen=True)
class TlsSettings:
    """TLS towards the broker; `ca_file=None` uses the system trust store."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False  # skip host name check (self-signed broker on an IP); never skips the chain


@dataclass(frozen=True)
class LinkSettings:
    """Where and how to connect; plain data so config sections map onto it without imports."""

    host: str
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    will_topic: str | None = None
    will_payload: bytes = b""
    will_retain: bool = True
    will_qos: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, str | None, bool]:
        """Connections are shared per broker endpoint and identity."""
        return (self.host, self.port, self.username, self.tls is not None)


class MqttLink:
    """The owner of one broker connection; see module docstring.

    Other tasks call `publish()` (non-blocking: paho queues, the owner writes)
    and `subscribe()`; incoming messages go to the handler given at
    construction, called in the owner task (handlers must not block).
    """

    def __init__(self, settings: LinkSettings, clock: Clock, on_message: MessageHandler, *, name: str = "mqtt") -> None:
        self.settings = settings
        self._clock = clock
        self._on_message = on_message
        self._name = name
        self._subs: dict[str, int] = {}
        self._hooks: list[ConnectHook] = []
        self._client: paho.Client | None = None
        self._connected = False
        self._want_write = anyio.Event()
        self._connected_event = anyio.Event()
        self._lost = anyio.Event()
        self.connects = 0  # number of successful sessions, for tests and metrics

    # -- API for other tasks ----------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def add_connect_hook(self, hook: ConnectHook) -> None:
        """Called after every CONNACK (first connect and reconnects), in the owner task."""
        self._hooks.append(hook)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Remember the filter and subscribe now when connected; resubscribed on every reconnect."""
        if self._subs.get(topic_filter) == qos:
            return
        self._subs[topic_filter] = qos
        if self._connected and self._client is not None:
            self._client.subscribe(topic_filter, qos)

    def unsubscribe(self, topic_filter: str) -> None:
        if self._subs.pop(topic_filter, None) is not None and self._connected and self._client is not None:
            self._client.unsubscribe(topic_filter)

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 0, retain: bool = False) -> None:
        """Queue one message; ChargerUnreachable when there is no session (callers decide what to do)."""
        client = self._client
        if not self._connected or client is None:
            raise ChargerUnreachable(f"{self._name}: not connected to {self.settings.host}:{self.settings.port}")
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_QUEUE_SIZE):
            raise ChargerUnreachable(f"{self._name}: publish to {topic} failed: {paho.error_string(info.rc)}")

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait (real time) for a session; ChargerUnreachable after `timeout_s`."""
        if not self._connected and timeout_s > 0:
            with anyio.move_on_after(timeout_s):
                await self._connected_event.wait()
        if not self._connected:
            raise ChargerUnreachable(f"{self._name}: no MQTT session within {timeout_s} s")

    # -- owner task --------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, reconnect with backoff, forever (until cancelled)."""
        task_status.started()
        delay = self.settings.backoff_initial_s
        while True:
            try:
                await self._session()
                delay = self.settings.backoff_initial_s
            except (OSError, ssl.SSLError, ConnectionError, ValueError, _SessionLost) as exc:
                log.warning(
                    "%s: connection to %s:%s failed: %s", self._name, self.settings.host, self.settings.port, exc
                )
            finally:
                self._drop()
            await self._clock.sleep(delay)
            delay = min(delay * 2, self.settings.backoff_max_s)

    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        client.connect_timeout = s.connect_timeout_s
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls is not None:
            ctx = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=str(s.tls.ca_file) if s.tls.ca_file else None
            )
            if s.tls.cert_file is not None:
                ctx.load_cert_chain(str(s.tls.cert_file), str(s.tls.key_file) if s.tls.key_file else None)
            ctx.check_hostname = not s.tls.insecure
            client.tls_set_context(ctx)
        if s.will_topic is not None:
            client.will_set(s.will_topic, s.will_payload, qos=s.will_qos, retain=s.will_retain)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.max_queued_messages_set(0)
        return client

    async def _session(self) -> None:
        client = self._make_client()
        s = self.settings
        self._lost = anyio.Event()
        # Blocking DNS + TCP + TLS handshake, bounded by paho's connect_timeout.
        await anyio.to_thread.run_sync(lambda: client.connect(s.host, s.port, keepalive=s.keepalive_s))
        # From now on paho only queues and tells us; the writer task does the writing (set only after
        # connect: paho writes CONNECT itself in the worker thread, where an anyio Event must not be touched).
        client.on_socket_register_write = lambda *_: self._want_write.set()
        client.on_socket_unregister_write = lambda *_: None
        self._client = client
        sock = client.socket()
        if sock is None:
            raise _SessionLost("no socket after connect")
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._reader, client, sock)
            tg.start_soon(self._writer, client, sock)
            tg.start_soon(self._misc, client)
            tg.start_soon(self._connack_deadline)
            await self._lost.wait()
            tg.cancel_scope.cancel()
        raise _SessionLost("connection lost")

    async def _connack_deadline(self) -> None:
        await anyio.sleep(self.settings.connect_timeout_s)
        if not self._connected:
            log.warning("%s: no CONNACK within %.1f s", self._name, self.settings.connect_timeout_s)
            self._lost.set()

    async def _reader(self, client: paho.Client, sock: socket.socket) -> None:
        while True:
            await anyio.wait_readable(sock)
            while True:
                rc = client.loop_read()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._lost.set()
                    return
                pending = getattr(sock, "pending", None)
                if not (pending and pending()):
                    break

    async def _writer(self, client: paho.Client, sock: socket.socket) -> None:
        self._want_write.set()  # CONNECT is queued by connect()
        while True:
            await self._want_write.wait()
            self._want_write = anyio.Event()
            while client.want_write():
                await anyio.wait_writable(sock)
                rc = client.loop_write()
                if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
                    self._lost.set()
                    return

    async def _misc(self, client: paho.Client) -> None:
        # Keep-alive pings follow the broker's real clock, not the injected one (a FakeClock in a test
        # must not make the broker drop us); the reconnect backoff uses the injected clock.
        while True:
            with anyio.move_on_after(1.0):
                await self._lost.wait()
            if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._lost.set()
                return
            if client.want_write():
                self._want_write.set()

    def _drop(self) -> None:
        was = self._connected
        self._connected = False
        self._connected_event = anyio.Event()
        client, self._client = self._client, None
        if client is not None:
            sock = client.socket()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        if was:
            log.info("%s: disconnected from %s:%s", self._name, self.settings.host, self.settings.port)

    # -- paho callbacks (run inside loop_read/loop_misc, in the owner task) --
    def _handle_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("%s: broker refused the connection: %s", self._name, reason)
            self._lost.set()
            return
        self._connected = True
        self.connects += 1
        log.info("%s: connected to %s:%s", self._name, self.settings.host, self.settings.port)
        for topic_filter, qos in self._subs.items():
            client.subscribe(topic_filter, qos)
        for hook in list(self._hooks):
            try:
                hook()
            except Exception:  # a hook's bug must not kill the connection owner
                log.exception("%s: connect hook failed", self._name)
        self._connected_event.set()

    def _handle_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected = False
        self._lost.set()

    def _handle_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            self._on_message(message.topic, message.payload, bool(message.retain))
        except Exception:  # bad input or a handler bug never takes the connection down
            log.exception("%s: handler failed for %s", self._name, message.topic)


class _SessionLost(Exception):
    """Internal: the current session ended; the owner reconnects."""


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard match (`+`, `#`)."""
    return paho.topic_matches_sub(topic_filter, topic)
