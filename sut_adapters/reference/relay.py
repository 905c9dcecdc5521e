"""Reference MSGin5G Relay UE: TS 24.538 clause 6.2.2.1 as read by the protocol profile.

Uplink: a CoAP GET received on the PC5 side from UDP port 65401 whose recipient option names
the configuration management server (SCM-S) is relayed to the SCM-S.
Downlink: a 2.05, 4.03 or 4.04 response received on the network side from UDP port 65401 whose
recipient option names a client with an established one-to-one ProSe link is relayed to that
client; any other response is discarded ("Otherwise the MSGin5G Client-1 shall discard ...").

Relaying keeps type (CON/NON; a piggybacked ACK goes on as CON), code, token, every option and
the payload byte for byte (TS 24.538 6.1 c): the relay carries traffic, it does not rewrite it).
A request carrying a critical option this relay does not recognise is answered with 4.02 Bad
Option (RFC 7252 5.4.1), which aiocoap 0.4.17 does not do by itself.

Every decision is a method, so that a faulty variant overrides exactly one of them.
"""

from __future__ import annotations

import dataclasses

from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import (
    MessageType,
    code_name,
    is_request,
    is_response,
)
from sut_adapters.base import ClientInfo
from sut_adapters.reference.coapnode import CoapNode

from .common import EndpointRules, LinkTable, RoleContext


class ReferenceRelay(EndpointRules, LinkTable):
    """A Relay UE with a PC5-side and a network-side endpoint, both on the profile's port."""

    LABEL = "relay"

    def __init__(self, env: RoleContext) -> None:
        EndpointRules.__init__(self)
        LinkTable.__init__(self)
        self.env = env
        self.profile = env.profile
        self.pc5_address = env.endpoint("sut.pc5")
        self.uu_address = env.endpoint("sut.uu")
        self.pc5: CoapNode | None = None
        self.uu: CoapNode | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.pc5 = CoapNode("relay-pc5", self.pc5_address, tuning=self.env.tuning, on_message=self.on_pc5)
        self.uu = CoapNode("relay-uu", self.uu_address, tuning=self.env.tuning, on_message=self.on_uu)
        await self.pc5.start()
        await self.uu.start()

    async def stop(self) -> None:
        for node in (self.pc5, self.uu):
            if node is not None:
                await node.stop()
        self.pc5 = self.uu = None

    # -- link table (upper tester) ----------------------------------------------------------

    # -- decisions --------------------------------------------------------------------------

    def relays_code(self, code: int) -> bool:
        return code in self.profile.relayed_codes

    def link_for(self, recipient: str) -> ClientInfo | None:
        return self.links.get(recipient)

    def downlink_copy(self, msg: CoapMessage) -> CoapMessage:
        mtype = MessageType.NON if msg.mtype == MessageType.NON else MessageType.CON
        return dataclasses.replace(msg, mtype=mtype)

    def uplink_copy(self, msg: CoapMessage) -> CoapMessage:
        return msg

    # -- handlers ---------------------------------------------------------------------------

    def on_pc5(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        if not is_request(msg.code):
            self.note(f"ignored {code_name(msg.code)} from {src} on the PC5 side")
            return
        bad = self.unknown_critical(msg)
        if bad:
            self.reject_bad_option(node, msg, src, bad)
            return
        self.handle_uplink(msg, src)

    def handle_uplink(self, msg: CoapMessage, src: Address) -> None:
        refusal = self.configuration_get_refusal(msg, src)
        if refusal is not None:
            self.note(f"not relayed: {refusal}")
            return
        self.forward_uplink(msg)

    def forward_uplink(self, msg: CoapMessage) -> None:
        assert self.uu is not None
        self.uu.send(self.uplink_copy(msg), self.env.scm_s)
        self.note(f"relayed GET token={msg.token.hex()} uplink to the SCM-S at {self.env.scm_s}")

    def on_uu(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        if is_request(msg.code):
            bad = self.unknown_critical(msg)
            if bad:
                self.reject_bad_option(node, msg, src, bad)
            else:
                self.note(f"ignored request {code_name(msg.code)} from {src} on the network side")
            return
        if not is_response(msg.code):
            return
        self.handle_downlink(msg, src)

    def handle_downlink(self, msg: CoapMessage, src: Address) -> None:
        if self.unknown_critical(msg):
            self.note(f"discarded {code_name(msg.code)}: unrecognised critical option (RFC 7252 5.4.1)")
            return
        if not self.relays_code(msg.code):
            self.note(f"discarded {code_name(msg.code)}: not a relayed code")
            return
        if not self.port_ok(src):
            self.note(f"discarded {code_name(msg.code)}: from port {src[1]}, not {self.profile.port}")
            return
        recipient = self.recipient(msg)
        if recipient is None:
            self.note(f"discarded {code_name(msg.code)}: no recipient option")
            return
        client = self.link_for(recipient)
        if client is None:
            self.note(f"discarded {code_name(msg.code)}: no one-to-one link with {recipient!r}")
            return
        self.forward_downlink(msg, client)

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        assert self.pc5 is not None
        self.pc5.send(self.downlink_copy(msg), client.endpoint)
        self.note(f"relayed {code_name(msg.code)} token={msg.token.hex()} downlink to {client.address}")
