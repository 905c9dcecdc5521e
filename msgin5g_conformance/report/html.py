"""The single-file HTML report: Allure Report 3 (npm package ``allure``) over ``allure-results``.

:func:`generate` writes a temporary ``allurerc.json`` enabling the Awesome report plugin with
``singleFile: true``, runs ::

    node node_modules/.bin/allure generate <allure-results> --config <tmp>/allurerc.json --output <tmp>/out

with a timeout, and copies ``<tmp>/out/index.html`` to the requested file. Everything the page
needs (scripts, styles, test data, attachments) is inlined as ``data:`` URLs, so the file opens
from ``file://`` with no server. The one external reference Allure adds (a Google Analytics
tag) is removed, so opening a conformance report does not contact a third party.

The tools are optional: without Node.js or without the npm package (``scripts/
install-report-tools.sh`` installs it from ``package-lock.json``) :func:`generate` returns
``(False, reason)`` and never raises.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from msgin5g_conformance.report import allure_extras
from msgin5g_conformance.report.gate import GateResult

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TIMEOUT_S = 300.0
INSTALL_HINT = "run scripts/install-report-tools.sh (npm ci) in the repository"

_ANALYTICS = re.compile(
    r'\s*<script async src="https://www\.googletagmanager\.com/gtag/js\?id=[^"]*"></script>\s*'
    r"<script>\s*window\.dataLayer = window\.dataLayer \|\| \[\];.*?</script>",
    re.S,
)


def find_allure(start: Path | None = None) -> Path | None:
    """``node_modules/.bin/allure`` of the repository (or of the current folder), if installed."""
    for base in (start or REPO_ROOT, Path.cwd()):
        candidate = base / "node_modules" / ".bin" / "allure"
        if candidate.exists():
            return candidate
    return None


def allure_version(allure_bin: Path) -> str | None:
    """The installed ``allure`` package version, read from its package.json."""
    for folder in allure_bin.resolve().parents:
        pkg = folder / "package.json"
        try:
            data = json.loads(pkg.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == "allure" and data.get("version"):
            return str(data["version"])
    return None


def strip_analytics(html: str) -> str:
    """Remove the analytics tag Allure Report 3 puts in every page."""
    return _ANALYTICS.sub("", html, count=1)


def _has_results(folder: Path) -> bool:
    return any(folder.glob("*-result.json"))


def generate(
    allure_results_dir: str | Path,
    out_file: str | Path,
    *,
    report_name: str = "MSGin5G conformance (TS 24.538 6.2.2)",
    allure_bin: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    settings: dict[str, Any] | None = None,
    gate: GateResult | None = None,
) -> tuple[bool, str]:
    """Build the single-file HTML report; ``(True, what was written)`` or ``(False, why not)``.

    ``settings`` are more allurerc keys (:func:`.allure_extras.config`: variables, categories,
    grouping); ``gate`` is shown as the report's quality-gate result."""
    try:
        return _generate(
            Path(allure_results_dir), Path(out_file), report_name, allure_bin, timeout_s, settings or {}, gate
        )
    except Exception as exc:  # the contract: a report problem is a message, never a traceback
        return False, f"HTML report not generated: unexpected {type(exc).__name__}: {exc}"


def _generate(
    results: Path,
    out_file: Path,
    report_name: str,
    allure_bin: Path | None,
    timeout_s: float,
    settings: dict[str, Any],
    gate: GateResult | None,
) -> tuple[bool, str]:
    node = shutil.which("node")
    if node is None:
        return False, (
            "HTML report not generated: Node.js is not installed (no 'node' on PATH); "
            f"install Node 20+ and {INSTALL_HINT}"
        )
    binary = allure_bin if allure_bin is not None else find_allure()
    if binary is None or not binary.exists():
        where = binary if binary is not None else REPO_ROOT / "node_modules" / ".bin" / "allure"
        return False, (
            f"HTML report not generated: the 'allure' npm package is not installed ({where} missing); {INSTALL_HINT}"
        )
    if not results.is_dir() or not _has_results(results):
        return False, f"HTML report not generated: no Allure results (*-result.json) in {results}"
    version = allure_version(binary) or "?"
    with tempfile.TemporaryDirectory(prefix="msgin5g-allure-") as tmp:
        work = Path(tmp)
        out_dir = work / "out"
        config: dict[str, Any] = {
            "name": report_name,
            "plugins": {"awesome": {"options": {"singleFile": True}}},
            **settings,
            "output": str(out_dir),
        }
        config_file = work / "allurerc.json"
        config_file.write_text(json.dumps(config, indent=1), encoding="utf-8")
        cmd = [
            node,
            str(binary.resolve()),
            "generate",
            str(results.resolve()),
            "--config",
            str(config_file),
            "--output",
            str(out_dir),
        ]
        if gate is not None:  # allure generate restores this state: our gate as its quality gate
            cmd += ["--dump", str(allure_extras.write_gate_dump(work / "gate.zip", gate))]
        env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
        try:
            proc = subprocess.run(
                cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return False, f"HTML report not generated: allure generate did not finish within {timeout_s:g} s"
        except OSError as exc:
            return False, f"HTML report not generated: cannot run {binary}: {exc}"
        index = out_dir / "index.html"
        if proc.returncode != 0 or not index.is_file():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:]) or "no output"
            return False, f"HTML report not generated: allure {version} exited with {proc.returncode}: {tail}"
        html = strip_analytics(index.read_text(encoding="utf-8"))
        html = html.replace("</head>", allure_extras.HIDE_CSS + "</head>", 1)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(html, encoding="utf-8")
    size = out_file.stat().st_size
    return True, f"wrote {out_file} ({size // 1024} KiB, single file, Allure Report {version})"
