"""The order cases start in when several run at once: the longest planned first."""

from __future__ import annotations

from msgin5g_conformance.engine.session import Session, longest_first, planned_ms
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES


def test_planned_time_counts_declared_waits(fast_profile: Profile) -> None:
    msg = load_testcase(TESTCASES / "relay" / "RELAY-MSG-001.yaml", fast_profile)
    assert planned_ms(msg, fast_profile) == 3200  # its wait for a retransmission after the ACK
    split = load_testcase(TESTCASES / "gateway" / "GW-SPLIT-001.yaml", fast_profile)
    max_wait = fast_profile.value("bulk_policy.max_wait_ms")
    assert planned_ms(split, fast_profile) >= 2 * max_wait  # two expectations wait out the gateway's timer


def test_longest_first_and_results_in_the_given_order(fast_profile: Profile) -> None:
    names = ["RELAY-DL-001", "RELAY-DL-002", "RELAY-MSG-001", "RELAY-UL-001"]
    cases = [load_testcase(TESTCASES / "relay" / f"{n}.yaml", fast_profile) for n in names]
    assert longest_first(cases, fast_profile)[0] == 2
    assert sorted(longest_first(cases, fast_profile)) == [0, 1, 2, 3]
    with Session(fast_profile, make_adapter("reference"), pcap_dir=None, concurrency=4) as session:
        results = session.run_cases(cases)
    assert [r.case_id for r in results] == names
    assert all(r.verdict.value == "pass" for r in results), [r.reason for r in results]
