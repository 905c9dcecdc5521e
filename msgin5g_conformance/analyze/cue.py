"""The Constrained UE rules of the live suite (TS 24.538 6.2.2.2), judged passively on one capture.

What a trace shows of a Constrained UE is what it sends; how it handles a response (what it
applied, what it recorded) only the upper tester's ``read_configuration`` tells, so those checks
are not judged here (docs/analyze.md lists them). Judged:

* its configuration GET goes to the peer (the Relay UE or Gateway UE of the role map), never
  straight to the SCM-S, nor to anyone else (REQ-CUE-REQ-1); as CUE-REQ-001 checks it: CON or NON,
  from the profile's port under ``port_match``, the recipient option naming the SCM-S, the Uri-Path
  of the single-UE resource (TS 24.546 C.3.1), its own UE id alone in ``ue-uri`` (ue-vendor and
  ue-type may come), no option but those and Accept, Block2, Size2;
* once a 2.05 addressed to it, with its request's token and a document valid against the
  configuration schema, has answered it, no new configuration GET (a new Message ID, not a
  retransmission) for as long as that answer is fresh (its Max-Age, 60 s by default: RFC 7252
  5.10.5), the reading of CUE-REQ-002 (REQ-CUE-REQ-1);
* a confirmable response addressed to another client is answered at the message layer (ACK or
  RST) within ``timers.response_ms``: the step of CUE-RSP-004 that cites REQ-CUE-RSP-2 (that the
  UE did not handle it is the upper tester's part of that case, not judged here);
* a datagram from the UE that is no well-formed CoAP message fails REQ-COAP-MSG-4.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from msgin5g_conformance.analyze.capture import Frame
from msgin5g_conformance.analyze.checks import FORMAT, Judgement, RecentMids, _recipient
from msgin5g_conformance.analyze.frames import first_look
from msgin5g_conformance.analyze.roles import Address, Topology
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.schemacheck import file_validator
from msgin5g_conformance.spec.templates import Bindings, judge_other_options
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, code_name, decode_uint, is_request
from msgin5g_conformance.world.profile import Profile

REQ = ("REQ-CUE-REQ-1",)
OTHER = ("REQ-CUE-RSP-2",)
JUDGED = frozenset({*REQ, *FORMAT})  # REQ-CUE-RSP-2 only in part (the acknowledgement): not listed
REQUEST_OPTIONS = ["accept", "block2", "size2"]  # elective options a client may add (CUE-REQ-001)
DEFAULT_MAX_AGE_S = 60  # RFC 7252 5.10.5
MAX_TOKENS = 64  # tokens of its recent requests kept to recognise the answers


@dataclass
class _Answered:
    frame: Frame
    fresh_until: float


@dataclass
class _AckWait:
    frame: Frame
    mid: int
    deadline: float
    recipient: str


class CueAnalysis:
    """Feeds frames of one capture; yields judgements of the Constrained UE's messages."""

    def __init__(self, topology: Topology, profile: Profile) -> None:
        assert topology.cue is not None and topology.peer is not None and topology.cue_id is not None
        self.t = topology
        self.cue: Address = topology.cue
        self.peer: Address = topology.peer
        self.cue_id: str = topology.cue_id
        self.p = profile
        self.bindings = Bindings(profile, Path("."))
        self.wait_s = profile.timers.response_ms / 1000
        self.validator = file_validator(str(profile.config_schema_path))
        self.tokens: list[bytes] = []  # its recent configuration GETs' tokens
        self.answered: _Answered | None = None
        self.last_get: Frame | None = None  # its last configuration GET
        self.acks: list[_AckWait] = []
        self.mids = RecentMids()
        self.last_when = 0.0
        self.frames = 0

    def mine(self, f: Frame) -> bool:
        return self.cue[0] in (f.src[0], f.dst[0]) and self.t.watches(f.when)

    def tick(self, when: float) -> Iterator[Judgement]:
        if self.t.observed is not None:  # past the end of the topology's time its addresses are not watched
            when = min(when, self.t.observed[1])
        self.last_when = max(self.last_when, when)
        for w in [w for w in self.acks if w.deadline < when]:
            self.acks.remove(w)
            yield self._j(
                f"CON response for {w.recipient}",
                Verdict.FAIL,
                f"no ACK or RST from the UE within {self.wait_s * 1000:.0f} ms (CUE-RSP-004's check; "
                f"whether it handled the response needs the upper tester)",
                OTHER,
                [w.frame.number],
                w.frame.when,
            )

    def feed(self, f: Frame) -> Iterator[Judgement]:
        self.frames += 1
        from_sut = f.src[0] == self.cue[0]
        msg = first_look(f, from_sut, "the constrained UE", self.t.name)
        if not isinstance(msg, codec.CoapMessage):
            if msg is not None:
                yield msg
            return
        if msg.mtype in (MessageType.CON, MessageType.NON) and self.mids.repeated((f.src, msg.mid), f.when):
            return  # a retransmission: judged once
        if from_sut:
            if msg.mtype in (MessageType.ACK, MessageType.RST):
                yield from self._acked(f, msg)
            elif is_request(msg.code):
                yield from self._request(f, msg)
        elif f.dst[0] == self.cue[0] and f.src[0] == self.peer[0] and 0x40 <= msg.code <= 0xBF:
            self._response(f, msg)

    def finish(self) -> Iterator[Judgement]:
        if self.t.observed is not None:  # the trace went on, silent, until the capture's end
            yield from self.tick(self.t.observed[1])
        for w in self.acks:
            yield self._j(
                f"CON response for {w.recipient}",
                Verdict.INCONCLUSIVE,
                f"the trace ends {(self.last_when - w.frame.when) * 1000:.0f} ms after it, before the "
                f"{self.wait_s * 1000:.0f} ms wait for the UE's ACK or RST",
                OTHER,
                [w.frame.number],
                w.frame.when,
            )
        self.acks = []

    # -- what the UE sends ---------------------------------------------------------------------

    def _request(self, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        title = f"{code_name(msg.code)} from the constrained UE"
        if f.dst[0] == self.t.scms[0]:
            yield self._j(
                title,
                Verdict.FAIL,
                f"sent straight to the SCM-S at {f.dst[0]}:{f.dst[1]}: a constrained UE reaches it "
                f"through the relay at {self.peer[0]}:{self.peer[1]} (6.2.2.2)",
                REQ,
                [f.number],
                f.when,
            )
            return
        if f.dst != self.peer:
            yield self._j(
                title,
                Verdict.FAIL,
                f"a request to {f.dst[0]}:{f.dst[1]}: its configuration request goes to the relay at "
                f"{self.peer[0]}:{self.peer[1]}",
                REQ,
                [f.number],
                f.when,
            )
            return
        problems = self._problems(f, msg)
        frames = [f.number]
        a = self.answered
        if a is not None and f.when < a.fresh_until:
            problems.append(
                f"a new configuration request {(f.when - a.frame.when) * 1000:.0f} ms after the 2.05 of frame "
                f"{a.frame.number} answered it (fresh for {a.fresh_until - a.frame.when:.0f} s, its Max-Age)"
            )
            frames = [a.frame.number, f.number]
        before = self.last_get
        if msg.code == Code.GET and before is not None and f.when - before.when < self.wait_s:
            # a new Message ID (a copy of the same one is a retransmission, judged once) within the
            # wait of the one before, answered or not: the live cases take it as a message no step
            # asked for (one request, one response: 6.2.2.2, 6.2.1.2)
            problems.append(
                f"a second configuration request {(f.when - before.when) * 1000:.0f} ms after the one of frame "
                f"{before.number}, within the {self.wait_s * 1000:.0f} ms of an exchange (a new Message ID, "
                "not a retransmission)"
            )
            frames = [before.number, *frames]
        if msg.code == Code.GET:
            self.tokens = [*self.tokens[-(MAX_TOKENS - 1) :], msg.token]
            self.last_get = f
        if problems:
            yield self._j("configuration request", Verdict.FAIL, "; ".join(problems), REQ, frames, f.when)
        else:
            yield self._j(
                "configuration request",
                Verdict.PASS,
                f"a GET to the relay for {self.cue_id}, recipient the SCM-S",
                REQ,
                frames,
                f.when,
            )

    def _problems(self, f: Frame, msg: codec.CoapMessage) -> list[str]:
        p = self.p
        problems: list[str] = []
        if msg.code != Code.GET:
            return [f"{code_name(msg.code)}, not the configuration GET"]
        if p.port_match in ("source", "both") and f.src != self.cue:
            problems.append(f"sent from port {f.src[1]}, not {self.cue[1]} (port_match {p.port_match})")
        recipient = _recipient(msg, p)
        if msg.option_values(p.recipient_option) != [self.t.scms_recipient.encode("utf-8")]:
            shown = "absent" if recipient is None else repr(recipient)
            problems.append(f"recipient {shown}, not the SCM-S {self.t.scms_recipient!r}")
        path = [v.decode("utf-8", "replace") for v in msg.option_values(OptionNumber.URI_PATH)]
        if path != p.single_path:
            problems.append(f"Uri-Path /{'/'.join(path)}, not /{'/'.join(p.single_path)}")
        found = [
            q.partition("=")[2]
            for q in (v.decode("utf-8", "replace") for v in msg.option_values(OptionNumber.URI_QUERY))
            if q.partition("=")[0] == p.query_ue_ids
        ]
        if p.list_encoding == "csv" and len(found) == 1:
            found = found[0].split(",")
        if found != [self.cue_id]:
            problems.append(f"{p.query_ue_ids} {', '.join(map(repr, found)) or 'absent'}, not {self.cue_id!r} alone")
        template = {"options": {"recipient": None, "uri-path": None}, "query": {}, "options_allowed": REQUEST_OPTIONS}
        problems += [f"{x.field}: {x.found}" for x in judge_other_options(msg, template, self.bindings)]
        return problems

    def _acked(self, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        for w in self.acks:
            if w.mid == msg.mid and f.dst[0] == self.peer[0]:
                self.acks.remove(w)
                kind = MessageType(msg.mtype).name
                yield self._j(
                    f"CON response for {w.recipient}",
                    Verdict.PASS,
                    f"received: answered with an {kind} {(f.when - w.frame.when) * 1000:.0f} ms later "
                    f"(whether it was handled needs the upper tester)",
                    OTHER,
                    [w.frame.number, f.number],
                    w.frame.when,
                )
                return

    # -- what the UE receives ------------------------------------------------------------------

    def _response(self, f: Frame, msg: codec.CoapMessage) -> None:
        recipient = _recipient(msg, self.p)
        if recipient != self.cue_id:
            if msg.mtype == MessageType.CON and recipient is not None:
                self.acks.append(_AckWait(f, msg.mid, f.when + self.wait_s, recipient))
            return
        if msg.code != Code.CONTENT or msg.token not in self.tokens:
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if any(True for _ in self.validator.iter_errors(doc)):
            return  # not configuration data: handled but not applied (CUE-RSP-005); a new request is its business
        ages = msg.option_values(OptionNumber.MAX_AGE)
        max_age = decode_uint(ages[0]) if ages else DEFAULT_MAX_AGE_S
        self.answered = _Answered(f, f.when + max_age)

    def _j(
        self, title: str, verdict: Verdict, reason: str, reqs: tuple[str, ...], frames: list[int], when: float
    ) -> Judgement:
        return Judgement(title, verdict, reason, reqs, frames, when, topology=self.t.name)
