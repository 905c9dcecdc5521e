"""``analyze``: the relay rules judged on synthetic captures; the role map's located errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msgin5g_conformance.analyze.roles import load_roles
from msgin5g_conformance.analyze.run import analyze_benchmark, cmd_analyze
from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.pcap import write_pcap
from msgin5g_conformance.wire.capture.record import Datagram
from msgin5g_conformance.wire.numbers import Code, MessageType

PC5, UU, SCMS = ("127.0.1.1", 65401), ("127.0.1.2", 65401), ("127.0.1.5", 65401)
CUE1, CUE2, CUE3 = ("127.0.1.11", 65401), ("127.0.1.12", 65401), ("127.0.1.13", 65401)
ROLES = """\
topologies:
  - relay: {pc5: {address: 127.0.1.1, port: 65401}, uu: {address: 127.0.1.2, port: 65401}}
    scms: {address: 127.0.1.5, port: 65401, recipient: scm-s.msgin5g.example}
    clients:
      - {name: cue1, address: 127.0.1.11, port: 65401, ue_id: cue1.msgin5g.example, links: [{from: 0}]}
      - {name: cue2, address: 127.0.1.12, port: 65401, ue_id: cue2.msgin5g.example, links: []}
      - {name: cue3, address: 127.0.1.13, port: 65401, ue_id: cue3.msgin5g.example}
"""
RCPT = 65003


def msg(code: int, mid: int, recipient: str, payload: bytes = b"", path: tuple[str, ...] = ()) -> bytes:
    options = [(11, p.encode()) for p in path] + [(RCPT, recipient.encode())]
    return codec.encode(codec.CoapMessage(MessageType.NON, code, mid, b"\x01", tuple(options), payload))


def run(tmp_path: Path, datagrams: list[tuple[float, tuple[str, int], tuple[str, int], bytes]]) -> tuple[int, dict]:
    cap = tmp_path / "t.pcap"
    write_pcap(cap, [Datagram(i, 1000.0 + t, s, d, b) for i, (t, s, d, b) in enumerate(datagrams)])
    roles = tmp_path / "roles.yaml"
    roles.write_text(ROLES, encoding="utf-8")
    status = cmd_analyze([str(cap)], str(roles), None, str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text()) if status != 2 else {}
    return status, doc


def verdicts(doc: dict) -> list[tuple[str, tuple[str, ...], list[int]]]:
    (records,) = doc["captures"].values()
    return [(r["verdict"], tuple(r["requirements"]), r["frames"]) for r in records]


GET = ("su-uc", "v1")


def test_a_correct_relay_passes_every_exchange(tmp_path: Path) -> None:
    status, doc = run(
        tmp_path,
        [
            (0.0, CUE1, PC5, msg(Code.GET, 1, "scm-s.msgin5g.example", b"q", GET)),
            (0.01, UU, SCMS, msg(Code.GET, 7, "scm-s.msgin5g.example", b"q", GET)),
            (0.02, SCMS, UU, msg(Code.CONTENT, 2, "cue1.msgin5g.example", b"{}")),
            (0.03, PC5, CUE1, msg(Code.CONTENT, 8, "cue1.msgin5g.example", b"{}")),
            (0.04, SCMS, UU, msg(Code.FORBIDDEN, 3, "cue2.msgin5g.example", b"no")),
            (0.9, SCMS, UU, msg(Code.CONTENT, 4, "cue1.msgin5g.example", b"{}")),
            (0.91, PC5, CUE1, msg(Code.CONTENT, 9, "cue1.msgin5g.example", b"{}")),
        ],
    )
    assert status == 0
    assert verdicts(doc) == [
        ("pass", ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1"), [1, 2]),
        ("pass", ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1"), [3, 4]),
        ("pass", ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1"), [6, 7]),
        ("pass", ("REQ-RELAY-DL-2",), [5]),
    ]
    (discard,) = [r for r in doc["captures"][str(tmp_path / "t.pcap")] if r["covered_ms"] is not None]
    assert 860 < discard["covered_ms"] < 880  # judged over the rest of the trace, and says how long
    assert doc["requirements"]["REQ-RELAY-DL-2"] == "pass"
    assert (tmp_path / "out" / "junit.xml").read_text().count("<testcase") == 4


def test_faults_fail_with_frames_and_requirements(tmp_path: Path) -> None:
    status, doc = run(
        tmp_path,
        [
            (0.0, CUE1, PC5, msg(Code.GET, 1, "scm-s.msgin5g.example", b"q", GET)),
            (0.01, UU, SCMS, msg(Code.GET, 7, "scm-s.msgin5g.example", b"q ", GET)),  # payload altered
            (0.02, SCMS, UU, msg(Code.CONTENT, 2, "cue2.msgin5g.example", b"{}")),  # cue2: no link
            (0.10, PC5, CUE2, msg(Code.CONTENT, 8, "cue2.msgin5g.example", b"{}")),
            (0.2, PC5, CUE1, b"\x40"),  # 1 byte: no CoAP header
            (0.3, SCMS, UU, msg(Code.NOT_FOUND, 3, "cue1.msgin5g.example")),  # never relayed
            (1.5, CUE1, CUE1, b"x"),
        ],
    )
    assert status == 1
    # an altered copy is judged when its wait ends (an intact one may still come); a missing or
    # altered copy fails both requirements its live check decides
    assert verdicts(doc) == [
        ("fail", ("REQ-RELAY-DL-2",), [3, 4]),
        ("fail", ("REQ-COAP-MSG-4",), [5]),
        ("fail", ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1"), [1, 2]),
        ("fail", ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1"), [6]),
    ]


def test_what_the_trace_cannot_decide_is_inconclusive(tmp_path: Path) -> None:
    status, doc = run(
        tmp_path,
        [
            (0.0, SCMS, UU, msg(Code.CONTENT, 2, "cue3.msgin5g.example", b"{}")),  # cue3: links unknown
            (0.01, SCMS, UU, msg(Code.CONTENT, 3, "cue2.msgin5g.example", b"{}")),  # trace ends at once
            (0.02, CUE1, PC5, msg(Code.GET, 1, "scm-s.msgin5g.example", b"q", GET)),  # wait cut short
        ],
    )
    assert status == 0
    got = verdicts(doc)
    assert [v for v, _, _ in got] == ["inconclusive"] * 3
    reasons = [r["reason"] for r in doc["captures"][str(tmp_path / "t.pcap")]]
    assert "does not say whether cue3" in reasons[0]
    assert "before the profile's" in reasons[1] and "before the" in reasons[2]


def test_bad_input_is_a_named_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ROLES.replace("port: 65401, recipient", "port: seventy, recipient"), encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_roles(bad)
    assert f"{bad}:3: topologies[0].scms.port" in str(err.value)
    cap = tmp_path / "other.pcap"
    write_pcap(cap, [Datagram(0, 1.0, ("127.9.9.9", 1), ("127.9.9.8", 2), b"x")])
    roles = tmp_path / "roles.yaml"
    roles.write_text(ROLES, encoding="utf-8")
    assert cmd_analyze([str(cap)], str(roles), None, str(tmp_path / "o")) == 2
    assert "names no address of the trace" in capsys.readouterr().err
    assert cmd_analyze([str(cap)], str(bad), None, str(tmp_path / "o")) == 2
    (tmp_path / "cut.pcap").write_bytes(cap.read_bytes()[:30])
    assert cmd_analyze([str(tmp_path / "cut.pcap")], str(roles), None, str(tmp_path / "o")) == 2
    assert "byte offset 24" in capsys.readouterr().err


def test_no_coap_on_the_role_maps_addresses_is_an_error(tmp_path: Path) -> None:
    status, _ = run(tmp_path, [(0.0, CUE1, PC5, b"\x40"), (0.1, CUE1, PC5, b"\x00\x01")])
    assert status == 2


def test_benchmark_entry_counts_frames(tmp_path: Path) -> None:
    cap = tmp_path / "b.pcap"
    write_pcap(cap, [Datagram(i, 1.0 + i, CUE1, PC5, msg(Code.GET, i, "x")) for i in range(5)])
    assert analyze_benchmark(cap) == 5


def _with(raw: bytes, *extra: tuple[int, bytes], token: bytes = b"\x01", mtype: MessageType | None = None) -> bytes:
    """``raw`` (a message of msg()) with more options, another token or another type."""
    m = codec.parse(raw)
    return codec.encode(
        codec.CoapMessage(mtype or m.mtype, m.code, m.mid, token, tuple(sorted(m.options + extra)), m.payload)
    )


CRIT = (65011, b"unknown-critical")  # experimental range, critical (odd), unknown to everyone


def test_a_critical_option_the_relay_may_not_know_leaves_either_choice(tmp_path: Path) -> None:
    """RFC 7252 5.4.1: a GET or a response with a critical option the relay does not recognise may be
    rejected (a relay that ends CoAP) or relayed (one that forwards); the relay's own 4.02 to the
    client, as a separate response (5.2.2), is not a relayed message. What no request of the client
    accounts for still fails."""
    get = _with(msg(Code.GET, 1, "scm-s.msgin5g.example", b"q", GET), CRIT, token=b"\xb1")
    reject = codec.encode(codec.CoapMessage(MessageType.CON, Code.BAD_OPTION, 50, b"\xb1", (), b"65011"))
    status, doc = run(
        tmp_path,
        [
            (0.0, CUE1, PC5, get),  # rejected: the relay's own 4.02, as a CON of its own
            (0.01, PC5, CUE1, reject),
            (0.1, CUE1, PC5, _with(get, token=b"\xb2")),  # relayed as it came
            (0.11, UU, SCMS, _with(get, token=b"\xb2")),
            (0.2, SCMS, UU, _with(msg(Code.CONTENT, 2, "cue1.msgin5g.example", b"{}"), CRIT)),  # rejected
            (0.3, SCMS, UU, _with(msg(Code.CONTENT, 3, "cue1.msgin5g.example", b"{}"), CRIT)),  # relayed
            (0.31, PC5, CUE1, _with(msg(Code.CONTENT, 9, "cue1.msgin5g.example", b"{}"), CRIT)),
            (0.4, CUE1, PC5, msg(Code.GET, 4, "scm-s.msgin5g.example", b"q", GET)),  # and one as usual
            (0.41, UU, SCMS, msg(Code.GET, 10, "scm-s.msgin5g.example", b"q", GET)),
            (2.0, CUE1, CUE1, b"x"),
        ],
    )
    assert status == 0, verdicts(doc)
    assert verdicts(doc) == [("pass", ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1"), [8, 9])]
    # a 4.02 (or a 2.05) from the relay that answers no request of that client is still unaccounted
    status, doc = run(
        tmp_path,
        [
            (0.0, CUE1, PC5, get),
            (0.01, PC5, CUE1, codec.encode(codec.CoapMessage(MessageType.CON, Code.BAD_OPTION, 51, b"\xee", (), b""))),
            (0.02, PC5, CUE1, codec.encode(codec.CoapMessage(MessageType.CON, Code.CONTENT, 52, b"\xb1", (), b"{}"))),
            (2.0, CUE1, CUE1, b"x"),
        ],
    )
    assert status == 1
    assert verdicts(doc) == [("fail", ("REQ-RELAY-DL-1",), [2]), ("fail", ("REQ-RELAY-DL-1",), [3])]


def test_frames_out_of_time_order_keep_their_waits(tmp_path: Path) -> None:
    """A capture merged from two interfaces can hold a frame earlier than the one before it: its
    wait is put in its place among the others, so each ends at its own time."""
    status, doc = run(
        tmp_path,
        [
            (0.5, CUE1, PC5, msg(Code.GET, 1, "scm-s.msgin5g.example", b"a", GET)),
            (0.0, CUE1, PC5, msg(Code.GET, 2, "scm-s.msgin5g.example", b"b", GET)),  # earlier than the one before
            (0.3, CUE1, PC5, msg(Code.GET, 3, "scm-s.msgin5g.example", b"c", GET)),
            (1.2, UU, SCMS, msg(Code.GET, 7, "scm-s.msgin5g.example", b"a", GET)),  # a's within its wait
            (1.4, CUE1, CUE1, b"x"),
        ],
    )
    assert status == 1
    # b's wait (until 1.0) and c's (until 1.3) end unrelayed, in their order; a is relayed in time
    assert verdicts(doc) == [
        ("fail", ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1"), [2]),
        ("pass", ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1"), [1, 4]),
        ("fail", ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1"), [3]),
    ]
