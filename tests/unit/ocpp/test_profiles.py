"""Pure profile arithmetic: rounding down, payloads that pass the official schemas, clamping, composites."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.ocpp import profiles, rpc
from adapters.ocpp.profiles import LimitValue, command_limit
from adapters.ocpp.vendor import Purpose

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"current_a": 10.37}, LimitValue("A", 10.3, 3)),
        ({"current_a": 10.0}, LimitValue("A", 10.0, 3)),
        ({"current_a": 5.99}, LimitValue("A", 0.0, 3)),  # below the minimum: pause, never round up to 6
        ({"current_a": 16.0, "pause": True}, LimitValue("A", 0.0, 3)),
        ({"current_a": 10.0, "unit": "W"}, LimitValue("W", 6900.0, 3)),
        ({"current_a": 32.0, "power_w": 5000.0, "unit": "W"}, LimitValue("W", 5000.0, 3)),
        ({"current_a": 0.0, "power_w": 4600.0, "unit": "A", "phases": 1}, LimitValue("A", 20.0, 1)),
        ({"current_a": 16.0, "power_w": 4139.0}, LimitValue("A", 0.0, 3)),
    ],
)
def test_command_limit_rounds_toward_safe_side(kwargs: dict[str, object], expected: LimitValue) -> None:
    args: dict[str, object] = {
        "pause": False,
        "power_w": None,
        "unit": "A",
        "phases": 3,
        "voltage_v": 230.0,
        "min_current_a": 6.0,
    }
    args.update(kwargs)
    got = command_limit(**args)  # type: ignore[arg-type]
    assert got == expected
    if got.limit:
        assert got.as_current(230.0) <= float(kwargs.get("current_a") or 1e9) + 1e-9


def test_floor_never_rounds_up_with_float_noise() -> None:
    assert profiles.floor_to(0.1 + 0.2, 1) == 0.3
    assert profiles.floor_to(6.99999, 1) == 6.9


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("purpose", list(Purpose))
def test_profiles_pass_the_official_schema(version: str, purpose: Purpose) -> None:
    profile = profiles.build_profile(
        version,  # type: ignore[arg-type]
        profile_id=2001,
        purpose=purpose,
        stack_level=3,
        kind="Absolute",
        value=LimitValue("A", 10.3, 3),
        now=NOW,
        valid_to=NOW,
        transaction_id="7" if purpose is Purpose.TX else None,
    )
    payload = profiles.set_profile_payload(version, 1, profile)  # type: ignore[arg-type]
    assert rpc.validate_call(rpc.IncomingCall("x", "SetChargingProfile", payload), version) is None
    schedule = profiles.schedules_of(version, profile)[0]  # type: ignore[arg-type]
    assert schedule["startSchedule"] == "2026-01-01T11:59:00Z"  # in the past: a fast CP clock still applies it
    assert profile["validTo"] == "2026-01-01T12:00:00Z"
    if version == "2.0.1" and purpose is Purpose.CHARGE_POINT_MAX:
        assert profile["chargingProfilePurpose"] == "ChargingStationMaxProfile"


def test_relative_profile_has_no_start_schedule() -> None:
    profile = profiles.build_profile(
        "1.6",
        profile_id=1,
        purpose=Purpose.TX_DEFAULT,
        stack_level=0,
        kind="Relative",
        value=LimitValue("A", 6, 3),
        now=NOW,
    )
    assert "startSchedule" not in profile["chargingSchedule"] and "validTo" not in profile


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_clamp_upstream_profile(version: str) -> None:
    sched = {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000}, {"startPeriod": 60, "limit": 2000}],
    }
    profile = {"stackLevel": 1, "chargingSchedule": sched if version == "1.6" else [sched]}
    out = profiles.clamp_profile(version, profile, 10.0, 230.0)  # type: ignore[arg-type]
    periods = profiles.schedules_of(version, out)[0]["chargingSchedulePeriod"]  # type: ignore[arg-type]
    assert [p["limit"] for p in periods] == [6900.0, 2000]
    assert profiles.schedules_of(version, profile)[0]["chargingSchedulePeriod"][0]["limit"] == 22000  # type: ignore[arg-type]


def test_composite_first_limit() -> None:
    v16 = {
        "status": "Accepted",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 30, "limit": 6}, {"startPeriod": 0, "limit": 10.0}],
        },
    }
    assert profiles.composite_first_limit("1.6", v16) == LimitValue("A", 10.0, 3)
    v201 = {
        "status": "Accepted",
        "schedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 4140, "numberPhases": 1}],
        },
    }
    assert profiles.composite_first_limit("2.0.1", v201) == LimitValue("W", 4140.0, 1)
    assert profiles.composite_first_limit("1.6", {"status": "Rejected"}) is None
