"""The SHIP connection state machine (IEC 63380-3 / SHIP 1.0.1 §13.4; reference §2.8–§2.12), sans-I/O.

Bytes, application decisions and the passing of (injected) clock time go in;
effects come out: frames to send, "close the transport with code X", "the
handshake completed", "a SPINE datagram arrived".  The transport owns the
socket and carries the effects out; this module never does I/O and never
sleeps.  Timers are one deadline on `clock.monotonic()`; the transport calls
`tick()` when `next_deadline` has passed.

Every legal step is one row of `_TRANSITIONS`, keyed by (state, input kind).
Anything else is a protocol violation, answered as SHIP prescribes for the
state it happens in (`_violation`): CMI/PIN/access phases close with 4001 and
the reason, the hello phase sends `aborted` and closes with 4452 after 1 s,
the protocol handshake sends `messageProtocolHandshakeError` (1 timeout,
2 unexpected message, 3 selection mismatch) and closes, data exchange
announces `connectionClose` and closes with 4001 after the confirm.

Behaviour follows ship-go where SHIP is vague (reference §2.8): the pending
side sends prolongation requests 30 s before the peer's announced deadline,
a `ready` answer to our prolongation request restarts that schedule, and a
peer `waiting` below 1 s aborts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from bridge.clock import Clock
from bridge.eebus.ship import codec
from bridge.eebus.ship.codec import (
    AccessMethods,
    AccessMethodsRequest,
    CmiInit,
    ConnectionClose,
    Data,
    Hello,
    PinState,
    ProtocolHandshake,
    ProtocolHandshakeError,
    ShipCodecError,
    ShipMessage,
)
from bridge.errors import LocalProtocolError

CLOSE_SHIP: Final = 4001  # normal SHIP close, also handshake errors (ship-go)
CLOSE_REJECTED: Final = 4452  # "Node rejected by application" (hello abort)
CLOSE_USER: Final = 4500  # "User close" (peer unregistered)
CLOSE_DOUBLE: Final = 1000  # "double connection"

MAX_EARLY_DATA: Final = 64  # data messages buffered while the access-methods exchange finishes


class Role(enum.Enum):
    CLIENT = "client"  # dialed the connection
    SERVER = "server"  # accepted it


class TrustDecision(enum.Enum):
    TRUSTED = "trusted"  # say ready
    PENDING = "pending"  # say pending and wait for the user (pairing window)
    REFUSED = "refused"  # say aborted


class State(enum.Enum):
    IDLE = "idle"
    CMI_WAIT = "cmi_wait"
    HELLO_READY = "hello_ready_listen"
    HELLO_PENDING = "hello_pending_listen"
    PROT_CLIENT_WAIT_SELECT = "prot_client_wait_select"
    PROT_SERVER_WAIT_ANNOUNCE = "prot_server_wait_announce"
    PROT_SERVER_WAIT_CONFIRM = "prot_server_wait_confirm"
    PIN_WAIT = "pin_wait"
    ACCESS = "access_methods"
    DATA = "data_exchange"
    CLOSE_ANNOUNCED = "close_announced"
    CLOSING = "closing"  # close decided, waiting out a short delay
    CLOSED = "closed"


class Timer(enum.Enum):
    CMI = "cmi"
    HELLO_WAIT = "hello_wait"
    PROLONG_SEND = "prolong_send"
    PROLONG_REPLY = "prolong_reply"
    PROT = "prot"
    PIN = "pin"
    ACCESS = "access"
    CLOSE_DELAY = "close_delay"
    CLOSE_ANNOUNCE = "close_announce"


@dataclass(frozen=True, slots=True)
class ShipTimeouts:
    """All SHIP waiting times in seconds (reference §2.9); tests shorten them."""

    cmi: float = 10.0
    hello_init: float = 60.0  # tHelloInit: own wait, sent as waiting=60000
    hello_inc: float = 60.0  # tHelloInc: own wait after a peer's prolongation request
    prolong_threshold: float = 30.0  # tHelloProlongThrInc
    prolong_min: float = 1.0  # tHelloProlongMin
    prolong_reply_default: float = 66.0  # answer to our prolongation request when the peer never said `waiting`
    prot: float = 10.0
    pin: float = 10.0
    access: float = 10.0
    abort_close_delay: float = 1.0  # aborted -> close 4452
    close_max_time: float = 0.5  # connectionClose announce maxTime
    close_confirm_delay: float = 0.5  # confirm -> close 4001


# ------------------------------------------------------------------ effects


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseTransport:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Completed:
    peer_ship_id: str


@dataclass(frozen=True, slots=True)
class SpineReceived:
    datagram: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AwaitingTrust:
    """We answered `pending`: the user may now accept or refuse this peer."""


Effect = Send | CloseTransport | Completed | SpineReceived | AwaitingTrust

_PROT_STATES: Final = (State.PROT_CLIENT_WAIT_SELECT, State.PROT_SERVER_WAIT_ANNOUNCE, State.PROT_SERVER_WAIT_CONFIRM)
_HELLO_STATES: Final = (State.HELLO_READY, State.HELLO_PENDING)
_SELECTION: Final = ProtocolHandshake("select", 1, 0, (codec.FORMAT_JSON_UTF8,))


def input_kind(msg: ShipMessage) -> str:
    """The transition-table key of a received message."""
    if isinstance(msg, ConnectionClose):
        return "close_" + msg.phase
    return _KINDS[type(msg)]


_KINDS: Final[dict[type, str]] = {
    CmiInit: "cmi",
    Hello: "hello",
    ProtocolHandshake: "prot",
    ProtocolHandshakeError: "prot_error",
    PinState: "pin",
    AccessMethodsRequest: "access_request",
    AccessMethods: "access",
    Data: "data",
}


@dataclass
class ShipStateMachine:
    """One SHIP connection, from CMI to close.  Not thread-safe; owned by one connection task."""

    role: Role
    clock: Clock
    local_ship_id: str
    trust: TrustDecision
    timeouts: ShipTimeouts = field(default_factory=ShipTimeouts)
    expected_peer_ship_id: str | None = None
    allow_waiting: bool = True  # ship-go's AllowWaitingForTrust: keep prolonging while the user decides

    state: State = field(default=State.IDLE, init=False)
    peer_ship_id: str | None = field(default=None, init=False)
    close_reason: str | None = field(default=None, init=False)
    error: str | None = field(default=None, init=False)  # set when the connection ended by a violation
    _deadline: float | None = field(default=None, init=False)
    _timer: Timer | None = field(default=None, init=False)
    _out: list[Effect] = field(default_factory=list, init=False)
    _peer_ready: bool = field(default=False, init=False)
    _peer_waiting_s: float | None = field(default=None, init=False)
    _early_data: list[dict[str, Any]] = field(default_factory=list, init=False)
    _pending_close: CloseTransport | None = field(default=None, init=False)

    # ------------------------------------------------------------ public inputs

    @property
    def next_deadline(self) -> float | None:
        """Monotonic time at which `tick()` has work to do, or None."""
        return self._deadline

    @property
    def timer(self) -> Timer | None:
        return self._timer

    @property
    def is_complete(self) -> bool:
        return self.state is State.DATA

    @property
    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    def start(self) -> list[Effect]:
        """The WebSocket is open: the client sends CMI init, both wait for the peer's."""
        if self.state is not State.IDLE:
            raise LocalProtocolError("SHIP state machine started twice")
        if self.role is Role.CLIENT:
            self._send(CmiInit())
        self._enter(State.CMI_WAIT, Timer.CMI, self.timeouts.cmi)
        return self._flush()

    def receive_frame(self, frame: bytes) -> list[Effect]:
        """One WebSocket binary message from the peer."""
        if self.state in (State.CLOSING, State.CLOSED, State.IDLE):
            return []
        try:
            msg = codec.decode(frame)
        except ShipCodecError as exc:
            self._violation(str(exc))
            return self._flush()
        return self._dispatch(input_kind(msg), msg)

    def receive_invalid(self, reason: str) -> list[Effect]:
        """The transport saw something that is not a SHIP message (text frame, broken fragment)."""
        if self.state not in (State.CLOSING, State.CLOSED, State.IDLE):
            self._violation(reason)
        return self._flush()

    def tick(self) -> list[Effect]:
        """Fire the timer if its deadline has passed on the injected clock."""
        if self._deadline is None or self.clock.monotonic() < self._deadline:
            return []
        self._deadline = None
        return self._dispatch("timer", self._timer)

    def grant_trust(self) -> list[Effect]:
        """The user (trust store, pairing accept) trusts the peer now."""
        self.trust = TrustDecision.TRUSTED
        if self.state is State.HELLO_PENDING:
            self._send(Hello("ready", self._ms(self.timeouts.hello_init)))
            if self._peer_ready:
                self._hello_ok()
            else:
                self._enter(State.HELLO_READY, Timer.HELLO_WAIT, self.timeouts.hello_init)
        return self._flush()

    def deny_trust(self, reason: str = "peer not trusted") -> list[Effect]:
        """The user refused the peer (or the pairing window closed) while the hello phase runs."""
        self.trust = TrustDecision.REFUSED
        if self.state in _HELLO_STATES:
            self._hello_abort(reason)
        return self._flush()

    def send_spine(self, payload: dict[str, Any] | bytes) -> list[Effect]:
        """Wrap a SPINE datagram into a SHIP data message; only during data exchange."""
        if self.state is not State.DATA:
            raise LocalProtocolError(f"cannot send SPINE data in SHIP state {self.state.value}")
        return [Send(codec.encode_data(payload))]

    def close(self, reason: str = "close") -> list[Effect]:
        """Close on our initiative, the way SHIP wants it for the current state."""
        if self.state is State.DATA:
            self.close_reason = reason
            self._send(ConnectionClose("announce", self._ms(self.timeouts.close_max_time), reason))
            self._enter(State.CLOSE_ANNOUNCED, Timer.CLOSE_ANNOUNCE, self.timeouts.close_max_time)
        elif self.state in _HELLO_STATES:
            self._hello_abort(reason, violation=False)
        elif self.state not in (State.CLOSE_ANNOUNCED, State.CLOSING, State.CLOSED):
            self._close_now(CLOSE_SHIP, reason)
        return self._flush()

    def drop(self, code: int, reason: str) -> list[Effect]:
        """Close the transport at once with a WebSocket code (double connection, shutdown)."""
        if self.state is not State.CLOSED:
            self._close_now(code, reason)
        return self._flush()

    def connection_lost(self) -> None:
        """The transport is gone; nothing more can be sent."""
        if self.state not in (State.CLOSED, State.CLOSING) and self.close_reason is None:
            self.close_reason = f"connection lost in state {self.state.value}"
        self.state = State.CLOSED
        self._deadline = self._timer = None

    # ------------------------------------------------------------ machinery

    def _dispatch(self, kind: str, arg: Any) -> list[Effect]:
        if self.state in (State.CLOSED, State.IDLE):
            return []
        if self.state is State.CLOSING:
            if kind == "timer":
                self._on_close_delay(arg)
            return self._flush()
        handler = _TRANSITIONS.get((self.state, kind))
        if handler is None and kind == "close_announce":
            handler = ShipStateMachine._on_close_announce
        if handler is None:
            self._violation(f"unexpected {kind} in state {self.state.value}")
        else:
            handler(self, arg)
        return self._flush()

    def _flush(self) -> list[Effect]:
        out, self._out = self._out, []
        return out

    def _send(self, msg: ShipMessage) -> None:
        self._out.append(Send(codec.encode(msg)))

    def _enter(self, state: State, timer: Timer | None = None, seconds: float = 0.0) -> None:
        self.state = state
        self._set_timer(timer, seconds)

    def _set_timer(self, timer: Timer | None, seconds: float) -> None:
        self._timer = timer
        self._deadline = None if timer is None else self.clock.monotonic() + max(0.0, seconds)

    @staticmethod
    def _ms(seconds: float) -> int:
        return round(seconds * 1000)

    def _close_now(self, code: int, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._out.append(CloseTransport(code, reason))
        self._enter(State.CLOSED)

    def _close_later(self, code: int, reason: str, delay: float) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._pending_close = CloseTransport(code, reason)
        self._enter(State.CLOSING, Timer.CLOSE_DELAY, delay)

    def _fail(self, reason: str) -> None:
        self.error = reason
        self._close_now(CLOSE_SHIP, reason)

    def _violation(self, reason: str) -> None:
        """Bad or out-of-order input: end the connection as SHIP prescribes for this state."""
        if self.state in _HELLO_STATES:
            self._hello_abort(reason)
        elif self.state in _PROT_STATES:
            self._prot_fail(codec.PROT_ERR_UNEXPECTED, reason)
        elif self.state is State.DATA:
            self.error = reason
            self.close_reason = reason
            self._send(ConnectionClose("announce", self._ms(self.timeouts.close_max_time), "unspecific"))
            self._enter(State.CLOSE_ANNOUNCED, Timer.CLOSE_ANNOUNCE, self.timeouts.close_max_time)
        elif self.state is State.CLOSE_ANNOUNCED:
            pass  # already leaving; ignore stragglers
        else:
            self._fail(reason)

    # ------------------------------------------------------------ CMI

    def _on_cmi(self, _msg: CmiInit) -> None:
        if self.role is Role.SERVER:
            self._send(CmiInit())
        self._start_hello()

    def _on_cmi_timeout(self, _timer: Timer) -> None:
        self._fail("timeout waiting for CMI init")

    # ------------------------------------------------------------ hello

    def _start_hello(self) -> None:
        if self.trust is TrustDecision.TRUSTED:
            self._send(Hello("ready", self._ms(self.timeouts.hello_init)))
            self._enter(State.HELLO_READY, Timer.HELLO_WAIT, self.timeouts.hello_init)
        elif self.trust is TrustDecision.PENDING:
            self._send(Hello("pending", self._ms(self.timeouts.hello_init)))
            self._enter(State.HELLO_PENDING, Timer.HELLO_WAIT, self.timeouts.hello_init)
            self._out.append(AwaitingTrust())
        else:
            self.state = State.HELLO_PENDING  # so that _hello_abort applies
            self._hello_abort("peer not trusted", violation=False)

    def _hello_abort(self, reason: str, *, violation: bool = True) -> None:
        if violation:
            self.error = reason
        self._send(Hello("aborted"))
        self._close_later(CLOSE_REJECTED, reason, self.timeouts.abort_close_delay)

    def _remote_abort(self) -> None:
        self.error = "peer aborted the hello phase"
        self._close_later(CLOSE_REJECTED, self.error, self.timeouts.abort_close_delay)

    def _on_hello_ready_listen(self, msg: Hello) -> None:
        if msg.phase == "ready":
            self._hello_ok()
        elif msg.phase == "aborted":
            self._remote_abort()
        elif msg.prolongation_request:
            self._send(Hello("ready", self._ms(self.timeouts.hello_inc)))
            self._set_timer(Timer.HELLO_WAIT, self.timeouts.hello_inc)
        # pending without prolongation request: keep waiting (ship-go)

    def _on_hello_pending_listen(self, msg: Hello) -> None:
        if msg.phase == "aborted":
            self._remote_abort()
            return
        if msg.phase == "pending" and msg.prolongation_request:
            self._send(Hello("pending", self._ms(self.timeouts.hello_init)))
            return
        if msg.phase == "ready":
            self._peer_ready = True
        if msg.waiting_ms is None:
            return
        waiting = msg.waiting_ms / 1000.0
        if waiting < self.timeouts.prolong_min:
            self._hello_abort(f"peer waiting time {msg.waiting_ms} ms is below the minimum")
            return
        self._peer_waiting_s = waiting
        threshold = self.timeouts.prolong_threshold
        self._set_timer(Timer.PROLONG_SEND, waiting - threshold if waiting >= threshold else waiting / 2)

    def _on_hello_ready_timeout(self, _timer: Timer) -> None:
        self._hello_abort("timeout waiting for the peer's hello ready")

    def _on_hello_pending_timeout(self, timer: Timer) -> None:
        if timer is Timer.PROLONG_REPLY:
            self._hello_abort("no answer to our prolongation request")
        elif not self.allow_waiting:
            self._hello_abort("trust was not granted in time", violation=False)
        else:
            self._send(Hello("pending", prolongation_request=True))
            reply = self._peer_waiting_s if self._peer_waiting_s is not None else self.timeouts.prolong_reply_default
            self._set_timer(Timer.PROLONG_REPLY, reply)

    def _hello_ok(self) -> None:
        if self.role is Role.CLIENT:
            self._send(ProtocolHandshake("announceMax", 1, 0, (codec.FORMAT_JSON_UTF8,)))
            self._enter(State.PROT_CLIENT_WAIT_SELECT, Timer.PROT, self.timeouts.prot)
        else:
            self._enter(State.PROT_SERVER_WAIT_ANNOUNCE, Timer.PROT, self.timeouts.prot)

    # ------------------------------------------------------------ protocol handshake

    def _prot_fail(self, error: int, reason: str) -> None:
        self._send(ProtocolHandshakeError(error))
        self._fail(reason)

    def _on_select_at_client(self, msg: ProtocolHandshake) -> None:
        if msg.handshake_type != "select":
            self._prot_fail(codec.PROT_ERR_UNEXPECTED, "expected the server's select")
        elif msg != _SELECTION:
            self._prot_fail(codec.PROT_ERR_SELECTION_MISMATCH, f"unsupported selection {msg}")
        else:
            self._send(_SELECTION)
            self._start_pin()

    def _on_announce_at_server(self, msg: ProtocolHandshake) -> None:
        if msg.handshake_type != "announceMax":
            self._prot_fail(codec.PROT_ERR_UNEXPECTED, "expected the client's announceMax")
        elif msg.major < 1 or codec.FORMAT_JSON_UTF8 not in msg.formats:
            self._prot_fail(codec.PROT_ERR_SELECTION_MISMATCH, f"no common version/format in {msg}")
        else:
            self._send(_SELECTION)
            self._enter(State.PROT_SERVER_WAIT_CONFIRM, Timer.PROT, self.timeouts.prot)

    def _on_confirm_at_server(self, msg: ProtocolHandshake) -> None:
        if msg.handshake_type != "select":
            self._prot_fail(codec.PROT_ERR_UNEXPECTED, "expected the client's select confirmation")
        elif msg != _SELECTION:
            self._prot_fail(codec.PROT_ERR_SELECTION_MISMATCH, f"client confirmed another selection {msg}")
        else:
            self._start_pin()

    def _on_prot_error(self, msg: ProtocolHandshakeError) -> None:
        self._fail(f"peer reported protocol handshake error {msg.error}")

    def _on_prot_timeout(self, _timer: Timer) -> None:
        self._prot_fail(codec.PROT_ERR_TIMEOUT, "timeout in the protocol handshake")

    def _on_late_hello(self, msg: Hello) -> None:
        if msg.phase == "aborted":
            self._remote_abort()
        # a late ready/pending (answer to an earlier prolongation request) is harmless

    # ------------------------------------------------------------ PIN and access methods

    def _start_pin(self) -> None:
        self._send(PinState("none"))
        self._enter(State.PIN_WAIT, Timer.PIN, self.timeouts.pin)

    def _on_pin(self, msg: PinState) -> None:
        if msg.pin_state != "none":
            self._fail(f"peer PIN state {msg.pin_state!r} is not supported (only 'none')")
            return
        self._send(AccessMethodsRequest())
        self._enter(State.ACCESS, Timer.ACCESS, self.timeouts.access)

    def _on_pin_timeout(self, _timer: Timer) -> None:
        self._fail("timeout waiting for the peer's PIN state")

    def _on_access_request(self, _msg: AccessMethodsRequest) -> None:
        self._send(AccessMethods(self.local_ship_id))

    def _on_access(self, msg: AccessMethods) -> None:
        if self.expected_peer_ship_id is not None and msg.ship_id != self.expected_peer_ship_id:
            self._fail(f"SHIP id mismatch: expected {self.expected_peer_ship_id!r}, got {msg.ship_id!r}")
            return
        self.peer_ship_id = msg.ship_id
        self._enter(State.DATA)
        self._out.append(Completed(msg.ship_id))
        early, self._early_data = self._early_data, []
        self._out.extend(SpineReceived(datagram) for datagram in early)

    def _on_access_timeout(self, _timer: Timer) -> None:
        self._fail("timeout waiting for the peer's access methods")

    def _on_early_data(self, msg: Data) -> None:
        if len(self._early_data) >= MAX_EARLY_DATA:
            self._fail("too many data messages before the access-methods exchange finished")
        else:
            self._early_data.append(msg.payload)

    # ------------------------------------------------------------ data and close

    def _on_data(self, msg: Data) -> None:
        self._out.append(SpineReceived(msg.payload))

    def _ignore(self, _arg: Any) -> None:
        pass

    def _on_close_announce(self, msg: ConnectionClose) -> None:
        if self.close_reason is None:
            self.close_reason = f"peer closed: {msg.reason or 'no reason'}"
        self._send(ConnectionClose("confirm"))
        self._close_later(CLOSE_SHIP, "close", self.timeouts.close_confirm_delay)

    def _on_close_confirm(self, _msg: ConnectionClose) -> None:
        self._close_now(CLOSE_SHIP, "close")

    def _on_close_announce_timeout(self, _timer: Timer) -> None:
        self._close_now(CLOSE_SHIP, "close")

    def _on_close_delay(self, _timer: Timer) -> None:
        pending = self._pending_close or CloseTransport(CLOSE_SHIP, "close")
        self._pending_close = None
        self._out.append(pending)
        self._enter(State.CLOSED)


_Handler = Callable[[ShipStateMachine, Any], None]
M = ShipStateMachine

# The whole protocol in one table: (state, input kind) -> handler.  Missing pairs are violations.
_TRANSITIONS: Final[dict[tuple[State, str], _Handler]] = {
    (State.CMI_WAIT, "cmi"): M._on_cmi,
    (State.CMI_WAIT, "timer"): M._on_cmi_timeout,
    (State.HELLO_READY, "hello"): M._on_hello_ready_listen,
    (State.HELLO_READY, "timer"): M._on_hello_ready_timeout,
    (State.HELLO_PENDING, "hello"): M._on_hello_pending_listen,
    (State.HELLO_PENDING, "timer"): M._on_hello_pending_timeout,
    (State.PROT_CLIENT_WAIT_SELECT, "prot"): M._on_select_at_client,
    (State.PROT_SERVER_WAIT_ANNOUNCE, "prot"): M._on_announce_at_server,
    (State.PROT_SERVER_WAIT_CONFIRM, "prot"): M._on_confirm_at_server,
    **{(s, "prot_error"): M._on_prot_error for s in _PROT_STATES},
    **{(s, "hello"): M._on_late_hello for s in _PROT_STATES},
    **{(s, "timer"): M._on_prot_timeout for s in _PROT_STATES},
    (State.PIN_WAIT, "pin"): M._on_pin,
    (State.PIN_WAIT, "access_request"): M._on_access_request,
    (State.PIN_WAIT, "timer"): M._on_pin_timeout,
    (State.ACCESS, "access_request"): M._on_access_request,
    (State.ACCESS, "access"): M._on_access,
    (State.ACCESS, "data"): M._on_early_data,
    (State.ACCESS, "timer"): M._on_access_timeout,
    (State.DATA, "data"): M._on_data,
    (State.DATA, "access_request"): M._on_access_request,
    (State.DATA, "access"): M._ignore,
    (State.CLOSE_ANNOUNCED, "close_confirm"): M._on_close_confirm,
    (State.CLOSE_ANNOUNCED, "data"): M._ignore,
    (State.CLOSE_ANNOUNCED, "timer"): M._on_close_announce_timeout,
}
del M
