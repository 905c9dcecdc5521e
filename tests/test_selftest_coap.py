"""Self-test of the CoAP message-layer suite (``testcases/coap/``), run once per role.

Every coap case is role-independent (``role: any``): the loader makes one case per role that has
an endpoint the case exercises (``COAP-VER-001[relay]``), whose steps run once per such endpoint.
This runs the suite, per role, against the reference, against every CoAP faulty variant
(``sut_adapters/faulty/coap.py``: each must fail exactly its cases, every failing check deciding
the requirement it breaks, and in the ``should`` cases leave a deviation instead), against the
existing faulty variants of the role (they pass unless ``sut_adapters/faulty/expected/coap.py``
says otherwise) and against every conformant variant of the role (a legal alternative passes).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.spec.loader import load_testcases
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.faulty import coap as faulty_coap
from sut_adapters.faulty.expected import coap as expected
from sut_adapters.registry import CONFORMANT, FAULTY, FAULTY_COAP, make_adapter

from .conftest import ROOT, TESTCASES, profile_with
from .test_selftest import flatten

COAP = TESTCASES / "coap"
ROLE_OF = {"relay_class": "relay", "gateway_class": "gateway", "cue_class": "constrained-ue"}
ROLES = ("relay", "gateway", "constrained-ue")

RUNS = [
    (role, sut)
    for role in ROLES
    for sut in [
        "reference",
        *(f"faulty:{n}" for n in sorted(FAULTY_COAP)),
        *(f"faulty:{n}" for n, (k, _, _) in sorted(FAULTY.items()) if ROLE_OF[k] == role),
    ]
    if sut not in expected.NOT_RUN
]


def coap_cases(role: str, profile: Profile) -> list[Any]:
    cases = [c for f in sorted(COAP.glob("*.yaml")) for c in load_testcases(f, profile) if c.role == role]
    assert cases
    return cases


def run_coap(
    role: str, sut: str, profile: Profile, pcaps: Path | None, only: tuple[str, ...] = ()
) -> dict[str, CaseResult]:
    """One role's coap cases (or only those named) against one SUT: case file id -> result."""
    cases = [c for c in coap_cases(role, profile) if not only or c.base_id in only]
    with Session(profile, make_adapter(sut), pcap_dir=pcaps, concurrency=8) as session:
        results = session.run_cases(cases)
    assert all(r.case_id.endswith(f"[{role}]") for r in results)
    return {r.case_id.split("[", 1)[0]: r for r in results}


def test_the_table_names_every_variant() -> None:
    """Each CoAP variant is in the table for every role, each fails at least one case somewhere
    (or leaves a deviation), and every coap case is failed by some CoAP variant in every role
    that runs it (a should case: a deviation)."""
    for role in ROLES:
        table = expected.EXPECTED[role]
        assert {f"faulty:{n}" for n in FAULTY_COAP} <= set(table)
        failed = {c for sut in FAULTY_COAP for c in table[f"faulty:{sut}"]}
        deviated = {
            c
            for sut, cases in expected.DEVIATIONS[role].items()
            if sut.removeprefix("faulty:") in FAULTY_COAP
            for c in cases
        }
        runs = {c.id.split("[")[0] for c in coap_cases(role, load_profile())}
        assert runs <= failed | deviated, runs - failed - deviated
    assert set(FAULTY_COAP) == set(faulty_coap.VARIANTS) and len(FAULTY_COAP) >= 12
    assert not set(FAULTY_COAP) & set(FAULTY)  # one name, one variant


def test_one_case_per_role_with_its_endpoints(fast_profile: Profile) -> None:
    """A role-independent case is one case per role that has one of its endpoints; its steps run
    once per endpoint (index ``N[sut.xx]``), with ${peer} the endpoint's tester peer."""
    cases = load_testcases(COAP / "COAP-PING-001.yaml", fast_profile)
    assert [c.id for c in cases] == ["COAP-PING-001[relay]", "COAP-PING-001[gateway]", "COAP-PING-001[constrained-ue]"]
    relay = cases[0]
    assert relay.base_id == "COAP-PING-001" and relay.endpoints == ("sut.pc5", "sut.uu")
    assert [s.index for s in relay.steps] == [
        "0[sut.pc5]",
        "1[sut.pc5]",
        "2[sut.pc5]",
        "0[sut.uu]",
        "1[sut.uu]",
        "2[sut.uu]",
    ]
    sends = [s for s in relay.steps if s.index.startswith("0[")]
    assert [(s.sender, s.to) for s in sends] == [("cue2", "sut.pc5"), ("scms", "sut.uu")]  # type: ignore[union-attr]
    assert relay.capabilities == ("link-control",)  # the relay probe links a client
    assert relay.profile_conditions == {"readings.relay_model": "terminating"}
    assert cases[2].capabilities == ("trigger-request",) and cases[2].profile_conditions == {}
    assert {"cue1", "cue2", "scms"} <= relay.nodes()
    pc5_only = load_testcases(COAP / "COAP-CRIT-001.yaml", fast_profile)
    assert [c.id for c in pc5_only] == ["COAP-CRIT-001[relay]", "COAP-CRIT-001[gateway]"]


@pytest.mark.parametrize(("role", "sut"), RUNS, ids=[f"{r}-{s}" for r, s in RUNS])
def test_coap_verdicts_against(role: str, sut: str, fast_profile: Profile, tmp_path: Path) -> None:
    """The coap suite of one role against one SUT: every verdict as the table says; every check a
    CoAP variant fails decides the requirement it breaks; the deviations a SHOULD variant leaves."""
    got = run_coap(role, sut, fast_profile, tmp_path)
    verdicts = {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS}
    assert verdicts == expected.EXPECTED[role].get(sut, {}), {cid: got[cid].reason for cid in verdicts}
    name = sut.removeprefix("faulty:")
    if name in FAULTY_COAP:
        requirement = FAULTY_COAP[name][1]
        for cid, result in got.items():
            for check in result.steps:
                if check.verdict is Verdict.FAIL:
                    assert requirement in check.requirements, (cid, check.index, check.reason, check.requirements)
    # a SHOULD broken is a deviation on a passing check: exactly where the table says
    deviations = {cid for cid, r in got.items() if r.deviations}
    want = expected.DEVIATIONS[role].get(sut, set())
    assert deviations == want, {cid: got[cid].deviations for cid in deviations}
    for cid, result in got.items():  # evidence: a pcap per case and role, a decisive step for a non-pass
        assert (tmp_path / f"{cid}[{role}].pcap").is_file()
        if result.verdict is not Verdict.PASS:
            assert result.decisive_step is not None


def test_the_reference_passes_with_probes_and_no_deviation(fast_profile: Profile) -> None:
    """The reference passes every coap case of every role, each with a passing probe per endpoint
    (judged under the case's requirement) and no deviation."""
    for role in ROLES:
        got = run_coap(role, "reference", fast_profile, None)
        for cid, r in got.items():
            assert r.verdict is Verdict.PASS, (cid, r.reason)
            assert not r.deviations
            case = next(c for c in coap_cases(role, fast_profile) if c.id == f"{cid}[{role}]")
            # one probe per endpoint: a step of its own, or the positive control of an absence
            probes = [s for s in r.steps if s.kind == "probe"]
            controls = [s for s in r.steps if s.kind == "expect_nothing"]
            assert len(probes) + len(controls) == len(case.endpoints), (cid, [s.index for s in r.steps])
            for p in probes:
                assert p.requirements == case.requirements and p.reason.startswith("liveness probe passed"), p


def test_a_sut_that_dies_fails_through_the_probe(fast_profile: Profile) -> None:
    """The variant that stops on an option nibble of 15: in COAP-FMT-002 (NONs, nothing to answer)
    only the probe shows it, so the case fails (not inconclusive) with the probe's reason."""
    for role in ROLES:
        # the whole suite against this variant is test_coap_verdicts_against's
        r = run_coap(role, "faulty:coap-dies-on-bad-nibble", fast_profile, None, only=("COAP-FMT-002",))["COAP-FMT-002"]
        assert r.verdict is Verdict.FAIL
        assert r.reason.startswith("liveness probe failed (ping at "), r.reason
        failed = [s for s in r.steps if s.verdict is Verdict.FAIL]
        assert failed and all(s.kind == "probe" and s.requirements == ("REQ-COAP-FMT-1",) for s in failed)


def test_an_allowed_reset_of_a_non_passes(fast_profile: Profile) -> None:
    """RFC 7252 4.3: rejecting a NON MAY involve a Reset. A SUT that resets every malformed or
    Empty NON passes COAP-NON-001, COAP-FMT-002 and COAP-CRIT-003 like one that stays silent."""

    class ResetsNons(faulty_coap.EndpointRules):
        def ignore(self, node: Any, data: bytes, src: Any, why: str) -> None:
            if len(data) >= 4 and data[0] >> 6 == 1 and (data[0] >> 4) & 3 == 1:
                self.reject_con(node, (data[2] << 8) | data[3], src, why)

    classes = faulty_coap._for_every_role(ResetsNons)
    from sut_adapters.reference import ReferenceAdapter

    for role in ROLES:
        cases = [
            c for c in coap_cases(role, fast_profile) if c.base_id in ("COAP-NON-001", "COAP-FMT-002", "COAP-CRIT-003")
        ]
        with Session(fast_profile, ReferenceAdapter(name="resets-nons", **classes), pcap_dir=None) as session:
            results = session.run_cases(cases)
        assert {r.case_id: r.verdict for r in results} == {c.id: Verdict.PASS for c in cases}
        # and it did reset them: each case has the RSTs on the wire, taken as message-layer traffic
        assert all(
            any(x.get("type") == "RST" and x.get("src_node", "").startswith("sut") for x in r.exchange) for r in results
        )


CONFORMANT_RUNS = [(ROLE_OF[k], n) for n, (k, _, _) in sorted(CONFORMANT.items())]


@pytest.mark.parametrize(("role", "name"), CONFORMANT_RUNS, ids=[f"{r}-{n}" for r, n in CONFORMANT_RUNS])
def test_conformant_variants_pass(role: str, name: str, tmp_path: Path) -> None:
    """A legal alternative of a role passes every applicable coap case, under a profile holding the
    readings it implements; a Layer-3 (forwarding) relay ends no CoAP exchange itself, so the
    coap cases do not apply to it, with that reason."""
    _, cls, _ = CONFORMANT[name]
    profile = load_profile(profile_with(tmp_path, name, flatten(cls.PROTOCOL)))
    got = run_coap(role, f"conformant:{name}", profile, None)
    not_passed = {cid: r.reason for cid, r in got.items() if r.verdict not in (Verdict.PASS, Verdict.NOT_APPLICABLE)}
    assert not_passed == {}
    if profile.reading("relay_model") == "forwarding" and role == "relay":
        assert {r.verdict for r in got.values()} == {Verdict.NOT_APPLICABLE}
        assert all("readings.relay_model" in r.reason for r in got.values())
    else:
        assert {r.verdict for r in got.values()} == {Verdict.PASS}


def test_the_example_sut_passes_the_coap_suite(fast_profile: Profile, tmp_path: Path) -> None:
    """The standalone example SUT (examples/example_sut.py, run as an external process) passes
    every coap case of each of its roles."""
    for role in ROLES:
        sut = {
            "name": f"example-{role}",
            "command": [sys.executable, str(ROOT / "examples" / "example_sut.py")],
            "control": "stdio",
            "roles": [role],
            "capabilities": ["link-control", "trigger-request", "trigger-bulk", "read-config"],
            "options": ["bulk-configuration"],
            "instances": 4,
        }
        path = tmp_path / f"{role}.yaml"
        path.write_text(yaml.safe_dump(sut), encoding="utf-8")
        with Session(fast_profile, make_adapter(str(path)), pcap_dir=None, concurrency=4) as session:
            results = session.run_cases(coap_cases(role, fast_profile))
        assert {r.case_id: r.reason for r in results if r.verdict is not Verdict.PASS} == {}
        assert {r.case_id.split("[")[0] for r in results} == {c.base_id for c in coap_cases(role, fast_profile)}
