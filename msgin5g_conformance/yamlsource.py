"""Safe YAML loading that remembers the line of every value.

Error messages must say ``file:line: field.path: ...`` (house style, after Tavern), so the
loader keeps a map from each JSON path to the line where its value starts.

It is the one loader of test cases, profiles, SUT profiles and waivers, and it is bounded: only
regular files are read (a FIFO or a device is refused, not waited on), at most
:data:`MAX_FILE_BYTES` of them; characters YAML does not allow are refused with their line and
column before parsing; nesting deeper than :data:`MAX_DEPTH` (a recursive alias is infinitely
deep) and more than :data:`MAX_ALIAS_NODES` nodes reached through aliases (an "alias bomb": a
few hundred bytes that expand to billions of nodes) are located errors. Each ends within
milliseconds, whatever the file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from msgin5g_conformance.errors import DefinitionError, Problem

PathKey = tuple[str | int, ...]

# The largest shipped file is under 6 kB; a valid YAML file of 1 MiB costs PyYAML about 5 s and
# 400 MB to compose (benchmarks/bench_hostile_files.py), 256 KiB about a quarter of that.
MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 64  # the shipped files nest 9 deep at most
MAX_ALIAS_NODES = 10_000  # nodes reached through aliases (anchors are allowed, bombs are not)

# What YAML 1.1 allows in a stream (PyYAML's reader refuses the rest with a traceback-prone error).
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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
    text: str = ""  # the source, as read (the bounded read: no second, unbounded one)

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


class _Limit(Exception):
    """A bound of the loader was exceeded at ``line``."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _loader_base() -> type:
    """libyaml's C scanner and parser under PyYAML's own composer, where libyaml is there: ten
    times faster on the shipped test cases (29 ms instead of 311 ms for 60 files), with the same
    events, line marks and bounds (the depth check below runs in the Python composer); else the
    pure-Python SafeLoader."""
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml
        return yaml.SafeLoader

    class _CComposed(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver, CParser):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)

    return _CComposed


class _DepthBound:
    """Refuses nesting deeper than MAX_DEPTH while composing (the composer recurses per level).
    Duplicate keys are refused when the nodes are converted (:func:`_convert`)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[attr-defined]
                raise _Limit(event.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1


class _PureUniqueKeyLoader(_DepthBound, yaml.SafeLoader):
    pass


_BASE = _loader_base()
_UniqueKeyLoader: type = (
    _PureUniqueKeyLoader if _BASE is yaml.SafeLoader else type("_UniqueKeyLoader", (_DepthBound, _BASE), {})
)


class _Walk:
    """Counts what :func:`_convert` expands: depth (a recursive alias never ends) and the nodes
    reached through aliases (a node met a second time is an alias of it)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.alias_nodes = 0


def _convert(
    node: yaml.Node,
    path: PathKey,
    lines: dict[PathKey, int],
    file: str,
    loader: Any,
    walk: _Walk | None = None,
    via_alias: bool = False,
) -> Any:
    walk = walk or _Walk()
    line = node.start_mark.line + 1
    if len(path) > MAX_DEPTH:
        raise _Limit(line, f"nested more than {MAX_DEPTH} levels deep (a recursive alias?)")
    if not isinstance(node, yaml.ScalarNode):
        via_alias = via_alias or id(node) in walk.seen
        walk.seen.add(id(node))
    if via_alias:
        walk.alias_nodes += 1
        if walk.alias_nodes > MAX_ALIAS_NODES:
            raise _Limit(line, f"aliases expand to more than {MAX_ALIAS_NODES} nodes")
    lines[path] = line
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise DefinitionError(
                    [Problem(file, key_node.start_mark.line + 1, format_path(path), "mapping keys must be text")]
                )
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
            out[skey] = _convert(value_node, (*path, skey), lines, file, loader, walk, via_alias)
            lines[(*path, skey)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(n, (*path, i), lines, file, loader, walk, via_alias) for i, n in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _check_characters(text: str, file: str) -> None:
    bad = _NOT_PRINTABLE.search(text)
    if bad is None:
        return
    line = text.count("\n", 0, bad.start()) + 1
    column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
    raise DefinitionError(
        [Problem(file, line, "", f"column {column}: character U+{ord(bad.group()):04X} is not allowed in YAML")]
    )


def load_text(text: str, file: str, limit: int = MAX_FILE_BYTES) -> Located:
    """Parse one YAML document; syntax errors and exceeded bounds become a located
    :class:`DefinitionError`."""
    if len(text) > limit:
        raise DefinitionError([Problem(file, None, "", f"longer than the limit of {limit} characters")])
    _check_characters(text, file)
    try:
        return _load(text, file, _UniqueKeyLoader)
    except _SyntaxError:
        # libyaml words its syntax errors differently: the pure-Python parser says what went wrong,
        # as it always has (a broken file is rare; its second parse costs nothing that matters)
        if _UniqueKeyLoader is _PureUniqueKeyLoader:
            raise
        return _load(text, file, _PureUniqueKeyLoader)


class _SyntaxError(DefinitionError):
    """A YAML syntax error (the fast loader's is parsed again by the pure-Python one)."""


def _load(text: str, file: str, cls: type) -> Located:
    loader = cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DefinitionError([Problem(file, 1, "", "the file is empty")])
        lines: dict[PathKey, int] = {}
        data = _convert(node, (), lines, file, loader)
    except _Limit as exc:
        raise DefinitionError([Problem(file, exc.line, "", str(exc))]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise _SyntaxError([Problem(file, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise _SyntaxError([Problem(file, None, "", f"YAML syntax: {exc}")]) from None
    finally:
        loader.dispose()
    return Located(file, data, lines, text)


def read_bounded(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else (a FIFO, a device, a
    folder, a larger file) is a located error, found without blocking or reading past the limit."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens at once and is refused below
    except OSError as exc:
        raise DefinitionError([Problem(str(p), None, "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
            raise DefinitionError([Problem(str(p), None, "", f"not a regular file ({kind})")])
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read(limit + 1)
    except OSError as exc:
        raise DefinitionError([Problem(str(p), None, "", f"cannot read: {exc.strerror or exc}")]) from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        why = f"larger than the limit of {limit} bytes (limits.max_file_bytes of the profile)"
        raise DefinitionError([Problem(str(p), None, "", why)])
    return data


def load_file(path: Path | str, limit: int = MAX_FILE_BYTES) -> Located:
    """Read and parse ``path``; an unreadable, oversized or irregular file is a located error, not
    a traceback or a hang. ``limit``: the profile's ``limits.max_file_bytes`` for the files a run
    reads (test cases, SUT profile, waivers); the profile itself is held to the default."""
    p = Path(path)
    data = read_bounded(p, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DefinitionError([Problem(str(p), line, "", f"not UTF-8 (byte {exc.start}: {exc.reason})")]) from None
    return load_text(text, str(p), limit)
