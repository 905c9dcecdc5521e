"""``analyze`` writes a run's reports: Allure results with the decisive frames, the compliance
matrix, the sequence charts. The captures come from live runs of relay cases against the
reference SUT and faulty variants; the role map is written by hand from the node layout."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from msgin5g_conformance.analyze import report
from msgin5g_conformance.analyze.capture import Frame, iter_capture
from msgin5g_conformance.analyze.run import cmd_analyze
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire.capture.pcap import read_pcap, write_pcap
from msgin5g_conformance.wire.capture.record import Datagram
from msgin5g_conformance.world.profile import Profile
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES

# (case, SUT): the reference passes; relays-without-link relays a 2.05 for a client with no link
# (REQ-RELAY-DL-2); drops-404 never relays a 4.04 (REQ-RELAY-DL-1)
RUNS = [
    ("RELAY-UL-001", "reference"),
    ("RELAY-DL-001", "reference"),
    ("RELAY-DL-004", "faulty:relays-without-link"),
    ("RELAY-DL-003", "faulty:drops-404"),
]
SVG = "{http://www.w3.org/2000/svg}"


def live(folder: Path, profile: Profile) -> list[CaseResult]:
    """Run each case against its SUT, one pcap per case in ``folder``."""
    out = []
    for case_id, sut in RUNS:
        case = load_testcase(TESTCASES / "relay" / f"{case_id}.yaml", profile)
        with Session(profile, make_adapter(sut), pcap_dir=folder, concurrency=1) as session:
            out.extend(session.run_cases([case]))
    return out


def role_map(results: list[CaseResult], profile: Profile) -> str:
    """A topology per capture: each case has its own range, hosts 1 sut.pc5, 2 sut.uu, 5 scms,
    9 cue_nolink (never linked), 10+N cueN (cue1 linked for the whole case)."""
    lines = ["topologies:"]
    for r in results:
        assert r.pcap
        sut = next(rec[end] for rec in r.exchange for end in ("src", "dst") if rec[f"{end}_node"].startswith("sut."))
        base = sut.rsplit(":", 1)[0].rsplit(".", 1)[0]
        port = profile.port
        lines += [
            f"  - name: {r.case_id}",
            f"    capture: {Path(r.pcap).name}",
            f"    relay: {{pc5: {{address: {base}.1, port: {port}}}, uu: {{address: {base}.2, port: {port}}}}}",
            f"    scms: {{address: {base}.5, port: {port}, recipient: {profile.scm_s_address}}}",
            "    clients:",
            f"      - {{name: cue1, address: {base}.11, port: {port}, ue_id: {profile.client_address('cue1')}, "
            "links: [{from: 0}]}",
            f"      - {{name: cue_nolink, address: {base}.9, port: {port}, "
            f"ue_id: {profile.client_address('cue_nolink')}, links: []}}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, fast_profile: Profile) -> tuple[Path, int, str]:
    """The captures of the live runs analysed: (output folder, exit status, what it printed)."""
    folder = tmp_path_factory.mktemp("live")
    results = live(folder / "pcaps", fast_profile)
    assert [r.verdict.value for r in results] == ["pass", "pass", "fail", "fail"]
    # the live capture of a case ends when the case does: DL-003's right after the 4.04 it waits
    # for (inconclusive offline); the same trace going on 2 s more makes the missing copy a fail
    dropped = results[-1]
    assert dropped.pcap
    frames = read_pcap(dropped.pcap)
    later = Datagram(len(frames), frames[-1].time + 2.0, frames[0].dst, frames[0].dst, b"\x60\x00\x00\x01")
    write_pcap(folder / "pcaps" / "RELAY-DL-003-later.pcap", [*frames, later])
    roles = folder / "roles.yaml"
    text = role_map(results, fast_profile)
    dl003 = text[text.index("  - name: RELAY-DL-003") :]
    text += dl003.replace("RELAY-DL-003", "RELAY-DL-003-later")
    roles.write_text(text, encoding="utf-8")
    out = folder / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # a module fixture: capsys is the test's
        status = cmd_analyze([str(folder / "pcaps")], str(roles), fast_profile.source, str(out))
    return out, status, printed.getvalue()


def cases_run() -> list[str]:
    return [*(c for c, _ in RUNS), "RELAY-DL-003-later"]


def allure_results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted((out / "allure-results").glob("*-result.json"))]


def attachment(out: Path, result: dict[str, Any], name: str) -> Path:
    (found,) = [a for a in result["attachments"] if a["name"] == name or a["name"].endswith(name)]
    return out / "allure-results" / found["source"]


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [x["value"] for x in result["labels"] if x["name"] == name]


def by_title(results: list[dict[str, Any]], capture: str, title: str) -> dict[str, Any]:
    (found,) = [r for r in results if r["name"].startswith(f"{capture}#") and r["name"].endswith(title)]
    return found


def test_every_exchange_is_an_allure_result_with_the_live_labels(analysed: tuple[Path, int, str]) -> None:
    out, status, printed = analysed
    assert status == 1  # an exchange failed
    results = allure_results(out)
    doc = json.loads((out / "results.json").read_text())
    judged = [j for js in doc["captures"].values() for j in js]
    assert len(results) == len(judged)  # under the caps: every exchange has its result
    assert f"Allure: {len(judged)} of {len(judged)} exchanges written" in printed
    status_of = {"pass": "passed", "fail": "failed", "inconclusive": "unknown", "error": "broken"}
    assert sorted(r["status"] for r in results) == sorted(status_of[j["verdict"]] for j in judged)

    relayed = by_title(results, "RELAY-DL-004.pcap", "2.05 Content to be discarded")
    assert relayed["status"] == "failed"
    assert relayed["statusDetails"]["message"].startswith("FAIL: relayed downlink to ")
    assert labels(relayed, "story") == ["REQ-RELAY-DL-2"]
    assert labels(relayed, "epic") == ["TS 24.538"] and labels(relayed, "feature") == ["TS 24.538 6.2.2.1"]
    assert labels(relayed, "severity") == ["critical"]
    assert {"relay", "verdict:fail", "profile:" + doc["profile"]} <= set(labels(relayed, "tag"))
    assert [link["url"] for link in relayed["links"]] == ["https://www.3gpp.org/DynaReport/24538.htm"]
    (step,) = relayed["steps"]
    assert step["status"] == "failed" and "2.05 Content to be discarded" in step["name"]

    uplink = by_title(results, "RELAY-UL-001.pcap", "GET relayed uplink")
    assert uplink["status"] == "passed" and labels(uplink, "story") == ["REQ-RELAY-UL-1"]
    assert "REQ-RELAY-UL-1, REQ-RELAY-TERM-1" in uplink["description"]


def test_the_decisive_frames_are_attached_decoded_and_as_a_pcap(analysed: tuple[Path, int, str]) -> None:
    out, _, _ = analysed
    relayed = by_title(allure_results(out), "RELAY-DL-004.pcap", "2.05 Content to be discarded")
    frames = json.loads(attachment(out, relayed, "decisive frames").read_text())
    first, copy = frames["decoded"]
    assert frames["read_back"] == frames["frames"] == [first["frame"], copy["frame"]]
    assert (first["src_node"], first["dst_node"]) == ("scms", "relay.uu")
    assert (copy["src_node"], copy["dst_node"]) == ("relay.pc5", "cue_nolink")
    assert first["code"] == copy["code"] == "2.05" and first["token"] == "e4e4"
    assert copy["recipient"] == "cue_nolink.msgin5g.example"
    assert {"number": 12, "name": "content-format", "uint": 50} in copy["options"]
    assert "svc-nolink" in copy["payload"]["text"] and copy["time"].endswith("Z")

    # the small pcap holds just these frames, byte for byte as in the capture
    kept = [f for f in iter_capture(attachment(out, relayed, ".pcap")) if isinstance(f, Frame)]
    assert [bytes.fromhex(r["hex"]) for r in frames["decoded"]] == [f.payload for f in kept]
    capture = next(Path(p) for p in json.loads((out / "results.json").read_text())["captures"] if "DL-004" in p)
    original = {f.number: f for f in iter_capture(capture) if isinstance(f, Frame)}
    assert [original[n].payload for n in frames["frames"]] == [f.payload for f in kept]

    text = attachment(out, relayed, "decoded datagrams").read_text()
    assert f"#{copy['frame']} " in text and "relay.pc5" in text and "cue_nolink" in text and "2.05 Content" in text


def test_each_exchange_has_its_sequence_chart(analysed: tuple[Path, int, str]) -> None:
    out, _, _ = analysed
    results = allure_results(out)
    relayed = by_title(results, "RELAY-DL-004.pcap", "2.05 Content to be discarded")
    chart = ET.parse(attachment(out, relayed, "sequence chart"))
    root = chart.getroot()
    assert root.get("data-verdict") == "fail"
    x = {
        g.get("data-node"): float(g.find(f"{SVG}line").get("x1"))  # type: ignore[union-attr, arg-type]
        for g in root.iter(f"{SVG}g")
        if "lifeline" in (g.get("class") or "")
    }
    assert sorted(x, key=x.__getitem__) == ["cue_nolink", "relay.pc5", "relay.uu", "scms"]  # left to right
    sut = [g.get("data-node") for g in root.iter(f"{SVG}g") if g.get("class") == "lifeline sut"]
    assert sut == ["relay.pc5", "relay.uu"]
    decisive = [g for g in root.iter(f"{SVG}g") if "decisive" in (g.get("class") or "").split()]
    assert [(g.get("data-src"), g.get("data-dst")) for g in decisive] == [("relay.pc5", "cue_nolink")]

    # a copy that never came: the live chart's dashed "expected, never came" arrow
    dropped = by_title(results, "RELAY-DL-003-later.pcap", "4.04 Not Found not relayed downlink")
    assert dropped["status"] == "failed" and labels(dropped, "story") == ["REQ-RELAY-DL-1"]
    root = ET.parse(attachment(out, dropped, "sequence chart")).getroot()
    missing = [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("missing")]
    assert [(g.get("data-src"), g.get("data-dst")) for g in missing] == [("relay.pc5", "cue1")]
    passed = by_title(results, "RELAY-DL-001.pcap", "2.05 Content relayed downlink")
    assert ET.parse(attachment(out, passed, "sequence chart")).getroot().get("data-verdict") == "pass"


def test_the_compliance_matrix_of_the_trace(analysed: tuple[Path, int, str]) -> None:
    out, _, _ = analysed
    matrix = json.loads((out / "compliance.json").read_text())
    status = {r["id"]: r["status"] for r in matrix["requirements"]}
    assert status["REQ-RELAY-DL-2"] == "fail" and status["REQ-RELAY-DL-1"] == "fail"
    assert status["REQ-RELAY-UL-1"] == "pass"
    assert status["REQ-GW-BULK-1"] == "uncovered" and status["REQ-RELAY-UL-2"] == "uncovered"  # not exercised
    cases = {c["id"]: c for c in matrix["cases"]}
    assert set(cases) == {f"{c}.pcap-{c}" for c in cases_run()}
    assert cases["RELAY-DL-003.pcap-RELAY-DL-003"]["verdict"] == "inconclusive"  # the trace ends first
    assert cases["RELAY-DL-004.pcap-RELAY-DL-004"]["verdict"] == "fail"
    assert cases["RELAY-UL-001.pcap-RELAY-UL-001"]["verdict"] == "pass"
    assert {p["file"] for p in matrix["identity"]["pcaps"]} == {f"{c}.pcap" for c in cases_run()}
    assert matrix["warnings"] == []
    md = (out / "compliance.md").read_text()
    assert "| REQ-RELAY-DL-2 | FAIL" in md and "RELAY-DL-004.pcap-RELAY-DL-004 (fail)" in md
    assert (out / "summary.html").is_file() and not (out / "index.html").exists()  # html=False


def test_the_caps_bound_the_allure_results(
    tmp_path: Path, analysed: tuple[Path, int, str], fast_profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _, _ = analysed
    doc = json.loads((out / "results.json").read_text())
    judged = [j for js in doc["captures"].values() for j in js]
    monkeypatch.setattr(report, "ATTACH_PASS", 1)
    monkeypatch.setattr(report, "ATTACH_NONPASS", 1)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cmd_analyze(list(doc["captures"]), doc["roles"], fast_profile.source, str(tmp_path / "capped"))
    results = allure_results(tmp_path / "capped")
    # the first of each kind in capture order: DL-001's pass and DL-003-later's fail
    assert sorted(r["status"] for r in results) == ["failed", "passed"]
    nonpass = sum(j["verdict"] != "pass" for j in judged)
    assert f"Allure: 2 of {len(judged)} exchanges written" in buf.getvalue()
    assert f"1 of {nonpass} that did not pass" in buf.getvalue() and "capped at the first 1" in buf.getvalue()
    # the matrix still counts every exchange
    again = json.loads((tmp_path / "capped" / "compliance.json").read_text())
    assert again["requirements"] == json.loads((out / "compliance.json").read_text())["requirements"]
