"""Where an expected value and a found one first differ, in a few words a reader can act on.

A payload or an option value that does not match is pointed at, not printed twice in full: both
lengths, the offset of the first differing byte and a short hex and text context of each side
(:func:`bytes_difference`); a payload judged as JSON is pointed at by the JSON path of its first
difference (:func:`json_difference`), with the same type-strict equality the judging uses. Pure
functions: they judge nothing, they describe a mismatch already judged.
"""

from __future__ import annotations

import json
from typing import Any

BEFORE = 4  # bytes of context shown before the first difference
FROM = 8  # bytes shown from the first difference on
VALUE_CHARS = 48  # how much of a JSON value a difference quotes


def first_difference(expected: bytes, found: bytes) -> int | None:
    """The offset of the first byte that differs (the shorter length when one is a prefix of the
    other), or None when they are equal."""
    if expected == found:
        return None
    for i, (a, b) in enumerate(zip(expected, found, strict=False)):
        if a != b:
            return i
    return min(len(expected), len(found))


def _context(data: bytes, at: int) -> str:
    """Hex and text of ``data`` around offset ``at``, the byte at ``at`` in brackets."""
    start = max(0, at - BEFORE)
    cells = [f"[{b:02x}]" if i == at else f"{b:02x}" for i, b in enumerate(data[start : at + FROM], start)]
    if at >= len(data):
        cells.append("[end]")
    hexes = ("... " if start > 0 else "") + " ".join(cells) + (" ..." if at + FROM < len(data) else "")
    text = repr(data[start : at + FROM])[1:]  # bytes' own escaping, without the b prefix
    return f"{hexes} ({text})"


def bytes_difference(expected: bytes, found: bytes) -> str:
    """``119 B expected, 129 B found; first difference at byte 1: expected ... found ...``."""
    sizes = f"{len(expected)} B expected, {len(found)} B found"
    at = first_difference(expected, found)
    if at is None:
        return f"{sizes}; no difference"
    where = f"first difference at byte {at}"
    if at == len(found):
        where += " (the found value ends there)"
    elif at == len(expected):
        where += " (the expected value ends there)"
    return f"{sizes}; {where}: expected {_context(expected, at)} found {_context(found, at)}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


def _pointer(path: tuple[str | int, ...]) -> str:
    """An RFC 6901 JSON pointer (``/`` for the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path) or "/"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__


def _scalar_same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def json_difference(expected: Any, found: Any, path: tuple[str | int, ...] = ()) -> str | None:
    """Where two JSON documents first differ, by path (``at /Segment-size: expected 1024, found
    1024.0 (integer / number)``), under type-strict equality (1024 is not 1024.0, true is not 1);
    None when they are equal."""
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in expected:
            if key not in found:
                return f"at {_pointer((*path, key))}: expected {_show(expected[key])}, found no such member"
            inner = json_difference(expected[key], found[key], (*path, key))
            if inner is not None:
                return inner
        for key in found:
            if key not in expected:
                return f"at {_pointer((*path, key))}: expected no such member, found {_show(found[key])}"
        return None
    if isinstance(expected, list) and isinstance(found, list):
        for i, (a, b) in enumerate(zip(expected, found, strict=False)):
            inner = json_difference(a, b, (*path, i))
            if inner is not None:
                return inner
        if len(expected) != len(found):
            return f"at {_pointer(path)}: expected {len(expected)} item(s), found {len(found)}"
        return None
    if _scalar_same(expected, found):
        return None
    kinds = ""
    if _kind(expected) != _kind(found):
        kinds = f" ({_kind(expected)} / {_kind(found)})"
    return f"at {_pointer(path)}: expected {_show(expected)}, found {_show(found)}{kinds}"


def values_difference(expected: list[bytes], found: list[bytes]) -> str | None:
    """Where two lists of option values first differ: the value's position, then its bytes."""
    if expected == found:
        return None
    if len(expected) == 1 and len(found) == 1:
        return bytes_difference(expected[0], found[0])
    counts = f"{len(expected)} value(s) expected, {len(found)} found"
    for i, (a, b) in enumerate(zip(expected, found, strict=False)):
        if a != b:
            return f"{counts}; first difference in value {i + 1}: {bytes_difference(a, b)}"
    n = min(len(expected), len(found))
    extra = expected[n] if len(expected) > n else found[n]
    side = "expected" if len(expected) > n else "found"
    shown = extra[: BEFORE + FROM]
    more = " ..." if len(extra) > len(shown) else ""
    return f"{counts}; value {n + 1} is {side} only: {shown.hex(' ')}{more} ({repr(shown)[1:]})"
