"""Conformant variants of the reference Relay UE (TS 24.538 6.2.2.1): other legal choices."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from functools import partial
from typing import Any, ClassVar

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, code_name, is_request, is_response
from sut_adapters.base import ClientInfo
from sut_adapters.reference.coapnode import CoapNode
from sut_adapters.reference.common import RoleContext
from sut_adapters.reference.relay import ReferenceRelay


class SlowAck(ReferenceRelay):
    """Acknowledges every Confirmable message 400 ms late.

    RFC 7252 4.2 asks for an ACK or RST, not for a prompt one: the sender retransmits after
    ACK_TIMEOUT, and the recipient acknowledges each duplicate again (4.5). 400 ms is within the
    tester's MAX_TRANSMIT_WAIT (4.8.2), the profile's bound.
    """

    DELAY_S = 0.4

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        for node in (self.pc5, self.uu):
            assert node is not None
            transport = node._mi.transport
            send = transport.sendmsg

            def later(data: bytes, anc: Any, flags: int, address: Any, send: Any = send) -> None:
                with contextlib.suppress(Exception):  # the case may be over by then
                    send(data, anc, flags, address)

            def sendmsg(data: bytes, anc: Any, flags: int, address: Any, later: Any = later) -> Any:
                if len(data) >= 4 and (data[0] >> 4) & 3 == MessageType.ACK:
                    loop.call_later(self.DELAY_S, later, data, anc, flags, address)
                    return None
                return later(data, anc, flags, address)

            transport.sendmsg = sendmsg


class AddedLatency(ReferenceRelay):
    """Relays every message 30 ms after it arrived: nothing in 6.2.2.1 bounds a relay's latency
    short of the exchange's own timers."""

    DELAY_S = 0.03

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        asyncio.get_running_loop().call_later(self.DELAY_S, self._later_down, msg, client)

    def _later_down(self, msg: CoapMessage, client: ClientInfo) -> None:
        if self.pc5 is not None:
            super().forward_downlink(msg, client)

    def handle_uplink(self, msg: CoapMessage, src: Address) -> None:
        asyncio.get_running_loop().call_later(self.DELAY_S, self._later_up, msg, src)

    def _later_up(self, msg: CoapMessage, src: Address) -> None:
        if self.uu is not None:
            super().handle_uplink(msg, src)


class FreshTokenNon(ReferenceRelay):
    """Relays each unsolicited downlink response as a message of its own: a fresh token, and NON.

    The seed relays the response "as a downlink traffic to the MSGin5G Client-2" and says nothing of
    its token; RFC 7252 5.3.2 ties a token only to a request, and the Client-2 asked for none. A
    response to a request the relay carried uplink keeps that request's token (5.3.2: it must
    match), as NON.
    """

    def __init__(self, env: RoleContext) -> None:
        super().__init__(env)
        self.asked: set[bytes] = set()

    def uplink_copy(self, msg: CoapMessage) -> CoapMessage:
        self.asked.add(msg.token)
        return super().uplink_copy(msg)

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = dataclasses.replace(super().downlink_copy(msg), mtype=MessageType.NON)
        return copy if msg.token in self.asked else dataclasses.replace(copy, token=os.urandom(4))


class NewUplinkToken(ReferenceRelay):
    """Sends the uplink GET with a token of its own and maps the answer back to the client's token.

    Towards the SCM-S the relay is the client that generates tokens (RFC 7252 5.3.1); the client's
    own request must get a response with its own token (5.3.2), which the mapping restores.
    """

    def __init__(self, env: RoleContext) -> None:
        super().__init__(env)
        self.tokens: dict[bytes, bytes] = {}

    def uplink_copy(self, msg: CoapMessage) -> CoapMessage:
        mine = os.urandom(6)
        self.tokens[mine] = msg.token
        return dataclasses.replace(msg, token=mine)

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        copy = super().downlink_copy(msg)
        original = self.tokens.pop(msg.token, None)
        return copy if original is None else dataclasses.replace(copy, token=original)


class ConForNon(ReferenceRelay):
    """Relays every downlink response as CON, whatever type it came in: an endpoint MUST be
    prepared to receive a CON response to a NON request (RFC 7252 5.2.3)."""

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        return dataclasses.replace(super().downlink_copy(msg), mtype=MessageType.CON)


class SeparateReject(ReferenceRelay):
    """Answers a CON request it rejects (4.02 Bad Option) with an empty ACK first and the 4.02 as a
    separate CON response (RFC 7252 5.2.2) instead of piggybacking it."""

    def reject(self, node: CoapNode, msg: CoapMessage, src: Address, code: int, why: str) -> None:
        if msg.mtype != MessageType.CON:
            super().reject(node, msg, src, code, why)
            return
        answer = CoapMessage(MessageType.CON, code, 0, msg.token, (), why.encode("utf-8"))
        self.note(f"{code_name(code)} to {src} as a separate response: {why}")
        # after the node's empty ACK for this request (sent once this handler returns)
        asyncio.get_running_loop().call_soon(node.send, answer, src)


class ResetsDiscarded(ReferenceRelay):
    """Rejects a CON response it discards with a Reset instead of acknowledging it: RFC 7252 4.2
    lets a recipient reject a Confirmable message it "lacks context to process"."""

    def handle_downlink(self, msg: CoapMessage, src: Address) -> None:
        before = len(self.log)
        super().handle_downlink(msg, src)
        discarded = any("discarded" in line for line in self.log[before:])
        if discarded and msg.mtype == MessageType.CON and self.uu is not None:
            self.uu.reject_current = True


class ForwardingRelay(ReferenceRelay):
    """A Layer-3 relay (the seed: the Relay UE "acts as either 5G ProSe Layer-2 and Layer-3
    UE-to-Network Relay entity"): it applies the relay conditions of 6.2.2.1 and forwards the very
    datagram, unchanged, from its other side; it ends no CoAP exchange itself, so an ACK or RST of a
    client goes back to the SCM-S and the SCM-S's to the client. Under the profile reading
    relay_model: forwarding.
    """

    PROTOCOL: ClassVar[dict[str, Any]] = {"readings": {"relay_model": "forwarding"}}

    def __init__(self, env: RoleContext) -> None:
        super().__init__(env)
        self.socks: dict[str, Any] = {}
        self.peers: dict[tuple[str, int], Address] = {}  # (side, MID) -> where its answer goes

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for side, address in (("pc5", self.pc5_address), ("uu", self.uu_address)):
            transport, _ = await loop.create_datagram_endpoint(partial(_Forward, self, side), local_addr=address)
            self.socks[side] = transport

    async def stop(self) -> None:
        for transport in self.socks.values():
            transport.close()
        self.socks.clear()

    def datagram(self, side: str, data: bytes, src: Address) -> None:
        try:
            msg = codec.parse(data)
        except codec.MalformedDatagram:
            self.note(f"dropped a malformed datagram from {src}")
            return
        if msg.mtype in (MessageType.ACK, MessageType.RST):  # an answer goes back where its message came from
            back = self.peers.pop((side, msg.mid), None)
            if back is not None:
                self.socks["uu" if side == "pc5" else "pc5"].sendto(data, back)
            return
        if side == "pc5" and is_request(msg.code):
            refusal = self.configuration_get_refusal(msg, src)
            if refusal is not None:
                self.note(f"not forwarded: {refusal}")
                return
            self.peers[("uu", msg.mid)] = src
            self.socks["uu"].sendto(data, self.env.scm_s)
            self.note(f"forwarded GET mid=0x{msg.mid:04x} uplink unchanged")
            return
        if side == "uu" and is_response(msg.code):
            recipient = self.recipient(msg)
            client = self.link_for(recipient) if recipient is not None else None
            if not self.relays_code(msg.code) or not self.port_ok(src) or client is None:
                self.note(f"discarded {code_name(msg.code)}")
                return
            self.peers[("pc5", msg.mid)] = src
            self.socks["pc5"].sendto(data, client.endpoint)
            self.note(f"forwarded {code_name(msg.code)} mid=0x{msg.mid:04x} downlink unchanged")


class _Forward(asyncio.DatagramProtocol):
    def __init__(self, relay: ForwardingRelay, side: str) -> None:
        self.relay, self.side = relay, side

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.datagram(self.side, data, (str(addr[0]), int(addr[1])))


class RejectsOtherGets(ReferenceRelay):
    """Answers a GET it does not relay (its recipient is not the SCM-S, it has none, or it does not
    come from UDP port 65401) with 4.00 (Bad Request) and the reason as diagnostic payload, instead
    of discarding it silently. The seed says when the Relay UE relays a GET and nothing of the others
    (REQ-RELAY-UL-2, open); RFC 7252 5.9.2 answers a request the server will not act on with a 4.xx.
    Under the profile reading uplink_other_requests: open (with discard, nothing of such a GET may
    come back)."""

    PROTOCOL: ClassVar[dict[str, Any]] = {"readings": {"uplink_other_requests": "open"}}

    def handle_uplink(self, msg: CoapMessage, src: Address) -> None:
        refusal = self.configuration_get_refusal(msg, src)
        if refusal is None or msg.code != Code.GET or self.pc5 is None:
            super().handle_uplink(msg, src)
            return
        self.reject(self.pc5, msg, src, Code.BAD_REQUEST, f"not relayed: {refusal}")


class RelaysEveryCode(ReferenceRelay):
    """Relays a response of any code (2.01, 2.04, 4.00, 5.00, ...) to a linked recipient, unaltered,
    under the same conditions as a 2.05/4.03/4.04. The seed's relay and discard sentences name those
    three codes only (REQ-RELAY-DL-3, open); under the profile reading other_response_codes: open
    relaying the others is allowed."""

    PROTOCOL: ClassVar[dict[str, Any]] = {"readings": {"other_response_codes": "open"}}

    def relays_code(self, code: int) -> bool:
        return is_response(code)


VARIANTS: dict[str, tuple[type[ReferenceRelay], str]] = {
    "slow-ack": (SlowAck, "RFC 7252 4.2, 4.5: an ACK is required, not a prompt one; duplicates are acknowledged again"),
    "added-latency": (AddedLatency, "TS 24.538 6.2.2.1 sets no latency bound on relaying"),
    "fresh-token-non": (
        FreshTokenNon,
        "TS 24.538 6.2.2.1 relays the response 'as a downlink traffic' and says nothing of its token; "
        "RFC 7252 5.3.2 ties a token to a request only",
    ),
    "new-uplink-token": (
        NewUplinkToken,
        "RFC 7252 5.3.1: the client (towards the SCM-S, the relay) generates tokens; 5.3.2: the "
        "response to the client's own request carries its token",
    ),
    "con-for-non": (
        ConForNon,
        "RFC 7252 5.2.3: an endpoint MUST be prepared to receive a CON response to a NON request",
    ),
    "separate-reject": (SeparateReject, "RFC 7252 5.2.2: a response may follow an empty ACK as a separate message"),
    "resets-discarded": (ResetsDiscarded, "RFC 7252 4.2: a CON the recipient lacks context for may be rejected (RST)"),
    "forwarding": (
        ForwardingRelay,
        "TS 24.538 6.2.2.1: the Relay UE 'acts as either 5G ProSe Layer-2 and Layer-3 UE-to-Network Relay "
        "entity' (profile reading relay_model: forwarding)",
    ),
    "rejects-other-gets": (
        RejectsOtherGets,
        "TS 24.538 6.2.2.1 says when the Relay UE relays a GET and nothing of other GETs (REQ-RELAY-UL-2, "
        "reading uplink_other_requests: open); RFC 7252 5.9.2: a 4.xx answers a request the server will not act on",
    ),
    "relays-every-code": (
        RelaysEveryCode,
        "TS 24.538 6.2.2.1 names only 2.05, 4.03 and 4.04 in its relay and discard sentences (REQ-RELAY-DL-3, "
        "reading other_response_codes: open)",
    ),
}
