"""YAML file → validated `BridgeConfig`, or one precise `ConfigError` (file:line:column, field, expectation).

Adapter options are validated by the adapter factory found through the
registry, and their errors are located inside the `adapter:` block exactly
like the core's own.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from bridge.clock import SystemClock
from bridge.config.model import HOST_PORT_PATTERN, IDENTIFIER_PATTERN, BridgeConfig
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
    _reject_non_finite(doc.data, (), doc)
    try:
        config = BridgeConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise _first_error(exc, doc, BridgeConfig, ()) from None
    _check_references(config, doc)
    _check_simulators(config, doc)
    options = _validate_adapters(config, doc, registry or AdapterRegistry())
    chargers = [c.model_copy(update={"adapter": _redact(c.adapter, options[c.id])}) for c in config.chargers]
    return LoadedConfig(config.model_copy(update={"chargers": chargers}), options, source)


_SECRET_NAMES = re.compile(r"password|passphrase|token|secret|api_?key", re.IGNORECASE)
REDACTED = "**********"


def _redact(raw: dict[str, Any], validated: BaseModel | None) -> dict[str, Any]:
    """The raw adapter block with secrets masked, so repr/dumps of the config never show them.

    The validated options (what the adapter uses) keep the values; a secret is
    a SecretStr field of the adapter's model or a key named like a password/token.
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        typed = getattr(validated, key, None) if isinstance(validated, BaseModel) else None
        if isinstance(typed, SecretStr) or (_SECRET_NAMES.search(str(key)) and value is not None):
            out[key] = REDACTED
        elif isinstance(value, dict):
            out[key] = _redact(value, typed if isinstance(typed, BaseModel) else None)
        elif isinstance(value, list):
            out[key] = [_redact(v, None) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def _reject_non_finite(value: Any, path: Path_, doc: PositionedDocument) -> None:
    """.inf/.nan anywhere (adapter options included): no limit, current or timeout may be infinite or NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"expected a finite number (got {value})", location=doc.locate(path), field=format_path(path))
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_non_finite(item, (*path, key), doc)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_non_finite(item, (*path, index), doc)


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
            raise _relocate(exc, doc, prefix, charger.adapter) from None
    return result


_POSITION = re.compile(r":\d+:\d+$")


def _relocate(exc: ConfigError, doc: PositionedDocument, prefix: Path_, options: dict[str, Any]) -> ConfigError:
    """An adapter's ConfigError → located in our file, unless it already points into another file (a mapping)."""
    if _POSITION.search(exc.location):
        return exc
    path: Path_ = prefix
    if exc.field:
        path = (*prefix, *_parse_field(exc.field))
    elif exc.location:
        # e.g. an unknown mapping name: point at the option that holds it
        key = next((k for k, v in options.items() if k != "type" and v == exc.location), None)
        path = (*prefix, key) if key is not None else prefix
    return ConfigError(str(exc.args[0]), location=doc.locate(path), field=format_path(path))


def _parse_field(field: str) -> Path_:
    """'meter.mapping' / 'points[2].scale' → ('meter', 'mapping') / ('points', 2, 'scale')."""
    out: list[str | int] = []
    for part in field.split("."):
        name, *indexes = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i.rstrip("]")) for i in indexes if i.rstrip("]").isdigit())
    return tuple(out)


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
    ports: dict[int, str] = {}
    for section, items in (("chargers", config.chargers), ("groups", config.groups)):
        for index, item in enumerate(items):
            port = item.eebus.port
            if port is None:
                continue
            if port in ports:
                raise ConfigError(
                    f"SHIP port {port} is already given to {ports[port]}",
                    location=doc.locate((section, index, "eebus", "port")),
                    field=f"{section}[{index}].eebus.port",
                )
            ports[port] = f"{section}[{index}] ({item.id})"
    if config.eebus.mode == "group" and not config.groups:
        raise ConfigError(
            "mode 'group' needs at least one entry under groups",
            location=doc.locate(("eebus", "mode")),
            field="eebus.mode",
        )


def _first_error(
    exc: ValidationError, doc: PositionedDocument, model: type[BaseModel] | None, prefix: Path_
) -> ConfigError:
    err = min(exc.errors(include_url=False), key=lambda e: _rank(e, doc, prefix))
    loc = _clean_loc(err, prefix)
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
    message = _FRIENDLY.get(kind) or err["msg"]
    if kind == "string_pattern_mismatch":
        message = _PATTERNS.get(str((err.get("ctx") or {}).get("pattern")), message)
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    got_text = "" if isinstance(got, dict | list) or repr(got) in message else f" (got {_show(got)})"
    return ConfigError(f"{message}{got_text}", location=doc.locate(loc), field=field)


def _clean_loc(err: Any, prefix: Path_) -> Path_:
    return (*prefix, *(p for p in err["loc"] if not ((isinstance(p, str) and "[" in p) or p in _UNION_TAGS)))


def _rank(err: Any, doc: PositionedDocument, prefix: Path_) -> tuple[int, int, int]:
    """Which of several errors to show: a typo'd key first (it explains a 'missing' one), then file order."""
    loc = _clean_loc(err, prefix)
    mark = None
    for cut in range(len(loc), -1, -1):
        mark = doc.marks.get(tuple(loc[:cut]))
        if mark is not None:
            break
    order = 0 if err["type"] == "extra_forbidden" else 2 if err["type"] == "missing" else 1
    return (order, mark.line if mark else 0, mark.column if mark else 0)


def _show(value: Any) -> str:
    return "nothing (empty value)" if value is None else repr(value)


_FRIENDLY = {
    "model_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "list_type": "expected a list",
    "string_type": "expected a string (quote values that look like numbers or booleans)",
}
_PATTERNS = {
    IDENTIFIER_PATTERN: "expected an id of lowercase letters, digits, '-' and '_' (at most 63 characters)",
    HOST_PORT_PATTERN: "expected host:port ([address]:port for IPv6)",
}


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
