"""docs/vendor-guide.md and docs/upper-tester-protocol.md say only what works.

Every command in the guide's ``sh`` blocks is run by a test, as shown: the two full runs of the
example SUT by tests/test_example_sut.py (checked here to be the same commands), every other one
here, in order, in a sandbox that looks like a checkout (symlinks into the repository), so that
``make conformance`` leaves its pcaps/ and reports/ in the sandbox. The guide's YAML is a valid SUT
profile and every JSON example of the protocol document is a valid protocol message.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from msgin5g_conformance import schemacheck, yamlsource
from sut_adapters.process import message_names, message_problem

from .conftest import ROOT
from .test_example_sut import EXAMPLE_RUN, FAULTY_RUN

GUIDE = ROOT / "docs" / "vendor-guide.md"
PROTOCOL_DOC = ROOT / "docs" / "upper-tester-protocol.md"
# Commands of the guide run by another test (the same argv, with output folders added).
RUN_ELSEWHERE = {
    " ".join(EXAMPLE_RUN): "tests/test_example_sut.py::test_example_sut_passes_every_case",
    " ".join(FAULTY_RUN): "tests/test_example_sut.py::test_faulty_example_fails_the_expected_cases",
}
SANDBOX_LINKS = (
    ".venv",
    "Makefile",
    "pyproject.toml",
    "conftest.py",
    "testcases",
    "examples",
    "scripts",
    "package.json",
    "package-lock.json",
    "node_modules",
)
COMMAND_TIMEOUT_S = 600


def code_blocks(path: Path, language: str) -> list[str]:
    """The bodies of the fenced code blocks of one language in a Markdown file."""
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S)


def guide_commands() -> list[str]:
    lines = [line.strip() for block in code_blocks(GUIDE, "sh") for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_guide_commands_are_all_exercised() -> None:
    """Each command of the guide is either run below or is exactly one run by test_example_sut."""
    commands = guide_commands()
    assert commands[0] == "make conformance"
    assert set(RUN_ELSEWHERE) <= set(commands)
    for command in commands:
        for path in re.findall(r"--sut (\S+)", command):
            assert (ROOT / path).is_file(), command


def test_guide_commands_run_as_shown(tmp_path: Path) -> None:
    """In a fresh checkout, the guide's commands succeed in order and print what the guide says."""
    if shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("needs make and the project's .venv (make test sets both up)")
    for name in SANDBOX_LINKS:
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)

    # From the sandbox, an out-of-date set-up would be reinstalled into the shared .venv and
    # node_modules; `make test` brings both up to date first (without npm the Node step is a no-op).
    def fresh(stamp: str) -> bool:
        return subprocess.run(["make", "-q", stamp], cwd=tmp_path, timeout=60, check=False).returncode == 0

    if not fresh(".venv/.installed") or not (fresh("node_modules/.installed") or shutil.which("npm") is None):
        pytest.skip("the .venv or node_modules set-up is out of date: run `make test` first")
    outputs: dict[str, str] = {}
    not_run: list[str] = []
    for command in guide_commands():
        if command in RUN_ELSEWHERE:
            continue
        if command.split()[0] == "tshark" and shutil.which("tshark") is None:
            not_run.append(command)
            continue
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs[command] = done.stdout
    assert "77 passed, 6 skipped" in outputs["make conformance"]  # as the guide says
    assert "drops-404" in outputs["python3 examples/example_sut.py --help"]
    result = json.loads(outputs[".venv/bin/python -m json.tool reports/latest/results/RELAY-DL-003.json"])
    assert result["id"] == "RELAY-DL-003" and result["verdict"] == "pass"
    tshark = next((out for cmd, out in outputs.items() if cmd.startswith("tshark")), None)
    if not_run:
        pytest.skip(f"tshark is not installed, so this was not run: {not_run}")
    assert tshark is not None and "CoAP" in tshark and "4.04 Not Found" in tshark


def test_guide_sut_profile_is_valid() -> None:
    """The SUT profile shown in the guide passes the SUT profile schema."""
    (block,) = code_blocks(GUIDE, "yaml")
    located = yamlsource.load_text(block, "docs/vendor-guide.md")
    schemacheck.check(located, "sut-profile.schema.json")
    assert located.data["control"] == "stdio"


def test_protocol_doc_examples_are_valid_messages() -> None:
    """Every JSON example in the protocol document is a valid message, and every message has one."""
    seen: set[str] = set()
    for block in code_blocks(PROTOCOL_DOC, "json"):
        message = json.loads(block)
        assert message_problem(message, "index") is None, message
        if "op" in message:
            seen.add(message["op"])
        elif "event" in message:
            seen.add(message["event"])
        else:
            seen.add("response-ok" if message["ok"] else "response-error")
    assert seen == {name for group in message_names().values() for name in group}


# Heavy subprocess work (a browser, whole-suite runs, Node): one xdist worker runs all of it in
# turn (make runs pytest with --dist loadgroup), so it never loads both cores at once while the
# timing-sensitive self-tests run on the other.
pytestmark = [*globals().get("pytestmark", []), pytest.mark.xdist_group("heavy")]
