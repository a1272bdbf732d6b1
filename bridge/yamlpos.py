"""Load YAML safely and remember where every key and value stands, for file:line:column errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from bridge.errors import ConfigError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class PositionedDocument:
    """The plain data plus a map from key path to the mark of the key (or of the item)."""

    data: Any
    marks: dict[Path_, Mark]
    source: str

    def locate(self, path: Path_) -> str:
        """`file:line:col` of the longest known prefix of `path` (a missing key points at its parent)."""
        for cut in range(len(path), -1, -1):
            mark = self.marks.get(tuple(path[:cut]))
            if mark is not None:
                return f"{self.source}:{mark.line}:{mark.column}"
        return self.source


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def load_positioned(text: str, source: str) -> PositionedDocument:
    """Parse `text`; a syntax error becomes ConfigError with file:line:column and the parser's words."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return PositionedDocument({}, {(): Mark(1, 1)}, source)
        marks: dict[Path_, Mark] = {(): _mark(node)}
        _walk(node, (), marks, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError(f"YAML syntax error: {problem}{context}", location=where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", location=source) from None
    finally:
        loader.dispose()
    return PositionedDocument(data, marks, source)


def _walk(node: yaml.Node, path: Path_, marks: dict[Path_, Mark], source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                first = seen[key]
                raise ConfigError(
                    f"duplicate key {key!r} (first at line {first.line})",
                    location=f"{source}:{_mark(key_node).line}:{_mark(key_node).column}",
                    field=format_path((*path, key)),
                )
            seen[key] = _mark(key_node)
            marks[(*path, key)] = _mark(key_node)
            if key_node.tag == "tag:yaml.org,2002:int":
                try:  # pydantic reports an int key (`gzf: {3: …}`) as the int
                    marks[(*path, int(key.replace("_", "")))] = _mark(key_node)
                    _walk(value_node, (*path, int(key.replace("_", ""))), marks, source)
                except ValueError:
                    pass
            _walk(value_node, (*path, key), marks, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            marks[(*path, index)] = _mark(item)
            _walk(item, (*path, index), marks, source)


def format_path(path: Path_) -> str:
    """('chargers', 0, 'adapter', 'port') → 'chargers[0].adapter.port'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
