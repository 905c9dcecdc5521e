"""Self-test: every suite passes the reference SUT and catches every faulty variant of its role.

Each faulty variant breaks one requirement. The expected verdicts (``sut_adapters/faulty/expected/``,
one module per role) were derived case by case from what each variant breaks; the test also checks
that every check a non-robustness variant fails decides that variant's requirement, so a case never
fails for a reason it does not claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, StepResult, Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.faulty import cue as faulty_cue
from sut_adapters.faulty import gateway as faulty_gateway
from sut_adapters.faulty import relay as faulty
from sut_adapters.faulty.expected import EXPECTED
from sut_adapters.faulty.expected.gateway import GW_SCALE
from sut_adapters.faulty.expected.relay import RELAY_UNDER_DISCARD
from sut_adapters.registry import CONFORMANT, FAULTY, make_adapter

from . import offline_compare
from .conftest import TESTCASES, profile_with

ROLE_OF = {"relay_class": "relay", "gateway_class": "gateway", "cue_class": "constrained-ue"}
ROLE_VARIANTS = {"relay": faulty.VARIANTS, "gateway": faulty_gateway.VARIANTS, "constrained-ue": faulty_cue.VARIANTS}
RUNS = [(role, sut) for role, by_sut in EXPECTED.items() for sut in sorted(by_sut)]


def test_every_variant_is_in_the_expectations() -> None:
    """No faulty variant escapes the self-test, and each role has enough of them."""
    listed = {sut for by_sut in EXPECTED.values() for sut in by_sut if sut != "reference"}
    assert listed == {f"faulty:{n}" for n in FAULTY}
    assert len(faulty.VARIANTS) >= 6 and len(faulty_gateway.VARIANTS) >= 6 and len(faulty_cue.VARIANTS) >= 3


def failing_checks(result: CaseResult) -> list[StepResult]:
    """The checks that made a case fail (a case keeps its other checks' verdicts)."""
    return [s for s in result.steps if s.verdict is Verdict.FAIL]


def run_suite(role: str, sut: str, profile: Profile, pcaps: Path | None) -> dict[str, CaseResult]:
    cases = [load_testcase(f, profile) for f in sorted((TESTCASES / role).glob("*.yaml"))]
    assert cases
    with Session(profile, make_adapter(sut), pcap_dir=pcaps, concurrency=8) as session:
        return {r.case_id: r for r in session.run_cases(cases)}


@pytest.mark.parametrize(("role", "sut"), RUNS, ids=[f"{r}-{s}" for r, s in RUNS])
def test_suite_verdicts_against(role: str, sut: str, fast_profile: Profile, tmp_path: Path) -> None:
    """Runs one role's suite against one SUT and compares every verdict with the expectation;
    every check that fails for a faulty variant names the requirement that variant breaks."""
    got = run_suite(role, sut, fast_profile, tmp_path)
    verdicts = {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS}
    reasons = {cid: got[cid].reason for cid in verdicts}
    # the cases that apply only under another reading of an open point: set aside for every SUT
    aside = dict.fromkeys(RELAY_UNDER_DISCARD, "not-applicable") if role == "relay" else {}
    # the scale cases apply only above this profile's batch of 50: their verdicts are tests/test_scale.py's
    scale = dict.fromkeys(GW_SCALE, "not-applicable") if role == "gateway" else {}
    assert verdicts == {**aside, **EXPECTED[role][sut], **scale}, reasons
    name = sut.removeprefix("faulty:")
    if name in ROLE_VARIANTS[role]:
        requirement = ROLE_VARIANTS[role][name][1]
        for cid, result in got.items():
            for check in failing_checks(result):
                assert requirement in check.requirements, (
                    f"{cid} fails {sut} in check {check.index} ({check.reason}), which decides "
                    f"{', '.join(check.requirements) or 'no requirement'}, not {requirement}"
                )
    for cid, result in got.items():  # evidence: a pcap per case run, and every non-pass names the step
        if result.verdict is Verdict.NOT_APPLICABLE:
            continue
        assert (tmp_path / f"{cid}.pcap").is_file()
        if result.verdict is not Verdict.PASS:
            assert result.decisive_step is not None
    # the run's pcaps, re-judged offline with the roles.yaml it wrote, agree with the live verdicts
    breaks = ROLE_VARIANTS[role][name][1] if name in ROLE_VARIANTS[role] else None
    offline_compare.check(role, sut, got, tmp_path, fast_profile, breaks)
    if sut == "reference":  # a correct SUT fails nothing offline either, in any capture of its run
        assert offline_compare.offline_fails(tmp_path, fast_profile) == []


def test_a_foreach_waits_once_for_a_defective_sut(fast_profile: Profile) -> None:
    """GW-BULK-003 against a gateway whose every response names the wrong recipient: the first UE's
    expectation waits its full time and fails; the other 49 are judged on what had arrived by the
    end of that wait (their reasons say so, each with its own closest datagram), all for
    REQ-GW-BULK-2. A correct SUT never reaches that point: each expectation then waits on its own."""
    case = load_testcase(TESTCASES / "gateway" / "GW-BULK-003.yaml", fast_profile)
    with Session(fast_profile, make_adapter("faulty:gw-wrong-recipient"), pcap_dir=None) as session:
        result = session.run_case(case)
    assert result.verdict is Verdict.FAIL
    per_ue = [s for s in result.steps if s.index.startswith("2[")]
    assert len(per_ue) == 50 and all(s.verdict is Verdict.FAIL for s in per_ue)
    assert all(s.requirements == ("REQ-GW-BULK-2",) for s in per_ue)
    first, *rest = per_ue
    assert f"within {fast_profile.timers.response_ms} ms" in first.reason, first.reason
    assert all("by the end of the wait of step 2[cue1].0; closest: datagram" in s.reason for s in rest), rest[0].reason
    assert len({s.datagram for s in per_ue}) == 50  # each judged on a message of its own
    with Session(fast_profile, make_adapter("reference"), pcap_dir=None) as session:
        assert session.run_case(case).verdict is Verdict.PASS


def test_concurrent_verdicts_equal_sequential(fast_profile: Profile) -> None:
    """Cases open at once on their own addresses give the same verdicts as one after another."""
    for sut in ("faulty:late-duplicate", "faulty:relays-without-link"):
        cases = [load_testcase(f, fast_profile) for f in sorted((TESTCASES / "relay").glob("*.yaml"))]
        runs = []
        for concurrency in (1, 8):
            with Session(fast_profile, make_adapter(sut), pcap_dir=None, concurrency=concurrency) as session:
                runs.append({r.case_id: r for r in session.run_cases(cases)})
        differ = {
            cid: [(r[cid].verdict.value, r[cid].reason) for r in runs]
            for cid in runs[0]
            if runs[0][cid].verdict is not runs[1][cid].verdict
        }
        assert differ == {}, sut


def flatten(protocol: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A variant's built-in protocol values as the dotted profile keys that hold them."""
    keys = {"query_names": "query"}
    out: dict[str, Any] = {}
    for key, value in protocol.items():
        name = prefix + keys.get(key, key)
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


CONFORMANT_RUNS = [(ROLE_OF[keyword], name) for name, (keyword, _, _) in sorted(CONFORMANT.items())]


@pytest.mark.parametrize(("role", "name"), CONFORMANT_RUNS, ids=[f"{r}-{n}" for r, n in CONFORMANT_RUNS])
def test_conformant_variant_passes_every_case(role: str, name: str, tmp_path: Path) -> None:
    """A legal alternative (it cites the sentence that allows it) passes every applicable case of its
    role, under a profile that holds the readings it implements."""
    _, cls, why = CONFORMANT[name]
    assert why, f"conformant:{name} cites no sentence that allows it"
    profile = load_profile(profile_with(tmp_path, name, flatten(cls.PROTOCOL)))
    pcaps = tmp_path / "pcaps"
    got = run_suite(role, f"conformant:{name}", profile, pcaps)
    not_passed = {cid: r.reason for cid, r in got.items() if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)}
    assert not_passed == {}
    # offline too, a legal alternative fails nothing: the run's pcaps re-judged with its roles.yaml
    # agree with the live verdicts, and no judgement of any capture is a fail
    offline_compare.check(role, f"conformant:{name}", got, pcaps, profile)
    offline_fails = offline_compare.offline_fails(pcaps, profile)
    assert offline_fails == [], offline_fails
    # At most one case set aside by the variant itself; the cases the profile's readings set aside
    # (a case that applies only under another reading) are set aside for the reference too.
    by_variant = [cid for cid, r in got.items() if r.verdict is Verdict.NOT_APPLICABLE and "profile" not in r.reason]
    assert len(by_variant) <= 1, {cid: got[cid].reason for cid in by_variant}
    assert any(r.verdict is Verdict.PASS for r in got.values())


# Profiles that read the open points another way: the reference follows each, and passes.
NON_DEFAULT: dict[str, dict[str, Any]] = {
    "renamed-query": {"query.ue_ids": "ue-id", "query.vendor": "dev-vendor", "query.type": "dev-type"},
    "api-root": {"api.root_path": ["msgin5g", "api"]},
    "csv-lists": {"query.list_encoding": "csv"},
    "answers-by-id": {"bulk_response_shape": "by-id"},
    "port-destination": {"port_match": "destination"},
    "transparent-tokens": {"readings.unsolicited_token": "transparent"},
}
NON_DEFAULT_RUNS = [(role, name) for name in NON_DEFAULT for role in ("relay", "gateway", "constrained-ue")]


@pytest.mark.parametrize(("role", "name"), NON_DEFAULT_RUNS, ids=[f"{r}-{n}" for r, n in NON_DEFAULT_RUNS])
def test_reference_passes_under_other_readings(role: str, name: str, tmp_path: Path) -> None:
    """No case has a profile value written in: under a profile with other names, paths, encodings,
    shapes or readings, the reference (which follows the profile) passes every applicable case."""
    profile = load_profile(profile_with(tmp_path, name, NON_DEFAULT[name]))
    got = run_suite(role, "reference", profile, None)
    assert {cid: r.reason for cid, r in got.items() if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)} == {}
    assert any(r.verdict is Verdict.PASS for r in got.values())


def test_a_variant_built_for_another_reading_is_refused_up_front(fast_profile: Profile) -> None:
    """A gateway that reads only answers keyed by id, run with the default (entries) profile: every case
    is an error naming the item, before any traffic."""
    got = run_suite("gateway", "conformant:gw-reads-by-id", fast_profile, None)
    assert {got.pop(cid).verdict for cid in GW_SCALE} == {Verdict.NOT_APPLICABLE}  # batch of 50
    assert {r.verdict for r in got.values()} == {Verdict.ERROR}
    assert all("bulk_response_shape" in r.reason and not r.exchange for r in got.values())


def test_a_should_deviation_is_a_warning_not_a_fail(fast_profile: Profile) -> None:
    """CON responses to NON requests (RFC 7252 5.2.3: SHOULD be NON) pass, with the deviation
    recorded on the check that saw it; every other case has none."""
    got = run_suite("gateway", "conformant:gw-con-responses", fast_profile, None)
    assert {got.pop(cid).verdict for cid in GW_SCALE} == {Verdict.NOT_APPLICABLE}  # batch of 50
    assert {r.verdict for r in got.values()} == {Verdict.PASS}
    deviations = {cid: r.deviations for cid, r in got.items() if r.deviations}
    assert set(deviations) == {"GW-SPLIT-002"}
    assert {d.field for _, d in deviations["GW-SPLIT-002"]} == {"type (should)"}
    assert len(deviations["GW-SPLIT-002"]) == 3  # one per UE
    reference = run_suite("gateway", "reference", fast_profile, None)
    assert not any(r.deviations for r in reference.values())
