"""Tests for the compliance matrix (msgin5g_conformance.report.matrix)."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance.report import matrix
from msgin5g_conformance.report.matrix import render_markdown
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.spec.requirements import catalogue
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.faulty.expected import proven_cases

from .conftest import TESTCASES, profile_with

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "testcases" / "relay"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(None)


def _result(case_id: str, verdict: str, profile: Profile, **extra: Any) -> dict[str, Any]:
    tc = load_testcase(CASES / f"{case_id}.yaml", profile)
    data: dict[str, Any] = {
        "id": tc.id,
        "title": tc.title,
        "file": str(CASES / f"{case_id}.yaml"),
        "sha256": tc.sha256,
        "clause": tc.clause,
        "requirements": list(tc.requirements),
        "strength": tc.strength,
        "role": tc.role,
        "verdict": verdict,
        "reason": f"{verdict} reason",
        "profile": profile.name,
        "profile_sha256": profile.sha256,
        "sut": "faulty:demo",
        "pcap": f"/elsewhere/{case_id}.pcap",
        "provisional": [],
        "steps": [],
        "exchange": [],
        "duration_s": 0.1,
    }
    data.update(extra)
    return data


@pytest.fixture
def run_dirs(tmp_path: Path, profile: Profile) -> tuple[Path, Path, Path]:
    """A run of three shipped cases: DL-003 failed, DL-004 not applicable, UL-002 never ran."""
    tc_dir, res_dir, pcap_dir = tmp_path / "testcases", tmp_path / "results", tmp_path / "pcaps"
    for d in (tc_dir, res_dir, pcap_dir):
        d.mkdir()
    for cid in ("RELAY-DL-003", "RELAY-DL-004", "RELAY-UL-002"):
        shutil.copy(CASES / f"{cid}.yaml", tc_dir / f"{cid}.yaml")
    results = [
        _result("RELAY-DL-003", "fail", profile, provisional=["addresses", "recipient_option"]),
        _result("RELAY-DL-004", "not-applicable", profile),
    ]
    for r in results:
        (res_dir / f"{r['id']}.json").write_text(json.dumps(r), encoding="utf-8")
    (pcap_dir / "RELAY-DL-003.pcap").write_bytes(b"pcap-bytes-003")
    (pcap_dir / "RELAY-DL-004.pcap").write_bytes(b"pcap-bytes-004")
    return res_dir, tc_dir, pcap_dir


def _build(dirs: tuple[Path, Path, Path], profile: Profile) -> dict[str, Any]:
    res, tc, pc = dirs
    return matrix.build(res, tc, pc, profile, "faulty:demo", "9.9.9", now=WHEN)


@pytest.mark.parametrize(
    ("verdicts", "status"),
    [
        ([], "uncovered"),
        (["pass", "pass"], "pass"),
        (["pass", "not-applicable"], "pass"),
        (["not-applicable", "not-applicable"], "not-applicable"),
        (["pass", "fail", "error"], "fail"),
        (["pass", "error", "inconclusive"], "error"),
        (["pass", "inconclusive"], "inconclusive"),
        (["pass", "not-run"], "not-run"),
    ],
)
def test_requirement_status_rules(verdicts: list[str], status: str) -> None:
    """A requirement's status follows from its cases' verdicts, failures first."""
    assert matrix.requirement_status(verdicts) == status


def test_every_catalogued_requirement_is_listed(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """The matrix has one row per catalogue entry, in catalogue order, with its clause and tag."""
    m = _build(run_dirs, profile)
    assert [r["id"] for r in m["requirements"]] == list(catalogue())
    row = next(r for r in m["requirements"] if r["id"] == "REQ-RELAY-DL-1")
    assert row["clause"] == catalogue()["REQ-RELAY-DL-1"].clause and row["tag"] == "SEED"


def test_statuses_from_the_run(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """Failed, not-applicable, not-run and uncovered requirements are told apart."""
    status = {r["id"]: r["status"] for r in _build(run_dirs, profile)["requirements"]}
    assert status["REQ-RELAY-DL-1"] == "fail"
    assert status["REQ-RELAY-TERM-1"] == "fail"
    assert status["REQ-RELAY-DL-2"] == "not-applicable"
    assert status["REQ-COAP-CRIT-1"] == "not-run"
    assert status["REQ-RELAY-UL-1"] == "uncovered"


def test_cases_and_verdicts_per_requirement(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """Each requirement lists the cases that cite it with their verdicts."""
    m = _build(run_dirs, profile)
    row = next(r for r in m["requirements"] if r["id"] == "REQ-RELAY-DL-2")
    assert [{k: v for k, v in c.items() if k != "proven_by"} for c in row["cases"]] == [
        {"id": "RELAY-DL-004", "verdict": "not-applicable", "provisional": []}
    ]
    not_run = next(c for c in m["cases"] if c["id"] == "RELAY-UL-002")
    assert not_run["verdict"] == "not-run"
    assert m["summary"]["cases"] == {"fail": 1, "not-applicable": 1, "not-run": 1}


def test_each_case_lists_the_variants_that_prove_it(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """Per requirement and case, the faulty variants the self-test's table says fail that case, read
    from the table itself (a variant added there shows up here), in JSON and Markdown."""
    m = _build(run_dirs, profile)
    row = next(r for r in m["requirements"] if r["id"] == "REQ-RELAY-DL-2")
    listed = row["cases"][0]["proven_by"]
    assert listed == proven_cases()["RELAY-DL-004"]
    assert "faulty:relays-without-link" in listed and "faulty:drops-404" not in listed
    assert next(c for c in m["cases"] if c["id"] == "RELAY-UL-002")["proven_by"] == proven_cases()["RELAY-UL-002"]
    md = render_markdown(m)
    assert "## Cases proven to fail" in md
    line = next(x for x in md.splitlines() if x.startswith("| REQ-RELAY-DL-2 | RELAY-DL-004 |"))
    assert "relays-without-link" in line and "faulty:" not in line


def test_every_shipped_case_has_a_variant_that_fails_it() -> None:
    """The self-test's table proves every shipped case can fail, and names no case that is not shipped."""
    shipped = {p.stem for p in TESTCASES.rglob("*.yaml")}
    proven = proven_cases()
    assert sorted(shipped - set(proven)) == []
    assert sorted({cid.split("[", 1)[0] for cid in proven} - shipped) == []
    # a coap case's run in one role lists only the variants of that role
    assert "faulty:cue-direct-to-scms" not in proven["COAP-VER-001[relay]"]
    assert "faulty:uu-dies-on-malformed" in proven["COAP-VER-001[relay]"]


def test_an_unobservable_requirement_says_why(run_dirs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """A requirement the catalogue marks unobservable under a reading carries its reason when the
    run's profile holds that reading, and not otherwise."""
    from msgin5g_conformance.spec.requirements import Requirement

    req = Requirement("REQ-X", "t", "c", "SEED", (("gateway_config_client", "seal-c"),), "SEAL-C: not on the wire")
    assert req.unobservable_under({"gateway_config_client": "seal-c"})
    assert not req.unobservable_under({"gateway_config_client": "collocated"})
    assert not Requirement("REQ-Y", "t", "c", "SEED").unobservable_under({})
    sealc = load_profile(profile_with(tmp_path, "sealc", {"readings.gateway_config_client": "seal-c"}))
    marked = [rid for rid, r in catalogue().items() if r.unobservable]
    assert "REQ-GW-CFG-1" in marked  # the gateway's own client behind SEAL-C
    for profile, expect in ((sealc, True), (load_profile(None), False)):
        m = _build(run_dirs, profile)
        for rid in marked:
            row = next(r for r in m["requirements"] if r["id"] == rid)
            assert (row["unobservable"] is not None) is expect
            if expect:
                assert row["note"] and "not on the wire under gateway_config_client: seal-c" in render_markdown(m)


def test_provisional_checks_are_flagged(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """A requirement resting on provisional profile items says which ones."""
    m = _build(run_dirs, profile)
    row = next(r for r in m["requirements"] if r["id"] == "REQ-RELAY-DL-1")
    assert row["provisional"] is True
    assert row["provisional_items"] == ["addresses", "recipient_option"]
    assert next(r for r in m["requirements"] if r["id"] == "REQ-RELAY-DL-2")["provisional"] is False


def test_run_identity(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """Harness version, profile name and hash, SUT, date and every file and pcap hash are recorded."""
    _, tc, _ = run_dirs
    ident = _build(run_dirs, profile)["identity"]
    assert ident["harness_version"] == "9.9.9"
    assert ident["profile"]["name"] == profile.name and ident["profile"]["sha256"] == profile.sha256
    assert ident["sut"] == "faulty:demo"
    assert ident["date"] == "2026-01-02T03:04:05+00:00"
    files = {f["file"]: f for f in ident["testcases"]}
    assert set(files) == {"RELAY-DL-003.yaml", "RELAY-DL-004.yaml", "RELAY-UL-002.yaml"}
    raw = (tc / "RELAY-DL-003.yaml").read_bytes()
    assert files["RELAY-DL-003.yaml"] == {
        "file": "RELAY-DL-003.yaml",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "id": "RELAY-DL-003",
    }
    assert {p["file"]: p["sha256"] for p in ident["pcaps"]} == {
        "RELAY-DL-003.pcap": hashlib.sha256(b"pcap-bytes-003").hexdigest(),
        "RELAY-DL-004.pcap": hashlib.sha256(b"pcap-bytes-004").hexdigest(),
    }
    case = next(c for c in _build(run_dirs, profile)["cases"] if c["id"] == "RELAY-DL-003")
    assert case["pcap_sha256"] == hashlib.sha256(b"pcap-bytes-003").hexdigest()


def test_inconsistencies_become_warnings(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """Another profile, an edited case file and an unreadable result are reported, not hidden."""
    res, _, _ = run_dirs
    r = json.loads((res / "RELAY-DL-003.json").read_text(encoding="utf-8"))
    r["profile_sha256"] = "0" * 64
    r["sha256"] = "1" * 64
    (res / "RELAY-DL-003.json").write_text(json.dumps(r), encoding="utf-8")
    (res / "broken.json").write_text("{not json", encoding="utf-8")
    warnings = "\n".join(_build(run_dirs, profile)["warnings"])
    assert "RELAY-DL-003: run with profile" in warnings
    assert "RELAY-DL-003: the test case file changed after the run" in warnings
    assert "broken.json: unreadable result" in warnings


def test_write_json_and_markdown(run_dirs: tuple[Path, Path, Path], profile: Profile, tmp_path: Path) -> None:
    """write() produces compliance.json (the same data) and a Markdown table per section."""
    m = _build(run_dirs, profile)
    j, md = matrix.write(m, tmp_path / "out")
    assert (j.name, md.name) == ("compliance.json", "compliance.md")
    assert json.loads(j.read_text(encoding="utf-8")) == m
    text = md.read_text(encoding="utf-8")
    assert "| Harness version | 9.9.9 |" in text
    assert f"SHA-256 `{profile.sha256}`" in text
    row = next(line for line in text.splitlines() if line.startswith("| REQ-RELAY-DL-1 |"))
    assert "FAIL" in row and "provisional (addresses, recipient_option)" in row and "RELAY-DL-003 (fail)" in row
    assert any(line.startswith("| REQ-RELAY-UL-1 | uncovered |") for line in text.splitlines())
    assert hashlib.sha256(b"pcap-bytes-003").hexdigest() in text


def test_markdown_cells_are_escaped(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """A reason containing a pipe or a newline cannot break the Markdown table."""
    res, _, _ = run_dirs
    r = json.loads((res / "RELAY-DL-003.json").read_text(encoding="utf-8"))
    r["reason"] = "found a|b\nthen c"
    (res / "RELAY-DL-003.json").write_text(json.dumps(r), encoding="utf-8")
    text = matrix.render_markdown(_build(run_dirs, profile))
    row = next(line for line in text.splitlines() if line.startswith("| RELAY-DL-003 |"))
    assert "found a\\|b then c" in row
    assert row.count(" | ") == 5  # six cells, none split


def test_missing_folders_are_warnings(tmp_path: Path, profile: Profile) -> None:
    """Pointing at folders that do not exist still builds a matrix (all uncovered) and says why."""
    m = matrix.build(tmp_path / "no-results", tmp_path / "no-cases", tmp_path / "no-pcaps", profile, "x", "1")
    assert {r["status"] for r in m["requirements"]} == {"uncovered"}
    assert any("no such results folder" in w for w in m["warnings"])
    assert any("no such test case folder" in w for w in m["warnings"])


def test_sut_taken_from_results(run_dirs: tuple[Path, Path, Path], profile: Profile) -> None:
    """Without an explicit SUT the matrix names the one the results were produced against."""
    res, tc, pc = run_dirs
    m = matrix.build(res, tc, pc, profile, None, "1", now=WHEN)
    assert m["identity"]["sut"] == "faulty:demo"
    assert not any("run against SUT" in w for w in m["warnings"])


def test_each_requirement_shows_strength_readings_and_warnings(tmp_path: Path, profile: Profile) -> None:
    """The matrix shows per requirement the strength of the cases citing it, the readings their
    verdicts rest on and the SHOULD deviations its checks recorded, in JSON and in Markdown."""
    tc_dir, res_dir, pcap_dir = tmp_path / "testcases", tmp_path / "results", tmp_path / "pcaps"
    for d in (tc_dir, res_dir, pcap_dir):
        d.mkdir()
    shutil.copy(CASES / "RELAY-DL-001.yaml", tc_dir / "RELAY-DL-001.yaml")
    step = {
        "index": "1",
        "kind": "expect",
        "verdict": "pass",
        "requirements": ["REQ-RELAY-DL-1"],
        "deviations": [{"field": "type (should)", "expected": "NON", "found": "CON", "ok": False}],
    }
    result = _result("RELAY-DL-001", "pass", profile, steps=[step], readings={"unsolicited_token": "free"})
    (res_dir / "RELAY-DL-001.json").write_text(json.dumps(result), encoding="utf-8")
    m = matrix.build(res_dir, tc_dir, pcap_dir, profile, "faulty:demo", "9.9.9", now=WHEN)
    row = next(r for r in m["requirements"] if r["id"] == "REQ-RELAY-DL-1")
    assert (row["strength"], row["readings"], row["warnings"]) == (["shall"], {"unsolicited_token": "free"}, 1)
    untouched = next(r for r in m["requirements"] if r["id"] == "REQ-GW-BULK-1")
    assert (untouched["strength"], untouched["readings"], untouched["warnings"]) == ([], {}, 0)
    md = matrix.render_markdown(m)
    assert m["identity"]["profile"]["readings"]["seed_revision"] == "001"  # the run's, used or not
    assert "| Readings | seed_revision: 001, relay_model: terminating," in md
    assert "| Requirement | Status | Strength | Reading | Warnings |" in md
    line = next(x for x in md.splitlines() if x.startswith("| REQ-RELAY-DL-1 |"))
    assert "| shall | unsolicited_token: free | 1 |" in line, line
