"""YAML loading that remembers where each key stands, so errors can name the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from autosynk.errors import ConfigError

Location = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class _LineLoader(yaml.SafeLoader):
    """Safe loader that records the line of every mapping key and sequence item."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.lines: dict[Location, int] = {}


def _walk(node: yaml.Node, path: Location, lines: dict[Location, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines)


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[Location, int]]:
    """Return the document (a mapping) and the line number of every key path."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    lines: dict[Location, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _line_for(loc: Location, lines: dict[Location, int]) -> int | None:
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _child(node: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _document_path(data: Any, loc: tuple[str | int, ...]) -> Location:
    """Keep the parts of a pydantic error location that are real keys of the document.

    Pydantic inserts the tag of a discriminated union (``ss12000-files``) into the location;
    walking the document drops those.
    """
    out: list[str | int] = []
    node = data
    for part in loc:
        found, child = _child(node, part)
        if found:
            out.append(part)
            node = child
        elif isinstance(node, dict | list):
            continue  # a union tag, or a missing key (kept below)
        else:
            break
    if loc and loc[-1] not in out and not isinstance(node, dict | list):
        return tuple(out)
    if loc and isinstance(node, dict) and loc[-1] not in out and isinstance(loc[-1], str):
        out.append(loc[-1])  # the missing or unknown key itself
    return tuple(out)


def describe_errors(
    path: Path, exc: ValidationError, lines: dict[Location, int], data: Any = None
) -> str:
    """One line per problem: ``file line N: key.path: what is wrong``."""
    out = []
    for err in exc.errors():
        loc = _document_path(data, tuple(err["loc"]))
        key = ".".join(str(part) for part in loc) or "(top level)"
        line = _line_for(loc, lines)
        where = f"{path} line {line}" if line else str(path)
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key is missing"
        else:
            message = err["msg"]
        out.append(f"{where}: {key}: {message}")
    return "\n".join(out)


def parse_model(model: type[M], path: Path, **context: Any) -> M:
    """Load ``path`` and validate it as ``model``; a bad file raises one clear ConfigError."""
    data, lines = load_yaml(path)
    try:
        return model.model_validate(data, context={"base_dir": path.parent, **context})
    except ValidationError as exc:
        raise ConfigError(describe_errors(path, exc, lines, data)) from None
