"""Self-test: every suite passes the reference SUT and catches every faulty variant of its role.

Each faulty variant breaks one requirement. The expected verdicts below were derived case by case
from what each variant breaks; the test also checks that every case a non-robustness variant
fails cites that variant's requirement, so a case never fails for a reason it does not claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile
from sut_adapters import faulty, faulty_cue, faulty_gateway
from sut_adapters.registry import FAULTY, make_adapter

from .conftest import TESTCASES

RELAY_DOWNLINK = [
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
GW_ALL = [
    "GW-BULK-001",
    "GW-BULK-002",
    "GW-BULK-003",
    "GW-BULK-004",
    "GW-BULK-005",
    "GW-ERR-001",
    "GW-SPLIT-001",
    "GW-SPLIT-002",
    "GW-WAIT-001",
]

# Per role: SUT -> cases expected not to pass (every other case of that role must pass).
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "relay": {
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
        "faulty:sends-garbage": dict.fromkeys(RELAY_DOWNLINK, "fail"),
        # Robustness: silence is a fail where something must arrive, inconclusive where only a
        # discard was being proved (a dead SUT never passes an absence check).
        "faulty:silent": {
            **dict.fromkeys([*RELAY_DOWNLINK, "RELAY-UL-001", "RELAY-UL-002"], "fail"),
            "RELAY-DL-004": "inconclusive",
            "RELAY-DL-005": "inconclusive",
            "RELAY-DL-006": "inconclusive",
            "RELAY-DL-007": "inconclusive",
        },
        "faulty:floods": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    },
    "gateway": {
        "reference": {},
        "faulty:gw-omits-one-ue": dict.fromkeys(GW_ALL, "fail"),
        "faulty:gw-lists-one-twice": dict.fromkeys(
            ["GW-BULK-001", "GW-BULK-002", "GW-BULK-003", "GW-BULK-004", "GW-BULK-005", "GW-ERR-001", "GW-WAIT-001"],
            "fail",
        ),
        "faulty:gw-drops-vendor": {"GW-BULK-001": "fail"},
        "faulty:gw-no-bulk-flag": dict.fromkeys(GW_ALL, "fail"),
        "faulty:gw-ignores-max-wait": dict.fromkeys(
            ["GW-BULK-001", "GW-BULK-005", "GW-ERR-001", "GW-SPLIT-001", "GW-SPLIT-002", "GW-WAIT-001"], "fail"
        ),
        # The timer still fires, so only the case that needs the full batch to trigger notices.
        "faulty:gw-ignores-min-batch": {"GW-BULK-002": "fail"},
        "faulty:gw-everything-to-everyone": dict.fromkeys(
            ["GW-BULK-001", "GW-BULK-003", "GW-BULK-005", "GW-SPLIT-001", "GW-SPLIT-002"], "fail"
        ),
        "faulty:gw-loses-one-response": dict.fromkeys(
            ["GW-BULK-001", "GW-BULK-003", "GW-BULK-004", "GW-BULK-005", "GW-SPLIT-001", "GW-SPLIT-002", "GW-WAIT-001"],
            "fail",
        ),
        "faulty:gw-wrong-recipient": dict.fromkeys(
            ["GW-BULK-001", "GW-BULK-003", "GW-ERR-001", "GW-SPLIT-001", "GW-SPLIT-002"], "fail"
        ),
        # Half a block-wise transfer: only the 50-UE answer needs more than one block.
        "faulty:gw-stops-blockwise": {"GW-BULK-003": "fail"},
        "faulty:gw-fans-out-errors": {"GW-ERR-001": "fail"},
    },
    "constrained-ue": {
        "reference": {},
        "faulty:cue-applies-others": {"CUE-RSP-004": "fail"},
        "faulty:cue-wrong-port": {"CUE-REQ-001": "fail"},
        "faulty:cue-no-recipient": {"CUE-REQ-001": "fail"},
        "faulty:cue-ignores-403": {"CUE-RSP-002": "fail"},
    },
}

ROLE_VARIANTS = {"relay": faulty.VARIANTS, "gateway": faulty_gateway.VARIANTS, "constrained-ue": faulty_cue.VARIANTS}
RUNS = [(role, sut) for role, by_sut in EXPECTED.items() for sut in sorted(by_sut)]


def test_every_variant_is_in_the_expectations() -> None:
    """No faulty variant escapes the self-test, and each role has enough of them."""
    listed = {sut for by_sut in EXPECTED.values() for sut in by_sut if sut != "reference"}
    assert listed == {f"faulty:{n}" for n in FAULTY}
    assert len(faulty.VARIANTS) >= 6 and len(faulty_gateway.VARIANTS) >= 6 and len(faulty_cue.VARIANTS) >= 3


@pytest.mark.parametrize(("role", "sut"), RUNS, ids=[f"{r}-{s}" for r, s in RUNS])
def test_suite_verdicts_against(role: str, sut: str, fast_profile: Profile, tmp_path: Path) -> None:
    """Runs one role's suite against one SUT and compares every verdict with the expectation."""
    cases = [load_testcase(f, fast_profile) for f in sorted((TESTCASES / role).glob("*.yaml"))]
    assert cases
    with Session(fast_profile, make_adapter(sut), pcap_dir=tmp_path) as session:
        got = {c.id: session.run_case(c) for c in cases}
    verdicts = {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS}
    reasons = {cid: got[cid].reason for cid in verdicts}
    assert verdicts == EXPECTED[role][sut], reasons
    name = sut.removeprefix("faulty:")
    if name in ROLE_VARIANTS[role]:
        requirement = ROLE_VARIANTS[role][name][1]
        for case in cases:
            if got[case.id].verdict is Verdict.FAIL:
                assert requirement in case.requirements, f"{case.id} fails {sut} but does not cite {requirement}"
    for case in cases:  # evidence: a pcap per case, and every non-pass names the step that set it
        assert (tmp_path / f"{case.id}.pcap").is_file()
        if got[case.id].verdict is not Verdict.PASS:
            assert got[case.id].decisive_step is not None
