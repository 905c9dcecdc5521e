"""What a sweep leaves behind: a JSON report, a pcap of every datagram, and a human summary."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from msgin5g_conformance import __version__
from msgin5g_conformance.sweep.runner import ProbeResult, SweepResult
from msgin5g_conformance.wire.capture.pcap import write_pcap

STOPPED_BY = {
    "count": "it sent every input (--count)",
    "time-limit": "the time limit (--time-limit) ran out before the count",
    "probe-failed": "a probe failed: the SUT stopped answering",
}


def _rate(result: SweepResult) -> float:
    return result.inputs_sent / result.sending_s if result.sending_s > 0 else 0.0


def first_failure(result: SweepResult) -> dict[str, Any] | None:
    """The first input after which the SUT stopped answering, with the probe that showed it."""
    failed = result.failed_probe
    if failed is None:
        return None
    loc = result.localization
    out: dict[str, Any] = {
        "probe": failed.as_dict(),
        "window": {"first": result.window[0], "last": result.window[1]} if result.window else None,
        "localized": bool(loc and loc.localized),
        "how": loc.how if loc else "",
        "input": loc.culprit.described() if loc and loc.culprit else None,
    }
    if loc is not None:
        out["replay"] = {
            "inputs": loc.replayed,
            "probes": loc.replay_probes,
            "failed_probe": loc.probe.as_dict() if loc.probe else None,
        }
    return out


def as_dict(result: SweepResult, pcap: str | None) -> dict[str, Any]:
    r = result
    capture = r.capture
    return {
        "harness_version": __version__,
        "sut": r.sut,
        "role": r.role,
        "profile": r.profile,
        "seed": r.seed,
        "count": r.count,
        "probe_every": r.probe_every,
        "time_limit_s": r.time_limit_s,
        "endpoints": r.endpoints,
        "verdict": "survived" if r.survived else "stopped-answering",
        "exit_code": r.exit_code,
        "stopped_by": r.stopped_by,
        "inputs_planned": r.inputs_planned,
        "inputs_sent": r.inputs_sent,
        "inputs_refused": r.refused,
        "refused": [
            {"index": x.index, "endpoint": x.endpoint, "size": x.size, "errno": x.errno, "reason": x.reason}
            for x in r.refusals
        ],
        "per_generator": r.per_generator,
        "per_endpoint": r.per_endpoint,
        "probes": {
            "run": len(r.probes),
            "passed": r.probes_passed,
            "note": "probe 0 is the baseline, before any input",
            "list": [p.as_dict() for p in r.probes],
        },
        "first_failure": first_failure(r),
        "sending_s": round(r.sending_s, 3),
        "wall_time_s": round(r.wall_s, 3),
        "inputs_per_s": round(_rate(r), 1),
        "kernel_drops_at_tester": r.kernel_drops,
        "pacing": {"syncs": r.syncs, "unanswered": r.syncs_unanswered},
        "pcap": pcap,
        "pcap_datagrams": len(capture.datagrams) if capture else 0,
        "datagrams_seen": capture.total if capture else 0,
        "pcap_truncated": bool(capture and capture.not_kept),
        "sut_log_tail": r.sut_log,
        "process_log": r.process_log,
    }


def write(result: SweepResult, out: Path, pcap_dir: Path | None) -> tuple[Path, Path | None]:
    """The pcap (``sweep-<role>.pcap`` in ``pcap_dir``) and the JSON report at ``out``."""
    pcap: Path | None = None
    if pcap_dir is not None and result.capture is not None:
        pcap = pcap_dir / f"sweep-{result.role}.pcap"
        write_pcap(pcap, result.capture.datagrams)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(as_dict(result, str(pcap) if pcap else None), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out, pcap


def _probe_line(p: ProbeResult) -> str:
    after = "before any input" if p.after_input is None else f"after input #{p.after_input}"
    where = f" {p.endpoint}" if p.endpoint else ""
    return f"probe {p.number} ({after}) failed at {p.stage}{where}: {p.reason}"


def summary(result: SweepResult, report: Path | None, pcap: Path | None) -> str:
    r = result
    lines = [
        f"sweep: SUT {r.sut} as {r.role}, profile {r.profile}, seed {r.seed}, "
        f"{r.count} input(s) per endpoint to {', '.join(f'{n} {a}' for n, a in r.endpoints.items()) or '-'}",
        f"  stopped: {STOPPED_BY.get(r.stopped_by, r.stopped_by)}",
        f"  inputs: {r.inputs_sent} sent of {r.inputs_planned} planned, {r.refused} refused by the kernel; "
        f"{r.sending_s:.2f} s sending and probing ({_rate(r):,.0f} inputs/s), wall time {r.wall_s:.2f} s",
        f"  probes: {len(r.probes)} run, {r.probes_passed} passed (probe 0 is the baseline, before any input)",
    ]
    if r.per_generator:
        parts = [
            f"{g} {c['sent']}" + (f" (+{c['refused']} refused)" if c["refused"] else "")
            for g, c in r.per_generator.items()
        ]
        lines.append("  per generator: " + ", ".join(parts))
    if r.refusals:
        x = r.refusals[0]
        lines.append(f"  first refused send: input #{x.index} to {x.endpoint}: {x.reason} (errno {x.errno})")
    if r.kernel_drops:
        lines.append(f"  the kernel dropped {r.kernel_drops} datagram(s) at the tester's nodes (full receive buffers)")
    if r.survived:
        lines.append("  result: every probe passed: the SUT kept answering")
    else:
        assert r.failed_probe is not None
        loc = r.localization
        culprit = loc.culprit if loc else None
        if culprit is not None:
            shown = culprit.data[:64].hex() + ("..." if len(culprit.data) > 64 else "") or "(none: an empty datagram)"
            lines.append(
                f"  result: the SUT stopped answering after input #{culprit.index} ({culprit.generator}, "
                f"{len(culprit.data)} bytes to {culprit.endpoint}: {culprit.note})"
            )
            lines.append(f"    bytes: {shown}")
        elif r.window is not None:
            lines.append(
                f"  result: the SUT stopped answering after one of inputs #{r.window[0]}..#{r.window[1]} "
                f"(not localized to one input)"
            )
        else:
            lines.append("  result: the SUT did not answer before any input was sent")
        lines.append("    " + _probe_line(r.failed_probe))
        if loc is not None and loc.how:
            lines.append(f"    {loc.how}")
        if loc is not None and loc.probe is not None and loc.probe is not r.failed_probe:
            lines.append(f"    on the replay, {_probe_line(loc.probe)}")
    if report is not None:
        lines.append(f"  report: {report}" + (f"; pcap: {pcap}" if pcap else ""))
    if r.capture is not None and r.capture.not_kept:
        lines.append(
            f"  the pcap holds the first {len(r.capture.datagrams)} of {r.capture.total} datagrams (memory bound)"
        )
    return "\n".join(lines)
