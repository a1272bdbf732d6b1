"""YAML file → validated `BridgeConfig`, or one precise `ConfigError` (file:line:column, field, expectation).

Adapter options are validated by the adapter factory found through the
registry, and their errors are located inside the `adapter:` block exactly
like the core's own.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bridge.clock import SystemClock
from bridge.config.model import BridgeConfig
from bridge.errors import ConfigError
from bridge.ports import AdapterDeps, AdapterRegistry
from bridge.yamlpos import Path_, PositionedDocument, format_path, load_positioned

STATE_DIR_ENV = "EVBRIDGE_STATE_DIR"


class LoadedConfig:
    """The validated config plus each charger's validated adapter options."""

    def __init__(self, config: BridgeConfig, adapter_options: dict[str, BaseModel], source: str) -> None:
        self.config = config
        self.adapter_options = adapter_options
        self.source = source


def demo_config_path() -> Path:
    """`config/demo.yaml` in a source checkout, or the copy inside the installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
    if checkout.is_file():
        return checkout
    packaged = resources.files("bridge") / "_data" / "config" / "demo.yaml"
    return Path(str(packaged))


def load_config(path: Path, registry: AdapterRegistry | None = None) -> LoadedConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", location=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", location=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", location=str(path)) from None
    return load_config_text(text, str(path), registry)


def load_config_text(text: str, source: str, registry: AdapterRegistry | None = None) -> LoadedConfig:
    doc = load_positioned(text, source)
    if not isinstance(doc.data, dict):
        raise ConfigError("the file must be a mapping of sections (site, chargers, …)", location=doc.locate(()))
    try:
        config = BridgeConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise _first_error(exc, doc, BridgeConfig, ()) from None
    _check_references(config, doc)
    _check_simulators(config, doc)
    options = _validate_adapters(config, doc, registry or AdapterRegistry())
    return LoadedConfig(config, options, source)


def resolve_state_dir(config: BridgeConfig) -> Path:
    """site.state_dir, else $EVBRIDGE_STATE_DIR, else the per-user data directory."""
    from bridge.runtime.statestore import default_state_dir

    if config.site.state_dir is not None:
        return config.site.state_dir.expanduser()
    env = os.environ.get(STATE_DIR_ENV)
    return Path(env).expanduser() if env else default_state_dir()


def _validate_adapters(
    config: BridgeConfig, doc: PositionedDocument, registry: AdapterRegistry
) -> dict[str, BaseModel]:
    deps = AdapterDeps(clock=SystemClock(), state_dir=Path(tempfile.gettempdir()))
    factories: dict[str, Any] = {}
    result: dict[str, BaseModel] = {}
    for index, charger in enumerate(config.chargers):
        prefix: Path_ = ("chargers", index, "adapter")
        kind = charger.adapter["type"]
        if kind not in factories:
            try:
                factories[kind] = registry.factory(kind, deps)
            except ConfigError as exc:
                raise ConfigError(
                    str(exc.args[0]), location=doc.locate((*prefix, "type")), field=format_path((*prefix, "type"))
                ) from None
        factory = factories[kind]
        try:
            result[charger.id] = factory.validate_options(charger.adapter)
        except ValidationError as exc:
            model = getattr(factory, "options_model", None)
            raise _first_error(exc, doc, model, prefix) from None
        except ConfigError as exc:
            if not exc.location:
                exc.location = doc.locate(prefix)
                exc.field = exc.field or format_path(prefix)
            raise
    return result


def _check_simulators(config: BridgeConfig, doc: PositionedDocument) -> None:
    from bridge.ports import simulator

    for index, options in enumerate(config.simulators):
        where, field = doc.locate(("simulators", index, "type")), f"simulators[{index}].type"
        if not isinstance(options.get("type"), str):
            raise ConfigError("a simulator needs a 'type'", location=doc.locate(("simulators", index)), field=field)
        try:
            simulator(options["type"])
        except ConfigError as exc:
            raise ConfigError(str(exc.args[0]), location=where, field=field) from None


def _check_references(config: BridgeConfig, doc: PositionedDocument) -> None:
    seen: dict[str, int] = {}
    for index, charger in enumerate(config.chargers):
        if charger.id in seen:
            raise ConfigError(
                f"charger id {charger.id!r} is already used by chargers[{seen[charger.id]}]",
                location=doc.locate(("chargers", index, "id")),
                field=f"chargers[{index}].id",
            )
        seen[charger.id] = index
    owner: dict[str, str] = {}
    for gi, group in enumerate(config.groups):
        if group.id in seen:
            raise ConfigError(
                f"group id {group.id!r} is also a charger id",
                location=doc.locate(("groups", gi, "id")),
                field=f"groups[{gi}].id",
            )
        for mi, member in enumerate(group.chargers):
            where = doc.locate(("groups", gi, "chargers", mi))
            field = f"groups[{gi}].chargers[{mi}]"
            if member not in seen:
                close = difflib.get_close_matches(member, list(seen), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(seen)}"
                raise ConfigError(f"unknown charger {member!r}{hint}", location=where, field=field)
            if member in owner:
                raise ConfigError(
                    f"charger {member!r} is already in group {owner[member]!r}", location=where, field=field
                )
            owner[member] = group.id
    if config.eebus.mode == "group" and not config.groups:
        raise ConfigError(
            "mode 'group' needs at least one entry under groups",
            location=doc.locate(("eebus", "mode")),
            field="eebus.mode",
        )


def _first_error(
    exc: ValidationError, doc: PositionedDocument, model: type[BaseModel] | None, prefix: Path_
) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc: Path_ = (*prefix, *(p for p in err["loc"] if not ((isinstance(p, str) and "[" in p) or p in _UNION_TAGS)))
    field = format_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(model, loc[len(prefix) : -1]) if model else []
        message = f"unknown key {key!r}"
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        if allowed:
            message += f" (allowed: {', '.join(allowed)})"
        return ConfigError(message, location=doc.locate(loc), field=field)
    if kind == "missing":
        return ConfigError(f"required key {loc[-1]!r} is missing", location=doc.locate(loc[:-1]), field=field)
    got = err.get("input")
    got_text = "" if isinstance(got, dict | list) else f" (got {got!r})"
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return ConfigError(f"{message}{got_text}", location=doc.locate(loc), field=field)


_UNION_TAGS = {
    "function-before",
    "function-after",
    "function-wrap",
    "lax-or-strict",
    "json-or-python",
    "str",
    "int",
    "float",
    "bool",
}


def _allowed_keys(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """Field names of the model found at `path` below `model` (for 'did you mean')."""
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            args = get_args(current)
            current = args[0] if args else None
            continue
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    """Optional[X] → X, Annotated[X, …] → X; lists stay lists."""
    while True:
        origin = get_origin(tp)
        args = get_args(tp)
        if origin is None or origin in (list, tuple, dict):
            return tp
        candidates = [a for a in args if a is not type(None)]
        if not candidates:
            return tp
        if any(isinstance(a, type) and issubclass(a, BaseModel) for a in candidates):
            return next(a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel))
        tp = candidates[0]
