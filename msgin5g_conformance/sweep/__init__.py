"""A bounded robustness sweep: malformed and hostile datagrams to a SUT, with liveness probes.

``msgin5g-conformance sweep --sut NAME --role ROLE --count N`` opens the SUT for one role through
the adapter machinery of ``run``, sends ``N`` generated datagrams to each of its UDP endpoints
(:mod:`.generators`), probes every ``K`` inputs and once at the end whether it still answers
(:mod:`.runner`), and when it stops answering, names the first input after which it did. See
docs/robustness-sweep.md.
"""

from __future__ import annotations

from msgin5g_conformance.sweep.generators import GENERATORS, Input, inputs
from msgin5g_conformance.sweep.report import as_dict, summary, write
from msgin5g_conformance.sweep.runner import (
    DEFAULT_PROBE_EVERY,
    DEFAULT_TIME_LIMIT_S,
    MAX_COUNT,
    MAX_TIME_LIMIT_S,
    SetupError,
    Sweep,
    SweepResult,
)

__all__ = [
    "DEFAULT_PROBE_EVERY",
    "DEFAULT_TIME_LIMIT_S",
    "GENERATORS",
    "MAX_COUNT",
    "MAX_TIME_LIMIT_S",
    "Input",
    "SetupError",
    "Sweep",
    "SweepResult",
    "as_dict",
    "inputs",
    "summary",
    "write",
]
