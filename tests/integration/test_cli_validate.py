"""`evbridge validate` and `evbridge schema` as the integrator runs them (a real subprocess each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config").glob("*.yaml"))


def evbridge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args], capture_output=True, text=True, timeout=60, cwd=cwd or ROOT
    )


def test_there_are_examples_for_each_kind_of_site() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"demo.yaml", "example-modbus.yaml", "example-ocpp.yaml", "example-group-p14a.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path: Path) -> None:
    proc = evbridge("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"OK: {path}: ") and " chargers (" in proc.stdout
    assert proc.stderr == ""


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    proc = evbridge("schema")
    assert proc.returncode == 0, proc.stderr
    loaded: dict[str, object] = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_matches_the_json_schema(schema: dict[str, object], path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_schema_catches_what_validate_catches(schema: dict[str, object]) -> None:
    """The schema is not a permissive stub: adapter options, secrets and durations are really described."""
    validator = jsonschema.Draft202012Validator(schema)
    good = {
        "lpc": {"failsafe_duration": "PT3H"},
        "chargers": [{"id": "a", "adapter": {"type": "sim", "phases": 1}}],
        "mqtt": {"host": "x", "password": {"env": "PW"}},
    }
    assert list(validator.iter_errors(good)) == []
    bad_option = {"chargers": [{"id": "a", "adapter": {"type": "sim", "phasez": 1}}]}
    bad_kind = {"chargers": [{"id": "a", "adapter": {"type": "zigbee"}}]}
    no_kind = {"chargers": [{"id": "a", "adapter": {"phases": 1}}]}
    bad_secret = {
        "chargers": [{"id": "a", "adapter": {"type": "sim"}}],
        "mqtt": {"host": "x", "password": {"vault": 1}},
    }
    bad_id = {"chargers": [{"id": "Upper", "adapter": {"type": "sim"}}]}
    for doc in (bad_option, bad_kind, no_kind, bad_secret, bad_id):
        assert list(validator.iter_errors(doc)), doc
    # every $ref resolves inside the document
    refs = {r for r in json.dumps(schema).split('"$ref": "')[1:]}
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    for ref in refs:
        assert ref.split('"')[0].removeprefix("#/$defs/") in defs


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "missing.yaml: file not found"),
        ("directory", "cannot read"),
        ("binary", "not UTF-8"),
        ("typo", "bad.yaml:2:3: site.nominal_voltag: unknown key 'nominal_voltag'; did you mean 'nominal_voltage_v'?"),
        ("yaml", "bad.yaml:3:1: YAML syntax error"),
    ],
)
def test_bad_files_are_one_line_and_exit_2(tmp_path: Path, setup: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    if setup == "missing":
        path = tmp_path / "missing.yaml"
    elif setup == "directory":
        path.mkdir()
    elif setup == "binary":
        path.write_bytes(b"\xff\xfe\x00chargers")
    elif setup == "typo":
        path.write_text("site:\n  nominal_voltag: 230\nchargers:\n  - {id: a, adapter: {type: sim}}\n")
    else:
        path.write_text("chargers:\n  - id: [a\n")
    proc = evbridge("validate", str(path))
    assert proc.returncode == 2
    assert expected in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""
