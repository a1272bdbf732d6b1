"""Proxy mode, pure part: what the upstream CSMS wants now, and what of its profiles the charger may get."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.ocpp.upstream import forwardable, wanted_current_a

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def p16(purpose: str, stack: int, limit: float, unit: str = "A", **extra: object) -> dict[str, object]:
    sched = {"chargingRateUnit": unit, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
    return {
        "chargingProfileId": stack,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": sched,
        **extra,
    }


def test_wanted_current_combines_like_a_charge_point() -> None:
    entries = [
        (1, p16("TxDefaultProfile", 1, 20)),
        (1, p16("TxDefaultProfile", 3, 12)),
        (0, p16("ChargePointMaxProfile", 0, 16)),
    ]
    kw = {"tx_active": False, "voltage_v": 230.0, "phases": 3}
    assert wanted_current_a("1.6", entries, 1, NOW, **kw) == 12  # type: ignore[arg-type]
    entries.append((1, p16("TxProfile", 0, 25)))
    assert wanted_current_a("1.6", entries, 1, NOW, **kw) == 12  # type: ignore[arg-type]  # no transaction: TxProfile idle
    assert wanted_current_a("1.6", entries, 1, NOW, **{**kw, "tx_active": True}) == 16  # type: ignore[arg-type]
    assert wanted_current_a("1.6", entries, 2, NOW, **kw) == 16  # type: ignore[arg-type]  # only the station cap
    assert wanted_current_a("1.6", [], 1, NOW, **kw) is None  # type: ignore[arg-type]


def test_wanted_current_validity_and_watts() -> None:
    expired = p16("TxDefaultProfile", 5, 6, validTo="2026-01-01T11:00:00Z")
    watts = p16("TxDefaultProfile", 1, 4140, unit="W")
    kw = {"tx_active": False, "voltage_v": 230.0, "phases": 3}
    assert wanted_current_a("1.6", [(1, expired), (1, watts)], 1, NOW, **kw) == 6.0  # type: ignore[arg-type]


def test_forwardable_keeps_off_bridge_layers_and_expires() -> None:
    common = {
        "obligation_a": 10.0,
        "voltage_v": 230.0,
        "now": NOW,
        "fallback_purpose": "TxDefaultProfile",
        "fallback_stack": 0,
    }
    out = forwardable("1.6", p16("TxDefaultProfile", 0, 32), validity_s=120, control=("TxDefaultProfile", 8), **common)  # type: ignore[arg-type]
    assert out["stackLevel"] == 1 and out["validTo"] == "2026-01-01T12:02:00Z"
    assert out["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10.0  # type: ignore[index]
    out = forwardable("1.6", p16("TxDefaultProfile", 8, 5), validity_s=120, control=("TxDefaultProfile", 8), **common)  # type: ignore[arg-type]
    assert out["stackLevel"] == 7 and out["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 5  # type: ignore[index]
    soon = (NOW + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = forwardable("1.6", p16("TxProfile", 2, 5, validTo=soon), validity_s=120, control=None, **common)  # type: ignore[arg-type]
    assert out["validTo"] == soon and out["stackLevel"] == 2
