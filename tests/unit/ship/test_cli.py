"""`evbridge ski`, `trust`, `pair` against a state directory (no running bridge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge import cli
from bridge.eebus.ship.identity import Identity
from bridge.eebus.ship.trust import TrustStore

SKI = "a3b1c2d3e4f5061728394a5b6c7d8e9f00112233"


def test_ski_prints_a_stable_ski_and_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ski", "garage", "--json", "--state-dir", str(tmp_path)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert cli.main(["ski", "garage", "--json", "--state-dir", str(tmp_path)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert first == again
    assert first["ski"] == Identity.load_or_create(tmp_path, "garage").ski
    assert isinstance(first["port"], int) and first["port"] > 0


def test_trust_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grouped = " ".join(SKI[i : i + 4] for i in range(0, 40, 4)).upper()
    assert cli.main(["trust", "add", grouped, "--note", "evcc", "--state-dir", str(tmp_path)]) == 0
    assert TrustStore.in_state_dir(tmp_path).is_trusted(SKI)
    capsys.readouterr()
    assert cli.main(["trust", "list", "--state-dir", str(tmp_path)]) == 0
    assert f"{SKI}  state  evcc" in capsys.readouterr().out
    dashed = "-".join(SKI[i : i + 2] for i in range(0, 40, 2))
    assert cli.main(["trust", "remove", dashed, "--state-dir", str(tmp_path)]) == 0
    assert not TrustStore.in_state_dir(tmp_path).is_trusted(SKI)


def test_bad_ski_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trust", "add", "not-a-ski", "--state-dir", str(tmp_path)]) == 2
    assert "not a SKI" in capsys.readouterr().err
    assert cli.main(["pair", "--accept", "12", "--state-dir", str(tmp_path)]) == 2


def test_pair_needs_a_running_bridge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["pair", "--minutes", "5", "--state-dir", str(tmp_path)]) == 1
    assert "no running evbridge" in capsys.readouterr().err
