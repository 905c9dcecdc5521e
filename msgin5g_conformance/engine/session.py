"""The runner: executes test cases against a SUT and computes verdicts from captured bytes.

One :class:`Session` is one run: an event loop, a claimed loopback address block, a started SUT
adapter, the profile and the capture mode. The CLI and the pytest plugin both drive it.

Per test case: applicability -> fresh lower-tester nodes -> SUT reset and preconditions ->
steps -> pcap. Verdicts rest only on the :class:`~msgin5g_conformance.wire.capture.record.Recorder`
(the datagrams on the wire), parsed strictly; a malformed datagram from the SUT is a ``fail``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msgin5g_conformance.coapnode import CoapNode, FastTuning
from msgin5g_conformance.engine.verdict import CaseResult, Finding, StepResult, Verdict
from msgin5g_conformance.errors import HarnessError, NotApplicable
from msgin5g_conformance.roles.scms import ScmServer
from msgin5g_conformance.spec.model import ExpectNothingStep, ExpectStep, SendStep, Step, TestCase, UpperStep, WaitStep
from msgin5g_conformance.spec.templates import (
    Bindings,
    TemplateError,
    build_message,
    capture_fields,
    describe_template,
    judge,
)
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.pcap import write_pcap
from msgin5g_conformance.wire.capture.record import Address, Datagram, Recorder
from msgin5g_conformance.wire.numbers import MessageType, OptionNumber, code_to_str, decode_uint
from msgin5g_conformance.world.profile import Profile, condition_holds
from msgin5g_conformance.world.topology import AddressBlock, Topology, claim_block
from sut_adapters.base import ClientInfo, NotSupported, SutAdapter, SutEnvironment

log = logging.getLogger(__name__)

CASE_TIME_LIMIT_S = 60.0  # hard bound on one test case, whatever the SUT does
MAX_DATAGRAMS = 20_000  # a SUT that floods beyond this is judged on what came before
SETTLE_S = 0.005  # before the end-of-case check for unexpected messages


@dataclass
class _CaseState:
    """Bookkeeping while one case runs."""

    case: TestCase
    recorder: Recorder
    nodes: dict[str, CoapNode]
    bindings: Bindings
    sut_endpoints: dict[str, Address]
    tester_addresses: set[Address]
    consumed: set[int] = field(default_factory=set)
    cursor: dict[Address, int] = field(default_factory=dict)
    duplicates: set[int] = field(default_factory=set)
    observed: set[Address] = field(default_factory=set)  # nodes some step looked at
    started: dict[int, float] = field(default_factory=dict)  # top-level step -> loop time it began


class Session:
    """One run against one SUT with one profile."""

    def __init__(
        self,
        profile: Profile,
        adapter: SutAdapter,
        *,
        capture_mode: str = "tap",
        pcap_dir: Path | None = Path("pcaps"),
        sut_label: str | None = None,
        max_datagrams: int = MAX_DATAGRAMS,
    ) -> None:
        if capture_mode not in ("tap", "sniff"):
            raise HarnessError(f"unknown capture mode {capture_mode!r}; expected tap or sniff")
        self.profile = profile
        self.adapter = adapter
        self.capture_mode = capture_mode
        self.pcap_dir = pcap_dir
        self.sut_label = sut_label or adapter.name
        self.max_datagrams = max_datagrams
        self.tuning = FastTuning(profile.timers.ack_timeout_ms / 1000, profile.timers.max_retransmit)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.block: AddressBlock | None = None
        self.topology: Topology | None = None
        self.start_error: str | None = None

    # -- session lifecycle ------------------------------------------------------------------

    def open(self) -> None:
        # aiocoap logs what the lower tester sees (e.g. an unparsable datagram) as warnings; the
        # verdict already reports it with evidence, so keep the terminal for verdicts.
        logging.getLogger("coap").setLevel(logging.ERROR)
        self.loop = asyncio.new_event_loop()
        self.block = claim_block(self.profile.port)
        self.topology = Topology(self.block, self.profile.port, self.profile.alt_port)
        if self.capture_mode == "sniff":
            from msgin5g_conformance.wire.capture.sniff import sniff_available

            ok, why = sniff_available()
            if not ok:
                raise HarnessError(f"--capture sniff is not available here: {why}")
        env = SutEnvironment(self.profile, self.topology, self.tuning, self._client_lookup)
        try:
            self.loop.run_until_complete(asyncio.wait_for(self.adapter.start(env), 30))
        except (HarnessError, OSError, TimeoutError) as exc:
            self.start_error = f"SUT {self.sut_label} did not start: {exc or type(exc).__name__}"

    def _client_lookup(self, address: str) -> ClientInfo | None:
        """Which tester client a recipient address names (for SUTs that need a directory)."""
        assert self.topology is not None
        template = self.profile.client_address_template
        head, _, tail = template.partition("{node}")
        if address.startswith(head) and address.endswith(tail) and len(address) > len(head) + len(tail):
            node = address[len(head) : len(address) - len(tail)] if tail else address[len(head) :]
            try:
                return ClientInfo(node, address, self.topology.address(node))
            except HarnessError:
                return None
        return None

    def _node_for_ue(self, ue_id: str) -> str | None:
        info = self._client_lookup(ue_id)
        return info.node if info is not None else None

    def close(self) -> None:
        if self.loop is not None:
            try:
                self.loop.run_until_complete(asyncio.wait_for(self.adapter.stop(), 10))
            except Exception as exc:  # teardown must not hide the run's results
                log.warning("SUT stop failed: %s", exc)
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self.loop = None
        if self.block is not None:
            self.block.release()
            self.block = None

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one test case ----------------------------------------------------------------------

    def run_case(self, case: TestCase) -> CaseResult:
        assert self.loop is not None, "Session.open() first"
        started = time.monotonic()
        na = self._not_applicable(case)
        if na is not None:
            return self._result(case, Verdict.NOT_APPLICABLE, na, [], None, set(), started)
        if self.start_error:
            return self._result(case, Verdict.ERROR, self.start_error, [], None, set(), started)
        try:
            return self.loop.run_until_complete(asyncio.wait_for(self._run(case, started), CASE_TIME_LIMIT_S))
        except TimeoutError:
            return self._result(
                case,
                Verdict.ERROR,
                f"test case exceeded its {CASE_TIME_LIMIT_S:.0f} s bound",
                [],
                None,
                set(),
                started,
            )

    def _not_applicable(self, case: TestCase) -> str | None:
        a = self.adapter
        if case.role not in a.roles:
            return f"SUT {self.sut_label} does not implement the {case.role} role (roles: {', '.join(sorted(a.roles))})"
        missing = [c for c in case.capabilities if c not in a.capabilities]
        if missing:
            return f"SUT {self.sut_label} does not offer capability {', '.join(missing)}"
        for key, want in case.profile_conditions.items():
            try:
                have = self.profile.value(key)
            except KeyError:
                return f"profile {self.profile.name} has no value {key}"
            if not condition_holds(have, want):
                return f"applies when profile {key} is {want!r}; profile {self.profile.name} has {have!r}"
        return None

    async def _run(self, case: TestCase, started: float) -> CaseResult:
        assert self.topology is not None
        loop = asyncio.get_running_loop()
        recorder = Recorder(limit=self.max_datagrams)
        recorder.bind_loop(loop)
        sniffer = None
        scm: ScmServer | None = None
        nodes: dict[str, CoapNode] = {}
        steps: list[StepResult] = []
        bindings = Bindings(self.profile, Path(case.file).parent, configurations=dict(case.configurations))
        pcap_path: str | None = None
        state: _CaseState | None = None
        try:
            if self.capture_mode == "sniff":
                from msgin5g_conformance.wire.capture.sniff import LoopbackSniffer

                sniffer = LoopbackSniffer(recorder, network=self.topology.block.network)
                await loop.run_in_executor(None, sniffer.start)
            tap = recorder if self.capture_mode == "tap" else None
            names = {n for n in case.nodes() if not n.startswith("sut.")}
            if case.role in ("relay", "gateway"):
                names.add("scms")
            if case.role == "gateway":
                scm = ScmServer(self.profile, self._node_for_ue, case.configurations)
            for name in sorted(names):
                handler = scm.handle if (scm is not None and name == "scms") else None
                node = CoapNode(name, self.topology.address(name), tuning=self.tuning, recorder=tap, on_message=handler)
                await node.start()
                nodes[name] = node
            await asyncio.wait_for(self.adapter.reset(case.role), 10)
            endpoints = dict(self.adapter.endpoints())
            state = _CaseState(case, recorder, nodes, bindings, endpoints, {n.address for n in nodes.values()})
            for client in case.links:
                steps.append(await self._upper(state, UpperStep("pre", None, "establish_link", client, None)))
            for step in case.steps:
                if any(s.verdict.rank >= Verdict.INCONCLUSIVE.rank for s in steps):
                    break
                state.started.setdefault(int(step.index.split("[")[0]), loop.time())
                steps.append(await self._step(state, step))
            if not any(s.verdict.rank >= Verdict.FAIL.rank for s in steps):
                # Evidence of a violation outweighs an inconclusive step. Let datagrams already
                # queued on the tester's sockets be read before judging what arrived; best effort
                # only: absence checks are the proof of a discard.
                await asyncio.sleep(SETTLE_S)
                steps.append(self._unexpected(state))
        except NotApplicable as exc:
            return self._result(case, Verdict.NOT_APPLICABLE, str(exc), steps, None, bindings.used, started)
        except (HarnessError, OSError) as exc:
            steps.append(StepResult("setup", "setup", None, Verdict.ERROR, f"harness/set-up error: {exc}"))
        finally:
            for node in nodes.values():
                await node.stop()
            if sniffer is not None:
                await loop.run_in_executor(None, sniffer.stop)
            if self.pcap_dir is not None:
                pcap_path = str(self.pcap_dir / f"{case.id}.pcap")
                write_pcap(pcap_path, recorder.datagrams)
        if scm is not None and scm.errors:
            steps.append(StepResult("scms", "scms", None, Verdict.ERROR, f"harness/set-up error: {scm.errors[0]}"))
        if recorder.overflowed:
            steps.append(
                StepResult(
                    "capture",
                    "capture",
                    None,
                    Verdict.FAIL,
                    f"the SUT sent more than {self.max_datagrams} datagrams (flood); capture truncated",
                )
            )
        for n in nodes.values():
            for failure in n.send_failures:
                steps.append(
                    StepResult(
                        "transport",
                        "transport",
                        None,
                        Verdict.INCONCLUSIVE,
                        f"the SUT did not acknowledge a confirmable message: {failure}",
                    )
                )
        verdict = Verdict.PASS
        decisive: StepResult | None = None
        for s in steps:
            if s.verdict.rank > verdict.rank:
                verdict, decisive = s.verdict, s
        reason = decisive.reason if decisive else f"all {len(case.steps)} steps passed"
        used = set(bindings.used) | {d for d in case.depends_on if d in self.profile.provisional}
        result = self._result(case, verdict, reason, steps, pcap_path, used, started)
        result.decisive_step = decisive.index if decisive else None
        result.decisive_datagram = decisive.datagram if decisive else None
        result.sut_log = self.adapter.log_text()
        result.exchange = self._describe(recorder.datagrams)
        return result

    def _result(
        self,
        case: TestCase,
        verdict: Verdict,
        reason: str,
        steps: list[StepResult],
        pcap: str | None,
        used: set[str],
        started: float,
    ) -> CaseResult:
        return CaseResult(
            case_id=case.id,
            verdict=verdict,
            reason=reason,
            steps=steps,
            profile=self.profile.name,
            profile_sha256=self.profile.sha256,
            sut=self.sut_label,
            capture_mode=self.capture_mode,
            pcap=pcap,
            provisional=sorted(used),
            duration_s=time.monotonic() - started,
        )

    def _describe(self, datagrams: list[Datagram]) -> list[dict[str, Any]]:
        """The exchange as structured records (reports draw sequence charts from these)."""
        assert self.topology is not None
        out: list[dict[str, Any]] = []
        t0 = datagrams[0].time if datagrams else 0.0
        for d in datagrams:
            rec: dict[str, Any] = {
                "seq": d.seq,
                "t_ms": round((d.time - t0) * 1000, 3),
                "src": f"{d.src[0]}:{d.src[1]}",
                "dst": f"{d.dst[0]}:{d.dst[1]}",
                "src_node": self.topology.node_at(d.src),
                "dst_node": self.topology.node_at(d.dst),
                "hex": d.data.hex(),
            }
            try:
                m = codec.parse(d.data)
            except codec.MalformedDatagram as exc:
                rec.update(malformed=str(exc), summary=f"MALFORMED ({exc})")
            else:
                rcpt = m.option_values(self.profile.recipient_option)
                rec.update(
                    type=MessageType(m.mtype).name,
                    code=code_to_str(m.code),
                    mid=m.mid,
                    token=m.token.hex(),
                    recipient=rcpt[0].decode("utf-8", "replace") if rcpt else None,
                    summary=m.summary(),
                )
            out.append(rec)
        return out

    # -- steps ------------------------------------------------------------------------------

    async def _step(self, st: _CaseState, step: Step) -> StepResult:
        t0 = time.monotonic()
        try:
            if isinstance(step, SendStep):
                r = self._send(st, step)
            elif isinstance(step, ExpectStep):
                r = await self._expect(st, step, set())
            elif isinstance(step, UpperStep):
                r = await self._upper(st, step)
            elif isinstance(step, WaitStep):
                await asyncio.sleep(step.ms / 1000)
                r = StepResult(step.index, "wait", step.line, Verdict.PASS, f"waited {step.ms} ms")
            else:
                r = await self._absence(st, step)
        except TemplateError as exc:
            r = StepResult(step.index, type(step).__name__, step.line, Verdict.ERROR, f"test definition: {exc}")
        except (NotApplicable, asyncio.CancelledError):
            raise
        except Exception as exc:  # a harness bug: verdict error with the reason, the run goes on
            log.exception("step %s failed inside the harness", step.index)
            r = StepResult(
                step.index, type(step).__name__, step.line, Verdict.ERROR, f"harness error: {type(exc).__name__}: {exc}"
            )
        r.duration_s = time.monotonic() - t0
        return r

    def _endpoint(self, st: _CaseState, name: str) -> Address:
        if name in st.sut_endpoints:
            return st.sut_endpoints[name]
        raise HarnessError(f"the SUT has no endpoint {name}")

    def _send(self, st: _CaseState, step: SendStep) -> StepResult:
        node = st.nodes[step.sender]
        to = self._endpoint(st, step.to)
        before = len(st.recorder)
        if "raw" in step.message:
            data = bytes.fromhex(step.message["raw"])
            node.send_raw(data, to)
            what = f"{len(data)} raw bytes"
        else:
            msg = build_message(step.message, st.bindings)
            node.send(msg, to, keep_mid="mid" in step.message)
            what = msg.summary()
        return StepResult(
            step.index,
            "send",
            step.line,
            Verdict.PASS,
            f"{step.sender} sent {what} to {step.to}",
            datagram=before if len(st.recorder) > before else None,
            node=step.sender,
            peer=step.to,
        )

    def _candidates(self, st: _CaseState, at: Address, start: int) -> list[Datagram]:
        """Datagrams to ``at`` not yet consumed, from anyone but the tester itself."""
        return [
            d
            for d in st.recorder.since(start)
            if d.dst == at and d.src not in st.tester_addresses and d.seq not in st.consumed
        ]

    def _is_noise(self, st: _CaseState, d: Datagram, want_empty: bool) -> bool:
        """Empty ACK/RST and retransmissions are message-layer traffic, not the message expected."""
        try:
            m = codec.parse(d.data)
        except codec.MalformedDatagram:
            return False
        if m.code == 0 and not want_empty:
            return True
        block2 = m.option_values(OptionNumber.BLOCK2)
        if 0 < m.code < 32 and block2 and decode_uint(block2[0]) >> 4 > 0:
            return True  # a request for a later block continues an exchange already judged (RFC 7959)
        if m.mtype in (MessageType.CON, MessageType.NON):
            if d.seq in st.duplicates:
                return True
            first = next(
                (
                    e
                    for e in st.recorder.before(d.seq)
                    if e.src == d.src and e.dst == d.dst and _mid_type(e.data) == (m.mid, m.mtype)
                ),
                None,
            )
            if first is not None:
                st.duplicates.add(d.seq)
                return True
        return False

    async def _expect(self, st: _CaseState, step: ExpectStep, watched: set[Address]) -> StepResult:
        """Wait for the next message at a node and judge it.

        Inside an absence check's positive control (``watched`` non-empty), non-matching messages
        are left in place for the absence check to report, and the first matching one is taken.
        """
        at = st.nodes[step.at].address
        st.observed.add(at)
        timeout_ms = self._timeout(st, step)
        loop = asyncio.get_running_loop()
        begin = st.started.get(step.since_step, loop.time()) if step.since_step is not None else loop.time()
        deadline = begin + timeout_ms / 1000
        want_empty = str(step.message.get("code", "")) in ("0.00", "0", "EMPTY")
        expected_from = self._endpoint(st, step.sender) if step.sender else None
        checked = st.cursor.get(at, 0)
        while True:
            n = len(st.recorder)
            for d in self._candidates(st, at, checked):
                if self._is_noise(st, d, want_empty):
                    continue
                result = self._judge(st, step, d, expected_from)
                if result.verdict is Verdict.PASS or not watched:
                    st.consumed.add(d.seq)
                    st.cursor[at] = d.seq + 1
                    return result
            checked = max(checked, n)
            if not await st.recorder.wait_for_more(n, deadline):
                break
        return StepResult(
            step.index,
            "expect",
            step.line,
            Verdict.FAIL,
            f"no matching message arrived at {step.at} within {timeout_ms} ms"
            + (f" of step {step.since_step}" if step.since_step is not None else ""),
            node=step.at,
            peer=step.sender,
            findings=[Finding("message", describe_template(step.message, st.bindings), "nothing", False)],
        )

    def _timeout(self, st: _CaseState, step: ExpectStep) -> int:
        if step.timeout_ms is None:
            return self.profile.timers.response_ms + step.grace_ms
        value = st.bindings.resolve(step.timeout_ms)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TemplateError(f"timeout_ms: expected milliseconds, found {value!r}")
        return value + step.grace_ms

    def _judge(self, st: _CaseState, step: ExpectStep, d: Datagram, expected_from: Address | None) -> StepResult:
        src = self.topology.label(d.src) if self.topology else str(d.src)

        def result(verdict: Verdict, reason: str, findings: list[Finding]) -> StepResult:
            return StepResult(step.index, "expect", step.line, verdict, reason, datagram=d.seq, node=step.at,
                              peer=step.sender, findings=findings)  # fmt: skip

        try:
            m = codec.parse(d.data)
        except codec.MalformedDatagram as exc:
            well_formed = Finding("datagram", "a well-formed CoAP message (RFC 7252 3)", f"{exc}", False)
            return result(Verdict.FAIL, f"malformed datagram #{d.seq} from {src} at {step.at}: {exc}", [well_formed])
        findings: list[Finding] = []
        if expected_from is not None:
            where = f"{step.sender} {expected_from[0]}:{expected_from[1]}"
            findings.append(Finding("from", where, src, d.src == expected_from))
        findings.extend(judge(m, step.message, st.bindings))
        bad = [f for f in findings if not f.ok]
        if bad:
            detail = "; ".join(f"{f.field}: expected {f.expected}, found {f.found}" for f in bad)
            return result(Verdict.FAIL, f"datagram #{d.seq} at {step.at} ({m.summary()}): {detail}", findings)
        st.bindings.captures.update(capture_fields(m, step.capture, st.bindings))
        return result(Verdict.PASS, f"datagram #{d.seq} at {step.at} from {src}: {m.summary()}", findings)

    def _unexpected(self, st: _CaseState) -> StepResult:
        """At every node a step looked at, every message from the SUT must be accounted for.

        Nodes the case never looks at are not judged here, so a defect seen only there is left to
        the cases about it (each faulty variant is caught by the cases of its requirement).
        """
        assert self.topology is not None
        extra = [
            d
            for d in st.recorder.since(0)
            if d.dst in st.observed
            and d.src not in st.tester_addresses
            and d.seq not in st.consumed
            and not self._is_noise(st, d, False)
        ]
        if not extra:
            return StepResult("end", "no-unexpected", None, Verdict.PASS, "no unexpected message from the SUT")
        d = extra[0]
        try:
            shown = codec.parse(d.data).summary()
        except codec.MalformedDatagram as exc:
            shown = f"malformed datagram ({exc})"
        return StepResult(
            "end",
            "no-unexpected",
            None,
            Verdict.FAIL,
            f"{len(extra)} unexpected message(s) from the SUT; first: datagram #{d.seq} at "
            f"{self.topology.label(d.dst)} from {self.topology.label(d.src)}: {shown}",
            datagram=d.seq,
            findings=[Finding("unexpected message", "none", shown, False)],
        )

    async def _absence(self, st: _CaseState, step: ExpectNothingStep) -> StepResult:
        watched = {st.nodes[n].address for n in step.at}
        st.observed.update(watched)
        starts = {a: st.cursor.get(a, 0) for a in watched}
        window = step.window_ms or self.profile.timers.absence_window_ms
        await asyncio.sleep(window / 1000)
        control_results: list[StepResult] = []
        for c in step.control:
            if isinstance(c, ExpectStep):
                r = await self._expect(st, c, watched)
            elif isinstance(c, SendStep):
                r = self._send(st, c)
            else:
                r = await self._upper(st, c)
            control_results.append(r)
            if r.verdict is not Verdict.PASS:
                break
        violations = []
        for a in watched:
            for d in self._candidates(st, a, starts[a]):
                if not self._is_noise(st, d, False):
                    violations.append(d)
        names = ", ".join(step.at)
        if violations:
            d = min(violations, key=lambda x: x.seq)
            try:
                shown = codec.parse(d.data).summary()
            except codec.MalformedDatagram as exc:
                shown = f"malformed datagram ({exc})"
            assert self.topology is not None
            return StepResult(
                step.index,
                "expect_nothing",
                step.line,
                Verdict.FAIL,
                f"expected nothing at {names}, but datagram #{d.seq} arrived at "
                f"{self.topology.label(d.dst)} from {self.topology.label(d.src)}: {shown}",
                datagram=d.seq,
                findings=[Finding("absence", f"nothing at {names}", shown, False)],
            )
        failed = next((r for r in control_results if r.verdict is not Verdict.PASS), None)
        if failed is not None:
            verdict = Verdict.ERROR if failed.verdict is Verdict.ERROR else Verdict.INCONCLUSIVE
            return StepResult(
                step.index,
                "expect_nothing",
                step.line,
                verdict,
                f"nothing arrived at {names}, but the positive control did not succeed, so the "
                f"absence proves nothing: step {failed.index}: {failed.reason}",
                datagram=failed.datagram,
                findings=failed.findings,
            )
        last = control_results[-1]
        return StepResult(
            step.index,
            "expect_nothing",
            step.line,
            Verdict.PASS,
            f"nothing arrived at {names} in {window} ms and until the positive control (step {last.index}) arrived",
            datagram=last.datagram,
        )

    async def _upper(self, st: _CaseState, step: UpperStep) -> StepResult:
        a = self.adapter
        try:
            if step.op in ("establish_link", "release_link"):
                assert step.client is not None and self.topology is not None
                info = ClientInfo(
                    step.client, self.profile.client_address(step.client), self.topology.address(step.client)
                )
                fn = a.establish_link if step.op == "establish_link" else a.release_link
                await asyncio.wait_for(fn(info), 10)
                return StepResult(step.index, "upper", step.line, Verdict.PASS, f"{step.op} {step.client}")
            if step.op == "request_configuration":
                await asyncio.wait_for(a.request_configuration(), 10)
            elif step.op == "send_bulk_now":
                await asyncio.wait_for(a.send_bulk_now(), 10)
            elif step.op == "read_configuration":
                want = st.bindings.resolve(step.expect) if step.expect is not None else None
                await asyncio.sleep(step.settle_ms / 1000)
                # Applying is asynchronous: read until equal, within the response timer.
                deadline = asyncio.get_running_loop().time() + self.profile.timers.response_ms / 1000
                while True:
                    found = await asyncio.wait_for(a.read_configuration(), 10)
                    ok = want is None or found == want
                    if ok or asyncio.get_running_loop().time() >= deadline:
                        break
                    await asyncio.sleep(0.01)
                return StepResult(
                    step.index,
                    "upper",
                    step.line,
                    Verdict.PASS if ok else Verdict.FAIL,
                    f"read_configuration: expected {want!r}, found {found!r}",
                    findings=[Finding("applied configuration", repr(want), repr(found), ok)],
                )
            return StepResult(step.index, "upper", step.line, Verdict.PASS, step.op)
        except NotSupported as exc:
            raise NotApplicable(f"upper tester operation {step.op}: {exc}") from None
        except TimeoutError:
            return StepResult(
                step.index,
                "upper",
                step.line,
                Verdict.ERROR,
                f"upper tester operation {step.op} did not complete within 10 s",
            )


def _mid_type(data: bytes) -> tuple[int, int] | None:
    if len(data) < 4:
        return None
    return ((data[2] << 8) | data[3], (data[0] >> 4) & 3)
