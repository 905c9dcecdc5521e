"""The load mode: configuration exchanges at a stated rate through a Relay UE or Gateway UE, each
one checked as the test cases check it, with capacity figures (throughput, latency percentiles,
losses, wrong deliveries, the harness's own CPU share).

::

    plan.py     the arguments and their bounds (rate, duration, UEs, total exchange count)
    runner.py   the run: tester clients on their own loopback addresses, the tester's SCM-S,
                the SUT opened for the role, the exchanges and their checks
    stats.py    per-step and per-bin figures (percentiles)
    report.py   load.json and load.html (SVG plots drawn here, no dependency)
"""

from msgin5g_conformance.load.plan import LIMITS, LoadPlan, make_plan
from msgin5g_conformance.load.runner import LoadResult, run_load

__all__ = ["LIMITS", "LoadPlan", "LoadResult", "make_plan", "run_load"]
