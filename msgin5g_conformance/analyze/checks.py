"""The relay rules of the live suite, judged passively on one capture's datagrams.

One pass over the frames; the state held is the open exchanges only (a request waiting for its
uplink copy, a response waiting for its downlink copy or proving its discard), so memory is bounded
by the open exchanges, not by the capture. Every verdict names its frames and requirements; what the
trace cannot decide is inconclusive with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from msgin5g_conformance.analyze.capture import Frame, Problem
from msgin5g_conformance.analyze.roles import Topology
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.numbers import Code, MessageType, code_name
from msgin5g_conformance.world.profile import Profile

UL = ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1")
DL = ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1")
DISCARD = ("REQ-RELAY-DL-2",)
DISCARD_OTHER = ("REQ-RELAY-DL-3",)
FORMAT = ("REQ-COAP-MSG-4",)

# The requirements the offline checks judge, by role of the SUT (the self-test compares these with
# the live verdicts); a requirement missing here needs the upper tester or the harness's own stimulus.
JUDGEABLE: dict[str, frozenset[str]] = {
    "relay": frozenset({*UL, *DL, *DISCARD, *DISCARD_OTHER, *FORMAT}),
    "gateway": frozenset(),
    "constrained-ue": frozenset(),
}


@dataclass
class Judgement:
    """One exchange judged: what it is, its verdict, the frames that decided it."""

    title: str
    verdict: Verdict
    reason: str
    requirements: tuple[str, ...]
    frames: list[int]
    when: float
    covered_ms: float | None = None
    topology: str = ""


@dataclass
class _Open:
    """An exchange waiting for the relay's copy (or, for a discard, for the end of the trace)."""

    kind: str  # "uplink" | "downlink" | "discard"
    frame: Frame
    msg: codec.CoapMessage
    recipient: str
    deadline: float
    to: tuple[str, int] | None = None
    requirements: tuple[str, ...] = ()
    why: str = ""
    seen: list[int] = field(default_factory=list)
    # an altered copy: judged when the wait ends, unless an intact copy comes first (a relay that
    # floods look-alikes may still relay the message itself, which the live check finds)
    near: tuple[Frame, codec.CoapMessage] | None = None


def _recipient(msg: codec.CoapMessage, profile: Profile) -> str | None:
    values = msg.option_values(profile.recipient_option)
    if not values:
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _fields(msg: codec.CoapMessage, profile: Profile) -> tuple[object, ...]:
    """What a relay must carry unchanged: code, Uri-Path, Uri-Query, recipient, Content-Format, payload."""
    every = tuple(sorted(msg.options))  # as encoded: 50 in two bytes is not the 50 the sender wrote
    return (
        msg.code,
        msg.uri_path(),
        msg.uri_query(),
        _recipient(msg, profile),
        msg.content_format(),
        msg.payload,
        every,
    )


def _differences(want: codec.CoapMessage, got: codec.CoapMessage, profile: Profile) -> list[str]:
    names = ("code", "Uri-Path", "Uri-Query", "recipient option", "Content-Format", "payload", "options as encoded")
    return [n for n, a, b in zip(names, _fields(want, profile), _fields(got, profile), strict=True) if a != b]


class RelayAnalysis:
    """Feeds frames of one capture; yields judgements as exchanges close."""

    def __init__(self, topology: Topology, profile: Profile) -> None:
        self.t = topology
        self.p = profile
        self.wait_s = profile.timers.response_ms / 1000
        self.late_s = profile.timers.late_window_ms / 1000
        self.open: list[_Open] = []
        self.last_when = 0.0
        self.frames = 0
        self.seen_mids: set[tuple[tuple[str, int], int]] = set()

    def mine(self, f: Frame) -> bool:
        ends = self.t.sut_endpoints()
        return (f.src in ends or f.dst in ends) and self.t.watches(f.when)

    def tick(self, when: float) -> Iterator[Judgement]:
        """Time goes on (any frame of the capture): waits that expired close."""
        if self.t.observed is not None:  # past the end of the topology's time its addresses are not watched
            when = min(when, self.t.observed[1])
        self.last_when = max(self.last_when, when)
        yield from self._expire(when)

    def feed(self, f: Frame) -> Iterator[Judgement]:
        self.frames += 1
        from_sut = f.src in (self.t.pc5, self.t.uu)
        try:
            msg = codec.parse(f.payload)
        except codec.MalformedDatagram as exc:
            if from_sut:
                yield Judgement(
                    "datagram from the relay",
                    Verdict.FAIL,
                    f"not a well-formed CoAP message: {exc}",
                    FORMAT,
                    [f.number],
                    f.when,
                    topology=self.t.name,
                )
                if f.src == self.t.pc5:
                    yield from self._malformed_during_discard(f)
            return
        if f.truncated:
            yield Judgement(
                "truncated frame",
                Verdict.INCONCLUSIVE,
                "the capture cut this frame short",
                (),
                [f.number],
                f.when,
                topology=self.t.name,
            )
            return
        key = (f.src, msg.mid)
        if msg.mtype in (MessageType.CON, MessageType.NON) and key in self.seen_mids:
            return  # a retransmission: judged once
        if msg.mtype in (MessageType.CON, MessageType.NON):
            self.seen_mids.add(key)
        if from_sut:
            yield from self._from_relay(f, msg)
        elif f.dst == self.t.pc5:
            self._uplink_request(f, msg)
        elif f.dst == self.t.uu and f.src[0] == self.t.scms[0]:
            yield from self._downlink_response(f, msg)

    def _uplink_request(self, f: Frame, msg: codec.CoapMessage) -> None:
        if msg.code != Code.GET or f.dst[1] != self.p.port:
            return  # REQ-RELAY-UL-2 (open reading): every legal choice passes
        if self.p.port_match in ("source", "both") and f.src[1] != self.p.port:
            return
        recipient = _recipient(msg, self.p)
        if recipient != self.t.scms_recipient:
            return
        self.open.append(_Open("uplink", f, msg, recipient, f.when + self.wait_s, self.t.scms, UL))

    def _downlink_response(self, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        if not 0x40 <= msg.code <= 0xBF:
            return
        if self.p.port_match in ("source", "both") and f.src[1] != self.p.port:
            self.open.append(_Open("discard", f, msg, "", 0.0, None, DISCARD, "not from UDP port 65401"))
            return
        recipient = _recipient(msg, self.p)
        if msg.code not in self.p.relayed_codes:
            if self.p.reading("other_response_codes") == "discard":
                self.open.append(
                    _Open(
                        "discard",
                        f,
                        msg,
                        recipient or "",
                        0.0,
                        None,
                        DISCARD_OTHER,
                        f"code {code_name(msg.code)} (reading other_response_codes: discard)",
                    )
                )
            return
        client = self.t.client_by_id(recipient) if recipient is not None else None
        if client is None:
            why = "no recipient option" if recipient is None else f"recipient {recipient!r} names no linked client"
            self.open.append(_Open("discard", f, msg, recipient or "", 0.0, None, DISCARD, why))
            return
        linked = client.linked_at(f.when)
        if linked is None:
            yield Judgement(
                f"{code_name(msg.code)} for {client.name}",
                Verdict.INCONCLUSIVE,
                f"the role map does not say whether {client.name} had a one-to-one link at this time",
                DL + DISCARD,
                [f.number],
                f.when,
                topology=self.t.name,
            )
            return
        if linked:
            self.open.append(_Open("downlink", f, msg, recipient or "", f.when + self.wait_s, client.endpoint, DL))
        else:
            self.open.append(
                _Open(
                    "discard",
                    f,
                    msg,
                    recipient or "",
                    0.0,
                    None,
                    DISCARD,
                    f"{client.name} had no one-to-one link at this time",
                )
            )

    def _from_relay(self, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        if (msg.mtype == MessageType.ACK and msg.code == 0) or msg.mtype == MessageType.RST:
            return
        for o in list(self.open):
            if o.kind == "uplink" and f.src == self.t.uu and f.dst == o.to and msg.code == o.msg.code:
                if msg.uri_path() != o.msg.uri_path() or msg.uri_query() != o.msg.uri_query():
                    continue
                if _differences(o.msg, msg, self.p):
                    o.near = o.near or (f, msg)
                    return
                self.open.remove(o)
                yield self._copied(o, f, msg, "GET relayed uplink")
                if o.near is not None:  # the look-alike before the copy is a message of its own
                    yield self._unaccounted(*o.near)
                return
            if (
                o.kind == "downlink"
                and f.src == self.t.pc5
                and msg.code == o.msg.code
                and (f.dst == o.to or _recipient(msg, self.p) == o.recipient)
            ):
                if f.dst == o.to and msg.mtype != MessageType.ACK and _differences(o.msg, msg, self.p):
                    o.near = o.near or (f, msg)
                    return
                self.open.remove(o)
                if f.dst != o.to or msg.mtype == MessageType.ACK:
                    where = f"delivered to {f.dst[0]}:{f.dst[1]}, not to the named client {o.to}"
                    yield Judgement(
                        f"{code_name(o.msg.code)} relayed downlink",
                        Verdict.FAIL,
                        where if f.dst != o.to else "relayed as an ACK, which answers no CON of the client",
                        o.requirements,
                        [o.frame.number, f.number],
                        o.frame.when,
                        topology=self.t.name,
                    )
                    return
                yield self._copied(o, f, msg, f"{code_name(o.msg.code)} relayed downlink")
                if o.near is not None:  # the look-alike before the copy is a message of its own
                    yield self._unaccounted(*o.near)
                return
            if o.kind == "discard" and f.src == self.t.pc5 and msg.code == o.msg.code and msg.payload == o.msg.payload:
                self.open.remove(o)
                after = (f.when - o.frame.when) * 1000
                yield Judgement(
                    f"{code_name(o.msg.code)} to be discarded",
                    Verdict.FAIL,
                    f"relayed downlink to {f.dst[0]}:{f.dst[1]} {after:.0f} ms later ({o.why})",
                    o.requirements,
                    [o.frame.number, f.number],
                    o.frame.when,
                    topology=self.t.name,
                )
                return
        if msg.mtype != MessageType.ACK:  # an ACK answers a CON sent to the relay
            yield self._unaccounted(f, msg)

    def _unaccounted(self, f: Frame, msg: codec.CoapMessage) -> Judgement:
        """A message no exchange accounts for: a request goes uplink to the SCM-S only, a response
        downlink to the client it names only (as the live run's end-of-case check)."""
        request = 0 < msg.code < 0x20
        return Judgement(
            "message from the relay",
            Verdict.FAIL,
            f"{code_name(msg.code)} to {f.dst[0]}:{f.dst[1]} that no exchange of the trace accounts for",
            ("REQ-RELAY-UL-1",) if request else ("REQ-RELAY-DL-1",),
            [f.number],
            f.when,
            topology=self.t.name,
        )

    def _malformed_during_discard(self, f: Frame) -> Iterator[Judgement]:
        """A malformed datagram from the PC5 side while a discard is being proved: the trace cannot
        tell that it is not the discarded message, mangled (the live absence check fails on it too)."""
        for o in [o for o in self.open if o.kind == "discard"]:
            self.open.remove(o)
            yield Judgement(
                f"{code_name(o.msg.code)} to be discarded",
                Verdict.FAIL,
                f"a malformed datagram went from the relay to {f.dst[0]}:{f.dst[1]} "
                f"{(f.when - o.frame.when) * 1000:.0f} ms later ({o.why})",
                o.requirements,
                [o.frame.number, f.number],
                o.frame.when,
                topology=self.t.name,
            )

    def _title(self, o: _Open) -> str:
        return "GET relayed uplink" if o.kind == "uplink" else f"{code_name(o.msg.code)} relayed downlink"

    def _copied(self, o: _Open, f: Frame, msg: codec.CoapMessage, title: str) -> Judgement:
        diff = _differences(o.msg, msg, self.p)
        frames = [o.frame.number, f.number]
        if diff:
            return Judgement(
                title,
                Verdict.FAIL,
                f"altered when relayed: {', '.join(diff)} differ",
                o.requirements,  # as the live check of the copy: it decides both
                frames,
                o.frame.when,
                topology=self.t.name,
            )
        after = (f.when - o.frame.when) * 1000
        return Judgement(
            title,
            Verdict.PASS,
            f"relayed intact {after:.0f} ms later",
            o.requirements,
            frames,
            o.frame.when,
            topology=self.t.name,
        )

    def _expire(self, now: float) -> Iterator[Judgement]:
        for o in [o for o in self.open if o.kind != "discard" and o.deadline < now]:
            self.open.remove(o)
            if o.near is not None:
                yield self._copied(o, *o.near, self._title(o))
                continue
            what = "GET not relayed uplink" if o.kind == "uplink" else f"{code_name(o.msg.code)} not relayed downlink"
            req = o.requirements  # as the live check of the copy: it decides both
            yield Judgement(
                what,
                Verdict.FAIL,
                f"no copy within {self.wait_s * 1000:.0f} ms",
                req,
                [o.frame.number],
                o.frame.when,
                topology=self.t.name,
            )

    def finish(self) -> Iterator[Judgement]:
        """The end of the trace: discards proved over the rest of it; waits it cut short."""
        if self.t.observed is not None:  # the trace went on, silent, until the capture's end
            yield from self.tick(self.t.observed[1])
        for o in self.open:
            rest = self.last_when - o.frame.when
            if o.kind == "discard":
                ms = rest * 1000
                if rest >= self.late_s:
                    yield Judgement(
                        f"{code_name(o.msg.code)} discarded",
                        Verdict.PASS,
                        f"not relayed for the {ms:.0f} ms the trace goes on ({o.why})",
                        o.requirements,
                        [o.frame.number],
                        o.frame.when,
                        ms,
                        self.t.name,
                    )
                else:
                    yield Judgement(
                        f"{code_name(o.msg.code)} discarded",
                        Verdict.INCONCLUSIVE,
                        f"the trace ends {ms:.0f} ms after it, before the profile's "
                        f"{self.late_s * 1000:.0f} ms late window ({o.why})",
                        o.requirements,
                        [o.frame.number],
                        o.frame.when,
                        ms,
                        self.t.name,
                    )
            elif o.near is not None:
                yield self._copied(o, *o.near, self._title(o))
            else:
                yield Judgement(
                    f"{'GET' if o.kind == 'uplink' else code_name(o.msg.code)} relayed",
                    Verdict.INCONCLUSIVE,
                    f"the trace ends {rest * 1000:.0f} ms after it, before the "
                    f"{self.wait_s * 1000:.0f} ms wait expired",
                    o.requirements,
                    [o.frame.number],
                    o.frame.when,
                    topology=self.t.name,
                )
        self.open = []


def analyse(
    frames: Iterable[Frame | Problem], topologies: list[Topology], profile: Profile
) -> tuple[list[Judgement], int, int]:
    """Judge one capture; returns (judgements, frames judged, CoAP-looking frames of the role map)."""
    analyses = [RelayAnalysis(t, profile) for t in topologies if t.role == "relay"]
    out: list[Judgement] = []
    matched = 0
    for item in frames:
        if isinstance(item, Problem):
            out.append(
                Judgement(
                    f"capture problem: {item.kind}",
                    Verdict.INCONCLUSIVE,
                    f"{item.message} (byte offset {item.offset})",
                    (),
                    [item.frame],
                    0.0,
                )
            )
            continue
        for a in analyses:
            out.extend(a.tick(item.when))
        for a in analyses:
            if a.mine(item):
                matched += 1
                out.extend(a.feed(item))
                break
    for a in analyses:
        out.extend(a.finish())
    return out, sum(a.frames for a in analyses), matched
