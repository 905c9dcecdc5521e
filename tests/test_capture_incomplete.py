"""A verdict never rests on an incomplete capture (issue: bounded evidence): when the kernel drops
datagrams for a full receive buffer (SO_RXQ_OVFL), the case says so and an absence check cannot
pass, since the dropped datagram may be the one the SUT should not have sent."""

from __future__ import annotations

from typing import Any

import pytest

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire import endpoint
from msgin5g_conformance.world.profile import Profile
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES


@pytest.mark.parametrize("case", ["RELAY-DL-004", "RELAY-DL-001"])
def test_kernel_drops_make_the_case_inconclusive(case: str, fast_profile: Profile, monkeypatch: Any) -> None:
    loaded = load_testcase(TESTCASES / "relay" / f"{case}.yaml", fast_profile)
    with Session(fast_profile, make_adapter("reference"), pcap_dir=None) as session:
        assert session.run_case(loaded).verdict is Verdict.PASS  # the control: nothing dropped
    opened = endpoint.Endpoint.open

    def open_and_drop(self: endpoint.Endpoint) -> None:
        opened(self)
        if self.name == "cue1":
            self.drops = 3  # as if the kernel had counted three datagrams it could not queue

    monkeypatch.setattr(endpoint.Endpoint, "open", open_and_drop)
    with Session(fast_profile, make_adapter("reference"), pcap_dir=None) as session:
        result = session.run_case(loaded)
    assert result.verdict is Verdict.INCONCLUSIVE, result.reason
    capture = [s for s in result.steps if s.index == "capture"]
    assert capture and "the capture is incomplete: the kernel dropped 3 datagram(s)" in capture[0].reason


def test_a_harness_exception_keeps_the_case_and_its_pcap(
    fast_profile: Profile, monkeypatch: Any, tmp_path: Any
) -> None:
    """An exception inside a step (a harness bug) gives that check error with its reason; the
    other checks are judged, the result and the pcap with what was captured are written."""
    from msgin5g_conformance.engine import steps

    loaded = load_testcase(TESTCASES / "relay" / "RELAY-DL-001.yaml", fast_profile)

    async def broken(run: Any, step: Any) -> Any:
        raise RuntimeError("a bug in the harness")

    monkeypatch.setattr(steps, "expect", broken)
    with Session(fast_profile, make_adapter("reference"), pcap_dir=tmp_path) as session:
        result = session.run_case(loaded)
    assert result.verdict is Verdict.ERROR
    assert "harness error: RuntimeError: a bug in the harness" in result.reason
    assert (tmp_path / "RELAY-DL-001.pcap").stat().st_size > 24  # the send of step 0 is in it
