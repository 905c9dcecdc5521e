"""A load run: exchanges at the plan's rate through the SUT, each one checked.

Set-up is the sweep's and the cases' (world/topology.py, sut_adapters/base.py): a claimed loopback
/16, the adapter started with the run's /24, one case range with every tester node on its own
address (clients ``cue1..cueN``, the SCM-S), listeners on every other host of the range, and the SUT
opened for the role. The tester's nodes are plain non-blocking UDP sockets read by the event loop
and the strict codec (wire/codec.py): no request machinery between the socket and the check.

Relay (TS 24.538 6.2.2.1): a client with a one-to-one link sends the configuration GET (recipient
the SCM-S) to ``sut.pc5``; the GET must reach the SCM-S from ``sut.uu`` with its recipient option,
Uri-Path and Uri-Query intact; the SCM-S answers (piggybacked: 2.05 with the client's document, or
4.03/4.04 for the clients the profile marks so); the answer must reach that client, and it only,
with the client's token, code, recipient option, Content-Format and payload byte for byte. One
exchange in ten comes from a client without a link: its GET goes uplink, and nothing may come back.

Gateway (6.2.2.x): a round is N UEs each sending the GET; the gateway is told to send its bulk GET
(``send_bulk_now``, when it offers trigger-bulk; else its own service policy); the tester's SCM-S
serves the bulk answer (block-wise when large); each UE must get exactly one response, its own
(token, recipient, result code, configuration document as JSON).

Anything else a tester node receives (a datagram at the SCM-S that is no GET of an exchange, at a
listener, a second copy of an answer) is *unexpected*. Every wait is bounded: an exchange is lost
after the plan's timeout, the run ends at its last step plus that timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import resource
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from msgin5g_conformance.engine.session import raise_fd_limit
from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.load.plan import UNLINKED_EVERY, LoadPlan
from msgin5g_conformance.load.stats import FIRST_WRONG, Bins, StepStats, latency_figures
from msgin5g_conformance.roles.scms import ANSWER_CODES, ScmServer
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, code_to_str, encode_uint
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import Profile
from msgin5g_conformance.world.topology import CaseAddresses, RunBlock, claim_block
from sut_adapters.base import LINK_CONTROL, TRIGGER_BULK, CaseWorld, ClientInfo, SutAdapter, SutCase, SutEnvironment

log = logging.getLogger(__name__)

Address = tuple[str, int]
START_S = 30.0
OPEN_S = 10.0
OP_S = 5.0  # one upper-tester operation (a link, a bulk trigger)
STOP_S = 10.0
TICK_S = 0.001  # the sender's pace: what is due is sent every tick
BURST = 500  # at most this many exchanges sent in one tick (the rest is the tester falling behind)
SWEEP_S = 0.02  # how often overdue exchanges are declared lost
RCVBUF = 4 << 20
READS = 256
MID_MEMORY = 512  # Message IDs a client remembers for deduplication (RFC 7252 4.5)
SCM_MEMORY = 4096


class SetupError(HarnessError):
    """The load run could not begin (nothing was sent): exit status 2."""


@dataclass
class Failure:
    """One check that failed, named: where, which exchange, why."""

    kind: str  # lost | wrong | mangled | unexpected
    at: str
    what: str
    mid: int | None = None
    token: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "mid": self.mid, "token": self.token, "what": self.what}


class Exchange:
    """One configuration exchange (relay) or one UE's part of a round (gateway)."""

    __slots__ = ("client", "done", "mid", "round", "sent", "status", "step", "token", "uplink")

    def __init__(self, client: Client, step: StepStats, token: bytes, mid: int, sent: float) -> None:
        self.client = client
        self.step = step
        self.token = token
        self.mid = mid
        self.sent = sent
        self.uplink: float | None = None
        self.done: float | None = None
        self.status = "pending"  # pending | ok | lost | wrong | mangled
        self.round: Round | None = None


class Round:
    """One gateway round: N UEs, done when each got its answer."""

    __slots__ = ("acked", "ok", "open", "parts", "sent", "step")

    def __init__(self, step: StepStats, sent: float) -> None:
        self.step = step
        self.sent = sent
        self.parts: list[Exchange] = []
        self.open = 0
        self.ok = True
        self.acked: asyncio.Event = asyncio.Event()


class Node:
    """One tester node: a non-blocking UDP socket on its own address, read by the event loop."""

    def __init__(self, run: LoadRun, name: str, address: Address) -> None:
        self.run = run
        self.name = name
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        try:
            self.sock.bind(address)
        except OSError as exc:
            self.sock.close()
            raise HarnessError(f"tester node {name} cannot bind {address[0]}:{address[1]}: {exc}") from None
        self.sock.setblocking(False)
        run.loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(READS):
            try:
                data, src = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.received(data, (src[0], src[1]))

    def received(self, data: bytes, src: Address) -> None:
        self.run.unexpected(self.name, f"{len(data)} bytes from {self.run.label(src)} to a listener nobody owns", data)

    def send(self, data: bytes, to: Address) -> None:
        try:
            self.sock.sendto(data, to)
        except OSError as exc:
            self.run.send_errors += 1
            if self.run.send_errors <= FIRST_WRONG:
                log.info("%s: send to %s failed: %s", self.name, to, exc)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class Client(Node):
    """A constrained UE the tester plays: linked (relay) or not, or one UE of a gateway group."""

    def __init__(self, run: LoadRun, name: str, address: Address, linked: bool) -> None:
        super().__init__(run, name, address)
        self.linked = linked
        self.recipient = run.profile.client_address(name)
        self.next_mid = int.from_bytes(os.urandom(2), "big")
        self.by_mid: dict[int, Exchange] = {}  # our CONs not yet acknowledged
        self.pending: collections.deque[Exchange] = collections.deque()  # uplink not yet seen
        self.seen: collections.OrderedDict[tuple[int, int], None] = collections.OrderedDict()
        kind, doc = run.scm.answer_for(self.recipient)
        self.code = ANSWER_CODES[kind]
        self.document = doc
        self.payload = json.dumps(doc, separators=(",", ":")).encode("utf-8") if doc is not None else b""
        self.get_tail = run.get_tail(self.recipient)
        self.busy = False  # gateway: in a round

    def request(self, token: bytes) -> tuple[int, bytes]:
        mid = self.next_mid
        self.next_mid = (mid + 1) & 0xFFFF
        head = bytes((0x40 | len(token), Code.GET, mid >> 8, mid & 0xFF))
        return mid, head + token + self.get_tail

    def received(self, data: bytes, src: Address) -> None:
        self.run.at_client(self, data, src)


class Scms(Node):
    """The tester's SCM-S: checks each GET it gets, and answers it (piggybacked)."""

    def __init__(self, run: LoadRun, address: Address) -> None:
        super().__init__(run, "scms", address)
        self.replies: collections.OrderedDict[tuple[Address, int], bytes] = collections.OrderedDict()

    def received(self, data: bytes, src: Address) -> None:
        self.run.at_scms(self, data, src)


class LoadScm(ScmServer):
    """The tester's SCM-S content, with each UE's answer looked up once (not validated per GET)
    and a bounded cache of bulk answers."""

    def __init__(self, profile: Profile, node_for: Any) -> None:
        super().__init__(profile, node_for)
        self._answers: dict[str, tuple[str, dict[str, Any] | None]] = {}

    def answer_for(self, ue_id: str) -> tuple[str, dict[str, Any] | None]:
        if ue_id not in self._answers:
            self._answers[ue_id] = super().answer_for(ue_id)
        return self._answers[ue_id]

    def bulk_answer(self, ids: list[str]) -> bytes:
        if len(self._bulk_cache) > 64:
            self._bulk_cache.clear()
        return super().bulk_answer(ids)


@dataclass
class LoadResult:
    """What a load run did and found; report.py renders it."""

    sut: dict[str, Any]
    plan: LoadPlan
    profile: str
    endpoints: dict[str, str] = field(default_factory=dict)
    steps: list[StepStats] = field(default_factory=list)
    bins: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    rounds: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    sending_s: float = 0.0
    cpu: dict[str, Any] = field(default_factory=dict)
    load_average: tuple[float, float, float] | None = None
    sut_log_tail: list[str] = field(default_factory=list)
    sut_error: str | None = None

    @property
    def unit(self) -> str:
        return "rounds" if self.plan.role == "gateway" else "exchanges"

    @property
    def passed(self) -> bool:
        c = self.counts
        bad = c.get("lost", 0) + c.get("wrong", 0) + c.get("mangled", 0) + c.get("unexpected", 0)
        return bad == 0 and self.sut_error is None and c.get("ok", 0) > 0

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def throughput(self) -> float:
        ok = self.rounds.get("ok", 0) if self.plan.role == "gateway" else self.counts.get("ok", 0)
        return ok / self.plan.duration_s

    def figures(self) -> dict[str, Any]:
        return {
            f"throughput_{self.unit}_per_s": round(self.throughput(), 2),
            "offered": [s.offered_rate for s in self.steps],
            "latency": latency_figures(self.latencies),
            **self.counts,
            **({"rounds": self.rounds} if self.rounds else {}),
            "cpu": self.cpu,
            "load_average": list(self.load_average) if self.load_average else None,
        }


class LoadRun:
    """One load run against one SUT in one role (blocking :meth:`run`, its own event loop)."""

    def __init__(self, adapter: SutAdapter, profile: Profile, plan: LoadPlan, sut: dict[str, Any]) -> None:
        self.adapter = adapter
        self.profile = profile
        self.plan = plan
        self.result = LoadResult(sut, plan, profile.name)
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.block: RunBlock | None = None
        self.addresses: CaseAddresses | None = None
        self.scm = LoadScm(profile, self._node_for_ue)
        self.clients: dict[str, Client] = {}
        self.by_recipient: dict[str, Client] = {}
        self.nodes: list[Node] = []
        self.scms: Scms | None = None
        self.sut: SutCase | None = None
        self.pc5: Address = ("", 0)
        self.uu: Address = ("", 0)
        self.by_token: dict[bytes, Exchange] = {}
        self.order: collections.deque[Exchange] = collections.deque()  # pending, in send order
        self.done_order: collections.deque[Exchange] = collections.deque()  # finished, kept a while
        self.counts = collections.Counter({"sent": 0, "ok": 0, "lost": 0, "wrong": 0, "mangled": 0, "unexpected": 0})
        self.rounds = collections.Counter({"sent": 0, "ok": 0, "failed": 0})
        self.failures: list[Failure] = []
        self.latencies: list[float] = []
        self.bins: Bins | None = None
        self.send_errors = 0
        self.unacked = 0
        self.nonce = os.urandom(2)
        self.serial = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._get_tails: dict[str, bytes] = {}
        self.current_step: StepStats | None = None

    # -- names -------------------------------------------------------------------------------------

    def check(self) -> None:
        a, role = self.adapter, self.plan.role
        name = self.result.sut.get("name", a.name)
        if role not in a.roles:
            raise SetupError(f"SUT {name} does not implement the {role} role (roles: {', '.join(sorted(a.roles))})")
        if role == "relay" and LINK_CONTROL not in a.capabilities:
            raise SetupError(f"the relay load needs capability {LINK_CONTROL}, which SUT {name} does not offer")

    def client_names(self) -> tuple[list[str], list[str]]:
        """(linked, unlinked) client node names."""
        p = self.plan
        if p.role == "gateway":
            groups = max(2, min(8, 2000 // p.ues))
            return nodes.cue_range(1, p.ues * groups), []
        return nodes.cue_range(1, p.clients), nodes.cue_range(p.clients + 1, p.clients + p.unlinked)

    def label(self, address: Address) -> str:
        return self.addresses.label(address) if self.addresses is not None else f"{address[0]}:{address[1]}"

    def _node_for_ue(self, ue_id: str) -> str | None:
        return nodes.client_node(self.profile.client_address_template, ue_id)

    def client_lookup(self, address: str) -> ClientInfo | None:
        node = self._node_for_ue(address)
        if node is None or self.addresses is None:
            return None
        return ClientInfo(node, address, self.addresses.address(node))

    def get_tail(self, recipient: str) -> bytes:
        """A client's configuration GET after its token (options), encoded once."""
        if recipient not in self._get_tails:
            p = self.profile
            options = [(p.recipient_option, p.scm_s_address.encode("utf-8"))]
            options += [(OptionNumber.URI_PATH, s.encode("utf-8")) for s in p.single_path]
            options.append((OptionNumber.URI_QUERY, f"{p.query_ue_ids}={recipient}".encode()))
            data = codec.encode(CoapMessage(MessageType.CON, Code.GET, 0, b"", tuple(options)))
            self._get_tails[recipient] = data[4:]
        return self._get_tails[recipient]

    # -- failures ----------------------------------------------------------------------------------

    def fail(self, kind: str, at: str, what: str, ex: Exchange | None = None, mid: int | None = None) -> None:
        if len(self.failures) < FIRST_WRONG * 4 and sum(f.kind == kind for f in self.failures) < FIRST_WRONG:
            token = ex.token.hex() if ex is not None else None
            self.failures.append(Failure(kind, at, what, mid if mid is not None else (ex.mid if ex else None), token))

    def unexpected(self, at: str, what: str, data: bytes) -> None:
        self.counts["unexpected"] += 1
        mid = (data[2] << 8) | data[3] if len(data) >= 4 else None
        self.fail("unexpected", at, what, mid=mid)

    def finish(self, ex: Exchange, status: str, now: float) -> None:
        """An exchange's outcome (a success can still turn into a wrong delivery later)."""
        old = ex.status
        if old == status:
            return
        step = ex.step
        if old == "ok":
            self.counts["ok"] -= 1
            step.ok -= 1
        elif old != "pending":
            return  # a failure stays the failure it was first
        ex.status = status
        ex.done = now
        self.counts[status] += 1
        setattr(step, status, getattr(step, status) + 1)
        if old == "pending":
            self.done_order.append(ex)
        if status == "ok" and ex.client.linked and ex.round is None:
            lat = now - ex.sent
            self.latencies.append(lat)
            step.latencies.append(lat)
            if self.bins is not None:
                self.bins.add(ex.sent, lat)
        rnd = ex.round
        if rnd is not None:
            if old == "pending":
                rnd.open -= 1
            if status != "ok":
                if rnd.ok and old == "ok" and rnd.open == 0:
                    self.rounds["ok"] -= 1
                    self.rounds["failed"] += 1
                    rnd.step.rounds_ok -= 1
                rnd.ok = False
            if old == "pending" and rnd.open == 0:
                ex.client.busy = False
                for part in rnd.parts:
                    part.client.busy = False
                if rnd.ok:
                    self.rounds["ok"] += 1
                    rnd.step.rounds_ok += 1
                    lat = now - rnd.sent
                    self.latencies.append(lat)
                    rnd.step.latencies.append(lat)
                    if self.bins is not None:
                        self.bins.add(rnd.sent, lat)
                else:
                    self.rounds["failed"] += 1

    # -- the tester's SCM-S ------------------------------------------------------------------------

    def at_scms(self, node: Scms, data: bytes, src: Address) -> None:
        now = self.loop.time()
        try:
            msg = codec.parse(data)
        except codec.MalformedDatagram as exc:
            self.unexpected("scms", f"malformed datagram from {self.label(src)}: {exc}", data)
            return
        if msg.code == 0 and msg.mtype in (MessageType.ACK, MessageType.RST):
            return  # the SCM-S sends no CON: an empty ACK or RST answers nothing, and judges nothing
        if msg.code != Code.GET:
            self.unexpected("scms", f"{msg.summary()} from {self.label(src)}: not a configuration GET", data)
            if msg.mtype == MessageType.CON:  # rejected (RFC 7252 4.2): no retransmissions of it to count
                node.send(codec.encode(CoapMessage(MessageType.RST, 0, msg.mid)), src)
            return
        key = (src, msg.mid)
        if msg.mtype == MessageType.CON and key in node.replies:
            node.send(node.replies[key], src)  # a retransmission: the same answer again (RFC 7252 4.5)
            return
        if src != self.uu:
            self.unexpected("scms", f"GET from {self.label(src)}, not from sut.uu", data)
            return
        if self.plan.role == "gateway":
            reply = self.scm.respond(None, msg, src)  # type: ignore[arg-type]
            if reply is None:
                return
            self._answer(node, msg, reply, src, key)
            return
        ids = self.scm.ue_ids(msg.uri_query())
        client = self.by_recipient.get(ids[0]) if len(ids) == 1 else None
        if client is None:
            self.unexpected("scms", f"GET for {ids!r} from sut.uu: no tester client asked for it", data)
            return
        ex = None
        for cand in client.pending:
            if cand.token == msg.token:
                ex = cand
                break
        if ex is None and client.pending:
            ex = client.pending[0]  # a relay that chose its own token: the client's oldest GET
        if ex is None:
            self.unexpected("scms", f"GET for {client.name} from sut.uu: none of its GETs is waiting", data)
            return
        client.pending.remove(ex)
        ex.uplink = now
        problem = self.uplink_problem(msg, client)
        if problem is not None:
            self.finish(ex, "mangled", now)
            self.fail("mangled", "scms", f"the GET of {client.name} relayed uplink {problem}", ex)
        p = self.profile
        options = [(p.recipient_option, client.recipient.encode("utf-8"))]
        if client.document is not None:
            options.append((OptionNumber.CONTENT_FORMAT, encode_uint(p.content_format)))
        answer = CoapMessage(msg.mtype, client.code, 0, msg.token, tuple(sorted(options)), client.payload)
        self._answer(node, msg, answer, src, key)

    def _answer(self, node: Scms, req: CoapMessage, answer: CoapMessage, src: Address, key: Any) -> None:
        if req.mtype == MessageType.CON:
            data = codec.encode(
                CoapMessage(MessageType.ACK, answer.code, req.mid, answer.token, answer.options, answer.payload)
            )
            node.replies[key] = data
            if len(node.replies) > SCM_MEMORY:
                node.replies.popitem(last=False)
        else:
            self.serial += 1
            data = codec.encode(
                CoapMessage(
                    MessageType.NON, answer.code, self.serial & 0xFFFF, answer.token, answer.options, answer.payload
                )
            )
        node.send(data, src)

    def uplink_problem(self, msg: CoapMessage, client: Client) -> str | None:
        p = self.profile
        recipients = msg.option_values(p.recipient_option)
        if recipients != [p.scm_s_address.encode("utf-8")]:
            return f"with recipient option(s) {recipients!r}, not the SCM-S {p.scm_s_address!r}"
        try:
            path, query = msg.uri_path(), msg.uri_query()
        except UnicodeDecodeError:
            return "with a Uri-Path or Uri-Query that is not UTF-8"
        if path != list(p.single_path):
            return f"with Uri-Path {'/'.join(path)!r}, not {'/'.join(p.single_path)!r}"
        if query != [f"{p.query_ue_ids}={client.recipient}"]:
            return f"with Uri-Query {query!r}"
        known = {p.recipient_option, OptionNumber.URI_PATH, OptionNumber.URI_QUERY}
        extra = sorted({n for n, _ in msg.options if n not in known})
        if extra:
            return f"with option(s) {extra} the client did not send"
        return None

    # -- a tester client ---------------------------------------------------------------------------

    def at_client(self, client: Client, data: bytes, src: Address) -> None:
        now = self.loop.time()
        try:
            msg = codec.parse(data)
        except codec.MalformedDatagram as exc:
            self.unexpected(client.name, f"malformed datagram from {self.label(src)}: {exc}", data)
            return
        if msg.code == 0:
            if msg.mtype == MessageType.ACK:
                ex = client.by_mid.pop(msg.mid, None)
                if (
                    ex is not None
                    and ex.round is not None
                    and all(p.client.by_mid.get(p.mid) is not p for p in ex.round.parts)
                ):
                    ex.round.acked.set()
                return
            if msg.mtype == MessageType.RST:
                client.by_mid.pop(msg.mid, None)
                self.unexpected(client.name, f"Reset mid=0x{msg.mid:04x} from {self.label(src)}", data)
                return
            # an Empty CON (ping): a Reset (RFC 7252 4.3)
            client.send(codec.encode(CoapMessage(MessageType.RST, 0, msg.mid)), src)
            return
        if msg.mtype == MessageType.CON:
            client.send(codec.encode(CoapMessage(MessageType.ACK, 0, msg.mid)), src)
        if msg.mtype in (MessageType.CON, MessageType.NON):
            key = (msg.mid, int(msg.mtype))
            if key in client.seen:
                return  # a retransmission, processed once (RFC 7252 4.5)
            client.seen[key] = None
            if len(client.seen) > MID_MEMORY:
                client.seen.popitem(last=False)
        elif msg.mtype == MessageType.ACK:
            client.by_mid.pop(msg.mid, None)  # a piggybacked answer acknowledges the GET
        ex = self.by_token.get(msg.token)
        where = f"{client.name}{'' if client.linked else ' (no link)'}"
        if ex is None:
            self.counts["wrong"] += 1
            self.fail("wrong", where, f"{msg.summary()} from {self.label(src)}: answers no GET of the run", mid=msg.mid)
            return
        if ex.client is not client:
            self.finish(ex, "wrong", now)
            self.fail("wrong", where, f"got the answer meant for {ex.client.name} ({msg.summary()})", ex)
            return
        if not client.linked:
            self.finish(ex, "wrong", now)
            self.fail("wrong", where, f"got an answer though it has no link ({msg.summary()})", ex)
            return
        problem = self.answer_problem(msg, client, src)
        if ex.status != "pending":
            if problem is None:
                self.unexpected(where, f"a second answer to its GET ({msg.summary()})", data)
            else:  # another answer on its token, not its own: someone else's configuration, say
                self.finish(ex, "wrong", now)
                self.fail("wrong", where, f"a second answer to its GET, not its own: {problem} ({msg.summary()})", ex)
            return
        if problem is not None:
            self.finish(ex, "mangled", now)
            self.fail("mangled", where, problem, ex)
            return
        self.finish(ex, "ok", now)

    def answer_problem(self, msg: CoapMessage, client: Client, src: Address) -> str | None:
        p = self.profile
        if src != self.pc5:
            return f"answer from {self.label(src)}, not from sut.pc5"
        if msg.code != client.code:
            return f"answer {code_to_str(msg.code)}, the SCM-S answered {code_to_str(client.code)}"
        if msg.option_values(p.recipient_option) != [client.recipient.encode("utf-8")]:
            return f"recipient option {msg.option_values(p.recipient_option)!r}, not {client.recipient!r}"
        if client.document is None:
            return None
        if msg.content_format() != p.content_format:
            return f"Content-Format {msg.content_format()}, not {p.content_format}"
        if self.plan.role == "gateway":
            try:
                doc = json.loads(msg.payload)
            except ValueError:
                return "payload is not JSON"
            return None if doc == client.document else "payload is not its own configuration document"
        if msg.payload != client.payload:
            return f"payload of {len(msg.payload)} bytes differs from the {len(client.payload)} the SCM-S sent"
        return None

    # -- sending -----------------------------------------------------------------------------------

    def new_exchange(self, client: Client, step: StepStats, now: float) -> Exchange:
        self.serial += 1
        token = self.nonce + struct.pack(">I", self.serial & 0xFFFFFFFF)
        mid, data = client.request(token)
        ex = Exchange(client, step, token, mid, now)
        self.by_token[token] = ex
        client.by_mid[mid] = ex
        if len(client.by_mid) > MID_MEMORY:
            client.by_mid.pop(next(iter(client.by_mid)))
        client.pending.append(ex)
        self.order.append(ex)
        client.send(data, self.pc5)
        step.sent += 1
        self.counts["sent"] += 1
        return ex

    async def drive_relay(self, step: StepStats, linked: list[Client], unlinked: list[Client]) -> None:
        loop = self.loop
        sent = 0
        i = 0
        end = step.start + step.duration_s
        while True:
            now = loop.time()
            due = min(step.planned, int((now - step.start) * step.offered_rate) + 1) - sent
            for _ in range(min(due, BURST)):
                i += 1
                if unlinked and i % UNLINKED_EVERY == 0:
                    client = unlinked[(i // UNLINKED_EVERY) % len(unlinked)]
                else:
                    client = linked[i % len(linked)]
                self.new_exchange(client, step, now)
                sent += 1
            if now >= end or sent >= step.planned:
                break
            await asyncio.sleep(TICK_S)
        while loop.time() < end:
            await asyncio.sleep(min(TICK_S * 10, end - loop.time()))

    async def drive_gateway(self, step: StepStats, groups: list[list[Client]]) -> None:
        loop = self.loop
        sent = 0
        end = step.start + step.duration_s
        turn = 0
        while True:
            now = loop.time()
            due = min(step.planned, int((now - step.start) * step.offered_rate) + 1) - sent
            for _ in range(min(due, BURST)):
                group = None
                for k in range(len(groups)):
                    cand = groups[(turn + k) % len(groups)]
                    if not cand[0].busy:
                        group = cand
                        turn += k + 1
                        break
                if group is None:
                    break  # every group is still in a round: the SUT (or the tester) is behind
                self.start_round(group, step, now)
                sent += 1
            if now >= end or sent >= step.planned:
                break
            await asyncio.sleep(TICK_S)
        while loop.time() < end:
            await asyncio.sleep(min(TICK_S * 10, end - loop.time()))

    def start_round(self, group: list[Client], step: StepStats, now: float) -> None:
        rnd = Round(step, now)
        self.rounds["sent"] += 1
        step.sent += 1
        for client in group:
            client.busy = True
            ex = self.new_exchange(client, step, now)
            step.sent -= 1  # a step of the gateway counts rounds
            ex.round = rnd
            rnd.parts.append(ex)
        rnd.open = len(rnd.parts)
        if TRIGGER_BULK in self.adapter.capabilities:
            task = self.loop.create_task(self.trigger(rnd))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def trigger(self, rnd: Round) -> None:
        """Once the gateway acknowledged the round's GETs (it has cached them), its bulk GET now."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rnd.acked.wait(), self.plan.timeout_s / 2)
        if self.sut is not None:
            try:
                await asyncio.wait_for(self.sut.send_bulk_now(), OP_S)
            except Exception as exc:  # the SUT's trouble: the round's answers will be lost
                log.info("send_bulk_now failed: %s", exc)

    async def expire(self) -> None:
        """Declare overdue exchanges lost (and a discard checked); forget old finished ones."""
        loop = self.loop
        timeout = self.plan.timeout_s
        while True:
            now = loop.time()
            order = self.order
            while order and (order[0].status != "pending" or order[0].sent + timeout <= now):
                ex = order.popleft()
                if ex.status != "pending":
                    continue
                if ex.uplink is None:
                    with contextlib.suppress(ValueError):
                        ex.client.pending.remove(ex)
                if not ex.client.linked and ex.uplink is not None:
                    self.finish(ex, "ok", now)  # relayed uplink, and nothing came back: discarded
                    continue
                self.finish(ex, "lost", now)
                if ex.round is not None:
                    side = "no answer from the gateway"
                else:
                    side = "lost uplink (the SCM-S never got the GET)" if ex.uplink is None else "lost downlink"
                self.fail("lost", ex.client.name, f"no answer within {timeout:g} s: {side}", ex)
            done = self.done_order
            while done and done[0].done is not None and done[0].done + 2 * timeout <= now:
                old = done.popleft()
                self.by_token.pop(old.token, None)
            await asyncio.sleep(SWEEP_S)

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> LoadResult:
        self.check()
        raise_fd_limit()
        coap = logging.getLogger("coap")
        level = coap.level
        coap.setLevel(logging.ERROR)
        began = time.monotonic()
        try:
            asyncio.run(self._run())
        finally:
            coap.setLevel(level)
            if self.block is not None:
                self.block.release()
                self.block = None
        self.result.wall_s = time.monotonic() - began
        return self.result

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        p = self.profile
        try:
            self.block = claim_block(p.port)
        except (HarnessError, OSError) as exc:
            raise SetupError(f"no loopback address block for the load run: {exc}") from None
        run_space = self.block.run_space()
        env = SutEnvironment(
            p,
            p.timers.coap,
            {n: (run_space.host(nodes.kind(n).host), p.port) for n in nodes.ALL_SUT_ENDPOINTS},  # type: ignore[union-attr]
        )
        try:
            await asyncio.wait_for(self.adapter.start(env), START_S)
        except (HarnessError, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.adapter.stop(), STOP_S)
            raise SetupError(f"SUT {self.result.sut.get('name')} did not start: {exc or type(exc).__name__}") from None
        try:
            await self._open_and_drive()
        finally:
            for task in list(self.tasks):
                task.cancel()
            if self.sut is not None:
                sut, self.sut = self.sut, None
                self.result.sut_log_tail = sut.log_text().splitlines()[-50:]
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sut.close(), STOP_S)
            for node in self.nodes:
                node.close()
            try:
                await asyncio.wait_for(self.adapter.stop(), STOP_S)
            except Exception as exc:
                log.warning("stopping the SUT failed: %s", exc)

    async def _open_and_drive(self) -> None:
        p, plan = self.profile, self.plan
        assert self.block is not None
        linked_names, unlinked_names = self.client_names()
        names = ("scms", *linked_names, *unlinked_names)
        space = self.block.open_space(nodes.hosts_needed(set(names)))
        self.addresses = CaseAddresses(space, p.port, p.alt_port, names, ())
        self.scms = Scms(self, self.addresses.address("scms"))
        self.nodes.append(self.scms)
        for name in (*linked_names, *unlinked_names):
            client = Client(self, name, self.addresses.address(name), name in linked_names)
            self.clients[name] = client
            self.by_recipient[client.recipient] = client
            self.nodes.append(client)
        world = CaseWorld(
            role=plan.role,
            endpoints={n: self.addresses.address(n) for n in nodes.SUT_ENDPOINTS[plan.role]},
            peers={n: self.addresses.address(n) for n in nodes.ALL_PEERS},
            client_lookup=self.client_lookup,
        )
        try:
            self.sut = await asyncio.wait_for(self.adapter.open_case(world), OPEN_S)
        except (HarnessError, OSError, TimeoutError) as exc:
            raise SetupError(f"the SUT did not open for the {plan.role} role: {exc or type(exc).__name__}") from None
        endpoints = dict(self.sut.endpoints())
        missing = [n for n in nodes.SUT_ENDPOINTS[plan.role] if n not in endpoints]
        if missing:
            raise SetupError(f"the SUT gave no address for {', '.join(missing)} in role {plan.role}")
        self.pc5, self.uu = endpoints["sut.pc5"], endpoints["sut.uu"]
        if not all(a[0].startswith("127.") for a in (self.pc5, self.uu)):
            raise SetupError(f"the SUT's endpoints {self.pc5}, {self.uu} are not on loopback 127.0.0.0/8")
        self.addresses = CaseAddresses(space, p.port, p.alt_port, names, tuple(sorted(endpoints.items())))
        self.result.endpoints = {n: f"{a[0]}:{a[1]}" for n, a in sorted(endpoints.items())}
        # every other host of the range: a listener, so that a datagram sent to nobody is seen
        for host in self.addresses.spare_hosts():
            with contextlib.suppress(HarnessError):
                self.nodes.append(Node(self, nodes.ELSEWHERE, (host, p.port)))
        if plan.role == "relay":
            for name in linked_names:
                c = self.clients[name]
                try:
                    await asyncio.wait_for(self.sut.establish_link(ClientInfo(name, c.recipient, c.address)), OP_S)
                except Exception as exc:
                    raise SetupError(f"establishing the link with {name} failed: {exc or type(exc).__name__}") from None
        await self._drive(linked_names, unlinked_names)

    async def _drive(self, linked_names: list[str], unlinked_names: list[str]) -> None:
        plan, loop = self.plan, self.loop
        cpu0, wall0 = time.process_time(), loop.time()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self.bins = Bins(wall0, plan.duration_s)
        expiry = loop.create_task(self.expire())
        linked = [self.clients[n] for n in linked_names]
        unlinked = [self.clients[n] for n in unlinked_names]
        groups = [linked[i : i + plan.ues] for i in range(0, len(linked), plan.ues)]
        try:
            start = wall0
            for rate in plan.steps:
                step = StepStats(rate, start, plan.step_s, planned=max(1, round(rate * plan.step_s)))
                self.result.steps.append(step)
                self.current_step = step
                step_cpu = time.process_time()
                if plan.role == "relay":
                    await self.drive_relay(step, linked, unlinked)
                else:
                    await self.drive_gateway(step, groups)
                step.cpu_s = time.process_time() - step_cpu
                start += plan.step_s
            self.result.sending_s = loop.time() - wall0
            # the last exchanges: until each is answered or lost (bounded by the timeout)
            deadline = loop.time() + plan.timeout_s + 4 * SWEEP_S
            while loop.time() < deadline and any(ex.status == "pending" for ex in self.order):
                await asyncio.sleep(SWEEP_S)
            await asyncio.sleep(SWEEP_S)  # stragglers to the listeners
        finally:
            expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await expiry
        now = loop.time()
        for ex in list(self.order):
            if ex.status == "pending":
                self.finish(ex, "ok" if (not ex.client.linked and ex.uplink is not None) else "lost", now)
                if ex.status == "lost":
                    self.fail("lost", ex.client.name, f"no answer within {plan.timeout_s:g} s", ex)
        wall = loop.time() - wall0
        cpu = time.process_time() - cpu0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        embedded = self.result.sut.get("kind") != "external"
        self.result.cpu = {
            "process": "tester and SUT (one process)" if embedded else "tester (the SUT runs in its own process)",
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "share_of_one_core": round(cpu / wall, 3) if wall > 0 else None,
            "user_s": round(ru1.ru_utime - ru0.ru_utime, 3),
            "system_s": round(ru1.ru_stime - ru0.ru_stime, 3),
            "cores": os.cpu_count(),
        }
        self.result.load_average = os.getloadavg()
        self.result.counts = {**self.counts, "send_errors": self.send_errors}
        self.result.counts["unacknowledged"] = sum(len(c.by_mid) for c in self.clients.values())
        if plan.role == "gateway":
            self.result.rounds = dict(self.rounds)
        self.result.failures = self.failures
        self.result.latencies = self.latencies
        self.result.bins = self.bins.rows()


def run_load(adapter: SutAdapter, profile: Profile, plan: LoadPlan, sut: dict[str, Any]) -> LoadResult:
    """Run the plan against the SUT to its end (blocking). SetupError: nothing was judged."""
    return LoadRun(adapter, profile, plan, sut).run()
