"""Engine semantics, end to end against the reference and small variants of it.

Each ``check_*`` function proves one property of the lower tester and raises AssertionError when
it does not hold; the ``test_*`` functions run them, and ``tests/test_mutations.py`` runs them again
with the engine mutated, to show that each would notice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

from msgin5g_conformance.engine.session import Router, Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.spec import model
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire.capture.record import Recorder
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import MessageType
from msgin5g_conformance.world.profile import Profile, load_profile
from msgin5g_conformance.world.topology import CaseSpace
from sut_adapters.base import ClientInfo
from sut_adapters.faulty import relay as faulty
from sut_adapters.reference import ReferenceAdapter
from sut_adapters.reference.relay import ReferenceRelay
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES, write_profile

RELAY = TESTCASES / "relay"


def run(profile: Profile, sut: str | ReferenceAdapter, *cases: model.TestCase, **session: object) -> list[CaseResult]:
    adapter = make_adapter(sut) if isinstance(sut, str) else sut
    with Session(profile, adapter, pcap_dir=None, **session) as s:  # type: ignore[arg-type]
        return s.run_cases(cases)


def variant(cls: type[ReferenceRelay]) -> ReferenceAdapter:
    return ReferenceAdapter(name=f"test:{cls.__name__}", relay_class=cls)


def case_from(tmp: Path, name: str, text: str, profile: Profile) -> model.TestCase:
    path = tmp / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return load_testcase(path, profile)


def step(result: CaseResult, index: str) -> object:
    return next(s for s in result.steps if s.index == index)


# -- absence checks ------------------------------------------------------------------------------


def check_absence_waits_its_window(profile: Profile, tmp: Path) -> None:
    """The control is sent no earlier than window_ms after the stimulus."""
    text = (RELAY / "RELAY-DL-004.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  - expect_nothing:\n      at: [cue_nolink, cue1]\n",
        "  - expect_nothing:\n      at: [cue_nolink, cue1]\n      window_ms: 200\n",
    )
    (result,) = run(profile, "reference", case_from(tmp, "RELAY-DL-904", text, profile))
    assert result.verdict is Verdict.PASS, result.reason
    sends = [r for r in result.exchange if r["src_node"] == "scms" and r.get("code") == "2.05"]
    assert len(sends) == 2
    assert sends[1]["t_ms"] - sends[0]["t_ms"] >= 195, sends
    absence = step(result, "1")
    assert absence.covered_ms is not None and absence.covered_ms >= 200 + profile.timers.late_window_ms


def check_late_window_catches_a_late_violation(profile: Profile) -> None:
    """A response for an unlinked client relayed 250 ms late fails the discard case; the reason
    says the interval covered (stimulus to end of the late window)."""
    dl004 = load_testcase(RELAY / "RELAY-DL-004.yaml", profile)
    (result,) = run(profile, "faulty:late-without-link-250ms", dl004)
    assert result.verdict is Verdict.FAIL, result.reason
    assert result.decisive_step == "1" and "end of the late window" in result.reason
    assert step(result, "1").covered_ms >= 250


def check_claim_shrinks_with_the_late_window(profile: Profile, tmp: Path) -> None:
    """With a 50 ms late window the same late relay is missed, and the absence check says it covered
    only about that long: a verdict never claims more than it watched."""
    short = load_profile(write_profile(tmp, late_window_ms=50))
    dl004 = load_testcase(RELAY / "RELAY-DL-004.yaml", short)
    (result,) = run(short, "faulty:late-without-link-250ms", dl004)
    assert result.verdict is Verdict.PASS, result.reason
    covered = step(result, "1").covered_ms
    assert covered is not None and covered < 250


class MangledControl(ReferenceRelay):
    """Relays 2.05 responses as 2.03 (a control that arrives, identified by its recipient, but does
    not match)."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        return dataclasses.replace(super().downlink_copy(msg), code=0x43)


def check_mismatched_control_is_inconclusive(profile: Profile) -> None:
    """The control arrived with another code: inconclusive with the control's own mismatch, not a
    discard violation."""
    dl004 = load_testcase(RELAY / "RELAY-DL-004.yaml", profile)
    (result,) = run(profile, variant(MangledControl), dl004)
    assert result.verdict is Verdict.INCONCLUSIVE, result.reason
    assert "positive control arrived at cue1 but did not match" in result.reason
    assert any(f.field == "code" and not f.ok for f in step(result, "1").findings)
    assert not [s for s in result.steps if s.verdict is Verdict.FAIL]


# -- the catch-all -------------------------------------------------------------------------------


def check_unused_address_is_judged(profile: Profile) -> None:
    """A response sent to an address of the case's range that no node owns is seen and judged."""
    dl006 = load_testcase(RELAY / "RELAY-DL-006.yaml", profile)
    (result,) = run(profile, "faulty:sends-to-unused-address", dl006)
    assert result.verdict is Verdict.FAIL, result.reason
    assert "elsewhere" in result.reason
    assert any(r["dst_node"] == "elsewhere" for r in result.exchange)


def check_echo_to_a_peer_is_judged(profile: Profile) -> None:
    """An extra copy sent back to the SCM-S in a case that never looks at the SCM-S is unexpected."""
    dl001 = load_testcase(RELAY / "RELAY-DL-001.yaml", profile)
    (result,) = run(profile, "faulty:echoes-uplink", dl001)
    assert result.verdict is Verdict.FAIL and "unexpected message" in result.reason, result.reason


class EverywhereRelay(ReferenceRelay):
    """Sends every relayed response to every host of the case's /24 (bounded: 254 datagrams)."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        super().forward_downlink(msg, client)
        assert self.pc5 is not None
        prefix = client.endpoint[0].rsplit(".", 1)[0]
        data = dataclasses.replace(self.downlink_copy(msg), mtype=MessageType.NON).encode()
        for host in range(1, 255):
            self.pc5.send_raw(data, (f"{prefix}.{host}", client.endpoint[1]))


# -- time ----------------------------------------------------------------------------------------


class SlowRelay(ReferenceRelay):
    """Relays downlink 250 ms after the response arrived."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        asyncio.get_running_loop().call_later(0.25, self._later, msg, client)

    def _later(self, msg: CoapMessage, client: ClientInfo) -> None:
        if self.pc5 is not None:
            super().forward_downlink(msg, client)


SINCE = """id: TEST-SINCE-001
title: since_step counts from the earlier step
purpose: The deadline of step 2 starts at step 0.
clause: TS 24.538 6.2.2.1
requirements: [REQ-RELAY-DL-1]
strength: shall
role: relay
applicability:
  capabilities: [link-control]
preconditions:
  links: [cue1]
steps:
  - send:
      from: scms
      to: sut.uu
      type: NON
      code: "2.05"
      token: "5155"
      options: {recipient: "${addr.cue1}"}
      payload: {text: "since"}
  - wait: {ms: 200}
  - expect:
      at: cue1
      code: "2.05"
      options: {recipient: "${addr.cue1}"}
      timeout_ms: 150
"""


def check_since_step_counts_from_the_earlier_step(profile: Profile, tmp: Path) -> None:
    """A message 250 ms after step 0 misses a 150 ms deadline counted from step 0, and makes one
    counted from the expectation itself (which starts at 200 ms)."""
    since = case_from(tmp, "TEST-SINCE-001", SINCE + "      since_step: 0\n", profile)
    plain = case_from(tmp, "TEST-SINCE-002", SINCE.replace("TEST-SINCE-001", "TEST-SINCE-002"), profile)
    late, fine = run(profile, variant(SlowRelay), since, plain)
    assert late.verdict is Verdict.FAIL and "of step 0" in late.reason, late.reason
    assert fine.verdict is Verdict.PASS, fine.reason


class HeldLoopDuplicate(ReferenceRelay):
    """Relays each downlink response, relays it again 50 ms later, and holds the event loop (as a
    loaded machine does) from 10 ms until past the end of the late window: the second copy is due
    long before the window ends, and it comes due in the same turn of the loop as the window's end."""

    HOLD_S = 0.0  # set by the check: late window + 200 ms

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        super().forward_downlink(msg, client)
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, time.sleep, self.HOLD_S)
        loop.call_later(0.05, self._again, msg, client)

    def _again(self, msg: CoapMessage, client: ClientInfo) -> None:
        if self.pc5 is not None:
            self.pc5.send(self.downlink_copy(msg), client.endpoint)


def check_a_held_loop_does_not_hide_a_send(profile: Profile) -> None:
    """What the SUT sent before the late window ended is judged, even when the loop was held up and
    the send and the window's end fall in one turn: the duplicate fails the case (REQ-RELAY-DL-1)."""
    HeldLoopDuplicate.HOLD_S = profile.timers.late_window_ms / 1000 + 0.2
    dl002 = load_testcase(RELAY / "RELAY-DL-002.yaml", profile)
    (result,) = run(profile, variant(HeldLoopDuplicate), dl002)
    assert result.verdict is Verdict.FAIL, result.reason
    assert "unexpected message" in result.reason and "REQ-RELAY-DL-1" in step(result, "end").requirements


# -- the message layer ---------------------------------------------------------------------------


def check_unacknowledged_con_fails_the_ack_bound(profile: Profile) -> None:
    """A relay that never acknowledges the SCM-S's CON fails REQ-COAP-MSG-1, after the bound."""
    dl001 = load_testcase(RELAY / "RELAY-DL-001.yaml", profile)
    (result,) = run(profile, "faulty:never-acks", dl001)
    assert result.verdict is Verdict.FAIL, result.reason
    failing = [s for s in result.steps if s.verdict is Verdict.FAIL]
    assert [s.requirements for s in failing] == [("REQ-COAP-MSG-1",)]
    assert result.duration_s >= profile.timers.ack_bound_ms / 1000  # the case waited for it


def check_repeated_answers_are_message_layer(profile: Profile) -> None:
    """A relay that acknowledges 400 ms late answers the tester's retransmission again: legal."""
    ul002 = load_testcase(RELAY / "RELAY-UL-002.yaml", profile)
    (result,) = run(profile, "conformant:slow-ack", ul002)
    assert result.verdict is Verdict.PASS, result.reason
    assert any(r.get("layer") == "duplicate" for r in result.exchange)


def check_endless_retransmission_is_bounded(profile: Profile) -> None:
    """Copies of one CON beyond 1 + MAX_RETRANSMIT fail REQ-COAP-MSG-2."""
    dl001 = load_testcase(RELAY / "RELAY-DL-001.yaml", profile)
    (result,) = run(profile, "faulty:retransmits-forever", dl001)
    assert result.verdict is Verdict.FAIL and "at most 5" in result.reason, result.reason


# -- tests ---------------------------------------------------------------------------------------


def test_a_held_loop_does_not_hide_a_send(fast_profile: Profile) -> None:
    """A send due before the late window's end is judged though the loop was held past it."""
    check_a_held_loop_does_not_hide_a_send(fast_profile)


def test_absence_waits_its_window(fast_profile: Profile, tmp_path: Path) -> None:
    """An absence check waits its window before its positive control."""
    check_absence_waits_its_window(fast_profile, tmp_path)


def test_late_window_catches_a_late_violation(fast_profile: Profile) -> None:
    """A discard violation 250 ms late is a fail of the case that caused it."""
    check_late_window_catches_a_late_violation(fast_profile)


def test_claim_shrinks_with_the_late_window(fast_profile: Profile, tmp_path: Path) -> None:
    """The interval an absence check reports is the interval it watched."""
    check_claim_shrinks_with_the_late_window(fast_profile, tmp_path)


def test_mismatched_control_is_inconclusive(fast_profile: Profile) -> None:
    """A control that arrives but does not match is inconclusive, with its mismatch."""
    check_mismatched_control_is_inconclusive(fast_profile)


def test_unused_address_is_judged(fast_profile: Profile) -> None:
    """A datagram to an address nobody owns is an unexpected message shown as 'elsewhere'."""
    check_unused_address_is_judged(fast_profile)


def test_echo_to_a_peer_is_judged(fast_profile: Profile) -> None:
    """A node no step looks at is still judged."""
    check_echo_to_a_peer_is_judged(fast_profile)


def test_since_step_counts_from_the_earlier_step(fast_profile: Profile, tmp_path: Path) -> None:
    """since_step moves the start of an expectation's time."""
    check_since_step_counts_from_the_earlier_step(fast_profile, tmp_path)


def test_unacknowledged_con_fails_the_ack_bound(fast_profile: Profile) -> None:
    """REQ-COAP-MSG-1 fires for a CON that is never acknowledged."""
    check_unacknowledged_con_fails_the_ack_bound(fast_profile)


def test_repeated_answers_are_message_layer(fast_profile: Profile) -> None:
    """A repeated piggybacked response to a retransmission is not an unexpected message."""
    check_repeated_answers_are_message_layer(fast_profile)


def test_endless_retransmission_is_bounded(fast_profile: Profile) -> None:
    """REQ-COAP-MSG-2 fires for a SUT that retransmits without end."""
    check_endless_retransmission_is_bounded(fast_profile)


def test_each_case_judges_its_own_late_datagram(fast_profile: Profile) -> None:
    """A second copy 150 ms late is judged in the case that caused it: each case names its own token."""
    cases = [load_testcase(RELAY / f"RELAY-DL-00{n}.yaml", fast_profile) for n in (1, 2)]
    first, second = run(fast_profile, "faulty:late-duplicate", *cases)
    for result, token in ((first, "d1d1"), (second, "d2d2")):
        assert result.verdict is Verdict.FAIL, result.reason
        decisive = next(r for r in result.exchange if r["seq"] == result.decisive_datagram)
        assert decisive["token"] == token


def test_a_flood_is_bounded_and_named(fast_profile: Profile) -> None:
    """3,000 copies against a 500-datagram capture limit: a fail naming the flood, in bounded time."""
    dl001 = load_testcase(RELAY / "RELAY-DL-001.yaml", fast_profile)
    (result,) = run(fast_profile, "faulty:floods", dl001, max_datagrams=500)
    assert result.verdict is Verdict.FAIL
    assert any("more than 500 datagrams (flood)" in s.reason for s in result.steps)
    # the records are capped (first and last ones); the summary counts every datagram captured
    assert result.exchange_summary["datagrams"] == 500 and result.duration_s < 10
    assert len(result.exchange) < 500 and result.exchange_summary["omitted"] == 500 - len(result.exchange)


class HugeRelay(ReferenceRelay):
    """Relays a 65,507-byte datagram instead of the response (the largest UDP payload over IPv4)."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        assert self.pc5 is not None
        head = self.downlink_copy(msg).encode()
        self.pc5.send_raw(head + os.urandom(65507 - len(head)), client.endpoint)


def test_a_65507_byte_datagram_is_judged_whole(fast_profile: Profile) -> None:
    """Nothing is cut at 4,096 bytes: the judged datagram is the one sent, byte for byte in length."""
    dl001 = load_testcase(RELAY / "RELAY-DL-001.yaml", fast_profile)
    (result,) = run(fast_profile, variant(HugeRelay), dl001)
    assert result.verdict is Verdict.FAIL, result.reason
    (big,) = [r for r in result.exchange if r["dst_node"] == "cue1" and len(r["hex"]) // 2 > 60000]
    assert len(big["hex"]) // 2 == 65507 and "malformed" not in big
    assert "payload" in result.reason


def test_a_sut_sending_everywhere_is_judged_everywhere(fast_profile: Profile) -> None:
    """A relayed response also sent to every host of the range: each copy is seen, the verdict counts them."""
    dl001 = load_testcase(RELAY / "RELAY-DL-001.yaml", fast_profile)
    (result,) = run(fast_profile, variant(EverywhereRelay), dl001)
    assert result.verdict is Verdict.FAIL
    # every host but the relay's own two endpoints and the nodes of the case (the exchange records
    # are capped at their first and last ones; the verdict counts every copy)
    counted = re.search(r"(\d+) unexpected message\(s\)", result.reason)
    assert counted and int(counted.group(1)) >= 240, result.reason
    assert result.exchange_summary["datagrams"] >= 240


def test_router_attributes_by_address_and_counts_strays() -> None:
    """A datagram belongs to the open case whose range holds its source, else its destination; one to
    a range no open case holds is a stray (never judged in another case)."""
    router = Router()

    def fake(third: int) -> SimpleNamespace:
        return SimpleNamespace(space=CaseSpace("127.9", third, 1), recorder=Recorder())

    a, b = fake(1), fake(2)
    router.add(a)  # type: ignore[arg-type]
    router.add(b)  # type: ignore[arg-type]
    router.record(("127.9.1.1", 65401), ("127.9.2.11", 65401), b"x", 0.0)  # from a's range to b's: a's
    router.record(("127.0.0.1", 5683), ("127.9.2.11", 65401), b"y", 0.0)  # from outside to b's: b's
    router.record(("127.9.3.1", 65401), ("127.9.3.11", 65401), b"z", 0.0)  # a closed range: stray
    assert [d.data for d in a.recorder.datagrams] == [b"x"]
    assert [d.data for d in b.recorder.datagrams] == [b"y"]
    assert router.strays == 1


def test_relay_variants_are_real(fast_profile: Profile) -> None:
    """The reference passes every case the checks above use (so each check's failure is the variant's)."""
    names = ["RELAY-DL-001", "RELAY-DL-004", "RELAY-DL-006", "RELAY-UL-002"]
    results = run(fast_profile, "reference", *[load_testcase(RELAY / f"{n}.yaml", fast_profile) for n in names])
    assert [r.verdict for r in results] == [Verdict.PASS] * 4
    assert faulty.VARIANTS["late-without-link-250ms"][1] == "REQ-RELAY-DL-2"


class OtherPortRelay(ReferenceRelay):
    """Sends a copy of every relayed response to port 5684 of an unused host (no listener there)."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        super().forward_downlink(msg, client)
        assert self.pc5 is not None
        prefix = client.endpoint[0].rsplit(".", 1)[0]
        self.pc5.send(dataclasses.replace(self.downlink_copy(msg), mtype=MessageType.NON), (f"{prefix}.201", 5684))


def test_sniff_mode_sees_every_port(fast_profile: Profile) -> None:
    """Live capture judges a datagram to a port no listener has; the tap cannot see it and says so
    by passing (its claim is the profile's port and the ports tester nodes own)."""
    from msgin5g_conformance.wire.capture.sniff import sniff_available

    ok, why = sniff_available()
    if not ok:
        if os.environ.get("CI"):
            raise AssertionError(f"live capture must be available in CI: {why}")
        import pytest

        pytest.skip(f"live capture unavailable here: {why}")
    dl001 = load_testcase(RELAY / "RELAY-DL-001.yaml", fast_profile)
    (sniffed,) = run(fast_profile, variant(OtherPortRelay), dl001, capture_mode="sniff")
    assert sniffed.verdict is Verdict.FAIL and ":5684" in sniffed.reason, sniffed.reason
    (tapped,) = run(fast_profile, variant(OtherPortRelay), dl001)
    assert tapped.verdict is Verdict.PASS, tapped.reason
