"""Failures that point: a failed case's reason says where the cause is.

1. A payload or option value that does not match names its first differing byte (offset, hex and
   text around it, both lengths), or for JSON the path of the first difference, instead of
   printing both values in full; the findings keep expected and found as they were.
2. A send step's reason names the Message ID and token as they went on the wire, also when the
   datagram was not numbered by the tap (sniff mode).
3. A result that did not pass carries ``sut_log_excerpt``: the SUT's lines around the decisive
   datagram (or the end of the case), the harness's ``read_configuration`` polls folded.
4. A SUT that breaks the upper-tester protocol (hang, garbage, crash, an error answer) gives
   verdict error with a reason naming the SUT, never ``harness error: SutFailed``, and no
   traceback; a genuine harness exception keeps ``harness error: ...``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from msgin5g_conformance.engine import difference, steps, sutlog
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.spec import templates
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.spec.model import SendStep
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.endpoint import CoapTimers, Endpoint
from msgin5g_conformance.wire.numbers import MessageType
from msgin5g_conformance.world.profile import Profile
from sut_adapters.base import SutAdapter
from sut_adapters.process import ProcessAdapter, _Evidence
from sut_adapters.registry import make_adapter

from .conftest import ROOT, TESTCASES
from .test_process_adapter import write_sut

DL_001 = TESTCASES / "relay" / "RELAY-DL-001.yaml"
CUE_RSP_004 = TESTCASES / "constrained-ue" / "CUE-RSP-004.yaml"
SENT = b'{"MSGin5G-Server-address":"coap://msgin5g-server.example:65401","MSGin5G-UE-Service-id":"svc-cue1","Segment-size":1024}'
REWRITTEN = json.dumps(json.loads(SENT), indent=1).encode()  # what faulty:rewrites-payload relays


def run_cases(profile: Profile, adapter: SutAdapter, *paths: Path, **session: Any) -> list[CaseResult]:
    cases = [load_testcase(p, profile) for p in paths]
    with Session(profile, adapter, pcap_dir=None, **session) as s:
        return s.run_cases(cases)


def decisive(result: CaseResult) -> Any:
    return next(s for s in result.steps if s.index == result.decisive_step)


# -- 1. the first difference -----------------------------------------------------------------


def test_bytes_difference_names_offset_context_and_lengths() -> None:
    """The RELAY-DL-001 payloads: they differ at byte 1 (a newline instead of a quote)."""
    text = difference.bytes_difference(SENT, REWRITTEN)
    assert text.startswith("119 B expected, 129 B found; first difference at byte 1: ")
    assert "expected 7b [22] 4d 53 47" in text and "('{\"MSGin5G')" in text
    assert "found 7b [0a] 20 22 4d" in text and "('{\\n \"MSGin')" in text
    assert len(text) < 200  # a pointer, not both payloads again


def test_bytes_difference_when_one_is_a_prefix_of_the_other() -> None:
    assert difference.first_difference(b"abc", b"abc") is None
    cut = difference.bytes_difference(b"0123456789abcdef", b"0123456789")
    assert cut.startswith("16 B expected, 10 B found; first difference at byte 10 (the found value ends there)")
    assert "[end]" in cut and "... 36 37 38 39 [61]" in cut


def test_json_difference_is_a_path_under_strict_types() -> None:
    want = {"a": {"b": [1, 2, 3]}, "Segment-size": 1024}
    assert difference.json_difference(want, json.loads(json.dumps(want))) is None
    assert difference.json_difference(want, {**want, "Segment-size": 1024.0}) == (
        "at /Segment-size: expected 1024, found 1024.0 (integer / number)"
    )
    assert difference.json_difference(want, {"a": {"b": [1, 2]}, "Segment-size": 1024}) == (
        "at /a/b: expected 3 item(s), found 2"
    )
    assert difference.json_difference({"x": True}, {"x": True, "y": 1}) == "at /y: expected no such member, found 1"


def test_values_difference_names_the_value() -> None:
    text = difference.values_difference([b"su-uc", b"v1"], [b"su-uc", b"v2"])
    assert text is not None and text.startswith("2 value(s) expected, 2 found; first difference in value 2: ")
    assert difference.values_difference([b"a"], [b"a"]) is None


def _judged(profile: Profile, template: dict[str, Any], message: CoapMessage) -> tuple[list[Any], str]:
    run = SimpleNamespace(bindings=templates.Bindings(profile, ROOT), profile=profile)
    parsed = templates.parse(template)
    findings = steps.pointed(templates.judge(message, parsed, run.bindings), message, parsed, run)  # type: ignore[arg-type]
    return findings, steps._mismatch(findings)


def test_payload_and_option_mismatches_point_at_the_difference(fast_profile: Profile) -> None:
    """A text payload by byte, a JSON payload by path, a recipient by byte; expected and found of
    the findings stay as the templates' judging wrote them."""
    option = fast_profile.recipient_option
    message = CoapMessage(MessageType.NON, 0x45, 7, b"\xd1", ((option, b"cue2.msgin5g.example"),), REWRITTEN)
    template = {"options": {"recipient": "cue1.msgin5g.example"}, "payload": {"text": SENT.decode()}}
    findings, reason = _judged(fast_profile, template, message)
    payload = next(f for f in findings if f.field == "payload")
    assert payload.expected == repr(SENT.decode()) and payload.found == repr(REWRITTEN.decode())
    assert "payload: 119 B expected, 129 B found; first difference at byte 1: expected 7b [22]" in reason
    assert payload.found not in reason  # not printed in full
    # a short value: both in full, and where they differ
    assert (
        "options.recipient (option 65003): expected 'cue1.msgin5g.example', found 'cue2.msgin5g.example' "
        "(20 B expected, 20 B found; first difference at byte 3: expected 63 75 65 [31]"
    ) in reason
    as_json = {"payload": {"json": json.loads(SENT)}}
    floats = CoapMessage(MessageType.NON, 0x45, 7, b"", (), SENT.replace(b"1024", b"1024.0"))
    _, reason = _judged(fast_profile, as_json, floats)
    assert reason.startswith("payload: 119 B expected (as compact JSON), 121 B found; judged as JSON, ")
    assert reason.endswith("first difference at /Segment-size: expected 1024, found 1024.0 (integer / number)")


def test_a_relay_that_rewrites_the_payload_is_pointed_at(fast_profile: Profile) -> None:
    """RELAY-DL-001 against faulty:rewrites-payload: the reason names byte 1, not both payloads."""
    (result,) = run_cases(fast_profile, make_adapter("faulty:rewrites-payload"), DL_001)
    assert result.verdict is Verdict.FAIL, result.reason
    assert "payload: 119 B expected, 129 B found; first difference at byte 1: expected 7b [22] 4d" in result.reason
    assert "found 7b [0a] 20 22 4d" in result.reason
    finding = next(f for f in decisive(result).findings if f.field == "payload")
    assert finding.found.startswith("'{\\n ") and finding.found not in result.reason
    assert finding.difference.startswith("119 B expected, 129 B found")


# -- 2. the Message ID and token as sent ---------------------------------------------------------


def test_a_send_names_the_message_id_it_put_on_the_wire(fast_profile: Profile) -> None:
    """A datagram the tap does not number (sniff mode: the node records nothing) is named with
    the fresh Message ID the node gave it, not the template's 0."""

    async def main() -> tuple[str, bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            node = Endpoint("scms", ("127.0.0.1", 0), CoapTimers(0.5, 1), record=None)
            node.open()
            try:
                run = SimpleNamespace(
                    nodes={"scms": node},
                    sut_endpoint=lambda name: peer.getsockname(),
                    bindings=templates.Bindings(fast_profile, ROOT),
                    stimulus=lambda seq, message: None,
                    sent={},
                    send_times=[],
                    sent_unnumbered={},  # (record=None: unnumbered, as in sniff mode)
                )
                message = templates.parse({"type": "NON", "code": "2.05", "token": "d1d1", "payload": {"text": "x"}})
                step = SendStep("0", None, sender="scms", to="sut.uu", message=message)
                result = await steps.send(run, step)  # type: ignore[arg-type]
                data = await asyncio.get_running_loop().run_in_executor(None, peer.recv, 2048)
                return result.reason, data
            finally:
                node.close()

    reason, data = asyncio.run(main())
    sent = codec.parse(data)
    assert sent.mid != 0 or "mid=0x0000" in reason
    assert f"scms sent NON 2.05 Content mid=0x{sent.mid:04x} token=d1d1" in reason, reason


def test_raw_bytes_are_named_with_their_message_id() -> None:
    con = codec.encode(CoapMessage(MessageType.CON, 1, 0x1234, b"\xab"))
    assert steps.raw_summary(con) == f"{len(con)} raw bytes (CON 0.01 GET mid=0x1234 token=ab)"
    assert steps.raw_summary(bytes([0x4F, 0x01, 0x12, 0x34])).startswith("4 raw bytes (mid=0x1234, not a well-formed")


def test_sniffed_send_reasons_carry_the_wire_message_id(fast_profile: Profile) -> None:
    """Live capture: the send step's reason names the Message ID of datagram #0 of the record."""
    from msgin5g_conformance.wire.capture.sniff import sniff_available

    ok, why = sniff_available()
    if not ok:
        pytest.skip(f"live capture unavailable here: {why}")
    (result,) = run_cases(fast_profile, make_adapter("reference"), DL_001, capture_mode="sniff")
    send = next(s for s in result.steps if s.kind == "send")
    first = next(r for r in result.exchange if r["src_node"] == "scms")
    assert f"mid=0x{first['mid']:04x} token={first['token']}" in send.reason, (send.reason, first)


# -- 3. the SUT-log excerpt ----------------------------------------------------------------------


def _polls(n: int, t: float) -> list[sutlog.Entry]:
    out: list[sutlog.Entry] = []
    for i in range(n):
        out += [(t + i * 0.011, "[ut] > read_configuration"), (t + i * 0.011 + 0.001, "[ut] < read_configuration ok")]
    return out


def test_polls_are_folded_into_one_line() -> None:
    entries = [
        (1.0, "[ut] > request_configuration"),
        (1.01, "   0.030 constrained-ue: applied configuration"),
        *_polls(89, 1.1),
        (2.2, "[ut] > read_configuration"),  # a request answered with an error is kept
        (2.21, "[ut] < read_configuration failed: x"),  # and so is the SUT's error answer
        *_polls(1, 3.0),  # one poll alone stays as it is
        (4.0, "[ut] > read_configuration"),  # as does a last request without an answer
    ]
    lines = [line for _, line in sutlog.fold_polls(entries)]
    assert lines == [
        "[ut] > request_configuration",
        "   0.030 constrained-ue: applied configuration",
        "... 89 read_configuration polls (harness) folded ...",
        "[ut] > read_configuration",
        "[ut] < read_configuration failed: x",
        "[ut] > read_configuration",
        "[ut] < read_configuration ok",
        "[ut] > read_configuration",
    ]


def test_excerpt_keeps_lines_around_the_moment() -> None:
    entries: list[sutlog.Entry] = [(None, "[harness] note without a time")]
    entries += [(float(i), f"line {i}") for i in range(100)]
    text = sutlog.excerpt(entries, 50.5, "datagram #3, the decisive one (step 1)").splitlines()
    assert text[0] == "... 37 earlier line(s) not shown ..."  # the note and lines 0-35
    assert text[1:16] == [f"line {i}" for i in range(36, 51)]
    assert text[16] == "--- datagram #3, the decisive one (step 1) ---"
    assert text[17:27] == [f"line {i}" for i in range(51, 61)]
    assert text[27] == "... 39 later line(s) not shown ..."
    end = sutlog.excerpt(entries, None).splitlines()
    assert end[0] == "... 86 earlier line(s) not shown ..." and end[-1] == "--- end of the case ---"
    assert end[1:-1] == [f"line {i}" for i in range(85, 100)]
    untimed = sutlog.excerpt([(None, "a"), (None, "b")], 3.0)
    assert untimed == "a\nb\n--- end of the case ---"
    assert sutlog.excerpt([], 1.0) == ""


def test_excerpt_folds_polls_before_counting() -> None:
    entries = [(0.0, "start"), *_polls(89, 1.0), (3.0, "the SUT's own line")]
    assert sutlog.excerpt(entries, None) == (
        "start\n... 89 read_configuration polls (harness) folded ...\nthe SUT's own line\n--- end of the case ---"
    )


def test_process_evidence_keeps_the_time_of_each_line() -> None:
    evidence = _Evidence()
    evidence.add("ut", "> reset")
    evidence.add("stderr", "hello")
    entries = evidence.entries_since(0)
    assert [line for _, line in entries] == ["[ut] > reset", "hello"] == evidence.since(0)
    assert all(isinstance(at, float) for at, _ in entries)


def _example_sut(folder: Path, fault: str, roles: str, capabilities: str) -> ProcessAdapter:
    """The example SUT (examples/example_sut.py) built with one fault, as an external SUT."""
    profile = folder / f"example-{fault}.yaml"
    profile.write_text(
        f"name: example-{fault}\ncwd: {ROOT / 'examples'}\n"
        f"command: [{sys.executable}, example_sut.py, --fault, {fault}]\ncontrol: stdio\n"
        f"roles: [{roles}]\ncapabilities: [{capabilities}]\n"
        "protocol: {recipient_option: 65003, port: 65401}\ntimeouts: {ready_s: 20, op_s: 5}\n",
        encoding="utf-8",
    )
    return ProcessAdapter(profile)


def test_a_failed_case_of_an_external_sut_has_a_folded_excerpt(fast_profile: Profile, tmp_path: Path) -> None:
    """CUE-RSP-004 against the example SUT built to apply another client's configuration: the
    read_configuration step polls until its time is up; the excerpt folds that into one line."""
    adapter = _example_sut(tmp_path, "applies-others", "constrained-ue", "trigger-request, read-config")
    (result,) = run_cases(fast_profile, adapter, CUE_RSP_004)
    assert result.verdict is Verdict.FAIL, result.reason
    assert result.sut_log.count("[ut] > read_configuration") > 10
    excerpt = result.sut_log_excerpt
    assert "read_configuration polls (harness) folded ..." in excerpt, excerpt
    assert "constrained-ue: applied configuration" in excerpt  # the SUT's own line, kept
    assert excerpt.endswith("--- end of the case ---")
    assert len(excerpt.splitlines()) <= sutlog.BEFORE + 3


def test_the_excerpt_marks_the_decisive_datagram(fast_profile: Profile, tmp_path: Path) -> None:
    """RELAY-DL-005 against the example relay that keeps a released link: the datagram it should
    not have relayed decides the case; the excerpt is marked there, the SUT's line about it near."""
    adapter = _example_sut(tmp_path, "keeps-released-link", "relay", "link-control")
    (result,) = run_cases(fast_profile, adapter, TESTCASES / "relay" / "RELAY-DL-005.yaml")
    assert result.verdict is Verdict.FAIL and result.decisive_datagram is not None, result.reason
    lines = result.sut_log_excerpt.splitlines()
    marker = f"--- datagram #{result.decisive_datagram}, the decisive one (step {result.decisive_step}) ---"
    assert marker in lines, result.sut_log_excerpt
    around = lines[max(0, lines.index(marker) - 3) : lines.index(marker) + 4]
    assert any("relay: relayed" in line for line in around), result.sut_log_excerpt


def test_a_case_that_passed_has_no_excerpt(fast_profile: Profile) -> None:
    (passed,) = run_cases(fast_profile, make_adapter("reference"), DL_001)
    assert passed.verdict is Verdict.PASS and passed.sut_log and passed.sut_log_excerpt == ""


# -- 4. the SUT's fault, not the harness's -----------------------------------------------------------

ANSWERS_FAILED = r"""
import json, sys
def say(msg):
    sys.stdout.write(json.dumps({"v": 1, **msg}) + "\n")
    sys.stdout.flush()
say({"event": "ready", "implementation": {"name": "mini"}, "roles": ["relay"], "capabilities": ["link-control"]})
for line in sys.stdin:
    msg = json.loads(line)
    if msg["op"] == "establish_link":
        say({"id": msg["id"], "ok": False, "error": {"code": "failed", "message": "no radio today"}})
    else:
        say({"id": msg["id"], "ok": True, "result": {}})
    if msg["op"] == "shutdown":
        break
"""


def _no_harness_blame(result: CaseResult) -> None:
    for text in (result.reason, *(s.reason for s in result.steps)):
        assert "harness error" not in text and "harness/set-up error" not in text, text
        assert "SutFailed" not in text and "SutFault" not in text, text


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("hang", "the SUT mini broke the upper-tester protocol: no answer to establish_link within 0.5 s"),
        ("garbage", "the SUT mini broke the upper-tester protocol: during configure: the SUT wrote a line"),
        ("crash", "the SUT mini exited during configure: the process exited with status 3; stderr tail:\n  boom"),
    ],
)
def test_a_sut_that_breaks_the_protocol_is_at_fault(
    fast_profile: Profile, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, reason: str
) -> None:
    caplog.set_level(logging.DEBUG)
    (result,) = run_cases(fast_profile, ProcessAdapter(write_sut(tmp_path, mode, op_s=0.5)), DL_001)
    assert result.verdict is Verdict.ERROR
    assert result.reason.startswith(reason), result.reason
    _no_harness_blame(result)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_an_error_answer_is_the_suts(fast_profile: Profile, tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(ANSWERS_FAILED, encoding="utf-8")
    profile = tmp_path / "failing.yaml"
    profile.write_text(
        f"name: mini\ncommand: [{sys.executable}, failing.py]\ncontrol: stdio\nroles: [relay]\n"
        "capabilities: [link-control]\ntimeouts: {ready_s: 20, op_s: 2}\n",
        encoding="utf-8",
    )
    (result,) = run_cases(fast_profile, ProcessAdapter(profile), DL_001)
    assert result.verdict is Verdict.ERROR
    assert result.reason == "the SUT mini could not establish_link (it answered failed: no radio today)"
    _no_harness_blame(result)


def test_a_genuine_harness_exception_stays_a_harness_error(
    fast_profile: Profile, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(run: Any, step: Any) -> Any:
        raise RuntimeError("a bug of the harness")

    monkeypatch.setattr(steps, "send", broken)
    (result,) = run_cases(fast_profile, make_adapter("reference"), DL_001)
    assert result.verdict is Verdict.ERROR
    assert result.reason == "harness error: RuntimeError: a bug of the harness"
    assert any(r.exc_info for r in caplog.records)  # a harness bug keeps its traceback in the log


def test_no_traceback_reaches_the_console_for_a_hanging_sut(tmp_path: Path) -> None:
    """The CLI run against a SUT that hangs: one error reason naming the SUT, no traceback."""
    profile = write_sut(tmp_path, "hang", op_s=0.5)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "msgin5g_conformance.cli",
            "run",
            str(DL_001),
            "--sut",
            str(profile),
            "-q",
            "--reports-dir",
            str(tmp_path / "reports"),
            "--pcap-dir",
            str(tmp_path / "pcaps"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    output = done.stdout + done.stderr
    assert "the SUT mini broke the upper-tester protocol: no answer to establish_link" in output, output
    assert "Traceback" not in output and "SutFailed" not in output and "harness error" not in output, output
