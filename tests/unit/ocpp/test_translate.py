"""Meter values, status and boot translation into the canonical model."""

from __future__ import annotations

from adapters.ocpp import translate
from bridge.model import ChargingState


def test_meter_values_16_units_phases_and_bad_values() -> None:
    mv = [
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "sampledValue": [
                {"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                {"value": "7.36", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "10.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                {"value": "10.2", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
                {"value": "", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
                {"value": "231", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                {"value": "3.9", "measurand": "SoC", "unit": "V"},
                {"value": "16", "measurand": "Current.Offered", "unit": "A"},
                {"value": "abc", "measurand": "Power.Offered"},
            ],
        }
    ]
    r = translate.meter_reading("1.6", mv)
    assert r.energy_wh == 12500.0 and r.power_w == 7360.0
    assert r.current_a == [10.1, 10.2, None]
    assert r.voltage_v == [231.0, None, None]
    assert r.soc_pct is None  # SoC in volts (Amperfied) is not a SoC
    assert r.current_offered_a == 16.0 and r.power_offered_w is None
    assert r.max_current_a == 10.2


def test_meter_values_default_measurand_is_energy_wh() -> None:
    r = translate.meter_reading("1.6", [{"sampledValue": [{"value": "1000"}]}])
    assert r.energy_wh == 1000.0


def test_meter_values_201_multiplier_and_soc() -> None:
    mv = [
        {
            "sampledValue": [
                {"value": 12.5, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "kWh"}},
                {"value": 736, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W", "multiplier": 1}},
                {"value": 55, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}},
            ]
        }
    ]
    r = translate.meter_reading("2.0.1", mv)
    assert r.energy_wh == 12500.0 and r.power_w == 7360.0 and r.soc_pct == 55


def test_status_and_boot() -> None:
    s = translate.status_16(
        {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted", "vendorErrorCode": "E7"}
    )
    assert s.charging_state is ChargingState.FAULT and s.error_code == "GroundFailure:E7"
    s = translate.status_16({"connectorId": 1, "errorCode": "NoError", "status": "SuspendedEVSE"})
    assert s.charging_state is ChargingState.SUSPENDED_EVSE and s.ev_connected and s.error_code is None
    assert translate.connector_status_201("Occupied").ev_connected is True
    m = translate.manufacturer_from_boot(
        "2.0.1", {"chargingStation": {"vendorName": "V", "model": "M", "serialNumber": "S"}}
    )
    assert (m.vendor, m.model, m.serial) == ("V", "M", "S")
