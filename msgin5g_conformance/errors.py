"""Who is at fault, as a type.

::

    HarnessError                   the harness or its set-up broke      -> verdict "error"
     +-- DefinitionError           a test case / profile file is wrong  -> collection error, lint failure
     |    (carries file, line, field path)
     +-- UsageError                a command line asked for something that does not exist
     +-- NotApplicable             the SUT does not offer what a test case needs -> "not-applicable"

A SUT that breaks a requirement is not an exception: it is a ``fail`` verdict with evidence
(see :mod:`msgin5g_conformance.engine.verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class HarnessError(Exception):
    """The harness or its environment broke; the affected test gets verdict ``error``."""


@dataclass(frozen=True)
class Problem:
    """One located mistake in a user's file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DefinitionError(HarnessError):
    """A test case, profile or SUT file is wrong; names every problem with file, line and field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(HarnessError):
    """A command-line argument names something that does not exist."""


class NotApplicable(HarnessError):
    """The SUT lacks a role or capability a test case needs; the reason is the message."""
