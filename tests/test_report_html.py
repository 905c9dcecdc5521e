"""Tests for the Allure annotations (report.allure) and the single-file HTML report (report.html).

The annotation tests run real cases in a pytester directory with ``--alluredir`` and read the
``*-result.json`` files allure-pytest writes. Until the plugin calls
:func:`msgin5g_conformance.report.allure.annotate` itself, a conftest in that directory routes
the plugin's Allure hook to it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from allure_pytest.utils import get_status

from msgin5g_conformance.engine.verdict import StepResult, Verdict
from msgin5g_conformance.report import html
from msgin5g_conformance.report.allure import StepBroken, StepFailed, spec_links, spec_of, step_outcome, step_title

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "testcases" / "relay"
TIMEOUT_S = 180
ROUTE_TO_ANNOTATE = """
import msgin5g_conformance.plugin as plugin
from msgin5g_conformance.report.allure import annotate

if hasattr(plugin, "_allure"):
    plugin._allure = annotate
"""
ALLURE = html.find_allure()
NEEDS_ALLURE = pytest.mark.skipif(
    shutil.which("node") is None or ALLURE is None,
    reason="Node.js or the allure npm package is not installed (run scripts/install-report-tools.sh)",
)


def run_with_allure(pytester: pytest.Pytester, sut: str, *case_ids: str) -> Path:
    """Run shipped cases against ``sut`` with --alluredir; return the allure-results folder."""
    folder = pytester.path / "testcases"
    folder.mkdir()
    for cid in case_ids:
        shutil.copy(CASES / f"{cid}.yaml", folder / f"{cid}.yaml")
    pytester.makeconftest(ROUTE_TO_ANNOTATE)
    out = pytester.path / "allure-results"
    pytester.runpytest_subprocess(
        "testcases",
        "--sut",
        sut,
        "--pcap-dir",
        str(pytester.path / "pcaps"),
        "--alluredir",
        str(out),
        "-p",
        "no:cacheprovider",
        timeout=TIMEOUT_S,
    )
    return out


def allure_results(folder: Path) -> dict[str, dict[str, Any]]:
    """Every *-result.json in the folder, keyed by case id (the title's first word)."""
    out = {}
    for f in folder.glob("*-result.json"):
        data = json.loads(f.read_text(encoding="utf-8"))
        out[data["name"].split(":")[0]] = data
    return out


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [lab["value"] for lab in result["labels"] if lab["name"] == name]


@pytest.fixture
def payload_run(pytester: pytest.Pytester) -> Path:
    """RELAY-DL-001 (fails: payload rewritten) and RELAY-DL-004 (passes) with Allure recording."""
    return run_with_allure(pytester, "faulty:rewrites-payload", "RELAY-DL-001", "RELAY-DL-004")


# --------------------------------------------------------------------------- #
# report.allure: pure helpers
# --------------------------------------------------------------------------- #


def test_spec_and_links_from_the_clause() -> None:
    """The epic is the specification; links go to the 3GPP DynaReport page or the RFC section."""
    assert spec_of("TS 24.538 6.2.2.1") == "TS 24.538"
    assert spec_links("TS 24.538 6.2.2.1") == [("TS 24.538 6.2.2.1", "https://www.3gpp.org/DynaReport/24538.htm")]
    assert spec_links("TS 24.538 6.2.1.2, TS 24.546 6.2.3.3") == [
        ("TS 24.538 6.2.1.2", "https://www.3gpp.org/DynaReport/24538.htm"),
        ("TS 24.546 6.2.3.3", "https://www.3gpp.org/DynaReport/24546.htm"),
    ]
    assert spec_links("RFC 7252 5.4.1") == [("RFC 7252 5.4.1", "https://www.rfc-editor.org/rfc/rfc7252#section-5.4.1")]


@pytest.mark.parametrize(
    ("verdict", "status"),
    [
        (Verdict.PASS, "passed"),
        (Verdict.FAIL, "failed"),
        (Verdict.ERROR, "broken"),
        (Verdict.INCONCLUSIVE, "broken"),
        (Verdict.NOT_APPLICABLE, "skipped"),
    ],
)
def test_step_verdict_maps_to_allure_status(verdict: Verdict, status: str) -> None:
    """allure-pytest's own status logic turns each step outcome into the intended Allure status."""
    outcome = step_outcome(StepResult("2", "expect", 12, verdict, "why", node="cue1"))
    assert get_status(outcome) == status
    if verdict is Verdict.FAIL:
        assert isinstance(outcome, StepFailed)
    if verdict in (Verdict.ERROR, Verdict.INCONCLUSIVE):
        assert isinstance(outcome, StepBroken)


def test_step_titles() -> None:
    """Step names read like the YAML: kind, where, then the reason."""
    assert (
        step_title(StepResult("2", "expect", 9, Verdict.FAIL, "nothing came", node="cue1"))
        == "step 2 expect at cue1: nothing came"
    )
    assert (
        step_title(StepResult("0", "send", 5, Verdict.PASS, "sent", node="scms", peer="sut.uu"))
        == "step 0 send from scms to sut.uu: sent"
    )
    assert (
        step_title(StepResult("pre", "upper", None, Verdict.PASS, "establish_link cue1"))
        == "step pre upper: establish_link cue1"
    )


# --------------------------------------------------------------------------- #
# report.allure: through allure-pytest
# --------------------------------------------------------------------------- #


def test_annotations_of_a_failed_case(payload_run: Path) -> None:
    """Labels, link, steps and attachments of a failed case come out of the case and its result."""
    results = allure_results(payload_run)
    r = results["RELAY-DL-001"]
    assert r["status"] in ("failed", "broken")
    assert labels(r, "epic") == ["TS 24.538"]
    assert labels(r, "feature") == ["TS 24.538 6.2.2.1"]
    assert labels(r, "story") == ["REQ-RELAY-DL-1"]  # the tree: spec, clause, first requirement
    assert labels(r, "severity") == ["critical"]
    tags = labels(r, "tag")
    assert {"relay", "verdict:fail", "provisional:addresses", "provisional:recipient_option"} <= set(tags)
    assert [link["url"] for link in r["links"]] == ["https://www.3gpp.org/DynaReport/24538.htm"]

    steps = r["steps"]
    assert [s["name"].split(":")[0] for s in steps[:3]] == [
        "step pre upper",
        "step 0 send from scms to sut.uu",
        "step 1 expect at cue1",
    ]
    assert [s["status"] for s in steps[:3]] == ["passed", "passed", "failed"]
    # then the checks of the whole case, each named with the requirement it decides
    assert [s["name"].split(":")[0] for s in steps[3:]] == [
        *(f"check message-layer (REQ-COAP-MSG-{n})" for n in (1, 2, 3, 4)),
        "check no-unexpected (REQ-RELAY-DL-1, REQ-RELAY-TERM-1)",
    ]
    assert {s["status"] for s in steps[3:]} == {"passed"}
    assert "payload" in steps[2]["statusDetails"]["message"]
    assert [a["name"] for a in steps[2]["attachments"]] == ["checks"]


def test_attachments_of_a_failed_case(payload_run: Path) -> None:
    """pcap, sequence chart, decoded datagrams, failed expectations and SUT log are attached."""
    r = allure_results(payload_run)["RELAY-DL-001"]
    by_name = {a["name"]: a for a in r["attachments"]}
    assert {k: v["type"] for k, v in by_name.items()} == {
        "RELAY-DL-001.pcap": "application/vnd.tcpdump.pcap",
        "sequence chart": "image/svg+xml",
        "decoded datagrams": "text/plain",
        "failed expectations": "application/json",
        "SUT log": "text/plain",
    }

    def body(name: str) -> bytes:
        return (payload_run / str(by_name[name]["source"])).read_bytes()

    assert body("RELAY-DL-001.pcap")[:4] in (
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
        b"\x0a\x0d\x0d\x0a",
    )
    svg = ET.fromstring(body("sequence chart"))
    assert svg.get("data-case") == "RELAY-DL-001"
    assert any("decisive" in (g.get("class") or "") for g in svg.iter("{http://www.w3.org/2000/svg}g"))
    assert "hex " in body("decoded datagrams").decode()
    (failed,) = json.loads(body("failed expectations"))
    assert failed["step"] == "1" and failed["verdict"] == "fail"
    assert failed["where"].endswith("RELAY-DL-001.yaml:27")
    (check,) = failed["failed_checks"]
    assert check["field"] == "payload" and check["expected"] != check["found"]
    assert "relay" in body("SUT log").decode()


def test_annotations_of_a_passed_case(payload_run: Path) -> None:
    """A passed case has passed steps and no 'failed expectations' attachment."""
    r = allure_results(payload_run)["RELAY-DL-004"]
    assert r["status"] == "passed"
    assert all(s["status"] == "passed" for s in r["steps"])
    names = [a["name"] for a in r["attachments"]]
    assert "failed expectations" not in names
    assert {"RELAY-DL-004.pcap", "sequence chart", "decoded datagrams"} <= set(names)


# --------------------------------------------------------------------------- #
# report.html
# --------------------------------------------------------------------------- #


def embedded_results(page: str) -> dict[str, dict[str, Any]]:
    """The test results a single-file Allure 3 report carries inline, keyed by name."""
    out = {}
    for m in re.finditer(r'd\("data/test-results/([0-9a-f]+)\.json","([A-Za-z0-9+/=]+)"\)', page):
        data = json.loads(base64.b64decode(m.group(2)))
        out[data["name"]] = data
    return out


@NEEDS_ALLURE
def test_generate_a_single_file_report(payload_run: Path, tmp_path: Path) -> None:
    """The report is one HTML file with every result inline and no reference to the network."""
    out = tmp_path / "site" / "index.html"
    ok, message = html.generate(payload_run, out)
    assert ok, message
    assert str(out) in message and "Allure Report 3." in message
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]
    page = out.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="https?://', page)
    assert "googletagmanager" not in page
    names = {n.split(":")[0]: r["status"] for n, r in embedded_results(page).items()}
    assert names["RELAY-DL-004"] == "passed" and names["RELAY-DL-001"] in ("failed", "broken")
    assert re.search(r'd\("data/attachments/[0-9a-f]+\.svg"', page)


def test_generate_without_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no Node.js on PATH the answer is a plain reason, not an exception."""
    monkeypatch.setenv("PATH", str(tmp_path))
    ok, message = html.generate(tmp_path, tmp_path / "index.html")
    assert not ok
    assert "Node.js is not installed" in message


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_generate_without_the_allure_package(tmp_path: Path) -> None:
    """A missing allure npm package is reported with the install command to run."""
    ok, message = html.generate(tmp_path, tmp_path / "index.html", allure_bin=tmp_path / "no" / "allure")
    assert not ok
    assert "'allure' npm package is not installed" in message and "install-report-tools.sh" in message


@NEEDS_ALLURE
def test_generate_without_results(tmp_path: Path) -> None:
    """An empty results folder gives a reason and writes nothing."""
    ok, message = html.generate(tmp_path, tmp_path / "out" / "index.html")
    assert not ok and "no Allure results" in message
    assert not (tmp_path / "out").exists()


def _fake_results(folder: Path) -> Path:
    folder.mkdir()
    (folder / "x-result.json").write_text(json.dumps({"name": "x", "status": "passed"}), encoding="utf-8")
    return folder


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_generate_reports_a_failing_tool(tmp_path: Path) -> None:
    """When the tool exits non-zero, its exit code and last output lines come back."""
    tool = tmp_path / "allure.js"
    tool.write_text('console.error("boom: bad results"); process.exit(3);\n', encoding="utf-8")
    ok, message = html.generate(_fake_results(tmp_path / "r"), tmp_path / "index.html", allure_bin=tool)
    assert not ok
    assert "exited with 3" in message and "boom: bad results" in message


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_generate_is_bounded_by_a_timeout(tmp_path: Path) -> None:
    """A tool that hangs is stopped after the timeout and reported."""
    tool = tmp_path / "allure.js"
    tool.write_text("setTimeout(() => {}, 60000);\n", encoding="utf-8")
    ok, message = html.generate(_fake_results(tmp_path / "r"), tmp_path / "index.html", allure_bin=tool, timeout_s=1)
    assert not ok
    assert "did not finish within 1 s" in message


def test_strip_analytics_removes_only_the_tag() -> None:
    """The analytics script pair is removed and the rest of the page kept."""
    page = (
        '<body><div id="app"></div>\n    <script async src="https://www.googletagmanager.com/gtag/js?id=G-X">'
        "</script>\n    <script>\n        window.dataLayer = window.dataLayer || [];\n        gtag('js');\n"
        "    </script>\n    <script>window.allureReportData = {}</script></body>"
    )
    cleaned = html.strip_analytics(page)
    assert "googletagmanager" not in cleaned and "dataLayer" not in cleaned
    assert '<div id="app"></div>' in cleaned and "window.allureReportData = {}" in cleaned


# Heavy subprocess work (a browser, whole-suite runs, Node): one xdist worker runs all of it in
# turn (make runs pytest with --dist loadgroup), so it never loads both cores at once while the
# timing-sensitive self-tests run on the other.
pytestmark = [*globals().get("pytestmark", []), pytest.mark.xdist_group("heavy")]
