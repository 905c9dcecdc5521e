"""The suite's own speed targets (issue 13, item 2), measured and printed next to their targets.

- ``make conformance``'s test time: `msgin5g-conformance run --sut reference` of every shipped case,
  pytest's own "in N s" figure (the cases, the late windows and timers included) and the wall time
  of the whole command (start-up, matrix, summary and gate; the HTML report left out with
  --no-html, as its size and Node's start-up are not the suite's speed). Target: test time <= 5 s.
- ``run --role relay`` wall time including start-up. Target: <= 1 s.
- with --make-test, the harness's own test suite as ``make unit`` runs it. Target: <= 90 s.

Every figure comes with the load average (1 min) before and after, so that a figure taken on a
busy machine is seen as such. Each run is a process of its own with a time limit.

    .venv/bin/python benchmarks/bench_suite.py [--runs 3] [--make-test]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600
TEST_TIME = re.compile(r" in (\d+(?:\.\d+)?)s")


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def timed(argv: list[str], cwd: Path) -> tuple[float, float | None, str]:
    """Wall time, pytest's own test time (when it printed one) and the tail of the output."""
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    wall = time.perf_counter() - began
    found = TEST_TIME.findall(done.stdout)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited with status {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return wall, float(found[-1]) if found else None, done.stdout


def figure(name: str, values: list[float], target: float) -> str:
    med = statistics.median(values)
    verdict = "meets" if med <= target else "MISSES"
    return (
        f"{name}: median {med:.2f} s (min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs); "
        f"target <= {target:g} s: {verdict}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, choices=range(1, 21), metavar="N")
    p.add_argument("--make-test", action="store_true", help="also time the harness's own test suite (about 6 min)")
    a = p.parse_args()
    cli = [sys.executable, "-m", "msgin5g_conformance.cli", "run", "--sut", "reference", "--no-html", "-q"]
    print(f"load average before: {load()} (cores: {os.cpu_count()})")
    with tempfile.TemporaryDirectory(prefix="msgin5g-bench-suite-") as tmp:
        suite_test, suite_wall, relay_wall = [], [], []
        for _ in range(a.runs):
            wall, test, _out = timed([*cli, str(ROOT / "testcases")], Path(tmp))
            suite_wall.append(wall)
            if test is not None:
                suite_test.append(test)
            wall, _test, _out = timed([*cli, "--role", "relay", str(ROOT / "testcases")], Path(tmp))
            relay_wall.append(wall)
        if suite_test:
            print(figure("make conformance test time (pytest, every shipped case)", suite_test, 5))
        med = statistics.median(suite_wall)
        print(f"make conformance wall time without the HTML report: median {med:.2f} s (no target)")
        print(figure("run --role relay wall time incl. start-up", relay_wall, 1))
        if a.make_test:
            unit = [
                sys.executable,
                "-m",
                "pytest",
                "tests",
                "-q",
                "-n",
                "4",
                "--dist",
                "loadgroup",
                "-p",
                "no:cacheprovider",
            ]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, test, _out = timed(unit, ROOT)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(figure("make test (the unit suite, 4 workers)", [test or wall], 90))
            cores = os.cpu_count() or 1
            print(
                f"make test CPU time (every worker and child, user + sys): {cpu:.0f} s; "
                f"on {cores} cores no schedule can take less than {cpu / cores:.0f} s"
            )
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
