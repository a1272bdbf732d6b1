"""Where the config sends state (site.state_dir, then $EVBRIDGE_STATE_DIR, then the per-user dir) and the demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import demo_config_path, load_config_text, resolve_state_dir
from bridge.runtime.statestore import default_state_dir

ONE = "chargers:\n  - id: a\n    adapter: {type: sim}\n"


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVBRIDGE_STATE_DIR", raising=False)
    plain = load_config_text(ONE, "s.yaml").config
    assert resolve_state_dir(plain) == default_state_dir()
    monkeypatch.setenv("EVBRIDGE_STATE_DIR", str(tmp_path / "from-env"))
    assert resolve_state_dir(plain) == tmp_path / "from-env"  # the Docker image sets this
    explicit = load_config_text(f"site: {{state_dir: {tmp_path / 'explicit'}}}\n" + ONE, "s.yaml").config
    assert resolve_state_dir(explicit) == tmp_path / "explicit"


def test_demo_config_is_the_checkout_copy_here() -> None:
    path = demo_config_path()
    assert path.is_file() and path.parent.name == "config" and path.name == "demo.yaml"
