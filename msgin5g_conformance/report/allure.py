"""Allure annotations for one test case run: labels, spec links, steps and evidence.

:func:`annotate` is called by the pytest plugin while the test item runs, after the runner has
produced the :class:`~msgin5g_conformance.engine.verdict.CaseResult`. It does nothing unless
allure-pytest is recording (``--alluredir``).

What it adds:

* title and description (the case purpose);
* labels from the case data: epic = the specification (``TS 24.538``), feature = the clause,
  one story per requirement id, severity from the requirement strength (shall -> critical,
  should -> normal, may -> minor), tags for the role, the verdict, the SUT, the profile and
  ``provisional:<item>`` for each provisional profile item the case relied on;
* a link per specification named in the clause (3GPP DynaReport page, RFC editor page);
* one Allure step per :class:`~msgin5g_conformance.engine.verdict.StepResult`, named
  ``step <index> <kind> ...: <reason>``; a step's Allure status follows its verdict
  (fail -> failed; error and inconclusive -> broken; not-applicable -> skipped) without the
  test raising anything: the step context is closed with an exception *instance* passed to its
  ``__exit__``, which is how allure-python-commons derives a step's status and message;
* attachments: the pcap, the message sequence chart (SVG), the decoded datagrams, the failed
  expectations with expected and found (JSON) and the SUT log.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import allure_commons
import pytest

if TYPE_CHECKING:
    from msgin5g_conformance.engine.verdict import CaseResult, StepResult
    from msgin5g_conformance.spec.model import TestCase

SEVERITY = {"shall": "critical", "should": "normal", "may": "minor"}
STEP_NAME_MAX = 400

PCAP_TYPE = "application/vnd.tcpdump.pcap"
PCAP_EMBED_MAX = 1 << 20  # a bigger pcap is named in the report, not embedded (a 1,000-UE case: 6.9 MB)
FULL_STEPS = 200  # above this many checks, only those that did not pass attach their findings
SVG_TYPE = "image/svg+xml"
TEXT_TYPE = "text/plain"
JSON_TYPE = "application/json"

_SPEC = re.compile(r"\b(TS|TR)\s*(\d{2})\.(\d{3})\b(?:\s+([A-Z]?\d+(?:\.(?:\d+|x))*|[A-Z]\.\d+(?:\.\d+)*))?")
_RFC = re.compile(r"\bRFC\s*(\d{3,5})(?:\s+(\d+(?:\.\d+)*))?")


# our verdict -> Allure's status: inconclusive is "unknown" (Allure's "broken" means a broken
# test, which is our error), not-applicable is "skipped"
VERDICT_STATUS = {
    "pass": "passed",
    "fail": "failed",
    "inconclusive": "unknown",
    "error": "broken",
    "not-applicable": "skipped",
}
VERDICT_WORD = {
    "pass": "PASS",
    "fail": "FAIL",
    "inconclusive": "INCONCLUSIVE",
    "error": "ERROR",
    "not-applicable": "NOT APPLICABLE",
}
_CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)*(?:CaseFailed|CaseFailedAssertion|StepFailed|StepBroken|Skipped): ")
_BANNER_HOOK = "msgin5g-verdict-words"


class _VerdictWords:
    """Rewrites each case's Allure result before it is written: the status from our verdict (the
    ``verdict:`` tag :func:`annotate` sets) and the error banner in our words (allure-pytest
    writes ``module.ExceptionClass: message``)."""

    @staticmethod
    def verdict_of(result: Any) -> str | None:
        for label in getattr(result, "labels", None) or []:
            if label.name == "tag" and str(label.value).startswith("verdict:"):
                return str(label.value).split(":", 1)[1]
        return None

    @allure_commons.hookimpl(tryfirst=True)
    def report_result(self, result: Any) -> None:
        verdict = self.verdict_of(result)
        if verdict not in VERDICT_STATUS:
            return
        result.status = VERDICT_STATUS[verdict]
        # the pytest marker every case carries says nothing in a report of cases only
        result.labels = [x for x in result.labels if not (x.name == "tag" and x.value == "msgin5g")]
        details = result.statusDetails
        if details is not None and details.message:
            text = _CLASS_PREFIX.sub("", str(details.message)).removeprefix("not-applicable: ")
            details.message = f"{VERDICT_WORD[verdict]}: {text}"
        steps = list(getattr(result, "steps", None) or [])
        while steps:  # each step's banner too: "step failed: <reason>", not the class that marks it
            step = steps.pop()
            steps.extend(getattr(step, "steps", None) or [])
            sd = getattr(step, "statusDetails", None)
            if sd is not None and sd.message:
                sd.message = _CLASS_PREFIX.sub("", str(sd.message))


def register_verdict_words() -> None:
    """Install :class:`_VerdictWords` into allure-python-commons (once per process)."""
    if allure_commons.plugin_manager.get_plugin(_BANNER_HOOK) is None:
        allure_commons.plugin_manager.register(_VerdictWords(), _BANNER_HOOK)


class StepFailed(AssertionError):
    """Marks an Allure step failed (a fail verdict: the SUT broke the requirement)."""


class StepBroken(Exception):
    """Marks an Allure step broken (error or inconclusive: no verdict on the SUT)."""


def spec_of(clause: str) -> str:
    """The specification a clause belongs to: ``TS 24.538 6.2.2.1`` -> ``TS 24.538``."""
    m = _SPEC.search(clause)
    if m:
        return f"{m.group(1)} {m.group(2)}.{m.group(3)}"
    r = _RFC.search(clause)
    if r:
        return f"RFC {r.group(1)}"
    return clause.strip() or "unspecified"


def spec_links(clause: str) -> list[tuple[str, str]]:
    """``(name, url)`` for every specification named in a clause, in order, without repeats.

    3GPP specifications link to their DynaReport page (``TS 24.538 6.2.2.1`` is named so and
    points to ``https://www.3gpp.org/DynaReport/24538.htm``); RFCs to the RFC editor, with the
    section anchor when the clause gives one.
    """
    links: list[tuple[str, str]] = []
    seen: set[str] = set()
    for m in _SPEC.finditer(clause):
        url = f"https://www.3gpp.org/DynaReport/{m.group(2)}{m.group(3)}.htm"
        if url not in seen:
            seen.add(url)
            name = f"{m.group(1)} {m.group(2)}.{m.group(3)}" + (f" {m.group(4)}" if m.group(4) else "")
            links.append((name, url))
    for r in _RFC.finditer(clause):
        url = f"https://www.rfc-editor.org/rfc/rfc{r.group(1)}"
        if r.group(2):
            url += f"#section-{r.group(2)}"
        if url not in seen:
            seen.add(url)
            links.append((f"RFC {r.group(1)}" + (f" {r.group(2)}" if r.group(2) else ""), url))
    return links


def step_title(step: StepResult) -> str:
    """``step 2 expect at cue1: <reason>`` (send: ``from A to B``; other kinds: just the kind)."""
    if step.kind == "expect" and step.node:
        where = f" at {step.node}"
    elif step.kind == "send" and step.node:
        where = f" from {step.node}" + (f" to {step.peer}" if step.peer else "")
    elif step.index == step.kind or step.index == "end":  # a check of the whole case, not a step
        title = f"check {step.kind} ({', '.join(step.requirements) or 'no requirement'}): {step.reason}"
        return title if len(title) <= STEP_NAME_MAX else title[: STEP_NAME_MAX - 1] + "\u2026"
    else:
        where = ""
    title = f"step {step.index} {step.kind}{where}: {step.reason}"
    return title if len(title) <= STEP_NAME_MAX else title[: STEP_NAME_MAX - 1] + "\u2026"


def _active() -> bool:
    """True when an Allure listener is registered (pytest ran with ``--alluredir``)."""
    try:
        from allure_commons import plugin_manager
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return False
    return bool(plugin_manager.hook.attach_data.get_hookimpls())


def decoded_datagrams(result: CaseResult) -> str:
    """One block per datagram: the decoded summary line, then its bytes in hex."""
    lines = []
    summary = result.exchange_summary
    if summary.get("omitted"):
        lines.append(
            f"({summary['shown']} of {summary['datagrams']} datagrams shown: the first and last, and those the "
            f"checks name; every one is in the pcap {summary.get('pcap') or ''})"
        )
    for rec, text in zip(result.exchange, result.datagrams, strict=False):
        lines.append(text)
        if rec.get("hex"):
            lines.append(f"    hex {rec['hex']}")
    return "\n".join(lines) + "\n" if lines else "(no datagrams captured)\n"


def failed_expectations(case: TestCase, result: CaseResult) -> list[dict[str, Any]]:
    """Every step that did not pass, with its location and the checks that failed."""
    out = []
    for s in result.steps:
        if s.verdict.value in ("pass", "not-applicable"):
            continue
        out.append(
            {
                "step": s.index,
                "kind": s.kind,
                "where": f"{case.file}:{s.line}" if s.line else case.file,
                "verdict": s.verdict.value,
                "reason": s.reason,
                "node": s.node,
                "peer": s.peer,
                "datagram": s.datagram,
                "failed_checks": [
                    {"field": f.field, "expected": f.expected, "found": f.found} for f in s.findings if not f.ok
                ],
            }
        )
    return out


def _checks_text(step: StepResult) -> str:
    return (
        "\n".join(
            f"{'ok  ' if f.ok else 'FAIL'} {f.field}: expected {f.expected}; found {f.found}" for f in step.findings
        )
        + "\n"
    )


def _api() -> Any:
    """The ``allure`` module (allure-python-commons carries no annotations)."""
    import allure as api

    return api


def step_outcome(step: StepResult) -> BaseException | None:
    """The exception whose type tells Allure the step status (None: passed)."""
    status = step.verdict.value
    if status == "fail":
        return StepFailed(step.reason)
    if status in ("error", "inconclusive"):
        return StepBroken(f"{status}: {step.reason}")
    if status == "not-applicable":
        return pytest.skip.Exception(step.reason)
    return None


def _record_step(step: StepResult, *, checks: bool = True) -> None:
    """One Allure step for one step result, its status set from the verdict.

    The step context is closed with the outcome's exception details, as if that exception had
    left the ``with`` block, but nothing is raised: the test's own outcome stays the plugin's.
    """
    allure = _api()
    context = allure.step(step_title(step))
    context.__enter__()
    outcome: BaseException | None = None
    try:
        if step.findings and (checks or step.verdict.value != "pass"):
            allure.attach(_checks_text(step), name="checks", attachment_type=TEXT_TYPE, extension="txt")
        outcome = step_outcome(step)
    finally:
        context.__exit__(type(outcome) if outcome else None, outcome, None)


def annotate(case: TestCase, result: CaseResult, record: dict[str, Any]) -> None:
    """Describe one finished case to allure-pytest (labels, links, steps, attachments);
    ``record`` is the case's result record (``results/<id>.json``)."""
    if not _active():
        return
    allure = _api()
    from msgin5g_conformance.report.msc import render_svg

    allure.dynamic.title(f"{case.id}: {case.title}")
    verdict = result.verdict.value
    allure.dynamic.description(
        f"**Verdict: {VERDICT_WORD[verdict]}**: {result.reason}\n\n"
        f"Requirements: {', '.join(case.requirements)} ({case.strength}); clause {case.clause}.\n\n{case.purpose}"
    )
    allure.dynamic.epic(spec_of(case.clause))
    allure.dynamic.feature(case.clause)
    # The tree is specification -> clause -> requirement: one story per case (its first
    # requirement), so that every group counts each case once; the matrix has every requirement.
    if case.requirements:
        allure.dynamic.story(case.requirements[0])
    allure.dynamic.severity(SEVERITY.get(case.strength, "normal"))
    allure.dynamic.tag(case.role, f"verdict:{result.verdict.value}", f"sut:{result.sut}", f"profile:{result.profile}")
    for item in result.provisional:
        allure.dynamic.tag(f"provisional:{item}")
    for name, url in spec_links(case.clause):
        allure.dynamic.link(url, name=name)

    # A big case (a gateway case with 1,000 UEs has 2,000 checks) keeps the checks of its passing
    # steps out of the report: one attachment each would be thousands of files.
    every = len(result.steps) <= FULL_STEPS
    for step in result.steps:
        _record_step(step, checks=every)

    if result.pcap and Path(result.pcap).is_file():
        size = Path(result.pcap).stat().st_size
        if size <= PCAP_EMBED_MAX:
            allure.attach.file(result.pcap, name=f"{case.id}.pcap", attachment_type=PCAP_TYPE, extension="pcap")
        else:  # the single-file report would carry it base64-encoded: named, not embedded
            allure.attach(
                f"{case.id}.pcap: {size} bytes, {result.exchange_summary.get('datagrams', '?')} datagrams, "
                f"not embedded in the report (above {PCAP_EMBED_MAX} bytes): {result.pcap}\n",
                name=f"{case.id}.pcap (not embedded)",
                attachment_type=TEXT_TYPE,
                extension="txt",
            )
    try:
        chart = render_svg(record)
    except Exception as exc:  # evidence must never change a verdict
        allure.attach(
            f"sequence chart not drawn: {type(exc).__name__}: {exc}\n",
            name="sequence chart",
            attachment_type=TEXT_TYPE,
            extension="txt",
        )
    else:
        allure.attach(chart, name="sequence chart", attachment_type=SVG_TYPE, extension="svg")
    allure.attach(decoded_datagrams(result), name="decoded datagrams", attachment_type=TEXT_TYPE, extension="txt")
    failed = failed_expectations(case, result)
    if failed:
        allure.attach(
            json.dumps(failed, indent=1, ensure_ascii=False),
            name="failed expectations",
            attachment_type=JSON_TYPE,
            extension="json",
        )
    if result.sut_log:
        allure.attach(result.sut_log, name="SUT log", attachment_type=TEXT_TYPE, extension="txt")
