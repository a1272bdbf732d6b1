"""Config loading: precise file:line:column errors, defaults, secrets never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import demo_config_path, load_config, load_config_text
from bridge.config.cli import config_schema
from bridge.errors import ConfigError

GOOD = """\
site:
  name: test
  nominal_voltage_v: 230
lpc:
  failsafe_duration: PT3H
chargers:
  - id: garage
    adapter: {type: sim, phases: 3}
  - id: carport
    adapter: {type: sim, phases: 1, max_current_a: 32}
groups:
  - id: house
    chargers: [garage, carport]
eebus:
  trusted_skis: ["AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"]
"""


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "site.yaml")
    return info.value


def test_good_file_loads_with_defaults_and_normalised_values() -> None:
    loaded = load_config_text(GOOD, "site.yaml")
    cfg = loaded.config
    assert cfg.lpc.failsafe_duration == 3 * 3600
    assert cfg.lpc.failsafe_limit_w == 4200
    assert cfg.eebus.trusted_skis == ["abcdef0123456789abcdef0123456789abcdef01"]
    assert loaded.adapter_options["carport"].max_current_a == 32  # type: ignore[attr-defined]


def test_typo_in_key_names_line_field_and_suggestion() -> None:
    err = error_of(GOOD.replace("nominal_voltage_v", "nominal_voltag"))
    assert err.location == "site.yaml:3:3"
    assert err.field == "site.nominal_voltag"
    assert "did you mean 'nominal_voltage_v'" in str(err)


def test_wrong_type_inside_adapter_block_is_located() -> None:
    err = error_of(GOOD.replace("phases: 1,", "phases: one,"))
    assert err.location.startswith("site.yaml:10:")
    assert err.field == "chargers[1].adapter.phases"


def test_typo_in_adapter_option_suggests_the_right_one() -> None:
    err = error_of(GOOD.replace("max_current_a: 32", "max_curent_a: 32"))
    assert err.field == "chargers[1].adapter.max_curent_a"
    assert "max_current_a" in str(err)


def test_out_of_range_failsafe_duration() -> None:
    err = error_of(GOOD.replace("PT3H", "PT1H"))
    assert err.location == "site.yaml:5:3"
    assert "greater than or equal to 7200" in str(err)


def test_missing_required_key_points_at_parent() -> None:
    err = error_of("chargers:\n  - id: a\n")
    assert err.field == "chargers[0].adapter"
    assert err.location == "site.yaml:2:5"


def test_broken_yaml_gives_line_and_column() -> None:
    err = error_of("chargers:\n  - id: a\n    adapter: {type: sim\n")
    assert err.location.startswith("site.yaml:4:")
    assert "YAML syntax error" in str(err)


def test_duplicate_keys_are_errors() -> None:
    err = error_of("chargers:\n  - id: a\n    id: b\n    adapter: {type: sim}\n")
    assert "duplicate key 'id'" in str(err) and err.location == "site.yaml:3:5"


def test_unknown_adapter_type_lists_known_ones() -> None:
    err = error_of("chargers:\n  - id: a\n    adapter: {type: zigbee}\n")
    assert "unknown adapter type 'zigbee'" in str(err) and "sim" in str(err)
    assert err.location == "site.yaml:3:15"


def test_group_references_and_duplicate_ids() -> None:
    err = error_of(GOOD.replace("[garage, carport]", "[garage, carpot]"))
    assert "did you mean 'carport'" in str(err) and err.field == "groups[0].chargers[1]"
    err = error_of(GOOD.replace("id: carport", "id: garage"))
    assert "already used" in str(err) and err.location == "site.yaml:9:5"


def test_secrets_from_env_and_file_are_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("file-secret-123\n")
    monkeypatch.setenv("EVB_TOKEN", "env-secret-456")
    text = (
        GOOD + f"mqtt:\n  host: 127.0.0.1\n  password: {{file: {secret_file}}}\n  command_token: {{env: EVB_TOKEN}}\n"
    )
    cfg = load_config_text(text, "site.yaml").config
    assert cfg.mqtt is not None and cfg.mqtt.password is not None and cfg.mqtt.command_token is not None
    assert cfg.mqtt.password.get_secret_value() == "file-secret-123"
    assert cfg.mqtt.command_token.get_secret_value() == "env-secret-456"
    for shown in (repr(cfg), str(cfg), cfg.model_dump_json()):
        assert "file-secret-123" not in shown and "env-secret-456" not in shown


def test_missing_secret_env_is_a_located_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVB_NOPE", raising=False)
    err = error_of(GOOD + "mqtt:\n  host: x\n  password: {env: EVB_NOPE}\n")
    assert "EVB_NOPE is not set" in str(err) and err.location == "site.yaml:18:3"


def test_all_example_configs_validate() -> None:
    examples = sorted(Path(__file__).resolve().parents[2].glob("config/*.yaml"))
    assert demo_config_path() in examples
    for path in examples:
        load_config(path)


def test_schema_is_json_schema_with_adapter_options() -> None:
    schema = config_schema()
    assert schema["additionalProperties"] is False
    adapter = schema["$defs"]["ChargerConfig"]["properties"]["adapter"]
    assert any(b.get("title") == "SimOptions" for b in adapter["oneOf"])
    json.dumps(schema)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("site:\n  nominal_voltag: 230\nchargers:\n  - {id: a, adapter: {type: sim}}\n", ":2:3: site.nominal_voltag"),
        ("chargers:\n  - id: a\n    adapter: {type: sim, phases: x}\n", ":3:"),
        ("chargers:\n  - id: a\n   adapter: {}\n", ":3:"),
    ],
)
def test_cli_validate_exit_2_without_traceback(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and str(path) in proc.stderr
