"""Faulty variants of the reference Constrained UE (TS 24.538 6.2.2.2), each breaking one requirement.

Like :mod:`sut_adapters.faulty` for the relay: the self-test runs the constrained-UE suite against
each and checks that exactly the cases of the broken requirement fail.
"""

from __future__ import annotations

import asyncio
import json
import os

from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType
from sut_adapters.reference.coapnode import CoapNode
from sut_adapters.reference.cue import Option, ReferenceConstrainedUE


class AppliesOthers(ReferenceConstrainedUE):
    """Breaks REQ-CUE-RSP-2: handles a response whatever client its recipient option names."""

    def addressed_to_me(self, msg: CoapMessage) -> bool:
        return True


class WrongPort(ReferenceConstrainedUE):
    """Breaks REQ-CUE-REQ-1: sends its request from the profile's alt_port, not from 65401."""

    alt: CoapNode | None = None

    async def start(self) -> None:
        await super().start()
        # Same host, other port: only the source port of the request is wrong.
        self.alt = CoapNode(
            "cue-alt", (self.address[0], self.profile.alt_port), tuning=self.env.tuning, on_message=self.on_message
        )
        await self.alt.start()

    async def stop(self) -> None:
        if self.alt is not None:
            alt, self.alt = self.alt, None
            await alt.stop()
        await super().stop()

    def sending_node(self) -> CoapNode:
        assert self.alt is not None
        return self.alt


class NoRecipient(ReferenceConstrainedUE):
    """Breaks REQ-CUE-REQ-1: omits the recipient option (the SCM-S address) from its request."""

    def request_options(self) -> tuple[Option, ...]:
        return tuple(o for o in super().request_options() if o[0] != self.profile.recipient_option)


class Ignores403(ReferenceConstrainedUE):
    """Breaks REQ-CUE-RSP-1: does not record a 4.03 Forbidden answer."""

    def handles_code(self, code: int) -> bool:
        return code != Code.FORBIDDEN and super().handles_code(code)


class AlsoDirectToScms(ReferenceConstrainedUE):
    """Breaks REQ-CUE-REQ-1: sends its configuration GET through the relay and, besides, straight to
    the SCM-S (a Constrained UE cannot reach the network itself: 6.2.2.2 goes through the relay)."""

    def request_configuration(self) -> None:
        super().request_configuration()
        assert self.token is not None
        request = CoapMessage(MessageType.CON, Code.GET, 0, self.token, self.request_options())
        self.sending_node().send(request, self.env.scm_s)
        self.note("(faulty) sent the configuration GET straight to the SCM-S too")


class AppliesInvalid(ReferenceConstrainedUE):
    """Breaks REQ-CUE-RSP-1: applies any JSON document of a 2.05 without checking it against the
    configuration schema (the reference reports such a document as handled and invalid)."""

    def apply_document(self, msg: CoapMessage, what: str) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            super().apply_document(msg, what)
            return
        self.state = {"status": "2.05", "configuration": doc}
        self.token = None
        self.note(f"(faulty) applied configuration from {what} without validating it")


class RepeatsGet(ReferenceConstrainedUE):
    """Breaks REQ-CUE-REQ-1: 100 ms after its configuration GET it sends the same request again (a
    new CON, new Message ID, same token), whatever the answer: after the 2.05 it handled, no
    procedure calls for that request (6.2.2.2 / 6.2.1.2: one request, one response)."""

    REPEAT_S = 0.1

    def request_configuration(self) -> None:
        super().request_configuration()
        token = self.token
        assert token is not None

        def repeat() -> None:
            if self.node is None:
                return
            request = CoapMessage(MessageType.CON, Code.GET, 0, token, self.request_options())
            self.sending_node().send(request, self.env.relay)
            self.note(f"(faulty) sent the configuration GET token={token.hex()} again")

        asyncio.get_running_loop().call_later(self.REPEAT_S, repeat)


class DirectToScms(ReferenceConstrainedUE):
    """Breaks REQ-CUE-REQ-1: sends its configuration GET straight to the SCM-S and not to the relay
    (6.2.2.2: the Constrained UE reaches the SCM-S through the Relay UE; it cannot connect to the
    network itself)."""

    def request_configuration(self) -> None:
        self.token = os.urandom(4)
        request = CoapMessage(MessageType.CON, Code.GET, 0, self.token, self.request_options())
        self.sending_node().send(request, self.env.scm_s)
        self.note(f"(faulty) sent the configuration GET token={self.token.hex()} straight to the SCM-S")


VARIANTS: dict[str, tuple[type[ReferenceConstrainedUE], str]] = {
    "cue-applies-others": (AppliesOthers, "REQ-CUE-RSP-2"),
    "cue-wrong-port": (WrongPort, "REQ-CUE-REQ-1"),
    "cue-no-recipient": (NoRecipient, "REQ-CUE-REQ-1"),
    "cue-ignores-403": (Ignores403, "REQ-CUE-RSP-1"),
    "cue-also-direct-to-scms": (AlsoDirectToScms, "REQ-CUE-REQ-1"),
    "cue-applies-invalid": (AppliesInvalid, "REQ-CUE-RSP-1"),
    "cue-repeats-get": (RepeatsGet, "REQ-CUE-REQ-1"),
    "cue-direct-to-scms": (DirectToScms, "REQ-CUE-REQ-1"),
}
