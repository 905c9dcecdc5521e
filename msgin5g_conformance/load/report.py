"""load.json and load.html of a load run; the HTML's SVG plots are drawn here (no dependency)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from msgin5g_conformance import __version__
from msgin5g_conformance.load.plan import LIMITS
from msgin5g_conformance.load.runner import LoadResult

FORMAT = "msgin5g-load/1"
TARGET_PER_S = 1000  # issue 13: >= 1,000 checked exchanges/s against the reference SUT on 2 cores
W, H, PAD = 640, 260, 48


def as_json(r: LoadResult) -> dict[str, Any]:
    plan = r.plan
    return {
        "format": FORMAT,
        "harness_version": __version__,
        "sut": r.sut,
        "profile": r.profile,
        "role": plan.role,
        "plan": {
            "steps": list(plan.steps),
            "step_s": plan.step_s,
            "duration_s": plan.duration_s,
            "ues_per_round": plan.ues if plan.role == "gateway" else None,
            "clients": plan.clients if plan.role == "relay" else None,
            "unlinked_clients": plan.unlinked if plan.role == "relay" else 0,
            "timeout_s": plan.timeout_s,
            "limits": LIMITS,
        },
        "endpoints": r.endpoints,
        "passed": r.passed,
        "exit_status": r.exit_code,
        "figures": r.figures(),
        "steps": [s.as_dict(r.unit) for s in r.steps],
        "latency_over_time": r.bins,
        "failures": [f.as_dict() for f in r.failures],
        "wall_s": round(r.wall_s, 3),
        "sending_s": round(r.sending_s, 3),
        "sut_log_tail": r.sut_log_tail,
    }


def _scale(values: list[float]) -> float:
    top = max(values, default=0.0)
    return top * 1.1 if top > 0 else 1.0


def _axes(x_label: str, y_label: str, x_max: float, y_max: float) -> list[str]:
    out = [
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>',
        f'<text x="{W // 2}" y="{H - 8}" text-anchor="middle" font-size="12">{html.escape(x_label)}</text>',
        f'<text x="12" y="{H // 2}" text-anchor="middle" font-size="12" transform="rotate(-90 12 {H // 2})">'
        f"{html.escape(y_label)}</text>",
    ]
    for k in range(5):
        fx, fy = k / 4, k / 4
        x = PAD + fx * (W - 10 - PAD)
        y = H - PAD - fy * (H - PAD - 10)
        out.append(f'<text x="{x:.1f}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">{x_max * fx:.3g}</text>')
        out.append(f'<text x="{PAD - 4}" y="{y + 3:.1f}" text-anchor="end" font-size="10">{y_max * fy:.3g}</text>')
    return out


def _point(x: float, y: float, x_max: float, y_max: float) -> tuple[float, float]:
    return PAD + x / x_max * (W - 10 - PAD), H - PAD - y / y_max * (H - PAD - 10)


def _line(points: list[tuple[float, float]], colour: str, x_max: float, y_max: float) -> str:
    at = [_point(x, y, x_max, y_max) for x, y in points]
    xy = " ".join(f"{px:.1f},{py:.1f}" for px, py in at)
    dots = "".join(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>' for px, py in at)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{xy}"/>{dots}'


def latency_svg(r: LoadResult) -> str:
    """Latency over time: p50 and p99 of each time bin (by when the exchange was sent)."""
    rows = r.bins
    x_max = r.plan.duration_s or 1.0
    y_max = _scale([b["p99_ms"] for b in rows])
    parts = _axes(
        "time since the first exchange (s)",
        f"{'round' if r.unit == 'rounds' else 'exchange'} latency (ms)",
        x_max,
        y_max,
    )
    parts.append(_line([(b["t_s"], b["p50_ms"]) for b in rows], "#1f77b4", x_max, y_max))
    parts.append(_line([(b["t_s"], b["p99_ms"]) for b in rows], "#d62728", x_max, y_max))
    parts.append(f'<text x="{W - 120}" y="22" font-size="11" fill="#1f77b4">p50</text>')
    parts.append(f'<text x="{W - 80}" y="22" font-size="11" fill="#d62728">p99</text>')
    return _svg("latency-over-time", "Latency over time (p50, p99 per bin)", parts)


def throughput_svg(r: LoadResult) -> str:
    """Throughput (checked per second) against the offered rate, one point per step; the
    diagonal is what a SUT that keeps up achieves."""
    key = f"throughput_{r.unit}_per_s"
    steps = [s.as_dict(r.unit) for s in r.steps]
    offered = [s["offered_rate"] for s in steps]
    top = _scale(offered + [s[key] for s in steps])
    parts = _axes(f"offered rate ({r.unit}/s)", f"checked {r.unit}/s", top, top)
    x0, y0 = _point(0, 0, top, top)
    x1, y1 = _point(top, top, top, top)
    parts.append(
        f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#aaa" stroke-dasharray="4 3"/>'
    )
    parts.append(_line([(s["offered_rate"], s[key]) for s in steps], "#2ca02c", top, top))
    return _svg("throughput-vs-offered", "Throughput against offered rate", parts)


def _svg(ident: str, title: str, parts: list[str]) -> str:
    return (
        f'<svg id="{ident}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'role="img" aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>' + "".join(parts) + "</svg>"
    )


def _mid(mid: int | None) -> str:
    return "" if mid is None else f" mid=0x{mid:04x}"


def _cell(v: Any) -> str:
    return "–" if v is None else html.escape(f"{v:,}" if isinstance(v, int) else str(v))


def as_html(r: LoadResult) -> str:
    doc = as_json(r)
    f = doc["figures"]
    lat = f["latency"]
    unit = r.unit
    verdict = "no loss, no wrong delivery" if r.passed else "FAILED: see the failures below"
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{_cell(v)}</td>"
            for v in (
                s["offered_rate"],
                s["sent"],
                s["checked_ok"],
                s[f"throughput_{unit}_per_s"],
                s["latency"]["p50_ms"],
                s["latency"]["p95_ms"],
                s["latency"]["p99_ms"],
                s["latency"]["max_ms"],
                s["lost"],
                s["wrong"],
                s["mangled"],
                s["not_sent"],
            )
        )
        + "</tr>"
        for s in doc["steps"]
    )
    failures = "".join(
        f"<li><b>{html.escape(x['kind'])}</b> at {html.escape(x['at'])}"
        f"{_mid(x['mid'])}"
        f"{' token=' + x['token'] if x['token'] else ''}: {html.escape(x['what'])}</li>"
        for x in doc["failures"]
    )
    cpu = f["cpu"]
    la = f["load_average"]
    p = r.plan
    who = (
        f"{p.ues} UEs per round" if p.role == "gateway" else f"{p.clients} linked clients, {p.unlinked} without a link"
    )
    lat_line = (
        f"p50 {_cell(lat['p50_ms'])} ms, p95 {_cell(lat['p95_ms'])} ms, p99 {_cell(lat['p99_ms'])} ms, "
        f"max {_cell(lat['max_ms'])} ms"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load: {html.escape(str(r.sut.get("name")))} ({r.plan.role})</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style></head><body>
<h1>Load run: {html.escape(str(r.sut.get("name")))} as {r.plan.role}</h1>
<p><b>{html.escape(verdict)}</b>. Profile {html.escape(r.profile)}; {len(r.plan.steps)} step(s) of {r.plan.step_s:g} s;
{who}.</p>
<ul>
<li>throughput: {f[f"throughput_{unit}_per_s"]:,} checked {unit}/s
(target for the reference relay: &ge; {TARGET_PER_S:,}/s)</li>
<li>latency: {lat_line}</li>
<li>exchanges: {f["sent"]:,} sent, {f["ok"]:,} checked, {f["lost"]:,} lost, {f["wrong"]:,} wrong deliveries,
{f["mangled"]:,} altered, {f["unexpected"]:,} unexpected datagrams</li>
<li>CPU: {cpu.get("share_of_one_core")} of one core ({html.escape(str(cpu.get("process")))}; {cpu.get("cores")} cores);
load average {" ".join(f"{x:.2f}" for x in la) if la else "–"}</li>
</ul>
<h2>Latency over time</h2>
{latency_svg(r)}
<h2>Throughput against offered rate</h2>
{throughput_svg(r)}
<h2>Steps</h2>
<table><tr><th>offered/s</th><th>sent</th><th>checked</th><th>{unit}/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th>
<th>max ms</th><th>lost</th><th>wrong</th><th>altered</th><th>not sent</th></tr>{rows}</table>
<h2>Failures (the first of each kind)</h2>
<ul>{failures or "<li>none</li>"}</ul>
</body></html>
"""


def write(r: LoadResult, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    j, h = out / "load.json", out / "load.html"
    j.write_text(json.dumps(as_json(r), indent=2) + "\n", encoding="utf-8")
    h.write_text(as_html(r), encoding="utf-8")
    return j, h


def summary(r: LoadResult, out: Path | None) -> str:
    f = r.figures()
    lat = f["latency"]
    unit = r.unit
    lines = [
        f"load {r.plan.role} against {r.sut.get('name')}: {'PASS' if r.passed else 'FAIL'}",
        f"  throughput {f[f'throughput_{unit}_per_s']:,} checked {unit}/s over {r.plan.duration_s:g} s "
        f"(offered {', '.join(f'{x:g}' for x in r.plan.steps)}/s)",
        f"  latency p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms",
        f"  {f['sent']:,} sent, {f['ok']:,} checked, {f['lost']:,} lost, {f['wrong']:,} wrong, "
        f"{f['mangled']:,} altered, {f['unexpected']:,} unexpected",
        f"  CPU {f['cpu'].get('share_of_one_core')} of one core ({f['cpu'].get('process')}), "
        f"load average {' '.join(f'{x:.2f}' for x in f['load_average'] or [])}",
    ]
    if r.rounds:
        lines.insert(
            2,
            f"  rounds: {r.rounds.get('sent', 0):,} sent, {r.rounds.get('ok', 0):,} checked, "
            f"{r.rounds.get('failed', 0):,} failed",
        )
    for x in r.failures[:5]:
        mid = f" mid=0x{x.mid:04x}" if x.mid is not None else ""
        tok = f" token={x.token}" if x.token else ""
        lines.append(f"  {x.kind} at {x.at}{mid}{tok}: {x.what}")
    if r.sut_error:
        lines.append(f"  SUT: {r.sut_error}")
    if out is not None:
        lines.append(f"  report: {out / 'load.json'}, {out / 'load.html'}")
    return "\n".join(lines)
