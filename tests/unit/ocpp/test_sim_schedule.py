"""The simulator's profile store: stacking, purposes, validity and composite schedules (OCPP 1.6 §3.13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.sim.ocpp_schedule import Profile, ProfileStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def prof(pid: int, purpose: str, stack: int, limit: float, **kw: object) -> Profile:
    return Profile(
        pid,
        kw.pop("connector", 1),
        stack,
        purpose,
        kw.pop("kind", "Relative"),
        kw.pop("unit", "A"),
        ((0.0, limit, 3),),
        installed_at=T0,
        **kw,
    )  # type: ignore[arg-type]


def test_higher_stack_wins_within_purpose_and_max_caps() -> None:
    store = ProfileStore()
    store.install(prof(1, "TxDefaultProfile", 0, 6))
    store.install(prof(2, "TxDefaultProfile", 3, 20))
    assert store.limit_at(1, T0) == 20
    store.install(prof(3, "ChargePointMaxProfile", 0, 16, connector=0))
    assert store.limit_at(1, T0) == 16  # min(max profile, tx default)


def test_valid_to_expiry_falls_back_to_lower_stack() -> None:
    store = ProfileStore()
    store.install(prof(1, "TxDefaultProfile", 0, 6))
    store.install(prof(2, "TxDefaultProfile", 1, 14, valid_to=T0 + timedelta(seconds=60)))
    assert store.limit_at(1, T0 + timedelta(seconds=59)) == 14
    assert store.limit_at(1, T0 + timedelta(seconds=60)) == 6
    assert store.composite(1, T0, 120) == [(0, 14), (60, 6)]


def test_tx_profile_only_with_transaction_and_replaces_tx_default() -> None:
    store = ProfileStore()
    store.install(prof(1, "TxDefaultProfile", 5, 10))
    store.install(prof(2, "TxProfile", 0, 7))
    assert store.limit_at(1, T0) == 10
    assert store.limit_at(1, T0, tx_id="1", tx_start=T0) == 7
    store.end_transaction(1)
    assert store.limit_at(1, T0, tx_id="1", tx_start=T0) == 10


def test_same_purpose_and_stack_replaces_and_connector_beats_station() -> None:
    store = ProfileStore()
    store.install(prof(1, "TxDefaultProfile", 1, 10, connector=0))
    store.install(prof(2, "TxDefaultProfile", 1, 12))
    assert store.limit_at(1, T0) == 12  # the connector's own profile before connector 0's
    store.install(prof(3, "TxDefaultProfile", 1, 8))
    assert set(store.profiles) == {1, 3}
    assert store.limit_at(2, T0) == 10


def test_absolute_schedule_window_and_watts() -> None:
    store = ProfileStore(voltage_v=230)
    p = Profile(
        1, 1, 0, "TxDefaultProfile", "Absolute", "W", ((0.0, 6900.0, 3), (600.0, 4140.0, 3)), start=T0, duration_s=1200
    )
    store.install(p)
    assert store.limit_at(1, T0 - timedelta(seconds=1)) is None
    assert store.limit_at(1, T0 + timedelta(seconds=10)) == 10
    assert store.limit_at(1, T0 + timedelta(seconds=700)) == 6
    assert store.limit_at(1, T0 + timedelta(seconds=1200)) is None
