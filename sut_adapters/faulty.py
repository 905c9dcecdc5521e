"""Faulty variants of the reference Relay UE, each breaking exactly one requirement.

They exist to prove that every test case can fail: the self-test runs the suite against each and
checks that the cases of the broken requirement fail and no other case does. Select one with
``--sut faulty:NAME``.
"""

from __future__ import annotations

import dataclasses
import json

from msgin5g_conformance.coapnode import CoapNode
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType

from .base import ClientInfo
from .reference.relay import ReferenceRelay


class RelaysWithoutLink(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2: relays to any known client, link or not."""

    def link_for(self, recipient: str) -> ClientInfo | None:
        return self.links.get(recipient) or self.env.client_lookup(recipient)


class KeepsReleasedLink(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2 (released link): never forgets a link."""

    def release_link(self, client: ClientInfo) -> None:
        self.note(f"(faulty) ignoring release of {client.address}")


class Drops404(ReferenceRelay):
    """Breaks REQ-RELAY-DL-1: does not relay 4.04 Not Found."""

    def relays_code(self, code: int) -> bool:
        return code != Code.NOT_FOUND and super().relays_code(code)


class RewritesPayload(ReferenceRelay):
    """Breaks REQ-RELAY-TERM-1: re-serialises a JSON payload (pretty-printed) when relaying downlink."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        try:
            payload = json.dumps(json.loads(copy.payload), indent=1).encode()
        except ValueError:
            payload = copy.payload + b" "
        return dataclasses.replace(copy, payload=payload)


class IgnoresPort(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2 (port condition): relays responses from any source port."""

    def port_ok(self, src: Address) -> bool:
        return True


class WrongClient(ReferenceRelay):
    """Breaks REQ-RELAY-DL-1: delivers to the linked client established first, whoever is named."""

    def link_for(self, recipient: str) -> ClientInfo | None:
        if recipient not in self.links:
            return None
        return next(iter(self.links.values()))


class NoUplink(ReferenceRelay):
    """Breaks REQ-RELAY-UL-1: never relays the configuration GET uplink."""

    def forward_uplink(self, msg: CoapMessage) -> None:
        self.note("(faulty) swallowing uplink GET")


class RelaysWithoutRecipient(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2 (missing recipient): a response without the option goes to a linked client."""

    def recipient(self, msg: CoapMessage) -> str | None:
        found = super().recipient(msg)
        if found is None and not msg.option_values(self.profile.recipient_option) and self.links:
            return next(iter(self.links))
        return found


class EchoesUplink(ReferenceRelay):
    """Breaks REQ-RELAY-DL-1 (downlink only): also sends each relayed response back to the SCM-S."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        super().forward_downlink(msg, client)
        assert self.uu is not None
        self.uu.send(self.downlink_copy(msg), self.env.scm_s)


class DropsContentFormat(ReferenceRelay):
    """Breaks REQ-RELAY-TERM-1: strips the Content-Format option when relaying downlink."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        return dataclasses.replace(copy, options=tuple(o for o in copy.options if o[0] != 12))


class IgnoresCriticalOption(ReferenceRelay):
    """Breaks REQ-COAP-CRIT-1: treats unknown critical options as elective."""

    def unknown_critical(self, msg: CoapMessage) -> list[int]:
        return []


class SendsGarbage(ReferenceRelay):
    """Robustness: relays a truncated datagram instead of the response."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        assert self.pc5 is not None
        self.pc5.send_raw(self.downlink_copy(msg).encode()[:3], client.endpoint)
        self.note("(faulty) sent 3 bytes of garbage")


VARIANTS: dict[str, tuple[type[ReferenceRelay], str]] = {
    "relays-without-link": (RelaysWithoutLink, "REQ-RELAY-DL-2"),
    "keeps-released-link": (KeepsReleasedLink, "REQ-RELAY-DL-2"),
    "drops-404": (Drops404, "REQ-RELAY-DL-1"),
    "rewrites-payload": (RewritesPayload, "REQ-RELAY-TERM-1"),
    "ignores-port": (IgnoresPort, "REQ-RELAY-DL-2"),
    "wrong-client": (WrongClient, "REQ-RELAY-DL-1"),
    "no-uplink": (NoUplink, "REQ-RELAY-UL-1"),
    "relays-without-recipient": (RelaysWithoutRecipient, "REQ-RELAY-DL-2"),
    "echoes-uplink": (EchoesUplink, "REQ-RELAY-DL-1"),
    "drops-content-format": (DropsContentFormat, "REQ-RELAY-TERM-1"),
    "ignores-critical-option": (IgnoresCriticalOption, "REQ-COAP-CRIT-1"),
}


class Silent(ReferenceRelay):
    """Robustness: a SUT that never answers anything (no relaying, no acknowledgements)."""

    async def start(self) -> None:
        await super().start()
        for node in (self.pc5, self.uu):
            if node is not None:
                node.on_message = None
                node.ack_requests = False

    def on_pc5(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        return

    def on_uu(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        return


class Floods(ReferenceRelay):
    """Robustness: answers every relayed response with a flood of copies (bounded, 3,000)."""

    FLOOD = 3000

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        assert self.pc5 is not None
        copy = dataclasses.replace(self.downlink_copy(msg), mtype=MessageType.NON)
        for i in range(self.FLOOD):  # distinct Message IDs: not retransmissions, new messages
            self.pc5.send_raw(dataclasses.replace(copy, mid=(msg.mid + 1 + i) & 0xFFFF).encode(), client.endpoint)
        self.note(f"(faulty) flooded {self.FLOOD} copies")


# Not one requirement each: these check that a misbehaving SUT gives fail/inconclusive with a
# reason, in bounded time, and that the rest of the suite still runs.
ROBUSTNESS: dict[str, tuple[type[ReferenceRelay], str]] = {
    "sends-garbage": (SendsGarbage, "robustness"),
    "silent": (Silent, "robustness"),
    "floods": (Floods, "robustness"),
}
