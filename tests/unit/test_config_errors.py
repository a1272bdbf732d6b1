"""Config errors the integrator actually makes: each one line, at the right key, saying what was expected."""

from __future__ import annotations

import re

import pytest

from bridge.config import load_config_text
from bridge.errors import ConfigError

ONE = "chargers:\n  - id: a\n    adapter: {type: sim}\n"


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "s.yaml")
    return info.value


def test_typo_in_a_required_top_level_key_is_reported_as_typo_not_as_missing() -> None:
    err = error_of(ONE.replace("chargers:", "chargrs:"))
    assert err.field == "chargrs" and err.location == "s.yaml:1:1"
    assert "did you mean 'chargers'" in str(err)


def test_unknown_mapping_name_points_at_the_mapping_key_in_our_file() -> None:
    err = error_of("chargers:\n  - id: a\n    adapter: {type: modbus, mapping: nope, host: 10.0.0.2}\n")
    assert err.location == "s.yaml:3:29" and err.field == "chargers[0].adapter.mapping"
    assert "unknown Modbus mapping 'nope'" in str(err) and "keba-p30" in str(err)


def test_adapter_error_with_a_field_is_prefixed_with_the_adapter_path() -> None:
    # the Modbus factory raises ConfigError(field="host") when neither host nor serial is given
    err = error_of("chargers:\n  - id: a\n    adapter:\n      type: modbus\n      mapping: keba-p30\n")
    assert err.field == "chargers[0].adapter.host"
    assert err.location == "s.yaml:3:5"  # host is missing: its parent, the adapter block


def test_duplicate_ship_ports_are_refused() -> None:
    text = (
        "chargers:\n  - id: a\n    adapter: {type: sim}\n    eebus: {port: 5000}\n"
        "  - id: b\n    adapter: {type: sim}\n    eebus: {port: 5000}\n"
    )
    err = error_of(text)
    assert err.field == "chargers[1].eebus.port" and err.location == "s.yaml:7:13"
    assert "already given to chargers[0] (a)" in str(err)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("chargers:\n  - id: Garage\n    adapter: {type: sim}\n", "chargers[0].id", "lowercase letters, digits"),
        (ONE + "eebus:\n  connect_to: [hems.local]\n", "eebus.connect_to[0]", "expected host:port"),
        ("site: 5\n" + ONE, "site", "expected a mapping of keys (got 5)"),
        (ONE + "mqtt:\n  host: x\n  password: 1234\n", "mqtt.password", "quote values"),
        ("chargers:\n  a: {type: sim}\n", "chargers", "expected a list"),
    ],
)
def test_messages_say_what_was_expected(text: str, field: str, expected: str) -> None:
    err = error_of(text)
    assert err.field == field and expected in str(err)
    assert re.match(r"s\.yaml:\d+:\d+: ", str(err))


def test_duration_error_mentions_the_value_once() -> None:
    err = error_of("lpc:\n  failsafe_duration: 2h\n" + ONE)
    assert str(err).count("'2h'") == 1 and err.location == "s.yaml:2:3"


def test_integer_keys_are_located_at_their_own_line() -> None:
    err = error_of("site:\n  p14a:\n    gzf:\n      2: 0.8\n      3: lots\n" + ONE)
    assert err.field == "site.p14a.gzf[3]" and err.location == "s.yaml:5:7"


def test_empty_section_means_defaults() -> None:
    cfg = load_config_text("site:\nallocator:\n" + ONE, "s.yaml").config
    assert cfg.site.nominal_voltage_v == 230 and cfg.allocator.rotation_s == 900


def test_steuve_count_is_shorthand_for_standard_device_minimums() -> None:
    cfg = load_config_text("site:\n  p14a: {enabled: true, steuve_count: 3}\n" + ONE, "s.yaml").config
    assert cfg.site.p14a.device_minimums_w == [4200.0, 4200.0, 4200.0]
    err = error_of("site:\n  p14a: {steuve_count: 2, device_minimums_w: [4200]}\n" + ONE)
    assert err.field == "site.p14a" and "disagrees" in str(err)


def test_merge_keys_and_aliases_keep_positions() -> None:
    text = (
        "chargers:\n  - id: a\n    adapter: &base {type: sim, phases: 3}\n"
        "  - id: b\n    adapter:\n      <<: *base\n      phases: x\n"
    )
    err = error_of(text)
    assert err.field == "chargers[1].adapter.phases" and err.location == "s.yaml:7:7"


def test_api_token_secret_resolves_and_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVB_TEST_TOKEN", "s3cret-value")
    text = ONE + "api:\n  enabled: true\n  token: {env: EVB_TEST_TOKEN}\n"
    loaded = load_config_text(text, "s.yaml")
    assert loaded.config.api.token is not None
    assert loaded.config.api.token.get_secret_value() == "s3cret-value"
    for shown in (repr(loaded.config), str(loaded.config), loaded.config.model_dump_json(), str(loaded.config.api)):
        assert "s3cret-value" not in shown


def test_adapter_passwords_never_show_in_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVB_MQTT_PW", "env-mqtt-pw-1")
    text = (
        "chargers:\n"
        "  - id: a\n"
        "    adapter: {type: ocpp, charge_point_id: CP-1, password: ocpp-basic-pw-2}\n"
        "  - id: b\n"
        "    adapter: {type: mqtt, mapping: goe, host: 127.0.0.1, username: u, password: {env: EVB_MQTT_PW},\n"
        "              variables: {serial: '123'}}\n"
    )
    loaded = load_config_text(text, "s.yaml")
    assert loaded.config.chargers[0].adapter["type"] == "ocpp"  # the runtime reads the kind from here
    for shown in (repr(loaded.config), str(loaded.config), loaded.config.model_dump_json()):
        assert "ocpp-basic-pw-2" not in shown and "env-mqtt-pw-1" not in shown and "EVB_MQTT_PW" not in shown
    # the adapters still get the real values
    assert loaded.adapter_options["a"].password == "ocpp-basic-pw-2"  # type: ignore[attr-defined]
    assert loaded.adapter_options["b"].password.get_secret_value() == "env-mqtt-pw-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("lpc: {failsafe_limit_w: .inf}\n" + ONE, "lpc.failsafe_limit_w", "expected a finite number (got inf)"),
        ("site: {p14a: {gzf: {2: .nan}}}\n" + ONE, "site.p14a.gzf[2]", "expected a finite number (got nan)"),
        (ONE.replace("type: sim", "type: sim, max_current_a: .inf"), "chargers[0].adapter.max_current_a", "finite"),
        ("lpc: {failsafe_limit_w: true}\n" + ONE, "lpc.failsafe_limit_w", "not a yes/no value (got True)"),
        ("site: {nominal_voltage_v: yes}\n" + ONE, "site.nominal_voltage_v", "not a yes/no value"),
    ],
)
def test_no_infinite_nan_or_boolean_numbers(text: str, field: str, expected: str) -> None:
    """An infinite failsafe limit is no limit; `yes` must not become 1 W or 1 V."""
    err = error_of(text)
    assert err.field == field and expected in str(err)


def test_booleans_still_work_where_booleans_belong() -> None:
    cfg = load_config_text("site: {p14a: {enabled: yes}}\n" + ONE, "s.yaml").config
    assert cfg.site.p14a.enabled is True
