"""Benchmark: the load mode's capacity figures against the embedded reference SUT.

The reference relay at a stepped rate (250, 500, 1000, 1500, 2000 exchanges/s, a few seconds per
step) and the reference gateway with 10 and 100 UEs per round; for each, the figures the load mode
reports: checked throughput, latency p50/p95/p99, losses, wrong deliveries, the harness's CPU share
(tester and the in-process SUT share one process, so one core) and the load average, next to the
target of issue 13 (>= 1,000 checked exchanges/s on 2 cores). No assertions: figures only, and a
machine shared with other work gives noisy ones (the load average is printed to show it).

    .venv/bin/python benchmarks/bench_load.py [--step-s 3]
"""

from __future__ import annotations

import argparse
import os

from msgin5g_conformance.load import make_plan, run_load
from msgin5g_conformance.world.profile import load_profile
from sut_adapters.registry import identity, make_adapter

TARGET = 1000.0


def line(label: str, offered: float, s: dict[str, object], unit: str) -> str:
    lat = s["latency"]
    assert isinstance(lat, dict)
    return (
        f"{label:<22} offered {offered:>7g}/s  checked {s[f'throughput_{unit}_per_s']:>8}/s  "
        f"p50 {lat['p50_ms']} ms  p95 {lat['p95_ms']} ms  p99 {lat['p99_ms']} ms  "
        f"lost {s['lost']}  wrong {s['wrong']}  not sent {s['not_sent']}  CPU {s['cpu_share_of_one_core']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step-s", type=float, default=3.0)
    a = ap.parse_args()
    profile = load_profile(None)
    print(f"cores {os.cpu_count()}, load average before {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    adapter = make_adapter("reference")
    r = run_load(adapter, profile, make_plan("relay", None, a.step_s, "250,500,1000,1500,2000"), identity(adapter))
    best = 0.0
    for s in r.steps:
        d = s.as_dict("exchanges")
        print(line("relay", s.offered_rate, d, "exchanges"))
        if d["lost"] == 0 and d["wrong"] == 0:
            best = max(best, float(d["throughput_exchanges_per_s"]))  # type: ignore[arg-type]
    cpu = r.cpu
    print(
        f"relay: best loss-free step {best:g} checked exchanges/s (target >= {TARGET:g}): "
        f"{'MET' if best >= TARGET else 'NOT MET'}; harness CPU {cpu['share_of_one_core']} of one core "
        f"({cpu['process']}); load average {' '.join(f'{x:.2f}' for x in r.load_average or ())}"
    )
    for ues, rate in ((10, 50.0), (100, 5.0)):
        adapter = make_adapter("reference")
        g = run_load(adapter, profile, make_plan("gateway", rate, a.step_s, ues=ues), identity(adapter))
        d = g.steps[0].as_dict("rounds")
        print(line(f"gateway N={ues}", rate, d, "rounds"))
        print(
            f"gateway N={ues}: {g.rounds.get('ok', 0)} rounds checked ({g.counts.get('ok', 0)} UE answers), "
            f"harness CPU {g.cpu['share_of_one_core']} of one core; load average "
            f"{' '.join(f'{x:.2f}' for x in g.load_average or ())}"
        )


if __name__ == "__main__":
    main()
