"""Render the single-file Allure report in headless Chromium and read what a reader would see.

The report is built by a real ``msgin5g-conformance run`` (four cases against a faulty relay: one
passes, one fails, one is inconclusive, one not applicable), opened from ``file://`` with
networking off, and checked through the rendered DOM: on the landing page the product in the
title, the gate as the CLI decided it (Quality Gates), the run identity (Variables, Metadata),
the matrix, identity and summary (Global Attachments), the tree by specification, clause and
requirement, inconclusive as Allure's "unknown"; on the failing case its banner in our words and
its evidence. The one-page summary PDF is checked as an image. Screenshots are kept under
``reports/browser/`` for a person to look at: landing.png, quality-gate.png,
global-attachments.png, RELAY-UL-001.png and summary-page-1.png.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest

from msgin5g_conformance.report import html

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "testcases" / "relay"
SHOTS = ROOT / "reports" / "browser"
CHROMIUM = (
    shutil.which("chromium")
    or shutil.which("chromium-browser")
    or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
)
BROWSER_TIMEOUT_S = 120
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)"),
    pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed (pdftoppm)"),
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


def screenshot(url: str, profile: Path, out: Path, height: int = 1000) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    proc = chromium(
        url, profile, f"--screenshot={out}", f"--window-size=1400,{height}", "--hide-scrollbars", budget_ms=30000
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


RUN_CASES = ("RELAY-DL-001", "RELAY-UL-001", "RELAY-UL-002", "RELAY-UL-003")
# faulty:no-uplink relays nothing uplink: DL-001 passes, UL-001 fails, UL-002 is inconclusive (its
# positive control needs the uplink), UL-003 is not applicable under the default reading
RUN_VERDICTS = {"passed": 1, "failed": 1, "unknown": 1, "skipped": 1}


@pytest.fixture(scope="module")
def run_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real ``msgin5g-conformance run`` of four cases, with its HTML report; (run dir, output)."""
    here = tmp_path_factory.mktemp("browser-run")
    cases = [str(CASES / f"{cid}.yaml") for cid in RUN_CASES]
    done = subprocess.run(
        [sys.executable, "-m", "msgin5g_conformance.cli", "run", *cases, "--sut", "faulty:no-uplink", "-q"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the gate fails: UL-001, UL-002
    run_dir = (here / "reports" / "latest").resolve()
    assert (run_dir / "index.html").is_file(), done.stdout[-3000:]
    return run_dir, done.stdout


def texts(found: list[tuple[str, str]], testid: str) -> list[str]:
    return [t for k, t in found if k == testid]


def test_landing_page_says_what_was_certified(run_report: tuple[Path, str], tmp_path: Path) -> None:
    """The first screen names the product, shows the gate as the CLI decided it, the run's
    identity and the tree by specification, clause and requirement; inconclusive is Allure's
    "unknown", and the filters that mean nothing here are hidden."""
    run_dir, output = run_report
    url = (run_dir / "index.html").resolve().as_uri()
    profile = tmp_path / "chromium-profile"
    page = rendered(url, profile, "metadata-item-total")
    assert texts(page, "report-title") == ["faulty:no-uplink: MSGin5G conformance (TS 24.538 6.2.2)"]
    assert count(page, "total") == 4
    for status, n in RUN_VERDICTS.items():
        assert count(page, status) == n, status
    assert count(page, "broken") == 0  # our error verdict only; nothing was broken
    tabs = {k: t for k, t in page if k.startswith("nav-tab-")}
    assert tabs["nav-tab-qualityGate"] == "Quality Gates 1"
    assert tabs["nav-tab-globalAttachments"] == "Global Attachments 3"
    assert tabs["nav-tab-globalErrors"] == "Global Errors 1"  # the failed gate
    variables = " ".join(texts(page, "report-variables"))
    assert "Gate FAILED" in variables and "SUT faulty:no-uplink" in variables
    assert "Cases 1 fail, 1 inconclusive, 1 not-applicable, 1 pass" in variables
    metadata = " ".join(texts(page, "metadata-item"))
    for shown in (
        "SUT faulty:no-uplink",
        "SUT.kind faulty",
        "declared.options bulk-configuration",
        "capture tap",
        "harness msgin5g-conformance",
    ):
        assert shown in metadata, metadata
    tree = texts(page, "tree-section-title")
    assert tree[:3] == ["TS 24.538", "TS 24.538 6.2.2.1", "REQ-RELAY-DL-1"], tree  # spec, clause, requirement
    source = (run_dir / "index.html").read_text(encoding="utf-8")
    head = source[: source.index("</head>")]
    for hidden in ("retry-filter", "flaky-filter", "transition-filter", "resolution-filter"):
        assert any(k == hidden for k, _ in page)  # the plugin renders it...
        assert f'[data-testid="{hidden}"]' in head.split("msgin5g: filters")[1]  # ...and our style hides it
    screenshot(url, profile, SHOTS / "landing.png", height=1700)

    gate_url = f"{url}#/qualityGate"
    gate = rendered(gate_url, profile, "quality-gate-result-message")
    message = texts(gate, "quality-gate-result-message")[0]
    cli_gate = [line for line in output.splitlines() if line.startswith(("FAIL ", "gate "))]
    assert texts(gate, "quality-gate-result-rule") == ["MSGin5G conformance gate (msgin5g-conformance run / report)"]
    assert message.startswith("Error GATE FAILED") and all(" ".join(line.split()) in message for line in cli_gate)
    screenshot(gate_url, profile, SHOTS / "quality-gate.png")

    attachments_url = f"{url}#/globalAttachments"
    header = "test-result-attachment-header"
    shown = " | ".join(texts(rendered(attachments_url, profile, header), header))
    for name in ("compliance matrix (compliance.md)", "run identity (run.json)", "one-page summary (summary.html)"):
        assert name in shown, shown
    screenshot(attachments_url, profile, SHOTS / "global-attachments.png")

    categories_url = f"{url}#/categories"
    cats = " ".join(texts(rendered(categories_url, profile, "tree-section-title"), "tree-section-title"))
    assert "inconclusive: the run could not decide" in cats and "fail: the SUT broke a requirement" in cats


def test_a_failing_case_shows_its_evidence_in_our_words(run_report: tuple[Path, str], tmp_path: Path) -> None:
    """The failing case's banner is our verdict and reason (no Python class name), its steps'
    banners too, and its evidence is attached."""
    run_dir, _ = run_report
    index = run_dir / "index.html"
    url = index.resolve().as_uri()
    profile = tmp_path / "chromium-profile"
    case_url = f"{url}#/{result_id(index.read_text(encoding='utf-8'), 'RELAY-UL-001')}"
    page = rendered(case_url, profile, "test-result-error-message")
    banners = texts(page, "test-result-error-message")
    assert banners[0] == "FAIL: no matching message arrived at scms within 1000 ms", banners
    assert not any("msgin5g_conformance" in b or "Failed:" in b or "Assertion" in b for b in banners), banners
    assert any(k == "test-result-info-title" and "RELAY-UL-001" in t for k, t in page)
    screenshot(case_url, profile, SHOTS / "RELAY-UL-001.png", height=1400)

    attachments = rendered(f"{case_url}/attachments", profile, "test-result-attachment-header")
    listed = " | ".join(texts(attachments, "test-result-attachment-header"))
    for name in ("RELAY-UL-001.pcap", "sequence chart", "decoded datagrams", "failed expectations", "SUT log"):
        assert name in listed, listed


def test_the_summary_pdf_first_page(run_report: tuple[Path, str], tmp_path: Path) -> None:
    """summary.pdf is one A4 page; seen as an image, it carries the red gate banner at the top and
    text all down the page; its text names the product, the gate and the requirements."""
    run_dir, _ = run_report
    pdf = run_dir / "summary.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=60, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M) and "(A4)" in info, info
    image = first_page(pdf, tmp_path)
    assert (image.width, image.height) == (595, 842)  # A4 at 72 dpi
    ink = lambda r, g, b: r + g + b < 600  # noqa: E731 - anything not white: text, rules, banner
    red = lambda r, g, b: r > 150 and g < 80 and b < 80  # noqa: E731
    assert image.band(0.0, 0.05).share(ink) > 0.01  # the title
    assert image.band(0.05, 0.12).share(red) > 0.2  # the FAILED banner, red, right under it
    for top in (0.2, 0.4, 0.6, 0.8):  # identity, requirement rows, caveats: all down the page
        assert image.band(top, top + 0.05).share(ink) > 0.03, top
    SHOTS.mkdir(parents=True, exist_ok=True)  # (a fresh clone: this may be the first test to save one)
    shot = SHOTS / "summary-page-1"
    png = ["pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(shot)]
    subprocess.run(png, check=True, timeout=60)
    assert shot.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=60).stdout
    for shown in ("GATE FAILED: faulty:no-uplink", "REQ-RELAY-UL-1", "FAIL", "Caveats", "Harness version"):
        assert shown in text, shown


class Pixels(NamedTuple):
    path: Path
    width: int
    height: int
    rgb: bytes

    def band(self, top: float, bottom: float) -> Pixels:
        first, last = int(self.height * top), int(self.height * bottom)
        rows = self.rgb[first * self.width * 3 : last * self.width * 3]
        return Pixels(self.path, self.width, last - first, rows)

    def share(self, test: Callable[[int, int, int], bool]) -> float:
        n = len(self.rgb) // 3
        hits = sum(1 for i in range(0, len(self.rgb), 3) if test(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]))
        return hits / n if n else 0.0


def first_page(pdf: Path, folder: Path) -> Pixels:
    """The PDF's first page as pixels (pdftoppm, 72 dpi, binary PPM)."""
    out = folder / "page"
    subprocess.run(["pdftoppm", "-r", "72", "-f", "1", "-l", "1", str(pdf), str(out)], check=True, timeout=60)
    (path,) = folder.glob("page*.ppm")
    data = path.read_bytes()
    magic, width, height, depth, rest = data.split(maxsplit=4)
    assert magic == b"P6" and depth == b"255"
    return Pixels(path, int(width), int(height), rest[: int(width) * int(height) * 3])


# Heavy subprocess work (a browser, whole-suite runs, Node): one xdist worker runs all of it in
# turn (make runs pytest with --dist loadgroup), so it never loads both cores at once while the
# timing-sensitive self-tests run on the other.
pytestmark = [*globals().get("pytestmark", []), pytest.mark.xdist_group("heavy")]
