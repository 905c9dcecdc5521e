"""What the HTML report's landing page shows beyond the per-case results: what was certified.

Allure Report 3 (the awesome plugin, 3.18) reads, and :func:`write` provides:

* ``environment.properties`` in the results folder: the "Metadata" panel above the tree (SUT,
  version, kind, roles, options, profile, each reading, harness version, capture mode, run);
* ``<uuid>-globals.json`` with its attachments: the "Global Attachments" tab (the compliance
  matrix as Markdown, the one-page summary as HTML, the run identity as JSON) and, when the gate
  failed, one "Global Errors" entry with the gate's own lines;
* a state dump (``allure generate --dump``) carrying one quality-gate result: our gate's
  decision and text, so the "Quality Gates" tab agrees with the CLI (``allure generate`` itself
  never evaluates quality-gate rules; the dump's format is Allure's ``restoreState`` archive);
* :func:`config` the report configuration: the title (the product first), the "Variables"
  panel (SUT, version, profile, gate...), the tree grouped specification -> clause -> requirement
  (epic, feature, story), our verdict categories (inconclusive is Allure's ``unknown``, error its
  ``broken``) and the labels that mean nothing here hidden.

The filters that do not apply (retries, flaky, transitions, resolution) have no switch in the
plugin; :data:`HIDE_CSS` hides them in the generated page (their ``data-testid`` names are the
plugin's, to be checked on an upgrade).
"""

from __future__ import annotations

import json
import time
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msgin5g_conformance.report.gate import GateResult
from msgin5g_conformance.report.matrix import identity_rows, render_markdown

GATE_RULE = "MSGin5G conformance gate (msgin5g-conformance run / report)"
GLOBALS_PREFIX = "msgin5g-run"  # our globals file is <this>-globals.json: rewritten, never duplicated
HIDE_CSS = (
    "<style>/* msgin5g: filters that mean nothing in a conformance run */"
    '[data-testid="retry-filter"],[data-testid="flaky-filter"],[data-testid="transition-filter"],'
    '[data-testid="resolution-filter"]{display:none!important}'
    # label chips (tags, variables) wrap instead of being cut to their first letter
    '[data-testid="metadata-item-value"]{flex-wrap:wrap;gap:4px}'
    '[data-testid="metadata-item-value"]>div{flex:0 0 auto;max-width:100%}</style>'
)
CATEGORIES = [
    {"name": "fail: the SUT broke a requirement", "matchers": {"statuses": ["failed"]}},
    {"name": "inconclusive: the run could not decide", "matchers": {"statuses": ["unknown"]}},
    {"name": "error: the case could not be run", "matchers": {"statuses": ["broken"]}},
    {"name": "not applicable to this SUT or profile", "matchers": {"statuses": ["skipped"]}},
]
HIDDEN_LABELS = ["host", "thread", "framework", "language", "package", "parentSuite", "suite", "subSuite"]
# allure's restoreState archive: every entry must be there, empty where we have nothing to add
_DUMP_ENTRIES: dict[str, Any] = {
    "test-results.json": {},
    "test-cases.json": {},
    "fixtures.json": {},
    "attachments.json": {},
    "environments.json": [],
    "report-variables.json": {},
    "global-attachments.json": [],
    "global-errors.json": [],
    "index-attachments-by-test-results.json": {},
    "index-test-results-by-history-id.json": {},
    "index-test-results-by-test-case.json": {},
    "index-attachments-by-fixture.json": {},
    "index-fixtures-by-test-result.json": {},
}


def _property(value: object) -> str:
    """One value of a Java properties file, on one line."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\")


def environment(matrix: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, value) rows of the Metadata panel: the product first, then how it was judged."""
    ident = matrix["identity"]
    sut = ident.get("sut_detail") or {}
    rows = [("SUT", str(ident.get("sut") or "unknown"))]
    if sut.get("version"):
        rows.append(("SUT version", str(sut["version"])))
    confirmed = sut.get("confirmed") or {}
    if confirmed:
        rows.append(("ready event", " ".join(str(confirmed[k]) for k in ("name", "version") if confirmed.get(k))))
    rows.append(("SUT kind", str(sut.get("kind") or "?")))
    rows.append(("roles", ", ".join(sut.get("roles") or []) or "?"))
    rows.append(("declared options", ", ".join(sut.get("options") or []) or "none"))
    profile = ident.get("profile") or {}
    rows.append(("profile", f"{profile.get('name', '?')} (sha256 {str(profile.get('sha256', ''))[:12]})"))
    rows.append(("harness", f"msgin5g-conformance {ident.get('harness_version', '?')}"))
    rows.append(("capture", str(ident.get("capture") or "?")))
    rows.append(("run", str(ident.get("run") or "?")))
    # (the panel shows eight rows before "Show more": the readings come after the identity)
    rows += [(f"reading {k}", str(v)) for k, v in (profile.get("readings") or {}).items()]
    if sut.get("source"):
        rows.append(("SUT profile file", str(sut["source"])))
    return rows


def variables(matrix: Mapping[str, Any], gate: GateResult) -> dict[str, str]:
    """The Variables panel, the first thing on the landing page: what, against what, and the gate."""
    ident = matrix["identity"]
    sut = ident.get("sut_detail") or {}
    profile = ident.get("profile") or {}
    counts = matrix.get("summary", {}).get("cases", {})
    return {
        "Gate": "PASSED" if gate.ok else "FAILED",  # its lines: the Quality Gates tab
        "SUT": str(ident.get("sut") or "unknown"),
        "Roles": ", ".join(sut.get("roles") or []) or "?",
        "Declared options": ", ".join(sut.get("options") or []) or "none",
        "Profile": str(profile.get("name", "?")),
        "Harness": f"msgin5g-conformance {ident.get('harness_version', '?')}",
        "Capture": str(ident.get("capture") or "?"),
        "Cases": ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none",
    }


def config(matrix: Mapping[str, Any], gate: GateResult, title: str) -> dict[str, Any]:
    """The allurerc settings that make the landing page say what was certified."""
    return {
        "name": title,
        "variables": variables(matrix, gate),
        "categories": CATEGORIES,
        "hideLabels": HIDDEN_LABELS,
        "plugins": {"awesome": {"options": {"singleFile": True, "groupBy": ["epic", "feature", "story"]}}},
    }


def write_gate_dump(path: Path, gate: GateResult) -> Path:
    """The state archive ``allure generate --dump`` restores: one quality-gate result, ours."""
    result = {
        "rule": GATE_RULE,
        "success": gate.ok,
        "message": "\n".join(["GATE PASSED" if gate.ok else "GATE FAILED", *gate.lines]),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, value in {**_DUMP_ENTRIES, "quality-gate-results.json": [result]}.items():
            z.writestr(name, json.dumps(value))
    return path


def write(results: Path, run_dir: Path, matrix: Mapping[str, Any], gate: GateResult) -> None:
    """environment.properties and the run's globals (attachments, the gate as an error when it
    failed) into the allure-results folder; rewritten, not added to, when a report is rebuilt."""
    results.mkdir(parents=True, exist_ok=True)
    props = "".join(f"{k.replace(' ', '.')}={_property(v)}\n" for k, v in environment(matrix))
    (results / "environment.properties").write_text(props, encoding="utf-8")
    now = int(time.time() * 1000)
    for old in results.glob(f"{GLOBALS_PREFIX}-*-attachment.*"):
        old.unlink()
    attachments = []
    identity = {"identity": dict(identity_rows(matrix["identity"])), "run": matrix["identity"]}
    files = [
        ("compliance matrix (compliance.md)", "md", "text/markdown", render_markdown(matrix)),
        ("run identity (run.json)", "json", "application/json", json.dumps(identity, indent=1, ensure_ascii=False)),
    ]
    page = run_dir / "summary.html"
    if page.is_file():
        files.append(("one-page summary (summary.html)", "html", "text/html", page.read_text(encoding="utf-8")))
    for name, ext, mime, text in files:
        source = f"{GLOBALS_PREFIX}-{uuid.uuid4().hex}-attachment.{ext}"
        (results / source).write_text(text, encoding="utf-8")
        attachments.append({"name": name, "source": source, "type": mime, "timestamp": now})
    errors: list[dict[str, Any]] = []
    if not gate.ok:
        failing = [line for line in gate.lines[:-1] if not line.startswith(("NOTE", "WAIVED", "WARNING"))]
        summary = gate.lines[-1] if gate.lines else "gate FAILED"
        errors.append({"message": summary, "trace": "\n".join(failing), "timestamp": now})
    record = {"attachments": attachments, "errors": errors}
    (results / f"{GLOBALS_PREFIX}-globals.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
