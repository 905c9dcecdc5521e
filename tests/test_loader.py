"""Tests for loading test case YAML: the shipped cases, and located errors for broken ones.

Every broken-file test writes a copy into ``tmp_path`` and checks the whole message, in the
house format ``file:line: field.path: expected ..., found ...``. Line numbers are computed
from the text written, so a test fails if the loader points at the wrong line.

Also here: ``foreach`` unrolling, node ranges, the other format additions, how ``{set: [...]}``,
``${ue_uri...}`` and ``payload: {schema, json}`` are judged (``checks.judge``), and the examples
and messages shown in docs/writing-testcases.md. Tests marked ``xfail(strict=True)`` pin engine
bugs: they start to pass, and so fail the run, once the bug is fixed.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from msgin5g_conformance import schemacheck
from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.spec import loader, model
from msgin5g_conformance.spec.model import ExpectNothingStep, ExpectStep, SendStep, UpperStep, WaitStep
from msgin5g_conformance.spec.templates import Bindings, judge
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import OPTION_NAMES, Code, MessageType, OptionNumber
from msgin5g_conformance.world.profile import Profile, load_profile

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "testcases").rglob("*.yaml"))
PROFILE = load_profile()
DEFAULT_PROFILE_TEXT = resources.files("msgin5g_conformance.data").joinpath("default-profile.yaml").read_text("utf-8")
ROLE_FOLDERS = {"relay": 27, "gateway": 13, "constrained-ue": 7, "coap": 13}  # coap: role any

# A small valid relay case; each test breaks one thing in a copy of it.
BASE = """\
id: TEST-LOAD-001
title: A 4.04 for a linked client is relayed downlink
purpose: Base case that the loader tests break one field at a time.
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
      code: "4.04"
      token: "d3d3"
      options:
        recipient: ${addr.cue1}
      payload: {text: "no configuration for this UE"}
  - expect:
      at: cue1
      from: sut.pc5
      code: "4.04"
      token: "d3d3"
      options:
        recipient: ${addr.cue1}
"""

# Appended to BASE as steps[2]: an absence check with a positive control.
ABSENCE = """\
  - expect_nothing:
      at: [cue1]
      control:
        - send:
            from: scms
            to: sut.uu
            type: NON
            code: "4.03"
            token: "c1c1"
            options:
              recipient: ${addr.cue1}
        - expect:
            at: cue1
            code: "4.03"
            token: "c1c1"
"""


def mutate(text: str, old: str, new: str) -> str:
    """Replace the single occurrence of ``old`` (the test is wrong if it is not there once)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the ``occurrence``-th line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} found {len(hits)} times"
    return hits[occurrence - 1]


def write(folder: Path, text: str, name: str = "case.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    """The message of the DefinitionError that loading ``path`` must raise."""
    with pytest.raises(DefinitionError) as info:
        loader.load_testcase(path, PROFILE)
    return str(info.value)


# --------------------------------------------------------------------------- #
# Good files
# --------------------------------------------------------------------------- #


def test_there_are_shipped_test_cases() -> None:
    """60 shipped case files: one folder per role, and coap for the role-independent ones."""
    assert len(SHIPPED) == sum(ROLE_FOLDERS.values()) == 60
    assert {p.parent.name for p in SHIPPED} == set(ROLE_FOLDERS)
    for role, count in ROLE_FOLDERS.items():
        assert len(list((REPO / "testcases" / role).glob("*.yaml"))) == count, role


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_case_role_is_its_folder(path: Path) -> None:
    """Each shipped case declares the role its folder is named after; a coap file is one case per
    role, each named after it (``COAP-VER-001[relay]``)."""
    cases = loader.load_testcases(path, PROFILE)
    if path.parent.name == "coap":
        assert cases and all(c.id == f"{path.stem}[{c.role}]" for c in cases)
        assert {c.role for c in cases} <= {"relay", "gateway", "constrained-ue"}
    else:
        assert [c.role for c in cases] == [path.parent.name]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_case_loads(path: Path) -> None:
    """Every shipped test case loads against the default profile, and its id is its file name
    (with the role, for a role-independent one)."""
    case = loader.load_testcase(path, PROFILE)
    assert case.id == (f"{path.stem}[{case.role}]" if path.parent.name == "coap" else path.stem)
    assert case.file == str(path)
    assert case.steps
    assert case.requirements


def test_documented_example_is_the_shipped_case() -> None:
    """The worked example in docs/writing-testcases.md is RELAY-DL-004 as shipped, so it stays valid."""
    doc = (REPO / "docs" / "writing-testcases.md").read_text(encoding="utf-8")
    shipped = (REPO / "testcases" / "relay" / "RELAY-DL-004.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{shipped}```" in doc


def test_base_case_loads(tmp_path: Path) -> None:
    """The base case the error tests start from is itself valid (so each error comes from the edit)."""
    case = loader.load_testcase(write(tmp_path, BASE + ABSENCE), PROFILE)
    assert case.id == "TEST-LOAD-001"
    assert [type(s) for s in case.steps] == [SendStep, ExpectStep, ExpectNothingStep]


def test_shipped_ids_are_unique() -> None:
    """lint over the shipped folder finds no problem, duplicate ids included."""
    count, problems = loader.lint([REPO / "testcases"], PROFILE)
    assert count == len(SHIPPED)
    assert problems == []


# --------------------------------------------------------------------------- #
# Broken files: one located message each
# --------------------------------------------------------------------------- #

ALLOWED_TOP = ", ".join(sorted(schemacheck.load_schema("testcase.schema.json")["properties"]))
OPTION_LIST = ", ".join(sorted(OPTION_NAMES))

# Unique pieces of BASE that the table below edits.
SEND_CODE = 'code: "4.04"\n      token: "d3d3"\n      options:\n        recipient: ${addr.cue1}\n      pay'
RECIPIENT0 = "        recipient: ${addr.cue1}\n      payload"
PAYLOAD0 = '      payload: {text: "no configuration for this UE"}'
BAD_STRENGTH = "expected one of shall, should, may, found number 3"
TESTER_NODE = "expected a tester node (cue1..cue4000, cue_nolink, scms, scms_alt, relay)"


def with_option0(line: str) -> str:
    """RECIPIENT0 with one more option line after the recipient."""
    return RECIPIENT0.replace("\n", f"\n        {line}\n", 1)


NULL_IN_SEND = "expected a value to send, found an expectation (null/present/set)"

# (test id, text to replace, replacement, text on the line the error must name, field path, message)
# fmt: off
BROKEN = [
    ("tab-indent", "      from: scms\n", "\tfrom: scms\n", "\tfrom: scms",
     "", "YAML syntax: found character '\\t' that cannot start any token"),
    ("bad-indent", "      to: sut.uu\n", "     to: sut.uu\n", "     to: sut.uu",
     "", "YAML syntax: expected <block end>, but found '<block mapping start>'"),
    ("unknown-top-key", "role: relay\n", "role: relay\nauthor: me\n", "author: me",
     "author", f"unknown key 'author'; expected one of {ALLOWED_TOP}"),
    ("unknown-step-key", "      to: sut.uu\n", "      to: sut.uu\n      colour: red\n", "colour: red",
     "steps[0].send.colour",
     "unknown key 'colour'; expected one of code, from, mid, options, payload, query, raw, to, token, type"),
    ("strength-number", "strength: shall", "strength: 3", "strength: 3",
     "strength", "expected one of shall, should, may, found number 3"),
    ("role-router", "role: relay", "role: router", "role: router",
     "role", "expected one of relay, gateway, constrained-ue, found 'router'"),
    ("code-2.5", SEND_CODE, SEND_CODE.replace('"4.04"', '"2.5"'), 'code: "2.5"',
     "steps[0].send.code", "expected a CoAP code such as GET, 2.05 or 4.04, found '2.5'"),
    ("code-unquoted", SEND_CODE, SEND_CODE.replace('"4.04"', "2.05"), "code: 2.05",
     "steps[0].send.code", "expected a CoAP code such as GET, 2.05 or 4.04, found number 2.05"),
    ("unknown-option", RECIPIENT0, with_option0("colour-format: 1"), "colour-format: 1",
     "steps[0].send.options.colour-format",
     f"expected an option name (recipient, {OPTION_LIST}) or a number, found 'colour-format'"),
    ("option-number-zero", RECIPIENT0, with_option0('"0": x'), '"0": x',
     "steps[0].send.options.0", "expected an option number 1..65535, found 0"),
    ("unknown-requirement", "requirements: [REQ-RELAY-DL-1]", "requirements: [REQ-RELAY-DL-1, REQ-NOPE-9]",
     "requirements:",
     "requirements[1]", "expected a requirement id of the catalogue, found unknown 'REQ-NOPE-9'"),
    ("undefined-variable", RECIPIENT0, RECIPIENT0.replace("addr.cue1", "nothing_here"), "${nothing_here}",
     "steps[0].send.options.recipient",
     "expected a variable captured by an earlier step, found undefined ${nothing_here}"),
    ("unknown-profile-key", PAYLOAD0, '      payload: {text: "${profile.no_such_key}"}', "no_such_key",
     "steps[0].send.payload.text", "expected a profile key, found unknown ${profile.no_such_key}"),
    ("bad-uri-variable", RECIPIENT0, with_option0("uri-path: ${uri.middle}"), "${uri.middle}",
     "steps[0].send.options.uri-path", "expected ${uri.single} or ${uri.bulk}, found ${uri.middle}"),
    ("addr-of-sut", RECIPIENT0, RECIPIENT0.replace("cue1", "sut.pc5"), "${addr.sut.pc5}",
     "steps[0].send.options.recipient",
     "expected ${addr.NODE} with a tester node name, found ${addr.sut.pc5}"),
    ("two-kinds-in-one-step", "  - expect:\n      at: cue1", "    expect:\n      at: cue1", "  - send:",
     "steps[0]",
     "expected exactly one of send, expect, expect_nothing, upper, wait, foreach, found a mapping (expect, send)"),
    ("sut-endpoint-of-other-role", "      to: sut.uu\n", "      to: sut.cue\n", "to: sut.cue",
     "steps[0].send.to", "expected a SUT endpoint of role relay (sut.pc5, sut.uu), found 'sut.cue'"),
    ("send-to-tester-node", "      to: sut.uu\n", "      to: cue1\n", "to: cue1",
     "steps[0].send.to", "expected a SUT endpoint of role relay (sut.pc5, sut.uu), found 'cue1'"),
    ("sut-sends", "      from: scms\n", "      from: sut.pc5\n", "from: sut.pc5",
     "steps[0].send.from", f"{TESTER_NODE}, found 'sut.pc5'"),
    ("expect-at-sut", "      at: cue1\n", "      at: sut.pc5\n", "at: sut.pc5",
     "steps[1].expect.at", f"{TESTER_NODE}, found 'sut.pc5'"),
    ("link-to-sut", "  links: [cue1]", "  links: [sut.uu]", "links:",
     "preconditions.links[0]", f"{TESTER_NODE}, found 'sut.uu'"),
    ("send-without-code", '      type: NON\n      code: "4.04"\n', "      type: NON\n", "  - send:",
     "steps[0].send", "missing required key 'code' (or give raw)"),
    ("raw-and-fields", "      to: sut.uu\n", '      to: sut.uu\n      raw: "5001"\n', 'raw: "5001"',
     "steps[0].send.raw", "expected either raw bytes or message fields, found both"),
    ("send-schema-payload", PAYLOAD0, "      payload: {schema: ue-config.schema.json}", "payload: {schema",
     "steps[0].send.payload.schema", "expected hex, text, json or same_as when sending, found schema"),
    ("payload-two-forms", PAYLOAD0, '      payload: {text: "a", hex: "61"}', "payload: {text",
     "steps[0].send.payload", "expected one of hex, text, json, same_as (plus schema), found text, hex"),
    ("payload-schema-with-two-forms", PAYLOAD0, '      payload: {schema: ue-config.schema.json, text: "a", hex: "61"}',
     "payload: {schema", "steps[0].send.payload",
     "expected one of hex, text, json, same_as, schema (schema may accompany one of the others), "
     "found a mapping (hex, schema, text)"),
    ("missing-schema-file", "      from: sut.pc5\n",
     "      from: sut.pc5\n      payload: {schema: no.json}\n", "payload: {schema",
     "steps[1].expect.payload.schema", "expected a schema file, found no file 'no.json'"),
    ("token-not-hex", SEND_CODE, SEND_CODE.replace('"d3d3"', '"xyz"'), 'token: "xyz"',
     "steps[0].send.token",
     "expected a token of 0 to 8 bytes in hex, two digits a byte (e.g. 'a1b2'), possibly with ${variables}, "
     "found 'xyz'"),
    ("bad-node-name", "      at: cue1\n", "      at: cue0\n", "at: cue0",
     "steps[1].expect.at",
     "expected a node name: cue1..cue4000, cue_nolink, scms, scms_alt, relay, sut.pc5, sut.uu, sut.cue "
     "(or ${each} inside foreach, ${endpoint} / ${peer} in a role: any case), found 'cue0'"),
    ("release-without-client", "steps:\n", "steps:\n  - upper: {op: release_link}\n", "op: release_link",
     "steps[0].upper", "missing required key 'client' for op release_link"),
    ("bad-id", "id: TEST-LOAD-001", "id: test-load-1", "id: test",
     "id", "expected an id such as RELAY-DL-001 (capitals, digits, dashes), found 'test-load-1'"),
    ("bad-clause", "clause: TS 24.538 6.2.2.1", "clause: 6.2.2.1", "clause:",
     "clause", "expected a clause reference such as 'TS 24.538 6.2.2.1', found '6.2.2.1'"),
    # expectation-only option forms are refused in a send
    ("null-in-send", RECIPIENT0, with_option0("uri-query: null"), "uri-query: null",
     "steps[0].send.options.uri-query", NULL_IN_SEND),
    ("present-in-send", RECIPIENT0, with_option0("uri-query: {present: true}"), "uri-query: {present",
     "steps[0].send.options.uri-query", NULL_IN_SEND),
    ("set-not-a-list", RECIPIENT0, with_option0("uri-query: {set: a}"), "uri-query: {set",
     "steps[0].send.options.uri-query",
     "expected a value, a list of values, {set: [...]} (any order), null (absent) or {present: true}, "
     "found a mapping (set)"),
    # applicability.profile keys and depends_on items are checked at lint
    ("applicability-profile-typo", "  capabilities: [link-control]\n",
     "  capabilities: [link-control]\n  profile: {port_mach: both}\n", "port_mach",
     "applicability.profile.port_mach", "expected a profile key, found unknown 'port_mach'"),
    ("applicability-dotted-typo", "  capabilities: [link-control]\n",
     "  capabilities: [link-control]\n  profile:\n    bulk_policy.min_bach: {min: 2}\n", "min_bach",
     "applicability.profile.bulk_policy.min_bach", "expected a profile key, found unknown 'bulk_policy.min_bach'"),
    ("depends-on-typo", "role: relay\n", "role: relay\ndepends_on: [port_match, bulk_polcy]\n", "depends_on:",
     "depends_on[1]",
     "expected a profile item (addresses, bulk_policy, bulk_response_schema, bulk_uri, config_schema, "
     "content_format, port, port_match, query, recipient_option, relay, scm_s, single_uri), found 'bulk_polcy'"),
    # timeout_ms from the profile, grace_ms, settle_ms
    ("timeout-unknown-profile-key", "      from: sut.pc5\n",
     "      from: sut.pc5\n      timeout_ms: ${profile.timers.respons_ms}\n", "respons_ms",
     "steps[1].expect.timeout_ms", "expected a profile key, found unknown ${profile.timers.respons_ms}"),
    ("timeout-text", "      from: sut.pc5\n", "      from: sut.pc5\n      timeout_ms: fast\n", "timeout_ms: fast",
     "steps[1].expect.timeout_ms", "expected milliseconds (1..60000) or a ${profile...} variable, found 'fast'"),
    ("grace-negative", "      from: sut.pc5\n", "      from: sut.pc5\n      grace_ms: -1\n", "grace_ms: -1",
     "steps[1].expect.grace_ms", "expected a number with minimum 0, found number -1"),
    ("settle-too-long", "steps:\n", "steps:\n  - upper: {op: read_configuration, settle_ms: 20000}\n",
     "settle_ms", "steps[0].upper.settle_ms", "expected a number with maximum 10000, found number 20000"),
    # variables of the new format
    ("each-outside-foreach", SEND_CODE, SEND_CODE.replace('"d3d3"', '"${each_hex}"'), "${each_hex}",
     "steps[0].send.token", "expected ${each_hex} only inside foreach steps, found it outside"),
    ("config-of-the-sut", PAYLOAD0, '      payload: {json: "${config.sut}"}', "${config.sut}",
     "steps[0].send.payload.json", "expected ${config.NODE} with a tester node name, found ${config.sut}"),
    ("ue-uri-reversed-range", RECIPIENT0, with_option0('uri-query: ["${ue_uri.cue3..cue1}"]'), "ue_uri",
     "steps[0].send.options.uri-query[0]",
     "${ue_uri.cue3..cue1}: expected a range within cue1..cue4000, found 'cue3..cue1' (3..1)"),
    ("ue-uri-not-a-range", RECIPIENT0, with_option0('uri-query: ["${ue_uri.cue1}"]'), "ue_uri",
     "steps[0].send.options.uri-query[0]", "${ue_uri.cue1}: expected a node range such as cue1..cue50, found 'cue1'"),
]
# fmt: on


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_case_gives_one_located_message(
    tmp_path: Path, old: str, new: str, needle: str, field: str, message: str
) -> None:
    """A single mistake gives exactly one message naming file, line, field path, expected and found."""
    text = mutate(BASE, old, new)
    path = write(tmp_path, text)
    where = f"{path}:{line_of(text, needle)}"
    expected = f"{where}: {field}: {message}" if field else f"{where}: {message}"
    assert load_error(path) == expected


def test_duplicate_key_names_the_second_occurrence(tmp_path: Path) -> None:
    """A key given twice is refused (not silently overwritten) at the line of the repeat."""
    text = mutate(BASE, "strength: shall\n", "strength: shall\nstrength: may\n")
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:{line_of(text, 'strength: may')}: strength: duplicate key"


def test_duplicate_key_inside_a_step(tmp_path: Path) -> None:
    """Duplicate keys are found at any depth, with the full field path."""
    text = mutate(BASE, SEND_CODE, SEND_CODE.replace('"d3d3"', '"d3d3"\n      token: "d4d4"'))
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:{line_of(text, 'd4d4')}: steps[0].send.token: duplicate key"


def test_capture_used_before_it_is_defined(tmp_path: Path) -> None:
    """A capture is only defined for steps after the one that captures it."""
    text = mutate(BASE, SEND_CODE, SEND_CODE.replace('"d3d3"', "${tok}"))
    text += "      capture: {tok: token}\n"
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}:{line_of(text, 'token: ${tok}')}: steps[0].send.token: "
        "expected a variable captured by an earlier step, found undefined ${tok}"
    )


def test_capture_is_not_visible_in_its_own_step(tmp_path: Path) -> None:
    """An expect cannot use the variable it captures itself: the capture exists only afterwards."""
    old = '      from: sut.pc5\n      code: "4.04"\n      token: "d3d3"\n'
    text = mutate(BASE, old, old.replace('"d3d3"', "${tok}") + "      capture: {tok: token}\n")
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}:{line_of(text, 'token: ${tok}')}: steps[1].expect.token: "
        "expected a variable captured by an earlier step, found undefined ${tok}"
    )


def test_same_as_needs_an_earlier_capture(tmp_path: Path) -> None:
    """payload.same_as names a captured payload; an unknown name is located."""
    text = mutate(BASE, PAYLOAD0, "      payload: {same_as: body}")
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}:{line_of(text, 'same_as: body')}: steps[0].send.payload.same_as: "
        "expected a variable captured by an earlier step, found undefined 'body'"
    )


def test_expect_nothing_needs_a_positive_control_expect(tmp_path: Path) -> None:
    """An absence check whose control has no expect is refused: a dead SUT would otherwise pass it."""
    absence = mutate(
        ABSENCE, '        - expect:\n            at: cue1\n            code: "4.03"\n            token: "c1c1"\n', ""
    )
    text = BASE + absence
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}:{line_of(text, 'control:')}: steps[2].expect_nothing.control: "
        "expected a positive control with at least one expect, found none"
    )


def test_expect_nothing_cannot_be_nested_in_a_control(tmp_path: Path) -> None:
    """A control step is one of send, expect, upper; an absence check inside one is refused."""
    nested = "      control:\n        - expect_nothing: {at: [cue1], control: []}\n"
    text = BASE + mutate(ABSENCE, "      control:\n", nested)
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}:{line_of(text, '- expect_nothing: {at')}: "
        "steps[2].expect_nothing.control[0].expect_nothing: "
        "unknown key 'expect_nothing'; expected one of expect, probe, send, upper"
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment-only"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    """A file without a document is reported as empty at line 1."""
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:1: the file is empty"


@pytest.mark.parametrize(
    ("text", "found"),
    [("- id: X\n- id: Y\n", "a list of 2"), ("just text\n", "'just text'"), ("42\n", "number 42")],
    ids=["list", "text", "number"],
)
def test_document_that_is_not_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    """A test case must be a mapping; anything else says what was found."""
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:1: expected a mapping, found {found}"


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    """One file holds one test case; a second YAML document is a located syntax error."""
    text = BASE + "---\n" + BASE
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:{line_of(text, '---')}: YAML syntax: but found another document"


def test_unreadable_file_is_located_not_a_traceback(tmp_path: Path) -> None:
    """A file that is not UTF-8 is a DefinitionError naming the file, the line and the byte."""
    path = tmp_path / "case.yaml"
    path.write_bytes(b"id: \xff\xfe\n")
    message = load_error(path)
    assert message.startswith(f"{path}:1: not UTF-8 (byte 4: ")


def test_every_problem_of_a_file_is_reported_in_line_order(tmp_path: Path) -> None:
    """Several mistakes in one file are all reported at once, sorted by line."""
    text = mutate(mutate(BASE, "strength: shall", "strength: 3"), "role: relay", "role: router")
    path = write(tmp_path, text)
    assert load_error(path).splitlines() == [
        f"{path}:{line_of(text, 'strength: 3')}: strength: {BAD_STRENGTH}",
        f"{path}:{line_of(text, 'role: router')}: role: expected one of relay, gateway, constrained-ue, found 'router'",
    ]


def test_lint_finds_duplicate_ids_across_files(tmp_path: Path) -> None:
    """Two files with the same id: lint reports the second one and names the first."""
    first = write(tmp_path, BASE, "a.yaml")
    second = write(tmp_path, BASE, "b.yaml")
    count, problems = loader.lint([tmp_path], PROFILE)
    assert count == 2
    assert [str(p) for p in problems] == [
        f"{second}:1: id: expected a unique test case id, found 'TEST-LOAD-001' again (also in {first})"
    ]


def test_duplicate_id_points_at_the_id_line(tmp_path: Path) -> None:
    """The duplicate-id message names the line of `id:`, also when a schema comment comes first."""
    header = "# yaml-language-server: $schema=../msgin5g_conformance/schemas/testcase.schema.json\n"
    write(tmp_path, BASE, "a.yaml")
    second = write(tmp_path, header + BASE, "b.yaml")
    _, problems = loader.lint([tmp_path], PROFILE)
    assert [(p.file, p.line, p.path) for p in problems] == [(str(second), 2, "id")]
    assert problems[0].message.startswith("expected a unique test case id, found 'TEST-LOAD-001' again")


def test_lint_keeps_going_past_a_broken_file(tmp_path: Path) -> None:
    """A broken file yields its own problems only; the good file next to it is still checked clean."""
    write(tmp_path, BASE, "a-good.yaml")
    bad_text = mutate(mutate(BASE, "LOAD-001", "LOAD-002"), "strength: shall", "strength: 3")
    bad = write(tmp_path, bad_text, "b-bad.yaml")
    count, problems = loader.lint([tmp_path], PROFILE)
    assert count == 2
    assert [str(p) for p in problems] == [f"{bad}:{line_of(bad_text, 'strength: 3')}: strength: {BAD_STRENGTH}"]


def test_capture_of_an_unknown_option_is_refused(tmp_path: Path) -> None:
    """`capture: {x: option.NAME}` with an option name nobody knows is a located load error."""
    text = BASE + "      capture: {x: option.colour}\n"
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}:{line_of(text, 'option.colour')}: steps[1].expect.capture.x: "
        "expected option.NAME with a known option, found 'option.colour'"
    )


def test_lint_reports_a_capture_of_an_unknown_option(tmp_path: Path) -> None:
    """The same mistake is a lint problem; known names, `recipient` and numbers are accepted."""
    good = BASE + "      capture: {a: option.uri-query, b: option.recipient, c: option.65011}\n"
    write(tmp_path, good, "a-good.yaml")
    bad_text = mutate(BASE, "LOAD-001", "LOAD-002") + "      capture: {x: option.colour}\n"
    bad = write(tmp_path, bad_text, "b-bad.yaml")
    count, problems = loader.lint([tmp_path], PROFILE)
    assert count == 2
    assert [(p.file, p.line, p.path) for p in problems] == [
        (str(bad), line_of(bad_text, "option.colour"), "steps[1].expect.capture.x")
    ]


# --------------------------------------------------------------------------- #
# Schemas and model agree
# --------------------------------------------------------------------------- #

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


_SCHEMA_DIR = Path(str(resources.files("msgin5g_conformance.schemas")))
_SHIPPED_SCHEMAS = sorted(str(p.relative_to(_SCHEMA_DIR)) for p in _SCHEMA_DIR.rglob("*.json"))


def test_every_shipped_schema_is_checked() -> None:
    """The list below is the package's schema folder (21 files), so a schema added is checked too."""
    assert len(_SHIPPED_SCHEMAS) >= 21
    assert {"testcase.schema.json", "roles.schema.json", "ut/ready.schema.json"} <= set(_SHIPPED_SCHEMAS)


@pytest.mark.parametrize("name", _SHIPPED_SCHEMAS)
def test_shipped_schemas_are_valid_draft_2020_12(name: str) -> None:
    """Each shipped schema declares Draft 2020-12 and is a valid schema under that meta-schema
    (checked here, once, rather than by every process that loads one: schemacheck.validator_for
    trusts the package's own schemas)."""
    schema = json.loads((_SCHEMA_DIR / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == DRAFT_2020_12
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_check_rejects_a_broken_meta_schema() -> None:
    """The Draft 2020-12 meta-schema check used above does fail on a wrong schema."""
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft202012Validator.check_schema({"$schema": DRAFT_2020_12, "type": "mapping"})


# Uses every top-level property of testcase.schema.json and every step kind.
FULL = """\
id: TEST-FULL-001
title: Every field of a test case
purpose: >
  Uses every top-level key
  of the schema.
clause: TS 24.538 6.2.2.1
requirements: [REQ-RELAY-UL-1, REQ-RELAY-DL-1]
strength: should
option: bulk-configuration
reading: [relay_model, unsolicited_token]
role: relay
depends_on: [port_match]
applicability:
  capabilities: [link-control, read-config]
  profile:
    port_match: [source, both]
preconditions:
  links: [cue1, cue2]
  configurations: {cue1: document, cue2: forbidden}
  scms: piggybacked
  hold_ack: [cue2]
steps:
  - send:
      from: cue1
      to: sut.pc5
      type: CON
      code: GET
      token: "0a0b"
      options:
        recipient: ${addr.scms}
        uri-path: ${uri.single}
        uri-query: ["ue-uri=${addr.cue1}"]
  - expect:
      at: scms
      from: sut.uu
      timeout_ms: 500
      type: [CON, NON]
      code: GET
      options: {recipient: "${addr.scms}", content-format: null, "65011": {present: true}}
      capture: {up_token: token, up_body: payload}
  - send:
      from: scms
      to: sut.uu
      type: NON
      code: "2.05"
      token: ${up_token}
      options: {recipient: "${addr.cue1}", content-format: 50}
      payload: {same_as: up_body}
  - wait: {ms: 5}
  - upper: {op: read_configuration, settle_ms: 10, expect: {status: "4.03"}}
  - expect_nothing:
      at: [cue2]
      window_ms: 20
      control:
        - upper: {op: release_link, client: cue2}
        - expect:
            at: cue1
            code: "2.05"
            payload: {schema: ue-config.schema.json}
  - foreach:
      nodes: [cue1, cue2]
      steps:
        - send:
            from: ${each}
            to: sut.pc5
            type: NON
            code: GET
            token: "f0${each_hex}"
            options: {recipient: "${addr.scms}", uri-query: ["ue-uri=${addr.${each}}"]}
        - expect:
            at: scms
            timeout_ms: ${profile.timers.response_ms}
            grace_ms: 100
            options: {uri-query: {set: ["${ue_uri.cue1..cue2}"]}}
            payload: {schema: ue-config.schema.json, json: "${config.${each}}"}
"""


def test_full_case_uses_every_top_level_schema_property() -> None:
    """The all-fields case below really covers every top-level key the schema allows."""
    schema = schemacheck.load_schema("testcase.schema.json")
    document = yaml.safe_load(FULL)
    # endpoints is for role: any cases only (tests/test_role_independent.py covers it)
    assert set(document) == set(schema["properties"]) - {"endpoints"}
    assert set(document["applicability"]) == set(schema["properties"]["applicability"]["properties"]) - {
        "role_profile"  # role: any only, like endpoints
    }
    assert set(document["preconditions"]) == set(schema["properties"]["preconditions"]["properties"])
    kinds = {next(iter(s)) for s in document["steps"]}
    assert kinds == set(schema["$defs"]["step"]["properties"]) - {"probe"}  # probe: role: any only
    foreach = next(s["foreach"] for s in document["steps"] if "foreach" in s)
    assert set(foreach) == set(schema["$defs"]["foreach"]["properties"])


def test_every_schema_property_reaches_the_model(tmp_path: Path) -> None:
    """Each top-level key of the schema is consumed by load_located into the matching TestCase field."""
    path = write(tmp_path, FULL)
    case = loader.load_testcase(path, PROFILE)
    assert isinstance(case, model.TestCase)
    assert case.id == "TEST-FULL-001"
    assert case.title == "Every field of a test case"
    assert case.purpose == "Uses every top-level key of the schema."
    assert case.clause == "TS 24.538 6.2.2.1"
    assert case.requirements == ("REQ-RELAY-UL-1", "REQ-RELAY-DL-1")
    assert case.strength == "should"
    assert case.role == "relay"
    assert case.depends_on == ("port_match",)
    assert case.capabilities == ("link-control", "read-config")
    assert case.profile_conditions == {"port_match": ["source", "both"]}
    assert case.links == ("cue1", "cue2")
    assert case.configurations == {"cue1": "document", "cue2": "forbidden"}
    assert case.file == str(path)
    assert len(case.sha256) == 64

    send, expect, reply, wait, upper, absence, *unrolled = case.steps
    assert isinstance(send, SendStep)
    assert (send.index, send.sender, send.to) == ("0", "cue1", "sut.pc5")
    assert send.line == line_of(FULL, "  - send:")
    assert send.message["options"]["uri-path"] == "${uri.single}"
    assert "from" not in send.message and "to" not in send.message

    assert isinstance(expect, ExpectStep)
    assert (expect.at, expect.sender, expect.timeout_ms) == ("scms", "sut.uu", 500)
    assert expect.capture == {"up_token": "token", "up_body": "payload"}
    assert expect.message["type"] == ["CON", "NON"]
    assert expect.message["options"]["content-format"] is None
    assert "capture" not in expect.message and "timeout_ms" not in expect.message

    assert isinstance(reply, SendStep)
    assert reply.message["token"] == "${up_token}"
    assert reply.message["payload"] == {"same_as": "up_body"}

    assert isinstance(wait, WaitStep)
    assert wait.ms == 5

    assert isinstance(upper, UpperStep)
    assert (upper.op, upper.client, upper.expect) == ("read_configuration", None, {"status": "4.03"})
    assert upper.settle_ms == 10

    assert isinstance(absence, ExpectNothingStep)
    assert (absence.index, absence.at, absence.window_ms) == ("5", ("cue2",), 20)
    release, control_expect = absence.control
    assert isinstance(release, UpperStep)
    assert (release.index, release.op, release.client) == ("5.control[0]", "release_link", "cue2")
    assert isinstance(control_expect, ExpectStep)
    assert control_expect.message["payload"] == {"schema": "ue-config.schema.json"}

    # foreach: two steps per node, node by node, each numbered after the foreach and its node
    assert [s.index for s in unrolled] == ["6[cue1].0", "6[cue1].1", "6[cue2].0", "6[cue2].1"]
    assert [type(s) for s in unrolled] == [SendStep, ExpectStep, SendStep, ExpectStep]
    sends = [s for s in unrolled if isinstance(s, SendStep)]
    assert [(s.sender, s.message["token"]) for s in sends] == [("cue1", "f00001"), ("cue2", "f00002")]
    assert sends[1].message["options"]["uri-query"] == ["ue-uri=${addr.cue2}"]
    assert {s.line for s in sends} == {line_of(FULL, "        - send:")}
    expects = [s for s in unrolled if isinstance(s, ExpectStep)]
    assert expects[0].line == line_of(FULL, "        - expect:", occurrence=2)
    assert (expects[0].timeout_ms, expects[0].grace_ms) == ("${profile.timers.response_ms}", 100)
    assert expects[0].message["options"]["uri-query"] == {"set": ["${ue_uri.cue1..cue2}"]}
    assert expects[1].message["payload"] == {"schema": "ue-config.schema.json", "json": "${config.cue2}"}
    assert case.nodes() == {"cue1", "cue2", "scms", "sut.pc5", "sut.uu"}


def test_sha256_follows_the_file_text(tmp_path: Path) -> None:
    """Editing a case, even only its title, changes the recorded sha256."""
    a = loader.load_testcase(write(tmp_path, BASE, "a.yaml"), PROFILE)
    b = loader.load_testcase(write(tmp_path, mutate(BASE, "title: A", "title: The"), "b.yaml"), PROFILE)
    assert a.sha256 != b.sha256


# --------------------------------------------------------------------------- #
# foreach: expansion and located errors
# --------------------------------------------------------------------------- #

# A gateway case: three clients request, one bulk GET must list all three (any order).
GATEWAY = """\
id: TEST-EACH-001
title: Three cached requests go out in one bulk GET
purpose: Base gateway case that the foreach tests edit.
clause: TS 24.538 6.2.2.x
requirements: [REQ-GW-BULK-1]
strength: may
option: bulk-configuration
role: gateway
steps:
  - foreach:
      nodes: cue1..cue3
      steps:
        - send:
            from: ${each}
            to: sut.pc5
            type: NON
            code: GET
            token: "b200${each_hex}"
            options:
              recipient: ${addr.scms}
              uri-path: ${uri.single}
              uri-query: ["ue-uri=${addr.${each}}"]
  - expect:
      at: scms
      from: sut.uu
      code: GET
      timeout_ms: ${profile.bulk_policy.max_wait_ms}
      grace_ms: 500
      options:
        uri-path: ${uri.bulk}
        uri-query: {set: ["${ue_uri.cue1..cue3}"]}
"""
NODES = "      nodes: cue1..cue3\n"


def profile_with(folder: Path, old: str, new: str) -> Profile:
    """The default profile with one text edit, loaded from ``folder``."""
    path = folder / "edited-profile.yaml"
    path.write_text(mutate(DEFAULT_PROFILE_TEXT, old, new), encoding="utf-8")
    return load_profile(path)


def test_foreach_range_unrolls_one_step_per_node(tmp_path: Path) -> None:
    """`nodes: cue1..cue3` repeats the body for cue1, cue2, cue3 with ${each} and ${each_hex} filled in."""
    case = loader.load_testcase(write(tmp_path, GATEWAY), PROFILE)
    *unrolled, bulk = case.steps
    sends = [s for s in unrolled if isinstance(s, SendStep)]
    assert len(sends) == len(unrolled) == 3
    assert [s.index for s in sends] == ["0[cue1].0", "0[cue2].0", "0[cue3].0"]
    assert [s.sender for s in sends] == ["cue1", "cue2", "cue3"]
    assert [s.message["token"] for s in sends] == ["b2000001", "b2000002", "b2000003"]
    assert [s.message["options"]["uri-query"] for s in sends] == [
        ["ue-uri=${addr.cue1}"],
        ["ue-uri=${addr.cue2}"],
        ["ue-uri=${addr.cue3}"],
    ]
    assert {s.line for s in sends} == {line_of(GATEWAY, "        - send:")}
    assert isinstance(bulk, ExpectStep)
    assert (bulk.index, bulk.line) == ("1", line_of(GATEWAY, "  - expect:"))
    assert case.nodes() == {"cue1", "cue2", "cue3", "scms", "sut.pc5", "sut.uu"}


def test_foreach_list_repeats_every_step_node_by_node(tmp_path: Path) -> None:
    """A node list keeps its order; all body steps run for one node before the next; cue_nolink's number is 0."""
    body = "        - wait: {ms: 1}\n        - send:\n"
    text = mutate(mutate(GATEWAY, NODES, "      nodes: [cue12, cue_nolink]\n"), "        - send:\n", body)
    case = loader.load_testcase(write(tmp_path, text), PROFILE)
    unrolled = case.steps[:-1]
    assert [(s.index, type(s)) for s in unrolled] == [
        ("0[cue12].0", WaitStep),
        ("0[cue12].1", SendStep),
        ("0[cue_nolink].0", WaitStep),
        ("0[cue_nolink].1", SendStep),
    ]
    sends = [s for s in unrolled if isinstance(s, SendStep)]
    assert [(s.sender, s.message["token"]) for s in sends] == [("cue12", "b200000c"), ("cue_nolink", "b2000000")]


def test_foreach_min_batch_range_follows_the_profile(tmp_path: Path) -> None:
    """`cue1..cue{min_batch}` ends at the profile's bulk_policy.min_batch: 50 by default, 4 in an edited profile."""
    text = mutate(GATEWAY, NODES, "      nodes: cue1..cue{min_batch}\n")
    path = write(tmp_path, text)
    default = loader.load_testcase(path, PROFILE)
    assert [s.sender for s in default.steps if isinstance(s, SendStep)] == [f"cue{i}" for i in range(1, 51)]
    small = loader.load_testcase(path, profile_with(tmp_path, "min_batch: 50 ", "min_batch: 4 "))
    assert [s.sender for s in small.steps if isinstance(s, SendStep)] == ["cue1", "cue2", "cue3", "cue4"]


# (test id, text to replace, replacement, text on the line the error must name, field path, message)
# fmt: off
FOREACH_BROKEN = [
    ("reversed-range", NODES, "      nodes: cue3..cue1\n", "nodes:",
     "steps[0].foreach.nodes", "expected a range within cue1..cue4000, found 'cue3..cue1' (3..1)"),
    ("range-past-4000", NODES, "      nodes: cue1..cue4001\n", "nodes:", "steps[0].foreach.nodes",
     "expected a range within cue1..cue4000, found 'cue1..cue4001' (1..4001)"),
    ("range-of-five-digits", NODES, "      nodes: cue1..cue10000\n", "nodes:", "steps[0].foreach.nodes",
     "expected a range such as cue1..cue50 (or cue1..cue{min_batch}) or a list of nodes, found 'cue1..cue10000'"),
    ("range-from-cue0", NODES, "      nodes: cue0..cue3\n", "nodes:", "steps[0].foreach.nodes",
     "expected a range such as cue1..cue50 (or cue1..cue{min_batch}) or a list of nodes, found 'cue0..cue3'"),
    ("empty-list", NODES, "      nodes: []\n", "nodes:", "steps[0].foreach.nodes",
     "expected a range such as cue1..cue50 (or cue1..cue{min_batch}) or a list of nodes, found a list of 0"),
    ("bad-node-in-list", NODES, "      nodes: [cue1, cue0]\n", "nodes:", "steps[0].foreach.nodes",
     "expected a range such as cue1..cue50 (or cue1..cue{min_batch}) or a list of nodes, found a list of 2"),
    ("missing-nodes", NODES, "", "  - foreach:", "steps[0].foreach", "missing required key 'nodes'"),
    ("nested-foreach", "        - send:\n",
     "        - foreach: {nodes: [cue1], steps: [{wait: {ms: 1}}]}\n        - send:\n", "- foreach: {nodes",
     "steps[0].foreach.steps[0].foreach",
     "unknown key 'foreach'; expected one of expect, expect_nothing, probe, send, upper, wait"),
    ("ue-uri-range-in-set", '"${ue_uri.cue1..cue3}"', '"${ue_uri.cue1..cue0}"', "ue_uri",
     "steps[1].expect.options.uri-query.set[0]",
     "${ue_uri.cue1..cue0}: expected a node range such as cue1..cue50, found 'cue1..cue0'"),
    ("each-in-a-later-step", "      from: sut.uu\n", "      from: sut.uu\n      token: ${each_hex}\n",
     "token: ${each_hex}",
     "steps[1].expect.token", "expected ${each_hex} only inside foreach steps, found it outside"),
]
# fmt: on


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "message"), [b[1:] for b in FOREACH_BROKEN], ids=[b[0] for b in FOREACH_BROKEN]
)
def test_broken_foreach_gives_one_located_message(
    tmp_path: Path, old: str, new: str, needle: str, field: str, message: str
) -> None:
    """A mistake in a foreach or a node range is one message naming file, line and field."""
    text = mutate(GATEWAY, old, new)
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:{line_of(text, needle)}: {field}: {message}"


def test_foreach_node_on_the_wrong_side_is_located_in_the_body(tmp_path: Path) -> None:
    """A SUT endpoint among the nodes is refused where the body uses it as a sender and as an address."""
    text = mutate(mutate(GATEWAY, NODES, "      nodes: [cue1, sut.pc5]\n"), "cue1..cue3}", "cue1..cue1}")
    path = write(tmp_path, text)
    assert load_error(path).splitlines() == [
        f"{path}:{line_of(text, 'from: ${each}')}: steps[0].foreach.steps[0].send.from: {TESTER_NODE}, found 'sut.pc5'",
        f"{path}:{line_of(text, 'uri-query: [')}: steps[0].foreach.steps[0].send.options.uri-query[0]: "
        "expected ${addr.NODE} with a tester node name, found ${addr.sut.pc5}",
    ]


def test_min_batch_range_below_its_start_is_located(tmp_path: Path) -> None:
    """With min_batch 3, `cue4..cue{min_batch}` is refused at the foreach and at the ${ue_uri...} that use it."""
    text = mutate(mutate(GATEWAY, NODES, "      nodes: cue4..cue{min_batch}\n"), "cue1..cue3}", "cue4..cue{min_batch}}")
    path = write(tmp_path, text)
    small = profile_with(tmp_path, "min_batch: 50 ", "min_batch: 3")
    with pytest.raises(DefinitionError) as info:
        loader.load_testcase(path, small)
    reversed_range = "expected a range within cue1..cue4000, found 'cue4..cue{min_batch}' (4..3)"
    assert str(info.value).splitlines() == [
        f"{path}:{line_of(text, 'nodes:')}: steps[0].foreach.nodes: {reversed_range}",
        f"{path}:{line_of(text, 'ue_uri')}: steps[1].expect.options.uri-query.set[0]: "
        f"${{ue_uri.cue4..cue{{min_batch}}}}: {reversed_range}",
    ]
    big = profile_with(tmp_path, "min_batch: 50 ", "min_batch: 1000")
    case = loader.load_testcase(path, big)  # the largest batch a profile allows: 997 nodes, fine
    nodes = {s.index.split("[")[1].split("]")[0] for s in case.steps if s.index.startswith("0[")}
    assert len(nodes) == 997 and "cue1000" in nodes


def test_mistake_in_a_foreach_body_is_reported_once(tmp_path: Path) -> None:
    """One mistake inside a foreach body gives one message, however many nodes the body is repeated for."""
    text = mutate(GATEWAY, "              recipient: ${addr.scms}\n", "              colour: 3\n")
    path = write(tmp_path, text)
    assert load_error(path) == (
        f"{path}:{line_of(text, 'colour: 3')}: steps[0].foreach.steps[0].send.options.colour: "
        f"expected an option name (recipient, {OPTION_LIST}) or a number, found 'colour'"
    )


# --------------------------------------------------------------------------- #
# Other format additions at load time
# --------------------------------------------------------------------------- #


def test_new_variables_and_payload_forms_load(tmp_path: Path) -> None:
    """${addr.sut}, ${config.NODE}, ${ue_uri.A..B}, {set: ...} and schema beside json are accepted by the loader."""
    text = BASE + (
        '      payload: {schema: ue-config.schema.json, json: "${config.cue1}"}\n'
        "  - send:\n"
        "      from: scms\n"
        "      to: sut.uu\n"
        "      type: NON\n"
        '      code: "2.05"\n'
        '      options: {recipient: "${addr.sut}", uri-query: ["${ue_uri.cue1..cue3}", "ue-type=meter"]}\n'
        "  - expect: {at: cue1, options: {uri-query: {set: []}, recipient: {set: ['${addr.cue1}']}}}\n"
    )
    case = loader.load_testcase(write(tmp_path, text), PROFILE)
    expect, send, unordered = case.steps[1:]
    assert isinstance(expect, ExpectStep) and isinstance(send, SendStep) and isinstance(unordered, ExpectStep)
    assert expect.message["payload"] == {"schema": "ue-config.schema.json", "json": "${config.cue1}"}
    assert send.message["options"]["uri-query"] == ["${ue_uri.cue1..cue3}", "ue-type=meter"]
    assert unordered.message["options"] == {"uri-query": {"set": []}, "recipient": {"set": ["${addr.cue1}"]}}


@pytest.mark.parametrize(
    "condition",
    ["50", "[2, 50]", "{min: 2}", "{max: 99}", "{min: 2, max: 99}"],
    ids=["value", "list", "min", "max", "min-max"],
)
def test_applicability_condition_forms_load(tmp_path: Path, condition: str) -> None:
    """applicability.profile takes a value, a list of values or {min: N}/{max: N}, kept as written."""
    text = mutate(
        BASE,
        "  capabilities: [link-control]\n",
        f"  capabilities: [link-control]\n  profile:\n    port_match: both\n    bulk_policy.min_batch: {condition}\n",
    )
    case = loader.load_testcase(write(tmp_path, text), PROFILE)
    assert case.profile_conditions == {"port_match": "both", "bulk_policy.min_batch": yaml.safe_load(condition)}


def test_applicability_bound_that_is_not_a_number_is_located(tmp_path: Path) -> None:
    """`{min: "50"}` under applicability.profile is a located lint problem, not a crash when the case runs."""
    text = mutate(
        BASE,
        "  capabilities: [link-control]\n",
        '  capabilities: [link-control]\n  profile:\n    bulk_policy.min_batch: {min: "50"}\n',
    )
    path = write(tmp_path, text)
    count, problems = loader.lint([path], PROFILE)
    assert count == 1
    assert [(p.file, p.line) for p in problems] == [(str(path), line_of(text, "min_batch"))]
    assert problems[0].path.startswith("applicability.profile.bulk_policy.min_batch")


def test_set_in_a_send_is_refused(tmp_path: Path) -> None:
    """`{set: [...]}` in a send is refused like null and {present: true}: it is an expectation, not a value."""
    text = mutate(BASE, RECIPIENT0, with_option0("uri-query: {set: [a, b]}"))
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}:{line_of(text, 'uri-query: {set')}: steps[0].send.options.uri-query: ")


# --------------------------------------------------------------------------- #
# {set: [...]}, ${ue_uri...} and payload schema + value, as judged at run time
# --------------------------------------------------------------------------- #

UE = "ue-uri={}.msgin5g.example"


def get(*queries: str, payload: bytes = b"") -> CoapMessage:
    """A GET carrying the given Uri-Query values in this order."""
    options = tuple((OptionNumber.URI_QUERY, q.encode()) for q in queries)
    return CoapMessage(MessageType.NON, Code.GET, 1, b"", options, payload)


def uri_query(message: CoapMessage, spec: object, profile: Profile = PROFILE) -> tuple[bool, str, str]:
    """(ok, expected, found) of the uri-query finding when ``message`` is judged against ``spec``."""
    (finding,) = judge(message, {"options": {"uri-query": spec}}, Bindings(profile, REPO))
    assert finding.field == "options.uri-query"
    return finding.ok, finding.expected, finding.found


def test_set_matches_in_any_order() -> None:
    """{set: [...]} accepts the listed values in any order, with the ${ue_uri...} list spliced in."""
    message = get(UE.format("cue3"), "ue-type=meter", UE.format("cue1"), UE.format("cue2"))
    ok, expected, _ = uri_query(message, {"set": ["${ue_uri.cue1..cue3}", "ue-type=meter"]})
    assert ok
    assert expected == (
        "in any order: 'ue-uri=cue1.msgin5g.example', 'ue-uri=cue2.msgin5g.example', "
        "'ue-uri=cue3.msgin5g.example', 'ue-type=meter'"
    )


@pytest.mark.parametrize(
    "found",
    [("cue1", "cue2"), ("cue1", "cue2", "cue3", "cue4"), ("cue1", "cue2", "cue2", "cue3"), ()],
    ids=["one-missing", "one-extra", "one-twice", "none"],
)
def test_set_needs_each_value_exactly_as_often_as_listed(found: tuple[str, ...]) -> None:
    """A value missing, extra or repeated fails {set: [...]}; the finding shows both sides."""
    message = get(*(UE.format(n) for n in found))
    ok, _, shown = uri_query(message, {"set": ["${ue_uri.cue1..cue3}"]})
    assert not ok
    assert shown == (", ".join(repr(UE.format(n)) for n in found) or "absent")


def test_plain_list_is_judged_in_order() -> None:
    """Without {set: ...} the listed values must come in that order (the contrast to {set: ...})."""
    message = get(UE.format("cue2"), UE.format("cue1"))
    assert uri_query(message, ["${ue_uri.cue1..cue2}"])[0] is False
    assert uri_query(message, {"set": ["${ue_uri.cue1..cue2}"]})[0] is True


def test_empty_set_means_absent() -> None:
    """{set: []} passes only when the option is absent."""
    assert uri_query(get(), {"set": []}) == (True, "in any order: none", "absent")
    assert uri_query(get("x=1"), {"set": []})[0] is False


def test_ue_uri_with_csv_encoding_is_one_value(tmp_path: Path) -> None:
    """With query.list_encoding csv, ${ue_uri.cue1..cue3} is one ue-uri value listing the three ids."""
    csv = profile_with(tmp_path, "list_encoding: repeat", "list_encoding: csv")
    ids = ",".join(f"cue{i}.msgin5g.example" for i in (1, 2, 3))
    assert uri_query(get(f"ue-uri={ids}"), {"set": ["${ue_uri.cue1..cue3}"]}, csv)[0] is True
    assert (
        uri_query(get(*(UE.format(f"cue{i}") for i in (1, 2, 3))), {"set": ["${ue_uri.cue1..cue3}"]}, csv)[0] is False
    )


def content(document: object) -> CoapMessage:
    return CoapMessage(MessageType.NON, Code.CONTENT, 1, b"", (), json.dumps(document).encode())


def payload_finding(message: CoapMessage, spec: dict[str, object]) -> tuple[bool, str, str]:
    (finding,) = judge(message, {"payload": spec}, Bindings(PROFILE, REPO))
    return finding.ok, finding.expected, finding.found


def test_payload_schema_and_json_both_hold() -> None:
    """payload {schema, json}: the document must be valid against the schema and equal the value."""
    spec = {"schema": "ue-config.schema.json", "json": "${config.cue1}"}
    ok, expected, _ = payload_finding(content(PROFILE.document_for("cue1")), spec)
    assert ok
    assert expected.endswith(" and JSON valid against ue-config.schema.json")
    ok, _, found = payload_finding(content(PROFILE.document_for("cue2")), spec)
    assert not ok and '"svc-cue2"' in found


def test_payload_schema_failure_is_reported_first() -> None:
    """When the schema part fails, the finding is the schema's, even if the value part would match."""
    ok, expected, found = payload_finding(content({"x": 1}), {"schema": "ue-config.schema.json", "json": {"x": 1}})
    assert (ok, expected) == (False, "JSON valid against ue-config.schema.json")
    assert found == "(document): 'MSGin5G-Server-address' is a required property"


# --------------------------------------------------------------------------- #
# docs/writing-testcases.md: its examples load, its messages are the loader's
# --------------------------------------------------------------------------- #

GUIDE = (REPO / "docs" / "writing-testcases.md").read_text(encoding="utf-8")
GUIDE_BLOCKS = [block.partition("```")[0] for block in GUIDE.split("```yaml\n")[1:]]
GUIDE_CASES = [b for b in GUIDE_BLOCKS if "\nsteps:" in b]  # complete cases, not snippets


def guide_case(case_id: str) -> str:
    """The complete test case with this id among the guide's YAML blocks."""
    (text,) = [b for b in GUIDE_CASES if b.startswith(f"id: {case_id}\n")]
    return text


def guide_lines(prefix: str) -> list[str]:
    """The lines of the guide's text blocks that start with ``prefix``."""
    return [line for line in GUIDE.splitlines() if line.startswith(prefix)]


def test_guide_shows_complete_cases() -> None:
    """The guide holds the two worked examples as complete cases: RELAY-DL-004 and GW-DOC-001."""
    assert [b.partition("\n")[0] for b in GUIDE_CASES] == ["id: RELAY-DL-004", "id: GW-DOC-001"]


@pytest.mark.parametrize("text", GUIDE_CASES, ids=[b.partition("\n")[0][4:] for b in GUIDE_CASES])
def test_guide_cases_lint_clean(tmp_path: Path, text: str) -> None:
    """Each complete case in the guide lints clean against the default profile."""
    path = write(tmp_path, text, text.partition("\n")[0][4:] + ".yaml")
    assert loader.lint([path], PROFILE) == (1, [])


def test_guide_gateway_example_unrolls_its_foreach(tmp_path: Path) -> None:
    """GW-DOC-001 is three sends, the bulk expect, then three expects, one per UE with its own token."""
    case = loader.load_testcase(write(tmp_path, guide_case("GW-DOC-001")), PROFILE)
    assert [s.index for s in case.steps] == [
        "0[cue1].0",
        "0[cue2].0",
        "0[cue3].0",
        "1",
        "2[cue1].0",
        "2[cue2].0",
        "2[cue3].0",
    ]
    answers = [s for s in case.steps[4:] if isinstance(s, ExpectStep)]
    assert [(s.at, s.message["token"]) for s in answers] == [
        ("cue1", "d0000001"),
        ("cue2", "d0000002"),
        ("cue3", "d0000003"),
    ]
    assert answers[2].message["payload"] == {"schema": "ue-config.schema.json", "json": "${config.cue3}"}


def test_guide_profile_item_errors_are_the_loaders(tmp_path: Path) -> None:
    """The guide's depends_on / applicability.profile messages are what lint says for the edit it describes."""
    text = mutate(guide_case("RELAY-DL-004"), "id: RELAY-DL-004", "id: RELAY-DL-011")
    text = mutate(text, "role: relay\n", "role: relay\ndepends_on: [port_match, bulk_polcy]\n")
    text = mutate(
        text, "  capabilities: [link-control]\n", "  capabilities: [link-control]\n  profile: {port_mach: both}\n"
    )
    write(tmp_path, text, "RELAY-DL-011.yaml")
    _, problems = loader.lint([tmp_path], PROFILE)
    shown = [str(p).replace(f"{tmp_path}/", "") for p in problems]
    assert shown == guide_lines("RELAY-DL-011.yaml:")


def test_guide_foreach_errors_are_the_loaders(tmp_path: Path) -> None:
    """The guide's two foreach range messages are what the loader says for GW-DOC-001 with those ranges."""
    shown = []
    for nodes in ("cue3..cue1", "cue1..cue10000"):
        text = guide_case("GW-DOC-001").replace("      nodes: cue1..cue3\n", f"      nodes: {nodes}\n", 1)
        path = write(tmp_path, text, "GW-DOC-001.yaml")
        shown.append(load_error(path).replace(f"{tmp_path}/", ""))
    assert shown == guide_lines("GW-DOC-001.yaml:")


def test_guide_applicability_snippet_loads(tmp_path: Path) -> None:
    """The guide's applicability snippet (value, list, {min}, {max}) loads in place of the worked example's."""
    (snippet,) = [b for b in GUIDE_BLOCKS if b.startswith("applicability:\n  profile:\n")]
    text = mutate(guide_case("RELAY-DL-004"), "applicability:\n  capabilities: [link-control]\n", snippet)
    case = loader.load_testcase(write(tmp_path, text), PROFILE)
    assert case.profile_conditions == {
        "port_match": "both",
        "query.list_encoding": ["repeat", "csv"],
        "bulk_policy.min_batch": {"min": 50},
        "bulk_policy.max_wait_ms": {"max": 900},
    }
