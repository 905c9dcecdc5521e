"""Benchmark: run the conformance suites several times against the reference SUT and print figures.

What it measures, per role suite (``testcases/relay``, ``testcases/gateway``,
``testcases/constrained-ue``), with one :class:`Session` per suite and the suite's cases submitted
together (``Session.run_cases``, so consecutive cases overlap their late windows):

* the wall time of each run of the whole suite and its median; for the relay suite next to its
  target (under 3 s with the 300 ms late window; the late window in force is read from the profile);
* each case's median duration (``CaseResult.duration_s``, its late window included) over the runs;
* absence checks (``expect_nothing`` steps): the median, min and max of the interval each one
  proved the discard for (``StepResult.covered_ms``: from the stimulus to the end of the case's
  late window), over every absence check of the suite in every run;
* the verdict counts of every run, and the load average before and after.

A case that is not ``pass`` against the reference gets a WARNING line and the script exits 1: the
figures of a broken run mean nothing. Slowness never changes the exit status; there are no
timing assertions.

Run it with ``make bench`` (``.venv/bin/python benchmarks/bench_relay.py --runs 5``) or::

    .venv/bin/python benchmarks/bench_relay.py [--runs 5] [--role relay ...] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.spec.model import TestCase
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.registry import make_adapter

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("relay", "gateway", "constrained-ue")
RUNS = (1, 50)  # bounds of --runs
CONCURRENCY = (1, 64)  # bounds of --concurrency
RELAY_TARGET_S = 3.0  # relay suite wall time, set for the 300 ms late window
TARGET_LATE_WINDOW_MS = 300
LABEL = 26  # width of the label column


def bounded(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer from lo to hi."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{n} is not between {lo} and {hi}")
        return n

    return parse


@dataclass
class SuiteFigures:
    role: str
    cases: list[TestCase]
    concurrency: int = 1  # as the session applies it (never above what the SUT opens at once)
    walls: list[float] = field(default_factory=list)
    verdicts: list[Counter[str]] = field(default_factory=list)
    per_case: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    covered_ms: list[float] = field(default_factory=list)
    absence_checks: int = 0  # over all runs, with or without a covered interval
    broken: list[str] = field(default_factory=list)  # WARNING lines


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def loadavg() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unavailable"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def row(label: str, text: str) -> None:
    print(f"  {label:<{LABEL}} {text}")


def load_suite(role: str, profile: Profile) -> list[TestCase]:
    return [load_testcase(f, profile) for f in sorted((ROOT / "testcases" / role).glob("*.yaml"))]


def run_suite(fig: SuiteFigures, profile: Profile, sut: str, runs: int, concurrency: int) -> None:
    with Session(profile, make_adapter(sut), pcap_dir=None, concurrency=concurrency) as s:
        fig.concurrency = s.concurrency
        for run in range(1, runs + 1):
            t0 = time.perf_counter()
            results = s.run_cases(fig.cases)
            fig.walls.append(time.perf_counter() - t0)
            fig.verdicts.append(Counter(r.verdict.value for r in results))
            for r in results:
                record(fig, run, r)


def record(fig: SuiteFigures, run: int, r: CaseResult) -> None:
    fig.per_case[r.case_id].append(r.duration_s)
    if r.verdict is not Verdict.PASS:
        fig.broken.append(f"WARNING: {fig.role} run {run}: {r.case_id} is {r.verdict.value}, not pass: {r.reason}")
    for st in r.steps:
        if st.kind == "expect_nothing":
            fig.absence_checks += 1
            if st.covered_ms is not None:
                fig.covered_ms.append(st.covered_ms)


def counts(c: Counter[str]) -> str:
    return ", ".join(f"{c[v.value]} {v.value}" for v in Verdict if c[v.value]) or "no results"


def report(fig: SuiteFigures, late_window_ms: int, runs: int) -> None:
    print()
    print(f"{fig.role} suite: {len(fig.cases)} cases x {runs} run(s), concurrency {fig.concurrency}")
    for i, (wall, c) in enumerate(zip(fig.walls, fig.verdicts, strict=True), 1):
        row(f"run {i} wall time", f"{wall:9.3f} s    verdicts: {counts(c)}")
    median = statistics.median(fig.walls)
    target = ""
    if fig.role == "relay":
        target = (
            f"    (target < {RELAY_TARGET_S:.0f} s with the {TARGET_LATE_WINDOW_MS} ms late window;"
            f" late window in force: {late_window_ms} ms)"
        )
    row("median wall time", f"{median:9.3f} s{target}")
    print(f"  {'case':<{LABEL}} median duration over {runs} run(s)")
    for cid, ds in fig.per_case.items():
        row(cid, ms(statistics.median(ds)))
    if fig.covered_ms:
        cov = fig.covered_ms
        row(
            "absence checks covered",
            f"median {statistics.median(cov):7.1f} ms, min {min(cov):7.1f} ms, max {max(cov):7.1f} ms"
            f"  ({len(cov)} checks over {runs} run(s))",
        )
        if len(cov) < fig.absence_checks:
            row("", f"({fig.absence_checks - len(cov)} absence check(s) recorded no covered interval)")
    else:
        row("absence checks covered", f"none ({fig.absence_checks} absence check(s) in the suite)")
    for line in fig.broken:
        print(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--runs", type=bounded(*RUNS), default=5, help=f"runs of each suite ({RUNS[0]}-{RUNS[1]}, default 5)"
    )
    ap.add_argument(
        "--role", action="append", choices=ROLES, default=None, help="suite to run (repeatable; default: all)"
    )
    ap.add_argument(
        "--concurrency",
        type=bounded(*CONCURRENCY),
        default=1,
        help=f"cases running their steps at once ({CONCURRENCY[0]}-{CONCURRENCY[1]}, default 1)",
    )
    ap.add_argument("--sut", default="reference", help="SUT adapter (default: reference)")
    a = ap.parse_args()
    roles = list(dict.fromkeys(a.role or ROLES))

    try:
        profile = load_profile()
        suites = [SuiteFigures(role, load_suite(role, profile)) for role in roles]
    except HarnessError as exc:
        print(f"cannot load the test cases: {exc}", file=sys.stderr)
        return 2

    late_window_ms = profile.timers.late_window_ms
    print(f"MSGin5G conformance benchmark against SUT {a.sut}")
    print(f"  {'profile':<{LABEL}} {profile.name} (late window {late_window_ms} ms)")
    print(f"  {'suites':<{LABEL}} {', '.join(roles)}")
    print(f"  {'runs per suite':<{LABEL}} {a.runs}")
    print(f"  {'concurrency':<{LABEL}} {a.concurrency}")
    print(f"  {'CPUs':<{LABEL}} {os.cpu_count()}")
    print(f"  {'load average at start':<{LABEL}} {loadavg()}")

    broken = 0
    for fig in suites:
        if not fig.cases:
            print(f"\n{fig.role} suite: no test cases under testcases/{fig.role}")
            continue
        try:
            run_suite(fig, profile, a.sut, a.runs, a.concurrency)
        except (HarnessError, TimeoutError) as exc:
            print(f"\nWARNING: {fig.role} suite did not complete: {type(exc).__name__}: {exc}")
            broken += 1
            continue
        report(fig, late_window_ms, a.runs)
        broken += len(fig.broken)

    print()
    print(f"  {'load average at end':<{LABEL}} {loadavg()}")
    if broken:
        print(f"WARNING: {broken} result(s) not pass against {a.sut}: the figures above mean nothing")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
