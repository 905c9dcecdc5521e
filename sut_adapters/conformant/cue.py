"""Conformant variants of the reference Constrained UE (TS 24.538 6.2.2.2): other legal choices."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber
from sut_adapters.reference.common import RoleContext
from sut_adapters.reference.cue import Option, ReferenceConstrainedUE


class SendsVendorType(ReferenceConstrainedUE):
    """Adds ue-vendor and ue-type to its configuration GET: the VAL UE information of the request
    is optional (TS 23.434 table 11.3.2.1-1: VAL UE Information O), and 6.2.2.x sets those
    parameters "if included"."""

    def request_options(self) -> tuple[Option, ...]:
        p = self.profile
        extra = [
            (OptionNumber.URI_QUERY, f"{p.query_vendor}=acme".encode()),
            (OptionNumber.URI_QUERY, f"{p.query_type}=meter".encode()),
        ]
        return tuple(sorted([*super().request_options(), *extra], key=lambda o: o[0]))


class ResetsOthers(ReferenceConstrainedUE):
    """Rejects a CON response addressed to another client with a Reset instead of acknowledging it:
    RFC 7252 4.2 lets a recipient reject a message it lacks context to process."""

    def handle_response(self, msg: CoapMessage, src: Address) -> None:
        if not self.addressed_to_me(msg) and self.node is not None:
            self.node.reject_current = True
        super().handle_response(msg, src)


class KeepsConfiguration(ReferenceConstrainedUE):
    """Has a factory configuration in force and keeps it after a 4.03 or 4.04: 6.2.2.2 asks the UE to
    handle the response per 6.2.1.2, not to drop a configuration it has."""

    FACTORY: ClassVar[dict[str, Any]] = {
        "MSGin5G-Server-address": "coap://factory.example:65401",
        "MSGin5G-UE-Service-id": "svc-factory",
    }

    def __init__(self, env: RoleContext) -> None:
        super().__init__(env)
        self.state = {"status": "none", "configuration": dict(self.FACTORY)}


class NonRequest(ReferenceConstrainedUE):
    """Sends its configuration GET as a Non-confirmable message: RFC 7252 2.1 and 5.2.3 let a request
    be carried in a NON message, and neither 6.2.2.2 nor 6.2.1.2 asks for a CON. Nothing is
    retransmitted (RFC 7252 4.3), so the one request and its answer are all the traffic."""

    def request_configuration(self) -> None:
        self.token = os.urandom(4)
        request = CoapMessage(MessageType.NON, Code.GET, 0, self.token, self.request_options())
        self.sending_node().send(request, self.env.relay)
        self.note(f"sent configuration GET (NON) token={self.token.hex()} to the relay at {self.env.relay}")


VARIANTS: dict[str, tuple[type[ReferenceConstrainedUE], str]] = {
    "cue-sends-vendor-type": (
        SendsVendorType,
        "TS 23.434 table 11.3.2.1-1: VAL UE information is optional; "
        "TS 24.538 6.2.2.x: ue-vendor/ue-type 'if included'",
    ),
    "cue-resets-others": (ResetsOthers, "RFC 7252 4.2: a CON the recipient lacks context for may be rejected (RST)"),
    "cue-keeps-configuration": (
        KeepsConfiguration,
        "TS 24.538 6.2.2.2: the UE handles a 4.03/4.04 per 6.2.1.2; nothing makes it drop the configuration in force",
    ),
    "cue-non-request": (
        NonRequest,
        "RFC 7252 2.1, 5.2.3: a request may be carried in a NON message; TS 24.538 6.2.2.2 names no message type",
    ),
}
