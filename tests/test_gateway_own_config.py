"""The Gateway UE's own configuration (TS 24.538 6.2.2.x: it "should support the configuration
management client functionality"): the GW-CFG cases, a SHOULD, against the reference, the faulty
variants that break it (a recorded deviation deciding REQ-GW-CFG-1, never a fail), a gateway
without the client (not applicable) and the reading under which the client is not on the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.base import NotSupported, SutAdapter
from sut_adapters.faulty import gateway as faulty_gateway
from sut_adapters.faulty.expected.gateway import DEVIATIONS, EXPECTED
from sut_adapters.reference import ReferenceAdapter
from sut_adapters.reference.gateway import ReferenceGateway
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES, profile_with

OWN_CASES = sorted(p.stem for p in (TESTCASES / "gateway").glob("GW-CFG-*.yaml"))
REQUIREMENT = "REQ-GW-CFG-1"


def run_cases(adapter: SutAdapter, profile: Profile, ids: list[str] = OWN_CASES) -> dict[str, CaseResult]:
    cases = [load_testcase(TESTCASES / "gateway" / f"{cid}.yaml", profile) for cid in ids]
    with Session(profile, adapter, pcap_dir=None, concurrency=4) as session:
        return {r.case_id: r for r in session.run_cases(cases)}


def test_the_own_configuration_cases_exist_and_are_a_should() -> None:
    """Two cases, both citing only REQ-GW-CFG-1 with strength should, not applicable under seal-c."""
    assert OWN_CASES == ["GW-CFG-001", "GW-CFG-002"]
    for cid in OWN_CASES:
        case = load_testcase(TESTCASES / "gateway" / f"{cid}.yaml")
        assert (case.requirements, case.strength, case.role) == ((REQUIREMENT,), "should", "gateway")
        assert case.profile_conditions == {"readings.gateway_config_client": "collocated"}
        assert "trigger-request" in case.capabilities


def test_every_own_config_variant_is_listed() -> None:
    """The variants breaking REQ-GW-CFG-1 are those of the deviation table, and the self-test's table
    expects them to pass every case (a SHOULD never fails)."""
    breaking = {f"faulty:{n}" for n, (_, req) in faulty_gateway.VARIANTS.items() if req == REQUIREMENT}
    assert len(breaking) >= 3
    assert set(DEVIATIONS) == breaking | {"reference"}
    assert all(EXPECTED[sut] == {} for sut in breaking)


@pytest.mark.parametrize("sut", sorted(DEVIATIONS))
def test_a_broken_should_is_a_deviation_deciding_its_requirement(sut: str, fast_profile: Profile) -> None:
    """Each case passes; exactly the expected ones carry deviations, each on a passing check that
    decides REQ-GW-CFG-1 and says it is a deviation."""
    got = run_cases(make_adapter(sut), fast_profile)
    assert {cid: r.verdict for cid, r in got.items()} == dict.fromkeys(OWN_CASES, Verdict.PASS), {
        cid: r.reason for cid, r in got.items()
    }
    deviating = {cid for cid, r in got.items() if r.deviations}
    assert deviating == DEVIATIONS[sut]
    for cid in deviating:
        soft = [s for s in got[cid].steps if s.deviations]
        assert soft and all(s.requirements == (REQUIREMENT,) and s.verdict is Verdict.PASS for s in soft)
        assert all("deviation" in s.reason for s in soft)


def test_the_deviations_say_what_was_missing(fast_profile: Profile) -> None:
    """A gateway that never asks: no GET at the SCM-S, and nothing handled; one on the bulk path:
    the Uri-Path it used, against the single-UE resource."""
    never = run_cases(make_adapter("faulty:gw-never-asks-own-config"), fast_profile)
    assert "no matching message arrived at scms" in never["GW-CFG-001"].steps[1].reason
    assert "'status': 'none'" in never["GW-CFG-002"].steps[2].reason
    bulk = run_cases(make_adapter("faulty:gw-own-config-on-bulk-path"), fast_profile, ["GW-CFG-001"])
    (finding,) = [f for _, f in bulk["GW-CFG-001"].deviations]
    assert finding.field == "options.uri-path (should)"
    assert fast_profile.bulk_conf_flag in finding.found and fast_profile.bulk_conf_flag not in finding.expected


def test_under_seal_c_the_own_configuration_cases_are_not_applicable(tmp_path: Path) -> None:
    """Reading gateway_config_client: seal-c: the client is not collocated and uses SEAL-C, nothing of
    it is on the wire, so even a gateway that never asks is not judged; the reason names the reading."""
    profile = load_profile(profile_with(tmp_path, "seal-c", {"readings.gateway_config_client": "seal-c"}))
    for sut in ("reference", "faulty:gw-never-asks-own-config"):
        got = run_cases(make_adapter(sut), profile)
        assert {r.verdict for r in got.values()} == {Verdict.NOT_APPLICABLE}
        assert all("readings.gateway_config_client" in r.reason and "seal-c" in r.reason for r in got.values())
        assert not any(r.exchange for r in got.values())


class NoClient(ReferenceGateway):
    """A gateway without the configuration management client: the upper tester's request is not
    supported (a SHOULD not followed, and said so)."""

    def request_configuration(self) -> None:
        raise NotSupported("this gateway has no configuration management client")


def test_a_gateway_without_the_client_makes_the_cases_not_applicable(fast_profile: Profile) -> None:
    got = run_cases(ReferenceAdapter(name="no-client", gateway_class=NoClient), fast_profile)
    assert {r.verdict for r in got.values()} == {Verdict.NOT_APPLICABLE}
    assert all("no configuration management client" in r.reason for r in got.values())
