"""Safe YAML loading that remembers the line of every value.

Error messages must say ``file:line: field.path: ...`` (house style, after Tavern), so the
loader keeps a map from each JSON path to the line where its value starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from msgin5g_conformance.errors import DefinitionError, Problem

PathKey = tuple[str | int, ...]


def format_path(path: Iterable[str | int]) -> str:
    """Render ``("steps", 2, "expect", "code")`` as ``steps[2].expect.code``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Located:
    """A YAML document as plain data plus the line (1-based) of every node."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[str | int]) -> int | None:
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Iterable[str | int], message: str) -> Problem:
        p = tuple(path)
        return Problem(self.file, self.line_of(p), format_path(p), message)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one silently."""


def _convert(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str, loader: Any) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise DefinitionError(
                    [Problem(file, key_node.start_mark.line + 1, format_path(path), "mapping keys must be text")]
                )
            skey = str(key)
            if skey in out:
                raise DefinitionError(
                    [Problem(file, key_node.start_mark.line + 1, format_path((*path, skey)), "duplicate key")]
                )
            out[skey] = _convert(value_node, (*path, skey), lines, file, loader)
            lines[(*path, skey)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(n, (*path, i), lines, file, loader) for i, n in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_text(text: str, file: str) -> Located:
    """Parse one YAML document; syntax errors become a located :class:`DefinitionError`."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DefinitionError([Problem(file, 1, "", "the file is empty")])
        lines: dict[PathKey, int] = {}
        data = _convert(node, (), lines, file, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise DefinitionError([Problem(file, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(file, None, "", f"YAML syntax: {exc}")]) from None
    finally:
        loader.dispose()
    return Located(file, data, lines)


def load_file(path: Path | str) -> Located:
    """Read and parse ``path``; an unreadable file is a located error, not a traceback."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem(str(p), None, "", f"cannot read: {exc}")]) from None
    return load_text(text, str(p))
