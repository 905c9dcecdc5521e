"""The Gateway UE rules of the live suite (TS 24.538 6.2.2.x), judged passively on one capture.

What the live gateway cases check, read off the wire instead of off the tester's own stimuli:

* each configuration GET a constrained UE sends to the gateway's PC5 side (the GET of 6.2.2 the
  reference caches: from the profile's port under ``port_match``, recipient the SCM-S, one UE id in
  ``ue-uri``) is a cached request; the service policy (profile ``bulk_policy``) sends it to the
  SCM-S in a bulk GET within ``max_wait_ms`` (plus the cases' 500 ms grace), and at once (within
  ``timers.response_ms``) once ``min_batch`` requests are cached (REQ-GW-BULK-1);
* the bulk GET comes from the Uu side, on the bulk resource of TS 24.546 C.3.1 (the profile's
  apiRoot, valServiceId and bulkConfFlag), lists every cached UE id exactly once in ``ue-uri`` (in
  the profile's list encoding), and carries ``ue-vendor``/``ue-type`` exactly when the requests it
  bundles did, each value they gave and no other (REQ-GW-BULK-1); no option but those and the
  recipient, Accept, Block2 and Size2. A GET on another path for the cached requests (a single,
  non-bulk relay) fails it as the live cases fail it;
* the SCM-S's answer, reassembled in order when it comes block-wise (RFC 7959 Block2, bounded), is
  split: each UE that asked gets one response from the PC5 side, with its request's token, the
  recipient option naming it, the result the bulk answer has for it (REQ-GW-BULK-2 for a 2.05 with
  Content-Format 50 and exactly its own document, compared as typed JSON without repeated keys;
  REQ-GW-BULK-3 for a 4.03/4.04 under the reading ``bulk_errors: per-ue``); no second response to
  a UE, none to a UE that did not ask, none before the answer (a transfer the gateway abandons
  fails REQ-GW-BULK-2);
* the gateway's own configuration GET (REQ-GW-CFG-1, a SHOULD): a GET to the SCM-S that names no
  cached UE and no client of the role map; a deviation passes with the deviation in the reason;
* a datagram from the gateway that is no well-formed CoAP message fails REQ-COAP-MSG-4.

State is bounded by the open requests and exchanges (and one entry per UE endpoint answered).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msgin5g_conformance.analyze.capture import Frame
from msgin5g_conformance.analyze.checks import FORMAT, Judgement, RecentMids, _recipient
from msgin5g_conformance.analyze.frames import first_look
from msgin5g_conformance.analyze.roles import Address, Topology
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.spec.templates import Bindings, json_same, judge_other_options, load_json
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.numbers import (
    Code,
    MessageType,
    OptionNumber,
    code_name,
    decode_uint,
    is_request,
    parse_code,
)
from msgin5g_conformance.world.profile import SENT_WITHIN_SHARE, Profile

BULK1 = ("REQ-GW-BULK-1",)
BULK2 = ("REQ-GW-BULK-2",)
BULK3 = ("REQ-GW-BULK-3",)
CFG = ("REQ-GW-CFG-1",)
JUDGED = frozenset({*BULK1, *BULK2, *BULK3, *CFG, *FORMAT})

GRACE_S = 0.5  # the gateway cases' grace_ms on the max_wait timer: scheduling tolerance
# A request captured this share of max_wait or less before a bulk GET that its max-wait timer sent
# (one max wait, less that share, after the first request it holds) may still have waited in the
# gateway's receive queue when the timer fired: left out, it goes with the next bulk GET (the live
# cases' sent_within_ms allows the same). A bulk GET sent sooner was not the timer's: it leaves
# out nothing below min_batch.
QUEUED_SHARE = 1 - SENT_WITHIN_SHARE
MIN_BATCH_S = 1.3  # GW-BULK-002: a full batch's bulk GET within 1,300 ms of the first request
MAX_ANSWER_BYTES = 4 << 20  # the largest bulk answer reassembled (the tester's SCM-S serves up to this)
MAX_HELD = 4096  # responses held while their bulk answer is still arriving, per exchange
BULK_OPTIONS = ["recipient", "accept", "block2", "size2"]  # what a bulk GET may carry besides path and query


@dataclass
class _Request:
    """A constrained UE's configuration GET, cached by the gateway until its bulk GET."""

    frame: Frame
    ue_id: str
    token: bytes
    mid: int
    mtype: int
    endpoint: Address
    vendors: list[str]
    types: list[str]
    expired: bool = False


@dataclass
class _Exchange:
    """One bulk GET, its (possibly block-wise) answer, and the UEs waiting for their part of it."""

    frame: Frame
    bulk: bool  # on the bulk resource (else a single-UE GET for cached requests)
    path: list[str]
    query: list[str]
    ids: list[str]
    tokens: set[bytes]
    waiting: dict[Address, _Request]
    unjudged: set[Address]  # UEs whose answer is not judged (left out of the query: already failed)
    state: str = "asked"  # asked | fetching | complete | failed | unreadable | abandoned | needs
    body: bytearray = field(default_factory=bytearray)
    results: dict[str, tuple[int, Any]] = field(default_factory=dict)
    deadline: float = float("inf")
    last: Frame | None = None  # the last answer frame
    held: list[tuple[Frame, codec.CoapMessage]] = field(default_factory=list)
    last_size2: int | None = None  # the answer's size, as its first block announced it


def _query(msg: codec.CoapMessage) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for raw in msg.option_values(OptionNumber.URI_QUERY):
        name, _, value = raw.decode("utf-8", "replace").partition("=")
        params.setdefault(name, []).append(value)
    return params


def _path(msg: codec.CoapMessage) -> list[str]:
    return [v.decode("utf-8", "replace") for v in msg.option_values(OptionNumber.URI_PATH)]


def _block2(msg: codec.CoapMessage) -> tuple[int, bool, int] | None:
    values = msg.option_values(OptionNumber.BLOCK2)
    if not values:
        return None
    v = decode_uint(values[0])
    return v >> 4, bool(v & 0x08), v & 0x07


class GatewayAnalysis:
    """Feeds frames of one capture; yields judgements as the gateway's exchanges close."""

    def __init__(self, topology: Topology, profile: Profile) -> None:
        assert topology.pc5 is not None and topology.uu is not None
        self.t = topology
        self.pc5: Address = topology.pc5
        self.uu: Address = topology.uu
        self.p = profile
        self.bindings = Bindings(profile, Path("."))
        self.wait_s = profile.timers.response_ms / 1000
        self.max_wait_s = profile.max_wait_ms / 1000
        self.pending: dict[str, _Request] = {}  # UE id -> its cached request, in arrival order
        # When the cached requests' wait ends: max_wait + grace after the latest of them, as the live
        # cases count it (their wait starts once their requests are sent).
        self.due = float("inf")
        self.batch: tuple[float, Frame] | None = None  # min_batch reached: (deadline, the frame)
        self.exchanges: list[_Exchange] = []
        self.answered: dict[Address, int] = {}  # UE endpoint -> the frame that answered it
        self.other: dict[tuple[Address, bytes], int] = {}  # requests not cached: their answers are not judged
        self.own: set[bytes] = set()  # tokens of the gateway's own configuration GETs
        self.mids = RecentMids()
        self.first_when: float | None = None
        self.last_when = 0.0
        self.frames = 0

    # -- the interface ----------------------------------------------------------------------

    def mine(self, f: Frame) -> bool:
        hosts = {self.pc5[0], self.uu[0]}
        return (f.src[0] in hosts or f.dst[0] in hosts) and self.t.watches(f.when)

    def tick(self, when: float) -> Iterator[Judgement]:
        if self.t.observed is not None:  # past the end of the topology's time its addresses are not watched
            when = min(when, self.t.observed[1])
        if self.first_when is None:
            self.first_when = when
        self.last_when = max(self.last_when, when)
        yield from self._expire(when)

    def feed(self, f: Frame) -> Iterator[Judgement]:
        self.frames += 1
        from_sut = f.src[0] in (self.pc5[0], self.uu[0])
        msg = first_look(f, from_sut, "the gateway", self.t.name)
        if not isinstance(msg, codec.CoapMessage):
            if msg is not None:
                yield msg
            return
        if msg.mtype == MessageType.RST or msg.code == 0:
            return  # empty ACKs, Resets and pings carry no exchange of these rules
        if msg.mtype in (MessageType.CON, MessageType.NON) or from_sut:
            # a retransmission (or, for an ACK, the same ACK again for a retransmitted CON): judged once
            key = (f.src, msg.mid) if msg.mtype != MessageType.ACK else (f.dst, -1 - msg.mid)
            if self.mids.repeated(key, f.when):
                return
        if from_sut:
            if self._side(f.src) == "uu":
                yield from self._from_uu(f, msg)
            else:
                yield from self._from_pc5(f, msg)
        elif f.src[0] == self.t.scms[0] and self._side(f.dst) == "uu":
            yield from self._answer(f, msg)
        elif self._side(f.dst) == "pc5":
            self._to_pc5(f, msg)

    def _side(self, a: Address) -> str:
        """Which side of the gateway an address of its hosts is: the endpoint, else the host (a
        side sent from another port is still that side; two sides on one host tell by the port)."""
        if a == self.uu:
            return "uu"
        if a == self.pc5 or a[0] != self.uu[0]:
            return "pc5"
        return "uu" if a[0] != self.pc5[0] else "pc5"

    def finish(self) -> Iterator[Judgement]:
        """The end of the trace: what it cut short is inconclusive, with how long it went on."""
        if self.t.observed is not None:  # the trace went on, silent, until the capture's end
            yield from self.tick(self.t.observed[1])
        now = self.last_when
        late = [r for r in self.pending.values() if not r.expired]
        if late:
            last = late[-1]
            yield self._j(
                "cached request(s) in a bulk GET",
                Verdict.INCONCLUSIVE,
                f"the trace ends {(now - last.frame.when) * 1000:.0f} ms after the request of {last.ue_id}, before "
                f"the {(self.max_wait_s + GRACE_S) * 1000:.0f} ms the service policy allows ({len(late)} request(s): "
                f"{self._names(late)})",
                BULK1,
                [r.frame.number for r in late],
                last.frame.when,
            )
        for x in self.exchanges:
            left = [r for e, r in x.waiting.items() if e not in x.unjudged]
            if not left:
                continue
            if x.state in ("asked", "fetching"):
                what = (
                    "no answer to it"
                    if x.state == "asked"
                    else f"its block-wise answer still arriving ({len(x.body)} B)"
                )
                why = f"the trace ends with {what}: the responses of {self._names(left)} cannot be judged"
            elif x.state == "complete":
                why = (
                    f"the trace ends {(now - (x.last or x.frame).when) * 1000:.0f} ms after the answer, before the "
                    f"{self.wait_s * 1000:.0f} ms wait for the responses of {self._names(left)}"
                )
            else:
                continue  # failed / unreadable / abandoned / needs: judged when it happened
            yield self._j(
                "responses split from the bulk answer", Verdict.INCONCLUSIVE, why, BULK2, [x.frame.number], x.frame.when
            )
        self.pending.clear()
        self.exchanges.clear()

    # -- PC5 side: the constrained UEs' requests ---------------------------------------------

    def _to_pc5(self, f: Frame, msg: codec.CoapMessage) -> None:
        if not is_request(msg.code):
            return
        ids = self._ids(_query(msg))
        cached = (
            msg.code == Code.GET
            and f.dst[1] == self.p.port
            and (self.p.port_match not in ("source", "both") or f.src[1] == self.p.port)
            and _recipient(msg, self.p) == self.t.scms_recipient
            and len(ids) == 1
            and ids[0] != ""
            and msg.mtype in (MessageType.CON, MessageType.NON)
        )
        if not cached:
            # Not the configuration GET the gateway caches: what it answers to it is not judged here.
            if len(self.other) < 65536:
                self.other[(f.src, msg.token)] = f.number
            return
        params = _query(msg)
        request = _Request(
            f,
            ids[0],
            msg.token,
            msg.mid,
            msg.mtype,
            f.src,
            params.get(self.p.query_vendor, []),
            params.get(self.p.query_type, []),
        )
        self.answered.pop(f.src, None)  # a new request: one more answer is due
        self.pending.pop(request.ue_id, None)  # a repeat replaces the cached one (its token is awaited)
        self.pending[request.ue_id] = request
        self.due = f.when + self.max_wait_s + GRACE_S
        if self.batch is None and len(self.pending) >= self.p.min_batch:
            live = [r for r in self.pending.values() if not r.expired]
            # GW-BULK-002's reading: the batch, not the timer, triggers it (1,300 ms from the first
            # request); and never sooner than timers.response_ms after the batch filled.
            first = live[0].frame.when if live else f.when
            deadline = max(first + MIN_BATCH_S, f.when + self.wait_s)
            if len(live) >= self.p.min_batch and deadline < first + self.max_wait_s:
                self.batch = (deadline, f)  # (else the max_wait timer's bound is the earlier one)

    def _ids(self, params: dict[str, list[str]]) -> list[str]:
        found = params.get(self.p.query_ue_ids, [])
        if self.p.list_encoding == "csv" and len(found) == 1:
            return found[0].split(",")
        return found

    # -- Uu side: the bulk GET ----------------------------------------------------------------

    def _from_uu(self, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        if not is_request(msg.code):
            return  # answers on the Uu side (to the SCM-S's requests) are not these rules'
        if f.dst != self.t.scms or msg.code != Code.GET:
            yield self._stray_request("Uu", f, msg)
            return
        block = _block2(msg)
        path, query = _path(msg), msg.option_values(OptionNumber.URI_QUERY)
        texts = [q.decode("utf-8", "replace") for q in query]
        for x in self.exchanges:
            if x.path != path or x.query != texts:
                continue
            if block is not None and block[0] > 0:  # the next block of a transfer
                if x.state == "fetching":
                    x.tokens.add(msg.token)
                    x.deadline = float("inf")  # now the SCM-S's turn
                return
            if x.state == "asked":  # the same GET again, its first still unanswered: a repeat
                x.tokens.add(msg.token)
                return
        params = _query(msg)
        ids = self._ids(params)
        # A GET naming a cached UE is a bulk GET (judged as one whatever its path: a single relay
        # fails it as the live cases fail it); so is one on the bulk path naming nobody while
        # requests are cached. Any other GET is the gateway's own (REQ-GW-CFG-1).
        bulk = any(i in self.pending for i in ids) or (not ids and path == self.p.bulk_path and bool(self.pending))
        if not bulk:
            if ids and all(self.t.client_by_id(i) is not None for i in ids):
                since = f.when - (self.first_when if self.first_when is not None else f.when)
                if since < self.max_wait_s + GRACE_S:
                    yield self._j(
                        "bulk GET",
                        Verdict.INCONCLUSIVE,
                        f"it names {', '.join(ids)}, whose requests the trace does not hold: it begins "
                        f"{since * 1000:.0f} ms before",
                        BULK1,
                        [f.number],
                        f.when,
                    )
                else:
                    yield self._j(
                        "bulk GET",
                        Verdict.FAIL,
                        f"it names {', '.join(ids)}: no cached request of the trace asked for them",
                        BULK1,
                        [f.number],
                        f.when,
                    )
                return
            yield from self._own_config(f, msg, path, ids)
            return
        yield from self._bulk_get(f, msg, path, params, ids)

    def _bulk_get(
        self, f: Frame, msg: codec.CoapMessage, path: list[str], params: dict[str, list[str]], ids: list[str]
    ) -> Iterator[Judgement]:
        p = self.p
        problems: list[str] = []
        if p.port_match in ("source", "both") and f.src != self.uu:
            problems.append(f"sent from {f.src[0]}:{f.src[1]}, not from the Uu side {self.uu[0]}:{self.uu[1]}")
        if path != p.bulk_path:
            problems.append(f"Uri-Path /{'/'.join(path)}, not the bulk resource /{'/'.join(p.bulk_path)}")
        if p.list_encoding == "csv" and len(params.get(p.query_ue_ids, [])) > 1:
            problems.append(f"{len(params[p.query_ue_ids])} {p.query_ue_ids} values, not one comma-separated value")
        twice = sorted(i for i, n in Counter(ids).items() if n > 1)
        if twice:
            problems.append(f"{p.query_ue_ids} lists {', '.join(twice)} more than once")
        unknown = [i for i in dict.fromkeys(ids) if i not in self.pending]
        if unknown:
            problems.append(f"{p.query_ue_ids} names {', '.join(unknown)}, with no cached request")
        listed = set(ids)
        before = [r for r in self.pending.values() if r.frame.when <= f.when]
        first = min((r.frame.when for r in before), default=f.when)
        if f.when - first >= self.max_wait_s * SENT_WITHIN_SHARE:  # the max-wait timer sent it
            queued = f.when - self.max_wait_s * QUEUED_SHARE  # captured after this: maybe not yet read
            before = [r for r in before if r.frame.when <= queued]
        left_out = [r for r in before if r.ue_id not in listed]
        carried = len(listed) >= p.min_batch  # a full batch may leave later requests to the next one
        if left_out and not carried:
            problems.append(
                f"{p.query_ue_ids} leaves out {self._names(left_out)}, cached before it "
                f"({len(listed)} listed, below min_batch {p.min_batch})"
            )
        bundled = [self.pending[i] for i in dict.fromkeys(ids) if i in self.pending]
        for key, name in (("vendor", p.query_vendor), ("type", p.query_type)):
            given = {v for r in bundled for v in (r.vendors if key == "vendor" else r.types)}
            found = params.get(name, [])
            if set(found) != given:
                want = ", ".join(sorted(given)) if given else "absent (no request gave one)"
                problems.append(f"{name} {', '.join(found) or 'absent'}, expected {want}")
        template = {"options": {"uri-path": None}, "query": {}, "options_allowed": BULK_OPTIONS}
        problems += [f"{x.field}: {x.found}" for x in judge_other_options(msg, template, self.bindings)]
        if self.batch is not None:
            self.batch = None
        for r in bundled:
            del self.pending[r.ue_id]
        unjudged: set[Address] = set()
        if left_out and not carried:
            for r in left_out:  # already failed here: what the gateway answers them is not judged again
                del self.pending[r.ue_id]
                unjudged.add(r.endpoint)
        x = _Exchange(
            f,
            path == p.bulk_path,
            path,
            [q.decode("utf-8", "replace") for q in msg.option_values(OptionNumber.URI_QUERY)],
            ids,
            {msg.token},
            {r.endpoint: r for r in [*bundled, *(left_out if unjudged else [])]},
            unjudged,
        )
        self.exchanges.append(x)
        frames = [*(r.frame.number for r in bundled), f.number]
        late = [r for r in bundled if r.expired]
        title = f"bulk GET for {len(bundled)} cached request(s)"
        if problems:
            # As the live cases' `needs`: what the UEs then get is judged only after a right bulk GET.
            x.state = "needs"
            yield self._j(title, Verdict.FAIL, "; ".join(problems), BULK1, frames, f.when)
        elif late:
            # already failed when their wait expired; the GET itself is right
            yield self._j(
                title,
                Verdict.PASS,
                f"as the rules say, but late for {self._names(late)} (judged then)",
                BULK1,
                frames,
                f.when,
            )
        else:
            first = bundled[0].frame.when if bundled else f.when
            yield self._j(
                title,
                Verdict.PASS,
                f"the bulk resource, each cached UE id once ({self._names(bundled)}), "
                f"{(f.when - first) * 1000:.0f} ms after the first request",
                BULK1,
                frames,
                f.when,
            )

    def _own_config(self, f: Frame, msg: codec.CoapMessage, path: list[str], ids: list[str]) -> Iterator[Judgement]:
        self.own.add(msg.token)
        p = self.p
        if p.reading("gateway_config_client") != "collocated":
            return  # under seal-c its own client is not on the wire: nothing the live cases judge
        deviations = []
        if path != p.single_path:
            deviations.append(f"Uri-Path /{'/'.join(path)}, not the single-UE resource /{'/'.join(p.single_path)}")
        if not ids or not all(ids):
            deviations.append(f"no UE id in {p.query_ue_ids}")
        title = "the gateway's own configuration GET"
        if deviations:
            yield self._j(
                title,
                Verdict.PASS,
                f"deviation (REQ-GW-CFG-1 is a SHOULD): {'; '.join(deviations)}",
                CFG,
                [f.number],
                f.when,
            )
        else:
            yield self._j(title, Verdict.PASS, f"the single-UE resource for {', '.join(ids)}", CFG, [f.number], f.when)

    # -- the SCM-S's answer -------------------------------------------------------------------

    def _answer(self, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        if is_request(msg.code) or msg.token in self.own:
            return
        x = next((x for x in self.exchanges if msg.token in x.tokens and x.state in ("asked", "fetching")), None)
        if x is None:
            return
        x.tokens.discard(msg.token)
        x.last = f
        if msg.code not in (Code.CONTENT, Code.FORBIDDEN, Code.NOT_FOUND) or (x.bulk and msg.code != Code.CONTENT):
            x.state = "failed"
            yield self._j(
                "responses split from the bulk answer",
                Verdict.INCONCLUSIVE,
                f"the SCM-S answered the GET with {code_name(msg.code)}: the live cases have no reading of "
                f"what the UEs then get ({self._names(list(x.waiting.values()))})",
                BULK2,
                [x.frame.number, f.number],
                x.frame.when,
            )
            return
        block = _block2(msg)
        if block is None:
            x.body = bytearray(msg.payload)
        else:
            num, more, szx = block
            size = 1 << (szx + 4)
            if szx == 7 or num * size != len(x.body) or len(x.body) + len(msg.payload) > MAX_ANSWER_BYTES:
                x.state = "unreadable"
                why = (
                    "it passes the reassembly bound"
                    if len(x.body) + len(msg.payload) > MAX_ANSWER_BYTES
                    else f"block {num} of size {size} does not follow the {len(x.body)} bytes reassembled"
                )
                yield self._j(
                    "responses split from the bulk answer",
                    Verdict.INCONCLUSIVE,
                    f"the block-wise answer cannot be put together: {why}",
                    BULK2,
                    [x.frame.number, f.number],
                    x.frame.when,
                )
                return
            x.body += msg.payload
            size2 = msg.option_values(OptionNumber.SIZE2)
            if num == 0 and size2:
                x.last_size2 = decode_uint(size2[0])
            if more:
                x.state = "fetching"
                x.deadline = f.when + self.wait_s
                return
        yield from self._complete(x, msg)

    def _complete(self, x: _Exchange, msg: codec.CoapMessage) -> Iterator[Judgement]:
        assert x.last is not None
        try:
            x.results = self._results(x, msg)
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            x.state = "unreadable"
            yield self._j(
                "responses split from the bulk answer",
                Verdict.INCONCLUSIVE,
                f"the answer is no bulk answer of shape {self.p.bulk_response_shape}: {exc}",
                BULK2,
                [x.frame.number, x.last.number],
                x.frame.when,
            )
            return
        x.state = "complete"
        x.deadline = x.last.when + self.wait_s
        held, x.held = x.held, []
        for f, m in held:
            yield from self._response(x, f, m)

    def _results(self, x: _Exchange, msg: codec.CoapMessage) -> dict[str, tuple[int, Any]]:
        if not x.bulk:
            # a single-UE GET: the answer is that UE's own result
            if len(x.ids) != 1:
                raise ValueError(f"a single-UE answer for {len(x.ids)} UE ids")
            doc = load_json(bytes(x.body)) if msg.code == Code.CONTENT else None
            return {x.ids[0]: (msg.code, doc)}
        doc = load_json(bytes(x.body))
        if self.p.bulk_response_shape == "by-id":
            items = [{"ue-uri": k, **v} for k, v in doc.items()]
        else:
            items = list(doc["ue-configurations"])
        return {str(i["ue-uri"]): (parse_code(str(i["result"])), i.get("configuration")) for i in items}

    # -- PC5 side: the split responses ---------------------------------------------------------

    def _from_pc5(self, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        if is_request(msg.code):
            yield self._stray_request("PC5", f, msg)
            return
        x = next((x for x in self.exchanges if f.dst in x.waiting), None)
        if x is None:
            if (f.dst, msg.token) in self.other:
                return  # the answer to a request that is not the cached GET: not these rules'
            cached = next((r for r in self.pending.values() if r.endpoint == f.dst and r.token == msg.token), None)
            if cached is not None:
                # Answered before any bulk GET asked for it (from a cache of an earlier answer, say):
                # the trace holds no answer to judge it against, and it waits no more.
                del self.pending[cached.ue_id]
                self.answered[f.dst] = f.number
                yield self._j(
                    f"{code_name(msg.code)} to {cached.ue_id}",
                    Verdict.INCONCLUSIVE,
                    "sent before any bulk GET asked the SCM-S for it: the trace holds no answer to judge it against",
                    BULK2,
                    [cached.frame.number, f.number],
                    f.when,
                )
                return
            if f.dst in self.answered:
                why = f"it was answered already (frame {self.answered[f.dst]})"
            else:
                client = self.t.client_at(f.dst)
                who = client.name if client else f"{f.dst[0]}:{f.dst[1]}"
                why = f"{who} has no request waiting"
            yield self._j(
                f"{code_name(msg.code)} to {f.dst[0]}:{f.dst[1]}",
                Verdict.FAIL,
                f"a response no constrained UE waits for: {why}",
                BULK2,
                [f.number],
                f.when,
            )
            return
        if x.state in ("asked", "fetching"):
            if len(x.held) < MAX_HELD:
                x.held.append((f, msg))
            if x.state == "fetching" and {hf.dst for hf, _ in x.held} >= set(x.waiting) - x.unjudged:
                # every waiting UE answered, and the rest of the answer never asked for
                yield from self._abandoned(x, f, "the gateway answered every waiting UE")
            return
        yield from self._response(x, f, msg)

    def _abandoned(self, x: _Exchange, f: Frame, how: str) -> Iterator[Judgement]:
        assert x.last is not None
        x.state = "abandoned"
        x.deadline = float("inf")
        for hf, _ in x.held:
            x.waiting.pop(hf.dst, None)
            self.answered[hf.dst] = hf.number
        x.held = []
        sizes = x.last_size2
        of = f" of the {sizes} B it announced (Size2)" if sizes is not None else ""
        yield self._j(
            "block-wise bulk answer",
            Verdict.FAIL,
            f"the SCM-S said more blocks follow and {how} with {len(x.body)} B fetched{of}: the UEs' "
            f"configurations were not all fetched",
            BULK2,
            [x.frame.number, x.last.number, f.number],
            x.frame.when,
        )

    def _response(self, x: _Exchange, f: Frame, msg: codec.CoapMessage) -> Iterator[Judgement]:
        r = x.waiting.pop(f.dst, None)
        if r is None:
            # a second response held while the answer arrived
            yield self._j(
                f"{code_name(msg.code)} to {f.dst[0]}:{f.dst[1]}",
                Verdict.FAIL,
                f"a second response to {f.dst[0]}:{f.dst[1]} (answered at frame {self.answered.get(f.dst, '?')})",
                BULK2,
                [f.number],
                f.when,
            )
            return
        self.answered[f.dst] = f.number
        if f.dst in x.unjudged or x.state in ("failed", "unreadable", "abandoned", "needs"):
            return  # judged already (left out of the query, or no answer to judge it against)
        title = f"{code_name(msg.code)} to {r.ue_id}"
        frames = [r.frame.number, x.frame.number, f.number]
        if r.ue_id not in x.results:
            yield self._j(
                title, Verdict.INCONCLUSIVE, f"the SCM-S's answer holds no result for {r.ue_id}", BULK2, frames, f.when
            )
            return
        code, conf = x.results[r.ue_id]
        reqs = BULK2 if code == Code.CONTENT else BULK3
        if code != Code.CONTENT and self.p.reading("bulk_errors") != "per-ue":
            yield self._j(
                title,
                Verdict.INCONCLUSIVE,
                f"reading bulk_errors: {self.p.reading('bulk_errors')}",
                reqs,
                frames,
                f.when,
            )
            return
        problems = self._response_problems(r, f, msg, code, conf)
        if problems:
            yield self._j(title, Verdict.FAIL, "; ".join(problems), reqs, frames, f.when)
            return
        after = (f.when - x.frame.when) * 1000
        why = f"its own {'configuration' if code == Code.CONTENT else 'result'}, {after:.0f} ms after the bulk GET"
        if r.mtype == MessageType.NON and msg.mtype == MessageType.CON:
            why += "; deviation: CON answers a NON request (RFC 7252 5.2.3 SHOULD)"
        yield self._j(title, Verdict.PASS, why, reqs, frames, f.when)

    def _response_problems(self, r: _Request, f: Frame, msg: codec.CoapMessage, code: int, conf: Any) -> list[str]:
        p = self.p
        problems: list[str] = []
        if p.port_match in ("source", "both") and f.src != self.pc5:
            problems.append(f"sent from {f.src[0]}:{f.src[1]}, not from the PC5 side {self.pc5[0]}:{self.pc5[1]}")
        piggybacked = msg.mtype == MessageType.ACK and r.mtype == MessageType.CON and msg.mid == r.mid
        if msg.mtype not in (MessageType.CON, MessageType.NON) and not piggybacked:
            problems.append(f"type {MessageType(msg.mtype).name}, not CON or NON")
        if msg.code != code:
            problems.append(f"code {code_name(msg.code)}, the bulk answer has {code_name(code)} for {r.ue_id}")
        if msg.token != r.token:
            problems.append(f"token {msg.token.hex() or '(empty)'}, not its request's {r.token.hex()}")
        recipients = msg.option_values(p.recipient_option)
        shown = ", ".join(repr(v.decode("utf-8", "replace")) for v in recipients) or "absent"
        if recipients != [r.ue_id.encode("utf-8")]:
            problems.append(f"recipient {shown}, not {r.ue_id!r}")
        named: dict[str, Any] = {"recipient": None}
        allowed = ["content-format", "max-age"]
        if code == Code.CONTENT:
            named["content-format"] = None
            allowed = ["max-age", "etag"]
            if msg.content_format() != p.content_format or len(msg.option_values(OptionNumber.CONTENT_FORMAT)) != 1:
                problems.append(f"Content-Format {msg.content_format()}, not {p.content_format}")
            problems += self._payload_problems(msg.payload, conf)
        template = {"options": named, "options_allowed": allowed}
        problems += [f"{x.field}: {x.found}" for x in judge_other_options(msg, template, self.bindings)]
        return problems

    @staticmethod
    def _payload_problems(payload: bytes, conf: Any) -> list[str]:
        try:
            doc = load_json(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            return [f"payload not JSON ({exc})"]
        if not json_same(doc, conf):
            return [f"payload {json.dumps(doc)[:200]} is not its own configuration {json.dumps(conf)[:200]}"]
        return []

    # -- time ---------------------------------------------------------------------------------

    def _expire(self, now: float) -> Iterator[Judgement]:
        due: list[_Request] = []
        if self.due < now:
            due = [r for r in self.pending.values() if not r.expired]
            for r in due:
                r.expired = True
            self.due = float("inf")
        if due:
            yield self._j(
                "cached request(s) in a bulk GET",
                Verdict.FAIL,
                f"no bulk GET carried the request(s) of {self._names(due)} within "
                f"{(self.max_wait_s + GRACE_S) * 1000:.0f} ms of the last of them (bulk_policy.max_wait_ms and "
                f"the cases' grace)",
                BULK1,
                [r.frame.number for r in due],
                due[0].frame.when,
            )
        if self.batch is not None and self.batch[0] < now:
            _, f = self.batch
            self.batch = None
            yield self._j(
                "bulk GET at min_batch",
                Verdict.FAIL,
                f"bulk_policy.min_batch {self.p.min_batch} requests cached at frame {f.number}, and no bulk "
                f"GET within {max(MIN_BATCH_S, self.wait_s) * 1000:.0f} ms of the first of them or "
                f"{self.wait_s * 1000:.0f} ms of the last, before the max_wait timer",
                BULK1,
                [f.number],
                f.when,
            )
        for x in self.exchanges:
            if x.deadline >= now:
                continue
            x.deadline = float("inf")
            if x.state == "fetching":
                assert x.last is not None
                yield from self._abandoned(
                    x, x.last, f"the gateway asked for no next block within {self.wait_s * 1000:.0f} ms"
                )
            elif x.state == "complete":
                for e, r in list(x.waiting.items()):
                    if e in x.unjudged:
                        continue
                    del x.waiting[e]
                    code = x.results.get(r.ue_id, (None, None))[0]
                    if code is None:
                        continue  # no result for it: nothing to expect
                    yield self._j(
                        f"{code_name(code)} to {r.ue_id}",
                        Verdict.FAIL,
                        f"no response within {self.wait_s * 1000:.0f} ms of the bulk answer",
                        BULK2 if code == Code.CONTENT else BULK3,
                        [r.frame.number, x.frame.number],
                        x.frame.when,
                    )
        # exchanges whose UEs are all answered (or given up) are done: state stays bounded
        self.exchanges = [x for x in self.exchanges if x.waiting or x.state in ("asked", "fetching")]

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _names(requests: list[_Request]) -> str:
        names = [r.ue_id for r in requests]
        return ", ".join(names) if len(names) <= 5 else f"{', '.join(names[:5])} and {len(names) - 5} more"

    def _stray_request(self, side: str, f: Frame, msg: codec.CoapMessage) -> Judgement:
        """A request of the gateway that is not a bulk GET to the SCM-S (REQ-GW-BULK-1)."""
        where = f"a request to {f.dst[0]}:{f.dst[1]}: the gateway's requests are the bulk GETs to the SCM-S"
        return self._j(f"{code_name(msg.code)} from the {side} side", Verdict.FAIL, where, BULK1, [f.number], f.when)

    def _j(
        self, title: str, verdict: Verdict, reason: str, reqs: tuple[str, ...], frames: list[int], when: float
    ) -> Judgement:
        return Judgement(title, verdict, reason, reqs, frames, when, topology=self.t.name)
