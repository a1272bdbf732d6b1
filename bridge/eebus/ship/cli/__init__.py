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
    """The validated bridge configuration (`--config`, else the embedded demo), or None without a loader."""
    try:
        loader = importlib.import_module("bridge.config.loader")
    except ImportError:
        return None
    path = args.config if args.config is not None else loader.demo_config_path()
    loaded = loader.load_config(Path(path))
    return getattr(loaded, "config", loaded)


def state_dir(args: argparse.Namespace, config: Any | None = None) -> Path:
    """`--state-dir`, else what the configuration says (site.state_dir, $EVBRIDGE_STATE_DIR), else the default."""
    if args.state_dir is not None:
        return Path(args.state_dir)
    if config is not None:
        try:
            loader = importlib.import_module("bridge.config.loader")
            return Path(loader.resolve_state_dir(config))
        except (ImportError, AttributeError):
            pass
    return default_state_dir()


def config_port_base(config: Any | None) -> int:
    from bridge.eebus.ship.identity import DEFAULT_SHIP_PORT

    return int(getattr(getattr(config, "eebus", None), "port_base", DEFAULT_SHIP_PORT))


def config_trusted_skis(config: Any | None) -> list[str]:
    return [str(s) for s in getattr(getattr(config, "eebus", None), "trusted_skis", None) or []]
