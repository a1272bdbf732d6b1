"""`evbridge validate FILE` and `evbridge schema`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bridge.config.loader import load_config
from bridge.config.model import BridgeConfig
from bridge.errors import ConfigError
from bridge.ports import AdapterDeps, AdapterRegistry


class Validate:
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="configuration file (YAML)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        try:
            loaded = load_config(args.file)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        cfg = loaded.config
        kinds = sorted({c.adapter["type"] for c in cfg.chargers})
        print(
            f"OK: {args.file}: {len(cfg.chargers)} chargers ({', '.join(kinds)}), {len(cfg.groups)} groups, "
            f"EEBus {'on' if cfg.eebus.enabled else 'off'} ({cfg.eebus.mode})"
        )
        return 0


class Schema:
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--indent", type=int, default=2)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        print(json.dumps(config_schema(), indent=args.indent))
        return 0


def config_schema(registry: AdapterRegistry | None = None) -> dict[str, Any]:
    """JSON Schema of the config file, with each installed adapter's options as a `oneOf` branch."""
    from bridge.clock import SystemClock

    schema = BridgeConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "evbridge configuration"
    registry = registry or AdapterRegistry()
    deps = AdapterDeps(clock=SystemClock(), state_dir=Path("."))
    branches = []
    for kind in registry.kinds():
        model = getattr(registry.factory(kind, deps), "options_model", None)
        if model is not None:
            branches.append(_adapter_branch(kind, model.model_json_schema(), schema["$defs"]))
    if branches:
        schema["$defs"]["ChargerConfig"]["properties"]["adapter"] = {"oneOf": branches}
    return schema


def _adapter_branch(kind: str, branch: dict[str, Any], root_defs: dict[str, Any]) -> dict[str, Any]:
    """One adapter's options schema, its `$defs` moved to the root (refs are resolved from there).

    Definitions are renamed `<kind>.<Name>` so two adapters' `TlsOptions` cannot clash; `type`
    becomes required, so exactly one branch matches a block.
    """
    local = branch.pop("$defs", {})
    renames = {f"#/$defs/{name}": f"#/$defs/{kind}.{name}" for name in local}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: renames.get(v, v) if k == "$ref" else rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    for name, definition in local.items():
        root_defs[f"{kind}.{name}"] = rewrite(definition)
    branch = rewrite(branch)
    branch.setdefault("title", f"{kind} adapter")
    branch["required"] = sorted({*branch.get("required", []), "type"})
    return branch


add_arguments = Validate.add_arguments
run = Validate.run
