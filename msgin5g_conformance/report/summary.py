"""The one-page summary, for people who do not open HTML reports: ``summary.html`` and ``summary.pdf``.

One A4 page: the run's identity (the product first), the gate's verdict and counts, one row per
catalogued requirement (strength, the reading it was judged under, status, warnings, cases) and
the caveats the verdicts rest on (provisional profile items, requirements whose text is not yet
verified against the specification, requirements nothing on the wire can show). The HTML is
self-contained and printable; :func:`print_pdf` prints it with headless Chromium
(``--print-to-pdf``), bounded in time, and says plainly why when it cannot.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msgin5g_conformance.report.matrix import identity_rows

PRINT_TIMEOUT_S = 60.0
FAILED_LINES = 5  # lines of the gate's failures shown (one page: the rest are in compliance.md)
GATE_COLOURS = {True: "#1b7f3b", False: "#b3261e"}  # the banner: green passed, red failed
STATUS_COLOURS = {
    "pass": "#1b7f3b",
    "fail": "#b3261e",
    "error": "#8a4b00",
    "inconclusive": "#6b5b00",
    "not-run": "#6b5b00",
    "not-applicable": "#555555",
    "uncovered": "#555555",
}
TAG_NOTES = {
    "SEED": "the change requests' own text (TS 24.538 6.2.2)",
    "VERIFIED": "text checked against the published specification",
    "UNVERIFIED": "open in the specification: judged under the profile's reading, not the text",
    "RFC": "RFC 7252 (CoAP)",
}

_CSS = """
@page { size: A4; margin: 11mm 10mm 10mm 10mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 7pt; color: #111;
       margin: 0; }
h1 { font-size: 13pt; margin: 0 0 1.5mm 0; }
.sub { color: #444; margin-bottom: 2mm; }
.gate { color: #fff; font-weight: bold; font-size: 11pt; padding: 2mm 3mm; margin: 0 0 2mm 0; }
.gate small { font-weight: normal; font-size: 8pt; display: block; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
td, th { border-bottom: 0.2mm solid #ccc; padding: 0.3mm 1mm; text-align: left; vertical-align: top;
         white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
th { background: #eee; }
.ident td { white-space: normal; }
.ident td:first-child { width: 30mm; color: #444; }
.status { font-weight: bold; }
h2 { font-size: 9pt; margin: 2.5mm 0 1mm 0; }
ul { margin: 0; padding-left: 4mm; }
li { margin: 0; }
ul.failed li { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.foot { color: #555; margin-top: 2mm; font-size: 6.5pt; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render(matrix: Mapping[str, Any], gate_ok: bool, gate_lines: Sequence[str]) -> str:
    """The summary page as one self-contained HTML document."""
    ident = matrix["identity"]
    summary = gate_lines[-1] if gate_lines else "gate: no decision"
    failing = [line for line in gate_lines[:-1] if line.startswith(("FAIL", "ERROR", "EXPIRED"))]
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>MSGin5G conformance summary: {_e(ident.get('sut', ''))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>MSGin5G conformance summary</h1>",
        "<div class='sub'>3GPP TS 24.538 clause 6.2.2 (configuration of constrained devices through a Relay UE"
        " or a Gateway UE) and RFC 7252</div>",
        f"<div class='gate' style='background:{GATE_COLOURS[gate_ok]}' data-gate='{'passed' if gate_ok else 'failed'}'>"
        f"{'GATE PASSED' if gate_ok else 'GATE FAILED'}: {_e(ident.get('sut', ''))}"
        f"<small>{_e(summary)}</small></div>",
        "<table class='ident'>",
    ]
    out += [f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in identity_rows(ident)]
    out.append("</table>")
    if failing:
        out.append("<h2>What failed the gate</h2><ul class='failed'>")
        out += [f"<li>{_e(line)}</li>" for line in failing[:FAILED_LINES]]
        if len(failing) > FAILED_LINES:
            out.append(f"<li>... and {len(failing) - FAILED_LINES} more (compliance.md lists every case)</li>")
        out.append("</ul>")
    out += [
        "<h2>Requirements</h2>",
        "<table><colgroup><col style='width:29mm'><col><col style='width:12mm'><col style='width:34mm'>"
        "<col style='width:19mm'><col style='width:11mm'><col style='width:11mm'></colgroup>",
        "<tr><th>Requirement</th><th>Title</th><th>Strength</th><th>Reading</th><th>Status</th>"
        "<th>Warn.</th><th>Cases</th></tr>",
    ]
    for r in matrix["requirements"]:
        status = str(r["status"])
        shown = status.upper() if status in ("pass", "fail", "error") else status
        if r.get("provisional"):
            shown += " *"
        reading = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("readings", {}).items())) or "\u2014"
        out.append(
            f"<tr><td>{_e(r['id'])}</td><td title='{_e(r['title'])}'>{_e(r['title'])}</td>"
            f"<td>{_e(', '.join(r.get('strength') or []) or chr(0x2014))}</td><td>{_e(reading)}</td>"
            f"<td class='status' style='color:{STATUS_COLOURS.get(status, '#111')}'>{_e(shown)}</td>"
            f"<td>{_e(r.get('warnings') or chr(0x2014))}</td><td>{len(r.get('cases') or [])}</td></tr>"
        )
    out.append("</table>")
    out += ["<h2>Caveats: what the verdicts rest on</h2><ul>"]
    for line in caveats(matrix):
        out.append(f"<li>{_e(line)}</li>")
    out.append("</ul>")
    counts = matrix.get("summary", {}).get("cases", {})
    out.append(
        f"<div class='foot'>Run {_e(ident.get('run') or '-')}; {sum(counts.values())} case results "
        f"({_e(', '.join(f'{v} {k}' for k, v in sorted(counts.items())))}). The evidence of every verdict "
        "(the checks, the datagrams, the captures with their SHA-256) is in index.html and compliance.md of "
        "the same run directory.</div>"
    )
    out.append("</body></html>")
    return "\n".join(out)


def caveats(matrix: Mapping[str, Any]) -> list[str]:
    """The assumptions a reader must know: provisional items, open readings, unobservable parts."""
    out: list[str] = []
    provisional = sorted({i for r in matrix["requirements"] for i in r.get("provisional_items", [])})
    if provisional:
        out.append(
            "* Provisional: these verdicts rest on profile values the specification does not yet fix: "
            + ", ".join(provisional)
            + "; they stand only as far as those values do."
        )
    open_ids = [r["id"] for r in matrix["requirements"] if r.get("tag") == "UNVERIFIED" and r.get("cases")]
    if open_ids:
        out.append(
            "Open in the specification, judged under the profile's reading (the Reading column): "
            + ", ".join(open_ids)
            + "."
        )
    for r in matrix["requirements"]:
        if r.get("unobservable"):
            out.append(f"{r['id']} is not on the wire under {r['unobservable']}: {r.get('note') or ''}".strip())
    readings = matrix["identity"].get("profile", {}).get("readings") or {}
    if readings:
        out.append("Readings of this run: " + ", ".join(f"{k}: {v}" for k, v in sorted(readings.items())) + ".")
    tags = sorted({str(r.get("tag")) for r in matrix["requirements"] if r.get("tag") in TAG_NOTES})
    out.append("Tags: " + "; ".join(f"{t}: {TAG_NOTES[t]}" for t in tags) + ".")
    if matrix.get("warnings"):
        out.append(f"The matrix has {len(matrix['warnings'])} warning(s); see compliance.md.")
    return out


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html_file: Path, pdf_file: Path, *, timeout_s: float = PRINT_TIMEOUT_S) -> tuple[bool, str]:
    """Print ``html_file`` to ``pdf_file`` with headless Chromium; ``(ok, what happened)``."""
    browser = find_chromium()
    if browser is None:
        return False, "summary.pdf not written: Chromium is not installed (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="msgin5g-pdf-") as profile:
        tmp = pdf_file.with_name(f".{pdf_file.name}.{os.getpid()}")
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={tmp}",
            html_file.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            return False, f"summary.pdf not written: Chromium did not finish within {timeout_s:g} s"
        except OSError as exc:
            return False, f"summary.pdf not written: cannot run {browser}: {exc}"
        if proc.returncode != 0 or not tmp.is_file() or tmp.read_bytes()[:5] != b"%PDF-":
            tmp.unlink(missing_ok=True)
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or "no output"
            return False, f"summary.pdf not written: Chromium exited with {proc.returncode}: {tail}"
        os.replace(tmp, pdf_file)
    return True, f"wrote {pdf_file} ({pdf_file.stat().st_size // 1024} KiB)"


def write(
    run_dir: Path, matrix: Mapping[str, Any], gate_ok: bool, gate_lines: Sequence[str], *, pdf: bool = True
) -> list[str]:
    """``summary.html`` (always) and ``summary.pdf`` (when asked and Chromium is there)."""
    page = run_dir / "summary.html"
    page.write_text(render(matrix, gate_ok, gate_lines), encoding="utf-8")
    lines = [f"summary: {page}"]
    if pdf:
        ok, message = print_pdf(page, run_dir / "summary.pdf")
        lines.append(f"summary: {message}" if ok else f"summary not printed: {message}")
    return lines
