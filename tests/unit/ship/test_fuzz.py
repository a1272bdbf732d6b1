"""Property/fuzz tests (bounded examples): the codec and the state machine never crash on bad input."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.clock import FakeClock
from bridge.eebus.ship import codec
from bridge.eebus.ship.codec import ShipCodecError
from bridge.eebus.ship.eebus_json import from_eebus, to_eebus_message
from bridge.eebus.ship.statemachine import CloseTransport, Role, ShipStateMachine, State, TrustDecision

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)

# Plausible SHIP messages, so fuzzing reaches deep states and not only the parser.
valid_messages = st.sampled_from(
    [
        codec.encode(m)
        for m in (
            codec.CmiInit(),
            codec.Hello("ready", 60000),
            codec.Hello("pending", 60000),
            codec.Hello("pending", prolongation_request=True),
            codec.Hello("aborted"),
            codec.ProtocolHandshake("announceMax"),
            codec.ProtocolHandshake("select"),
            codec.ProtocolHandshakeError(2),
            codec.PinState("none"),
            codec.PinState("required"),
            codec.AccessMethodsRequest(),
            codec.AccessMethods("peer"),
            codec.ConnectionClose("announce", 500, "x"),
            codec.ConnectionClose("confirm"),
            codec.Data({"datagram": {"header": {"msgCounter": 1}}}),
        )
    ]
)
random_frames = st.binary(max_size=64) | st.builds(
    lambda t, v: bytes([t]) + json.dumps(v).encode(), st.integers(0, 4), json_values
)


@FUZZ
@given(random_frames)
def test_decode_raises_only_codec_errors(frame: bytes) -> None:
    try:
        codec.decode(frame)
    except ShipCodecError:
        pass


@FUZZ
@given(valid_messages, st.integers(0, 200), st.binary(min_size=1, max_size=3))
def test_mutated_messages_raise_only_codec_errors(frame: bytes, position: int, junk: bytes) -> None:
    position = min(position, len(frame))
    for mutated in (frame[:position], frame[:position] + junk + frame[position:]):
        try:
            codec.decode(mutated)
        except ShipCodecError:
            pass


normal_objects = st.recursive(
    st.booleans() | st.integers(0, 10**6) | st.text(max_size=6),
    lambda children: (
        st.lists(children, min_size=2, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=6), children, min_size=2, max_size=3)
    ),
    max_leaves=12,
)


@FUZZ
@given(st.dictionaries(st.text(min_size=1, max_size=6), normal_objects, min_size=1, max_size=1))
def test_eebus_json_round_trip(message: dict[str, Any]) -> None:
    """Schema-shaped values (objects with ≥2 members, lists of ≥2 items) survive the round trip."""
    assert from_eebus(json.loads(json.dumps(to_eebus_message(message)))) == message


@FUZZ
@given(
    st.sampled_from(list(Role)),
    st.sampled_from(list(TrustDecision)),
    st.lists(st.one_of(valid_messages, random_frames, st.floats(0, 70)), max_size=25),
)
def test_state_machine_survives_any_input(role: Role, trust: TrustDecision, inputs: list[Any]) -> None:
    clock = FakeClock()
    sm = ShipStateMachine(role, clock, "me", trust)
    effects = list(sm.start())
    for item in inputs:
        if isinstance(item, float):
            clock.advance(item)
            effects += sm.tick()
        else:
            effects += sm.receive_frame(item)
    closes = [e for e in effects if isinstance(e, CloseTransport)]
    assert len(closes) <= 1, "the transport is closed at most once"
    if closes:
        assert sm.state is State.CLOSED
    if sm.state is State.CLOSED:
        assert sm.next_deadline is None
