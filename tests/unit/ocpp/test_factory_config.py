"""Factory configuration rules: one CSMS per bridge, one charger per connector, vendor files checked early."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.ocpp.factory import OcppFactory, make_factory
from bridge.clock import FakeClock
from bridge.errors import ConfigError, MappingError
from bridge.ports import AdapterDeps, AdapterRegistry, WatchdogKind


def factory(tmp_path: Path, **options: object) -> OcppFactory:
    return make_factory(AdapterDeps(clock=FakeClock(), state_dir=tmp_path, options=options))


def test_entry_point_is_registered(tmp_path: Path) -> None:
    assert "ocpp" in AdapterRegistry().kinds()
    assert isinstance(
        AdapterRegistry().factory("ocpp", AdapterDeps(clock=FakeClock(), state_dir=tmp_path)), OcppFactory
    )


def test_server_blocks_must_agree(tmp_path: Path) -> None:
    f = factory(tmp_path)
    f.create("a", f.validate_options({"type": "ocpp", "charge_point_id": "A", "server": {"port": 9100}}))
    f.create("b", f.validate_options({"type": "ocpp", "charge_point_id": "B"}))  # leaving it out is fine
    with pytest.raises(ConfigError, match="same server settings"):
        f.create("c", f.validate_options({"type": "ocpp", "charge_point_id": "C", "server": {"port": 9200}}))


def test_connector_configured_twice(tmp_path: Path) -> None:
    f = factory(tmp_path)
    f.create("a", f.validate_options({"type": "ocpp", "charge_point_id": "A"}))
    with pytest.raises(ConfigError, match="configured twice"):
        f.create("b", f.validate_options({"type": "ocpp", "charge_point_id": "A", "connector_id": 1}))


def test_bad_options_and_unknown_vendor(tmp_path: Path) -> None:
    f = factory(tmp_path)
    with pytest.raises(ValidationError):
        f.validate_options({"type": "ocpp", "charge_point_id": "bad id with spaces"})
    with pytest.raises(ValidationError):
        f.validate_options({"type": "ocpp", "charge_point_id": "A", "proxy": {"upstream_url": "http://x"}})
    with pytest.raises(MappingError):
        f.validate_options({"type": "ocpp", "charge_point_id": "A", "vendor_profile": "nosuch"})


def test_watchdog_capability_follows_the_vendor_file(tmp_path: Path) -> None:
    f = factory(tmp_path)
    generic = f.create("a", f.validate_options({"type": "ocpp", "charge_point_id": "A"}))
    abb = f.create("b", f.validate_options({"type": "ocpp", "charge_point_id": "B", "vendor_profile": "abb-terra-ac"}))
    assert generic.capabilities.watchdog.kind is WatchdogKind.CHARGER
    assert generic.capabilities.watchdog.refresh_s == pytest.approx(40.0)
    assert abb.capabilities.watchdog.kind is WatchdogKind.NONE
