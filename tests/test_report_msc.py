"""Tests for the SVG message sequence chart (msgin5g_conformance.report.msc)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance.report.msc import arrow_label, render_svg

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parent.parent


def _dg(seq: int, src: str, dst: str, t_ms: float, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "seq": seq,
        "t_ms": t_ms,
        "src": f"127.0.0.{seq + 1}:65401",
        "dst": "127.0.0.9:65401",
        "src_node": src,
        "dst_node": dst,
        "hex": "00",
        "type": "NON",
        "code": "2.05",
        "mid": seq,
        "token": "a1a1",
        "recipient": "cue1.msgin5g.example",
        "summary": "NON 2.05",
    }
    rec.update(fields)
    return rec


def _step(
    index: str,
    kind: str,
    verdict: str,
    reason: str,
    datagram: int | None = None,
    node: str | None = None,
    peer: str | None = None,
) -> dict[str, Any]:
    return {
        "index": index,
        "kind": kind,
        "line": 10,
        "verdict": verdict,
        "reason": reason,
        "datagram": datagram,
        "node": node,
        "peer": peer,
        "findings": [],
    }


def _result(
    exchange: list[dict[str, Any]], steps: list[dict[str, Any]], decisive: int | None = None, verdict: str = "fail"
) -> dict[str, Any]:
    return {
        "id": "RELAY-DL-099",
        "title": "synthetic",
        "verdict": verdict,
        "sut": "faulty:demo",
        "profile": "default",
        "capture": "tap",
        "decisive_datagram": decisive,
        "steps": steps,
        "exchange": exchange,
    }


def _groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


def _text(el: ET.Element) -> str:
    return "".join(el.itertext())


def _arrow_line(group: ET.Element) -> ET.Element:
    line = group.find(f"{SVG}line")
    assert line is not None
    return line


@pytest.fixture
def relay_fail() -> dict[str, Any]:
    """Uplink request relayed, a response relayed to cue1, and a 4.04 for cue2 that never came."""
    exchange = [
        _dg(0, "scms", "sut.uu", 0.0, token="d1d1"),
        _dg(1, "sut.pc5", "cue1", 0.8, type="CON", token="d1d1"),
        _dg(2, "scms", "sut.uu", 1.1, code="4.04", token="b2b2", recipient="cue2.msgin5g.example"),
    ]
    steps = [
        _step("0", "send", "pass", "scms sent", 0, "scms", "sut.uu"),
        _step("1", "expect", "pass", "datagram #1 at cue1", 1, "cue1", "sut.pc5"),
        _step("2", "expect", "fail", "no matching message arrived at cue2 within 1000 ms", None, "cue2", None),
    ]
    return _result(exchange, steps)


def test_output_is_well_formed_svg(relay_fail: dict[str, Any]) -> None:
    """The chart parses as XML with an <svg> root that has a size and a viewBox."""
    root = ET.fromstring(render_svg(relay_fail).encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width", "0")) > 0 and float(root.get("height", "0")) > 0
    assert root.get("viewBox")


def test_one_lifeline_per_node_with_sut_grouped(relay_fail: dict[str, Any]) -> None:
    """Every node gets exactly one lifeline; the SUT's endpoints sit inside the shaded SUT group."""
    root = ET.fromstring(render_svg(relay_fail))
    nodes = [g.get("data-node") for g in _groups(root, "lifeline")]
    assert sorted(nodes, key=str) == ["cue1", "cue2", "scms", "sut.pc5", "sut.uu"]
    (group,) = _groups(root, "sut-group")
    inside = [g.get("data-node") for g in group.iter(f"{SVG}g") if "lifeline" in (g.get("class") or "")]
    assert inside == ["sut.pc5", "sut.uu"]
    assert "faulty:demo" in _text(group)
    xs = {g.get("data-node"): float(_arrow_line(g).get("x1", "0")) for g in _groups(root, "lifeline")}
    assert xs["cue1"] < xs["sut.pc5"] < xs["sut.uu"] < xs["scms"]  # clients left, server right


def test_one_arrow_per_datagram_with_label_and_time(relay_fail: dict[str, Any]) -> None:
    """Each datagram is an arrow between its nodes, labelled type/code/token/recipient, timed on the left."""
    root = ET.fromstring(render_svg(relay_fail))
    arrows = _groups(root, "datagram")
    assert [a.get("data-seq") for a in arrows] == ["0", "1", "2"]
    second = arrows[1]
    assert (second.get("data-src"), second.get("data-dst")) == ("sut.pc5", "cue1")
    labels = [_text(t) for t in second.iter(f"{SVG}text") if t.get("class") == "label"]
    assert labels == ["CON 2.05 tkn=d1d1 \u2192 cue1.msgin5g.example"]
    times = [_text(t) for t in second.iter(f"{SVG}text") if t.get("class") == "time"]
    assert times == ["#1  +0.8 ms"]


def test_arrow_direction_follows_sender(relay_fail: dict[str, Any]) -> None:
    """An arrow starts at the sender's lifeline and ends near the receiver's."""
    root = ET.fromstring(render_svg(relay_fail))
    x = {g.get("data-node"): float(_arrow_line(g).get("x1", "0")) for g in _groups(root, "lifeline")}
    first = _arrow_line(_groups(root, "datagram")[0])
    assert float(first.get("x1", "0")) == x["scms"]
    assert abs(float(first.get("x2", "0")) - x["sut.uu"]) < 15


def test_decisive_datagram_is_highlighted(relay_fail: dict[str, Any]) -> None:
    """The decisive datagram is drawn in another colour and thicker than the others."""
    relay_fail["decisive_datagram"] = 1
    root = ET.fromstring(render_svg(relay_fail))
    arrows = {a.get("data-seq"): a for a in _groups(root, "datagram")}
    assert "decisive" in (arrows["1"].get("class") or "")
    assert "decisive" not in (arrows["0"].get("class") or "")
    hot, plain = _arrow_line(arrows["1"]), _arrow_line(arrows["0"])
    assert hot.get("stroke") != plain.get("stroke")
    assert float(hot.get("stroke-width", "0")) > float(plain.get("stroke-width", "0"))


def test_malformed_datagram_is_marked() -> None:
    """A datagram that failed to parse is flagged malformed, with the parse error as its label."""
    bad = {
        "seq": 1,
        "t_ms": 0.5,
        "src": "127.0.0.1:65401",
        "dst": "127.0.0.11:65401",
        "src_node": "sut.pc5",
        "dst_node": "cue1",
        "hex": "4245da",
        "malformed": "datagram is 3 bytes",
        "summary": "MALFORMED",
    }
    result = _result([_dg(0, "scms", "sut.uu", 0.0), bad], [], decisive=1)
    root = ET.fromstring(render_svg(result))
    (arrow,) = [a for a in _groups(root, "datagram") if a.get("data-seq") == "1"]
    assert {"malformed", "decisive"} <= set((arrow.get("class") or "").split())
    assert "MALFORMED: datagram is 3 bytes" in _text(arrow)
    assert any(t.get("class") == "malformed-mark" for t in arrow.iter(f"{SVG}text"))


def test_missing_message_is_a_dashed_arrow_from_the_sut(relay_fail: dict[str, Any]) -> None:
    """A failed expect with no datagram becomes a dashed arrow from the SUT side to the receiver."""
    root = ET.fromstring(render_svg(relay_fail))
    (missing,) = _groups(root, "missing")
    assert missing.get("data-dst") == "cue2"
    assert missing.get("data-src") == "sut.pc5"  # no peer given: the SUT endpoint facing clients
    assert missing.get("data-step") == "2"
    assert _arrow_line(missing).get("stroke-dasharray")
    assert "expected, never came: no matching message arrived at cue2 within 1000 ms" in _text(missing)


def test_missing_message_uses_the_expected_peer() -> None:
    """When the step names the peer it should have come from, the dashed arrow starts there."""
    steps = [_step("3", "expect", "fail", "nothing uplink", None, "scms", "sut.uu")]
    root = ET.fromstring(render_svg(_result([], steps)))
    (missing,) = _groups(root, "missing")
    assert (missing.get("data-src"), missing.get("data-dst")) == ("sut.uu", "scms")
    assert {g.get("data-node") for g in _groups(root, "lifeline")} == {"sut.uu", "scms"}


def test_passed_expects_and_absence_checks_draw_no_missing_arrow() -> None:
    """Only failed expect steps without a datagram produce 'never came' arrows."""
    steps = [
        _step("1", "expect", "pass", "ok", 0, "cue1", None),
        _step("2", "expect_nothing", "fail", "something came", 0),
    ]
    root = ET.fromstring(render_svg(_result([_dg(0, "sut.pc5", "cue1", 0.1)], steps, decisive=0)))
    assert _groups(root, "missing") == []


def test_hostile_text_is_escaped() -> None:
    """Markup, ampersands, quotes and control characters from the wire cannot break the SVG."""
    nasty = '</text><script>alert("x")</script> & \x00\x07 "q" \ud800'
    record = _dg(0, "sut.pc5", nasty, 0.0, recipient=nasty, token="<t>", summary=nasty)
    result = _result([record], [_step("1", "expect", "fail", nasty, None, nasty, None)])
    result["title"] = nasty
    svg = render_svg(result)
    root = ET.fromstring(svg.encode("utf-8"))  # a lone surrogate would not even encode
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    (arrow,) = _groups(root, "datagram")
    assert '<script>alert("x")</script> & \ufffd\ufffd "q"' in _text(arrow)
    assert any((g.get("data-node") or "").startswith("</text><script>") for g in _groups(root, "lifeline"))


def test_empty_exchange_still_renders() -> None:
    """A case that captured nothing still yields a valid chart with a placeholder SUT lifeline."""
    root = ET.fromstring(render_svg({"id": "X-1", "verdict": "error", "steps": [], "exchange": []}))
    assert [g.get("data-node") for g in _groups(root, "lifeline")] == ["sut"]
    assert _groups(root, "datagram") == []


def test_unknown_endpoint_gets_an_address_lifeline() -> None:
    """A datagram from an address no node owns gets a lifeline named by that address."""
    stranger = _dg(0, "sut.pc5", "cue1", 0.0)
    stranger["dst_node"] = None
    stranger["dst"] = "127.9.9.9:5683"
    root = ET.fromstring(render_svg(_result([stranger], [])))
    assert "127.9.9.9:5683" in [g.get("data-node") for g in _groups(root, "lifeline")]


def test_label_without_recipient_or_token() -> None:
    """An ACK with no token and no recipient is labelled with type, code and tkn=-."""
    assert arrow_label({"type": "ACK", "code": "0.00", "token": "", "recipient": None}) == "ACK 0.00 tkn=-"


def test_chart_of_a_real_failing_run(tmp_path: Path) -> None:
    """Against a SUT that drops 4.04, the real result of RELAY-DL-003 charts the missing relay."""
    reports, pcaps = tmp_path / "reports", tmp_path / "pcaps"
    case = ROOT / "testcases" / "relay" / "RELAY-DL-003.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "msgin5g_conformance.cli",
            "run",
            str(case),
            "--sut",
            "faulty:drops-404",
            "--reports-dir",
            str(reports),
            "--pcap-dir",
            str(pcaps),
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads((reports / "latest" / "results" / "RELAY-DL-003.json").read_text(encoding="utf-8"))
    root = ET.fromstring(render_svg(result))
    assert [a.get("data-dst") for a in _groups(root, "datagram")] == ["sut.uu"]
    (missing,) = _groups(root, "missing")
    assert (missing.get("data-src"), missing.get("data-dst")) == ("sut.pc5", "cue1")
