"""``sent_within_ms``: a gateway case demands one bulk GET of its requests only if the tester sent
them all within the gateway's max wait; a tester too slow for that makes the step inconclusive,
never a fail of a gateway that legally sent what it had when its timer fired."""

from __future__ import annotations

from pathlib import Path

from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.spec import loader
from msgin5g_conformance.world.profile import SENT_WITHIN_SHARE, load_profile

from .conftest import TESTCASES, profile_with
from .test_engine import case_from, run, step

PROFILE = load_profile()
BULK_001 = (TESTCASES / "gateway" / "GW-BULK-001.yaml").read_text(encoding="utf-8")
WITHIN = "      sent_within_ms: ${profile.bulk_policy.max_wait_ms}"
SECOND_SEND = "  - send:\n      from: cue2\n"


def without(text: str) -> str:
    """The case without its sent_within_ms line."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(WITHIN))


def test_the_gateway_bulk_cases_say_their_requests_must_fit_in_the_max_wait() -> None:
    """Every shipped gateway case that expects one bulk GET of several requests carries it."""
    for name in ("GW-BULK-001", "GW-BULK-003", "GW-ERR-001", "GW-SCALE-002", "GW-SPLIT-002"):
        case = loader.load_testcase(TESTCASES / "gateway" / f"{name}.yaml", PROFILE)
        within = [s for s in case.steps if getattr(s, "sent_within_ms", None) is not None]
        assert [getattr(s, "sent_within_ms", None) for s in within] == ["${profile.bulk_policy.max_wait_ms}"], name


def test_a_bad_sent_within_ms_is_a_located_problem(tmp_path: Path) -> None:
    for value, message in (
        ("0", "expected milliseconds (1..60000) or a ${profile...} variable, found number 0"),
        ("${profile.bulk_policy.never}", "bulk_policy.never"),
    ):
        path = tmp_path / "GW-BULK-001.yaml"
        path.write_text(BULK_001.replace(WITHIN, f"      sent_within_ms: {value}  #"), encoding="utf-8")
        count, problems = loader.lint([path], PROFILE)
        assert count == 1 and len(problems) == 1, problems
        line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "sent_within_ms" in t)
        assert (problems[0].line, problems[0].path) == (line, "steps[2].expect.sent_within_ms"), problems[0]
        assert message in problems[0].message, problems[0].message


def test_a_tester_slower_than_the_max_wait_is_inconclusive_not_a_fail(tmp_path: Path) -> None:
    """The reference gateway (max wait 300 ms) sends cue1's request alone when the tester waits
    400 ms before cue2's: with sent_within_ms the bulk step is inconclusive and names the span,
    without it the same run fails REQ-GW-BULK-1; sent at once, both requests go in one bulk GET."""
    assert BULK_001.count(WITHIN) == 1 and BULK_001.count(SECOND_SEND) == 1
    profile = load_profile(profile_with(tmp_path, "short-wait", {"bulk_policy.max_wait_ms": 300}))
    slow = BULK_001.replace(SECOND_SEND, "  - wait: {ms: 400}\n" + SECOND_SEND)
    cases = [
        case_from(tmp_path, "slow", slow.replace("id: GW-BULK-001", "id: TEST-SLOW-1"), profile),
        case_from(tmp_path, "unsaid", without(slow).replace("id: GW-BULK-001", "id: TEST-SLOW-2"), profile),
        case_from(tmp_path, "quick", BULK_001, profile),
    ]
    slow_r, unsaid_r, quick_r = run(profile, "reference", *cases, concurrency=3)
    bulk = step(slow_r, "3")
    assert bulk.verdict is Verdict.INCONCLUSIVE, bulk.reason  # type: ignore[attr-defined]
    assert "not judged: the tester took" in bulk.reason and "(sent_within_ms)" in bulk.reason  # type: ignore[attr-defined]
    assert f"{SENT_WITHIN_SHARE:.0%} of the 300 ms" in bulk.reason  # type: ignore[attr-defined]
    assert slow_r.verdict is Verdict.INCONCLUSIVE, slow_r.reason
    assert unsaid_r.verdict is Verdict.FAIL and step(unsaid_r, "3").verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert quick_r.verdict is Verdict.PASS, quick_r.reason
