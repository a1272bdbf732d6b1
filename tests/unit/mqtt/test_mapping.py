"""MQTT mapping files: the bundled ones load, wrong ones fail with file:line:col and the field path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.mqtt.mapping import available_mappings, load_mapping, mapping_schema
from bridge.errors import MappingError

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
vendor: X
model: Y
required_variables: [serial]
points:
  - {name: power_w, topic: "x/{serial}/p", unit: W}
  - {name: set_current, access: w, topic: "x/{serial}/amp/set", template: "{value_int}"}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return str(path)


def test_bundled_mappings_load() -> None:
    names = available_mappings()
    assert {"goe", "warp", "openevse", "openwb-mqtt-chargepoint", "shelly-gen2-switch", "tasmota-meter"} <= set(names)
    for name in names:
        mapping = load_mapping(name)
        assert mapping.points


def test_schema_file_is_current() -> None:
    on_disk = json.loads((ROOT / "mappings" / "mqtt.schema.json").read_text())
    assert on_disk == json.loads(json.dumps(mapping_schema())), "regenerate mappings/mqtt.schema.json"


def test_good_file(tmp_path: Path) -> None:
    assert load_mapping(write(tmp_path, GOOD)).vendor == "X"


@pytest.mark.parametrize(
    ("edit", "line", "field", "words"),
    [
        (('path: "$"', 'path: "$..x"'), 5, "points[0].path", "JSON path"),
        (("unit: W}", 'unit: W, parse: raw, path: "$.a"}'), 5, "points[0]", "path needs parse: json"),
        (("x/{serial}/p", "x/{serail}/p"), 5, "points[0].topic", "unknown placeholder {serail}"),
        (("{value_int}", "{valu}"), 6, "points[1].template", "unknown placeholder {valu}"),
        (("access: w, ", ""), 6, "points[1]", "access: w"),
        (("name: power_w", "name: power"), 5, "points[0].name", "Input should be"),
        (("unit: W}", "unit: W, scale: 0}"), 5, "points[0].scale", "must not be 0"),
    ],
)
def test_errors_point_at_line_and_field(
    tmp_path: Path, edit: tuple[str, str], line: int, field: str, words: str
) -> None:
    text = GOOD.replace("unit: W}", 'unit: W, path: "$"}', 1) if edit[0] == 'path: "$"' else GOOD
    assert edit[0] in text
    with pytest.raises(MappingError) as info:
        load_mapping(write(tmp_path, text.replace(edit[0], edit[1], 1)))
    err = info.value
    assert err.location.startswith(str(tmp_path / "m.yaml") + f":{line}:"), err.location
    assert err.field == field
    assert words in str(err)


def test_unknown_mapping_suggests() -> None:
    with pytest.raises(MappingError, match="did you mean 'goe'"):
        load_mapping("goe2")


def test_duplicate_and_missing_command(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="defined twice"):
        load_mapping(write(tmp_path, GOOD + '  - {name: power_w, topic: "y"}\n'))
    no_cmd = GOOD.replace(
        '  - {name: set_current, access: w, topic: "x/{serial}/amp/set", template: "{value_int}"}\n', ""
    )
    with pytest.raises(MappingError, match="needs a command point"):
        load_mapping(write(tmp_path, no_cmd))
