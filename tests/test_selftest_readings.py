"""Self-test under the readings of open points: the cases that apply only under a reading catch
the variants that break it, and nothing else.

REQ-RELAY-UL-2 and REQ-RELAY-DL-3 are open in the seed (profile readings
``uplink_other_requests`` and ``other_response_codes``, default ``open``). Their cases
(``RELAY_UNDER_DISCARD``, in ``testcases/relay/`` with the others) apply only under ``discard``:
under the default profile they are not applicable for every SUT (``test_selftest.py`` expects
that). ``sut_adapters/faulty/expected/relay.py`` (``UNDER_READINGS``) lists, per
reading, the SUTs to run and the verdicts the whole relay suite must give them there; each run
also checks that every failing check of a variant decides that variant's requirement, as
``test_selftest.py`` does for the default profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.conformant.relay import RejectsOtherGets
from sut_adapters.faulty.expected import UNDER_READINGS
from sut_adapters.faulty.expected.relay import DISCARD_READINGS, RELAY_UNDER_DISCARD
from sut_adapters.reference import ReferenceAdapter
from sut_adapters.registry import CONFORMANT, FAULTY, make_adapter

from .conftest import TESTCASES, profile_with
from .test_selftest import NON_DEFAULT, failing_checks, flatten

READING_CASES = [TESTCASES / "relay" / f"{cid}.yaml" for cid in RELAY_UNDER_DISCARD]
RUNS = [(role, readings, sut, cases) for role, readings, sut, cases in UNDER_READINGS]
OPEN_CHOICES = ("rejects-other-gets", "relays-every-code")  # conformant: legal only under open


def run_relay_suite(
    sut: str, profile: Profile, pcaps: Path | None, only_readings: bool = False
) -> dict[str, CaseResult]:
    """The whole relay suite (its reading cases included, or only those) against one SUT."""
    files = list(READING_CASES) if only_readings else sorted((TESTCASES / "relay").glob("*.yaml"))
    cases = [load_testcase(f, profile) for f in files]
    with Session(profile, make_adapter(sut), pcap_dir=pcaps, concurrency=8) as session:
        return {r.case_id: r for r in session.run_cases(cases)}


def reading_profile(tmp_path: Path, readings: dict[str, str], extra: dict[str, object] | None = None) -> Profile:
    name = "readings-" + "-".join(f"{k}-{v}" for k, v in sorted(readings.items()))
    changes: dict[str, object] = {f"readings.{k}": v for k, v in readings.items()}
    return load_profile(profile_with(tmp_path, name, {**changes, **(extra or {})}))


def test_the_reading_cases_are_the_listed_ones() -> None:
    """The table's list of reading cases is every relay case that applies only under a discard
    reading, and each names the reading in its result."""
    open_points = {"readings.uplink_other_requests", "readings.other_response_codes"}
    conditional = [
        p.stem for p in (TESTCASES / "relay").glob("*.yaml") if open_points & set(load_testcase(p).profile_conditions)
    ]
    assert sorted(conditional) == sorted(RELAY_UNDER_DISCARD)
    for f in READING_CASES:
        case = load_testcase(f)
        keys = set(case.profile_conditions)
        assert keys & {"readings.uplink_other_requests", "readings.other_response_codes"}, f.name
        assert case.readings, f.name


def test_every_reading_variant_is_run_under_its_reading() -> None:
    """A variant registered for a requirement that a reading decides is run under that reading and
    fails at least one case there."""
    under = {sut for _, _, sut, cases in UNDER_READINGS if any(v == "fail" for v in cases.values())}
    for name, (_, _, requirement) in FAULTY.items():
        if requirement in ("REQ-RELAY-UL-2", "REQ-RELAY-DL-3"):
            assert f"faulty:{name}" in under, name


@pytest.mark.parametrize(
    ("role", "readings", "sut", "cases"), RUNS, ids=[f"{r}-{s}-under-discard" for r, _, s, _ in RUNS]
)
def test_suite_verdicts_under_reading(
    role: str, readings: dict[str, str], sut: str, cases: dict[str, str], tmp_path: Path
) -> None:
    """The relay suite against one SUT under a profile holding the readings: every verdict as the
    table says, every failing check of a faulty variant decides its requirement, and the cases of
    the reading are judged (not set aside), naming the readings they rest on."""
    assert role == "relay"
    profile = reading_profile(tmp_path, readings)
    got = run_relay_suite(sut, profile, tmp_path)
    verdicts = {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS}
    assert verdicts == cases, {cid: got[cid].reason for cid in verdicts}
    for cid in RELAY_UNDER_DISCARD:
        assert got[cid].verdict is not Verdict.NOT_APPLICABLE, got[cid].reason
        assert got[cid].readings, cid
    name = sut.removeprefix("faulty:")
    if name in FAULTY and FAULTY[name][2] != "robustness":
        requirement = FAULTY[name][2]
        for cid, result in got.items():
            for check in failing_checks(result):
                assert requirement in check.requirements, (
                    f"{cid} fails {sut} in check {check.index} ({check.reason}), which decides "
                    f"{', '.join(check.requirements) or 'no requirement'}, not {requirement}"
                )
    for cid, result in got.items():  # evidence: a pcap per case, and every non-pass names the step
        assert (tmp_path / f"{cid}.pcap").is_file()
        if result.verdict is not Verdict.PASS:
            assert result.decisive_step is not None


def test_reading_cases_do_not_apply_under_open(fast_profile: Profile) -> None:
    """Under the default readings (open) every reading case is not applicable, with a reason that
    names the reading; a variant that breaks the discard reading then passes every case."""
    got = run_relay_suite("faulty:relays-any-recipient", fast_profile, None)
    for cid in RELAY_UNDER_DISCARD:
        assert got[cid].verdict is Verdict.NOT_APPLICABLE
        assert "readings." in got[cid].reason and "'open'" in got[cid].reason, got[cid].reason
    assert {r.verdict for cid, r in got.items() if cid not in RELAY_UNDER_DISCARD} == {Verdict.PASS}


CONFORMANT_UNDER_DISCARD = sorted(
    name for name, (keyword, _, _) in CONFORMANT.items() if keyword == "relay_class" and name not in OPEN_CHOICES
)


@pytest.mark.parametrize("name", CONFORMANT_UNDER_DISCARD)
def test_conformant_relays_pass_the_reading_cases(name: str, tmp_path: Path) -> None:
    """Every legal alternative that discards what the reference discards passes the reading cases
    under the discard readings (with the readings it implements itself, e.g. relay_model)."""
    _, cls, _ = CONFORMANT[name]
    profile = reading_profile(tmp_path, DISCARD_READINGS, flatten(cls.PROTOCOL))
    got = run_relay_suite(f"conformant:{name}", profile, None, only_readings=True)
    assert {cid: r.reason for cid, r in got.items() if r.verdict is not Verdict.PASS} == {}


@pytest.mark.parametrize("name", OPEN_CHOICES)
def test_legal_choices_under_open_are_refused_under_discard(name: str, tmp_path: Path) -> None:
    """A conformant relay that takes another legal choice on an open point states the reading it
    implements (open): it passes the reading cases' runs under open (they do not apply), and a run
    under discard is refused up front, naming the reading, before any traffic."""
    _, cls, why = CONFORMANT[name]
    assert "open" in flatten(cls.PROTOCOL).values() and why
    got = run_relay_suite(f"conformant:{name}", reading_profile(tmp_path, DISCARD_READINGS), None, only_readings=True)
    assert {r.verdict for r in got.values()} == {Verdict.ERROR}
    assert all("readings." in r.reason and not r.exchange for r in got.values())


def test_rejecting_other_gets_is_visible_on_the_wire(tmp_path: Path) -> None:
    """conformant:rejects-other-gets really answers a GET it does not relay with 4.00 (so that its
    passes are not the reference's behaviour under another name): under the discard reading, with
    the SUT's reading check out of the way, RELAY-UL-004 catches the 4.00 at the client."""
    profile = reading_profile(tmp_path, DISCARD_READINGS)
    case = load_testcase(TESTCASES / "relay" / "RELAY-UL-004.yaml", profile)

    class Unchecked(RejectsOtherGets):
        PROTOCOL: ClassVar[dict[str, Any]] = {}

    with Session(profile, ReferenceAdapter(name="rejects-unchecked", relay_class=Unchecked), pcap_dir=None) as s:
        result = s.run_case(case)
    assert result.verdict is Verdict.FAIL, result.reason
    assert any(r.get("code") == "4.00" and str(r["src_node"]).startswith("sut") for r in result.exchange)


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_reference_passes_the_reading_cases_under_other_profiles(name: str, tmp_path: Path) -> None:
    """The reading cases have no profile value written in either: with the other names, paths,
    encodings and readings of test_selftest.NON_DEFAULT, plus the discard readings, the reference
    passes every reading case that applies (RELAY-UL-005 needs the source port to count)."""
    profile = reading_profile(tmp_path, DISCARD_READINGS, NON_DEFAULT[name])
    got = run_relay_suite("reference", profile, None, only_readings=True)
    assert {cid: r.reason for cid, r in got.items() if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)} == {}
    applicable = {cid for cid, r in got.items() if r.verdict is Verdict.PASS}
    assert applicable >= set(RELAY_UNDER_DISCARD) - {"RELAY-UL-005"}
