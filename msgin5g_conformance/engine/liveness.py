"""The ``probe`` step: after a stimulus, the SUT must still be alive (one valid exchange of its role).

The probe is the robustness sweep's (:meth:`msgin5g_conformance.sweep.runner.Target.probe`), not
a copy of it: a CoAP ping (Empty CON) to every endpoint of the role, answered with RST or ACK
within the profile's ``ack_bound_ms`` (RFC 7252 4.2, 4.3), then one valid exchange of the role
(relay: a NON 2.05 for a linked client relayed downlink; gateway: a CON configuration GET
acknowledged; constrained UE: ``request_configuration()`` makes a GET arrive at the tester's
relay). :class:`CaseProbe` runs those methods on the test case's own tester nodes, SUT instance
and record, so a case and a sweep judge liveness alike.

A probe's result decides the requirements of its case (or its own ``requirement``): a SUT that
died on a malformed datagram fails the case that sent it. Its traffic is its own: the probe's
CONs are judged by the probe (not again by the message-layer check), and what the SUT sends in
answer to the probe's exchange, even after the step (a gateway's bulk GET, the answer to the
probe's client), is taken by the probe instead of being judged as unexpected.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from msgin5g_conformance.engine.matching import Arrival
from msgin5g_conformance.engine.verdict import Finding, StepResult, Verdict
from msgin5g_conformance.spec.model import ProbeStep
from msgin5g_conformance.sweep.generators import PROBE_CLIENT
from msgin5g_conformance.sweep.runner import Target
from msgin5g_conformance.wire.capture.record import Datagram, Recorder
from msgin5g_conformance.wire.numbers import is_request
from msgin5g_conformance.world import nodes

if TYPE_CHECKING:
    from msgin5g_conformance.engine.case import CaseRun

PROBE_TOKEN_PREFIX = b"\x5e"  # Target.probe_token: b"\x5e" + a 4-byte counter


class _RecordWatch:
    """``Capture.watch`` of the sweep, on a test case's record: a future of the first datagram
    from now on that a predicate accepts."""

    def __init__(self, recorder: Recorder, found: set[int]) -> None:
        self.recorder = recorder
        self.found = found  # capture numbers of the datagrams the watches accepted

    @contextlib.contextmanager
    def watch(self, wanted: Callable[[Datagram], bool]) -> Iterator[asyncio.Future[Datagram]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Datagram] = loop.create_future()
        start = len(self.recorder)

        async def scan() -> None:
            pos = start
            while not fut.done():
                for d in self.recorder.since(pos):
                    if wanted(d):
                        if not fut.done():
                            fut.set_result(d)
                            self.found.add(d.seq)
                        return
                pos = len(self.recorder)
                # bounded: woken by every new datagram, and at least every 50 ms
                await self.recorder.wait_for_more(pos, loop.time() + 0.05)

        task = loop.create_task(scan())
        try:
            yield fut
        finally:
            task.cancel()
            if not fut.done():
                fut.cancel()


class _SweepView:
    """What :class:`Target` reads of its sweep: the capture to watch."""

    def __init__(self, capture: _RecordWatch) -> None:
        self.capture = capture


class CaseProbe(Target):
    """The sweep's target, made of one test case's nodes, SUT instance and record."""

    def __init__(self, run: CaseRun) -> None:  # no Target.__init__: the case already has it all
        self.run = run
        self.sweep = _SweepView(_RecordWatch(run.recorder, run.probe_seqs))  # type: ignore[assignment]
        self.profile = run.profile
        self.role = run.case.role
        self.space = run.space
        self.names = sorted(run.nodes)
        self.addresses = run.addresses
        self.nodes = run.nodes
        self.sut = run.sut
        self.endpoints = {n: run.sut_endpoint(n) for n in nodes.SUT_ENDPOINTS[self.role]}
        self.scm = run.scm
        self.used_mids = collections.defaultdict(set)
        self._probe_mid = collections.defaultdict(int)
        self._tokens = len(run.probe_tokens)
        self._unsynced = {}
        self.syncs = 0
        self.syncs_unanswered = 0
        self.pacing = True

    async def _upper(self, what: str, op: Callable[[], Any]) -> str | None:
        why = await super()._upper(what, op)
        if why is None and what.startswith("establish_link("):  # the probe's client is linked now
            info = self.run.client_lookup(what[len("establish_link(") : -1])
            if info is not None:
                self.run.link_changed(info.node, "establish_link", "probe")
        return why

    def probe_mid(self, node: str) -> int:
        """A Message ID this node has not used in the case (RFC 7252 4.5: the SUT must not take a
        probe for a duplicate of a stimulus); the probe judges that CON's acknowledgement itself."""
        ep = self.nodes[node]
        used = {
            (d.data[2] << 8) | d.data[3]
            for d in self.run.recorder.datagrams
            if d.src == ep.address and len(d.data) >= 4
        }
        mid = ep.new_mid()
        for _ in range(0x10000):
            if mid not in used:
                break
            mid = ep.new_mid()
        self.run.judged_cons.add((ep.address, mid))
        return mid

    def probe_token(self) -> bytes:
        token = super().probe_token()
        self.run.probe_tokens.add(token)
        return token


async def probe(run: CaseRun, step: ProbeStep) -> StepResult:
    """Run the role's liveness probe now; pass when every ping was answered and the exchange
    completed."""
    missing = [n for n in step.nodes if n not in run.nodes]
    if missing:
        return StepResult(
            step.index, "probe", step.line, Verdict.ERROR, f"the probe needs tester node(s) {', '.join(missing)}"
        )
    run.probes += 1
    target = CaseProbe(run)
    result = await target.probe(run.probes, None)
    run.probe_ran = True
    requirements = step.requirements or run.case.requirements
    if result.passed:
        return StepResult(
            step.index,
            "probe",
            step.line,
            Verdict.PASS,
            f"liveness probe passed: {result.reason} ({result.duration_ms:.0f} ms)",
            requirements=requirements,
        )
    where = f" at {result.endpoint}" if result.endpoint else ""
    return StepResult(
        step.index,
        "probe",
        step.line,
        Verdict.FAIL,
        f"liveness probe failed ({result.stage}{where}): {result.reason}",
        findings=[Finding("liveness", "every ping answered and one valid exchange of the role", result.reason, False)],
        node=None,
        peer=result.endpoint,
        requirements=requirements,
    )


def claims(run: CaseRun, a: Arrival) -> bool:
    """Whether an arrival answers a probe's exchange (then the probe accounts for it)."""
    if not run.probe_ran or a.message is None:
        return False
    m = a.message
    if a.seq in run.probe_seqs:
        return True  # what the probe's exchange waited for (a relayed 2.05, whatever its token)
    if m.token and m.token in run.probe_tokens:
        # the exchange's other traffic (a gateway's answer to the probe's GET, a relay's extra
        # copies): whatever the role's own suite says of it, it is no CoAP message-layer matter
        return True
    label = run.addresses.label_of(a.at)
    if not is_request(m.code) or m.code == 0:
        return False
    if label == "relay" and run.case.role == "constrained-ue":
        return True  # the request the probe's request_configuration() made
    if label == "scms" and run.case.role == "gateway":
        client = run.profile.client_address(PROBE_CLIENT)
        return any(client in q for q in _queries(a))  # the bulk GET carrying the probe's request
    return False


def _queries(a: Arrival) -> list[str]:
    assert a.message is not None
    try:
        return a.message.uri_query()
    except UnicodeDecodeError:
        return []
