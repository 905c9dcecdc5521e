"""Faulty variants of the reference Constrained UE (TS 24.538 6.2.2.2), each breaking one requirement.

Like :mod:`sut_adapters.faulty` for the relay: the self-test runs the constrained-UE suite against
each and checks that exactly the cases of the broken requirement fail.
"""

from __future__ import annotations

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


VARIANTS: dict[str, tuple[type[ReferenceConstrainedUE], str]] = {
    "cue-applies-others": (AppliesOthers, "REQ-CUE-RSP-2"),
    "cue-wrong-port": (WrongPort, "REQ-CUE-REQ-1"),
    "cue-no-recipient": (NoRecipient, "REQ-CUE-REQ-1"),
    "cue-ignores-403": (Ignores403, "REQ-CUE-RSP-1"),
    "cue-also-direct-to-scms": (AlsoDirectToScms, "REQ-CUE-REQ-1"),
}
