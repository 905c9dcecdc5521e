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
import contextlib
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from msgin5g_conformance.engine import difference, liveness
from msgin5g_conformance.engine.matching import ACCOUNTABLE, Arrival, Kind, Signature, identify
from msgin5g_conformance.engine.verdict import Finding, StepResult, Verdict
from msgin5g_conformance.errors import NotApplicable
from msgin5g_conformance.spec.model import (
    ExpectNothingStep,
    ExpectStep,
    ProbeStep,
    SendStep,
    Step,
    UpperStep,
    WaitStep,
)
from msgin5g_conformance.spec.templates import (
    TemplateError,
    build_message,
    capture_fields,
    describe_template,
    encode_option_value,
    encode_payload,
    judge,
    judge_other_options,
    load_json,
)
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import OPTION_FORMATS, MessageType, OptionFormat, option_name
from msgin5g_conformance.world.profile import SENT_WITHIN_SHARE
from sut_adapters.base import ClientInfo, NotSupported, SutFault

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
    stimulus: Signature  # the discarded message: it must arrive nowhere
    control: Signature  # the positive control (a copy of it is not the discarded message)


async def run_step(run: CaseRun, step: Step) -> StepResult:
    t0 = time.monotonic()
    unmet = run.unmet_needs(step)
    if unmet is not None:
        r = _not_judged(run, step, f"it needs step {unmet}, which did not pass")
        r.requirements = step.requirements or run.case.requirements
        return r
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
        elif isinstance(step, ProbeStep):
            r = await liveness.probe(run, step)
        else:
            r = await absence(run, step)
    except TemplateError as exc:
        missing = run.missing_capture(step)
        if missing is not None:  # it needs what an earlier step that did not pass should have captured
            r = _not_judged(run, step, f"it needs ${{{missing[0]}}}, which step {missing[1]} did not capture")
        else:
            r = StepResult(step.index, type(step).__name__, step.line, Verdict.ERROR, f"test definition: {exc}")
    except (NotApplicable, asyncio.CancelledError):
        raise
    except SutFault as exc:  # the SUT's fault, not the harness's: error (not judged), no traceback
        log.info("step %s: %s", step.index, exc)
        r = StepResult(step.index, type(step).__name__, step.line, Verdict.ERROR, str(exc))
    except Exception as exc:  # a harness bug: verdict error with the reason, the run goes on
        log.exception("step %s failed inside the harness", step.index)
        r = StepResult(
            step.index, type(step).__name__, step.line, Verdict.ERROR, f"harness error: {type(exc).__name__}: {exc}"
        )
    r.duration_s = time.monotonic() - t0
    if not r.requirements and r.kind in ("expect", "expect_nothing", "upper"):
        r.requirements = step.requirements or run.case.requirements
    # what it failed to capture is judged on the verdict before a SHOULD softens it: a later step
    # that needs the capture is then "not judged", not an error of an undefined variable
    if isinstance(step, ExpectStep) and r.verdict is not Verdict.PASS and step.capture:
        run.failed_captures.update(dict.fromkeys(step.capture, step.index))
    if run.case.strength == "should" and r.kind in ("expect", "expect_nothing", "upper", "probe"):
        soften(r, "the case's requirement is a SHOULD")
    return r


def _not_judged(run: CaseRun, step: Step, why: str) -> StepResult:
    """A check that cannot be judged because an earlier one did not pass: inconclusive, and the
    case is not judged for unexpected messages either."""
    run.not_judged = True
    kind = _KINDS.get(type(step).__name__, "step")
    return StepResult(step.index, kind, step.line, Verdict.INCONCLUSIVE, f"not judged: {why}")


_KINDS = {
    "SendStep": "send",
    "ExpectStep": "expect",
    "UpperStep": "upper",
    "ExpectNothingStep": "expect_nothing",
    "ProbeStep": "probe",
}


def soften(r: StepResult, why: str) -> None:
    """A SHOULD that did not hold: the check passes with a recorded deviation (never a fail)."""
    if r.verdict is not Verdict.FAIL:
        return
    r.deviations.extend(f for f in r.findings if not f.ok)
    if not r.deviations:
        r.deviations.append(Finding("deviation", "as the step says", r.reason, False))
    r.verdict = Verdict.PASS
    r.strength = "should"
    r.reason = f"deviation ({why}): {r.reason}"


# -- send ---------------------------------------------------------------------------------------


async def send(run: CaseRun, step: SendStep) -> StepResult:
    node = run.nodes[step.sender]
    to = run.sut_endpoint(step.to)
    failures = len(node.failures)
    if "raw" in step.message:
        data = bytes.fromhex(step.message["raw"])
        seq = await node.send_raw(data, to)
        what, payload = raw_summary(data), None
        sent_bytes = data
    else:
        msg = build_message(step.message, run.bindings)
        if "mid" not in step.message and msg.mtype in (MessageType.CON, MessageType.NON):
            # the fresh Message ID the node gives it (the template's is 0), taken here so that the
            # reason names the message as it went on the wire, numbered here (tap) or not (sniff)
            msg = replace(msg, mid=node.new_mid())
        seq = await node.send(msg, to, keep_mid=True)
        payload = msg
        what = msg.summary()
        sent_bytes = codec.encode(msg)
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
    run.send_times.append(asyncio.get_running_loop().time())
    if seq is not None:
        run.sent[step.index] = seq
    else:  # on the wire, numbered by the capture later (sniff mode): found by its bytes when needed
        run.sent_unnumbered[step.index] = (node.address, to, sent_bytes)
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


def _too_slow(run: CaseRun, step: ExpectStep) -> str | None:
    """Why the tester could not set up what the step demands (``sent_within_ms``), or None."""
    if step.sent_within_ms is None or len(run.send_times) < 2:
        return None
    limit = run.bindings.resolve(step.sent_within_ms)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TemplateError(f"sent_within_ms: expected milliseconds, found {limit!r}")
    span_ms = (max(run.send_times) - min(run.send_times)) * 1000
    if span_ms <= limit * SENT_WITHIN_SHARE:
        return None
    return (
        f"the tester took {span_ms:.0f} ms for its {len(run.send_times)} sends, more than "
        f"{SENT_WITHIN_SHARE:.0%} of the {limit} ms they must fit in (sent_within_ms): the SUT may legally "
        f"have acted on the first ones before the last arrived"
    )


def deadline_base(run: CaseRun, step: ExpectStep) -> float:
    """When the step's time starts: now, or the start of the earlier step it names (since_step)."""
    now = asyncio.get_running_loop().time()
    if step.since_step is None:
        return now
    return run.started.get(step.since_step, now)


DRAIN_TURNS = 2  # loop turns that read what was already sent (see drain)


async def drain() -> None:
    """Let the loop read every datagram that already reached the kernel before a deadline is judged.

    When the loop was held up, a send due before a deadline and the deadline's own timer come due
    in one turn: the datagram is in the tester socket's buffer, but its read callback is queued
    behind the task that is about to judge. The first turn queues those reads, the second runs them."""
    for _ in range(DRAIN_TURNS):
        await asyncio.sleep(0)


def foreach_group(index: str) -> str | None:
    """The expectations one foreach step repeats per node share a group: ``2[cue7].0`` -> ``2[*].0``.
    The endpoint a role-independent case's steps run for (``0[sut.pc5]``) is no foreach: the
    steps of each endpoint wait on their own."""
    group = re.sub(r"\[(?!sut\.)[^\]]*\]", "[*]", index)
    return group if group != index else None


def raw_summary(data: bytes) -> str:
    """Raw bytes a send step put on the wire, with the Message ID and token they carry."""
    try:
        return f"{len(data)} raw bytes ({codec.parse(data).summary()})"
    except codec.MalformedDatagram:
        if len(data) >= 4:
            return f"{len(data)} raw bytes (mid=0x{(data[2] << 8) | data[3]:04x}, not a well-formed CoAP message)"
        return f"{len(data)} raw bytes"


def _findings(run: CaseRun, step: ExpectStep, a: Arrival, expected_from: Address | None) -> list[Finding]:
    if a.message is None:
        return [Finding("datagram", "a well-formed CoAP message (RFC 7252 3)", a.error or "malformed", False)]
    out: list[Finding] = []
    if expected_from is not None:
        out.append(from_finding(run, step, a, expected_from))
    type_problem = _type_problem(step, a)
    if type_problem is not None:
        out.append(type_problem)
    out.extend(pointed(judge(a.message, step.message, run.bindings), a.message, step.message, run))
    out.extend(judge_other_options(a.message, step.message, run.bindings))
    return out


def pointed(findings: list[Finding], message: CoapMessage, template: dict[str, Any], run: CaseRun) -> list[Finding]:
    """The findings, each failed payload or option value with where it first differs from the
    expectation (best effort: describing a mismatch never changes a verdict)."""
    out: list[Finding] = []
    for f in findings:
        if not f.ok and not f.difference:
            try:
                where = _difference(f, message, template, run)
            except (TemplateError, ValueError, KeyError, TypeError, AttributeError):
                where = ""
            if where:
                f = replace(f, difference=where)
        out.append(f)
    return out


def _difference(f: Finding, message: CoapMessage, template: dict[str, Any], run: CaseRun) -> str:
    bindings = run.bindings
    if f.field == "payload":
        spec = {k: v for k, v in (template.get("payload") or {}).items() if k != "schema"}
        if not spec:
            return ""  # a schema check: its finding names the path and the rule already
        want = encode_payload(spec, bindings)
        resolved = bindings.resolve(spec)
        if "json" in resolved:
            try:
                doc = load_json(message.payload)
            except (UnicodeDecodeError, ValueError):
                return "not JSON; " + difference.bytes_difference(want, message.payload)
            where = difference.json_difference(resolved["json"], doc)
            if where is None:
                return ""  # equal as JSON: what failed is the schema
            return (
                f"{len(want)} B expected (as compact JSON), {len(message.payload)} B found; "
                f"judged as JSON, first difference {where}"
            )
        return difference.bytes_difference(want, message.payload) if want != message.payload else ""
    for name, spec in (template.get("options") or {}).items():
        number = bindings.option_number(name)
        label = f"options.{name}" if name != "recipient" else f"options.recipient ({option_name(number)})"
        if f.field != label:
            continue
        if spec is None or (isinstance(spec, dict) and ("present" in spec or "set" in spec)):
            return ""  # absent / present / any order: the finding says it all
        if OPTION_FORMATS.get(number) is OptionFormat.UINT and number != run.profile.recipient_option:
            return ""  # a number: expected and found are short and plain
        resolved = bindings.resolve(spec)
        wanted = resolved if isinstance(resolved, list) else [resolved]
        want_values = [encode_option_value(number, w, bindings) for w in wanted]
        return difference.values_difference(want_values, list(message.option_values(number))) or ""
    return ""


def _type_problem(step: ExpectStep, a: Arrival) -> Finding | None:
    """The type is judged on every expectation. Without ``type:`` a message is CON or NON, or a
    response piggybacked on the ACK of a CON the tester sent (RFC 7252 5.2.1); an empty message is
    an ACK or RST. Whatever the template says, an ACK or RST that answers no CON of the tester is
    never a match: no endpoint can relate it to anything (RFC 7252 4.2, 4.3)."""
    assert a.message is not None
    found = MessageType(a.message.mtype)
    if found in (MessageType.ACK, MessageType.RST) and a.answers is None:
        return Finding(
            "type", "a message its receiver can match", f"{found.name} answering no CON of the tester", False
        )
    if "type" in step.message:
        return None  # judge() compares it with the template
    wanted = ("ACK", "RST") if _wants_empty(step) else ("CON", "NON", "ACK")
    if found.name in wanted:
        return None
    return Finding("type", " or ".join(wanted), found.name, False)


def from_finding(run: CaseRun, step: ExpectStep, a: Arrival, expected: Address) -> Finding:
    """The sender's address: its host always, its port only where the profile's reading of "from
    UDP port 65401" (port_match) makes the source port count."""
    src = a.datagram.src
    found = run.addresses.label(src)
    if run.profile.port_match in ("source", "both"):
        return Finding("from", f"{step.sender} {expected[0]}:{expected[1]}", found, src == expected)
    run.bindings._mark("port_match")
    where = f"{step.sender} {expected[0]} (any port: port_match destination)"
    return Finding("from", where, found, src[0] == expected[0])


def expectation_signature(run: CaseRun, step: ExpectStep) -> Signature:
    """What a control expectation names of its message: a literal payload, recipient and token."""
    payloads: set[bytes] = set()
    spec = step.message.get("payload")
    if isinstance(spec, dict) and ("json" in spec or "text" in spec or "hex" in spec):
        with contextlib.suppress(TemplateError):
            payloads.add(encode_payload({k: v for k, v in spec.items() if k != "schema"}, run.bindings))
    recipients: set[bytes] = set()
    value = (step.message.get("options") or {}).get("recipient")
    if isinstance(value, str):
        with contextlib.suppress(TemplateError):
            recipients.add(str(run.bindings.resolve(value)).encode("utf-8"))
    return Signature(frozenset(payloads - {b""}), frozenset(recipients))


@dataclass(frozen=True)
class Control:
    """A positive control in progress: what the discarded stimulus and the control look like, and
    whether the expectation's node is one the absence check watches."""

    stimulus: Signature
    control: Signature
    watched: bool


async def expect(run: CaseRun, step: ExpectStep, control: Control | None = None) -> StepResult:
    """Wait for the first matching message at ``step.at``.

    ``control`` marks a positive control of an absence check. At a watched node only what is
    identified as the control (not as the discarded stimulus) is a candidate: the rest is left for
    the absence check to judge. A candidate identified as the control that does not match ends the
    step at once as inconclusive: the control arrived, but not as expected.
    """
    at = run.addresses.address(step.at)
    loop = asyncio.get_running_loop()
    timeout_ms = _timeout_ms(run, step)
    deadline = deadline_base(run, step) + timeout_ms / 1000
    # Once one node's expectation of a foreach has waited its full time in vain, the others of that
    # foreach wait no longer than it did: what the SUT sent by then is judged (each still takes its
    # message from any time in the case), and the late window and the catch-all still see the rest.
    # A correct SUT is never affected; a defective one fails in one wait instead of one per node.
    group = foreach_group(step.index) if control is None else None
    shared = run.lapsed.get(group) if group else None
    if shared is not None:
        deadline = min(deadline, shared[0])
    within = f"within {timeout_ms} ms" if shared is None else f"by the end of the wait of step {shared[1]}"
    kinds = _EMPTY_KINDS if _wants_empty(step) else ACCOUNTABLE
    expected_from = run.sut_endpoint(step.sender) if step.sender else None
    answers = await _answered_con(run, step)
    if answers is not None:  # an answer to one CON: empty or not, and also the answer to a copy
        kinds = _EMPTY_KINDS | {Kind.DUPLICATE}
    sig = (control.control | expectation_signature(run, step)) if control else None
    option = run.profile.recipient_option
    examined: dict[int, tuple[Arrival, list[Finding]]] = {}

    def result(verdict: Verdict, reason: str, findings: list[Finding], seq: int | None) -> StepResult:
        return StepResult(step.index, "expect", step.line, verdict, reason, datagram=seq, node=step.at,
                          peer=step.sender, findings=findings)  # fmt: skip

    final = False  # the last look, after the deadline, at what was sent by then
    while True:
        count = len(run.recorder)
        run.sync()
        for a in run.inbox.candidates(at, kinds=kinds):
            if a.seq in examined:
                continue
            who = identify(a.message, control.stimulus, sig, option) if control and sig else None
            if control is not None and control.watched and who != "control":
                continue  # at a watched node only the control is a candidate; the rest is the absence's
            findings = _findings(run, step, a, expected_from)
            if answers is not None:
                con, sent = answers
                found = "an answer to nothing" if a.answers is None else f"an answer to #{a.answers}"
                wanted = f"an answer to the CON {_mid_of(run, sent)}of step {step.answers} (#{con}), after #{sent}"
                findings.append(Finding("answers", wanted, found, a.answers == con and a.seq > sent))
            if all(f.ok for f in findings):
                run.inbox.take(a, step.index)
                assert a.message is not None
                run.bindings.captures.update(capture_fields(a.message, step.capture, run.bindings))
                src = run.addresses.label(a.datagram.src)
                r = result(Verdict.PASS, f"datagram #{a.seq} at {step.at} from {src}: {a.summary()}", findings, a.seq)
                if step.should:
                    _judge_should(run, step, a.message, r)
                return r
            examined[a.seq] = (a, findings)
            if control is not None and who == "control":
                run.inbox.take(a, step.index)
                return result(
                    Verdict.INCONCLUSIVE,
                    f"the positive control arrived at {step.at} but did not match: datagram #{a.seq} "
                    f"({a.summary()}): {_mismatch(findings)}",
                    findings,
                    a.seq,
                )
        if final:
            break
        if not await run.recorder.wait_for_more(count, deadline) and loop.time() >= deadline:
            await drain()
            final = True
    since = f" of step {step.since_step}" if step.since_step is not None and shared is None else ""
    if group is not None:
        run.lapsed.setdefault(group, (deadline, step.index))
    slow = _too_slow(run, step) if control is None else None
    if slow is not None:  # not set up as the step demands: not judged, nor is what the SUT sent besides
        run.not_judged = True
    failed = Verdict.FAIL if slow is None else Verdict.INCONCLUSIVE
    prefix = "" if slow is None else f"not judged: {slow}; "
    if examined and control is None:
        a, findings = min(examined.values(), key=lambda x: (sum(not f.ok for f in x[1]), x[0].seq))
        run.inbox.take(a, step.index)
        return result(
            failed,
            f"{prefix}no matching message arrived at {step.at} {within}{since}; closest: datagram #{a.seq} "
            f"({a.summary()}): {_mismatch(findings)}",
            findings,
            a.seq,
        )
    nothing = Finding("message", describe_template(step.message, run.bindings), "nothing", False)
    verdict = Verdict.INCONCLUSIVE if control is not None else failed
    return result(verdict, f"{prefix}no matching message arrived at {step.at} {within}{since}", [nothing], None)


async def _answered_con(run: CaseRun, step: ExpectStep) -> tuple[int, int] | None:
    """``answers``: the CON the expected ACK or RST must answer (the capture number of its first
    copy, and of the send step's datagram: the answer comes after it); from now on this step, not
    the message-layer check, judges that CON's acknowledgement."""
    if step.answers is None:
        return None
    seq = run.sent.get(step.answers)
    if seq is None and step.answers in run.sent_unnumbered:
        seq = await _numbered(run, *run.sent_unnumbered[step.answers])
    if seq is None:
        raise TemplateError(f"answers: step {step.answers} sent nothing")
    d = run.recorder.datagrams_at(seq)
    if len(d.data) < 4:
        raise TemplateError(f"answers: step {step.answers} sent no CON")
    mid = (d.data[2] << 8) | d.data[3]
    run.judged_cons.add((d.src, mid))
    run.sync()
    con = run.inbox.tester_cons.get((d.src, d.dst, mid))
    return (con.datagram.seq if con is not None else seq), seq


async def _numbered(run: CaseRun, src: Address, dst: Address, data: bytes) -> int | None:
    """The capture number of a datagram the tester sent unnumbered (sniff mode): the latest
    recorded with these addresses and bytes, once the sniffer has delivered what it saw."""
    await run.session.flush_capture()
    run.sync()
    for d in reversed(run.recorder.datagrams):
        if d.src == src and d.dst == dst and d.data == data:
            return d.seq
    return None


def _mid_of(run: CaseRun, seq: int) -> str:
    """``mid=0x1234 `` of a datagram the tester sent, as it went on the wire."""
    data = run.recorder.datagrams_at(seq).data
    return f"mid=0x{(data[2] << 8) | data[3]:04x} " if len(data) >= 4 else ""


def _judge_should(run: CaseRun, step: ExpectStep, message: CoapMessage, r: StepResult) -> None:
    """Fields the step says SHOULD hold: a mismatch is a deviation recorded on a passing step."""
    assert step.should is not None
    why = str(step.should.get("why") or "SHOULD")
    fields = {k: v for k, v in step.should.items() if k != "why"}
    soft = [
        replace(f, field=f"{f.field} (should)")
        for f in pointed(judge(message, fields, run.bindings), message, fields, run)
    ]
    r.findings.extend(soft)
    deviations = [f for f in soft if not f.ok]
    if deviations:
        r.deviations.extend(deviations)
        r.reason += f"; deviation ({why}): {_mismatch(deviations)}"


SHORT = 40  # a value up to this long is shown in full next to where it differs


def mismatch_text(f: Finding) -> str:
    """One failed finding for a reason: a long value by where it first differs, a short one in
    full (with where it differs, when known)."""
    if not f.difference:
        return f"{f.field}: expected {f.expected}, found {f.found}"
    if len(f.expected) > SHORT or len(f.found) > SHORT:
        return f"{f.field}: {f.difference}"
    return f"{f.field}: expected {f.expected}, found {f.found} ({f.difference})"


def _mismatch(findings: list[Finding]) -> str:
    return "; ".join(mismatch_text(f) for f in findings if not f.ok)


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
            run.link_changed(step.client, step.op, step.index)
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


def _contains(found: Any, want: Any) -> bool:
    """read_configuration: the fields the expectation names hold (others are the SUT's own business,
    e.g. what stays in force after a 4.03)."""
    if isinstance(want, dict) and isinstance(found, dict):
        return all(k in found and found[k] == v for k, v in want.items())
    return bool(found == want)


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
        ok = want is None or _contains(found, want)
        if ok or loop.time() >= deadline:
            break
        await asyncio.sleep(0.01)
    where = "" if ok else _configuration_difference(want, found)
    return StepResult(
        step.index,
        "upper",
        step.line,
        Verdict.PASS if ok else Verdict.FAIL,
        f"read_configuration: expected {want!r}, found {found!r}" + (f"; first difference {where}" if where else ""),
        findings=[Finding("applied configuration", repr(want), repr(found), ok, difference=where)],
    )


def _configuration_difference(want: Any, found: Any) -> str:
    """Where an applied configuration differs from the fields the expectation names."""
    if isinstance(want, dict) and isinstance(found, dict):
        found = {k: found[k] for k in want if k in found}
    return difference.json_difference(want, found) or ""


# -- absence ------------------------------------------------------------------------------------


def absence_wait_s(run: CaseRun, step: ExpectNothingStep) -> float:
    """The quiet time before the positive control is sent."""
    return (step.window_ms or run.profile.timers.absence_window_ms) / 1000


async def absence(run: CaseRun, step: ExpectNothingStep) -> StepResult:
    watched = tuple(run.addresses.address(n) for n in step.at)
    start_seq, start_time, stimulus_message = run.stimulus_mark()
    option = run.profile.recipient_option
    stimulus = Signature.of(stimulus_message, option)
    control_sig = Signature()
    await asyncio.sleep(absence_wait_s(run, step))
    failed: StepResult | None = None
    last: StepResult | None = None
    for c in step.control:
        if isinstance(c, ProbeStep):
            r = await liveness.probe(run, c)
        elif isinstance(c, ExpectStep):
            watches = run.addresses.address(c.at) in watched
            r = await expect(run, c, Control(stimulus, control_sig, watches))
            control_sig |= expectation_signature(run, c)
        elif isinstance(c, SendStep):
            r = await send(run, c)
            control_sig |= Signature.of(run.last_sent, option)
        else:
            r = await upper(run, c)
        last = r
        if r.verdict is not Verdict.PASS:
            failed = r
            if isinstance(c, ProbeStep):
                # A SUT that died on the stimulus: the silence proves nothing (the absence is
                # inconclusive), and the failed probe is a check of its own that fails the case.
                if run.case.strength == "should":
                    soften(r, "the case's requirement is a SHOULD")
                run.results.append(r)
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
    run.absences.append(Absence(result, watched, tuple(step.at), start_seq, start_time, stimulus, control_sig))
    return result
