"""Role-independent cases (``role: any``), the ``probe`` step and ``expect ... answers``: the loader's
rules and the message-layer model they rest on (RFC 7252 4.2, 4.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgin5g_conformance.engine.matching import Inbox, Kind, message_layer_violations
from msgin5g_conformance.engine.steps import foreach_group
from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.spec import loader
from msgin5g_conformance.spec.model import ExpectNothingStep, ExpectStep, ProbeStep
from msgin5g_conformance.wire.capture.record import Datagram
from msgin5g_conformance.world.profile import load_profile

PROFILE = load_profile()

ANY = """\
id: TEST-ANY-001
title: An Empty CON is answered with a Reset
purpose: A role-independent case for the loader tests.
clause: RFC 7252 4.3
requirements: [REQ-COAP-MSG-6]
strength: shall
role: any
steps:
  - send: {from: "${peer}", to: "${endpoint}", raw: "4000c101"}
  - expect: {at: "${peer}", from: "${endpoint}", type: RST, code: "0.00", answers: 0}
  - probe: {}
"""


def write(tmp_path: Path, text: str, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        loader.load_testcases(path, PROFILE)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_one_case_per_role_steps_per_endpoint(tmp_path: Path) -> None:
    cases = loader.load_testcases(write(tmp_path, ANY), PROFILE)
    assert [(c.id, c.role, c.endpoints) for c in cases] == [
        ("TEST-ANY-001[relay]", "relay", ("sut.pc5", "sut.uu")),
        ("TEST-ANY-001[gateway]", "gateway", ("sut.pc5", "sut.uu")),
        ("TEST-ANY-001[constrained-ue]", "constrained-ue", ("sut.cue",)),
    ]
    cue = cases[2]
    send, expect, probe = cue.steps
    assert (send.index, expect.index, probe.index) == ("0[sut.cue]", "1[sut.cue]", "2[sut.cue]")
    assert isinstance(expect, ExpectStep) and expect.answers == "0[sut.cue]" and expect.at == "relay"
    assert isinstance(probe, ProbeStep) and probe.nodes == ("relay",)
    assert cue.capabilities == ("trigger-request",) and cue.base_id == "TEST-ANY-001" and cue.generic
    relay_probe = cases[0].steps[2]
    assert isinstance(relay_probe, ProbeStep) and relay_probe.nodes == ("cue1", "cue2", "scms")
    # the first role's run stands for the file where one case is wanted (lint, list)
    assert loader.load_testcase(write(tmp_path, ANY), PROFILE).id == "TEST-ANY-001[relay]"
    assert loader.lint([tmp_path], PROFILE) == (1, [])


def test_endpoints_choose_the_roles(tmp_path: Path) -> None:
    text = ANY.replace("role: any\n", "role: any\nendpoints: [sut.uu, sut.cue]\n")
    cases = loader.load_testcases(write(tmp_path, text), PROFILE)
    assert [(c.role, c.endpoints) for c in cases] == [
        ("relay", ("sut.uu",)),
        ("gateway", ("sut.uu",)),
        ("constrained-ue", ("sut.cue",)),
    ]
    only_pc5 = ANY.replace("role: any\n", "role: any\nendpoints: [sut.pc5]\n")
    assert [c.role for c in loader.load_testcases(write(tmp_path, only_pc5), PROFILE)] == ["relay", "gateway"]


def test_role_profile_applies_to_one_role(tmp_path: Path) -> None:
    text = ANY.replace(
        "steps:\n", "applicability:\n  role_profile:\n    relay: {readings.relay_model: terminating}\nsteps:\n"
    )
    relay, gateway, cue = loader.load_testcases(write(tmp_path, text), PROFILE)
    assert relay.profile_conditions == {"readings.relay_model": "terminating"}
    assert gateway.profile_conditions == {} and cue.profile_conditions == {}
    bad = text.replace("readings.relay_model", "readings.relay_modle")
    assert problems(write(tmp_path, bad)) == [
        "applicability.role_profile.relay.readings.relay_modle: expected a profile key, found unknown "
        "'readings.relay_modle'"
    ]


def test_what_a_role_any_case_refuses(tmp_path: Path) -> None:
    needs = ANY.replace("  - probe: {}\n", "  - probe: {needs: 0}\n")
    assert problems(write(tmp_path, needs))  # needs is no field of a probe (schema)
    since = ANY.replace("answers: 0}", "answers: 0, since_step: 0}")
    assert problems(write(tmp_path, since)) == [
        "steps[1].expect.since_step: expected no since_step in a role: any case, found one"
    ]
    no_send = ANY.replace("answers: 0}", "answers: 2}")
    assert problems(write(tmp_path, no_send)) == [
        "steps[1].expect.answers: expected the index of an earlier top-level send step, found 2"
    ]
    non = ANY.replace('raw: "4000c101"', 'raw: "5000c101"')
    assert problems(write(tmp_path, non)) == [
        "steps[1].expect.answers: expected a send step of a CON, found step 0, which sends no CON"
    ]
    relay_case = (
        ANY.replace("role: any", "role: relay\nendpoints: [sut.pc5]")
        .replace('"${peer}"', "cue1")
        .replace('"${endpoint}"', "sut.pc5")
    )
    assert problems(write(tmp_path, relay_case)) == ["endpoints: expected endpoints only in a role: any case, found it"]
    # ${peer} and ${endpoint} mean nothing in a case of one role
    one_role = ANY.replace("role: any", "role: relay")
    assert any("expected a tester node" in p for p in problems(write(tmp_path, one_role)))


def test_a_probe_may_be_the_control_of_an_absence(tmp_path: Path) -> None:
    text = ANY.replace(
        '  - expect: {at: "${peer}", from: "${endpoint}", type: RST, code: "0.00", answers: 0}\n  - probe: {}\n',
        '  - expect_nothing:\n      at: ["${peer}"]\n      control:\n        - probe: {}\n',
    )
    case = loader.load_testcases(write(tmp_path, text), PROFILE)[0]
    absence = case.steps[1]
    assert isinstance(absence, ExpectNothingStep) and isinstance(absence.control[0], ProbeStep)
    assert case.capabilities == ("link-control",)  # the probe inside the control needs it too
    assert {"cue1", "scms"} <= case.nodes()


def test_the_endpoint_of_a_step_is_no_foreach() -> None:
    """Steps repeated per endpoint wait each on their own; a foreach's nodes share one wait."""
    assert foreach_group("1[sut.pc5]") is None
    assert foreach_group("3") is None
    assert foreach_group("2[cue7].0") == "2[*].0"
    assert foreach_group("2[cue7].0[sut.uu]") == "2[*].0[sut.uu]"


TESTER, SUT = ("127.0.0.10", 65401), ("127.0.0.1", 65401)


def _inbox(reset_nons: bool) -> Inbox:
    return Inbox(lambda a: a == TESTER, reset_nons=reset_nons)


def test_a_malformed_con_is_a_con_by_its_header() -> None:
    """A CON with TKL 9 is answered by a Reset with its Message ID (RFC 7252 4.2): the Reset answers
    it; the message-layer check leaves such a CON to the step that judges it."""
    inbox = _inbox(False)
    inbox.feed(
        [
            Datagram(0, 0.0, TESTER, SUT, bytes.fromhex("4901c601") + bytes(9)),
            Datagram(1, 0.001, SUT, TESTER, bytes.fromhex("7000c601")),
        ]
    )
    rst = inbox.arrivals[-1]
    assert rst.kind is Kind.RESET and rst.answers == 0
    unanswered = _inbox(False)
    unanswered.feed([Datagram(0, 0.0, TESTER, SUT, bytes.fromhex("4901c601") + bytes(9))])
    assert message_layer_violations(unanswered, 1.0, 4, str) == []
    well_formed = _inbox(False)
    well_formed.feed([Datagram(0, 0.0, TESTER, SUT, bytes.fromhex("4000c101"))])
    assert [v.requirement for v in message_layer_violations(well_formed, 1.0, 4, str)] == ["REQ-COAP-MSG-1"]
    assert message_layer_violations(well_formed, 1.0, 4, str, judged={(TESTER, 0xC101)}) == []


@pytest.mark.parametrize("reset_nons", [False, True])
def test_a_reset_of_a_non_is_allowed_in_role_any_cases(reset_nons: bool) -> None:
    """RFC 7252 4.3: rejecting a NON MAY involve a matching Reset; an ACK of a NON never answers it."""
    inbox = _inbox(reset_nons)
    inbox.feed(
        [
            Datagram(0, 0.0, TESTER, SUT, bytes.fromhex("5000c401")),
            Datagram(1, 0.001, SUT, TESTER, bytes.fromhex("7000c401")),
            Datagram(2, 0.002, SUT, TESTER, bytes.fromhex("6000c401")),
        ]
    )
    rst, ack = inbox.arrivals
    assert rst.kind is (Kind.RESET if reset_nons else Kind.STRAY)
    assert ack.kind is Kind.STRAY
