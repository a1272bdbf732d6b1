"""Charger logic without sockets: meter verification timers on a FakeClock, session state from handlers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.ocpp import rpc
from adapters.ocpp.charger import OcppCharger
from adapters.ocpp.options import OcppOptions, ServerOptions
from adapters.ocpp.profiles import LimitValue
from adapters.ocpp.session import ChargePointSession
from adapters.ocpp.translate import MeterReading
from adapters.ocpp.vendor import GENERIC
from bridge.clock import FakeClock
from bridge.model import ChargingState


class Hub:
    def __init__(self, session: ChargePointSession | None) -> None:
        self.s = session

    def session(self, cp_id: str) -> ChargePointSession | None:
        return self.s


def reading(amps: float) -> MeterReading:
    return MeterReading(current_a=[amps, amps, amps])


def test_meter_check_waits_for_grace_then_reapplies_then_degrades(fake_clock: FakeClock) -> None:
    vendor = GENERIC.model_copy(
        update={"verify": GENERIC.verify.model_copy(update={"meter_grace_s": 15, "retries": 1})}
    )
    charger = OcppCharger("c1", OcppOptions(charge_point_id="CP1"), vendor, Hub(None), fake_clock)
    charger.applied = LimitValue("A", 10.0, 3)
    charger._applied_at = fake_clock.monotonic()
    charger.on_meter(reading(16))
    assert not charger._needs_reapply  # the EV gets the grace time to follow
    fake_clock.advance(15)
    charger.on_meter(reading(10.8))
    assert not charger._needs_reapply  # within tolerance
    charger.on_meter(reading(16))
    assert charger._needs_reapply and charger.degraded is None
    charger.on_meter(reading(16))
    assert charger.degraded is not None and "16.0 A > 10.0 A" in charger.degraded


@pytest.mark.anyio
async def test_session_handlers_track_transaction_and_identification(fake_clock: FakeClock) -> None:
    session = ChargePointSession("CP1", "2.0.1", fake_clock, ServerOptions(), dict, tuple)
    ts = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    base = {"timestamp": ts, "seqNo": 1, "evse": {"id": 1, "connectorId": 1}}
    mv = [{"timestamp": ts, "sampledValue": [{"value": 1000, "measurand": "Energy.Active.Import.Register"}]}]
    started = {
        **base,
        "eventType": "Started",
        "triggerReason": "Authorized",
        "transactionInfo": {"transactionId": "t1", "chargingState": "Charging"},
        "idToken": {"idToken": "abcd", "type": "ISO14443"},
        "meterValue": mv,
    }
    reply = await session.on_call(rpc.IncomingCall("1", "TransactionEvent", started))
    assert reply == {"idTokenInfo": {"status": "Accepted"}}
    state = session.connector(1)
    assert state.charging_state is ChargingState.CHARGING and state.ev_connected
    assert state.session is not None and state.session.identifications[0].value == "ABCD"
    mv2 = [{"timestamp": ts, "sampledValue": [{"value": 3500, "measurand": "Energy.Active.Import.Register"}]}]
    ended = {
        **base,
        "eventType": "Ended",
        "triggerReason": "EVDeparted",
        "transactionInfo": {"transactionId": "t1"},
        "meterValue": mv2,
    }
    await session.on_call(rpc.IncomingCall("2", "TransactionEvent", ended))
    assert state.session.energy_wh == 2500 and state.session.ended_at is not None
    notify = {
        "generatedAt": ts,
        "seqNo": 0,
        "tbc": False,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": ts,
                "trigger": "Delta",
                "actualValue": "Available",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    }
    await session.on_call(rpc.IncomingCall("3", "NotifyEvent", notify))
    assert state.ev_connected is False
    with pytest.raises(NotImplementedError):
        await session.on_call(rpc.IncomingCall("4", "CostUpdated", {}))
