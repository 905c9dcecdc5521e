"""Scale benchmark: time per constrained UE of a bulk gateway case at 50, 200 and 1,000 UEs.

Runs GW-BULK-003 (50), GW-SCALE-001 (200) and GW-SCALE-002 (1,000) against the reference under the
default profile with ``bulk_policy.min_batch: 1000`` (so all three apply), and prints for each the
whole case's wall time and the judging time (the case's own CPU after its steps: settle, late window
excluded, judge and describe), each per UE, next to the targets: <= 2 s for 1,000 UEs, per-UE cost
roughly flat. Figures on a shared machine are noisy; the load average is printed with them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from msgin5g_conformance.engine import case as case_module  # noqa: E402
from msgin5g_conformance.engine.session import Session  # noqa: E402
from msgin5g_conformance.spec.loader import load_testcase  # noqa: E402
from msgin5g_conformance.world.profile import load_profile  # noqa: E402
from sut_adapters.registry import make_adapter  # noqa: E402
from tests.conftest import profile_with  # noqa: E402

CASES = (("GW-BULK-003", 50), ("GW-SCALE-001", 200), ("GW-SCALE-002", 1000))
TARGET_S = 2.0


def main() -> int:
    # max_wait long enough that 1,000 sends fit in its sent_within_ms share on a loaded machine
    scale = {"bulk_policy.min_batch": 1000, "bulk_policy.max_wait_ms": 3000}
    profile = load_profile(profile_with(Path(tempfile.mkdtemp()), "scale", scale))
    judged: list[float] = []
    original = case_module.CaseRun.judge

    def timed_judge(self: case_module.CaseRun) -> None:
        t = time.perf_counter()
        original(self)
        judged.append(time.perf_counter() - t)

    case_module.CaseRun.judge = timed_judge  # type: ignore[method-assign]
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared: figures are noisy)")
    print(f"{'case':14s} {'UEs':>5s} {'whole s':>8s} {'ms/UE':>7s} {'judge s':>8s} {'judge ms/UE':>11s}  verdict")
    rows = []
    with Session(profile, make_adapter("reference"), pcap_dir=None) as session:
        for cid, n in CASES:
            case = load_testcase(ROOT / "testcases" / "gateway" / f"{cid}.yaml", profile)
            t = time.perf_counter()
            result = session.run_case(case)
            whole = time.perf_counter() - t
            rows.append((n, whole, judged[-1]))
            print(
                f"{cid:14s} {n:5d} {whole:8.2f} {whole / n * 1000:7.2f} {judged[-1]:8.3f} "
                f"{judged[-1] / n * 1000:11.3f}  {result.verdict.value}"
            )
    big = rows[-1]
    print(f"1,000 UEs: whole case {big[1]:.2f} s, judged in {big[2]:.3f} s (target <= {TARGET_S} s judged)")
    print(
        f"per-UE cost 200 -> 1,000: whole {rows[1][1] / 200 * 1000:.2f} -> {big[1] / 1000 * 1000:.2f} ms, "
        f"judging {rows[1][2] / 200 * 1000:.3f} -> {big[2] / 1000 * 1000:.3f} ms (target: roughly flat); "
        "the whole case's time includes fixed waits (max_wait 1.5 s for 50 and 200 UEs, late window 0.3 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
