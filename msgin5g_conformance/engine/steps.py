"""Step executors: what each kind of step does during a test case, and the result it gives.

* ``send``: a tester node puts a message on the wire (the kernel must accept it);
* ``expect``: the first message at a node, from any time in the case and not taken by another
  step, that matches the template within the step's time; failing that, the closest candidate
  is the evidence (order at a node is not judged: RFC 7252 promises none);
* ``upper``: an upper-tester operation on the SUT;
* ``wait``;
* ``expect_nothing``: an absence check. It waits its window, runs its positive control, and
  leaves the verdict on the discard to the end of the case: anything arriving at a watched node
  from the stimulus until the case's late window is over is a violation
  (:meth:`~msgin5g_conformance.engine.case.CaseRun.finish`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from msgin5g_conformance.engine.matching import ACCOUNTABLE, Arrival, Kind
from msgin5g_conformance.engine.verdict import Finding, StepResult, Verdict
from msgin5g_conformance.errors import NotApplicable
from msgin5g_conformance.spec.model import ExpectNothingStep, ExpectStep, SendStep, Step, UpperStep, WaitStep
from msgin5g_conformance.spec.templates import (
    TemplateError,
    build_message,
    capture_fields,
    describe_template,
    encode_payload,
    judge,
)
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address
from sut_adapters.base import ClientInfo, NotSupported

if TYPE_CHECKING:
    from msgin5g_conformance.engine.case import CaseRun

log = logging.getLogger(__name__)

UPPER_OP_S = 10.0  # bound on one upper-tester operation
_EMPTY_KINDS = ACCOUNTABLE | {Kind.ACK, Kind.RESET}


@dataclass
class Absence:
    """An absence check waiting for the end of the case to be judged."""

    result: StepResult
    watched: tuple[Address, ...]
    names: tuple[str, ...]
    start_seq: int  # the stimulus: the first datagram that may be a violation comes after it
    start_time: float  # wall time of the stimulus
    stimulus_payload: bytes  # the discarded message's payload: it must arrive nowhere
    control_payloads: tuple[bytes, ...] = ()  # what the positive control sent (not a violation)


async def run_step(run: CaseRun, step: Step) -> StepResult:
    t0 = time.monotonic()
    try:
        if isinstance(step, SendStep):
            r = await send(run, step)
        elif isinstance(step, ExpectStep):
            r = await expect(run, step)
        elif isinstance(step, UpperStep):
            r = await upper(run, step)
        elif isinstance(step, WaitStep):
            await asyncio.sleep(step.ms / 1000)
            r = StepResult(step.index, "wait", step.line, Verdict.PASS, f"waited {step.ms} ms")
        else:
            r = await absence(run, step)
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
    if not r.requirements and r.kind in ("expect", "expect_nothing", "upper"):
        r.requirements = run.case.requirements
    return r


# -- send ---------------------------------------------------------------------------------------


async def send(run: CaseRun, step: SendStep) -> StepResult:
    node = run.nodes[step.sender]
    to = run.sut_endpoint(step.to)
    failures = len(node.failures)
    if "raw" in step.message:
        data = bytes.fromhex(step.message["raw"])
        seq = await node.send_raw(data, to)
        what, payload = f"{len(data)} raw bytes", b""
    else:
        msg = build_message(step.message, run.bindings)
        seq = await node.send(msg, to, keep_mid="mid" in step.message or msg.mtype.name in ("ACK", "RST"))
        payload = msg.payload
        # as it went on the wire (with the Message ID the node gave it)
        what = codec.parse(run.recorder.datagrams_at(seq).data).summary() if seq is not None else msg.summary()
    if len(node.failures) > failures:
        f = node.failures[-1]
        return StepResult(
            step.index,
            "send",
            step.line,
            Verdict.ERROR,
            f"{step.sender} could not send {what} to {step.to}: the kernel refused it ({f.reason}, errno {f.errno})",
            node=step.sender,
            peer=step.to,
        )
    run.stimulus(seq, payload)
    return StepResult(
        step.index,
        "send",
        step.line,
        Verdict.PASS,
        f"{step.sender} sent {what} to {step.to}",
        datagram=seq,
        node=step.sender,
        peer=step.to,
    )


# -- expect -------------------------------------------------------------------------------------


def _wants_empty(step: ExpectStep) -> bool:
    return str(step.message.get("code", "")) in ("0.00", "0", "EMPTY")


def _timeout_ms(run: CaseRun, step: ExpectStep) -> int:
    if step.timeout_ms is None:
        return run.profile.timers.response_ms + step.grace_ms
    value = run.bindings.resolve(step.timeout_ms)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(f"timeout_ms: expected milliseconds, found {value!r}")
    return value + step.grace_ms


def deadline_base(run: CaseRun, step: ExpectStep) -> float:
    """When the step's time starts: now, or the start of the earlier step it names (since_step)."""
    now = asyncio.get_running_loop().time()
    if step.since_step is None:
        return now
    return run.started.get(step.since_step, now)


def _findings(run: CaseRun, step: ExpectStep, a: Arrival, expected_from: Address | None) -> list[Finding]:
    if a.message is None:
        return [Finding("datagram", "a well-formed CoAP message (RFC 7252 3)", a.error or "malformed", False)]
    out: list[Finding] = []
    if expected_from is not None:
        where = f"{step.sender} {expected_from[0]}:{expected_from[1]}"
        out.append(Finding("from", where, run.addresses.label(a.datagram.src), a.datagram.src == expected_from))
    out.extend(judge(a.message, step.message, run.bindings))
    return out


def _identity(run: CaseRun, step: ExpectStep, control_payload: bytes | None) -> set[bytes]:
    """Payloads that identify a positive control's message (test and control always differ)."""
    marks: set[bytes] = set()
    if control_payload:
        marks.add(control_payload)
    spec = step.message.get("payload")
    if isinstance(spec, dict) and ("json" in spec or "text" in spec or "hex" in spec):
        try:
            expected = encode_payload({k: v for k, v in spec.items() if k != "schema"}, run.bindings)
        except TemplateError:
            expected = b""
        if expected:
            marks.add(expected)
    return marks


async def expect(run: CaseRun, step: ExpectStep, control: tuple[bytes | None, bool] | None = None) -> StepResult:
    """Wait for the first matching message at ``step.at``.

    ``control`` marks a positive control of an absence check: (the control stimulus's payload,
    whether the node is watched). A candidate that carries the control's identity but does not
    match ends the step at once as inconclusive: the control arrived, but not as expected.
    """
    at = run.addresses.address(step.at)
    loop = asyncio.get_running_loop()
    timeout_ms = _timeout_ms(run, step)
    deadline = deadline_base(run, step) + timeout_ms / 1000
    kinds = _EMPTY_KINDS if _wants_empty(step) else ACCOUNTABLE
    expected_from = run.sut_endpoint(step.sender) if step.sender else None
    marks = _identity(run, step, control[0]) if control else set()
    examined: dict[int, tuple[Arrival, list[Finding]]] = {}

    def result(verdict: Verdict, reason: str, findings: list[Finding], seq: int | None) -> StepResult:
        return StepResult(step.index, "expect", step.line, verdict, reason, datagram=seq, node=step.at,
                          peer=step.sender, findings=findings)  # fmt: skip

    while True:
        count = len(run.recorder)
        run.sync()
        for a in run.inbox.candidates(at, kinds=kinds):
            if a.seq in examined:
                continue
            findings = _findings(run, step, a, expected_from)
            if all(f.ok for f in findings):
                run.inbox.take(a, step.index)
                assert a.message is not None
                run.bindings.captures.update(capture_fields(a.message, step.capture, run.bindings))
                src = run.addresses.label(a.datagram.src)
                return result(
                    Verdict.PASS, f"datagram #{a.seq} at {step.at} from {src}: {a.summary()}", findings, a.seq
                )
            examined[a.seq] = (a, findings)
            if control is not None and a.message is not None and a.message.payload in marks:
                run.inbox.take(a, step.index)
                return result(
                    Verdict.INCONCLUSIVE,
                    f"the positive control arrived at {step.at} but did not match: datagram #{a.seq} "
                    f"({a.summary()}): {_mismatch(findings)}",
                    findings,
                    a.seq,
                )
        if not await run.recorder.wait_for_more(count, deadline) and loop.time() >= deadline:
            break
    since = f" of step {step.since_step}" if step.since_step is not None else ""
    if examined and control is None:
        a, findings = min(examined.values(), key=lambda x: (sum(not f.ok for f in x[1]), x[0].seq))
        run.inbox.take(a, step.index)
        return result(
            Verdict.FAIL,
            f"no matching message arrived at {step.at} within {timeout_ms} ms{since}; closest: datagram #{a.seq} "
            f"({a.summary()}): {_mismatch(findings)}",
            findings,
            a.seq,
        )
    nothing = Finding("message", describe_template(step.message, run.bindings), "nothing", False)
    verdict = Verdict.INCONCLUSIVE if control is not None else Verdict.FAIL
    return result(verdict, f"no matching message arrived at {step.at} within {timeout_ms} ms{since}", [nothing], None)


def _mismatch(findings: list[Finding]) -> str:
    return "; ".join(f"{f.field}: expected {f.expected}, found {f.found}" for f in findings if not f.ok)


# -- upper tester -------------------------------------------------------------------------------


async def upper(run: CaseRun, step: UpperStep) -> StepResult:
    sut = run.sut
    assert sut is not None
    try:
        if step.op in ("establish_link", "release_link"):
            assert step.client is not None
            info = ClientInfo(step.client, run.profile.client_address(step.client), run.addresses.address(step.client))
            fn = sut.establish_link if step.op == "establish_link" else sut.release_link
            await asyncio.wait_for(fn(info), UPPER_OP_S)
            return StepResult(step.index, "upper", step.line, Verdict.PASS, f"{step.op} {step.client}")
        if step.op == "request_configuration":
            await asyncio.wait_for(sut.request_configuration(), UPPER_OP_S)
        elif step.op == "send_bulk_now":
            await asyncio.wait_for(sut.send_bulk_now(), UPPER_OP_S)
        elif step.op == "read_configuration":
            return await _read_configuration(run, step)
        return StepResult(step.index, "upper", step.line, Verdict.PASS, step.op)
    except NotSupported as exc:
        raise NotApplicable(f"upper tester operation {step.op}: {exc}") from None
    except TimeoutError:
        return StepResult(
            step.index,
            "upper",
            step.line,
            Verdict.ERROR,
            f"upper tester operation {step.op} did not complete within {UPPER_OP_S:.0f} s",
        )


async def _read_configuration(run: CaseRun, step: UpperStep) -> StepResult:
    sut = run.sut
    assert sut is not None
    loop = asyncio.get_running_loop()
    want = run.bindings.resolve(step.expect) if step.expect is not None else None
    await asyncio.sleep(step.settle_ms / 1000)
    # Applying is asynchronous: read until equal, within the response timer.
    deadline = loop.time() + run.profile.timers.response_ms / 1000
    while True:
        found = await asyncio.wait_for(sut.read_configuration(), UPPER_OP_S)
        ok = want is None or found == want
        if ok or loop.time() >= deadline:
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


# -- absence ------------------------------------------------------------------------------------


def absence_wait_s(run: CaseRun, step: ExpectNothingStep) -> float:
    """The quiet time before the positive control is sent."""
    return (step.window_ms or run.profile.timers.absence_window_ms) / 1000


async def absence(run: CaseRun, step: ExpectNothingStep) -> StepResult:
    watched = tuple(run.addresses.address(n) for n in step.at)
    start_seq, start_time, stimulus_payload = run.stimulus_mark()
    await asyncio.sleep(absence_wait_s(run, step))
    control_payload: bytes | None = None
    failed: StepResult | None = None
    last: StepResult | None = None
    for c in step.control:
        if isinstance(c, ExpectStep):
            r = await expect(run, c, (control_payload, run.addresses.address(c.at) in watched))
        elif isinstance(c, SendStep):
            if "payload" in c.message:
                control_payload = encode_payload(c.message["payload"], run.bindings)
            r = await send(run, c)
        else:
            r = await upper(run, c)
        last = r
        if r.verdict is not Verdict.PASS:
            failed = r
            break
    names = ", ".join(step.at)
    if failed is not None:
        verdict = Verdict.ERROR if failed.verdict is Verdict.ERROR else Verdict.INCONCLUSIVE
        result = StepResult(
            step.index,
            "expect_nothing",
            step.line,
            verdict,
            f"the positive control did not succeed, so the absence at {names} proves nothing: "
            f"step {failed.index}: {failed.reason}",
            datagram=failed.datagram,
            findings=failed.findings,
        )
    else:
        assert last is not None
        result = StepResult(
            step.index,
            "expect_nothing",
            step.line,
            Verdict.PASS,
            f"nothing arrived at {names} from the stimulus until the positive control (step {last.index}) arrived",
            datagram=last.datagram,
        )
    controls = (control_payload,) if control_payload else ()
    run.absences.append(Absence(result, watched, tuple(step.at), start_seq, start_time, stimulus_payload, controls))
    return result
