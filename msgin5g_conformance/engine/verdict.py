"""Verdicts, ordered so that a step can only make a result worse (after ioppytest's lattice).

``pass < inconclusive < fail < error``; ``not-applicable`` stands apart: a case that does not
apply to the SUT never ran, so nothing merges into it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.Enum):
    PASS = "pass"
    INCONCLUSIVE = "inconclusive"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not-applicable"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def worst(self, other: Verdict) -> Verdict:
        """The merge: the worse of two verdicts."""
        return self if self.rank >= other.rank else other


_RANK = {
    Verdict.PASS: 0,
    Verdict.INCONCLUSIVE: 1,
    Verdict.FAIL: 2,
    Verdict.ERROR: 3,
    Verdict.NOT_APPLICABLE: -1,
}


@dataclass(frozen=True)
class Finding:
    """One expectation checked: what was expected, what was found, and for a mismatch of bytes,
    JSON or option values where the two first differ (:mod:`~msgin5g_conformance.engine.difference`)."""

    field: str
    expected: str
    found: str
    ok: bool
    difference: str = ""


@dataclass
class StepResult:
    """The outcome of one step, with the datagram (capture sequence number) that set it."""

    index: str
    kind: str
    line: int | None
    verdict: Verdict
    reason: str
    datagram: int | None = None
    findings: list[Finding] = field(default_factory=list)
    provisional: set[str] = field(default_factory=set)
    duration_s: float = 0.0
    node: str | None = None  # expect: the node that should have received; send: the sender
    peer: str | None = None  # expect: the SUT endpoint it should have come from; send: destination
    requirements: tuple[str, ...] = ()  # the requirements this check decides
    covered_ms: float | None = None  # absence checks: how long the discard was proved for
    strength: str = "shall"  # "should": a check whose failure is a recorded deviation, not a fail
    deviations: list[Finding] = field(default_factory=list)  # SHOULDs that did not hold


@dataclass
class CaseResult:
    """Everything a report needs about one test case run."""

    case_id: str
    verdict: Verdict
    reason: str
    steps: list[StepResult]
    profile: str
    profile_sha256: str
    sut: str
    capture_mode: str
    pcap: str | None
    provisional: list[str]
    duration_s: float
    decisive_step: str | None = None
    decisive_datagram: int | None = None
    sut_log: str = ""
    # the SUT's own lines around the decisive datagram (else the end of the case), the harness's
    # polling folded (engine/sutlog.py); filled for a case that did not pass
    sut_log_excerpt: str = ""
    exchange: list[dict[str, Any]] = field(default_factory=list)
    # the whole exchange counted (datagrams, shown, omitted, bytes, by kind, pcap): a big case's
    # ``exchange`` keeps only its first and last records and those its checks name
    exchange_summary: dict[str, Any] = field(default_factory=dict)
    readings: dict[str, str] = field(default_factory=dict)  # the profile readings the verdict rests on

    @property
    def deviations(self) -> list[tuple[str, Finding]]:
        """Every SHOULD that did not hold, with the step it was seen in (the case still passes)."""
        return [(s.index, d) for s in self.steps for d in s.deviations]

    @property
    def datagrams(self) -> list[str]:
        """The exchange, one line per datagram."""
        return [
            f"#{r['seq']} +{r['t_ms']:7.1f} ms  {r['src_node'] or ''} {r['src']} -> {r['dst_node'] or ''} "
            f"{r['dst']}  {r['summary']}"
            for r in self.exchange
        ]


def merge(results: list[StepResult]) -> tuple[Verdict, StepResult | None]:
    """The one merge of a case: the worst verdict of its checks and the first check that set it."""
    verdict, decisive = Verdict.PASS, None
    for r in results:
        if r.verdict.rank > verdict.rank:
            verdict, decisive = r.verdict, r
    return verdict, decisive
