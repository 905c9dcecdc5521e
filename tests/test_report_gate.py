"""Tests for the CI gate and its waiver file (msgin5g_conformance.report.gate)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.report.gate import Waiver, check, evaluate, load_waivers

TODAY = date(2026, 6, 15)


def _r(case_id: str, verdict: str, *reqs: str) -> dict[str, Any]:
    return {"id": case_id, "verdict": verdict, "requirements": list(reqs), "reason": f"{case_id} {verdict}"}


def _w(req: str, expires: date = date(2026, 12, 31), cases: tuple[str, ...] | None = None) -> Waiver:
    return Waiver(req, "known issue", expires, cases, "waivers.yaml:2")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "waivers.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_all_pass_is_green() -> None:
    """Passed and not-applicable cases open the gate; the summary line says so."""
    g = evaluate([_r("A-1", "pass", "REQ-RELAY-DL-1"), _r("A-2", "not-applicable", "REQ-RELAY-DL-2")], [], TODAY)
    assert g.ok and g.exit_code == 0
    assert g.lines[-1].startswith("gate PASSED: 2 case(s): 1 passed, 0 waived, 0 failing, 1 not applicable")


@pytest.mark.parametrize("verdict", ["fail", "inconclusive", "error"])
def test_any_unwaived_non_pass_closes_the_gate(verdict: str) -> None:
    """A fail, inconclusive or error verdict without a waiver fails the gate and is named."""
    g = evaluate([_r("A-1", "pass", "REQ-RELAY-DL-1"), _r("A-2", verdict, "REQ-RELAY-DL-2")], [], TODAY)
    assert not g.ok and g.exit_code == 1
    assert f"FAIL A-2 ({verdict}) [REQ-RELAY-DL-2]: A-2 {verdict}" in g.lines


def test_waived_failure_is_green() -> None:
    """A failure citing a waived requirement is tolerated and reported as waived."""
    g = evaluate([_r("A-1", "fail", "REQ-RELAY-DL-1", "REQ-RELAY-TERM-1")], [_w("REQ-RELAY-DL-1")], TODAY)
    assert g.ok
    assert g.lines[0].startswith("WAIVED A-1 (fail)")
    assert "until 2026-12-31" in g.lines[0]


def test_waiver_restricted_to_cases() -> None:
    """A waiver listing cases covers only those cases of its requirement."""
    w = _w("REQ-RELAY-DL-1", cases=("A-1",))
    g = evaluate([_r("A-1", "fail", "REQ-RELAY-DL-1"), _r("A-2", "fail", "REQ-RELAY-DL-1")], [w], TODAY)
    assert not g.ok
    assert any(line.startswith("WAIVED A-1") for line in g.lines)
    assert any(line.startswith("FAIL A-2") for line in g.lines)


def test_error_verdict_is_never_waived() -> None:
    """A harness error stays red even when its requirement is waived."""
    g = evaluate([_r("A-1", "error", "REQ-RELAY-DL-1")], [_w("REQ-RELAY-DL-1")], TODAY)
    assert not g.ok
    assert "never waived" in g.lines[0]


def test_expired_waiver_fails_by_itself() -> None:
    """An expired waiver fails the gate even with all cases passing, naming it and its expiry."""
    g = evaluate([_r("A-1", "pass", "REQ-RELAY-DL-1")], [_w("REQ-RELAY-DL-1", date(2026, 6, 14))], TODAY)
    assert not g.ok
    assert g.lines[0] == (
        "EXPIRED waivers.yaml:2: waiver for REQ-RELAY-DL-1 expired on 2026-06-14 (known issue); "
        "renew it or fix the failure"
    )


def test_waiver_is_valid_on_its_expiry_day() -> None:
    """The expires date itself is still covered."""
    g = evaluate([_r("A-1", "fail", "REQ-RELAY-DL-1")], [_w("REQ-RELAY-DL-1", TODAY)], TODAY)
    assert g.ok


def test_expired_waiver_does_not_waive() -> None:
    """A failure under an expired waiver is reported as failing too."""
    g = evaluate([_r("A-1", "fail", "REQ-RELAY-DL-1")], [_w("REQ-RELAY-DL-1", date(2020, 1, 1))], TODAY)
    assert not g.ok
    assert any(line.startswith("FAIL A-1") for line in g.lines)


def test_unknown_requirement_in_waiver_is_an_error() -> None:
    """A waiver for a requirement missing from the catalogue fails the gate."""
    g = evaluate([_r("A-1", "pass", "REQ-RELAY-DL-1")], [_w("REQ-NOT-THERE")], TODAY)
    assert not g.ok
    assert "unknown requirement REQ-NOT-THERE" in g.lines[0]


def test_unused_waiver_is_noted_but_harmless() -> None:
    """A waiver that matched nothing is pointed out without failing the gate."""
    g = evaluate([_r("A-1", "pass", "REQ-RELAY-DL-1")], [_w("REQ-RELAY-DL-2")], TODAY)
    assert g.ok
    assert any(line.startswith("NOTE") and "matched no failing case" in line for line in g.lines)


def test_no_results_is_red() -> None:
    """A run with no results verified nothing and cannot pass."""
    g = evaluate([], [], TODAY)
    assert not g.ok
    assert "nothing was verified" in "\n".join(g.lines)


def test_load_valid_waiver_file(tmp_path: Path) -> None:
    """A well-formed file gives Waiver objects with dates and locations."""
    p = _write(
        tmp_path,
        "waivers:\n"
        "  - requirement: REQ-RELAY-DL-1\n"
        "    reason: 4.04 relaying not implemented yet\n"
        "    expires: 2026-12-31\n"
        "  - requirement: REQ-RELAY-TERM-1\n"
        "    reason: pretty-printing gateway\n"
        "    expires: '2027-01-15'\n"
        "    cases: [RELAY-DL-001]\n",
    )
    ws = load_waivers(p)
    assert ws[0] == Waiver("REQ-RELAY-DL-1", "4.04 relaying not implemented yet", date(2026, 12, 31), None, f"{p}:2")
    assert ws[1].expires == date(2027, 1, 15) and ws[1].cases == ("RELAY-DL-001",)


def test_empty_waiver_list_is_valid(tmp_path: Path) -> None:
    """``waivers: []`` is a valid file with nothing waived."""
    assert load_waivers(_write(tmp_path, "waivers: []\n")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "waivers:\n  - requirement: REQ-RELAY-DL-1\n    reason: r\n    expires: 2026-13-01\n",
            ":4: waivers[0].expires: expected a date written YYYY-MM-DD, found '2026-13-01'",
        ),
        (
            "waivers:\n  - requirement: REQ-RELAY-DL-1\n    reason: r\n    expires: '31/12/2026'\n",
            ":4: waivers[0].expires: expected a date written YYYY-MM-DD, found '31/12/2026'",
        ),
        (
            "waivers:\n  - requirement: REQ-RELAY-DL-1\n    reason: r\n    expires: '2026-02-30'\n",
            ":4: waivers[0].expires: expected a date written YYYY-MM-DD, found '2026-02-30'",
        ),
        (
            "waivers:\n  - requirement: REQ-RELAY-DL-1\n    expires: 2026-12-01\n",
            ":2: waivers[0]: missing required key 'reason'",
        ),
        (
            "waivers:\n  - requirement: REQ-RELAY-DL-1\n    reason: r\n    expires: 2026-12-01\n    until: x\n",
            ":5: waivers[0].until: unknown key 'until'",
        ),
        (
            "waivers:\n  - requirement: relay-dl-1\n    reason: r\n    expires: 2026-12-01\n",
            ":2: waivers[0].requirement: expected a requirement id such as REQ-RELAY-DL-1, found 'relay-dl-1'",
        ),
        (
            "waivers:\n  - requirement: REQ-RELAY-DL-42\n    reason: r\n    expires: 2026-12-01\n",
            ":2: waivers[0].requirement: unknown requirement 'REQ-RELAY-DL-42'",
        ),
        (
            "waivers:\n  - requirement: REQ-RELAY-DL-1\n    reason: r\n    expires: 2026-12-01\n    cases: []\n",
            ":5: waivers[0].cases: expected a non-empty list of test case ids",
        ),
        ("waiver: []\n", ":1: waiver: unknown key 'waiver'"),
    ],
)
def test_bad_waiver_files_give_located_errors(tmp_path: Path, text: str, expected: str) -> None:
    """Mistakes in the waiver file are reported as file:line: field.path: message."""
    p = _write(tmp_path, text)
    with pytest.raises(DefinitionError) as info:
        load_waivers(p)
    assert f"{p}{expected}" in str(info.value)


def _manifest(res: Path, *ids: str) -> None:
    """The run's record of what it collected, as ``run`` writes it."""
    cases = [{"id": i, "file": f"testcases/{i}.yaml"} for i in ids]
    (res / "_collected.json").write_text(json.dumps({"cases": cases}), encoding="utf-8")


def test_check_reads_a_results_folder(tmp_path: Path) -> None:
    """check() loads results and waivers from disk and applies the same rules."""
    res = tmp_path / "results"
    res.mkdir()
    _manifest(res, "RELAY-DL-001", "RELAY-DL-003")
    for r in (_r("RELAY-DL-001", "pass", "REQ-RELAY-DL-1"), _r("RELAY-DL-003", "fail", "REQ-RELAY-DL-1")):
        (res / f"{r['id']}.json").write_text(json.dumps(r), encoding="utf-8")
    assert not check(res, None, TODAY).ok
    w = _write(tmp_path, "waivers:\n  - requirement: REQ-RELAY-DL-1\n    reason: r\n    expires: 2026-12-31\n")
    assert check(res, w, TODAY).ok
    assert not check(res, w, date(2027, 1, 1)).ok


def test_check_turns_a_bad_waiver_file_into_a_red_gate(tmp_path: Path) -> None:
    """A broken waiver file fails the gate with its located message instead of raising."""
    res = tmp_path / "results"
    res.mkdir()
    _manifest(res, "A-1")
    (res / "A.json").write_text(json.dumps(_r("A-1", "pass", "REQ-RELAY-DL-1")), encoding="utf-8")
    w = _write(tmp_path, "waivers:\n  - requirement: REQ-RELAY-DL-1\n    reason: r\n    expires: soon\n")
    g = check(res, w, TODAY)
    assert not g.ok
    assert g.lines[0].startswith(f"ERROR {w}:4: waivers[0].expires:")
    assert g.lines[-1].startswith("gate FAILED")


def test_check_flags_unreadable_results(tmp_path: Path) -> None:
    """A corrupt result file fails the gate rather than being skipped silently."""
    res = tmp_path / "results"
    res.mkdir()
    (res / "A.json").write_text(json.dumps(_r("A-1", "pass", "REQ-RELAY-DL-1")), encoding="utf-8")
    (res / "B.json").write_text("{", encoding="utf-8")
    g = check(res, None, TODAY)
    assert not g.ok
    assert "B.json: unreadable result" in g.lines[0]


def _with_deviation(case_id: str, req: str) -> dict[str, Any]:
    r = _r(case_id, "pass", req)
    r["deviations"] = [{"step": "2[cue1].0", "field": "type (should)", "expected": "NON", "found": "CON", "ok": False}]
    return r


def test_a_should_deviation_is_a_warning_that_passes() -> None:
    """A case that passed with a recorded deviation is listed as a WARNING and counted; the gate passes."""
    g = evaluate([_with_deviation("GW-SPLIT-002", "REQ-GW-BULK-2"), _r("A-1", "pass", "REQ-GW-BULK-1")], [], TODAY)
    assert g.ok
    assert (
        "WARNING GW-SPLIT-002 [REQ-GW-BULK-2] step 2[cue1].0: type (should): expected NON, found CON "
        "(a SHOULD: a deviation, not a fail)"
    ) in g.lines
    assert g.lines[-1].startswith(
        "gate PASSED: 2 case(s): 2 passed, 0 waived, 0 failing, 0 not applicable; 1 warning(s)"
    )


def test_a_warning_names_the_requirement_of_its_check() -> None:
    """A case citing two requirements: the warning names the one the deviating check decides."""
    r = _with_deviation("GW-SPLIT-002", "REQ-GW-BULK-2")
    r["requirements"] = ["REQ-GW-BULK-2", "REQ-GW-BULK-1"]
    r["steps"] = [
        {"index": "1", "requirements": ["REQ-GW-BULK-1"]},
        {"index": "2[cue1].0", "requirements": ["REQ-GW-BULK-2"]},
    ]
    (line,) = [x for x in evaluate([r], [], TODAY).lines if x.startswith("WARNING")]
    assert line.startswith("WARNING GW-SPLIT-002 [REQ-GW-BULK-2] step 2[cue1].0:"), line


def test_strict_fails_on_a_deviation_only() -> None:
    """--strict fails the gate on a deviation, and only then: without one it is as green as before."""
    g = evaluate([_with_deviation("GW-SPLIT-002", "REQ-GW-BULK-2")], [], TODAY, strict=True)
    assert not g.ok and "FAIL --strict: 1 deviation(s) from a SHOULD" in g.lines
    assert g.lines[-1].startswith("gate FAILED:")
    assert evaluate([_r("A-1", "pass", "REQ-GW-BULK-1")], [], TODAY, strict=True).ok


def _passing_run(tmp_path: Path, *ids: str) -> Path:
    res = tmp_path / "results"
    res.mkdir(exist_ok=True)
    for i in ids:
        (res / f"{i}.json").write_text(json.dumps(_r(i, "pass", "REQ-RELAY-DL-1")), encoding="utf-8")
    return res


def test_a_lost_result_fails_the_gate(tmp_path: Path) -> None:
    """A collected case with no result (a crash in the case, a SUT profile that broke the capture)
    fails the gate even when every result there passed: it used to say PASSED."""
    res = _passing_run(tmp_path, "RELAY-DL-001")
    _manifest(res, "RELAY-DL-001", "RELAY-DL-002")
    g = check(res, None, TODAY)
    assert not g.ok
    assert "FAIL RELAY-DL-002: collected, but no result was written" in "\n".join(g.lines)
    assert g.lines[-1].startswith("gate FAILED")
    _passing_run(tmp_path, "RELAY-DL-002")
    assert check(res, None, TODAY).ok


def test_a_result_of_another_run_fails_the_gate(tmp_path: Path) -> None:
    res = _passing_run(tmp_path, "RELAY-DL-001", "GW-BULK-001")
    _manifest(res, "RELAY-DL-001")
    g = check(res, None, TODAY)
    assert not g.ok
    assert "FAIL GW-BULK-001: a result of a case this run did not collect" in "\n".join(g.lines)


def test_two_cases_with_one_id_fail_the_gate(tmp_path: Path) -> None:
    """Two files with one id: the second result overwrote the first, which may have failed."""
    res = _passing_run(tmp_path, "RELAY-DL-001")
    cases = [{"id": "RELAY-DL-001", "file": "a/RELAY-DL-001.yaml"}, {"id": "RELAY-DL-001", "file": "b/copy.yaml"}]
    (res / "_collected.json").write_text(json.dumps({"cases": cases}), encoding="utf-8")
    g = check(res, None, TODAY)
    assert not g.ok
    text = "\n".join(g.lines)
    assert "FAIL RELAY-DL-001: 2 collected cases share this id (a/RELAY-DL-001.yaml, b/copy.yaml)" in text


@pytest.mark.parametrize(
    ("content", "words"), [(None, "no record of the cases the run collected"), ("{", "unreadable record")]
)
def test_a_missing_or_broken_record_fails_the_gate(content: str | None, words: str, tmp_path: Path) -> None:
    res = _passing_run(tmp_path, "RELAY-DL-001")
    if content is not None:
        (res / "_collected.json").write_text(content, encoding="utf-8")
    g = check(res, None, TODAY)
    assert not g.ok and words in g.lines[0]
