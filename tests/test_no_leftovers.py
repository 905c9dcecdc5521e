"""Nothing outlives the run: SIGTERM, SIGINT and a CI-style time-out to the harness stop the SUT,
its process group and what it started outside that group; the run exits non-zero and keeps the
results of the cases that finished (issue: nothing lost, nothing hangs, finding 5).

The SUT here is as stubborn as one can be without root: it ignores SIGTERM, SIGINT and SIGHUP,
never exits when its stdin closes or on ``shutdown``, and starts a grandchild in a session of its
own (out of reach of a process-group kill) that ignores SIGTERM too. Before this change a SIGTERM
to the harness left both running with their sockets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sut_adapters import process

from .conftest import ROOT, TESTCASES

STUBBORN_SUT = r"""
import json, os, signal, subprocess, sys, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
here = os.path.dirname(os.path.abspath(__file__))
escaped = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
    start_new_session=True,
)
with open(os.path.join(here, "pids.txt"), "a") as fh:
    fh.write(f"{os.getpid()} {escaped.pid}\n")
def say(msg):
    sys.stdout.write(json.dumps({"v": 1, **msg}) + "\n")
    sys.stdout.flush()
say({"event": "ready", "implementation": {"name": "stubborn"}, "roles": ["relay"], "capabilities": ["link-control"]})
for line in sys.stdin:
    msg = json.loads(line)
    if msg["op"] != "shutdown":  # shutdown is never answered: the harness must kill it
        say({"id": msg["id"], "ok": True, "result": {}})
while True:  # stdin closed: carry on regardless
    time.sleep(1)
"""


def write_sut(folder: Path) -> Path:
    (folder / "stubborn.py").write_text(STUBBORN_SUT, encoding="utf-8")
    profile = folder / "stubborn.yaml"
    profile.write_text(
        f"name: stubborn\ncommand: [{sys.executable}, stubborn.py]\ncontrol: stdio\nroles: [relay]\n"
        "capabilities: [link-control]\ntimeouts: {ready_s: 20, op_s: 2}\n",
        encoding="utf-8",
    )
    return profile


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for(what: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not what():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)


def start_run(tmp_path: Path, prefix: list[str] | None = None) -> subprocess.Popen[str]:
    sut = write_sut(tmp_path)
    cmd = [
        *(prefix or []),
        sys.executable,
        "-m",
        "msgin5g_conformance.cli",
        "run",
        "--sut",
        str(sut),
        "--reports-dir",
        str(tmp_path / "reports"),
        "--pcap-dir",
        str(tmp_path / "pcaps"),
        str(TESTCASES / "relay"),
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def sut_pids(tmp_path: Path) -> list[int]:
    path = tmp_path / "pids.txt"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def results(tmp_path: Path) -> list[dict[str, object]]:
    folder = tmp_path / "reports" / "latest" / "results"
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in folder.glob("*.json") if not p.name.startswith("_")]


@pytest.mark.xdist_group("heavy")
@pytest.mark.parametrize(("how", "statuses"), [("SIGTERM", {143}), ("SIGINT", {130}), ("timeout", {124})])
def test_nothing_outlives_the_run(how: str, statuses: set[int], tmp_path: Path) -> None:
    prefix = ["timeout", "-s", "TERM", "8"] if how == "timeout" else None
    run = start_run(tmp_path, prefix)
    try:
        wait_for(lambda: len(sut_pids(tmp_path)) >= 2 and results(tmp_path), 60)
        pids = sut_pids(tmp_path)
        assert all(alive(p) for p in pids)
        if how != "timeout":
            run.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
    assert run.returncode in statuses, (run.returncode, err[-2000:])
    assert "Traceback" not in err
    left = [p for p in sut_pids(tmp_path) if alive(p)]
    assert left == [], f"{how}: still running: {left}"
    finished = results(tmp_path)
    assert finished and all(r.get("id") and r.get("verdict") for r in finished)  # kept: what finished
    # the matrix and the gate of what finished are written too (the gate fails: cases are missing)
    assert (tmp_path / "reports" / "latest" / "compliance.json").is_file(), err[-2000:]


def test_a_marked_descendant_is_found_and_killed(tmp_path: Path) -> None:
    """The mark in the environment reaches a process that left the group; kill_marked ends it."""
    mark = f"test.{os.getpid()}.{time.monotonic_ns()}"
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, process.MARK_VARIABLE: mark},
        start_new_session=True,
    )
    try:
        wait_for(lambda: child.pid in process.marked_processes(mark), 10)
        assert process.kill_marked(mark) >= 1
        assert child.wait(10) == -signal.SIGKILL
        assert process.marked_processes(mark) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_the_sut_dies_with_the_thread_that_started_it(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a SUT whose harness is SIGKILLed (nothing can clean up) gets SIGKILL."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from sut_adapters import process\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'], preexec_fn=process._die_with_parent)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n",
        encoding="utf-8",
    )
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not alive(child), 10)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_the_sut_log_kept_is_bounded_in_bytes() -> None:
    """50 MiB of stderr (lines of 1 MiB, then many short ones) keeps at most LOG_BYTES of it plus
    cut markers, and the excerpt says how much was dropped (it used to keep 2,000 lines of up to
    1 MiB each: a 50 MiB log made a 74 MB HTML report)."""
    evidence = process._Evidence()
    mark = evidence.mark()
    line = "x" * (1 << 20)
    for _ in range(50):
        evidence.add("stderr", line)
    for i in range(5000):
        evidence.add("stderr", f"short line {i}")
    lines = evidence.since(mark)
    held = sum(len(x) for x in lines)
    assert held <= process.LOG_BYTES + 200, held
    assert lines[0].startswith("[harness] SUT output bounded to"), lines[0]
    assert "earlier line(s) dropped" in lines[0]
    assert lines[-1] == "short line 4999"
    fresh = process._Evidence()
    fresh.add("stderr", "y" * 10_000)
    (note, cut) = fresh.since(0)
    assert "10000 character(s) not kept" not in note and "6000 character(s) not kept" in note
    assert cut.endswith("... (line cut: 10000 characters)") and len(cut) < process.LINE_KEPT + 50
