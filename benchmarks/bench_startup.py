"""Start-up of a conformance run: `msgin5g-conformance run` of one case that does not apply.

The case is judged not applicable before any datagram is sent, so the figure is what every run
pays before its first case: interpreter, imports, pytest and its plugins, collection, the
session, and writing the matrix, the summary and the gate (no HTML). It prints the median and
the range of N runs (a process each), bounded in count and time.

    .venv/bin/python benchmarks/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "testcases" / "relay" / "RELAY-UL-003.yaml"  # applies only under a discard reading
TIMEOUT_S = 120


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, choices=range(1, 51), metavar="N")
    a = p.parse_args()
    walls = []
    with tempfile.TemporaryDirectory(prefix="msgin5g-startup-") as tmp:
        for _ in range(a.runs):
            began = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "msgin5g_conformance.cli", "run", str(CASE), "--no-html", "-q"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
            walls.append(time.perf_counter() - began)
            if done.returncode != 0:
                print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
                return 1
    print(
        f"run start-up (one not-applicable case, {a.runs} runs): median {statistics.median(walls):.2f} s, "
        f"min {min(walls):.2f} s, max {max(walls):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
