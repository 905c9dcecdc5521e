"""Everything a run directory shows a reader once its matrix and gate are known.

:func:`publish` writes, into the run directory: the run's identity, the matrix and the gate into
``allure-results`` (so that the HTML report's landing page says what was certified, see
:mod:`.allure_extras`), the single-file HTML report ``index.html``, and the one-page summary
(``summary.html``, printed to ``summary.pdf``). A missing tool (Node.js, Chromium) is a line
saying so, never an exception: the matrix and the gate stand without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msgin5g_conformance.report import allure_extras, html, summary
from msgin5g_conformance.report.gate import GateResult


def publish(run_dir: Path, matrix: Mapping[str, Any], gate: GateResult, *, html_report: bool = True) -> list[str]:
    lines = summary.write(run_dir, matrix, gate.ok, gate.lines, pdf=html_report)
    results = run_dir / "allure-results"
    if html_report:
        if results.is_dir():
            allure_extras.write(results, run_dir, matrix, gate)
            title = report_name(matrix)
            ok, message = html.generate(
                results,
                run_dir / "index.html",
                report_name=title,
                settings=allure_extras.config(matrix, gate, title),
                gate=gate,
            )
            lines.append(f"HTML report: {message}" if ok else f"HTML report not written: {message}")
        else:
            lines.append(f"HTML report not written: no {results}")
    return lines


def report_name(matrix: Mapping[str, Any]) -> str:
    """The report's title: the product, then what it was checked against."""
    return f"{matrix['identity'].get('sut') or 'SUT'}: MSGin5G conformance (TS 24.538 6.2.2)"
