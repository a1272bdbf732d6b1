"""`evbridge ski`, `evbridge trust`, `evbridge pair`: one module per sub-command, shared helpers here.

The state directory comes from `--state-dir`, else from the configuration
(`--config`, else the embedded demo) when `bridge.config` provides one, else
the per-user default.  Changes reach a running bridge through its control
socket (`bridge.eebus.ship.control`); without a running bridge, `trust`
still edits the trust store, which the bridge reads at start.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from bridge.runtime.statestore import default_state_dir


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=None, help="state directory (default: from config)")
    parser.add_argument("--config", type=Path, default=None, help="configuration file (default: embedded demo)")


def load_config(args: argparse.Namespace) -> Any | None:
    """The bridge configuration, or None while `bridge.config` offers no loader."""
    try:
        config_module = importlib.import_module("bridge.config")
    except ImportError:
        return None
    loader = getattr(config_module, "load_config", None)
    if loader is None:
        return None
    path = args.config
    if path is None:
        demo = getattr(config_module, "demo_config_path", None)
        if demo is None:
            return None
        path = demo()
    return loader(path)


def state_dir(args: argparse.Namespace, config: Any | None = None) -> Path:
    if args.state_dir is not None:
        return Path(args.state_dir)
    for holder in (config, getattr(config, "runtime", None), getattr(config, "site", None)):
        candidate = getattr(holder, "state_dir", None) if holder is not None else None
        if candidate:
            return Path(candidate)
    return default_state_dir()


def config_devices(config: Any | None) -> list[str]:
    """Ids of the devices the configuration exposes (one SHIP node per charger by default)."""
    if config is None:
        return []
    chargers = getattr(config, "chargers", None) or []
    return [str(getattr(c, "id", c)) for c in chargers]


def config_trusted_skis(config: Any | None) -> list[str]:
    for holder in (getattr(config, "eebus", None), getattr(config, "ship", None), config):
        skis = getattr(holder, "trusted_skis", None) if holder is not None else None
        if skis:
            return [str(s) for s in skis]
    return []
