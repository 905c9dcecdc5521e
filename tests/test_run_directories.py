"""Each run's evidence belongs to that run: its own directory, matrix, captures and identity.

Two runs one after the other (the reference, then the external example SUT) leave two run
directories under ``reports/runs/``; each matrix hashes exactly the captures its own results
name, none of the other run's; each names its SUT by name and version (the path only as a
detail); ``reports/latest`` and ``pcaps`` point at the newer run; results of another run mixed
into a run's results fail its gate and warn in its matrix.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from msgin5g_conformance.analyze.roles import load_roles
from msgin5g_conformance.report import rundir

from .conftest import ROOT

TIMEOUT_S = 300
ROLE = "constrained-ue"  # the smallest suite that both SUTs play (7 cases and the coap suite)


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msgin5g_conformance.cli", "run", str(ROOT / "testcases"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[str]]:
    here = tmp_path_factory.mktemp("two-runs")
    shutil.copytree(ROOT / "examples", here / "examples")
    single = here / "examples" / "example-sut.yaml"  # one process: the run must stay sequential
    single.write_text(re.sub(r"(?m)^instances: .*$", "", single.read_text(encoding="utf-8")), encoding="utf-8")
    outputs = []
    for sut in ("reference", "examples/example-sut.yaml"):
        done = run(here, "--sut", sut, "--role", ROLE, "--no-html", "-q")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert "Traceback" not in done.stdout + done.stderr
        outputs.append(done.stdout)
    runs = sorted((here / "reports" / "runs").iterdir())
    return here, runs, outputs


def test_two_runs_leave_two_run_directories(two_runs: tuple[Path, list[Path], list[str]]) -> None:
    here, runs, outputs = two_runs
    assert len(runs) == 2
    assert runs[0].name.endswith("-reference") and runs[1].name.endswith("-example-sut")
    assert (here / "reports" / "latest").resolve() == runs[1].resolve()
    assert (here / "pcaps").is_symlink() and (here / "pcaps").resolve() == (runs[1] / "pcaps").resolve()
    for folder, out in zip(runs, outputs, strict=True):
        assert f"run {folder.name}:" in out and "gate PASSED" in out
        for name in ("run.json", "junit.xml", "compliance.json", "compliance.md", "summary.html", "results"):
            assert (folder / name).exists(), f"{folder}/{name}"
        assert json.loads((folder / "run.json").read_text())["status"] == 0


def test_each_matrix_hashes_only_its_own_captures(two_runs: tuple[Path, list[Path], list[str]]) -> None:
    _, runs, _ = two_runs
    for folder in runs:
        matrix = json.loads((folder / "compliance.json").read_text())
        own = {p.name: sha256(p) for p in (folder / "pcaps").glob("*.pcap")}
        assert own, folder
        hashed = {p["file"]: p["sha256"] for p in matrix["identity"]["pcaps"]}
        assert hashed == own  # every capture of the run, and nothing else
        records = [json.loads(p.read_text()) for p in (folder / "results").glob("[!_]*.json")]
        named = {Path(r["pcap"]).name for r in records if r["pcap"]}
        assert set(hashed) == named
        assert not matrix["warnings"], matrix["warnings"]
    # the two runs captured the same cases, differently: no hash of one appears in the other
    first = {p["sha256"] for p in json.loads((runs[0] / "compliance.json").read_text())["identity"]["pcaps"]}
    second = {p["sha256"] for p in json.loads((runs[1] / "compliance.json").read_text())["identity"]["pcaps"]}
    assert not first & second


def test_each_run_names_its_sut_by_name_and_version(two_runs: tuple[Path, list[Path], list[str]]) -> None:
    _, runs, _ = two_runs
    reference = json.loads((runs[0] / "compliance.json").read_text())["identity"]
    external = json.loads((runs[1] / "compliance.json").read_text())["identity"]
    assert reference["sut"] == "reference" and reference["sut_detail"]["kind"] == "reference"
    assert external["sut"] == "example-sut 1.0"
    assert external["sut_detail"]["confirmed"] == {"name": "example-sut", "version": "1.0"}  # its ready event
    assert external["sut_detail"]["source"] == "examples/example-sut.yaml"
    assert external["sut_detail"]["description"].startswith("Example MSGin5G Relay UE")  # the SUT profile's
    collected = json.loads((runs[1] / "results" / "_collected.json").read_text())["cases"]
    files = {c["file"] for c in collected}
    assert len(external["testcases"]) == len(files)  # each file once, under its own id (COAP-X, not COAP-X[role])
    assert all("[" not in f["id"] for f in external["testcases"])
    markdown = (runs[1] / "compliance.md").read_text()
    head = markdown.split("## Requirements", 1)[0]
    assert head.index("| SUT | example-sut 1.0 |") < head.index("| SUT profile file | examples/example-sut.yaml |")
    for r in map(json.loads, map(Path.read_text, (runs[1] / "results").glob("[!_]*.json"))):
        assert r["sut"] == "example-sut 1.0" and r["run"]["id"] == runs[1].name
        assert r["run"]["sut"]["version"] == "1.0" and r["run"]["profile"]["readings"]
        assert "sut_log" in r  # the SUT log excerpt travels with the result
    summary = (runs[1] / "summary.html").read_text()
    assert "example-sut 1.0" in summary and "GATE PASSED" in summary


def test_a_result_of_another_run_fails_the_gate(two_runs: tuple[Path, list[Path], list[str]], tmp_path: Path) -> None:
    """A result copied from the other run (same case id) is caught: the gate fails naming both
    runs, and the matrix warns."""
    _, runs, _ = two_runs
    mixed = tmp_path / "mixed"
    shutil.copytree(runs[1], mixed)
    stranger = next((runs[0] / "results").glob("CUE-*.json"))
    shutil.copy(stranger, mixed / "results" / stranger.name)
    done = subprocess.run(
        [sys.executable, "-m", "msgin5g_conformance.cli", "report", "--run", str(mixed), "--no-html"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert f"FAIL {stranger.stem}: the result belongs to run {runs[0].name}, not to this run ({runs[1].name})" in out
    assert f"warning: {stranger.stem}: result of another run ({runs[0].name}), not of {runs[1].name}" in out
    assert "warning: " in out and "run against SUT 'reference', not 'example-sut 1.0'" in out
    assert "gate FAILED" in out and "Traceback" not in out


def test_run_ids_sort_by_time_and_name_the_sut(tmp_path: Path) -> None:
    first = rundir.create(tmp_path, "20261202T000000Z-x")
    second = rundir.create(tmp_path, "20261202T000000Z-x")  # the same second: a suffix, not a clash
    assert (first.name, second.name) == ("20261202T000000Z-x", "20261202T000000Z-x-2")
    assert rundir.new_run_id("examples/acme v2.yaml").endswith("-examples-acme-v2.yaml")


def test_an_old_flat_pcaps_folder_is_replaced_by_the_link(tmp_path: Path) -> None:
    """pcaps/ of an earlier version (captures only) becomes the link; a folder with other files
    is left alone, with a warning."""
    captures = tmp_path / "run" / "pcaps"
    captures.mkdir(parents=True)
    old = tmp_path / "pcaps"
    old.mkdir()
    (old / "RELAY-DL-001.pcap").write_bytes(b"stale")
    assert rundir.link_captures(old, captures) is None
    assert old.is_symlink() and old.resolve() == captures.resolve()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    warning = rundir.link_captures(mine, captures)
    assert warning and "not captures" in warning and (mine / "notes.txt").is_file()


# Whole-suite subprocess runs: with the other heavy tests on one xdist worker.
pytestmark = [pytest.mark.xdist_group("heavy")]


def test_cases_run_concurrently_with_the_verdicts_of_a_sequential_run(tmp_path: Path) -> None:
    """Against the embedded SUT (it opens several cases at once) the gateway suite runs eight
    cases at a time by default; the verdicts are those of a run one case at a time."""
    verdicts = []
    for extra in ((), ("--concurrency", "1")):
        done = run(tmp_path, "--sut", "faulty:gw-drops-vendor", "--role", "gateway", "--no-html", "-q", *extra)
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]  # GW-BULK-001 fails
        latest = tmp_path / "reports" / "latest"
        records = [json.loads(p.read_text()) for p in (latest / "results").glob("[!_]*.json")]
        verdicts.append({r["id"]: r["verdict"] for r in records})
        assert {r["run"]["concurrency"] for r in records} == {int(extra[1]) if extra else 8}
    assert verdicts[0] == verdicts[1] and verdicts[0]["GW-BULK-001"] == "fail"


def test_a_single_instance_sut_runs_one_case_at_a_time(two_runs: tuple[Path, list[Path], list[str]]) -> None:
    _, runs, _ = two_runs
    for folder, expected in zip(runs, (8, 1), strict=True):
        record = json.loads(next((folder / "results").glob("CUE-*.json")).read_text())
        assert record["run"]["concurrency"] == expected


def report(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msgin5g_conformance.cli", "report", "--no-html", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_shards_of_one_sut_merge_into_one_report(two_runs: tuple[Path, list[Path], list[str]], tmp_path: Path) -> None:
    """Runs of one SUT split by role (as CI jobs or machines would) merge into one run directory:
    every shard's results and captures, one matrix and one gate, the shards named."""
    _, runs, _ = two_runs
    done = run(tmp_path, "--sut", "reference", "--role", "gateway", "--no-html", "-q")
    assert done.returncode == 0, done.stdout[-2000:]
    gateway = (tmp_path / "reports" / "latest").resolve()
    merged = report(tmp_path, "--run", str(runs[0]), "--run", str(gateway))
    out = merged.stdout + merged.stderr
    assert merged.returncode == 0, out[-3000:]
    target = (tmp_path / "reports" / "latest").resolve()
    assert target.name.endswith("-reference-merged") and f"merged 2 runs into reports/runs/{target.name}" in out
    shards = [runs[0], gateway]
    counts = [len(list((s / "results").glob("[!_]*.json"))) for s in shards]
    assert f"gate PASSED: {sum(counts)} case(s)" in out
    matrix = json.loads((target / "compliance.json").read_text())
    assert matrix["identity"]["run"] == target.name and not matrix["warnings"], matrix["warnings"]
    own = {p.name: sha256(p) for s in shards for p in (s / "pcaps").glob("*.pcap")}
    assert {p["file"]: p["sha256"] for p in matrix["identity"]["pcaps"]} == own
    assert json.loads((target / "run.json").read_text())["merged_from"] == [s.name for s in shards]
    # the shards' role maps, merged: a topology for every capture (analyze re-judges the whole run)
    assert {t.capture for t in load_roles(target / "pcaps" / "roles.yaml").topologies} == set(own)


def test_runs_of_different_suts_or_overlapping_runs_do_not_merge(two_runs: tuple[Path, list[Path], list[str]]) -> None:
    here, runs, _ = two_runs
    other_sut = report(here, "--run", str(runs[0]), "--run", str(runs[1]))
    assert other_sut.returncode == 2
    assert "a run of SUT 'example-sut 1.0', not 'reference'" in other_sut.stderr
    twice = report(here, "--run", str(runs[0]), "--run", str(runs[0]))
    assert twice.returncode == 2 and "ran in both" in twice.stderr
    assert "Traceback" not in other_sut.stderr + twice.stderr
    assert (here / "reports" / "latest").resolve() == runs[1].resolve()  # nothing was made of them
