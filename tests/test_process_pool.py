"""``instances: N`` in a SUT profile: N processes of an external SUT, cases at once, same verdicts.

The example implementation (examples/example_sut.py, a separate program) with its deliberate
``drops-404`` fault is run over a set of relay cases twice: one process, one case after another,
and three processes with cases running at once on their own addresses. The verdicts and reasons
must be the same; the pool must really have used its three processes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile
from sut_adapters.process import ProcessAdapter, ProcessPool
from sut_adapters.registry import make_adapter

from .conftest import ROOT, TESTCASES

# the four cases drops-404 fails, and some it passes (uplink, discard, link handling)
CASES = [
    "RELAY-DL-001",
    "RELAY-DL-003",
    "RELAY-DL-005",
    "RELAY-DL-008",
    "RELAY-DL-014",
    "RELAY-E2E-002",
    "RELAY-UL-001",
    "RELAY-DL-002",
]


def pooled_profile(tmp_path: Path, instances: int) -> Path:
    """The faulty example's SUT profile with ``instances`` (the program is found in examples/)."""
    text = (ROOT / "examples" / "example-sut-faulty.yaml").read_text(encoding="utf-8")
    text = text.replace("command: [python3,", f"command: [{sys.executable},")
    text = re.sub(r"(?m)^instances: .*$", f"instances: {instances}", text)
    assert f"instances: {instances}" in text
    text += f"cwd: {ROOT / 'examples'}\n"
    path = tmp_path / f"pool-{instances}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run(profile: Profile, adapter: object, concurrency: int) -> dict[str, CaseResult]:
    cases = [load_testcase(TESTCASES / "relay" / f"{c}.yaml", profile) for c in CASES]
    with Session(profile, adapter, pcap_dir=None, concurrency=concurrency) as session:  # type: ignore[arg-type]
        return {r.case_id: r for r in session.run_cases(cases)}


def masked(reason: str) -> str:
    """A reason without what differs between runs by design: addresses and times."""
    return re.sub(r"\d+(\.\d+)* ?ms|127\.\d+\.\d+\.\d+", "#", reason)


def test_pool_verdicts_equal_sequential(fast_profile: Profile, tmp_path: Path) -> None:
    single = make_adapter(str(pooled_profile(tmp_path, 1)))
    assert isinstance(single, ProcessAdapter) and single.instances == 1
    pool = make_adapter(str(pooled_profile(tmp_path, 3)))
    assert isinstance(pool, ProcessPool) and pool.instances == 3
    sequential = run(fast_profile, single, 8)  # a single-instance SUT: one case at a time whatever is asked
    at_once = run(fast_profile, pool, 8)
    assert {c: r.verdict for c, r in at_once.items()} == {c: r.verdict for c, r in sequential.items()}
    assert {c: masked(r.reason) for c, r in at_once.items()} == {c: masked(r.reason) for c, r in sequential.items()}
    assert {c for c, r in at_once.items() if r.verdict.value == "fail"} == {
        "RELAY-DL-003",
        "RELAY-DL-008",
        "RELAY-DL-014",
        "RELAY-E2E-002",
    }
    # three processes, each on its own addresses, each served cases
    addresses = {m._endpoints["sut.pc5"] for m in pool.members}
    assert len(addresses) == 3
    assert all(m.launches >= 1 for m in pool.members)
    served = [sum("> reset" in line for line in m.evidence.since(0)) for m in pool.members]
    assert sum(served) == len(CASES) and all(n >= 1 for n in served), served
    # and nothing outlives the session
    pids = [
        int(m_.group(1))
        for m in pool.members
        for line in m.evidence.since(0)
        if (m_ := re.search(r"started pid (\d+)", line))
    ]
    assert len(pids) == 3
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", pid
