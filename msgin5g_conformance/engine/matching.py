"""Matching: what each datagram of a test case is, which step it answers, and what is left over.

Every datagram of the case's record is classified once, in order, by an :class:`Inbox` that
models the CoAP message layer (RFC 7252 section 4) from the wire alone:

* a message the SUT sent (request or response, CON, NON, or a response piggybacked on an ACK
  that answers a tester CON) is a ``message``: a step must account for it;
* a copy with the same source, destination and Message ID as an earlier one is a
  ``duplicate`` (4.5): message-layer traffic, counted against the retransmission bound;
* an empty ACK or an RST that answers a CON the tester sent (same Message ID, from the
  endpoint the CON went to, 4.4) is ``ack`` / ``reset``: message-layer traffic;
* a request for a later block of a block-wise transfer (RFC 7959 2.4: Block2 with NUM > 0, same
  Uri-Path and Uri-Query as an earlier request to the same peer) is a ``continuation`` of that
  exchange: the step that took the first request accounts for it;
* an Empty CON is a ``ping`` (4.3); an ACK or RST that answers nothing the tester sent is a
  ``stray``; bytes that are not a CoAP message are ``malformed``.

Steps take messages out of the inbox (:meth:`Inbox.take`); at the end of the case, after the
late window, whatever a step did not take is judged: message-layer bounds
(:func:`message_layer_violations`), discards that did not happen (the absence checks), and
everything else the SUT sent anywhere in the case's range (:meth:`Inbox.leftovers`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from msgin5g_conformance.engine.verdict import Finding
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address, Datagram
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import MessageType, OptionNumber, code_name, decode_uint, is_request

# Requirement ids of the message-layer checks (catalogue: data/requirements.yaml).
REQ_ACK = "REQ-COAP-MSG-1"  # a CON is acknowledged or reset (RFC 7252 4.2)
REQ_RETRANSMIT = "REQ-COAP-MSG-2"  # retransmission is bounded (RFC 7252 4.2, 4.8)
REQ_MID = "REQ-COAP-MSG-3"  # a Message ID is not reused for another message (RFC 7252 4.4)


class Kind(enum.Enum):
    MESSAGE = "message"
    DUPLICATE = "duplicate"
    ACK = "ack"
    RESET = "reset"
    CONTINUATION = "continuation"
    PING = "ping"
    STRAY = "stray"
    MALFORMED = "malformed"


# What a step or the catch-all must account for; the rest is message-layer traffic.
ACCOUNTABLE = frozenset({Kind.MESSAGE, Kind.STRAY, Kind.MALFORMED})


@dataclass(eq=False)
class Arrival:
    """One datagram the SUT sent, as the message layer sees it."""

    datagram: Datagram
    kind: Kind
    message: CoapMessage | None
    error: str | None = None
    answers: int | None = None  # seq of the tester CON an ACK/RST/piggybacked response answers
    original: int | None = None  # seq of the first copy, for a duplicate
    taken_by: str | None = None  # index of the step that accounted for it

    @property
    def seq(self) -> int:
        return self.datagram.seq

    @property
    def at(self) -> Address:
        return self.datagram.dst

    def summary(self) -> str:
        if self.message is None:
            return f"malformed datagram ({self.error})"
        return self.message.summary()


@dataclass
class _TesterCon:
    datagram: Datagram
    copies: int = 1
    answer: Datagram | None = None


@dataclass
class _SutMessage:
    first: Datagram
    copies: int = 1
    reused: list[Datagram] = field(default_factory=list)
    repeats: list[Datagram] = field(default_factory=list)  # the copies after the first


class Inbox:
    """The case's datagrams classified by the message layer, indexed by where they arrived."""

    def __init__(self, tester: Callable[[Address], bool], *, reset_nons: bool = False) -> None:
        self.is_tester = tester
        # RFC 7252 4.3: "Rejecting a Non-confirmable message MAY involve sending a matching Reset
        # message": with reset_nons (every case run), a Reset answering a tester NON is
        # message-layer traffic, not a stray
        self.reset_nons = reset_nons
        self.tester_nons: dict[tuple[Address, Address, int], Datagram] = {}
        self.arrivals: list[Arrival] = []
        self.by_address: dict[Address, list[Arrival]] = {}
        self.tester_cons: dict[tuple[Address, Address, int], _TesterCon] = {}
        self.sut_messages: dict[tuple[Address, Address, int], _SutMessage] = {}
        self.tester_sent: list[tuple[Datagram, CoapMessage | None]] = []
        # (SUT, tester, Message ID) -> when the tester first acknowledged or reset that SUT message
        self.tester_answers: dict[tuple[Address, Address, int], float] = {}
        self._requests: set[tuple[Address, Address, tuple[tuple[int, bytes], ...]]] = set()
        self._fed = 0

    def feed(self, datagrams: Iterable[Datagram]) -> None:
        for d in datagrams:
            if d.seq < self._fed:
                continue
            self._fed = d.seq + 1
            self._classify(d)

    def _classify(self, d: Datagram) -> None:
        try:
            m: CoapMessage | None = codec.parse(d.data)
            error = None
        except codec.MalformedDatagram as exc:
            m, error = None, str(exc)
        if self.is_tester(d.src):
            self.tester_sent.append((d, m))
            # A CON is one by its header (version 1, type 0), even with a format error in the rest:
            # its recipient must reject it with a Reset of the same Message ID (RFC 7252 4.2).
            if (m is not None and m.mtype == MessageType.CON) or (m is None and _con_header(d.data)):
                mid = (d.data[2] << 8) | d.data[3]
                key = (d.src, d.dst, mid)
                if key in self.tester_cons:
                    self.tester_cons[key].copies += 1
                else:
                    self.tester_cons[key] = _TesterCon(d)
            elif len(d.data) >= 4 and d.data[0] >> 6 == 1 and (d.data[0] >> 4) & 3 == MessageType.NON:
                self.tester_nons.setdefault((d.src, d.dst, (d.data[2] << 8) | d.data[3]), d)
            elif m is not None and m.mtype in (MessageType.ACK, MessageType.RST):
                self.tester_answers.setdefault((d.dst, d.src, m.mid), d.time)
            return
        if m is None:
            self._add(Arrival(d, Kind.MALFORMED, None, error))
            return
        if m.mtype in (MessageType.ACK, MessageType.RST):
            con = self.tester_cons.get((d.dst, d.src, m.mid))
            non = self.tester_nons.get((d.dst, d.src, m.mid)) if self.reset_nons else None
            if con is None and non is not None and m.mtype == MessageType.RST:
                self._add(Arrival(d, Kind.RESET, m, answers=non.seq))
                return
            if con is None:
                self._add(Arrival(d, Kind.STRAY, m, "answers no message the tester sent"))
                return
            if con.answer is not None and self.is_repeat(con.answer, d):
                self._add(Arrival(d, Kind.DUPLICATE, m, original=con.answer.seq, answers=con.datagram.seq))
                return
            if con.answer is not None:  # another answer to an answered CON: a message of its own
                self._add(Arrival(d, Kind.STRAY if m.code == 0 else Kind.MESSAGE, m, answers=con.datagram.seq))
                return
            con.answer = d
            kind = Kind.RESET if m.mtype == MessageType.RST else Kind.ACK if m.code == 0 else Kind.MESSAGE
            self._add(Arrival(d, kind, m, answers=con.datagram.seq))
            return
        key = (d.src, d.dst, m.mid)
        seen = self.sut_messages.get(key)
        if seen is not None:
            if self.is_repeat(seen.first, d):
                seen.copies += 1
                seen.repeats.append(d)
                self._add(Arrival(d, Kind.DUPLICATE, m, original=seen.first.seq))
            else:
                seen.reused.append(d)  # judged by message_layer_violations; the message counts too
                self._add(Arrival(d, Kind.MESSAGE, m))
            return
        self.sut_messages[key] = _SutMessage(d)
        if is_request(m.code):
            resource = (d.src, d.dst, _resource(m))
            block2 = m.option_values(OptionNumber.BLOCK2)
            if block2 and decode_uint(block2[0]) >> 4 > 0 and resource in self._requests:
                self._add(Arrival(d, Kind.CONTINUATION, m))
                return
            self._requests.add(resource)
        self._add(Arrival(d, Kind.PING if m.code == 0 else Kind.MESSAGE, m))

    @staticmethod
    def is_repeat(first: Datagram, d: Datagram) -> bool:
        """A copy of an earlier datagram (same source, destination and Message ID: the caller
        checked) with the same bytes: a retransmission, or the same answer to a retransmission."""
        return first.data == d.data

    def _add(self, a: Arrival) -> None:
        self.arrivals.append(a)
        self.by_address.setdefault(a.at, []).append(a)

    # -- for the steps -------------------------------------------------------------------------

    def candidates(self, at: Address, since: int = 0, kinds: frozenset[Kind] = ACCOUNTABLE) -> list[Arrival]:
        """What arrived at ``at`` (from capture number ``since`` on) that no step has taken."""
        return [a for a in self.by_address.get(at, ()) if a.seq >= since and a.taken_by is None and a.kind in kinds]

    @staticmethod
    def take(arrival: Arrival, step: str) -> None:
        arrival.taken_by = step

    def leftovers(self) -> list[Arrival]:
        """Everything the SUT sent that no step accounted for, in order."""
        return [a for a in self.arrivals if a.taken_by is None and a.kind in ACCOUNTABLE]


def well_formed(data: bytes) -> bool:
    """Whether the bytes parse as a CoAP message (RFC 7252 3)."""
    try:
        codec.parse(data)
    except codec.MalformedDatagram:
        return False
    return True


def _con_header(data: bytes) -> bool:
    """Bytes whose 4-byte header says CoAP version 1, Confirmable."""
    return len(data) >= 4 and data[0] >> 6 == 1 and (data[0] >> 4) & 3 == MessageType.CON


def _resource(m: CoapMessage) -> tuple[tuple[int, bytes], ...]:
    """What a block-wise transfer asks for: method, Uri-Path and Uri-Query (RFC 7959 2.4)."""
    keep = (OptionNumber.URI_PATH, OptionNumber.URI_QUERY)
    return ((0, bytes([m.code])), *((n, v) for n, v in m.options if n in keep))


@dataclass(frozen=True)
class Signature:
    """What tells the two messages of an absence check apart: the discarded stimulus and the
    positive control (test cases make them differ: the loader refuses equal payloads)."""

    payloads: frozenset[bytes] = frozenset()
    recipients: frozenset[bytes] = frozenset()
    tokens: frozenset[bytes] = frozenset()
    queries: frozenset[bytes] = frozenset()  # requests: the Uri-Query, joined (b"" for none)

    def __or__(self, other: Signature) -> Signature:
        return Signature(
            self.payloads | other.payloads,
            self.recipients | other.recipients,
            self.tokens | other.tokens,
            self.queries | other.queries,
        )

    @staticmethod
    def of(message: CoapMessage | None, recipient_option: int) -> Signature:
        if message is None:
            return Signature()
        return Signature(
            frozenset({message.payload} - {b""}),
            frozenset(message.option_values(recipient_option)),
            frozenset({message.token} - {b""}),
            frozenset({_query_key(message)}) if is_request(message.code) else frozenset(),
        )


def _query_key(message: CoapMessage) -> bytes:
    return b"&".join(message.option_values(OptionNumber.URI_QUERY))


def identify(message: CoapMessage | None, stimulus: Signature, control: Signature, recipient_option: int) -> str | None:
    """``stimulus``, ``control`` or None: by payload first, then by a recipient, a query or a token
    that one of them has and the other has not (so a relay that rewrites a payload, or a token, is
    still told apart by what it kept)."""
    if message is None:
        return None
    if message.payload and message.payload in stimulus.payloads:
        return "stimulus"
    if message.payload and message.payload in control.payloads:
        return "control"
    for telling, mine, theirs in (
        (
            stimulus.recipients ^ control.recipients,
            frozenset(message.option_values(recipient_option)),
            stimulus.recipients,
        ),
        (stimulus.queries ^ control.queries, frozenset({_query_key(message)}), stimulus.queries),
        (stimulus.tokens ^ control.tokens, frozenset({message.token}), stimulus.tokens),
    ):
        hit = mine & telling
        if hit:
            return "stimulus" if hit <= theirs else "control"
    return None


@dataclass(frozen=True)
class Violation:
    """A message-layer bound the SUT broke, with the datagram that shows it."""

    requirement: str
    reason: str
    datagram: int | None
    finding: Finding


def message_layer_violations(
    inbox: Inbox,
    ack_bound_s: float,
    sut_max_retransmit: int,
    label: Callable[[Address], str],
    judged: set[tuple[Address, int]] | frozenset[tuple[Address, int]] = frozenset(),
) -> list[Violation]:
    """RFC 7252 4.2 (every CON acknowledged or reset within the bound; retransmission bounded)
    and 4.4 (no Message ID reused for another message), judged on the record. ``judged``: tester
    CONs (source, Message ID) whose answer a step of the case judges (with its own requirement);
    a CON with a format error is left to such a step too (a well-formed CON it is not)."""
    out: list[Violation] = []
    for (src, dst, mid), con in inbox.tester_cons.items():
        if (src, mid) in judged or not well_formed(con.datagram.data):
            continue
        bound = f"within {ack_bound_s * 1000:.0f} ms"
        what = f"CON mid=0x{mid:04x} from {label(src)} to {label(dst)} (#{con.datagram.seq})"
        if con.answer is None:
            reason = f"the SUT did not acknowledge or reset {what} {bound} ({con.copies} transmission(s))"
            finding = Finding("acknowledgement", f"ACK or RST {bound} (RFC 7252 4.2)", "none", False)
            out.append(Violation(REQ_ACK, reason, con.datagram.seq, finding))
            continue
        delay = con.answer.time - con.datagram.time
        if delay > ack_bound_s:
            reason = f"the SUT answered {what} only after {delay * 1000:.0f} ms, not {bound}"
            finding = Finding("acknowledgement", f"ACK or RST {bound} (RFC 7252 4.2)", f"{delay * 1000:.0f} ms", False)
            out.append(Violation(REQ_ACK, reason, con.answer.seq, finding))
    for (src, dst, mid), sent in inbox.sut_messages.items():
        limit = 1 + sut_max_retransmit
        m = codec.parse(sent.first.data)
        if m.mtype == MessageType.CON and sent.copies > limit:
            reason = (
                f"the SUT sent CON {code_name(m.code)} mid=0x{mid:04x} from {label(src)} to {label(dst)} "
                f"{sent.copies} times; at most {limit} (1 + MAX_RETRANSMIT {sut_max_retransmit}, RFC 7252 4.2, 4.8)"
            )
            finding = Finding("retransmissions", f"at most {limit} transmissions", str(sent.copies), False)
            out.append(Violation(REQ_RETRANSMIT, reason, sent.first.seq, finding))
        answered = inbox.tester_answers.get((src, dst, mid))
        # A copy can cross the ACK, in flight or in a busy SUT's receive queue (the reference gateway
        # sending 2,500 CONs retransmitted up to 390 ms after the ACK): the SUT is given the bound it
        # has to handle a tester's CON (ack_bound_ms) to handle the ACK too.
        late = [d for d in sent.repeats if answered is not None and d.time > answered + ack_bound_s]
        if m.mtype == MessageType.CON and late and answered is not None:
            d = late[0]
            reason = (
                f"the SUT retransmitted CON {code_name(m.code)} mid=0x{mid:04x} from {label(src)} to {label(dst)} "
                f"(#{d.seq}) {(d.time - answered) * 1000:.0f} ms after the tester had acknowledged it "
                f"({len(late)} copies after the acknowledgement; RFC 7252 4.2: only until it is acknowledged)"
            )
            finding = Finding("retransmissions", "none after the acknowledgement", f"{len(late)} after it", False)
            out.append(Violation(REQ_RETRANSMIT, reason, d.seq, finding))
        for d in sent.reused:
            reason = (
                f"the SUT reused Message ID 0x{mid:04x} towards {label(dst)} for a different message "
                f"(#{sent.first.seq} and #{d.seq}, RFC 7252 4.4)"
            )
            finding = Finding("message id", "a fresh Message ID per message", f"0x{mid:04x} again", False)
            out.append(Violation(REQ_MID, reason, d.seq, finding))
    return out
