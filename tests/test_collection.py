"""What a run collects is what it judges, once (issue: nothing lost; bounded loading).

Reproducers: a symlinked folder loop made ``run`` execute each case 41 times (pytest followed the
link until ELOOP); two files with one id ran both and the second result overwrote the first, so a
failing case could vanish with the gate green.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from msgin5g_conformance.spec.loader import discover

from .conftest import TESTCASES
from .test_cli import run_cli

DL_001 = TESTCASES / "relay" / "RELAY-DL-001.yaml"
OUT = ("--reports-dir", "reports", "--pcap-dir", "pcaps")


def folder_with_loop(tmp_path: Path) -> Path:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "RELAY-DL-001.yaml").write_bytes(DL_001.read_bytes())
    os.symlink(cases, cases / "loop")  # cases/loop/loop/loop/... back to itself
    os.symlink(cases / "RELAY-DL-001.yaml", cases / "same-file.yaml")  # one file, two names
    return cases


def test_discover_follows_no_loop_and_loads_a_file_once(tmp_path: Path) -> None:
    cases = folder_with_loop(tmp_path)
    assert discover([cases]) == [cases / "RELAY-DL-001.yaml"]
    assert discover([cases, cases / "RELAY-DL-001.yaml"]) == [cases / "RELAY-DL-001.yaml"]


@pytest.mark.xdist_group("heavy")
def test_a_run_judges_each_case_once_through_links_and_loops(tmp_path: Path) -> None:
    cases = folder_with_loop(tmp_path)
    lint = run_cli("lint", str(cases), cwd=tmp_path)
    assert lint.returncode == 0 and "1 file(s) checked" in lint.stdout, lint.stdout + lint.stderr
    run = run_cli(
        "run", "--sut", "reference", "--reports-dir", "reports", "--pcap-dir", "pcaps", str(cases), cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
    collected = json.loads((tmp_path / "reports" / "latest" / "results" / "_collected.json").read_text())
    assert [c["id"] for c in collected["cases"]] == ["RELAY-DL-001"]


@pytest.mark.xdist_group("heavy")
def test_two_files_with_one_id_are_refused_at_collection(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "a.yaml").write_bytes(DL_001.read_bytes())
    (cases / "b.yaml").write_text(DL_001.read_text() + "# an edited copy that kept the id\n")
    run = run_cli(
        "run", "--sut", "reference", "--reports-dir", "reports", "--pcap-dir", "pcaps", str(cases), cwd=tmp_path
    )
    out = run.stdout + run.stderr
    assert run.returncode not in (0, 1), out[-2000:]
    assert f"{cases / 'b.yaml'}:1: id: 'RELAY-DL-001' is also the id of {cases / 'a.yaml'}:1" in out, out[-2000:]
    assert "Traceback" not in out
    assert not list((tmp_path / "reports" / "latest" / "results").glob("RELAY-*.json"))  # nothing ran


@pytest.mark.xdist_group("heavy")
def test_several_files_of_one_folder_on_the_command_line_all_run(tmp_path: Path) -> None:
    """`run A.yaml B.yaml C.yaml` of one folder runs all three (pytest asks for the same file
    once per argument; only a second path to one file, through a link, is skipped)."""
    relay = DL_001.parent
    names = ("RELAY-DL-001", "RELAY-DL-002", "RELAY-DL-003")
    run = run_cli("run", "--sut", "reference", "--no-html", *(str(relay / f"{n}.yaml") for n in names), cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-2000:]
    assert "3 passed" in out and "not found" not in out
