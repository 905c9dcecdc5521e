"""One test case run: its address range, tester nodes, SUT instance, record, and its verdict.

The life of a case::

    open      tester nodes on the case's own address range; the SUT opened for the case
              (fresh state, the case's role); listeners on every other host of the range
    steps     preconditions, then the steps in order (a failed check does not stop the case;
              an error does)
    finish    wait until every tester CON is acknowledged (or its bound passed), keep every
              listener up for the late window, then judge what the steps did not account for:
              message-layer bounds, absence checks over their whole interval, and every other
              datagram the SUT sent anywhere in the range; close the SUT instance, write the pcap

Only :meth:`finish` makes the verdict final. A session may open the next case while this one
is in its late window (its addresses are its own, so nothing of one case is judged in another).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgin5g_conformance import roles
from msgin5g_conformance.engine import liveness, steps, sutlog
from msgin5g_conformance.engine.matching import (
    REQ_ACK,
    REQ_MID,
    REQ_RETRANSMIT,
    Arrival,
    Inbox,
    Kind,
    Signature,
    identify,
    message_layer_violations,
    well_formed,
)
from msgin5g_conformance.engine.verdict import CaseResult, Finding, StepResult, Verdict, merge
from msgin5g_conformance.errors import HarnessError, NotApplicable
from msgin5g_conformance.roles.scms import ScmServer
from msgin5g_conformance.spec import templates
from msgin5g_conformance.spec.model import (
    ExpectNothingStep,
    ExpectStep,
    ProbeStep,
    SendStep,
    Step,
    TestCase,
    UpperStep,
)
from msgin5g_conformance.spec.templates import Bindings
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.pcap import write_pcap
from msgin5g_conformance.wire.capture.record import Address, Recorder
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.endpoint import Endpoint
from msgin5g_conformance.wire.numbers import MessageType, code_to_str, is_request
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.topology import CaseAddresses, CaseSpace
from sut_adapters.base import CaseWorld, ClientInfo, SutCase, SutFault, sut_died

if TYPE_CHECKING:
    from msgin5g_conformance.engine.session import Session

log = logging.getLogger(__name__)

OPEN_S = 10.0  # bound on opening the SUT for a case
# The exchange records of a result (results JSON, Allure, sequence charts) stay small: above
# HEAD + TAIL datagrams, the first HEAD, the last TAIL and up to NAMED that checks name are kept.
EXCHANGE_HEAD = 150
EXCHANGE_TAIL = 50
EXCHANGE_NAMED = 100
CLOSE_S = 5.0


class CaseRun:
    """Everything of one test case while it runs."""

    def __init__(self, session: Session, case: TestCase, space: CaseSpace) -> None:
        self.session = session
        self.case = case
        self.space = space
        self.profile = session.profile
        self.began = time.monotonic()
        self.began_wall = time.time()
        # client -> its one-to-one link intervals (wall-clock epoch seconds; None: still up), for roles.yaml
        self.link_spans: dict[str, list[tuple[float, float | None]]] = {}
        self.tester_names = roles.tester_nodes(case.role, case.nodes())
        self.addresses = self._addresses(())
        self.recorder = Recorder(limit=session.max_datagrams)
        self.recorder.bind_loop(asyncio.get_running_loop())
        # RFC 7252 4.3 lets any recipient reject a NON with a Reset: in every case, not only coap ones
        self.inbox = Inbox(self.is_tester, reset_nons=True)
        self.bindings = Bindings(self.profile, Path(case.file).parent, configurations=dict(case.configurations))
        self.results: list[StepResult] = []
        self._results_by_step: dict[str, list[StepResult]] = {}  # top-level step -> its results
        self._results_indexed = 0  # how many of self.results the index above holds
        self.absences: list[steps.Absence] = []
        self.nodes: dict[str, Endpoint] = {}
        self.sinks: list[Endpoint] = []
        self.sut: SutCase | None = None
        self.scm: ScmServer | None = None
        self.started: dict[int, float] = {}  # top-level step -> loop time it began
        # A foreach's expectations (one per node) whose wait already ran out once: the group's
        # deadline and the step that reached it. The others are judged on what has arrived by then.
        self.lapsed: dict[str, tuple[float, str]] = {}
        self.stopped_at: StepResult | None = None  # the step after which the case stopped
        self.failed_captures: dict[str, str] = {}  # capture name -> the step that failed to capture it
        self.not_judged = False  # a step could not run for want of a capture: leftovers prove nothing
        self._tester_addresses: set[Address] = set()
        self._stimulus: tuple[int, float, CoapMessage | None] | None = None
        self.last_sent: CoapMessage | None = None
        self.late_end: float | None = None  # wall time the late window ended
        self.sut_log = ""
        self.sut_log_entries: list[sutlog.Entry] = []  # its lines with the times they were read
        self.sent: dict[str, int] = {}  # send step index -> capture number of its datagram
        self.send_times: list[float] = []  # loop time each send step's datagram left
        # send step index -> (from, to, bytes) of a datagram sent but not numbered when sent (sniff
        # mode: the capture numbers it when the sniffer delivers it)
        self.sent_unnumbered: dict[str, tuple[Address, Address, bytes]] = {}
        # tester CONs (source, Message ID) whose acknowledgement a step judges (an expect with
        # ``answers``, a probe), not the message-layer check
        self.judged_cons: set[tuple[Address, int]] = set()
        self.probes = 0  # probe steps run
        self.probe_ran = False
        self.probe_tokens: set[bytes] = set()
        self.probe_seqs: set[int] = set()  # datagrams the probes' exchanges waited for

    # -- addresses -------------------------------------------------------------------------------

    def _addresses(self, sut: tuple[tuple[str, Address], ...]) -> CaseAddresses:
        p = self.profile
        return CaseAddresses(self.space, p.port, p.alt_port, tuple(self.tester_names), sut)

    def is_tester(self, address: Address) -> bool:
        return address in self._tester_addresses

    def sut_endpoint(self, name: str) -> Address:
        endpoints = self.addresses.sut_endpoints()
        if name not in endpoints:
            raise HarnessError(f"the SUT has no endpoint {name} in this case")
        return endpoints[name]

    def client_lookup(self, address: str) -> ClientInfo | None:
        """Which tester client of this case a recipient address names (for SUTs that need a
        directory, and faulty variants that route where they should not)."""
        node = nodes.client_node(self.profile.client_address_template, address)
        return ClientInfo(node, address, self.addresses.address(node)) if node is not None else None

    def _node_for_ue(self, ue_id: str) -> str | None:
        info = self.client_lookup(ue_id)
        return info.node if info is not None else None

    def link_changed(self, client: str, op: str, index: str) -> None:
        """An establish_link or release_link step completed (a precondition's link: from the case's start)."""
        now = self.began_wall if index == "pre" else time.time()
        spans = self.link_spans.setdefault(client, [])
        if op == "establish_link" and (not spans or spans[-1][1] is not None):
            spans.append((now, None))
        elif op == "release_link" and spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], now)

    # -- record ----------------------------------------------------------------------------------

    def sync(self) -> None:
        """Classify what the record holds and the inbox has not seen yet."""
        self.inbox.feed(self.recorder.since(self.inbox_fed))

    @property
    def inbox_fed(self) -> int:
        return self.inbox._fed

    def stimulus(self, seq: int | None, message: CoapMessage | None) -> None:
        """A send step put a datagram on the wire: an absence check that follows starts there."""
        self.last_sent = message
        if seq is not None and seq < len(self.recorder):
            self._stimulus = (seq + 1, self.recorder.datagrams_at(seq).time, message)
        else:
            self._stimulus = (len(self.recorder), time.time(), message)

    def stimulus_mark(self) -> tuple[int, float, CoapMessage | None]:
        """Where an absence check starts: after the last stimulus (capture number, time, message)."""
        if self._stimulus is None:
            return len(self.recorder), time.time(), None
        return self._stimulus

    # -- open --------------------------------------------------------------------------------------

    async def open(self) -> None:
        s = self.session
        record = s.router.record if s.capture_mode == "tap" else None
        timers = self.profile.timers.coap
        if "scms" in self.tester_names and self.case.scms_mode != "scripted":
            self.scm = ScmServer(self.profile, self._node_for_ue, self.case.configurations)
        for name in self.tester_names:
            handler = self.scm.respond if (self.scm is not None and name == "scms") else None
            ep = Endpoint(
                name,
                self.addresses.address(name),
                timers,
                record=record,
                handler=handler,
                auto_ack=name not in self.case.hold_ack,
                separate=name == "scms" and self.case.scms_mode == "separate",
            )
            self._tester_addresses.add(ep.address)
            try:
                ep.open()
            except OSError as exc:
                raise HarnessError(f"tester node {name} cannot bind {ep.address[0]}:{ep.address[1]}: {exc}") from exc
            self.nodes[name] = ep
        world = CaseWorld(
            role=self.case.role,
            endpoints={n: self.addresses.address(n) for n in nodes.SUT_ENDPOINTS[self.case.role]},
            peers={n: self.addresses.address(n) for n in nodes.ALL_PEERS},
            client_lookup=self.client_lookup,
        )
        try:
            self.sut = await asyncio.wait_for(s.adapter.open_case(world), OPEN_S)
        except TimeoutError:
            raise HarnessError(f"the SUT did not open for this case within {OPEN_S:.0f} s") from None
        endpoints = dict(self.sut.endpoints())
        missing = [n for n in nodes.SUT_ENDPOINTS[self.case.role] if n not in endpoints]
        if missing:
            raise HarnessError(f"the SUT gave no address for {', '.join(missing)} in role {self.case.role}")
        self.addresses = self._addresses(tuple(sorted(endpoints.items())))
        s.router.update(self)
        for host in self.addresses.spare_hosts():
            sink = Endpoint(nodes.ELSEWHERE, (host, self.profile.port), timers, record=record, listen_only=True)
            try:
                sink.open()
            except OSError:
                continue  # taken by something outside the harness: that address is not watched
            self._tester_addresses.add(sink.address)
            self.sinks.append(sink)

    # -- steps -------------------------------------------------------------------------------------

    async def run_steps(self) -> None:
        loop = asyncio.get_running_loop()
        for client in self.case.links:
            r = await steps.run_step(self, UpperStep("pre", None, "establish_link", client, None))
            self.results.append(r)
            if r.verdict is not Verdict.PASS:
                self.stopped_at = r
                return
        for step in self.case.steps:
            self.started.setdefault(int(step.index.split("[")[0]), loop.time())
            r = await steps.run_step(self, step)
            self.results.append(r)
            # One check, one requirement: a failed check does not hide the independent ones after
            # it (a step that needs what a failed one should have captured is not judged); only a
            # harness or set-up error ends the case.
            if r.verdict is Verdict.ERROR:
                self.stopped_at = r
                return

    def unmet_needs(self, step: Step) -> int | None:
        """The earlier top-level step this one needs (``needs``) that did not pass, if any."""
        if not step.needs:
            return None
        # Indexed as results come (a foreach of 1,000 expectations each needing one step must not
        # rescan every earlier result); the verdicts themselves are read now.
        for r in self.results[self._results_indexed :]:
            self._results_by_step.setdefault(r.index.split("[")[0].split(".")[0], []).append(r)
        self._results_indexed = len(self.results)
        for n in step.needs:
            done = self._results_by_step.get(str(n))
            if not done or any(r.verdict is not Verdict.PASS for r in done):
                return n
        return None

    def missing_capture(self, step: Step) -> tuple[str, str] | None:
        """The capture a step needs that an earlier, failed step did not make (name, that step)."""
        for _, var in templates.variables(_template_of(step)):
            if var.name in self.failed_captures and var.name not in self.bindings.captures:
                return var.name, self.failed_captures[var.name]
        return None

    # -- finish ------------------------------------------------------------------------------------

    async def finish(self) -> CaseResult:
        """Settle, wait out the late window, judge, close: the case's final result."""
        await self.settle()
        await self.late_window()
        await self.session.flush_capture()
        self.judge()
        died = await sut_died(self.sut) if self.sut is not None else None
        if died is not None:  # it died in this case: this case is the one that says so
            self.results.append(StepResult("sut", "sut", None, Verdict.ERROR, f"the SUT died during the case: {died}"))
        source: Any = self.sut if self.sut is not None else self.session.adapter
        self.sut_log = source.log_text()
        timed = getattr(source, "log_entries", None)  # an adapter that knows when each line came
        self.sut_log_entries = timed() if timed is not None else [(None, x) for x in self.sut_log.splitlines()]
        await self.close()
        return self.result(self.write_pcap())

    async def settle(self) -> None:
        """A case does not end while one of its CONs waits for its ACK (up to the ACK bound)."""
        bound = self.profile.timers.ack_bound_ms / 1000
        for ep in self.nodes.values():
            opened = ep.open_exchanges()
            if opened:
                await ep.settled(max(ex.sent_at for ex in opened) + bound)

    async def late_window(self) -> None:
        """Every listener stays up for the late window after the last step.

        When the loop was held up (a loaded machine), a send due before the window's end and the
        window's own timer come due in one turn of the loop: the send reaches the kernel first, but
        the tester's read callbacks would run only after this task resumed. :func:`steps.drain`
        reads everything that was sent by the end of the window before it is judged (an embedded
        SUT shares this loop; an external one is judged by this clock, as the window's claim says)."""
        await asyncio.sleep(self.session.late_window_s())
        self.late_end = time.time()
        await steps.drain()

    def judge(self) -> None:
        """What the steps did not account for, now that nothing more can arrive."""
        self.sync()
        p = self.profile
        extra: list[StepResult] = []
        broken: set[str] = set()
        for a in self.inbox.arrivals:  # what answers a probe's exchange is the probe's
            if a.taken_by is None and liveness.claims(self, a):
                self.inbox.take(a, "probe")
        for v in message_layer_violations(
            self.inbox,
            p.timers.ack_bound_ms / 1000,
            p.timers.sut_max_retransmit,
            self.addresses.label,
            judged=self.judged_cons,
        ):
            broken.add(v.requirement)
            extra.append(
                StepResult(
                    "message-layer",
                    "message-layer",
                    None,
                    Verdict.FAIL,
                    v.reason,
                    datagram=v.datagram,
                    findings=[v.finding],
                    requirements=(v.requirement,),
                )
            )
        malformed = [a for a in self.inbox.arrivals if a.kind is Kind.MALFORMED]
        if malformed:  # RFC 7252 3, whichever step took the datagram
            broken.add(roles.MALFORMED_REQUIREMENT)
            a = malformed[0]
            extra.append(
                StepResult(
                    "message-layer",
                    "message-layer",
                    None,
                    Verdict.FAIL,
                    f"{len(malformed)} malformed datagram(s) from the SUT; first: #{a.seq} at "
                    f"{self.addresses.label(a.at)} from {self.addresses.label(a.datagram.src)}: {a.error}",
                    datagram=a.seq,
                    findings=[Finding("datagram", "a well-formed CoAP message (RFC 7252 3)", a.error or "", False)],
                    requirements=(roles.MALFORMED_REQUIREMENT,),
                )
            )
        for requirement, what in self._message_layer_judged():
            if requirement not in broken:  # a check that held is a check too: the matrix counts it
                extra.append(
                    StepResult("message-layer", "message-layer", None, Verdict.PASS, what, requirements=(requirement,))
                )
        violations: dict[int, list[Arrival]] = {}
        unexpected: dict[str, list[Arrival]] = {}
        for a in self.inbox.leftovers():
            if a.kind is Kind.MALFORMED and self._absence_of(a) is None:
                continue  # judged above, as a malformed datagram
            i = self._absence_of(a)
            if i is not None:
                violations.setdefault(i, []).append(a)
            else:
                code = a.message.code if a.message is not None and a.kind is not Kind.STRAY else None
                if self.case.generic:
                    # a role-independent case: whatever its stimuli made the SUT send is judged by
                    # the case's own requirement, not by a clause of the role
                    key = ",".join(self.case.requirements)
                else:
                    key = roles.unaccounted_requirement(self.case.role, code)
                unexpected.setdefault(key, []).append(a)
        self._judge_absences(violations)
        if self.stopped_at is None and not self.not_judged:
            for requirement, found in sorted(unexpected.items()):
                a = found[0]
                end = StepResult(
                    "end",
                    "no-unexpected",
                    None,
                    Verdict.FAIL,
                    f"{len(found)} unexpected message(s) from the SUT; first: datagram #{a.seq} at "
                    f"{self.addresses.label(a.at)} from {self.addresses.label(a.datagram.src)}: {a.summary()}",
                    datagram=a.seq,
                    findings=[Finding("unexpected message", "none", a.summary(), False)],
                    requirements=tuple(requirement.split(",")),
                )
                if self.case.generic and self.case.strength == "should":
                    steps.soften(end, "the case's requirement is a SHOULD")
                extra.append(end)
            if not unexpected:
                extra.append(
                    StepResult(
                        "end",
                        "no-unexpected",
                        None,
                        Verdict.PASS,
                        f"every datagram the SUT sent in the case's range until the end of the late window was "
                        f"accounted for ({len(self.inbox.arrivals)} datagram(s))",
                        requirements=self.case.requirements,
                    )
                )
        extra.extend(self._capture_problems())
        self.results.extend(extra)

    def _message_layer_judged(self) -> list[tuple[str, str]]:
        """The message-layer requirements this case's traffic judged, with what held."""
        out: list[tuple[str, str]] = []
        cons = sum(  # the CONs this check judged (not those a step or a probe judged itself)
            1
            for (src, _, mid), con in self.inbox.tester_cons.items()
            if (src, mid) not in self.judged_cons and well_formed(con.datagram.data)
        )
        if cons:
            out.append((REQ_ACK, f"the SUT acknowledged or reset each of the tester's {cons} CON(s) in time"))
        sut_cons = sum(1 for m in self.inbox.sut_messages.values() if m.first.data[0] >> 4 & 3 == 0)
        if sut_cons:
            out.append((REQ_RETRANSMIT, f"none of the SUT's {sut_cons} CON(s) was sent more often than allowed"))
        if self.inbox.sut_messages:
            out.append((REQ_MID, "the SUT used a fresh Message ID for each message"))
        if self.inbox.arrivals:
            out.append((roles.MALFORMED_REQUIREMENT, "every datagram of the SUT was a well-formed CoAP message"))
        return out

    def _absence_of(self, a: Arrival) -> int | None:
        """The absence check a leftover breaks: one whose interval it falls in, arriving at a
        watched node or carrying the discarded stimulus's payload (wherever it went)."""
        option = self.profile.recipient_option
        for i, ab in enumerate(self.absences):
            if a.seq < ab.start_seq:
                continue
            who = identify(a.message, ab.stimulus, ab.control, option)
            if who == "stimulus" and not self._delivered(ab.stimulus, ab.control):
                return i  # the discarded message itself, wherever it went
            if a.at in ab.watched and who != "control":
                return i  # (an extra copy of the control is not the discarded message)
        return None

    def _delivered(self, stimulus: Signature, control: Signature) -> bool:
        """Whether a step took a copy of the stimulus (then it was to be relayed, and another copy
        of it is an extra message, not the discarded one). Told apart from the control as the
        absence check tells them apart, and only among messages of the stimulus's kind: a taken GET
        is no copy of a response that carries its token."""
        option = self.profile.recipient_option
        request = bool(stimulus.queries)  # a request's signature always has its query (b"" for none)
        return any(
            x.taken_by is not None
            and x.message is not None
            and is_request(x.message.code) == request
            and identify(x.message, stimulus, control, option) == "stimulus"
            for x in self.inbox.arrivals
        )

    def _judge_absences(self, violations: dict[int, list[Arrival]]) -> None:
        end = self.late_end or time.time()
        for i, ab in enumerate(self.absences):
            covered = (end - ab.start_time) * 1000
            ab.result.covered_ms = round(covered, 1)
            found = violations.get(i)
            names = ", ".join(ab.names)
            if found:
                a = found[0]
                more = f" ({len(found)} in all)" if len(found) > 1 else ""
                ab.result.verdict = Verdict.FAIL
                ab.result.reason = (
                    f"expected nothing at {names} (nor the discarded message anywhere) from the stimulus until the "
                    f"end of the late window ({covered:.0f} ms), but datagram #{a.seq} arrived at "
                    f"{self.addresses.label(a.at)} from {self.addresses.label(a.datagram.src)} "
                    f"{self._after(a, ab.start_time)}: {a.summary()}{more}"
                )
                ab.result.datagram = a.seq
                ab.result.findings = [Finding("absence", f"nothing at {names}", a.summary(), False)]
                if self.case.generic and self.case.strength == "should":
                    steps.soften(ab.result, "the case's requirement is a SHOULD")
                for x in found:
                    self.inbox.take(x, ab.result.index)
            elif ab.result.verdict is Verdict.PASS:
                ab.result.reason = (
                    f"nothing arrived at {names} for {covered:.0f} ms, from the stimulus until the end of the late "
                    f"window; the positive control arrived"
                )

    def _after(self, a: Arrival, start: float) -> str:
        return f"{(a.datagram.time - start) * 1000:.0f} ms after the stimulus"

    def _capture_problems(self) -> list[StepResult]:
        out: list[StepResult] = []
        if self.recorder.overflowed:
            out.append(
                StepResult(
                    "capture",
                    "capture",
                    None,
                    Verdict.FAIL,
                    f"the SUT sent more than {self.session.max_datagrams} datagrams (flood); the capture stops there",
                    requirements=self.case.requirements,
                )
            )
        drops = sum(ep.drops for ep in (*self.nodes.values(), *self.sinks))
        if drops:
            out.append(
                StepResult(
                    "capture",
                    "capture",
                    None,
                    Verdict.INCONCLUSIVE,
                    f"the capture is incomplete: the kernel dropped {drops} datagram(s) for full receive buffers",
                )
            )
        for ep in self.nodes.values():
            for f in ep.failures:
                out.append(
                    StepResult(
                        "transport",
                        "transport",
                        None,
                        Verdict.ERROR,
                        f"harness/set-up error: {f.node} could not send {f.size} bytes to {f.to[0]}:{f.to[1]}: "
                        f"{f.reason} (errno {f.errno})",
                    )
                )
        if self.scm is not None and self.scm.errors:
            out.append(StepResult("scms", "scms", None, Verdict.ERROR, f"harness/set-up error: {self.scm.errors[0]}"))
        return out

    async def close(self) -> None:
        """Release everything the case holds (after its late window)."""
        if self.sut is not None:
            sut, self.sut = self.sut, None
            try:
                await asyncio.wait_for(sut.close(), CLOSE_S)
            except Exception as exc:  # closing must not hide the verdict
                log.warning("closing the SUT for %s failed: %s", self.case.id, exc)
        for ep in (*self.nodes.values(), *self.sinks):
            ep.close()

    def write_pcap(self) -> str | None:
        pcap_dir = self.session.pcap_dir
        if pcap_dir is None:
            return None
        path = str(pcap_dir / f"{self.case.id}.pcap")
        with contextlib.suppress(FileExistsError):
            pcap_dir.mkdir(parents=True, exist_ok=True)
        write_pcap(path, self.recorder.datagrams)
        if self.session.role_map is not None:
            try:
                self.session.role_map.record(self, Path(path))
            except OSError as exc:  # the verdict stands; the role map misses this case
                log.warning("%s: cannot record %s in the role map: %s", pcap_dir, self.case.id, exc)
        return path

    # -- result ------------------------------------------------------------------------------------

    def result(self, pcap: str | None) -> CaseResult:
        verdict, decisive = merge(self.results)
        reason = decisive.reason if decisive else f"all {len(self.case.steps)} steps passed"
        used = set(self.bindings.used) | {d for d in self.case.depends_on if d in self.profile.provisional}
        r = self.session.result_for(self.case, verdict, reason, self.results, pcap, used, self.began)
        named = set(self.case.readings) | self.bindings.readings_used
        r.readings = {name: self.profile.reading(name) for name in sorted(named)}
        r.decisive_step = decisive.index if decisive else None
        r.decisive_datagram = decisive.datagram if decisive else None
        r.sut_log = self.sut_log
        if verdict is not Verdict.PASS:
            r.sut_log_excerpt = self.sut_log_excerpt(decisive)
        r.exchange = self.describe()
        r.exchange_summary = self.exchange_summary(pcap)
        return r

    def described_seqs(self) -> set[int] | None:
        """The datagrams :meth:`describe` keeps (None: every one)."""
        total = len(self.recorder)
        if total <= EXCHANGE_HEAD + EXCHANGE_TAIL:
            return None
        kept = set(range(EXCHANGE_HEAD)) | set(range(total - EXCHANGE_TAIL, total))
        named = sorted({r.datagram for r in self.results if r.datagram is not None and r.verdict is not Verdict.PASS})
        kept.update(seq for seq in named[:EXCHANGE_NAMED] if 0 <= seq < total)
        return kept

    def exchange_summary(self, pcap: str | None) -> dict[str, Any]:
        """What the exchange records leave out: every datagram counted, by message-layer kind."""
        kept = self.described_seqs()
        by_kind: dict[str, int] = {}
        for a in self.inbox.arrivals:
            by_kind[a.kind.value] = by_kind.get(a.kind.value, 0) + 1
        total = len(self.recorder)
        return {
            "datagrams": total,
            "shown": total if kept is None else len(kept),
            "omitted": 0 if kept is None else total - len(kept),
            "bytes": sum(len(d.data) for d in self.recorder.datagrams),
            "tester_sent": len(self.inbox.tester_sent),
            "sut_sent": dict(sorted(by_kind.items())),
            "pcap": pcap,
        }

    def sut_log_excerpt(self, decisive: StepResult | None) -> str:
        """The SUT's lines around the decisive datagram, else around the end of the case."""
        seq = decisive.datagram if decisive is not None else None
        if seq is None or not 0 <= seq < len(self.recorder):
            return sutlog.excerpt(self.sut_log_entries, None)
        assert decisive is not None
        what = f"datagram #{seq}, the decisive one (step {decisive.index})"
        return sutlog.excerpt(self.sut_log_entries, self.recorder.datagrams_at(seq).time, what)

    def describe(self) -> list[dict[str, Any]]:
        """The exchange as structured records (reports draw sequence charts from these).

        A big case (a gateway case with 1,000 constrained UEs has some 8,000 datagrams, 23 MB as
        records) keeps :data:`EXCHANGE_HEAD` records from the start, :data:`EXCHANGE_TAIL` from the
        end, and every datagram a check names (the evidence of its verdict); :meth:`exchange_summary`
        counts the rest. The pcap holds every datagram."""
        self.sync()
        kinds = {a.seq: a.kind.value for a in self.inbox.arrivals}
        out: list[dict[str, Any]] = []
        datagrams = self.recorder.datagrams
        t0 = datagrams[0].time if datagrams else 0.0
        kept = self.described_seqs()
        for d in datagrams:
            if kept is not None and d.seq not in kept:
                continue
            rec: dict[str, Any] = {
                "seq": d.seq,
                "t_ms": round((d.time - t0) * 1000, 3),
                "src": f"{d.src[0]}:{d.src[1]}",
                "dst": f"{d.dst[0]}:{d.dst[1]}",
                "src_node": self.addresses.label_of(d.src),
                "dst_node": self.addresses.label_of(d.dst),
                "hex": d.data.hex(),
            }
            if d.seq in kinds:
                rec["layer"] = kinds[d.seq]
            decoded(d.data, self.profile.recipient_option, rec)
            out.append(rec)
        return out


async def run_active(run: CaseRun) -> None:
    """Open the case and run its steps (the part of a case that holds the SUT's attention)."""
    try:
        await run.open()
        await run.run_steps()
    except NotApplicable:
        raise
    except SutFault as exc:  # the SUT's fault (it named itself): error, not a harness error
        run.results.append(StepResult("setup", "setup", None, Verdict.ERROR, str(exc)))
        run.stopped_at = run.results[-1]
    except (HarnessError, OSError) as exc:
        run.results.append(StepResult("setup", "setup", None, Verdict.ERROR, f"harness/set-up error: {exc}"))
        run.stopped_at = run.results[-1]


def _template_of(step: Step) -> object:
    if isinstance(step, SendStep | ExpectStep):
        return step.message
    if isinstance(step, UpperStep):
        return step.expect
    if isinstance(step, ExpectNothingStep):
        return [_template_of(c) for c in step.control]
    if isinstance(step, ProbeStep):
        return None
    return None


def decoded(data: bytes, recipient_option: int, rec: dict[str, Any]) -> codec.CoapMessage | None:
    """Add a datagram's decoded fields to its exchange record (type, code, MID, token, recipient,
    summary; or why it is malformed), as every report shows a datagram; the message, if any."""
    try:
        m = codec.parse(data)
    except codec.MalformedDatagram as exc:
        rec.update(malformed=str(exc), summary=f"MALFORMED ({exc})")
        return None
    rcpt = m.option_values(recipient_option)
    rec.update(
        type=MessageType(m.mtype).name,
        code=code_to_str(m.code),
        mid=m.mid,
        token=m.token.hex(),
        recipient=rcpt[0].decode("utf-8", "replace") if rcpt else None,
        summary=m.summary(),
    )
    return m
