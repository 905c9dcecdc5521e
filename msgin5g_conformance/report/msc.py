"""A message sequence chart of one test case's captured exchange, as a standalone SVG.

Input is the per-case result record written by the plugin (``reports/results/<ID>.json``, see
``plugin.result_json``). The chart has one lifeline per node (clients on the left, the SUT's
endpoints in the middle inside a shaded group, the SCM-S and unknown addresses on the right),
one arrow per datagram in capture order with the time on the left, and:

* the decisive datagram (the one that set the verdict) in red and thicker, on a tinted row;
* malformed datagrams in orange, labelled with the parse error;
* for each ``expect`` step that failed because nothing arrived, a dashed red arrow from the
  expected sender (or the SUT lifeline nearest the receiver) to the receiver, labelled
  ``expected, never came: <reason>``.

Every piece of text comes from the capture or the SUT and is escaped; characters XML cannot
carry are replaced with U+FFFD, so the output always parses.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from msgin5g_conformance.world.nodes import ELSEWHERE

LEFT = 104  # width of the time column
COLUMN = 210  # distance between lifelines
TOP = 70  # y of the lifeline header boxes
HEAD_H = 28
FIRST_ROW = TOP + HEAD_H + 26
ROW = 38
HALO = ' stroke="#ffffff" stroke-width="3" stroke-opacity="0.85" paint-order="stroke"'  # legible over lines
LABEL_MAX = 96  # characters shown on an arrow; the full text goes into the tooltip

INK = "#333333"
SUT_INK = "#1f5fa8"
DECISIVE = "#d62728"
DECISIVE_BAND = "#fde4e4"
MALFORMED = "#e07b00"
MISSING = "#d62728"
SUT_FILL = "#e8f0fb"
SUT_EDGE = "#8fb0dc"

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FAILED = ("fail", "inconclusive")


def esc(value: object) -> str:
    """Text made safe for XML content and attribute values."""
    text = _NOT_XML.sub("\ufffd", str(value))
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def _short(text: str, limit: int = LABEL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


SUT_PREFIXES = ("sut.", "relay.", "gateway.")  # relay.pc5, gateway.uu: an offline analysis's role-map names


def is_sut(node: str) -> bool:
    """True for the SUT's own endpoints (``sut``, ``sut.pc5``, ``sut.uu``, ...; an analysed
    capture's ``relay.pc5``, ``gateway.uu``)."""
    return node == "sut" or node.startswith(SUT_PREFIXES)


def _rank(node: str) -> tuple[int, int, str]:
    if node == ELSEWHERE:
        return (5, 0, node)  # an address of the case's range that no node owns: rightmost
    if node.startswith("cue"):
        return (0, 0, node)
    if is_sut(node):
        side = {"pc5": 0, "cue": 1, "uu": 3}.get(node.partition(".")[2], 2)  # sut.pc5, relay.pc5: PC5 first
        return (2, side, node)
    if node.startswith("scm"):
        return (3, 0, node)
    if re.match(r"^[\d.:\[\]a-fA-F]+$", node) and any(c.isdigit() for c in node):
        return (4, 0, node)  # an address nobody in the topology owns
    return (1, 0, node)


def node_name(record: Mapping[str, Any], side: str) -> str:
    """The lifeline a datagram end belongs to: the node name, else its address."""
    name = record.get(f"{side}_node")
    if name:
        return str(name)
    return str(record.get(side) or "?")


def arrow_label(record: Mapping[str, Any]) -> str:
    """``CON 2.05 tkn=d1d1 → cue1.msgin5g.example`` (recipient part only when present)."""
    if record.get("malformed"):
        return f"\u2717 MALFORMED: {record['malformed']}"
    token = record.get("token") or "-"
    text = f"{record.get('type', '?')} {record.get('code', '?')} tkn={token}"
    if record.get("recipient"):
        text += f" \u2192 {record['recipient']}"
    return text


@dataclass
class _Event:
    kind: str  # "datagram" | "missing"
    src: str
    dst: str
    label: str
    tooltip: str
    time: str
    seq: int | None = None
    decisive: bool = False
    malformed: bool = False
    step: str | None = None


def _missing_events(
    result: Mapping[str, Any], lifelines: list[str], exchange: Sequence[Mapping[str, Any]]
) -> list[_Event]:
    out = []
    for step in result.get("steps") or []:
        if (
            step.get("kind") != "expect"
            or step.get("verdict") not in _FAILED
            or step.get("datagram") is not None
            or not step.get("node")
        ):
            continue
        node = str(step["node"])
        peer = step.get("peer")
        src = str(peer) if peer else _sut_side_for(node, lifelines, exchange)
        reason = str(step.get("reason") or "")
        out.append(
            _Event(
                "missing",
                src,
                node,
                f"expected, never came: {reason}",
                f"step {step.get('index')}: expected at {node}, never came: {reason}",
                "never",
                step=str(step.get("index")),
            )
        )
    return out


def _sut_side_for(node: str, lifelines: list[str], exchange: Sequence[Mapping[str, Any]]) -> str:
    """The SUT endpoint a missing message should have come from, when the step does not say."""
    senders = Counter(
        node_name(r, "src") for r in exchange if node_name(r, "dst") == node and is_sut(node_name(r, "src"))
    )
    if senders:
        return senders.most_common(1)[0][0]
    sut = sorted((n for n in lifelines if is_sut(n)), key=_rank)
    if not sut:
        return "sut"
    return sut[-1] if _rank(node)[0] >= 3 else sut[0]


def _events(result: Mapping[str, Any]) -> tuple[list[str], list[_Event]]:
    exchange: list[Mapping[str, Any]] = list(result.get("exchange") or [])
    decisive = result.get("decisive_datagram")
    names: set[str] = set()
    events: list[_Event] = []
    for r in sorted(exchange, key=lambda r: r.get("seq", 0)):
        src, dst = node_name(r, "src"), node_name(r, "dst")
        names.update((src, dst))
        seq = r.get("seq")
        t = r.get("t_ms")
        time = f"#{seq}  +{float(t):.1f} ms" if isinstance(t, int | float) else f"#{seq}"
        tooltip = f"#{seq} {src} {r.get('src', '')} -> {dst} {r.get('dst', '')}: {r.get('summary', '')}"
        events.append(
            _Event(
                "datagram",
                src,
                dst,
                arrow_label(r),
                tooltip,
                time,
                seq=seq,
                decisive=decisive is not None and seq == decisive,
                malformed=bool(r.get("malformed")),
            )
        )
    for step in result.get("steps") or []:
        if step.get("kind") == "expect" and step.get("verdict") in _FAILED and step.get("datagram") is None:
            if step.get("node"):
                names.add(str(step["node"]))
            if step.get("peer"):
                names.add(str(step["peer"]))
    lifelines = sorted(names, key=_rank)
    missing = _missing_events(result, lifelines, exchange)
    for m in missing:
        if m.src not in names:
            names.add(m.src)
    lifelines = sorted(names, key=_rank)
    return lifelines, events + missing


def _arrowhead(x: float, y: float, direction: int, colour: str) -> str:
    back = x - 10 * direction
    return f'<polygon points="{x:.1f},{y:.1f} {back:.1f},{y - 5:.1f} {back:.1f},{y + 5:.1f}" fill="{colour}"/>'


def render_svg(result: Mapping[str, Any]) -> str:
    """The sequence chart of one result record (``plugin.result_json`` shape) as SVG text."""
    lifelines, events = _events(result)
    if not lifelines:
        lifelines = ["sut"]
    x_of = {n: LEFT + COLUMN / 2 + i * COLUMN for i, n in enumerate(lifelines)}
    width = int(LEFT + COLUMN * len(lifelines) + 24)
    bottom = FIRST_ROW + ROW * max(len(events), 1) + 10
    legend_y = bottom + 24
    height = legend_y + 30

    out: list[str] = []
    add = out.append
    case_id = result.get("id", "?")
    verdict = result.get("verdict", "?")
    add('<?xml version="1.0" encoding="UTF-8"?>')
    add(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12" '
        f'class="msc" data-case="{esc(case_id)}" data-verdict="{esc(verdict)}">'
    )
    add(f"<title>{esc(case_id)}: message sequence chart ({esc(verdict)})</title>")
    add(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    headline = f"{case_id} \u2014 {str(verdict).upper()}: {result.get('title', '')}"
    add(f'<text x="10" y="20" font-size="14" font-weight="bold" class="headline">{esc(_short(headline, 140))}</text>')
    count = len([e for e in events if e.kind == "datagram"])
    summary = result.get("exchange_summary") or {}
    shown = f"{count} datagram(s)"
    if summary.get("omitted"):  # a big case: the chart draws the first, the last and the named ones
        shown = f"{count} of {summary.get('datagrams')} datagrams drawn (all in the pcap)"
    sub = (
        f"SUT {result.get('sut', '?')} \u00b7 profile {result.get('profile', '?')} \u00b7 "
        f"{shown} \u00b7 capture {result.get('capture', '?')}"
    )
    add(f'<text x="10" y="38" fill="#555555" class="subline">{esc(sub)}</text>')

    # Tinted rows behind the decisive datagram, drawn first so lifelines stay visible over them.
    for row, ev in enumerate(events):
        if ev.decisive:
            y = FIRST_ROW + row * ROW + ROW / 2 + 6
            add(
                f'<rect class="decisive-band" x="2" y="{y - ROW / 2 - 6:.1f}" width="{width - 4}" height="{ROW}" '
                f'fill="{DECISIVE_BAND}"/>'
            )

    # The SUT group: one shaded box behind every SUT lifeline, labelled with the adapter.
    sut_nodes = [n for n in lifelines if is_sut(n)]
    add('<g class="sut-group">')
    if sut_nodes:
        x0 = min(x_of[n] for n in sut_nodes) - COLUMN / 2 + 8
        x1 = max(x_of[n] for n in sut_nodes) + COLUMN / 2 - 8
        add(
            f'<rect x="{x0:.1f}" y="{TOP - 14}" width="{x1 - x0:.1f}" height="{bottom - TOP + 14}" rx="8" '
            f'fill="{SUT_FILL}" fill-opacity="0.75" stroke="{SUT_EDGE}" stroke-dasharray="4 3"/>'
        )
        add(
            f'<text x="{(x0 + x1) / 2:.1f}" y="{TOP - 3}" text-anchor="middle" font-size="10" fill="{SUT_INK}">'
            f"SUT: {esc(result.get('sut', '?'))}</text>"
        )
    for n in sut_nodes:
        out.extend(_lifeline(n, x_of[n], bottom, sut=True))
    add("</g>")
    for n in lifelines:
        if not is_sut(n):
            out.extend(_lifeline(n, x_of[n], bottom, sut=False))

    for row, ev in enumerate(events):
        y = FIRST_ROW + row * ROW + ROW / 2 + 6
        out.extend(_event(ev, x_of, y, width))

    out.extend(_legend(legend_y))
    add("</svg>")
    return "\n".join(out) + "\n"


def _lifeline(node: str, x: float, bottom: float, *, sut: bool) -> list[str]:
    fill, edge, ink = (SUT_FILL, SUT_INK, SUT_INK) if sut else ("#f4f4f4", "#777777", INK)
    w = COLUMN - 40
    cls = "lifeline sut" if sut else "lifeline"
    dots = "" if sut else ' stroke-dasharray="2 3"'
    return [
        f'<g class="{cls}" data-node="{esc(node)}">',
        f'<line x1="{x:.1f}" y1="{TOP + HEAD_H}" x2="{x:.1f}" y2="{bottom}" stroke="{edge}" '
        f'stroke-width="{1.5 if sut else 1}"{dots}/>',
        f'<rect x="{x - w / 2:.1f}" y="{TOP}" width="{w}" height="{HEAD_H}" rx="4" '
        f'fill="{"#ffffff" if sut else fill}" stroke="{edge}" stroke-width="{2 if sut else 1}"/>',
        f'<text x="{x:.1f}" y="{TOP + 18}" text-anchor="middle" font-weight="bold" fill="{ink}">'
        f"{esc(_short(node, 26))}</text>",
        "</g>",
    ]


def _event(ev: _Event, x_of: Mapping[str, float], y: float, width: int) -> list[str]:
    classes = [ev.kind]
    if ev.decisive:
        classes.append("decisive")
    if ev.malformed:
        classes.append("malformed")
    if ev.kind == "missing":
        colour, stroke_w, dash = MISSING, 2.0, "7 5"
    elif ev.decisive:
        colour, stroke_w, dash = DECISIVE, 3.5, ""
    elif ev.malformed:
        colour, stroke_w, dash = MALFORMED, 2.0, ""
    else:
        colour, stroke_w, dash = (SUT_INK if is_sut(ev.src) else INK), 1.4, ""
    attrs = f'class="{" ".join(classes)}" data-src="{esc(ev.src)}" data-dst="{esc(ev.dst)}"'
    if ev.seq is not None:
        attrs += f' data-seq="{ev.seq}"'
    if ev.step is not None:
        attrs += f' data-step="{esc(ev.step)}"'
    out = [f"<g {attrs}>", f"<title>{esc(ev.tooltip)}</title>"]
    out.append(f'<text x="8" y="{y + 4:.1f}" font-size="11" fill="#555555" class="time">{esc(ev.time)}</text>')
    x1, x2 = x_of[ev.src], x_of[ev.dst]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    weight = ' font-weight="bold"' if ev.decisive or ev.kind == "missing" else ""
    style = ' font-style="italic"' if ev.kind == "missing" else ""
    label = esc(_short(ev.label))
    if x1 == x2:  # a node talking to itself: a small loop to the right
        out.append(
            f'<path d="M{x1:.1f},{y - 8:.1f} h34 v16 h-30" fill="none" stroke="{colour}" '
            f'stroke-width="{stroke_w}"{dash_attr}/>'
        )
        out.append(_arrowhead(x1 + 4, y + 8, -1, colour))
        out.append(
            f'<text x="{x1 + 40:.1f}" y="{y - 10:.1f}" fill="{colour}"{weight}{style} '
            f'class="label"{HALO}>{label}</text>'
        )
    else:
        direction = 1 if x2 > x1 else -1
        tip = x2 - 2 * direction
        out.append(
            f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{tip - 8 * direction:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="{stroke_w}"{dash_attr}/>'
        )
        out.append(_arrowhead(tip, y, direction, colour))
        tx, anchor = _label_position((x1 + x2) / 2, len(_short(ev.label)), width)
        out.append(
            f'<text x="{tx:.1f}" y="{y - 7:.1f}" text-anchor="{anchor}" fill="{colour}"{weight}{style} '
            f'class="label"{HALO}>{label}</text>'
        )
        if ev.malformed:
            anchor = "start" if direction > 0 else "end"
            out.append(
                f'<text x="{tip + 6 * direction:.1f}" y="{y + 5:.1f}" text-anchor="{anchor}" font-size="15" '
                f'font-weight="bold" fill="{MALFORMED}" class="malformed-mark">\u2717</text>'
            )
    out.append("</g>")
    return out


def _label_position(mid: float, chars: int, width: int) -> tuple[float, str]:
    """Centre a label over its arrow, but keep it clear of the time column and the right edge."""
    half = chars * 6.6 / 2
    if mid - half < LEFT:
        return LEFT + 2, "start"
    if mid + half > width - 4:
        return width - 4, "end"
    return mid, "middle"


def _legend(y: float) -> list[str]:
    items = [
        (INK, 1.4, "", "datagram"),
        (SUT_INK, 1.4, "", "sent by the SUT"),
        (DECISIVE, 3.5, "", "decisive datagram"),
        (MALFORMED, 2.0, "", "malformed"),
        (MISSING, 2.0, "7 5", "expected, never came"),
    ]
    out = ['<g class="legend" font-size="11">']
    x = 10.0
    for colour, w, dash, text in items:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 30:.1f}" y2="{y:.1f}" stroke="{colour}" '
            f'stroke-width="{w}"{dash_attr}/>'
        )
        out.append(f'<text x="{x + 36:.1f}" y="{y + 4:.1f}" fill="#444444">{esc(text)}</text>')
        x += 46 + 7 * len(text)
    out.append(
        f'<rect x="{x:.1f}" y="{y - 7:.1f}" width="30" height="14" rx="3" fill="{SUT_FILL}" stroke="{SUT_EDGE}"/>'
    )
    out.append(f'<text x="{x + 36:.1f}" y="{y + 4:.1f}" fill="#444444">system under test</text>')
    out.append("</g>")
    return out
