"""Strict judging of an expectation: every option, option lengths, JSON by type, the type.

Each test builds the message a faulty SUT would send and the expectation of a shipped case, and
checks the finding the engine reports (tests/test_selftest.py runs the faulty variants whole).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msgin5g_conformance.spec.templates import Bindings, json_same, judge, judge_other_options, load_json
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber
from msgin5g_conformance.world.profile import load_profile

PROFILE = load_profile(None)
RCPT = PROFILE.recipient_option


def bindings() -> Bindings:
    return Bindings(PROFILE, Path())


def response(*options: tuple[int, bytes], payload: bytes = b"{}") -> CoapMessage:
    return CoapMessage(MessageType.NON, Code.CONTENT, 1, b"\x01", tuple(sorted(options)), payload)


NAMED = {"options": {"recipient": "cue1.msgin5g.example", "content-format": 50}}


def test_named_options_only_pass() -> None:
    """A message with exactly the named options has no finding."""
    msg = response((RCPT, b"cue1.msgin5g.example"), (OptionNumber.CONTENT_FORMAT, b"\x32"))
    assert judge_other_options(msg, NAMED, bindings()) == []


def test_an_added_option_fails_unless_allowed() -> None:
    """An option nobody named (here the critical, unknown 65011) fails; options_allowed admits the
    elective ones a case lists, and nothing else."""
    msg = response((RCPT, b"cue1.msgin5g.example"), (OptionNumber.CONTENT_FORMAT, b"\x32"), (65011, b"relay"))
    (finding,) = judge_other_options(msg, NAMED, bindings())
    assert (finding.field, finding.ok) == ("options (others)", False)
    assert finding.found == 'option 65011={"hex": "72656c6179"}'
    aged = response((RCPT, b"cue1.msgin5g.example"), (OptionNumber.CONTENT_FORMAT, b"\x32"), (14, b"\x3c"))
    assert judge_other_options(aged, {**NAMED, "options_allowed": ["max-age"]}, bindings()) == []
    (other,) = judge_other_options(msg, {**NAMED, "options_allowed": ["max-age"]}, bindings())
    assert other.expected == "no option but those named and max-age"


def test_query_names_uri_query() -> None:
    """query: names the Uri-Query option, so its values are judged there and not as an extra option."""
    msg = CoapMessage(MessageType.CON, Code.GET, 1, b"", ((OptionNumber.URI_QUERY, b"ue-uri=cue1"),), b"")
    assert judge_other_options(msg, {"query": {"ue_ids": ["cue1"]}}, bindings()) == []
    assert [f.field for f in judge_other_options(msg, {}, bindings())] == ["options (others)"]


@pytest.mark.parametrize(
    ("number", "value", "span"),
    [
        (OptionNumber.CONTENT_FORMAT, b"\x00\x00\x32", "0-2"),  # 5.10: uint 0-2 bytes
        (OptionNumber.ETAG, b"", "1-8"),
        (OptionNumber.URI_PATH, b"x" * 256, "0-255"),
        (OptionNumber.MAX_AGE, b"\x00" * 5, "0-4"),
    ],
)
def test_an_option_value_outside_its_length_fails(number: int, value: bytes, span: str) -> None:
    """RFC 7252 5.10 lengths, named or allowed: 5.4.3 treats a value outside them as unrecognised."""
    msg = response((RCPT, b"cue1.msgin5g.example"), (number, value))
    name = {12: "content-format", 4: "etag", 11: "uri-path", 14: "max-age"}[number]
    template = {"options": {"recipient": "cue1.msgin5g.example"}, "options_allowed": [name]}
    (finding,) = judge_other_options(msg, template, bindings())
    assert finding.field == f"options.{name} length" and finding.expected.startswith(f"{span} byte(s)")
    assert not finding.ok


def test_all_turns_strictness_off() -> None:
    """options_allowed: all (a step that only collects a token) judges no other option and no length."""
    msg = response((65011, b"x"), (OptionNumber.CONTENT_FORMAT, b"\x00\x00\x32"))
    assert judge_other_options(msg, {"options_allowed": "all"}, bindings()) == []


def test_json_is_compared_by_type() -> None:
    """1024.0 is not 1024, true is not 1, and nested values are compared the same way."""
    want = {"Segment-size": 1024, "on": True, "list": [1, {"a": 2}]}
    assert json_same(load_json(b'{"Segment-size":1024,"on":true,"list":[1,{"a":2}]}'), want)
    assert not json_same(load_json(b'{"Segment-size":1024.0,"on":true,"list":[1,{"a":2}]}'), want)
    assert not json_same(load_json(b'{"Segment-size":1024,"on":1,"list":[1,{"a":2}]}'), want)
    assert not json_same(load_json(b'{"Segment-size":1024,"on":true,"list":[1,{"a":2.0}]}'), want)
    (finding,) = judge(
        response(payload=b'{"Segment-size":1024.0}'), {"payload": {"json": {"Segment-size": 1024}}}, bindings()
    )
    assert not finding.ok and finding.found == '{"Segment-size": 1024.0}'


def test_repeated_keys_are_not_json_a_receiver_can_trust() -> None:
    """A document with a key twice fails both a json and a schema expectation, naming the key."""
    doc = b'{"MSGin5G-UE-Service-id":"decoy","MSGin5G-UE-Service-id":"svc-cue1"}'
    (finding,) = judge(response(payload=doc), {"payload": {"json": {"MSGin5G-UE-Service-id": "svc-cue1"}}}, bindings())
    assert not finding.ok and "duplicate key 'MSGin5G-UE-Service-id'" in finding.found
    (schema,) = judge(response(payload=doc), {"payload": {"schema": "ue-config.schema.json"}}, bindings())
    assert not schema.ok and "duplicate key" in schema.found
