"""`--log-format json` gives one JSON object per line, with the record's extra fields."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from bridge.logsetup import JsonFormatter


def test_json_formatter_keeps_extra_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "bridge.x",
            "levelname": "INFO",
            "msg": "LPC %s: %s",
            "args": ("garage", "limited"),
            "lpc_device": "garage",
        }
    )
    data = json.loads(JsonFormatter().format(record))
    assert data["msg"] == "LPC garage: limited" and data["lpc_device"] == "garage" and data["level"] == "INFO"
    assert data["ts"].endswith("+00:00")


def test_cli_json_log_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "c.yaml"
    bad.write_text("chargers: []\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "--log-format", "json", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "chargers" in proc.stderr and "Traceback" not in proc.stderr
