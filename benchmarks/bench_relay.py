"""Benchmark: run the conformance suites several times against the reference SUT and print figures.

Prints, per suite, the wall time of each run and its median, each case's median duration, and the
median time to conclude an absence check (window plus positive control). Targets on the 2-core CI
machine: relay suite under 3 s of test time; an absence check under 100 ms median.

    python benchmarks/bench_relay.py [--runs 5] [--role relay]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import load_profile
from sut_adapters.registry import make_adapter

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--role", action="append", default=None, help="suite folder(s) under testcases/")
    ap.add_argument("--sut", default="reference")
    a = ap.parse_args()
    roles = a.role or sorted(p.name for p in (ROOT / "testcases").iterdir() if p.is_dir())
    profile = load_profile()
    worst = 0
    for role in roles:
        cases = [load_testcase(f, profile) for f in sorted((ROOT / "testcases" / role).glob("*.yaml"))]
        if not cases:
            continue
        walls: list[float] = []
        per_case: dict[str, list[float]] = defaultdict(list)
        absence: list[float] = []
        with tempfile.TemporaryDirectory() as tmp, Session(profile, make_adapter(a.sut), pcap_dir=Path(tmp)) as s:
            for _ in range(a.runs):
                t0 = time.perf_counter()
                for case in cases:
                    r = s.run_case(case)
                    if r.verdict is not Verdict.PASS:
                        print(f"  {case.id}: {r.verdict.value}: {r.reason}", file=sys.stderr)
                        worst = 1
                    per_case[case.id].append(r.duration_s)
                    absence.extend(st.duration_s for st in r.steps if st.kind == "expect_nothing")
                walls.append(time.perf_counter() - t0)
        print(f"{role} suite: {len(cases)} cases x {a.runs} runs against {a.sut}")
        print(f"  wall time per run: {', '.join(f'{w:.3f}' for w in walls)} s; median {statistics.median(walls):.3f} s")
        for cid, ds in per_case.items():
            print(f"  {cid:16} median {statistics.median(ds) * 1000:8.1f} ms")
        if absence:
            print(f"  absence check (window + positive control): median {statistics.median(absence) * 1000:.1f} ms,"
                  f" max {max(absence) * 1000:.1f} ms over {len(absence)}")
    return worst


if __name__ == "__main__":
    sys.exit(main())
