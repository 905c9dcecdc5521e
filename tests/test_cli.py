"""Tests for the ``msgin5g-conformance`` command: lint, list and run.

Most run in-process through ``cli.main``; the ones that start a run, or must prove that no
traceback reaches the user, run the command as a subprocess (bounded by a timeout). The last
section runs every command shown in docs/writing-testcases.md and docs/profile.md, as written,
and checks the output the docs show under it.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import pytest

from msgin5g_conformance import cli
from msgin5g_conformance.world.profile import load_profile

REPO = Path(__file__).resolve().parents[1]
TESTCASES = REPO / "testcases"
SHIPPED = sorted(TESTCASES.rglob("*.yaml"))
SHIPPED_COUNT = 60  # 27 relay, 13 gateway, 7 constrained-ue, 13 coap
LIST_NEEDS_A_PROFILE = (
    "engine bug: cli.cmd_list loads each case with load_testcase(f) and no profile (list has no --profile), "
    "so GW-BULK-002's `nodes: cue1..cue{min_batch}` fails with 'cue{min_batch} needs a profile': "
    "list prints all but one of the shipped cases, reports GW-BULK-002 as broken and exits 1"
)
GOOD = TESTCASES / "relay" / "RELAY-DL-001.yaml"
DEFAULT_PROFILE = resources.files("msgin5g_conformance.data").joinpath("default-profile.yaml").read_text()
BAD_STRENGTH = "strength: expected one of shall, should, may, found number 3"
TIMEOUT_S = 120


def broken_copy(folder: Path, name: str = "BROKEN-001.yaml") -> tuple[Path, int]:
    """A copy of GOOD with a new id and `strength: 3`; returns its path and the line of the mistake."""
    text = GOOD.read_text(encoding="utf-8").replace("RELAY-DL-001", "BROKEN-001")
    assert text.count("strength: shall") == 1
    text = text.replace("strength: shall", "strength: 3")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    line = next(i for i, s in enumerate(text.splitlines(), start=1) if s.startswith("strength:"))
    return path, line


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: a separate process, output captured, bounded in time."""
    return subprocess.run(
        [sys.executable, "-m", "msgin5g_conformance.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


# --------------------------------------------------------------------------- #
# lint
# --------------------------------------------------------------------------- #


def test_lint_shipped_cases(capsys: pytest.CaptureFixture[str]) -> None:
    """`lint testcases` passes every shipped case (four folders) and says how many files it checked."""
    assert len(SHIPPED) == SHIPPED_COUNT
    assert cli.main(["lint", str(TESTCASES)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{SHIPPED_COUNT} file(s) checked, 0 with problems, 0 problem(s)"
    assert err == ""


@pytest.mark.parametrize(("role", "count"), [("relay", 27), ("gateway", 13), ("constrained-ue", 7), ("coap", 13)])
def test_lint_one_role_folder(role: str, count: int, capsys: pytest.CaptureFixture[str]) -> None:
    """`lint testcases/ROLE` checks that role's folder only."""
    assert cli.main(["lint", str(TESTCASES / role)]) == 0
    assert capsys.readouterr().out.strip() == f"{count} file(s) checked, 0 with problems, 0 problem(s)"


def test_lint_with_a_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lint --profile FILE` checks against that profile."""
    profile = tmp_path / "lab-profile.yaml"
    profile.write_text(DEFAULT_PROFILE.replace("name: default", "name: lab"), encoding="utf-8")
    assert cli.main(["lint", "--profile", str(profile), str(TESTCASES)]) == 0
    assert capsys.readouterr().out.strip() == f"{SHIPPED_COUNT} file(s) checked, 0 with problems, 0 problem(s)"


def test_lint_with_a_profile_checks_min_batch_ranges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`cue4..cue{min_batch}` is checked against --profile: min_batch 5 is clean, 3 reverses the range."""
    case = tmp_path / "cases" / "TEST-EACH-001.yaml"
    case.parent.mkdir()
    text = GOOD.read_text(encoding="utf-8").replace("RELAY-DL-001", "TEST-EACH-001")
    foreach = "  - foreach:\n      nodes: cue4..cue{min_batch}\n      steps: [{wait: {ms: 0}}]\n"
    text = text.replace("steps:\n", "steps:\n" + foreach, 1)
    case.write_text(text, encoding="utf-8")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "cue{min_batch}" in s)
    assert DEFAULT_PROFILE.count("min_batch: 50 ") == 1
    for min_batch, code in ((5, 0), (3, 1)):
        profile = tmp_path / f"batch-{min_batch}.yaml"
        profile.write_text(DEFAULT_PROFILE.replace("min_batch: 50 ", f"min_batch: {min_batch} "), encoding="utf-8")
        assert cli.main(["lint", "--profile", str(profile), str(case)]) == code
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "1 file(s) checked, 0 with problems, 0 problem(s)",
        "1 file(s) checked, 1 with problems, 1 problem(s)",
    ]
    assert err.strip() == (
        f"{case}:{line}: steps[0].foreach.nodes: expected a range within cue1..cue4000, "
        "found 'cue4..cue{min_batch}' (4..3)"
    )


def test_lint_with_a_broken_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken --profile makes lint exit 1 with the profile's located message."""
    profile = tmp_path / "broken-profile.yaml"
    profile.write_text(DEFAULT_PROFILE.replace("port: 65401 ", 'port: "x"'), encoding="utf-8")
    assert cli.main(["lint", "--profile", str(profile), str(TESTCASES)]) == 1
    line = next(i for i, s in enumerate(profile.read_text().splitlines(), 1) if s.startswith("port:"))
    assert capsys.readouterr().err.strip() == f"{profile}:{line}: port: expected an integer, found 'x'"


def test_lint_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lint` on a broken file exits 1 and prints the located message on stderr."""
    path, line = broken_copy(tmp_path)
    assert cli.main(["lint", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err.strip() == f"{path}:{line}: {BAD_STRENGTH}"
    assert out.strip() == "1 file(s) checked, 1 with problems, 1 problem(s)"


def test_lint_broken_file_as_a_command_has_no_traceback(tmp_path: Path) -> None:
    """Run as a process, a broken file gives exit 1, the located line and no Python traceback."""
    path, line = broken_copy(tmp_path / "testcases")
    proc = run_cli("lint", "testcases", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"testcases/BROKEN-001.yaml:{line}: {BAD_STRENGTH}" in proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr + proc.stdout
    assert path.is_file()


def test_lint_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lint` on a path that does not exist exits 1 and names the path."""
    missing = tmp_path / "nothing-here"
    assert cli.main(["lint", str(missing)]) == 1
    assert capsys.readouterr().err.strip() == f"{missing}: no such file or folder"


def test_lint_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lint` on a folder without YAML exits 1: checking nothing is not a success."""
    assert cli.main(["lint", str(tmp_path)]) == 1
    assert "no test case files found" in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# list
# --------------------------------------------------------------------------- #


def test_list_prints_every_id(capsys: pytest.CaptureFixture[str]) -> None:
    """`list PATH` prints one line per case file, id first, for every shipped case, and exits 0."""
    code = cli.main(["list", str(TESTCASES)])
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == [p.stem for p in SHIPPED]
    assert len(out.splitlines()) == SHIPPED_COUNT
    assert (code, err) == (0, "")


def test_list_line_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A list line is id, role, strength, requirements and title in fixed-width columns."""
    shutil.copy(GOOD, tmp_path / GOOD.name)
    assert cli.main(["list", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        "RELAY-DL-001     relay          shall  REQ-RELAY-DL-1,REQ-RELAY-TERM-1          "
        "A 2.05 for a linked client is relayed downlink with payload and content format intact\n"
    )


def test_list_defaults_to_the_shipped_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a path and without ./testcases, `list` reads the folder shipped beside the package."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [p.stem for p in SHIPPED]


def test_list_defaults_to_testcases_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a path, `list` reads ./testcases when there is one."""
    (tmp_path / "testcases").mkdir()
    shutil.copy(GOOD, tmp_path / "testcases" / GOOD.name)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["RELAY-DL-001"]


def test_list_role_filter(capsys: pytest.CaptureFixture[str]) -> None:
    """`list --role gateway` lists exactly the gateway cases and the gateway runs of the coap cases."""
    code = cli.main(["list", "--role", "gateway", str(TESTCASES)])
    out, err = capsys.readouterr()
    coap = [[f"{p.stem}[gateway]", "gateway"] for p in sorted((TESTCASES / "coap").glob("*.yaml"))]
    assert [line.split()[:2] for line in out.splitlines()] == coap + [
        [p.stem, "gateway"] for p in sorted((TESTCASES / "gateway").glob("*.yaml"))
    ]
    assert (code, err) == (0, "")


def test_list_role_filter_keeps_only_that_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`list --role constrained-ue` over relay and constrained-UE cases prints only the five CUE cases."""
    for role in ("relay", "constrained-ue"):
        shutil.copytree(TESTCASES / role, tmp_path / role)
    assert cli.main(["list", "--role", "constrained-ue", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()] == [
        [p.stem, "constrained-ue"] for p in sorted((TESTCASES / "constrained-ue").glob("*.yaml"))
    ]


def test_list_reports_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`list` still lists good cases, reports a broken one with file:line and exits 1."""
    shutil.copy(GOOD, tmp_path / GOOD.name)
    path, line = broken_copy(tmp_path)
    assert cli.main(["list", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert [s.split()[0] for s in out.splitlines()] == ["RELAY-DL-001"]
    assert err.strip() == f"{path}:{line}: {BAD_STRENGTH}"


# --------------------------------------------------------------------------- #
# run: usage errors (in-process, nothing is started)
# --------------------------------------------------------------------------- #


def test_run_unknown_sut(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --sut nonexistent` exits 2 and lists the SUT names that exist, reference among them."""
    assert cli.main(["run", "--sut", "nonexistent", str(GOOD)]) == 2
    err = capsys.readouterr().err
    assert "unknown SUT 'nonexistent'" in err
    assert "reference" in err
    assert "faulty:drops-404" in err


def test_run_broken_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`run --profile broken.yaml` exits 2 with the profile's located message."""
    profile = tmp_path / "broken.yaml"
    text = DEFAULT_PROFILE.replace('["2.05", "4.03", "4.04"]', '["2.05", "2.5"]')
    profile.write_text(text, encoding="utf-8")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "relayed_codes" in s)
    assert cli.main(["run", "--profile", str(profile), str(GOOD)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"msgin5g-conformance: error: {profile}:{line}: relay.relayed_codes[1]: "
        "expected text matching ^[2-5]\\.[0-3][0-9]$, found '2.5'"
    )


def test_run_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`run` on a path that does not exist exits 2 before starting anything."""
    missing = tmp_path / "nothing-here"
    assert cli.main(["run", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"msgin5g-conformance: error: no such file or folder: {missing}"


# --------------------------------------------------------------------------- #
# run: real runs (subprocess, cwd = tmp_path)
# --------------------------------------------------------------------------- #


def test_run_one_case_writes_pcap_and_reports(tmp_path: Path) -> None:
    """A run of one good case exits 0 and leaves its pcap, junit.xml, allure results and JSON result."""
    (tmp_path / "testcases").mkdir()
    shutil.copy(GOOD, tmp_path / "testcases" / GOOD.name)
    (tmp_path / "lab-profile.yaml").write_text(DEFAULT_PROFILE.replace("name: default", "name: lab"), "utf-8")
    proc = run_cli(
        "run",
        "testcases",
        "--sut",
        "reference",
        "--profile",
        "lab-profile.yaml",
        "--pcap-dir",
        "pcaps",
        "--reports-dir",
        "reports",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr

    pcap = tmp_path / "pcaps" / "RELAY-DL-001.pcap"
    assert pcap.is_file() and pcap.stat().st_size > 24  # more than the pcap file header

    reports = tmp_path / "reports" / "latest"  # the run's own directory
    assert reports.is_symlink() and reports.resolve().parent == (tmp_path / "reports" / "runs").resolve()
    suite = ET.parse(reports / "junit.xml").getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 1
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    properties = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert properties["verdict"] == "pass"
    assert properties["provisional"] == "addresses,readings,recipient_option"

    allure = [json.loads(p.read_text("utf-8")) for p in (reports / "allure-results").glob("*-result.json")]
    assert [r["status"] for r in allure] == ["passed"]
    tags = {label["value"] for label in allure[0]["labels"] if label["name"] == "tag"}
    assert {"provisional:addresses", "provisional:recipient_option", "profile:lab"} <= tags

    result = json.loads((reports / "results" / "RELAY-DL-001.json").read_text("utf-8"))
    assert result["id"] == "RELAY-DL-001"
    assert result["verdict"] == "pass"
    assert result["profile"] == "lab"
    assert result["profile_sha256"] == load_profile(tmp_path / "lab-profile.yaml").sha256
    assert result["provisional"] == ["addresses", "readings", "recipient_option"]
    assert result["sut"] == "reference"
    assert result["run"]["id"] == reports.resolve().name
    assert result["run"]["sut"]["name"] == "reference" and result["run"]["profile"]["name"] == "lab"
    assert json.loads((reports / "run.json").read_text("utf-8"))["status"] == 0
    assert (reports / "compliance.md").is_file() and "gate PASSED" in proc.stdout  # run writes matrix and gate


def test_run_folder_of_any_name(tmp_path: Path) -> None:
    """`run FOLDER` runs the cases in FOLDER even when it is not called `testcases`."""
    (tmp_path / "mycases").mkdir()
    shutil.copy(GOOD, tmp_path / "mycases" / GOOD.name)
    proc = run_cli("run", "mycases", "--pcap-dir", "pcaps", "--reports-dir", "reports", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "pcaps" / "RELAY-DL-001.pcap").is_file()


def test_run_with_a_broken_file_still_runs_the_good_one(tmp_path: Path) -> None:
    """One broken YAML beside a good one: non-zero exit, the broken one located, the good one still run."""
    folder = tmp_path / "testcases"
    folder.mkdir()
    shutil.copy(GOOD, folder / GOOD.name)
    broken, line = broken_copy(folder)
    proc = run_cli("run", "testcases", "--pcap-dir", "pcaps", "--reports-dir", "reports", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{broken}:{line}: {BAD_STRENGTH}" in output
    assert "Traceback" not in output
    assert (tmp_path / "pcaps" / "RELAY-DL-001.pcap").is_file(), output
    # the broken file's case is lost to the run: the gate counts it, though every loaded case passed
    assert f"FAIL {broken.name}" in output or "a test case file the run could not load" in output, output
    assert "gate FAILED: 1 case(s): 1 passed" in output, output


# --------------------------------------------------------------------------- #
# Every command the docs show, run as written
# --------------------------------------------------------------------------- #

DOCS = [REPO / "docs" / "writing-testcases.md", REPO / "docs" / "profile.md"]
GUIDE = DOCS[0].read_text(encoding="utf-8")
# The profile the docs call lab-profile.yaml: the default with the three values docs/profile.md changes.
LAB_EDITS = [
    ("name: default", "name: lab"),
    ("port_match: both ", "port_match: destination"),
    ("min_batch: 50 ", "min_batch: 10 "),
]
# docs/profile.md: broken-profile.yaml is the default with min_batch 0 and block_size 1000.
BROKEN_EDITS = [("min_batch: 50 ", "min_batch: 0 "), ("block_size: 1024 ", "block_size: 1000 ")]


def edited_profile(edits: list[tuple[str, str]]) -> str:
    text = DEFAULT_PROFILE
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(doc, command, output lines shown under it) for every `$ ` line of a console block in the docs."""
    found: list[tuple[str, str, list[str]]] = []
    for doc in DOCS:
        for block in re.findall(r"```console\n(.*?)```", doc.read_text(encoding="utf-8"), re.DOTALL):
            for line in block.splitlines():
                if line.startswith("$ "):
                    found.append((doc.name, line[2:], []))
                else:
                    found[-1][2].append(line)
    return found


def lay_out_shipped(folder: Path) -> None:
    """A working directory as the docs assume it: the shipped testcases/, lab-profile.yaml, broken-profile.yaml."""
    shutil.copytree(TESTCASES, folder / "testcases")
    (folder / "lab-profile.yaml").write_text(edited_profile(LAB_EDITS), encoding="utf-8")
    (folder / "broken-profile.yaml").write_text(edited_profile(BROKEN_EDITS), encoding="utf-8")


def lay_out_broken_case(folder: Path) -> None:
    """testcases/relay/RELAY-DL-010.yaml: the guide's worked example with `strength: must` and `code: "2.5"`."""
    example = GUIDE.split("```yaml\nid: RELAY-DL-004\n", 1)[1].partition("```")[0]
    text = "id: RELAY-DL-010\n" + example.replace("strength: shall", "strength: must", 1)
    text = text.replace('code: "2.05"', 'code: "2.5"', 1)
    (folder / "testcases" / "relay").mkdir(parents=True)
    (folder / "testcases" / "relay" / "RELAY-DL-010.yaml").write_text(text, encoding="utf-8")


class Scenario(NamedTuple):
    """How to run one documented command: working directory set-up, exit status, files it leaves."""

    set_up: Callable[[Path], None]
    status: int
    files: tuple[str, ...] = ()
    engine_bug: str | None = None


RUN_WITH_LAB_PROFILE = "msgin5g-conformance run testcases --sut reference --profile lab-profile.yaml --no-html"
SCENARIOS = {
    "msgin5g-conformance lint testcases": Scenario(lay_out_shipped, 0),
    "msgin5g-conformance lint testcases/relay/RELAY-DL-010.yaml": Scenario(lay_out_broken_case, 1),
    "msgin5g-conformance lint --profile lab-profile.yaml testcases": Scenario(lay_out_shipped, 0),
    "msgin5g-conformance list --role gateway testcases": Scenario(lay_out_shipped, 0, ()),
    "pytest testcases --sut reference --pcap-dir pcaps": Scenario(
        lay_out_shipped, 0, ("pcaps/RELAY-DL-001.pcap", "pcaps/GW-BULK-003.pcap", "pcaps/CUE-RSP-001.pcap")
    ),
    RUN_WITH_LAB_PROFILE: Scenario(
        lay_out_shipped,
        0,
        ("reports/latest/junit.xml", "reports/latest/results/GW-BULK-002.json", "pcaps/CUE-REQ-001.pcap"),
    ),
    "pytest testcases --sut faulty:drops-404 --pcap-dir pcaps": Scenario(
        lay_out_shipped, 1, ("pcaps/RELAY-DL-003.pcap",)
    ),
    "pytest testcases --profile lab-profile.yaml --pcap-dir pcaps -rs": Scenario(lay_out_shipped, 0),
    "msgin5g-conformance run testcases --profile broken-profile.yaml": Scenario(lay_out_shipped, 2),
}
DOCUMENTED = documented_commands()


def known_bug(command: str) -> list[pytest.MarkDecorator]:
    """A strict xfail for a documented command that a known engine bug breaks."""
    scenario = SCENARIOS.get(command)
    if scenario is None or scenario.engine_bug is None:
        return []
    return [pytest.mark.xfail(strict=True, reason=scenario.engine_bug)]


def as_pattern(shown: str) -> re.Pattern[str]:
    """A shown output line as a pattern: `...` stands for anything, the rest is literal."""
    return re.compile(".*".join(re.escape(part) for part in shown.split("...")))


def test_docs_show_commands() -> None:
    """Both docs show commands in console blocks, and every one has a scenario below."""
    assert {doc for doc, _, _ in DOCUMENTED} == {"writing-testcases.md", "profile.md"}
    assert sorted({command for _, command, _ in DOCUMENTED} - set(SCENARIOS)) == []


def test_docs_name_no_command_outside_console_blocks() -> None:
    """Commands quoted in running text (`msgin5g-conformance ...`, `pytest ...`) are ones a console block shows."""
    shown = {command for _, command, _ in DOCUMENTED}
    for doc in DOCS:
        prose = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
        quoted = re.findall(r"`((?:msgin5g-conformance|pytest) [^`]*)`", prose)
        assert sorted(set(quoted) - shown) == [], doc.name


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        pytest.param(
            command,
            shown,
            id=f"{doc}: {command}",
            marks=known_bug(command),
        )
        for doc, command, shown in DOCUMENTED
    ],
)
def test_documented_command(tmp_path: Path, command: str, shown: list[str]) -> None:
    """The command runs as the doc shows it: its exit status, the output lines shown (in order), its files."""
    set_up, status, files, _ = SCENARIOS[command]
    set_up(tmp_path)
    program, *args = shlex.split(command)
    module = {"msgin5g-conformance": "msgin5g_conformance.cli", "pytest": "pytest"}[program]
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = proc.stderr.splitlines() + proc.stdout.splitlines()
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    remaining = iter(output)
    for line in shown:
        pattern = as_pattern(line)
        assert any(pattern.fullmatch(out) for out in remaining), f"not shown in this order: {line!r}\n" + "\n".join(
            output
        )
    for name in files:
        assert (tmp_path / name).is_file(), name
