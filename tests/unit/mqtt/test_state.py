"""ChargerState: per-point values with ages, staleness, add-on meter, liveness (time passed in, no sleeps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from adapters.mqtt.mapping import load_mapping
from adapters.mqtt.state import ChargerState
from bridge.model import Characteristics, ChargingState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NRG = [230, 230, 230, 0, 10, 10, 10, 2300, 2300, 2300, 0, 6900, 100, 100, 100, 0]


def goe(stale: float = 10.0, meter: str | None = None, meter_vars: dict[str, str] | None = None) -> ChargerState:
    return ChargerState(
        load_mapping("goe"),
        {"base": "go-eCharger", "serial": "1"},
        stale,
        meter=load_mapping(meter) if meter else None,
        meter_variables=meter_vars or {},
    )


def snap(state: ChargerState, now: float):  # type: ignore[no-untyped-def]
    return state.snapshot("wb", T0, now, Characteristics())


def test_topics_and_snapshot() -> None:
    s = goe()
    assert "go-eCharger/1/nrg" in s.topics() and "go-eCharger/1/amp/set" not in s.topics()
    assert s.on_message("go-eCharger/1/car", b"2", 0.0) == []
    s.on_message("go-eCharger/1/nrg", json.dumps(NRG).encode(), 0.0)
    s.on_message("go-eCharger/1/eto", b"12345", 0.0)
    s.on_message("go-eCharger/1/alw", b"true", 0.0)
    s.on_message("go-eCharger/1/amp", b"10", 0.0)
    out = snap(s, 1.0)
    assert out.available and out.charging_state is ChargingState.CHARGING and out.ev_connected is True
    assert out.measurement.power_w == 6900 and out.measurement.energy_wh == 12345
    assert out.measurement.current_per_phase_a == (10, 10, 10) and out.active_phases == 3
    assert out.applied.current_a == 10 and out.applied.enabled is True


def test_malformed_payload_is_reported_and_ages_into_stale() -> None:
    s = goe(stale=5.0)
    s.on_message("go-eCharger/1/nrg", json.dumps(NRG).encode(), 0.0)
    problems = s.on_message("go-eCharger/1/nrg", b"[1, 2", 3.0)
    assert len(problems) >= 1 and "nrg" in problems[0]
    assert s.on_message("go-eCharger/1/car", b'"x"', 4.0)  # not in the enum map
    assert snap(s, 4.9).available
    out = snap(s, 5.1)
    assert not out.available and out.measurement.power_w == 6900  # last value kept, marked stale
    s.on_message("go-eCharger/1/car", b"1", 6.0)
    assert snap(s, 6.0).available and snap(s, 6.0).charging_state is ChargingState.IDLE


def test_status_b_means_suspended_by_evse_or_ev() -> None:
    s = goe()
    s.on_message("go-eCharger/1/car", b"3", 0.0)
    s.on_message("go-eCharger/1/alw", b"false", 0.0)
    assert snap(s, 0).charging_state is ChargingState.SUSPENDED_EVSE
    s.on_message("go-eCharger/1/alw", b"true", 0.0)
    assert snap(s, 0).charging_state is ChargingState.SUSPENDED_EV


def test_addon_meter_wins_for_measurements_and_liveness() -> None:
    s = goe(meter="tasmota-meter", meter_vars={"topic": "plug1"})
    assert "tele/plug1/SENSOR" in s.topics() and "tele/plug1/LWT" in s.topics()
    s.on_message("go-eCharger/1/nrg", json.dumps(NRG).encode(), 0.0)
    s.on_message("tele/plug1/SENSOR", b'{"ENERGY": {"Power": 3500, "Total": 12.5, "Voltage": 231, "Current": 15.2}}', 0)
    out = snap(s, 0.0)
    assert out.measurement.power_w == 3500 and out.measurement.energy_wh == 12500
    s.on_message("tele/plug1/LWT", b"Offline", 1.0)
    assert not snap(s, 1.0).available
    s.on_message("tele/plug1/LWT", b"Online", 2.0)
    assert snap(s, 2.0).available


def test_warp_states() -> None:
    s = ChargerState(load_mapping("warp"), {"prefix": "warp/AbC"}, 30)
    s.on_message("warp/AbC/evse/state", b'{"iec61851_state": 4, "charger_state": 4}', 0)
    assert snap(s, 0).charging_state is ChargingState.FAULT
    s.on_message("warp/AbC/meter/values", b'{"power": 7000, "energy_rel": 1.0, "energy_abs": 1234.5}', 0)
    assert snap(s, 0).measurement.energy_wh == 1234500
