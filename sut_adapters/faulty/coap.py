"""Faulty variants of the reference SUT's CoAP message layer, each breaking one rule of RFC 7252.

Each variant is one mixin over :class:`~sut_adapters.reference.common.EndpointRules` (the rules
every reference endpoint applies to each datagram before aiocoap, ``screen``), applied to all
three reference roles at once, so that ``--sut faulty:NAME`` runs it as a Relay UE, a Gateway UE
or a Constrained UE. The CoAP suite (``testcases/coap/``) must fail exactly the cases of the rule
a variant breaks, in every role (``sut_adapters/faulty/expected/coap.py``); a SHOULD
(RFC 7252 4.5) is broken as a recorded deviation, never a fail.
"""

from __future__ import annotations

import asyncio
from typing import Any

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType
from sut_adapters.reference.coapnode import CoapNode
from sut_adapters.reference.common import EndpointRules
from sut_adapters.reference.cue import ReferenceConstrainedUE
from sut_adapters.reference.gateway import ReferenceGateway
from sut_adapters.reference.relay import ReferenceRelay

# What codec.parse calls a message format error of RFC 7252 3 / 3.1 (not a reserved class, an
# Empty NON, a non-empty RST or an ACK with a request, which are 4.2 / 4.3 matters).
_FORMAT_ERRORS = ("token length", "nibble 15", "payload marker", "truncated", "exceeds")


def _header(data: bytes) -> tuple[MessageType, int, int]:
    """Type, code and Message ID from a version-1 header (at least 4 bytes)."""
    return MessageType((data[0] >> 4) & 3), data[1], (data[2] << 8) | data[3]


def _empty(node: CoapNode, mtype: MessageType, mid: int, to: Address) -> None:
    node.send_raw(codec.encode(CoapMessage(mtype, 0, mid)), to)


def _parse_error(data: bytes) -> str | None:
    try:
        codec.parse(data)
    except codec.MalformedDatagram as exc:
        return str(exc)
    return None


class AnswersOtherVersions(EndpointRules):
    """Breaks REQ-COAP-MSG-5 (RFC 7252 3): answers a message of version 2 with a Reset instead of
    ignoring it silently."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 != 1:
            _empty(node, MessageType.RST, (data[2] << 8) | data[3], src)
            return True
        return super().screen(node, data, src)


class AcksPing(EndpointRules):
    """Breaks REQ-COAP-MSG-6 (RFC 7252 4.2, 4.3): acknowledges an Empty CON with an empty ACK
    instead of rejecting it with a Reset (a liveness probe still takes an ACK as alive)."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) == 4 and data[0] >> 6 == 1 and _header(data)[:2] == (MessageType.CON, 0):
            _empty(node, MessageType.ACK, _header(data)[2], src)
            return True
        return super().screen(node, data, src)


class AcksReservedClass(EndpointRules):
    """Breaks REQ-COAP-MSG-7 (RFC 7252 4.2): acknowledges a CON with a reserved code class
    (1, 6, 7) instead of rejecting it."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1:
            mtype, code, mid = _header(data)
            if mtype == MessageType.CON and code >> 5 in (1, 6, 7):
                _empty(node, MessageType.ACK, mid, src)
                return True
        return super().screen(node, data, src)


class AcksUnexpectedResponse(EndpointRules):
    """Breaks REQ-COAP-MSG-7 (RFC 7252 5.3.2, 4.2): takes a CON response on an endpoint that
    expects none (the PC5 side) and acknowledges it instead of rejecting it."""

    def takes_responses(self, node: CoapNode) -> bool:
        return True


class AcksBadNon(EndpointRules):
    """Breaks REQ-COAP-MSG-8 (RFC 7252 4.3): acknowledges an Empty NON or a NON with a reserved
    code class ("A Non-confirmable message MUST NOT be acknowledged")."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1:
            mtype, code, mid = _header(data)
            if mtype == MessageType.NON and (code == 0 or code >> 5 in (1, 6, 7)):
                _empty(node, MessageType.ACK, mid, src)
                return True
        return super().screen(node, data, src)


class ResetsAckAndRst(EndpointRules):
    """Breaks REQ-COAP-MSG-9 (RFC 7252 4.2): answers an ACK carrying a request, or a Reset that is
    not Empty, with a Reset instead of silently ignoring it."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1:
            mtype, _, mid = _header(data)
            if mtype in (MessageType.ACK, MessageType.RST) and _parse_error(data) is not None:
                _empty(node, MessageType.RST, mid, src)
                return True
        return super().screen(node, data, src)


class AcksLongToken(EndpointRules):
    """Breaks REQ-COAP-FMT-1 (RFC 7252 3): takes TKL 9-15 as a token length, as aiocoap 0.4.17
    does, and acknowledges such a CON instead of rejecting it."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1 and data[0] & 0x0F > 8:
            mtype, _, mid = _header(data)
            if mtype == MessageType.CON:
                _empty(node, MessageType.ACK, mid, src)
            return True
        return super().screen(node, data, src)


class DiesOnBadNibble(EndpointRules):
    """Breaks REQ-COAP-FMT-1 (RFC 7252 3.1): an option nibble of 15 makes the whole SUT stop (every
    endpoint closes), so the liveness probe after it fails."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1 and "nibble 15" in (_parse_error(data) or ""):
            self.note("option nibble 15: stopping")
            stop: Any = getattr(self, "stop")  # noqa: B009 (every reference role has one)
            asyncio.get_running_loop().create_task(stop())
            return True
        return super().screen(node, data, src)


class AnswersMalformedNon(EndpointRules):
    """Breaks REQ-COAP-FMT-1 (RFC 7252 3, 4.3): answers a NON with a message format error with a
    NON 4.00 Bad Request instead of ignoring it."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1 and _header(data)[0] == MessageType.NON:
            why = _parse_error(data)
            if why is not None and any(k in why for k in _FORMAT_ERRORS):
                answer = CoapMessage(MessageType.NON, Code.BAD_REQUEST, _header(data)[2] ^ 0x5A5A, b"", (), b"bad")
                node.send_raw(codec.encode(answer), src)
                return True
        return super().screen(node, data, src)


class IgnoresCriticalRequest(EndpointRules):
    """Breaks REQ-COAP-CRIT-1 (RFC 7252 5.4.1): takes a request with an unrecognised critical
    option without answering 4.02 (it is acknowledged and dropped)."""

    def reject_bad_option(self, node: CoapNode, msg: CoapMessage, src: Address, numbers: list[int]) -> None:
        self.note(f"ignored unrecognised critical option {numbers[0]}")


class AcksCriticalResponse(EndpointRules):
    """Breaks REQ-COAP-CRIT-2 (RFC 7252 5.4.1): does not reject a CON response with an
    unrecognised critical option: it is acknowledged (and then dropped by the role)."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1 and _parse_error(data) is None:
            msg = codec.parse(data)
            response = msg.mtype == MessageType.CON and msg.code >> 5 in (2, 4, 5)
            if response and self.unknown_critical(msg) and self.takes_responses(node):
                return False  # aiocoap acknowledges it
        return super().screen(node, data, src)


class AnswersCriticalNonResponse(EndpointRules):
    """Breaks REQ-COAP-CRIT-2 (RFC 7252 5.4.1, 4.3): answers a NON response with an unrecognised
    critical option with 4.02 Bad Option (the rule for requests) instead of ignoring it."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        if len(data) >= 4 and data[0] >> 6 == 1 and _parse_error(data) is None:
            msg = codec.parse(data)
            if msg.mtype == MessageType.NON and msg.code >> 5 in (2, 4, 5) and self.unknown_critical(msg):
                answer = CoapMessage(MessageType.NON, Code.BAD_OPTION, msg.mid ^ 0x5A5A, msg.token, (), b"bad option")
                node.send_raw(codec.encode(answer), src)
                return True
        return super().screen(node, data, src)


class IgnoresDuplicates(EndpointRules):
    """Breaks REQ-COAP-MSG-10 (RFC 7252 4.5, a SHOULD): a copy of a CON it has seen gets no answer
    at all, instead of the same ACK or Reset again."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        seen: set[tuple[Address, Address, int]] = self.__dict__.setdefault("_coap_seen", set())
        if len(data) >= 4 and data[0] >> 6 == 1 and _header(data)[0] == MessageType.CON:
            key = (node.address, src, _header(data)[2])
            if key in seen:
                return True
            seen.add(key)
        return super().screen(node, data, src)


class ProcessesDuplicates(EndpointRules):
    """Breaks REQ-COAP-MSG-10 (RFC 7252 4.5, a SHOULD): a copy of a CON request it has seen is
    acknowledged as it should be, and processed once more."""

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        seen: set[tuple[Address, Address, int]] = self.__dict__.setdefault("_coap_seen", set())
        if len(data) >= 4 and data[0] >> 6 == 1 and _parse_error(data) is None:
            msg = codec.parse(data)
            key = (node.address, src, msg.mid)
            if msg.mtype == MessageType.CON and 0 < msg.code < 32:
                if key in seen and node.on_message is not None:
                    node.on_message(node, msg, src)  # processed again (aiocoap repeats the ACK)
                seen.add(key)
        return super().screen(node, data, src)


def _for_every_role(rule: type[EndpointRules]) -> dict[str, type[Any]]:
    """The rule applied to each reference role: ReferenceAdapter keyword -> class."""
    out: dict[str, type[Any]] = {}
    for keyword, base in (
        ("relay_class", ReferenceRelay),
        ("gateway_class", ReferenceGateway),
        ("cue_class", ReferenceConstrainedUE),
    ):
        out[keyword] = type(f"{rule.__name__}{base.__name__.removeprefix('Reference')}", (rule, base), {})
    return out


# name -> (the rule's class, the requirement it breaks)
RULES: dict[str, tuple[type[EndpointRules], str]] = {
    "coap-answers-version-2": (AnswersOtherVersions, "REQ-COAP-MSG-5"),
    "coap-acks-ping": (AcksPing, "REQ-COAP-MSG-6"),
    "coap-acks-reserved-class": (AcksReservedClass, "REQ-COAP-MSG-7"),
    "coap-acks-unexpected-response": (AcksUnexpectedResponse, "REQ-COAP-MSG-7"),
    "coap-acks-bad-non": (AcksBadNon, "REQ-COAP-MSG-8"),
    "coap-resets-ack-and-rst": (ResetsAckAndRst, "REQ-COAP-MSG-9"),
    "coap-acks-tkl-9": (AcksLongToken, "REQ-COAP-FMT-1"),
    "coap-dies-on-bad-nibble": (DiesOnBadNibble, "REQ-COAP-FMT-1"),
    "coap-answers-malformed-non": (AnswersMalformedNon, "REQ-COAP-FMT-1"),
    "coap-ignores-critical-request": (IgnoresCriticalRequest, "REQ-COAP-CRIT-1"),
    "coap-acks-critical-response": (AcksCriticalResponse, "REQ-COAP-CRIT-2"),
    "coap-answers-critical-non-response": (AnswersCriticalNonResponse, "REQ-COAP-CRIT-2"),
    "coap-ignores-duplicates": (IgnoresDuplicates, "REQ-COAP-MSG-10"),
    "coap-processes-duplicates": (ProcessesDuplicates, "REQ-COAP-MSG-10"),
}

# name -> (ReferenceAdapter keyword -> class, for every role; the requirement it breaks)
VARIANTS: dict[str, tuple[dict[str, type[Any]], str]] = {
    name: (_for_every_role(rule), requirement) for name, (rule, requirement) in RULES.items()
}
