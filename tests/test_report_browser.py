"""Render the single-file Allure report in headless Chromium and read what a reader would see.

The report is built from a real run (one passing, one failing case), opened from ``file://``
with networking off, and checked through the rendered DOM: the verdict counts on the overview,
and the attachment list of the failing case (reached through the report's URL hash route
``#/<test result id>/attachments``). Screenshots of both pages are kept under
``reports/browser/`` for a person to look at.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from msgin5g_conformance.report import html

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "testcases" / "relay"
SHOTS = ROOT / "reports" / "browser"
CHROMIUM = (
    shutil.which("chromium")
    or shutil.which("chromium-browser")
    or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
)
BROWSER_TIMEOUT_S = 120
ROUTE_TO_ANNOTATE = """
import msgin5g_conformance.plugin as plugin
from msgin5g_conformance.report.allure import annotate

if hasattr(plugin, "_allure"):
    plugin._allure = annotate
"""
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)"),
    pytest.mark.skipif(
        shutil.which("node") is None or html.find_allure() is None,
        reason="Node.js or the allure npm package is not installed (scripts/install-report-tools.sh)",
    ),
]


class DataTestIdText(HTMLParser):
    """Collects the text inside every element carrying a data-testid, by that id."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None, list[str]]] = []
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.open.append((tag, dict(attrs).get("data-testid"), []))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            name, testid, text = self.open.pop()
            if testid:
                self.found.append((testid, " ".join("".join(text).split())))
            if self.open:
                self.open[-1][2].extend(text)
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1][2].append(data + " ")

    @classmethod
    def parse(cls, page: str) -> list[tuple[str, str]]:
        p = cls()
        p.feed(page)
        p.close()
        return p.found


def chromium(url: str, profile: Path, *extra: str, budget_ms: int = 15000) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)


def rendered(url: str, profile: Path, wanted: str) -> list[tuple[str, str]]:
    """The page's data-testid texts once an element ``wanted`` is there (a busy machine gets more time)."""
    found: list[tuple[str, str]] = []
    for budget in (15000, 30000, 60000):
        proc = chromium(url, profile, "--dump-dom", budget_ms=budget)
        assert proc.returncode == 0, proc.stderr[-2000:]
        found = DataTestIdText.parse(proc.stdout)
        if any(k == wanted for k, _ in found):
            return found
    raise AssertionError(f"{wanted} never rendered; page had {sorted({k for k, _ in found})}")


def screenshot(url: str, profile: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    proc = chromium(
        url, profile, f"--screenshot={out}", "--window-size=1400,1000", "--hide-scrollbars", budget_ms=30000
    )
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000  # a blank page compresses to a few KB


def result_id(page: str, case_id: str) -> str:
    """The Allure test result id of a case, read from the data the single file carries."""
    for m in re.finditer(r'd\("data/test-results/([0-9a-f]+)\.json","([A-Za-z0-9+/=]+)"\)', page):
        if json.loads(base64.b64decode(m.group(2)))["name"].startswith(f"{case_id}:"):
            return m.group(1)
    raise AssertionError(f"{case_id} is not in the report")


def count(found: list[tuple[str, str]], status: str) -> int:
    texts = [t for k, t in found if k == f"metadata-item-{status}"]
    if not texts:
        return 0
    m = re.search(r"(\d+)", texts[0])
    assert m, texts[0]
    return int(m.group(1))


def test_report_renders_counts_and_attachments(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """In Chromium the overview shows 1 passed and 1 not passed, and the failing case lists its evidence."""
    folder = pytester.path / "testcases"
    folder.mkdir()
    for cid in ("RELAY-DL-001", "RELAY-DL-004"):
        shutil.copy(CASES / f"{cid}.yaml", folder / f"{cid}.yaml")
    pytester.makeconftest(ROUTE_TO_ANNOTATE)
    results = pytester.path / "allure-results"
    run = pytester.runpytest_subprocess(
        "testcases",
        "--sut",
        "faulty:rewrites-payload",
        "--pcap-dir",
        str(pytester.path / "pcaps"),
        "--alluredir",
        str(results),
        "-p",
        "no:cacheprovider",
        timeout=180,
    )
    run.assert_outcomes(passed=1, failed=1)

    index = SHOTS / "index.html"
    ok, message = html.generate(results, index)
    assert ok, message
    url = index.resolve().as_uri()
    profile = tmp_path / "chromium-profile"

    overview = rendered(url, profile, "metadata-item-total")
    assert count(overview, "total") == 2
    assert count(overview, "passed") == 1
    assert count(overview, "failed") + count(overview, "broken") == 1
    screenshot(url, profile, SHOTS / "overview.png")

    case_url = f"{url}#/{result_id(index.read_text(encoding='utf-8'), 'RELAY-DL-001')}/attachments"
    page = rendered(case_url, profile, "test-result-attachment-header")
    headers = [t for k, t in page if k == "test-result-attachment-header"]
    listed = " | ".join(headers)
    for name in ("RELAY-DL-001.pcap", "sequence chart", "decoded datagrams", "failed expectations", "SUT log"):
        assert name in listed, listed
    assert any(k == "test-result-info-title" and "RELAY-DL-001" in t for k, t in page)
    screenshot(case_url, profile, SHOTS / "RELAY-DL-001-attachments.png")


# Heavy subprocess work (a browser, whole-suite runs, Node): one xdist worker runs all of it in
# turn (make runs pytest with --dist loadgroup), so it never loads both cores at once while the
# timing-sensitive self-tests run on the other.
pytestmark = [*globals().get("pytestmark", []), pytest.mark.xdist_group("heavy")]
