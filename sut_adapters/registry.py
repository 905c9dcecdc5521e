"""``--sut NAME`` to adapter: the built-in names, and the error for an unknown one."""

from __future__ import annotations

from msgin5g_conformance.errors import UsageError

from .base import SutAdapter
from .faulty import ROBUSTNESS, VARIANTS
from .reference import ReferenceAdapter


def known_names() -> list[str]:
    return ["reference", *(f"faulty:{name}" for name in (*VARIANTS, *ROBUSTNESS))]


def make_adapter(spec: str) -> SutAdapter:
    """Build the adapter for ``--sut``; an unknown name is a UsageError listing the known ones."""
    if spec == "reference":
        return ReferenceAdapter()
    variants = {**VARIANTS, **ROBUSTNESS}
    if spec.startswith("faulty:") and spec[7:] in variants:
        cls, _ = variants[spec[7:]]
        return ReferenceAdapter(name=spec, relay_class=cls)
    raise UsageError(f"unknown SUT {spec!r}; expected one of: {', '.join(known_names())}")
