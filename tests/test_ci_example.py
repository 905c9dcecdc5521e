"""docs/ci-example.yml fails the job on any run status but 0, and lets waivers through.

The workflow's run step is executed as GitHub Actions would (bash, ``-e``, in a checkout-like
sandbox) against a faulty relay: without a waiver the job fails (status 1: the gate); with a
waiver covering the broken requirement it passes (status 0, the cases shown as WAIVED); a run
that breaks (an unknown SUT: status 2) fails it whatever the gate would say.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

WORKFLOW = ROOT / "docs" / "ci-example.yml"
STEP = "Run the conformance suite and the gate"
LINKS = (".venv", "Makefile", "pyproject.toml", "conftest.py", "testcases", "examples", "scripts", "package.json")
TIMEOUT_S = 600


def step_script() -> str:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    (job,) = doc["jobs"].values()
    (step,) = [s for s in job["steps"] if s.get("name") == STEP]
    return str(step["run"])


def run_step(sandbox: Path, sut: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUT": sut, "WAIVERS": "conformance-waivers.yaml"}
    return subprocess.run(
        ["bash", "-e", "-c", step_script()],
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    if shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("needs make and the project's .venv (make test sets both up)")
    for name in LINKS:
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def test_the_workflow_fails_on_a_failing_gate_and_passes_with_a_waiver(sandbox: Path) -> None:
    failed = run_step(sandbox, "faulty:drops-404")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out[-3000:]
    assert "FAIL RELAY-DL-003 (fail)" in out and "gate FAILED" in out
    (sandbox / "conformance-waivers.yaml").write_text(
        "waivers:\n"
        "  - requirement: REQ-RELAY-DL-1\n"
        "    reason: 4.04 relaying lands with the next firmware (test of the CI example)\n"
        "    expires: 2099-12-31\n",
        encoding="utf-8",
    )
    waived = run_step(sandbox, "faulty:drops-404")
    out = waived.stdout + waived.stderr
    assert waived.returncode == 0, out[-3000:]
    assert "WAIVED RELAY-DL-003 (fail)" in out and "gate PASSED" in out
    assert (sandbox / "gate.txt").read_text(encoding="utf-8").count("WAIVED ") == 4  # as the job summary shows
    assert len(list((sandbox / "reports" / "runs").iterdir())) == 2  # the evidence the job uploads


def test_the_workflow_fails_when_the_run_itself_breaks(sandbox: Path) -> None:
    broken = run_step(sandbox, "no-such-sut")
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "unknown SUT 'no-such-sut'" in broken.stderr


pytestmark = [pytest.mark.xdist_group("heavy")]
