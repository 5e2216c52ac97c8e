"""YAML loading that remembers where every key came from.

Config validation reports ``file:line: key.path: message``; PyYAML's safe loader throws node positions away,
so this module composes the node tree once, records the line of every mapping key and sequence item, and
then constructs plain Python data from the same nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class SourcedYaml:
    """Data loaded from a YAML file plus the 1-based line of each location in it."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Line of ``loc``, or of its nearest ancestor that exists in the file (a missing key is reported at
        the mapping that should hold it)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = loc + (key_node.value,)
                lines[child] = key_node.start_mark.line + 1
                _index(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = loc + (i,)
            lines[child] = item.start_mark.line + 1
            _index(item, child, lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> SourcedYaml:
    """Load ``path`` as YAML with line information.

    Raises :class:`ConfigError` naming the file and line when the file is missing or is not valid YAML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            "file not found", path=path, hint="create it, or point --config at the right file"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from exc
    return load_yaml_text(text, path)


def load_yaml_text(text: str, path: Path) -> SourcedYaml:
    """Like :func:`load_yaml`, for text already read (``path`` is used in messages only)."""
    try:
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return SourcedYaml(path=path, data=None, lines={})
            lines: dict[Loc, int] = {}
            _index(node, (), lines)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"invalid YAML: {problem}", path=path, line=line, hint="fix the YAML syntax at that line"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=path) from exc
    return SourcedYaml(path=path, data=data, lines=lines)
