"""Faulty variants of the reference Relay UE, each breaking exactly one requirement.

They exist to prove that every test case can fail: the self-test runs the suite against each and
checks that the cases of the broken requirement fail and no other case does. Select one with
``--sut faulty:NAME``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from typing import Any

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber
from sut_adapters.base import ClientInfo
from sut_adapters.reference.coapnode import CoapNode
from sut_adapters.reference.relay import ReferenceRelay


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


class LateWithoutLink(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2, late: relays a response for a client without a link DELAY_S after it
    arrived (a discard proved for only a few tens of milliseconds misses it)."""

    DELAY_S = 0.08

    def link_for(self, recipient: str) -> ClientInfo | None:
        return self.links.get(recipient)

    def handle_downlink(self, msg: CoapMessage, src: Address) -> None:
        recipient = self.recipient(msg)
        if recipient is not None and recipient not in self.links:
            client = self.env.client_lookup(recipient)
            if client is not None:
                self.note(f"(faulty) relaying to unlinked {recipient!r} in {self.DELAY_S * 1000:.0f} ms")
                asyncio.get_running_loop().call_later(self.DELAY_S, self._late, msg, client)
                return
        super().handle_downlink(msg, src)

    def _late(self, msg: CoapMessage, client: ClientInfo) -> None:
        if self.pc5 is not None:
            self.forward_downlink(msg, client)


class LateWithoutLink250(LateWithoutLink):
    """Breaks REQ-RELAY-DL-2, later still: 250 ms after the response arrived."""

    DELAY_S = 0.25


def unused_address(own: Address) -> Address:
    """An address of the case's range that no node owns (host 200 of the same /24)."""
    return (own[0].rsplit(".", 1)[0] + ".200", own[1])


class SendsToUnused(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2 where no case looks: every response it should discard goes to an
    address of the case's range that nobody owns."""

    def handle_downlink(self, msg: CoapMessage, src: Address) -> None:
        recipient = self.recipient(msg)
        if self.relays_code(msg.code) and (recipient is None or self.link_for(recipient) is None):
            assert self.pc5 is not None
            self.pc5.send(self.downlink_copy(msg), unused_address(self.pc5_address))
            self.note(f"(faulty) sent a response for {recipient!r} to an unused address")
            return
        super().handle_downlink(msg, src)


class NeverAcks(ReferenceRelay):
    """Breaks REQ-COAP-MSG-1: never acknowledges a Confirmable message it does not answer at once
    (its empty ACKs never leave; a piggybacked response still does, as it is the acknowledgement)."""

    async def start(self) -> None:
        await super().start()
        for node in (self.pc5, self.uu):
            assert node is not None
            transport = node._mi.transport
            send = transport.sendmsg

            def sendmsg(data: bytes, anc: Any, flags: int, address: Any, send: Any = send) -> Any:
                if len(data) == 4 and (data[0] >> 4) & 3 == MessageType.ACK:
                    return None  # dropped on purpose
                return send(data, anc, flags, address)

            transport.sendmsg = sendmsg


class RetransmitsForever(ReferenceRelay):
    """Breaks REQ-COAP-MSG-2: sends every downlink CON again every 40 ms, acknowledged or not
    (bounded: 12 copies)."""

    COPIES = 12
    EVERY_S = 0.04

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        copy = self.downlink_copy(msg)
        if copy.mtype != MessageType.CON:
            super().forward_downlink(msg, client)
            return
        data = dataclasses.replace(copy, mid=int.from_bytes(os.urandom(2), "big")).encode()
        loop = asyncio.get_running_loop()
        for i in range(self.COPIES):
            loop.call_later(i * self.EVERY_S, self._raw, data, client.endpoint)
        self.note(f"(faulty) sending {self.COPIES} copies of {copy.summary()}")

    def _raw(self, data: bytes, to: Address) -> None:
        if self.pc5 is not None:
            self.pc5.send_raw(data, to)


class LateDuplicate(ReferenceRelay):
    """Breaks REQ-RELAY-DL-1: relays every downlink response a second time 150 ms later (a late
    datagram that a harness without case isolation judges in the next case)."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        super().forward_downlink(msg, client)
        asyncio.get_running_loop().call_later(0.15, self._again, msg, client)

    def _again(self, msg: CoapMessage, client: ClientInfo) -> None:
        if self.pc5 is not None:
            self.pc5.send(self.downlink_copy(msg), client.endpoint)


class AddsCriticalOption(ReferenceRelay):
    """Breaks REQ-RELAY-TERM-1: adds an option of its own, critical and unknown to everyone (65011),
    to every response it relays; a conformant client must reject such a response (RFC 7252 5.4.1)."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        return dataclasses.replace(copy, options=tuple(sorted((*copy.options, (65011, b"relay")), key=lambda o: o[0])))


class LongContentFormat(ReferenceRelay):
    """Breaks REQ-RELAY-TERM-1: re-encodes Content-Format in 3 bytes (RFC 7252 5.10: 0-2), which a
    receiver treats as an unrecognised option (5.4.3) and so loses the format."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        copy = self.downlink_copy(msg)
        options = tuple((n, v.rjust(3, b"\0") if n == OptionNumber.CONTENT_FORMAT else v) for n, v in copy.options)
        if options == copy.options:
            super().forward_downlink(msg, client)
            return
        assert self.pc5 is not None  # sent raw: the CoAP library would re-encode the value minimally
        self.pc5.send_raw(
            codec.encode(dataclasses.replace(copy, mtype=MessageType.NON, options=options)), client.endpoint
        )


class AckTypeResponses(ReferenceRelay):
    """Breaks REQ-RELAY-DL-1: delivers each response as an ACK with a Message ID of its own, which
    answers nothing the client sent: no client can match it (RFC 7252 4.2, 5.2.1)."""

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        assert self.pc5 is not None
        ack = dataclasses.replace(
            self.downlink_copy(msg), mtype=MessageType.ACK, mid=int.from_bytes(os.urandom(2), "big")
        )
        self.pc5.send_raw(codec.encode(ack), client.endpoint)


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
    "late-without-link-80ms": (LateWithoutLink, "REQ-RELAY-DL-2"),
    "late-without-link-250ms": (LateWithoutLink250, "REQ-RELAY-DL-2"),
    "sends-to-unused-address": (SendsToUnused, "REQ-RELAY-DL-2"),
    "never-acks": (NeverAcks, "REQ-COAP-MSG-1"),
    "retransmits-forever": (RetransmitsForever, "REQ-COAP-MSG-2"),
    "late-duplicate": (LateDuplicate, "REQ-RELAY-DL-1"),
    "adds-critical-option": (AddsCriticalOption, "REQ-RELAY-TERM-1"),
    "long-content-format": (LongContentFormat, "REQ-RELAY-TERM-1"),
    "ack-type-responses": (AckTypeResponses, "REQ-RELAY-DL-1"),
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
