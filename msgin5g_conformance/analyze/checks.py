"""The rules of the live suite, judged passively on one capture's datagrams: the relay's here,
the Gateway UE's in :mod:`.gateway`, the Constrained UE's in :mod:`.cue`; :func:`analyse` runs the
analysis of each topology's role.

One pass over the frames; the state held is the open exchanges only (a request waiting for its
uplink copy, a response waiting for its downlink copy or proving its discard), so memory is bounded
by the open exchanges, not by the capture. Every verdict names its frames and requirements; what the
trace cannot decide is inconclusive with the reason.
"""

from __future__ import annotations

import bisect
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from msgin5g_conformance.analyze.capture import Frame, Problem
from msgin5g_conformance.analyze.roles import Client, Topology
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.numbers import OPTION_FORMATS, Code, MessageType, OptionNumber, code_name
from msgin5g_conformance.world.profile import Profile

UL = ("REQ-RELAY-UL-1", "REQ-RELAY-TERM-1")
DL = ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1")
DISCARD = ("REQ-RELAY-DL-2",)
DISCARD_OTHER = ("REQ-RELAY-DL-3",)
FORMAT = ("REQ-COAP-MSG-4",)

# The requirements the offline checks judge, by role of the SUT (the self-test compares these with
# the live verdicts); a requirement missing here needs the upper tester or the harness's own stimulus.
# (gateway.JUDGED and cue.JUDGED say the same of their modules; tests check the two agree.)
JUDGEABLE: dict[str, frozenset[str]] = {
    "relay": frozenset({*UL, *DL, *DISCARD, *DISCARD_OTHER, *FORMAT}),
    "gateway": frozenset({"REQ-GW-BULK-1", "REQ-GW-BULK-2", "REQ-GW-BULK-3", "REQ-GW-CFG-1", *FORMAT}),
    # REQ-CUE-RSP-2 is judged in part (the acknowledgement CUE-RSP-004 checks), the rest by the
    # upper tester: not listed, so a self-test does not expect the offline verdict to decide it.
    "constrained-ue": frozenset({"REQ-CUE-REQ-1", *FORMAT}),
}


@dataclass(slots=True)
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


@dataclass(slots=True)
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
    seq: int = 0  # the order it opened in (set by RelayAnalysis._add)
    keys: tuple[tuple[object, ...], ...] = ()  # where RelayAnalysis._index files it
    # an altered copy: judged when the wait ends, unless an intact copy comes first (a relay that
    # floods look-alikes may still relay the message itself, which the live check finds)
    near: tuple[Frame, codec.CoapMessage] | None = None
    # relaying it is one legal choice of several (a message with a critical option the relay may
    # not recognise, RFC 7252 5.4.1): its copy is accounted for, its absence judged nothing
    optional: bool = False


EXCHANGE_LIFETIME_S = 247.0  # RFC 7252 4.8.2 with the default transmission parameters


class RecentMids:
    """Message IDs seen per sender, each for EXCHANGE_LIFETIME: within it the same ID again is a
    retransmission (RFC 7252 4.5), after it the ID may be reused for a new message. Bounded by the
    messages of one exchange lifetime."""

    def __init__(self) -> None:
        self.seen: dict[tuple[tuple[str, int], int], float] = {}
        self.prune_at = 4096

    def repeated(self, key: tuple[tuple[str, int], int], when: float) -> bool:
        """Whether ``key`` (sender, Message ID) was seen within the lifetime; records it if not."""
        first = self.seen.get(key)
        if first is not None and when - first < EXCHANGE_LIFETIME_S:
            return True
        self.seen[key] = when
        if len(self.seen) >= self.prune_at:
            self.seen = {k: t for k, t in self.seen.items() if when - t < EXCHANGE_LIFETIME_S}
            self.prune_at = max(4096, 2 * len(self.seen))
        return False


def _recipient(msg: codec.CoapMessage, profile: Profile) -> str | None:
    """The first recipient option's value, UTF-8 decoded (None: absent or not UTF-8)."""
    number = profile.recipient_option
    for n, value in msg.options:
        if n == number:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return None
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


# RFC 7252 4.8.2 MAX_TRANSMIT_SPAN with the defaults (ACK_TIMEOUT 2 s, ACK_RANDOM_FACTOR 1.5):
# a sender's copies of one message come within this of its first; NON repeats too (4.3)
ACK_TIMEOUT_S = 2.0
ACK_RANDOM_FACTOR = 1.5


def _up_key(msg: codec.CoapMessage) -> tuple[object, ...]:
    """The index key of an uplink GET and of its copy (raw option bytes: no decoding can fail)."""
    paths, queries = [], []
    for n, value in msg.options:  # one pass (this runs for every GET and every copy)
        if n == _URI_PATH:
            paths.append(value)
        elif n == _URI_QUERY:
            queries.append(value)
    return ("up", msg.code, tuple(paths), tuple(queries))


_URI_PATH, _URI_QUERY = int(OptionNumber.URI_PATH), int(OptionNumber.URI_QUERY)
# plain ints for what every frame is compared with (an enum member is looked up on its class)
_CON, _NON, _ACK, _RST = (int(t) for t in (MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST))
_GET = int(Code.GET)
_PASS = Verdict.PASS


def _differences(want: codec.CoapMessage, got: codec.CoapMessage, profile: Profile) -> list[str]:
    if want.options == got.options and want.payload == got.payload and want.code == got.code:
        return []  # copied byte for byte: the commonest case
    names = ("code", "Uri-Path", "Uri-Query", "recipient option", "Content-Format", "payload", "options as encoded")
    return [n for n, a, b in zip(names, _fields(want, profile), _fields(got, profile), strict=True) if a != b]


class RelayAnalysis:
    """Feeds frames of one capture; yields judgements as exchanges close."""

    def __init__(self, topology: Topology, profile: Profile) -> None:
        self.t = topology
        self.p = profile
        self.wait_s = profile.timers.response_ms / 1000
        self.late_s = profile.timers.late_window_ms / 1000
        # the open exchanges in the order they opened, filed by the key the relay's copy is
        # looked up by, and the waits by deadline: a frame costs a few look-ups, not a scan
        self.open: dict[int, _Open] = {}
        self._index: dict[tuple[object, ...], dict[int, _Open]] = {}
        # the waits by deadline: every wait is as long, so in a capture in time order they end in
        # the order they opened (a queue); a frame out of order is put in its place
        self._deadlines: deque[tuple[float, int]] = deque()
        self._next = 0
        self._discards = 0  # how many of the open exchanges are discards (none: no look-up for one)
        self.last_when = 0.0
        self.frames = 0
        # datagrams a sender may still repeat (RFC 7252 4.2, 4.3): the hash of (sender, receiver,
        # MID, bytes), and in arrival order each one's hash and time; older than MAX_TRANSMIT_SPAN
        # is forgotten, so a MID the sender uses again later is a new message, and the memory is
        # bounded by the span (some 70 bytes a datagram, flat arrays rather than objects)
        self.span_s = ACK_TIMEOUT_S * (2**profile.timers.sut_max_retransmit - 1) * ACK_RANDOM_FACTOR
        self.seen: set[int] = set()
        self._seen_keys = array("q")
        self._seen_times = array("d")
        self._seen_head = 0
        self._ends = topology.sut_endpoints()
        self._observed = topology.observed
        self._port, self._relayed_codes = profile.port, profile.relayed_codes
        self._known_options = frozenset({*OPTION_FORMATS, profile.recipient_option})
        self._pc5, self._uu, self._scms_host = topology.pc5, topology.uu, topology.scms[0]
        self._source_port = profile.port_match in ("source", "both")  # "from UDP port 65401": the source
        self._clients: dict[str, Client] = {}  # UE id -> client (the role map's first of an id, as client_by_id)
        # what clients sent the PC5 side, for MAX_TRANSMIT_SPAN: (client, MID) of each CON -> when (an
        # ACK of the relay to a client carries a response piggybacked only on one of them, RFC 7252
        # 5.2.1), and (client, token) of each request the relay did not have to relay (its own error
        # answer echoes that token, 5.2); keyed by the hash of the pair: 64 bits, compact
        self._client_cons: dict[int, float] = {}
        self._client_cons_prune = 4096
        for c in topology.clients:
            self._clients.setdefault(c.ue_id, c)

    def _add(self, o: _Open) -> None:
        self._next += 1
        o.seq = self._next
        self.open[o.seq] = o
        code = o.msg.code
        if o.kind == "uplink":
            o.keys = (_up_key(o.msg),)
        elif o.kind == "downlink":
            o.keys = (("to", code, o.to), ("rcpt", code, o.recipient))
        else:
            o.keys = (("discard", code, o.msg.payload),)
            self._discards += 1
        for k in o.keys:
            self._index.setdefault(k, {})[o.seq] = o
        if o.kind != "discard":
            deadlines = self._deadlines
            if not deadlines or deadlines[-1][0] <= o.deadline:
                deadlines.append((o.deadline, o.seq))
            else:
                bisect.insort(deadlines, (o.deadline, o.seq))

    def _drop(self, o: _Open) -> None:
        del self.open[o.seq]
        if o.kind == "discard":
            self._discards -= 1
        for k in o.keys:
            bucket = self._index[k]
            del bucket[o.seq]
            if not bucket:
                del self._index[k]

    def _candidates(self, f: Frame, msg: codec.CoapMessage, recipient: str | None) -> list[_Open]:
        """The open exchanges a datagram from the relay may be the copy of, oldest first (an uplink
        one filed by the raw Uri-Path and Uri-Query it must carry: equal, by construction)."""
        index, code = self._index, msg.code
        if f.src == self._uu and f.src != self._pc5:  # one key: the bucket as it is, in opening order
            bucket = index.get(_up_key(msg))
            return list(bucket.values()) if bucket else []
        found = []
        if f.src == self._uu:
            found.append(index.get(_up_key(msg)))
        if f.src == self._pc5:
            to = index.get(("to", code, f.dst))
            named = index.get(("rcpt", code, recipient or ""))
            if not self._discards and f.src != self._uu:  # the common case: a downlink copy
                if not to:
                    return list(named.values()) if named else []
                if not named or named.keys() == to.keys():
                    return list(to.values())
            found += (to, named)
            if self._discards:
                found.append(index.get(("discard", code, msg.payload)))
        buckets = [b for b in found if b]
        if not buckets:
            return []
        first = buckets[0]
        keys = first.keys()
        for b in buckets[1:]:  # one bucket, or the same opens twice (a loop: no generator per datagram)
            if b.keys() != keys:
                break
        else:
            return list(first.values())  # filed in the order they opened
        found_by_seq = {o.seq: o for b in buckets for o in b.values()}
        return [found_by_seq[n] for n in sorted(found_by_seq)]

    def _repeated(self, f: Frame, msg: codec.CoapMessage) -> bool:
        """Whether a CON/NON is a copy of one its sender sent within MAX_TRANSMIT_SPAN."""
        seen, keys, times = self.seen, self._seen_keys, self._seen_times
        cutoff, head = f.when - self.span_s, self._seen_head
        while head < len(times) and times[head] < cutoff:
            seen.discard(keys[head])
            head += 1
        if head > 4096 and head * 4 > len(times):  # the forgotten quarter goes (memory: the span, not twice it)
            del keys[:head]
            del times[:head]
            head = 0
        self._seen_head = head
        key = hash((f.src, f.dst, msg.mid, f.payload))  # 64 bits: a collision is negligible
        if key in seen:
            return True
        seen.add(key)
        keys.append(key)
        times.append(f.when)
        return False

    def mine(self, f: Frame) -> bool:
        ends, observed = self._ends, self._observed  # Topology.watches, inlined: this runs for every frame
        return (f.src in ends or f.dst in ends) and (observed is None or observed[0] <= f.when <= observed[1])

    def tick(self, when: float) -> Iterable[Judgement]:
        """Time goes on (any frame of the capture): waits that expired close."""
        observed = self._observed
        if observed is not None and when > observed[1]:  # past the end of the topology's time its
            when = observed[1]  # addresses are not watched
        if when > self.last_when:
            self.last_when = when
        deadlines, opened = self._deadlines, self.open
        while deadlines and deadlines[0][0] < when:
            if deadlines[0][1] in opened:
                return self._expire(when)
            deadlines.popleft()  # the wait of an exchange its copy closed: nothing to judge
        return ()  # the common case, decided without a list

    def run(self, frames: Iterable[Frame | Problem], out: list[Judgement]) -> tuple[list[Judgement], int, int]:
        """:func:`analyse` of this topology alone (a field trace, the benchmark): what tick and mine
        do for every frame, inlined, so that a frame that closes nothing costs no call but feed."""
        matched = 0
        feed, extend, tick = self.feed, out.extend, self.tick
        ends, observed, deadlines = self._ends, self._observed, self._deadlines
        for item in frames:
            if isinstance(item, Problem):
                out.append(_problem_judgement(item))
                continue
            when = item.when
            if observed is None or when <= observed[1]:
                if deadlines and deadlines[0][0] < when:
                    expired = tick(when)
                    if expired:
                        extend(expired)
                elif when > self.last_when:
                    self.last_when = when
                if (item.src in ends or item.dst in ends) and (observed is None or observed[0] <= when):
                    matched += 1
                    judged = feed(item)
                    if judged:
                        extend(judged)
            else:  # past the topology's time: its waits end there, its addresses are not watched
                expired = tick(when)
                if expired:
                    extend(expired)
        out.extend(self.finish())
        return out, self.frames, matched

    def feed(self, f: Frame) -> Iterable[Judgement]:
        """The judgements this frame closes (mostly none: a plain function, not a generator, as it
        runs for every frame)."""
        self.frames += 1
        src = f.src
        from_sut = src == self._pc5 or src == self._uu
        try:
            msg = codec.parse(f.payload)
        except codec.MalformedDatagram as exc:
            if not from_sut:
                return ()
            bad = Judgement(
                "datagram from the relay",
                Verdict.FAIL,
                f"not a well-formed CoAP message: {exc}",
                FORMAT,
                [f.number],
                f.when,
                topology=self.t.name,
            )
            return [bad, *self._malformed_during_discard(f)] if src == self._pc5 else [bad]
        if f.truncated:
            why = "the capture cut this frame short"
            return [
                Judgement("truncated frame", Verdict.INCONCLUSIVE, why, (), [f.number], f.when, topology=self.t.name)
            ]
        if msg.mtype <= _NON and self._repeated(f, msg):  # CON (0) or NON (1)
            return ()  # a retransmission: judged once
        if from_sut:
            return self._from_relay(f, msg)
        if f.dst == self._pc5:
            if msg.mtype == _CON:
                self._client_sent(f, msg.mid)
            if not self._uplink_request(f, msg) and 0 < msg.code < 0x20:
                self._client_sent(f, msg.token)  # a request the relay may answer itself
        elif f.dst == self._uu and src[0] == self._scms_host:
            return self._downlink_response(f, msg)
        return ()

    def _uplink_request(self, f: Frame, msg: codec.CoapMessage) -> bool:
        """A client's request to the PC5 side: whether it opened a wait for its uplink copy."""
        if msg.code != _GET or f.dst[1] != self._port:
            return False  # REQ-RELAY-UL-2 (open reading): every legal choice passes
        if self._source_port and f.src[1] != self._port:
            return False
        recipient = _recipient(msg, self.p)
        if recipient != self.t.scms_recipient:
            return False
        if self._unknown_critical(msg):  # RFC 7252 5.4.1: a relay that ends CoAP rejects it (4.02),
            # one that forwards relays it (reading relay_model): either passes
            self._add(_Open("uplink", f, msg, recipient, f.when + self.wait_s, self.t.scms, (), optional=True))
            return False
        self._add(_Open("uplink", f, msg, recipient, f.when + self.wait_s, self.t.scms, UL))
        return True

    def _unknown_critical(self, msg: codec.CoapMessage) -> bool:
        """Whether the message carries a critical option (odd number, RFC 7252 5.4.6) that is neither
        registered nor the profile's recipient option: one the relay may not recognise."""
        known = self._known_options
        for n, _ in msg.options:  # noqa: SIM110 (a loop, not any(): it runs for every request and response)
            if n & 1 and n not in known:
                return True
        return False

    def _downlink_response(self, f: Frame, msg: codec.CoapMessage) -> Iterable[Judgement]:
        """A response from the SCM-S side opens its downlink wait or its discard (mostly nothing to
        judge yet: a plain function, not a generator, as it runs for every response)."""
        if not 0x40 <= msg.code <= 0xBF:
            return ()
        if self._source_port and f.src[1] != self._port:
            self._add(_Open("discard", f, msg, "", 0.0, None, DISCARD, "not from UDP port 65401"))
            return ()
        recipient = _recipient(msg, self.p)
        if msg.code not in self._relayed_codes:
            if self.p.reading("other_response_codes") == "discard":
                self._add(
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
            return ()
        client = self._clients.get(recipient) if recipient is not None else None
        if client is None:
            why = "no recipient option" if recipient is None else f"recipient {recipient!r} names no linked client"
            self._add(_Open("discard", f, msg, recipient or "", 0.0, None, DISCARD, why))
            return ()
        linked = client.linked_at(f.when)
        if linked is None:
            return [
                Judgement(
                    f"{code_name(msg.code)} for {client.name}",
                    Verdict.INCONCLUSIVE,
                    f"the role map does not say whether {client.name} had a one-to-one link at this time",
                    DL + DISCARD,
                    [f.number],
                    f.when,
                    topology=self.t.name,
                )
            ]
        if linked and self._unknown_critical(msg):  # RFC 7252 5.4.1: rejected by a relay that ends
            # CoAP, relayed by one that forwards: either passes
            self._add(
                _Open("downlink", f, msg, recipient or "", f.when + self.wait_s, client.endpoint, (), optional=True)
            )
            return ()
        if linked:
            self._add(_Open("downlink", f, msg, recipient or "", f.when + self.wait_s, client.endpoint, DL))
        else:
            self._add(
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
        return ()

    def _from_relay(self, f: Frame, msg: codec.CoapMessage) -> list[Judgement]:
        out: list[Judgement] = []
        if (msg.mtype == _ACK and msg.code == 0) or msg.mtype == _RST:
            return out
        recipient = _recipient(msg, self.p) if f.src == self._pc5 else None
        for o in self._candidates(f, msg, recipient):
            if o.kind == "uplink" and f.src == self._uu and f.dst == o.to and msg.code == o.msg.code:
                if o.optional:  # its copy, if it is one (else the copy of a later exchange)
                    if _differences(o.msg, msg, self.p):
                        continue
                    self._drop(o)
                    return out
                if _differences(o.msg, msg, self.p):
                    o.near = o.near or (f, msg)
                    return out
                self._drop(o)
                out.append(self._copied(o, f, msg, "GET relayed uplink", []))
                if o.near is not None:  # the look-alike before the copy is a message of its own
                    out.append(self._unaccounted(*o.near))
                return out
            if (
                o.kind == "downlink"
                and f.src == self._pc5
                and msg.code == o.msg.code
                and (f.dst == o.to or recipient == o.recipient)
            ):
                if o.optional:  # its copy, if it is one (else the copy of a later exchange)
                    if f.dst != o.to or _differences(o.msg, msg, self.p):
                        continue
                    self._drop(o)
                    return out
                stray_ack = msg.mtype == _ACK and not self._client_sent_before(f, msg.mid)
                if f.dst == o.to and not stray_ack and _differences(o.msg, msg, self.p):
                    o.near = o.near or (f, msg)
                    return out
                self._drop(o)
                if f.dst != o.to or stray_ack:
                    where = f"delivered to {f.dst[0]}:{f.dst[1]}, not to the named client {o.to}"
                    out.append(
                        Judgement(
                            f"{code_name(o.msg.code)} relayed downlink",
                            Verdict.FAIL,
                            where if f.dst != o.to else "relayed as an ACK, which answers no CON of the client",
                            o.requirements,
                            [o.frame.number, f.number],
                            o.frame.when,
                            topology=self.t.name,
                        )
                    )
                    return out
                out.append(self._copied(o, f, msg, f"{code_name(o.msg.code)} relayed downlink", []))
                if o.near is not None:  # the look-alike before the copy is a message of its own
                    out.append(self._unaccounted(*o.near))
                return out
            if o.kind == "discard" and f.src == self._pc5 and msg.code == o.msg.code and msg.payload == o.msg.payload:
                self._drop(o)
                after = (f.when - o.frame.when) * 1000
                out.append(
                    Judgement(
                        f"{code_name(o.msg.code)} to be discarded",
                        Verdict.FAIL,
                        f"relayed downlink to {f.dst[0]}:{f.dst[1]} {after:.0f} ms later ({o.why})",
                        o.requirements,
                        [o.frame.number, f.number],
                        o.frame.when,
                        topology=self.t.name,
                    )
                )
                return out
        if msg.mtype == _ACK:  # an ACK answers a CON sent to the relay
            return out
        if 0x80 <= msg.code <= 0xBF and self._client_sent_before(f, msg.token):
            # the relay's own error answer, as a separate response (RFC 7252 5.2.2), to a request of
            # that client it did not have to relay (4.02 for a critical option it does not know,
            # 5.4.1; a 4.xx for a request it will not act on, 5.9.2): not a relayed message
            return out
        out.append(self._unaccounted(f, msg))
        return out

    def _client_sent(self, f: Frame, what: int | bytes) -> None:
        """Remember what a client sent the PC5 side for one span: a CON's Message ID, or the token of
        a request the relay did not have to relay."""
        cons = self._client_cons
        cons[hash((f.src, what))] = f.when
        if len(cons) >= self._client_cons_prune:  # bounded by the CONs of one span
            cutoff = f.when - self.span_s
            for k in [k for k, w in cons.items() if w <= cutoff]:  # in place: no second table at the peak
                del cons[k]
            self._client_cons_prune = max(4096, len(cons) + len(cons) // 2)

    def _client_sent_before(self, f: Frame, what: int | bytes) -> bool:
        """Whether the client this datagram of the PC5 side goes to sent it ``what`` (a CON's Message
        ID: the datagram is an ACK that answers it; a request's token: the datagram answers it)."""
        sent = self._client_cons.get(hash((f.dst, what)))
        return sent is not None and sent <= f.when and f.when - sent < self.span_s

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
        if not self._discards:
            return
        for o in [o for o in self.open.values() if o.kind == "discard"]:
            self._drop(o)
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

    def _copied(
        self, o: _Open, f: Frame, msg: codec.CoapMessage, title: str, diff: list[str] | None = None
    ) -> Judgement:
        """The copy's verdict; ``diff``: its differences when the caller has them already."""
        if diff is None:
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
        when = o.frame.when
        return Judgement(  # positional: this runs for every exchange relayed intact
            title,
            _PASS,
            f"relayed intact {(f.when - when) * 1000:.0f} ms later",
            o.requirements,
            frames,
            when,
            None,
            self.t.name,
        )

    def _expire(self, now: float) -> list[Judgement]:
        """The waits that end before ``now`` (a list, not a generator: mostly those of exchanges
        their copies closed already, which leave nothing to judge)."""
        out: list[Judgement] = []
        deadlines, opened, pop = self._deadlines, self.open, self._deadlines.popleft
        while deadlines and deadlines[0][0] < now:
            o = opened.get(pop()[1])
            if o is None:  # closed by its copy
                continue
            self._drop(o)
            if o.optional:  # not relaying it was legal too
                continue
            if o.near is not None:
                out.append(self._copied(o, *o.near, self._title(o)))
                continue
            what = "GET not relayed uplink" if o.kind == "uplink" else f"{code_name(o.msg.code)} not relayed downlink"
            req = o.requirements  # as the live check of the copy: it decides both
            out.append(
                Judgement(
                    what,
                    Verdict.FAIL,
                    f"no copy within {self.wait_s * 1000:.0f} ms",
                    req,
                    [o.frame.number],
                    o.frame.when,
                    topology=self.t.name,
                )
            )
        return out

    def finish(self) -> Iterator[Judgement]:
        """The end of the trace: discards proved over the rest of it; waits it cut short."""
        if self.t.observed is not None:  # the trace went on, silent, until the capture's end
            yield from self.tick(self.t.observed[1])
        for o in self.open.values():
            rest = self.last_when - o.frame.when
            if o.optional:
                continue
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
        self.open = {}
        self._index = {}
        self._deadlines = deque()
        self._discards = 0


def _problem_judgement(item: Problem) -> Judgement:
    return Judgement(
        f"capture problem: {item.kind}",
        Verdict.INCONCLUSIVE,
        f"{item.message} (byte offset {item.offset})",
        (),
        [item.frame],
        0.0,
    )


def _analyse_one(frames: Iterable[Frame | Problem], a: Any, out: list[Judgement]) -> tuple[list[Judgement], int, int]:
    """:func:`analyse` for one topology."""
    matched = 0
    tick, mine, feed, extend = a.tick, a.mine, a.feed, out.extend
    for item in frames:
        if isinstance(item, Problem):
            out.append(_problem_judgement(item))
            continue
        expired = tick(item.when)
        if expired:
            extend(expired)
        if mine(item):
            matched += 1
            judged = feed(item)
            if judged:
                extend(judged)
    out.extend(a.finish())
    return out, a.frames, matched


class _Sink(list[Judgement]):
    """Hands each judgement to a callable as it is made and keeps none: a long trace's verdicts
    are written as they come, not held."""

    def __init__(self, take: Callable[[Judgement], None]) -> None:
        super().__init__()
        self.take = take

    def append(self, j: Judgement) -> None:
        self.take(j)

    def extend(self, js: Iterable[Judgement]) -> None:
        for j in js:
            self.take(j)


def analyse(
    frames: Iterable[Frame | Problem],
    topologies: list[Topology],
    profile: Profile,
    sink: Callable[[Judgement], None] | None = None,
) -> tuple[list[Judgement], int, int]:
    """Judge one capture; returns (judgements, frames judged, CoAP-looking frames of the role map).
    With ``sink``, each judgement goes to it as it is made and the list returned is empty."""
    from msgin5g_conformance.analyze.cue import CueAnalysis  # they import this module's names
    from msgin5g_conformance.analyze.gateway import GatewayAnalysis

    kinds: dict[str, type[RelayAnalysis | GatewayAnalysis | CueAnalysis]] = {
        "relay": RelayAnalysis,
        "gateway": GatewayAnalysis,
        "constrained-ue": CueAnalysis,
    }
    analyses = [kinds[t.role](t, profile) for t in topologies]
    out: list[Judgement] = [] if sink is None else _Sink(sink)
    matched = 0
    if len(analyses) == 1:  # one topology (a field trace, the benchmark): the same, without the lists
        only = analyses[0]
        if isinstance(only, RelayAnalysis):
            return only.run(frames, out)
        return _analyse_one(frames, only, out)
    for item in frames:
        if isinstance(item, Problem):
            out.append(_problem_judgement(item))
            continue
        for a in analyses:
            out.extend(a.tick(item.when))
        # A frame can matter to two topologies (a Constrained UE under test talking to a Gateway UE
        # under test): each that claims it judges it; it is counted once.
        mine = [a for a in analyses if a.mine(item)]
        matched += bool(mine)
        for a in mine:
            out.extend(a.feed(item))
    for a in analyses:
        out.extend(a.finish())
    return out, sum(a.frames for a in analyses), matched
