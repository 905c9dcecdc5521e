"""The relay field cases (RELAY-DL-010.., E2E-002.., ROB-.., UL-003..) and the variants that prove them.

Fast checks, no traffic: every relay case is failed by some faulty variant (the self-tests run them),
each defect variant decides what its docstring says and the reference decides otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber
from msgin5g_conformance.world.profile import load_profile
from sut_adapters.base import CaseWorld, ClientInfo
from sut_adapters.faulty import relay as faulty
from sut_adapters.faulty.expected import proven_cases
from sut_adapters.reference.coapnode import FastTuning
from sut_adapters.reference.common import RoleContext
from sut_adapters.reference.relay import ReferenceRelay

from .conftest import TESTCASES

PROFILE = load_profile()
RELAY_CASES = sorted((TESTCASES / "relay").rglob("*.yaml"))
CUE1 = ClientInfo("cue1", "cue1.msgin5g.example", ("127.0.0.11", 65401))


def relay(cls: type[ReferenceRelay]) -> ReferenceRelay:
    world = CaseWorld(
        role="relay",
        endpoints={"sut.pc5": ("127.0.0.1", 65401), "sut.uu": ("127.0.0.2", 65401)},
        peers={"scms": ("127.0.0.5", 65401), "relay": ("127.0.0.4", 65401)},
        client_lookup=lambda address: None,
    )
    r = cls(RoleContext(PROFILE, FastTuning(), world))
    r.establish_link(CUE1)
    return r


def response(
    code: int = Code.CONTENT, payload: bytes = b"", options: tuple[tuple[int, bytes], ...] = ()
) -> CoapMessage:
    return CoapMessage(MessageType.NON, code, 1, b"\x01", options, payload)


@pytest.mark.parametrize("path", RELAY_CASES, ids=[p.stem for p in RELAY_CASES])
def test_every_relay_case_can_fail(path: Path) -> None:
    """Each relay case is failed by at least one faulty variant of the self-test's tables."""
    case = load_testcase(path, PROFILE)
    assert proven_cases().get(case.id), f"{case.id}: no faulty variant is expected to fail it"


@pytest.mark.parametrize("recipient", ["cue1.msgin5g.examplex", "xcue1.msgin5g.examplex", ""])
@pytest.mark.parametrize("cls", [faulty.MatchesByPrefix, faulty.MatchesBySubstring])
def test_loose_matching_takes_a_part_for_the_whole(cls: type[ReferenceRelay], recipient: str) -> None:
    """The recipients RELAY-DL-010 and -011 send name no linked client for the reference; a loose
    matcher finds cue1 in them (the prefix matcher all but the embedded one)."""
    assert relay(ReferenceRelay).link_for(recipient) is None
    found = relay(cls).link_for(recipient)
    if cls is faulty.MatchesByPrefix and recipient.startswith("x"):
        assert found is None
    else:
        assert found == CUE1


def test_truncation_and_reserialisation_change_the_bytes() -> None:
    """600 bytes stay 600 for the reference and become 256; JSON keeps its meaning, not its bytes."""
    doc = json.dumps({"MSGin5G-Server-address": "coap://x", "pad": "a" * 580}, separators=(",", ":")).encode()
    assert len(relay(ReferenceRelay).downlink_copy(response(payload=doc)).payload) == len(doc)
    assert relay(faulty.Truncates256).downlink_copy(response(payload=doc)).payload == doc[:256]
    again = relay(faulty.ReserialisesJson).downlink_copy(response(payload=doc)).payload
    assert again != doc and json.loads(again) == json.loads(doc)
    text = b"not JSON at all"
    assert relay(faulty.ReserialisesJson).downlink_copy(response(payload=text)).payload == text


def test_block2_and_error_codes_as_relayed() -> None:
    """strips-block2 loses Block2/Size2, con-errors-as-content turns a CON 4.04 into a 2.05; the
    reference keeps both."""
    opts = ((OptionNumber.CONTENT_FORMAT, b"\x32"), (OptionNumber.BLOCK2, b"\x08"), (OptionNumber.SIZE2, b"\x73"))
    assert relay(ReferenceRelay).downlink_copy(response(options=opts)).options == opts
    assert relay(faulty.StripsBlock2).downlink_copy(response(options=opts)).options == opts[:1]
    con = CoapMessage(MessageType.CON, Code.NOT_FOUND, 1, b"\x01", (), b"none")
    assert relay(ReferenceRelay).downlink_copy(con).code == Code.NOT_FOUND
    assert relay(faulty.ConErrorsAsContent).downlink_copy(con).code == Code.CONTENT


def test_reading_variants_refuse_less_than_the_reference() -> None:
    """The reference refuses a GET for another recipient, without one, or from another port; the
    variants that break the discard readings relay them (and relay every code)."""
    scms = PROFILE.scm_s_address.encode()

    def get(recipient: bytes | None) -> CoapMessage:
        options = ((PROFILE.recipient_option, recipient),) if recipient else ()
        return CoapMessage(MessageType.NON, Code.GET, 1, b"\x01", options, b"")

    here, other = ("127.0.0.11", PROFILE.port), ("127.0.0.5", PROFILE.alt_port)
    ref, anyr, port = relay(ReferenceRelay), relay(faulty.RelaysAnyRecipient), relay(faulty.UplinkIgnoresPort)
    assert ref.configuration_get_refusal(get(scms), here) is None
    for msg, src in ((get(b"cue2.msgin5g.example"), here), (get(None), here), (get(scms), other)):
        assert ref.configuration_get_refusal(msg, src) is not None
    assert anyr.configuration_get_refusal(get(b"cue2.msgin5g.example"), here) is None
    assert anyr.configuration_get_refusal(get(None), here) is None
    assert port.configuration_get_refusal(get(scms), other) is None
    assert not ref.relays_code(Code.CHANGED) and relay(faulty.RelaysOtherCodes).relays_code(Code.CHANGED)
