"""Self-test: the relay suite passes the reference Relay UE and catches every faulty variant.

Each faulty variant breaks one requirement. The expected verdicts below were derived case by case
from what each variant breaks; the test also checks that every case a non-robustness variant
fails cites that variant's requirement, so a case never fails for a reason it does not claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msgin5g_conformance.loader import load_testcase
from msgin5g_conformance.profile import Profile
from msgin5g_conformance.runner import Session
from msgin5g_conformance.verdict import Verdict
from sut_adapters.faulty import ROBUSTNESS, VARIANTS
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES

DOWNLINK = [
    "RELAY-DL-001",
    "RELAY-DL-002",
    "RELAY-DL-003",
    "RELAY-DL-004",
    "RELAY-DL-005",
    "RELAY-DL-006",
    "RELAY-DL-007",
    "RELAY-DL-008",
    "RELAY-DL-009",
    "RELAY-E2E-001",
]

# Cases expected not to pass, per SUT; every other relay case must pass.
EXPECTED: dict[str, dict[str, str]] = {
    "reference": {},
    "faulty:relays-without-link": {"RELAY-DL-004": "fail", "RELAY-DL-005": "fail"},
    "faulty:keeps-released-link": {"RELAY-DL-005": "fail"},
    "faulty:drops-404": {"RELAY-DL-003": "fail", "RELAY-DL-008": "fail"},
    "faulty:rewrites-payload": {
        "RELAY-DL-001": "fail",
        "RELAY-DL-002": "fail",
        "RELAY-DL-003": "fail",
        "RELAY-DL-008": "fail",
    },
    "faulty:ignores-port": {"RELAY-DL-007": "fail"},
    "faulty:wrong-client": {"RELAY-DL-008": "fail", "RELAY-E2E-001": "fail"},
    # UL-002's positive control needs the uplink: with none, its absence check proves nothing.
    "faulty:no-uplink": {"RELAY-E2E-001": "fail", "RELAY-UL-001": "fail", "RELAY-UL-002": "inconclusive"},
    "faulty:relays-without-recipient": {"RELAY-DL-006": "fail"},
    "faulty:echoes-uplink": {"RELAY-DL-009": "fail", "RELAY-E2E-001": "fail"},
    "faulty:drops-content-format": {"RELAY-DL-001": "fail", "RELAY-E2E-001": "fail"},
    "faulty:ignores-critical-option": {"RELAY-UL-002": "fail"},
    # Robustness: a malformed datagram instead of each relayed response.
    "faulty:sends-garbage": dict.fromkeys(DOWNLINK, "fail"),
    # Robustness: silence is a fail where something must arrive, inconclusive where only a
    # discard was being proved (a dead SUT never passes an absence check).
    "faulty:silent": {
        **dict.fromkeys([*DOWNLINK, "RELAY-UL-001", "RELAY-UL-002"], "fail"),
        "RELAY-DL-004": "inconclusive",
        "RELAY-DL-005": "inconclusive",
        "RELAY-DL-006": "inconclusive",
        "RELAY-DL-007": "inconclusive",
    },
    "faulty:floods": dict.fromkeys(DOWNLINK, "fail"),
}

CASE_FILES = sorted((TESTCASES / "relay").glob("*.yaml"))


def test_every_variant_is_in_the_expectations() -> None:
    """No faulty variant escapes the self-test."""
    assert set(EXPECTED) == {"reference", *(f"faulty:{n}" for n in (*VARIANTS, *ROBUSTNESS))}
    assert len(VARIANTS) >= 6


@pytest.mark.parametrize("sut", sorted(EXPECTED))
def test_suite_verdicts_against(sut: str, fast_profile: Profile, tmp_path: Path) -> None:
    """Runs the whole relay suite against one SUT and compares every verdict with the expectation."""
    cases = [load_testcase(f, fast_profile) for f in CASE_FILES]
    with Session(fast_profile, make_adapter(sut), pcap_dir=tmp_path, max_datagrams=500) as session:
        got = {c.id: session.run_case(c) for c in cases}
    verdicts = {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS}
    reasons = {cid: got[cid].reason for cid in verdicts}
    assert verdicts == EXPECTED[sut], reasons
    name = sut.removeprefix("faulty:")
    if name in VARIANTS:
        requirement = VARIANTS[name][1]
        for case in cases:
            if got[case.id].verdict is Verdict.FAIL:
                assert requirement in case.requirements, f"{case.id} fails {sut} but does not cite {requirement}"
    # Evidence: every case left a pcap, and every non-pass names the step that set it.
    for case in cases:
        assert (tmp_path / f"{case.id}.pcap").is_file()
        if got[case.id].verdict is not Verdict.PASS:
            assert got[case.id].decisive_step is not None
