"""What every analysis does first with a frame: parse it strictly, or judge why it cannot be."""

from __future__ import annotations

from msgin5g_conformance.analyze.capture import Frame
from msgin5g_conformance.analyze.checks import FORMAT, Judgement
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.wire import codec


def first_look(f: Frame, from_sut: bool, who: str, topology: str) -> codec.CoapMessage | Judgement | None:
    """The frame's CoAP message; else a judgement (a malformed datagram from the SUT fails
    REQ-COAP-MSG-4; a frame the capture cut short is inconclusive) or None (a malformed datagram
    of another party is not the SUT's doing)."""
    try:
        msg = codec.parse(f.payload)
    except codec.MalformedDatagram as exc:
        if not from_sut:
            return None
        why = f"not a well-formed CoAP message: {exc}"
        return Judgement(f"datagram from {who}", Verdict.FAIL, why, FORMAT, [f.number], f.when, topology=topology)
    if f.truncated:
        why = "the capture cut this frame short"
        return Judgement("truncated frame", Verdict.INCONCLUSIVE, why, (), [f.number], f.when, topology=topology)
    return msg
