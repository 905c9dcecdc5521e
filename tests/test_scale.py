"""Scale: the gateway cases with 200 and 1,000 constrained UEs (GW-SCALE-001, GW-SCALE-002).

They apply under a profile whose ``bulk_policy.min_batch`` is at least their number of UEs (the
self-test profile's 50 sets them aside): here they run under min_batch 1,000. The reference passes
both; one faulty variant per case shows they fail (the others' verdicts are in the expected table,
``sut_adapters/faulty/expected/gateway.py``, measured with the same profile; each 1,000-UE run that
waits out a 5 s response timer would add seconds to ``make test`` for no new evidence). The
matching cost is counted, not timed; the result of a 1,000-UE case stays small.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from msgin5g_conformance import plugin
from msgin5g_conformance.engine import case as case_module
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire.capture.record import Recorder
from msgin5g_conformance.wire.endpoint import CoapTimers, Endpoint
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import Profile, load_profile
from msgin5g_conformance.world.topology import CaseSpace, claim_block
from sut_adapters.faulty.expected.gateway import EXPECTED, GW_SCALE
from sut_adapters.reference.coapnode import CoapNode, FastTuning
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES, profile_with

GATEWAY = TESTCASES / "gateway"
pytestmark = pytest.mark.xdist_group("scale")


@pytest.fixture(scope="module")
def scale_profile(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    """The default profile with a batch of 1,000: both scale cases apply."""
    # max_wait long enough that 1,000 sends fit in its sent_within_ms share on a loaded machine
    scale = {"bulk_policy.min_batch": 1000, "bulk_policy.max_wait_ms": 3000}
    return load_profile(profile_with(tmp_path_factory.mktemp("scale"), "scale", scale))


def run(profile: Profile, sut: str, cid: str, pcaps: Path | None = None) -> CaseResult:
    case = load_testcase(GATEWAY / f"{cid}.yaml", profile)
    with Session(profile, make_adapter(sut), pcap_dir=pcaps) as session:
        return session.run_case(case)


def test_the_scale_cases_are_set_aside_below_their_batch(fast_profile: Profile) -> None:
    """Under the self-test profile (min_batch 50) neither case applies, and the reason says why."""
    for cid in GW_SCALE:
        case = load_testcase(GATEWAY / f"{cid}.yaml", fast_profile)
        with Session(fast_profile, make_adapter("reference"), pcap_dir=None) as session:
            result = session.run_case(case)
        assert result.verdict is Verdict.NOT_APPLICABLE
        assert "bulk_policy.min_batch" in result.reason, result.reason


def test_1000_ues_pass_against_the_reference_with_a_small_result(scale_profile: Profile, tmp_path: Path) -> None:
    """GW-SCALE-002 passes the reference: 1,000 requests, one bulk GET, its answer fetched in far more
    than 64 blocks, 1,000 responses. The exchange records keep 150 + 50 datagrams (and those a check
    names), the summary counts every one, the pcap holds them all, and the result record stays small."""
    result = run(scale_profile, "reference", "GW-SCALE-002", tmp_path)
    assert result.verdict is Verdict.PASS, result.reason
    summary = result.exchange_summary
    assert summary["datagrams"] > 7000 and summary["sut_sent"]["continuation"] > 64, summary
    assert summary["shown"] == len(result.exchange) <= case_module.EXCHANGE_HEAD + case_module.EXCHANGE_TAIL
    assert summary["shown"] + summary["omitted"] == summary["datagrams"]
    assert (tmp_path / "GW-SCALE-002.pcap").stat().st_size > 1_000_000
    assert "block 150 " in result.sut_log  # the reference gateway served beyond its old 64-block bound
    case = load_testcase(GATEWAY / "GW-SCALE-002.yaml", scale_profile)
    record = json.dumps(plugin.result_json(case, result))
    assert len(record) < 2_000_000, len(record)  # 25 MB before the exchange was capped
    passing = [s for s in json.loads(record)["steps"] if s["verdict"] == "pass"]
    assert passing and all(s["findings"] == [] for s in passing)


def test_a_variant_fails_the_1000_ue_case(scale_profile: Profile) -> None:
    """A gateway that leaves one UE id out of the bulk GET fails GW-SCALE-002 on REQ-GW-BULK-1, as the
    table says."""
    sut = "faulty:gw-omits-one-ue"
    result = run(scale_profile, sut, "GW-SCALE-002")
    assert result.verdict.value == EXPECTED[sut]["GW-SCALE-002"] == "fail"
    failed = [s for s in result.steps if s.verdict is Verdict.FAIL]
    assert failed and all("REQ-GW-BULK-1" in s.requirements for s in failed), [s.reason for s in failed]


def test_matching_cost_grows_linearly(scale_profile: Profile, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner looks node names up per datagram and per step, never per pair: from 50 UEs
    (GW-BULK-003) to 200 (GW-SCALE-001, the reference passes it) the lookups per datagram do not grow
    (before the address directory was built once per case they grew with the number of UEs: 530 per
    datagram at 200 UEs)."""
    calls = {"n": 0}
    kind = nodes.kind

    def counted(name: str) -> nodes.NodeKind | None:
        calls["n"] += 1
        return kind(name)

    monkeypatch.setattr(nodes, "kind", counted)
    per_datagram = []
    for cid in ("GW-BULK-003", "GW-SCALE-001"):
        calls["n"] = 0
        result = run(scale_profile, "reference", cid)
        assert result.verdict is Verdict.PASS, result.reason
        per_datagram.append(calls["n"] / result.exchange_summary["datagrams"])
    small, big = per_datagram
    assert big <= 1.5 * small + 1, per_datagram


def test_a_10000_byte_datagram_is_received_whole() -> None:
    """Neither the tester's endpoint nor a reference SUT node (aiocoap reads 4,096 bytes by default)
    cuts a 10,000-byte datagram."""
    data = bytes([0x50, 0x01, 0x12, 0x34]) + b"\xff" + bytes(range(256)) * 39 + bytes(10_000 - 5 - 256 * 39)
    assert len(data) == 10_000
    block = claim_block()
    try:
        space = CaseSpace(block.prefix, 200, 1)

        async def main() -> tuple[list[bytes], list[bytes]]:
            got: list[bytes] = []
            tester = Endpoint("t", (space.host(10), 65401), CoapTimers(), record=lambda s, d, b, w: got.append(b))
            tester.open()
            recorder = Recorder()
            node = CoapNode("n", (space.host(11), 65401), tuning=FastTuning(), recorder=recorder)
            await node.start()
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind((space.host(12), 0))
                    for target in (tester.address, node.address):
                        s.sendto(data, target)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 2.0
                while loop.time() < deadline and not (got and recorder.datagrams):
                    await asyncio.sleep(0.01)
                return got, [d.data for d in recorder.datagrams]
            finally:
                tester.close()
                await node.stop()

        at_tester, at_node = asyncio.run(main())
    finally:
        block.release()
    assert [len(d) for d in at_tester] == [10_000] and at_tester[0] == data
    assert [len(d) for d in at_node] == [10_000] and at_node[0] == data
