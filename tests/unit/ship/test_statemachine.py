"""The SHIP state machine against itself and against scripted peers, on a FakeClock (no sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.clock import FakeClock
from bridge.eebus.ship import codec
from bridge.eebus.ship.codec import (
    AccessMethods,
    AccessMethodsRequest,
    CmiInit,
    ConnectionClose,
    Hello,
    PinState,
    ProtocolHandshake,
    ProtocolHandshakeError,
)
from bridge.eebus.ship.statemachine import (
    CLOSE_REJECTED,
    CLOSE_SHIP,
    AwaitingTrust,
    CloseTransport,
    Completed,
    Effect,
    Role,
    Send,
    ShipStateMachine,
    SpineReceived,
    State,
    TrustDecision,
)
from bridge.errors import LocalProtocolError

T = TrustDecision.TRUSTED
SELECT = ProtocolHandshake("select", 1, 0, ("JSON-UTF8",))
ANNOUNCE = ProtocolHandshake("announceMax", 1, 0, ("JSON-UTF8",))
DATAGRAM = {"datagram": {"header": {"msgCounter": 1}, "payload": {"cmd": [{"resultData": {"errorNumber": 0}}]}}}


def sent(effects: list[Effect]) -> list[Any]:
    return [codec.decode(e.data) for e in effects if isinstance(e, Send)]


def closes(effects: list[Effect]) -> list[CloseTransport]:
    return [e for e in effects if isinstance(e, CloseTransport)]


class Link:
    """Two machines wired back to back; frames are delivered immediately and in order."""

    def __init__(self, clock: FakeClock, client_trust: TrustDecision = T, server_trust: TrustDecision = T) -> None:
        self.clock = clock
        self.c = ShipStateMachine(Role.CLIENT, clock, "client-id", client_trust)
        self.s = ShipStateMachine(Role.SERVER, clock, "server-id", server_trust)
        self.wire: list[tuple[str, Any]] = []
        self.effects: dict[str, list[Effect]] = {"c": [], "s": []}

    def _name(self, sm: ShipStateMachine) -> str:
        return "c" if sm is self.c else "s"

    def pump(self, src: ShipStateMachine, effects: list[Effect]) -> None:
        queue = [(src, effects)]
        while queue:
            sender, effs = queue.pop(0)
            peer = self.s if sender is self.c else self.c
            for effect in effs:
                if isinstance(effect, Send):
                    self.wire.append((self._name(sender), codec.decode(effect.data)))
                    queue.append((peer, peer.receive_frame(effect.data)))
                else:
                    self.effects[self._name(sender)].append(effect)

    def start(self) -> None:
        self.pump(self.s, self.s.start())
        self.pump(self.c, self.c.start())

    def run_for(self, seconds: float, step: float = 0.25) -> None:
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            self.pump(self.c, self.c.tick())
            self.pump(self.s, self.s.tick())


def test_full_handshake_message_sequence(fake_clock: FakeClock) -> None:
    link = Link(fake_clock)
    link.start()
    assert link.c.state is State.DATA and link.s.state is State.DATA
    assert link.c.peer_ship_id == "server-id" and link.s.peer_ship_id == "client-id"
    assert Completed("server-id") in link.effects["c"] and Completed("client-id") in link.effects["s"]
    client_msgs = [m for who, m in link.wire if who == "c"]
    server_msgs = [m for who, m in link.wire if who == "s"]
    assert client_msgs == [
        CmiInit(),
        Hello("ready", 60000),
        ANNOUNCE,
        SELECT,
        PinState("none"),
        AccessMethodsRequest(),
        AccessMethods("client-id"),
    ]
    assert server_msgs == [
        CmiInit(),
        Hello("ready", 60000),
        SELECT,
        PinState("none"),
        AccessMethodsRequest(),
        AccessMethods("server-id"),
    ]
    assert link.c.next_deadline is None and link.s.next_deadline is None


def test_data_both_ways(fake_clock: FakeClock) -> None:
    link = Link(fake_clock)
    link.start()
    link.pump(link.c, link.c.send_spine(DATAGRAM))
    link.pump(link.s, link.s.send_spine(DATAGRAM))
    assert SpineReceived(DATAGRAM) in link.effects["s"] and SpineReceived(DATAGRAM) in link.effects["c"]


def test_send_spine_before_data_exchange_is_a_local_error(fake_clock: FakeClock) -> None:
    sm = ShipStateMachine(Role.CLIENT, fake_clock, "me", T)
    sm.start()
    with pytest.raises(LocalProtocolError):
        sm.send_spine(DATAGRAM)


def test_cmi_timeout_is_10_s(fake_clock: FakeClock) -> None:
    sm = ShipStateMachine(Role.SERVER, fake_clock, "me", T)
    assert sm.start() == []
    fake_clock.advance(9.9)
    assert sm.tick() == []
    fake_clock.advance(0.1)
    effects = sm.tick()
    assert closes(effects) == [CloseTransport(CLOSE_SHIP, "timeout waiting for CMI init")]
    assert sm.is_closed


def test_wrong_message_in_cmi_closes_with_4001(fake_clock: FakeClock) -> None:
    sm = ShipStateMachine(Role.SERVER, fake_clock, "me", T)
    sm.start()
    effects = sm.receive_frame(codec.encode(Hello("ready", 60000)))
    assert closes(effects)[0].code == CLOSE_SHIP and sm.error


def _client_in_hello(clock: FakeClock, trust: TrustDecision = T) -> ShipStateMachine:
    sm = ShipStateMachine(Role.CLIENT, clock, "me", trust)
    sm.start()
    sm.receive_frame(codec.encode(CmiInit()))
    return sm


def test_hello_ready_timeout_aborts_then_closes_4452_after_1_s(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock)
    assert sm.state is State.HELLO_READY
    fake_clock.advance(59.9)
    assert sm.tick() == []
    fake_clock.advance(0.1)
    effects = sm.tick()
    assert sent(effects) == [Hello("aborted")] and closes(effects) == []
    fake_clock.advance(1.0)
    assert closes(sm.tick()) == [CloseTransport(CLOSE_REJECTED, "timeout waiting for the peer's hello ready")]


def test_ready_side_answers_prolongation_request_and_restarts_timer(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock)
    fake_clock.advance(50)
    sm.receive_frame(codec.encode(Hello("pending", 60000)))  # no reply, keep waiting
    effects = sm.receive_frame(codec.encode(Hello("pending", prolongation_request=True)))
    assert sent(effects) == [Hello("ready", 60000)]
    fake_clock.advance(59)
    assert sm.tick() == [] and sm.state is State.HELLO_READY
    fake_clock.advance(1)
    assert sent(sm.tick()) == [Hello("aborted")]


def test_pending_side_prolongs_until_trusted_then_completes(fake_clock: FakeClock) -> None:
    link = Link(fake_clock, server_trust=TrustDecision.PENDING)
    link.start()
    assert AwaitingTrust() in link.effects["s"]
    assert link.s.state is State.HELLO_PENDING and link.c.state is State.HELLO_READY
    link.run_for(200)  # three prolongation rounds: 30 s before each 60 s deadline
    prolongations = [m for who, m in link.wire if who == "s" and m == Hello("pending", prolongation_request=True)]
    assert len(prolongations) >= 5
    assert link.c.state is State.HELLO_READY and link.s.state is State.HELLO_PENDING
    link.pump(link.s, link.s.grant_trust())
    assert link.c.state is State.DATA and link.s.state is State.DATA


def test_pending_side_without_permission_to_wait_aborts(fake_clock: FakeClock) -> None:
    link = Link(fake_clock, server_trust=TrustDecision.PENDING)
    link.s.allow_waiting = False
    link.start()
    link.run_for(29.75)
    assert link.s.state is State.HELLO_PENDING
    link.run_for(0.5)  # 30 s = peer's 60 s minus the 30 s threshold
    assert ("s", Hello("aborted")) in link.wire
    link.run_for(1.0)
    assert CloseTransport(CLOSE_REJECTED, "trust was not granted in time") in link.effects["s"]
    assert CloseTransport(CLOSE_REJECTED, "peer aborted the hello phase") in link.effects["c"]


def test_pending_side_answers_peer_prolongation_request(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock, TrustDecision.PENDING)
    effects = sm.receive_frame(codec.encode(Hello("pending", prolongation_request=True)))
    assert sent(effects) == [Hello("pending", 60000)]


def test_pending_side_aborts_when_prolongation_unanswered(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock, TrustDecision.PENDING)
    sm.receive_frame(codec.encode(Hello("ready", 40000)))
    fake_clock.advance(10)  # 40 s - 30 s
    assert sent(sm.tick()) == [Hello("pending", prolongation_request=True)]
    fake_clock.advance(39.9)
    assert sm.tick() == []
    fake_clock.advance(0.1)  # reply window = the peer's last waiting time
    assert sent(sm.tick()) == [Hello("aborted")]


def test_pending_peer_waiting_below_minimum_aborts(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock, TrustDecision.PENDING)
    assert sent(sm.receive_frame(codec.encode(Hello("ready", 500)))) == [Hello("aborted")]


def test_refused_peer_gets_aborted_and_4452(fake_clock: FakeClock) -> None:
    link = Link(fake_clock, server_trust=TrustDecision.REFUSED)
    link.start()
    assert ("s", Hello("aborted")) in link.wire
    link.run_for(1.0)
    assert CloseTransport(CLOSE_REJECTED, "peer not trusted") in link.effects["s"]
    assert link.s.is_closed and link.c.is_closed


def test_deny_while_pending_aborts(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock, TrustDecision.PENDING)
    assert sent(sm.deny_trust("pairing window closed")) == [Hello("aborted")]


def test_trust_granted_before_peer_ready_waits_in_ready_listen(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock, TrustDecision.PENDING)
    assert sent(sm.grant_trust()) == [Hello("ready", 60000)]
    assert sm.state is State.HELLO_READY
    assert sent(sm.receive_frame(codec.encode(Hello("ready", 60000)))) == [ANNOUNCE]


def _server_in_prot(clock: FakeClock) -> ShipStateMachine:
    sm = ShipStateMachine(Role.SERVER, clock, "me", T)
    sm.start()
    sm.receive_frame(codec.encode(CmiInit()))
    sm.receive_frame(codec.encode(Hello("ready", 60000)))
    assert sm.state is State.PROT_SERVER_WAIT_ANNOUNCE
    return sm


def test_protocol_selection_mismatch_sends_error_3(fake_clock: FakeClock) -> None:
    sm = _server_in_prot(fake_clock)
    effects = sm.receive_frame(codec.encode(ProtocolHandshake("announceMax", 1, 0, ("XML",))))
    assert sent(effects) == [ProtocolHandshakeError(3)]
    assert closes(effects)[0].code == CLOSE_SHIP


def test_protocol_unexpected_message_sends_error_2(fake_clock: FakeClock) -> None:
    sm = _server_in_prot(fake_clock)
    effects = sm.receive_frame(codec.encode(PinState("none")))
    assert sent(effects) == [ProtocolHandshakeError(2)]


def test_protocol_timeout_sends_error_1(fake_clock: FakeClock) -> None:
    sm = _server_in_prot(fake_clock)
    fake_clock.advance(10)
    effects = sm.tick()
    assert sent(effects) == [ProtocolHandshakeError(1)] and closes(effects)


def test_client_refuses_other_selection(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock)
    sm.receive_frame(codec.encode(Hello("ready", 60000)))
    effects = sm.receive_frame(codec.encode(ProtocolHandshake("select", 2, 0, ("JSON-UTF8",))))
    assert sent(effects) == [ProtocolHandshakeError(3)]


def _client_in_pin(clock: FakeClock, **kwargs: Any) -> ShipStateMachine:
    sm = ShipStateMachine(Role.CLIENT, clock, "me", T, **kwargs)
    sm.start()
    for msg in (CmiInit(), Hello("ready", 60000), SELECT):
        sm.receive_frame(codec.encode(msg))
    assert sm.state is State.PIN_WAIT
    return sm


def test_pin_required_is_refused(fake_clock: FakeClock) -> None:
    sm = _client_in_pin(fake_clock)
    effects = sm.receive_frame(codec.encode(PinState("required")))
    assert closes(effects)[0].code == CLOSE_SHIP and "PIN" in (sm.error or "")


def test_ship_id_mismatch_is_refused(fake_clock: FakeClock) -> None:
    sm = _client_in_pin(fake_clock, expected_peer_ship_id="expected")
    sm.receive_frame(codec.encode(PinState("none")))
    effects = sm.receive_frame(codec.encode(AccessMethods("other")))
    assert closes(effects) and "SHIP id mismatch" in (sm.error or "")


def test_early_data_is_buffered_until_access_methods(fake_clock: FakeClock) -> None:
    sm = _client_in_pin(fake_clock)
    sm.receive_frame(codec.encode(PinState("none")))
    assert sm.receive_frame(codec.encode_data(DATAGRAM)) == []
    effects = sm.receive_frame(codec.encode(AccessMethods("peer")))
    assert effects == [Completed("peer"), SpineReceived(DATAGRAM)]


def test_access_timeout(fake_clock: FakeClock) -> None:
    sm = _client_in_pin(fake_clock)
    sm.receive_frame(codec.encode(PinState("none")))
    fake_clock.advance(10)
    assert closes(sm.tick())[0].code == CLOSE_SHIP


def test_wrong_order_in_hello_aborts(fake_clock: FakeClock) -> None:
    sm = _client_in_hello(fake_clock)
    effects = sm.receive_frame(codec.encode_data(DATAGRAM))
    assert sent(effects) == [Hello("aborted")]


def test_close_announce_confirm(fake_clock: FakeClock) -> None:
    link = Link(fake_clock)
    link.start()
    link.pump(link.c, link.c.close("bye"))
    assert ("c", ConnectionClose("announce", 500, "bye")) in link.wire
    assert ("s", ConnectionClose("confirm")) in link.wire
    assert CloseTransport(CLOSE_SHIP, "close") in link.effects["c"]
    assert link.s.state is State.CLOSING
    link.run_for(0.5)
    assert CloseTransport(CLOSE_SHIP, "close") in link.effects["s"]


def test_close_announce_without_confirm_closes_after_max_time(fake_clock: FakeClock) -> None:
    link = Link(fake_clock)
    link.start()
    effects = link.c.close("bye")  # not delivered
    assert sent(effects) == [ConnectionClose("announce", 500, "bye")]
    fake_clock.advance(0.5)
    assert closes(link.c.tick()) == [CloseTransport(CLOSE_SHIP, "close")]


def test_malformed_data_in_data_exchange_announces_close(fake_clock: FakeClock) -> None:
    link = Link(fake_clock)
    link.start()
    effects = link.s.receive_frame(b"\x02{not json")
    assert sent(effects) == [ConnectionClose("announce", 500, "unspecific")]
    assert link.s.error and "JSON" in link.s.error


def test_text_frame_reported_by_transport_is_a_violation(fake_clock: FakeClock) -> None:
    sm = _client_in_pin(fake_clock)
    effects = sm.receive_invalid("text frame (SHIP allows binary only)")
    assert closes(effects)[0].code == CLOSE_SHIP


def test_every_transition_handler_exists() -> None:
    from bridge.eebus.ship import statemachine

    for (state, kind), handler in statemachine._TRANSITIONS.items():
        assert isinstance(state, State) and isinstance(kind, str) and callable(handler)
