"""Figures from what the run measured: percentiles, per step and per time bin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 95, 99)
MAX_BINS = 60  # points of the latency-over-time plot
FIRST_WRONG = 10  # wrong deliveries (and other failures) named one by one


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The nearest-rank percentile of ascending values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def latency_figures(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for p in PERCENTILES:
        v = percentile(ordered, p)
        out[f"p{p}_ms"] = None if v is None else round(v * 1000, 3)
    out["max_ms"] = round(ordered[-1] * 1000, 3) if ordered else None
    return out


@dataclass
class StepStats:
    """One step of the profile (one offered rate)."""

    offered_rate: float
    start: float  # loop time
    duration_s: float
    planned: int = 0
    sent: int = 0
    ok: int = 0
    lost: int = 0
    wrong: int = 0
    mangled: int = 0
    rounds_ok: int = 0  # gateway: rounds whose every UE got its own answer
    cpu_s: float = 0.0  # the harness process's CPU time during the step
    latencies: list[float] = field(default_factory=list)

    def as_dict(self, unit: str) -> dict[str, Any]:
        return {
            "offered_rate": self.offered_rate,
            "duration_s": self.duration_s,
            "planned": self.planned,
            "sent": self.sent,
            "not_sent": self.planned - self.sent,
            "checked_ok": self.ok,
            "lost": self.lost,
            "wrong": self.wrong,
            "mangled": self.mangled,
            f"throughput_{unit}_per_s": round((self.rounds_ok if unit == "rounds" else self.ok) / self.duration_s, 2),
            "cpu_share_of_one_core": round(self.cpu_s / self.duration_s, 3),
            "latency": latency_figures(self.latencies),
        }


class Bins:
    """Latencies by the time their exchange was sent, for the plot."""

    def __init__(self, start: float, total_s: float) -> None:
        self.start = start
        self.width = max(0.05, total_s / MAX_BINS)
        self.values: list[list[float]] = [[] for _ in range(int(total_s / self.width) + 2)]

    def add(self, sent: float, latency: float) -> None:
        i = min(len(self.values) - 1, max(0, int((sent - self.start) / self.width)))
        self.values[i].append(latency)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for i, vs in enumerate(self.values):
            if not vs:
                continue
            ordered = sorted(vs)
            p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
            out.append(
                {
                    "t_s": round((i + 0.5) * self.width, 3),
                    "count": len(vs),
                    "p50_ms": round((p50 or 0) * 1000, 3),
                    "p99_ms": round((p99 or 0) * 1000, 3),
                }
            )
        return out
