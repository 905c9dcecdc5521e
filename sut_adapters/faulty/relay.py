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
from sut_adapters.reference.common import RoleContext
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

    DELAYS_S: tuple[float, ...] = tuple(i * 0.04 for i in range(12))

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        copy = self.downlink_copy(msg)
        if copy.mtype != MessageType.CON:
            super().forward_downlink(msg, client)
            return
        data = dataclasses.replace(copy, mid=int.from_bytes(os.urandom(2), "big")).encode()
        loop = asyncio.get_running_loop()
        for delay in self.DELAYS_S:
            loop.call_later(delay, self._raw, data, client.endpoint)
        self.note(f"(faulty) sending {len(self.DELAYS_S)} copies of {copy.summary()}")

    def _raw(self, data: bytes, to: Address) -> None:
        if self.pc5 is not None:
            self.pc5.send_raw(data, to)


class RetransmitsAfterAck(RetransmitsForever):
    """Breaks REQ-COAP-MSG-2: ignores the client's ACK of a downlink CON and retransmits it on the
    RFC 7252 4.8 schedule, 2 s after the first (2 transmissions: within MAX_RETRANSMIT, so only
    "retransmitted until it is acknowledged", 4.2, shows it)."""

    DELAYS_S = (0.0, 2.0)


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


# -- defects no case caught before the field cases (RELAY-DL-010.., E2E-002.., ROB-.., UL-003..) --


class DropsPiggybacked(ReferenceRelay):
    """Breaks REQ-RELAY-DL-1: relays only responses that come as messages of their own, and drops
    the SCM-S's answer when it rides in the ACK of the relay's request (RFC 7252 5.2.1, the usual
    answer of a CoAP server)."""

    def handle_downlink(self, msg: CoapMessage, src: Address) -> None:
        if msg.mtype == MessageType.ACK:
            self.note(f"(faulty) dropping piggybacked {msg.summary()}")
            return
        super().handle_downlink(msg, src)


class ConErrorsAsContent(ReferenceRelay):
    """Breaks REQ-RELAY-DL-1: relays a confirmable 4.03 or 4.04 as a 2.05 (Content)."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        if msg.mtype == MessageType.CON and msg.code in (Code.FORBIDDEN, Code.NOT_FOUND):
            return dataclasses.replace(copy, code=Code.CONTENT)
        return copy


class MatchesByPrefix(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2: takes a recipient for a linked client when one address is a prefix of
    the other."""

    def link_for(self, recipient: str) -> ClientInfo | None:
        for address, client in self.links.items():
            if recipient.startswith(address) or address.startswith(recipient):
                return client
        return None


class MatchesBySubstring(ReferenceRelay):
    """Breaks REQ-RELAY-DL-2: takes a recipient for a linked client when one address contains the
    other."""

    def link_for(self, recipient: str) -> ClientInfo | None:
        for address, client in self.links.items():
            if recipient in address or address in recipient:
                return client
        return None


class Truncates256(ReferenceRelay):
    """Breaks REQ-RELAY-TERM-1: relays at most 256 bytes of a payload (a fixed relay buffer)."""

    LIMIT = 256

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        return dataclasses.replace(copy, payload=copy.payload[: self.LIMIT])

    def uplink_copy(self, msg: CoapMessage) -> CoapMessage:
        return dataclasses.replace(msg, payload=msg.payload[: self.LIMIT])


class StripsBlock2(ReferenceRelay):
    """Breaks REQ-RELAY-TERM-1: drops the Block2 and Size2 options (RFC 7959) of a response it
    relays, so the client takes the first block for the whole document."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        strip = (OptionNumber.BLOCK2, OptionNumber.SIZE2)
        return dataclasses.replace(copy, options=tuple(o for o in copy.options if o[0] not in strip))


class DropsLaterBlocks(ReferenceRelay):
    """Breaks REQ-RELAY-UL-1: does not relay a configuration GET that asks for a later block
    (Block2 NUM > 0, RFC 7959 2.4): a block-wise transfer through it stops after the first block."""

    def handle_uplink(self, msg: CoapMessage, src: Address) -> None:
        block2 = msg.option_values(OptionNumber.BLOCK2)
        if block2 and int.from_bytes(block2[0], "big") >> 4 > 0:
            self.note("(faulty) swallowing a request for a later block")
            return
        super().handle_uplink(msg, src)


class _DiesOnMalformed(ReferenceRelay):
    """One side stops handling what it receives after the first datagram the strict parse rejects."""

    SIDE = "pc5"

    def __init__(self, env: RoleContext) -> None:
        super().__init__(env)
        self.dead = False

    async def start(self) -> None:
        await super().start()
        node = self.pc5 if self.SIDE == "pc5" else self.uu
        assert node is not None
        mi = node._mi
        received = mi.datagram_msg_received

        def datagram(data: bytes, ancdata: Any, flags: int, address: Any, received: Any = received) -> Any:
            try:
                codec.parse(bytes(data))
            except codec.MalformedDatagram:
                if not self.dead:
                    self.note(f"(faulty) {self.SIDE} side stops after a malformed datagram")
                self.dead = True
            return received(data, ancdata, flags, address)

        mi.datagram_msg_received = datagram

    def on_pc5(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        if self.SIDE == "pc5" and self.dead:
            return
        super().on_pc5(node, msg, src)

    def on_uu(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        if self.SIDE == "uu" and self.dead:
            return
        super().on_uu(node, msg, src)


class Pc5DiesOnMalformed(_DiesOnMalformed):
    """Breaks REQ-RELAY-UL-1: after one malformed datagram on the PC5 side, relays nothing uplink
    (it still acknowledges what it receives)."""

    SIDE = "pc5"


class UuDiesOnMalformed(_DiesOnMalformed):
    """Breaks REQ-RELAY-DL-1: after one malformed datagram on the network side, relays nothing
    downlink (it still acknowledges what it receives)."""

    SIDE = "uu"


class _RemembersRequests(ReferenceRelay):
    """Remembers which client sent each GET it relayed uplink, by token."""

    def __init__(self, env: RoleContext) -> None:
        super().__init__(env)
        self.asked: dict[bytes, Address] = {}

    def handle_uplink(self, msg: CoapMessage, src: Address) -> None:
        self.asked[msg.token] = src
        super().handle_uplink(msg, src)

    def requester(self, msg: CoapMessage) -> ClientInfo | None:
        src = self.asked.get(msg.token)
        if src is None:
            return None
        return ClientInfo("requester", self.recipient(msg) or "", src)


class RoutesByToken(_RemembersRequests):
    """Breaks REQ-RELAY-DL-2: routes a response to whichever client sent the GET with its token,
    whatever its recipient and link."""

    def handle_downlink(self, msg: CoapMessage, src: Address) -> None:
        client = self.requester(msg)
        if client is not None and self.relays_code(msg.code):
            self.note(f"(faulty) routing {msg.summary()} by its token to {client.endpoint}")
            self.forward_downlink(msg, client)
            return
        super().handle_downlink(msg, src)


class RelaysOwnAddress(_RemembersRequests):
    """Breaks REQ-RELAY-DL-2: takes a response addressed to its own MSGin5G Client (the profile's
    addresses.sut_ue) for the answer to a request it carried, and passes it to that request's client
    (as a proxy would)."""

    def handle_downlink(self, msg: CoapMessage, src: Address) -> None:
        client = self.requester(msg)
        if client is not None and self.recipient(msg) == self.profile.sut_ue_address:
            self.note(f"(faulty) passing {msg.summary()}, addressed to itself, to {client.endpoint}")
            self.forward_downlink(msg, client)
            return
        super().handle_downlink(msg, src)


class ReserialisesJson(ReferenceRelay):
    """Breaks REQ-RELAY-TERM-1: parses a JSON payload and writes it out again (json.dumps' default
    spacing) when relaying downlink: the same document, other bytes."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        try:
            payload = json.dumps(json.loads(copy.payload)).encode()
        except ValueError:
            return copy
        return dataclasses.replace(copy, payload=payload)


# -- variants that break a profile reading (the self-test runs them under it: UNDER_READINGS) ----


class RelaysAnyRecipient(ReferenceRelay):
    """Breaks REQ-RELAY-UL-2 (reading uplink_other_requests: discard): relays every GET from port
    65401 uplink, whatever its recipient option says (or without one)."""

    def configuration_get_refusal(self, msg: CoapMessage, src: Address) -> str | None:
        if msg.code != Code.GET:
            return "not a GET"
        return None if self.port_ok(src) else f"GET from port {src[1]}"


class UplinkIgnoresPort(ReferenceRelay):
    """Breaks REQ-RELAY-UL-2 (reading uplink_other_requests: discard): relays a GET for the SCM-S
    from any source port."""

    def configuration_get_refusal(self, msg: CoapMessage, src: Address) -> str | None:
        if msg.code != Code.GET:
            return "not a GET"
        return None if self.recipient(msg) == self.profile.scm_s_address else "recipient is not the SCM-S"


class RelaysOtherCodes(ReferenceRelay):
    """Breaks REQ-RELAY-DL-3 (reading other_response_codes: discard): relays a response of any code
    to a linked recipient."""

    def relays_code(self, code: int) -> bool:
        return True


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
    "retransmits-after-ack": (RetransmitsAfterAck, "REQ-COAP-MSG-2"),
    "late-duplicate": (LateDuplicate, "REQ-RELAY-DL-1"),
    "adds-critical-option": (AddsCriticalOption, "REQ-RELAY-TERM-1"),
    "long-content-format": (LongContentFormat, "REQ-RELAY-TERM-1"),
    "ack-type-responses": (AckTypeResponses, "REQ-RELAY-DL-1"),
    "drops-piggybacked": (DropsPiggybacked, "REQ-RELAY-DL-1"),
    "con-errors-as-content": (ConErrorsAsContent, "REQ-RELAY-DL-1"),
    "matches-by-prefix": (MatchesByPrefix, "REQ-RELAY-DL-2"),
    "matches-by-substring": (MatchesBySubstring, "REQ-RELAY-DL-2"),
    "truncates-256": (Truncates256, "REQ-RELAY-TERM-1"),
    "strips-block2": (StripsBlock2, "REQ-RELAY-TERM-1"),
    "drops-later-blocks": (DropsLaterBlocks, "REQ-RELAY-UL-1"),
    "pc5-dies-on-malformed": (Pc5DiesOnMalformed, "REQ-RELAY-UL-1"),
    "uu-dies-on-malformed": (UuDiesOnMalformed, "REQ-RELAY-DL-1"),
    "routes-by-token": (RoutesByToken, "REQ-RELAY-DL-2"),
    "relays-own-address": (RelaysOwnAddress, "REQ-RELAY-DL-2"),
    "reserialises-json": (ReserialisesJson, "REQ-RELAY-TERM-1"),
    # These break a reading of an open point: they pass the suite under the default (open) reading
    # and fail under the one they break (expected/relay.py, UNDER_READINGS).
    "relays-any-recipient": (RelaysAnyRecipient, "REQ-RELAY-UL-2"),
    "uplink-ignores-port": (UplinkIgnoresPort, "REQ-RELAY-UL-2"),
    "relays-other-codes": (RelaysOtherCodes, "REQ-RELAY-DL-3"),
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
    """Robustness: answers every relayed response with a flood of copies (bounded, 3,000).

    The copies go out in bursts of BURST, one burst per turn of the event loop: the embedded SUT
    shares the loop with the harness and with the other cases open at the same time, and 3,000
    sends in one turn would hold their acknowledgements up (an external SUT floods the wire, not the
    harness's loop)."""

    FLOOD = 3000
    BURST = 100

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        copy = dataclasses.replace(self.downlink_copy(msg), mtype=MessageType.NON)
        # distinct Message IDs: not retransmissions, new messages
        datagrams = [dataclasses.replace(copy, mid=(msg.mid + 1 + i) & 0xFFFF).encode() for i in range(self.FLOOD)]
        self._burst(datagrams, 0, client.endpoint)
        self.note(f"(faulty) flooding {self.FLOOD} copies")

    def _burst(self, datagrams: list[bytes], start: int, to: Address) -> None:
        try:
            for data in datagrams[start : start + self.BURST]:
                if self.pc5 is None:
                    return  # the case is over
                self.pc5.send_raw(data, to)
        except RuntimeError:  # the node was stopped: the case is over
            return
        if start + self.BURST < len(datagrams):
            asyncio.get_running_loop().call_soon(self._burst, datagrams, start + self.BURST, to)


# Not one requirement each: these check that a misbehaving SUT gives fail/inconclusive with a
# reason, in bounded time, and that the rest of the suite still runs.
ROBUSTNESS: dict[str, tuple[type[ReferenceRelay], str]] = {
    "sends-garbage": (SendsGarbage, "robustness"),
    "silent": (Silent, "robustness"),
    "floods": (Floods, "robustness"),
}
