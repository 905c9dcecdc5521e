"""Running a sweep: the SUT opened for one role, the inputs, the liveness probes, the localization.

::

    set-up     claim a loopback /16 (world/topology.py), start the adapter with the run's /24 for
               SUTs that keep their addresses, open a case range, bind the tester nodes there, open
               the SUT for the role (sut_adapters: the same machinery as ``run``)
    baseline   one probe before any input: a SUT that fails it is not blamed on an input
    inputs     the generated datagrams, each from the tester node that plays the SUT's peer on that
               side, one send at a time (every send yields to the loop); a probe every K inputs
    end        at the count or the time limit, whichever comes first: one last probe
    localize   after a failed probe: the inputs since the last passed probe are replayed one at a
               time on a fresh SUT (a new case range, the SUT opened again), with a probe after each;
               the first one after which the probe fails is the input that stopped the SUT

A probe is a CoAP ping (Empty CON) to every endpoint of the role, answered with RST or ACK within
the profile's ``ack_bound_ms`` (RFC 7252 4.2, 4.3), then one valid exchange of the role (see
:meth:`Target.exchange`). Every datagram the tester's nodes send and receive goes to one capture.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from msgin5g_conformance import roles
from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.roles.scms import ScmServer
from msgin5g_conformance.sweep.generators import PROBE_CLIENT, SENDERS, Input, configuration_get, inputs
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address, Datagram
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.endpoint import Endpoint, Exchange
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, encode_uint
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import Profile
from msgin5g_conformance.world.topology import CaseAddresses, CaseSpace, RunBlock, claim_block
from sut_adapters.base import (
    LINK_CONTROL,
    TRIGGER_REQUEST,
    CaseWorld,
    ClientInfo,
    SutAdapter,
    SutCase,
    SutEnvironment,
)

log = logging.getLogger(__name__)

MAX_COUNT = 100_000  # inputs per SUT endpoint
MAX_TIME_LIMIT_S = 3600.0
DEFAULT_TIME_LIMIT_S = 120.0
DEFAULT_PROBE_EVERY = 50
START_S = 30.0  # bound on starting the adapter
OPEN_S = 10.0  # bound on opening the SUT for the role
CLOSE_S = 5.0
STOP_S = 10.0
UPPER_OP_S = 5.0  # bound on one upper-tester operation of a probe
LOCALIZE_S = 60.0  # bound on replaying a window on a fresh SUT
MAX_CAPTURE = 1_000_000  # datagrams kept for the pcap (memory bound); beyond, counted only
MAX_CAPTURE_BYTES = 256 << 20
LOG_LINES = 200  # lines of log kept for the report
# Pacing: after this many inputs or bytes to one endpoint, a ping that must be answered before the
# next input (bounded by the ACK bound): at most that much is ever queued at the SUT's socket,
# whether the SUT runs in this process or another one.
SYNC_INPUTS = 32
SYNC_BYTES = 48 << 10


class SetupError(HarnessError):
    """The sweep could not begin (nothing was sent): a usage or set-up problem, exit status 2."""


# -- the record -------------------------------------------------------------------------------------


class Capture:
    """Every datagram the tester's nodes send and receive: kept for the pcap (bounded), and shown
    to whoever waits for one (a probe)."""

    def __init__(self, limit: int = MAX_CAPTURE, byte_limit: int = MAX_CAPTURE_BYTES) -> None:
        self.datagrams: list[Datagram] = []
        self.limit = limit
        self.byte_limit = byte_limit
        self.kept_bytes = 0
        self.total = 0
        self.not_kept = 0
        self._watchers: list[Callable[[Datagram], None]] = []

    def record(self, src: Address, dst: Address, data: bytes, when: float) -> int | None:
        seq = self.total
        self.total += 1
        keep = len(self.datagrams) < self.limit and self.kept_bytes + len(data) <= self.byte_limit
        if not keep:
            self.not_kept += 1
        if not keep and not self._watchers:
            return seq
        d = Datagram(seq, when, src, dst, bytes(data))
        if keep:
            self.datagrams.append(d)
            self.kept_bytes += len(data)
        for watch in list(self._watchers):
            watch(d)
        return seq

    @contextlib.contextmanager
    def watch(self, wanted: Callable[[Datagram], bool]) -> Iterator[asyncio.Future[Datagram]]:
        """A future of the first datagram from now on that ``wanted`` accepts."""
        fut: asyncio.Future[Datagram] = asyncio.get_running_loop().create_future()

        def watcher(d: Datagram) -> None:
            if not fut.done() and wanted(d):
                fut.set_result(d)

        self._watchers.append(watcher)
        try:
            yield fut
        finally:
            self._watchers.remove(watcher)
            if not fut.done():
                fut.cancel()


async def _until(fut: asyncio.Future[Datagram], deadline: float) -> Datagram | None:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0 and not fut.done():
        return None
    try:
        return await asyncio.wait_for(asyncio.shield(fut), max(remaining, 0))
    except TimeoutError:
        return None


# -- results -----------------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    number: int  # 0 is the baseline, before any input
    after_input: int | None  # index of the last input before it (None: before any input)
    passed: bool
    stage: str  # where it failed: open | ping | exchange ("passed" when it passed)
    endpoint: str | None  # the SUT endpoint that failed it (None: not one endpoint)
    reason: str
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "after_input": self.after_input,
            "passed": self.passed,
            "stage": self.stage,
            "endpoint": self.endpoint,
            "reason": self.reason,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass
class Refusal:
    index: int
    endpoint: str
    size: int
    errno: int
    reason: str


@dataclass
class Localization:
    localized: bool
    how: str
    culprit: Input | None = None
    probe: ProbeResult | None = None  # the replay probe that failed right after the culprit
    replayed: int = 0
    replay_probes: int = 0


@dataclass
class SweepResult:
    """What a sweep did and found; :mod:`msgin5g_conformance.sweep.report` renders it."""

    sut: str
    role: str
    profile: str
    seed: int
    count: int
    probe_every: int
    time_limit_s: float
    endpoints: dict[str, str] = field(default_factory=dict)
    stopped_by: str = "count"  # count | time-limit | probe-failed
    inputs_planned: int = 0
    inputs_sent: int = 0
    per_generator: dict[str, dict[str, int]] = field(default_factory=dict)
    per_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    refused: int = 0
    probes: list[ProbeResult] = field(default_factory=list)
    failed_probe: ProbeResult | None = None
    window: tuple[int, int] | None = None  # inputs since the last passed probe (first, last)
    localization: Localization | None = None
    sending_s: float = 0.0  # from the first input to the end of the last probe
    wall_s: float = 0.0
    kernel_drops: int = 0  # datagrams the kernel dropped at the tester's nodes
    syncs: int = 0  # pacing pings (see Target.pace)
    syncs_unanswered: int = 0
    capture: Capture | None = None
    sut_log: list[str] = field(default_factory=list)
    process_log: list[dict[str, Any]] = field(default_factory=list)  # distinct warnings/errors, counted

    @property
    def survived(self) -> bool:
        return self.failed_probe is None

    @property
    def exit_code(self) -> int:
        return 0 if self.survived else 1

    @property
    def probes_passed(self) -> int:
        return sum(1 for p in self.probes if p.passed)

    def count_input(self, inp: Input, refusal: Refusal | None) -> None:
        for table, key in ((self.per_generator, inp.generator), (self.per_endpoint, inp.endpoint)):
            row = table.setdefault(key, {"sent": 0, "refused": 0})
            row["refused" if refusal else "sent"] += 1
        if refusal is None:
            self.inputs_sent += 1
            return
        self.refused += 1
        if len(self.refusals) < 100:
            self.refusals.append(refusal)


# -- one SUT instance with its tester nodes ---------------------------------------------------------


class Target:
    """The SUT opened for the role on one case range, with the tester nodes around it."""

    def __init__(self, sweep: Sweep, space: CaseSpace) -> None:
        self.sweep = sweep
        self.profile = sweep.profile
        self.role = sweep.role
        self.space = space
        p = self.profile
        self.names = sorted(
            {*nodes.ROLE_NODES[self.role], *(SENDERS[e] for e in nodes.SUT_ENDPOINTS[self.role])}
            | ({PROBE_CLIENT} if self.role != "constrained-ue" else set())
        )
        self.addresses = CaseAddresses(space, p.port, p.alt_port, tuple(self.names), ())
        self.nodes: dict[str, Endpoint] = {}
        self.sut: SutCase | None = None
        self.endpoints: dict[str, Address] = {}
        self.scm: ScmServer | None = None
        self.used_mids: dict[str, set[int]] = collections.defaultdict(set)
        self._probe_mid: dict[str, int] = collections.defaultdict(int)
        self._tokens = 0
        self._unsynced: dict[str, list[int]] = {e: [0, 0] for e in nodes.SUT_ENDPOINTS[self.role]}
        self.syncs = 0
        self.syncs_unanswered = 0
        self.pacing = True  # off after a sync went unanswered, until the next probe passes

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        p = self.profile
        capture = self.sweep.capture
        if roles.DEFAULT_SCMS_MODE[self.role] == "piggybacked":  # the gateway's bulk GET is answered
            self.scm = ScmServer(p, self._node_for_ue)
        for name in self.names:
            handler = self.scm.respond if (self.scm is not None and name == "scms") else None
            ep = Endpoint(name, self.addresses.address(name), p.timers.coap, record=capture.record, handler=handler)
            try:
                ep.open()
            except OSError as exc:
                raise HarnessError(f"tester node {name} cannot bind {ep.address[0]}:{ep.address[1]}: {exc}") from None
            self.nodes[name] = ep
        world = CaseWorld(
            role=self.role,
            endpoints={n: self.addresses.address(n) for n in nodes.SUT_ENDPOINTS[self.role]},
            peers={n: self.addresses.address(n) for n in nodes.ALL_PEERS},
            client_lookup=self.client_lookup,
        )
        try:
            self.sut = await asyncio.wait_for(self.sweep.adapter.open_case(world), OPEN_S)
        except TimeoutError:
            raise HarnessError(f"the SUT did not open for the {self.role} role within {OPEN_S:.0f} s") from None
        endpoints = dict(self.sut.endpoints())
        missing = [n for n in nodes.SUT_ENDPOINTS[self.role] if n not in endpoints]
        if missing:
            raise HarnessError(f"the SUT gave no address for {', '.join(missing)} in role {self.role}")
        for name in nodes.SUT_ENDPOINTS[self.role]:
            host = endpoints[name][0]
            if not _loopback(host):
                raise SetupError(f"the SUT's {name} is at {host}, outside 127.0.0.0/8: the sweep sends nowhere else")
            self.endpoints[name] = endpoints[name]
        self.addresses = CaseAddresses(
            self.space, p.port, p.alt_port, tuple(self.names), tuple(sorted(self.endpoints.items()))
        )

    async def close(self) -> None:
        if self.sut is not None:
            sut, self.sut = self.sut, None
            self.sweep.sut_log.extend(sut.log_text().splitlines()[-LOG_LINES:])
            try:
                await asyncio.wait_for(sut.close(), CLOSE_S)
            except Exception as exc:  # closing must not hide what the sweep found
                log.warning("closing the SUT failed: %s", exc)
        for ep in self.nodes.values():
            ep.close()

    def client_lookup(self, address: str) -> ClientInfo | None:
        """Which tester client a recipient address names (as the engine's case does)."""
        node = nodes.client_node(self.profile.client_address_template, address)
        return ClientInfo(node, address, self.addresses.address(node)) if node is not None else None

    def _node_for_ue(self, ue_id: str) -> str | None:
        info = self.client_lookup(ue_id)
        return info.node if info is not None else None

    @property
    def kernel_drops(self) -> int:
        return sum(ep.drops for ep in self.nodes.values())

    # -- inputs ------------------------------------------------------------------------------------

    async def send(self, inp: Input) -> Refusal | None:
        """Put one input on the wire to its endpoint (the node's send yields to the loop)."""
        node = self.nodes[SENDERS[inp.endpoint]]
        if len(inp.data) >= 4:
            self.used_mids[node.name].add((inp.data[2] << 8) | inp.data[3])
        before = len(node.failures)
        await node.send_raw(inp.data, self.endpoints[inp.endpoint])
        if len(node.failures) > before:
            f = node.failures[-1]
            return Refusal(inp.index, inp.endpoint, f.size, f.errno, f.reason)
        return None

    async def pace(self, inp: Input) -> None:
        """Wait until the SUT has read what was sent to this endpoint, every SYNC_INPUTS inputs or
        SYNC_BYTES bytes: a ping sent after them is answered only once they were read (one socket
        reads in order)."""
        pending = self._unsynced[inp.endpoint]
        pending[0] += 1
        pending[1] += len(inp.data)
        if pending[0] < SYNC_INPUTS and pending[1] < SYNC_BYTES:
            return
        pending[0] = pending[1] = 0
        if not self.pacing:
            return
        node = self.nodes[SENDERS[inp.endpoint]]
        self.syncs += 1
        ex, _ = await self._confirm(
            node, CoapMessage(MessageType.CON, 0, self.probe_mid(node.name)), self.endpoints[inp.endpoint]
        )
        if ex is None or ex.state not in ("acked", "reset"):
            self.syncs_unanswered += 1
            self.pacing = False  # the next probe judges; until then, no more waiting

    def probe_mid(self, node: str) -> int:
        """A Message ID in the upper half that no input from this node used (RFC 7252 4.5: the SUT
        must not take a probe for a duplicate of an input)."""
        used = self.used_mids[node]
        for _ in range(0x8000):
            n = self._probe_mid[node]
            self._probe_mid[node] = (n + 1) & 0x7FFF
            mid = 0x8000 | n
            if mid not in used:
                return mid
        return 0x8000 | self._probe_mid[node]  # every one used: take the next anyway

    def probe_token(self) -> bytes:
        self._tokens += 1
        return b"\x5e" + self._tokens.to_bytes(4, "big")

    # -- probes ------------------------------------------------------------------------------------

    async def probe(self, number: int, after: int | None) -> ProbeResult:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pings = await asyncio.gather(*(self.ping(ep) for ep in nodes.SUT_ENDPOINTS[self.role]))
        for name, problem in zip(nodes.SUT_ENDPOINTS[self.role], pings, strict=True):
            if problem is not None:
                return ProbeResult(number, after, False, "ping", name, problem, (loop.time() - t0) * 1000)
        endpoint, why = await self.exchange()
        ms = (loop.time() - t0) * 1000
        if why is not None:
            return ProbeResult(number, after, False, "exchange", endpoint, why, ms)
        self.pacing = True
        return ProbeResult(number, after, True, "passed", None, "every ping answered, the exchange completed", ms)

    async def _confirm(self, node: Endpoint, msg: CoapMessage, to: Address) -> tuple[Exchange | None, str | None]:
        """Send a CON and wait (up to the ACK bound) until it is acknowledged, reset or given up."""
        refused = len(node.failures)
        await node.send(msg, to, keep_mid=True)
        if len(node.failures) > refused:
            f = node.failures[-1]
            return None, f"the kernel refused to send it ({f.reason}, errno {f.errno})"
        ex = next(e for e in reversed(node.exchanges) if e.mid == msg.mid and e.to == to)
        await node.settled(ex.sent_at + self.profile.timers.ack_bound_ms / 1000)
        # The endpoint keeps every exchange of its test case and scans them all for each ACK or RST;
        # a sweep makes thousands: keep only those still waiting.
        node.exchanges[:] = [e for e in node.exchanges if e.open]
        return ex, None

    async def ping(self, endpoint: str) -> str | None:
        """RFC 7252 4.3: an Empty CON must be answered (RST, or ACK) within the ACK bound."""
        node = self.nodes[SENDERS[endpoint]]
        to = self.endpoints[endpoint]
        bound = self.profile.timers.ack_bound_ms
        ex, refused = await self._confirm(node, CoapMessage(MessageType.CON, 0, self.probe_mid(node.name)), to)
        if ex is None:
            return f"ping from {node.name} to {endpoint} {to[0]}:{to[1]}: {refused}"
        answered_at = ex.answered_at if ex.state in ("acked", "reset") else None
        if answered_at is not None and (answered_at - ex.sent_at) * 1000 <= bound:
            return None
        return (
            f"ping (Empty CON mid=0x{ex.mid:04x}) from {node.name} to {endpoint} {to[0]}:{to[1]}: no RST or ACK "
            f"within {bound} ms ({ex.transmissions} transmission(s), RFC 7252 4.2/4.3)"
        )

    async def exchange(self) -> tuple[str | None, str | None]:
        """One valid exchange of the role; (endpoint, why it failed) or (None, None)."""
        if self.role == "relay":
            return await self.relay_exchange()
        if self.role == "gateway":
            return await self.gateway_exchange()
        return await self.cue_exchange()

    async def _upper(self, what: str, op: Callable[[], Any]) -> str | None:
        try:
            await asyncio.wait_for(op(), UPPER_OP_S)
        except TimeoutError:
            return f"upper tester: {what} did not complete within {UPPER_OP_S:.0f} s"
        except (HarnessError, OSError) as exc:
            return f"upper tester: {what} failed: {exc}"
        return None

    async def relay_exchange(self) -> tuple[str | None, str | None]:
        """A NON 2.05 from the SCM-S (profile port) to sut.uu naming a linked client must arrive at
        that client from sut.pc5 (TS 24.538 6.2.2.1, as RELAY-DL-001)."""
        p = self.profile
        sut = self.sut
        assert sut is not None
        client = ClientInfo(PROBE_CLIENT, p.client_address(PROBE_CLIENT), self.addresses.address(PROBE_CLIENT))
        why = await self._upper(f"establish_link({client.address})", lambda: sut.establish_link(client))
        if why is not None:
            return None, why
        scms = self.nodes["scms"]
        payload = json.dumps(p.document_for(PROBE_CLIENT), separators=(",", ":")).encode("utf-8")
        options = sorted(
            [
                (p.recipient_option, client.address.encode("utf-8")),
                (OptionNumber.CONTENT_FORMAT, encode_uint(p.content_format)),
            ]
        )
        msg = CoapMessage(
            MessageType.NON, Code.CONTENT, self.probe_mid("scms"), self.probe_token(), tuple(options), payload
        )
        pc5 = self.endpoints["sut.pc5"]

        def relayed(d: Datagram) -> bool:
            if d.dst != client.endpoint or d.src != pc5:
                return False
            m = _parse(d.data)
            return (
                m is not None
                and m.code == Code.CONTENT
                and m.payload == payload
                and m.option_values(p.recipient_option) == [client.address.encode("utf-8")]
            )

        deadline = asyncio.get_running_loop().time() + p.timers.response_ms / 1000
        with self.sweep.capture.watch(relayed) as arrival:
            refused = len(scms.failures)
            await scms.send(msg, self.endpoints["sut.uu"], keep_mid=True)
            if len(scms.failures) > refused:
                f = scms.failures[-1]
                return (
                    "sut.uu",
                    f"scms could not send the probe's 2.05 to sut.uu: the kernel refused it "
                    f"({f.reason}, errno {f.errno})",
                )
            found = await _until(arrival, deadline)
        if found is None:
            return "sut.uu", (
                f"the probe's NON 2.05 (token {msg.token.hex()}) for linked client {client.address}, sent by scms "
                f"to sut.uu, did not arrive at {PROBE_CLIENT} from sut.pc5 within {p.timers.response_ms} ms"
            )
        return None, None

    async def gateway_exchange(self) -> tuple[str | None, str | None]:
        """A CON configuration GET from a client to sut.pc5 must be acknowledged (an empty ACK or a
        response) within the ACK bound (RFC 7252 4.2; TS 24.538 6.2.2.x caches it)."""
        p = self.profile
        node = self.nodes[PROBE_CLIENT]
        pc5 = self.endpoints["sut.pc5"]
        get = configuration_get(p, PROBE_CLIENT, MessageType.CON, self.probe_token())
        get = CoapMessage(get.mtype, get.code, self.probe_mid(PROBE_CLIENT), get.token, get.options)

        def answered(d: Datagram) -> bool:
            m = _parse(d.data) if d.src == pc5 and d.dst == node.address else None
            return m is not None and m.token == get.token and m.code >> 5 in (2, 4, 5)

        bound = p.timers.ack_bound_ms
        with self.sweep.capture.watch(answered) as response:
            ex, refused = await self._confirm(node, get, pc5)
            # a response acknowledges the request too (piggybacked, or separate: RFC 7252 5.2)
            responded = response.done()
        if ex is None:
            return "sut.pc5", f"{PROBE_CLIENT} could not send the probe's GET to sut.pc5: {refused}"
        if ex.state == "acked" and ex.answered_at is not None and (ex.answered_at - ex.sent_at) * 1000 <= bound:
            return None, None
        if responded:
            return None, None
        if ex.state == "reset":
            return "sut.pc5", (
                f"the probe's CON GET (mid=0x{ex.mid:04x}) from {PROBE_CLIENT} to sut.pc5 was reset, not acknowledged"
            )
        return "sut.pc5", (
            f"the probe's CON GET (mid=0x{ex.mid:04x}, token {get.token.hex()}) from {PROBE_CLIENT} to sut.pc5 "
            f"was not acknowledged within {bound} ms ({ex.transmissions} transmission(s), RFC 7252 4.2)"
        )

    async def cue_exchange(self) -> tuple[str | None, str | None]:
        """request_configuration() must make a GET arrive at the tester's relay node (6.2.2.2)."""
        p = self.profile
        relay = self.nodes["relay"]
        cue = self.endpoints["sut.cue"]
        sut = self.sut
        assert sut is not None

        def request(d: Datagram) -> bool:
            m = _parse(d.data) if d.src == cue and d.dst == relay.address else None
            return m is not None and m.code == Code.GET

        with self.sweep.capture.watch(request) as arrival:
            why = await self._upper("request_configuration()", sut.request_configuration)
            if why is not None:
                return None, why
            found = await _until(arrival, asyncio.get_running_loop().time() + p.timers.response_ms / 1000)
        if found is None:
            return "sut.cue", (
                f"after request_configuration() no GET arrived at the tester's relay from sut.cue within "
                f"{p.timers.response_ms} ms"
            )
        return None, None


def _parse(data: bytes) -> CoapMessage | None:
    try:
        return codec.parse(data)
    except codec.MalformedDatagram:
        return None


def _host_offset(node: str) -> int:
    k = nodes.kind(node)
    assert k is not None
    return k.host


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        return False


# -- the sweep ---------------------------------------------------------------------------------------


class _LogTally(logging.Handler):
    """Warnings and errors logged in this process during the sweep (an embedded SUT such as the
    reference runs here, so its stack's errors show up here): each distinct kind, counted, with
    the first message of that kind as an example."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            kind = f"{record.name}: {record.levelname}: {record.getMessage().splitlines()[0]}"
            example = ""
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                tb = exc.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                where = f" at {'/'.join(tb.tb_frame.f_code.co_filename.split('/')[-2:])}:{tb.tb_lineno}" if tb else ""
                kind += f": {type(exc).__name__}{where}"
                example = f"{type(exc).__name__}: {exc}"
            if kind in self.counts or len(self.counts) < LOG_LINES:
                self.counts[kind] = self.counts.get(kind, 0) + 1
                self.examples.setdefault(kind, example)


class Sweep:
    """One sweep of one SUT in one role."""

    def __init__(
        self,
        adapter: SutAdapter,
        profile: Profile,
        role: str,
        *,
        count: int,
        probe_every: int = DEFAULT_PROBE_EVERY,
        seed: int = 1,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        sut_label: str | None = None,
    ) -> None:
        self.adapter = adapter
        self.profile = profile
        self.role = role
        self.count = count
        self.probe_every = probe_every
        self.seed = seed
        self.time_limit_s = time_limit_s
        self.capture = Capture()
        self.sut_log: list[str] = []
        self.block: RunBlock | None = None
        self.result = SweepResult(
            sut=sut_label or adapter.name,
            role=role,
            profile=profile.name,
            seed=seed,
            count=count,
            probe_every=probe_every,
            time_limit_s=time_limit_s,
            capture=self.capture,
        )

    def check(self) -> None:
        """What makes the sweep impossible before anything is sent (SetupError)."""
        a = self.adapter
        if self.role not in a.roles:
            raise SetupError(
                f"SUT {self.result.sut} does not implement the {self.role} role (roles: {', '.join(sorted(a.roles))})"
            )
        need = {"relay": LINK_CONTROL, "constrained-ue": TRIGGER_REQUEST}.get(self.role)
        if need is not None and need not in a.capabilities:
            raise SetupError(
                f"the {self.role} probe needs capability {need}, which SUT {self.result.sut} does not offer"
            )

    def run(self) -> SweepResult:
        """Run the sweep to its end (blocking; its own event loop)."""
        self.check()
        tail = _LogTally()
        root = logging.getLogger()
        coap = logging.getLogger("coap")
        coap_level = coap.level
        coap.setLevel(logging.ERROR)  # aiocoap warns about each unparsable datagram it ignores
        root.addHandler(tail)
        began = time.monotonic()
        try:
            asyncio.run(self._run())
        finally:
            root.removeHandler(tail)
            coap.setLevel(coap_level)
            if self.block is not None:
                self.block.release()
                self.block = None
        self.result.wall_s = time.monotonic() - began
        self.result.process_log = [
            {"count": n, "line": kind, "example": tail.examples[kind]} for kind, n in tail.counts.items()
        ]
        self.result.sut_log = self.sut_log[-LOG_LINES:]
        return self.result

    async def _run(self) -> None:
        p = self.profile
        try:
            self.block = claim_block(p.port)
        except (HarnessError, OSError) as exc:
            raise SetupError(f"no loopback address block for the sweep: {exc}") from None
        run_space = self.block.run_space()
        env = SutEnvironment(
            p,
            p.timers.coap,
            {n: (run_space.host(_host_offset(n)), p.port) for n in nodes.ALL_SUT_ENDPOINTS},
        )
        try:
            await asyncio.wait_for(self.adapter.start(env), START_S)
        except (HarnessError, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.adapter.stop(), STOP_S)
            raise SetupError(f"SUT {self.result.sut} did not start: {exc or type(exc).__name__}") from None
        try:
            await self._sweep()
        finally:
            try:
                await asyncio.wait_for(self.adapter.stop(), STOP_S)
            except Exception as exc:
                log.warning("stopping the SUT failed: %s", exc)

    def _new_space(self) -> CaseSpace:
        assert self.block is not None
        names = {*nodes.ROLE_NODES[self.role], *SENDERS.values(), PROBE_CLIENT}
        return self.block.open_space(nodes.hosts_needed(names))

    async def _open_target(self, number: int) -> tuple[Target | None, ProbeResult | None]:
        """A target with the SUT open, or the failed 'open' probe saying why not."""
        assert self.block is not None
        target = Target(self, self._new_space())
        try:
            await target.open()
        except (HarnessError, OSError) as exc:
            await target.close()
            self.block.close_space(target.space)
            if isinstance(exc, SetupError):
                raise
            return None, ProbeResult(
                number, None, False, "open", None, f"the SUT did not open for the {self.role} role: {exc}"
            )
        return target, None

    async def _close_target(self, target: Target, main: bool = False) -> None:
        self.result.kernel_drops += target.kernel_drops
        if main:
            self.result.syncs, self.result.syncs_unanswered = target.syncs, target.syncs_unanswered
        await target.close()
        assert self.block is not None
        self.block.close_space(target.space)

    async def _sweep(self) -> None:
        r = self.result
        loop = asyncio.get_running_loop()
        target, failed = await self._open_target(0)
        if target is None:
            assert failed is not None
            r.probes.append(failed)
            r.failed_probe, r.stopped_by = failed, "probe-failed"
            return
        r.endpoints = {n: f"{a[0]}:{a[1]}" for n, a in target.endpoints.items()}
        r.inputs_planned = self.count * len(nodes.SUT_ENDPOINTS[self.role])
        deadline = time.monotonic() + self.time_limit_s
        t0 = loop.time()
        window: list[Input] = []
        try:
            baseline = await target.probe(0, None)
            r.probes.append(baseline)
            if not baseline.passed:
                r.failed_probe, r.stopped_by = baseline, "probe-failed"
                r.localization = Localization(False, "the SUT failed the probe before any input was sent")
                return
            failed_now = False
            for inp in inputs(self.profile, self.role, self.seed, self.count):
                if time.monotonic() >= deadline:
                    r.stopped_by = "time-limit"
                    break
                r.count_input(inp, await target.send(inp))
                window.append(inp)
                await target.pace(inp)
                if len(window) >= self.probe_every:
                    probe = await target.probe(len(r.probes), inp.index)
                    r.probes.append(probe)
                    if not probe.passed:
                        failed_now = True
                        break
                    window = []
            if not failed_now and window:  # once at the end, after the inputs since the last probe
                probe = await target.probe(len(r.probes), window[-1].index)
                r.probes.append(probe)
                failed_now = not probe.passed
            r.sending_s = loop.time() - t0
            if failed_now:
                r.failed_probe, r.stopped_by = r.probes[-1], "probe-failed"
                r.window = (window[0].index, window[-1].index)
        finally:
            await self._close_target(target, main=True)
        if r.failed_probe is not None and window:
            r.localization = await self._localize(window, r.failed_probe)

    async def _localize(self, window: list[Input], failed: ProbeResult) -> Localization:
        """Replay the window on a fresh SUT, one input at a time with a probe after each."""
        if len(window) == 1:
            return Localization(
                True, "the probe right after this input failed (a window of one input)", window[0], failed
            )
        try:
            return await asyncio.wait_for(self._replay(window), LOCALIZE_S)
        except SetupError as exc:
            return Localization(False, f"could not replay the window: {exc}")
        except TimeoutError:
            return Localization(
                False, f"replaying the window on a fresh SUT did not finish within {LOCALIZE_S:.0f} s", replayed=0
            )

    async def _replay(self, window: list[Input]) -> Localization:
        first, last = window[0].index, window[-1].index
        target, failed = await self._open_target(0)
        if target is None:  # an external SUT that died is started again by the next open (process.py)
            target, failed = await self._open_target(0)
        if target is None:
            assert failed is not None
            return Localization(False, f"could not replay inputs #{first}..#{last}: {failed.reason}")
        loc = Localization(False, "")
        try:
            baseline = await target.probe(0, None)
            loc.replay_probes += 1
            if not baseline.passed:
                loc.how = (
                    f"could not replay inputs #{first}..#{last}: the SUT, opened again, failed the probe before any "
                    f"input ({baseline.stage}: {baseline.reason})"
                )
                return loc
            for inp in window:
                await target.send(inp)
                loc.replayed += 1
                probe = await target.probe(loc.replay_probes, inp.index)
                loc.replay_probes += 1
                if not probe.passed:
                    loc.localized, loc.culprit, loc.probe = True, inp, probe
                    loc.how = (
                        f"replayed inputs #{first}..#{last} one at a time on the SUT opened again, with a probe after "
                        f"each: the probe right after #{inp.index} failed"
                    )
                    return loc
            loc.how = (
                f"replaying inputs #{first}..#{last} one at a time on the SUT opened again did not stop it: the SUT "
                f"stopped answering after one of them (or their effect builds up, or comes late)"
            )
            return loc
        finally:
            await self._close_target(target)
