"""JSON Schema validation of YAML files, with errors in the house format.

The schemas shipped in ``msgin5g_conformance/schemas/`` are the single source of truth for the
shape of test cases and profiles; editors can use them for completion. A schema node may carry
``x-expected`` with the human wording of what is allowed there.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from msgin5g_conformance.errors import DefinitionError, Problem
from msgin5g_conformance.yamlsource import Located

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing (null)",
}


def describe(value: Any) -> str:
    """Name a found value the way a user sees it in YAML."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        keys = ", ".join(sorted(value)) or "no keys"
        return f"a mapping ({keys})"
    return type(value).__name__


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load a schema shipped with the package by file name."""
    text = resources.files("msgin5g_conformance.schemas").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int | float) and not isinstance(instance, bool) and math.isfinite(instance)


@cache
def validator_for(name: str) -> jsonschema.protocols.Validator:
    """Build the validator once (validate() in a loop is about 40x slower).

    For the harness's own files "integer" means an integer as written (JSON Schema admits
    ``65401.0``, which then breaks every use of a port) and "number" a finite one (``.nan`` passes
    every bound, as no comparison with it is true).

    The package's own schemas are not checked against the meta-schema here (a tenth of a second
    in every process): tests/test_loader.py checks each shipped schema once."""
    schema = load_schema(name)
    base = jsonschema.validators.validator_for(schema)
    checker = base.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number})
    cls = jsonschema.validators.extend(base, type_checker=checker)
    v: jsonschema.protocols.Validator = cls(schema, format_checker=base.FORMAT_CHECKER)
    return v


@cache
def file_validator(path: str) -> Any:
    """A validator for a JSON Schema file (configuration documents, bulk answers), built once per
    file for the whole process."""
    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _message(err: ValidationError) -> tuple[list[str | int], str]:
    path: list[str | int] = list(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    found = describe(err.instance)
    expected = schema.get("x-expected")
    v = err.validator
    if v == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        key = extra[0] if extra else "?"
        return [*path, key], f"unknown key {key!r}; expected one of {', '.join(allowed)}"
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else str(err.validator_value)
        return path, f"missing required key {missing!r}"
    if v in ("minProperties", "maxProperties") and expected:
        return path, f"expected {expected}, found {found}"
    if expected:
        return path, f"expected {expected}, found {found}"
    if v == "type":
        types = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
        return path, f"expected {words}, found {found}"
    if v == "enum":
        options = ", ".join(str(o) for o in err.validator_value)
        return path, f"expected one of {options}, found {found}"
    if v == "const":
        return path, f"expected {err.validator_value!r}, found {found}"
    if v == "pattern":
        return path, f"expected text matching {err.validator_value}, found {found}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return path, f"expected a number with {v} {err.validator_value}, found {found}"
    if v == "minLength":
        return path, f"expected text of at least {err.validator_value} character(s), found {found}"
    if v == "minItems":
        return path, f"expected at least {err.validator_value} item(s), found {found}"
    if v == "maxItems":
        return path, f"expected at most {err.validator_value} item(s), found {found}"
    if v in ("oneOf", "anyOf") and err.context:
        return _message(best_match(err.context))
    return path, f"{err.message}"


def check(located: Located, schema_name: str) -> None:
    """Validate a located document; raise one :class:`DefinitionError` naming every problem."""
    validator = validator_for(schema_name)
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    errors = sorted(validator.iter_errors(located.data), key=lambda e: list(map(str, e.absolute_path)))
    for err in errors:
        path, msg = _message(err)
        p = located.problem(path, msg)
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            problems.append(p)
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise DefinitionError(problems)
