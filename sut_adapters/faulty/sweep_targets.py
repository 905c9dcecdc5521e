"""Deliberately fragile variants of the reference SUT, for the robustness sweep's own tests.

Each breaks down on one kind of input, so that a test can check that the sweep notices, and that
it names the input that did it. They are not registered in :mod:`sut_adapters.registry` (no
requirement of the suite is broken by them); a test builds one with
``ReferenceAdapter(name="test:...", relay_class=DeafAfterRejected)`` and so on.

Each sees every datagram its endpoints receive, byte for byte, before aiocoap parses it (the
reference's CoapNode hooks the transport's receive call; these hook it once more).
"""

from __future__ import annotations

import asyncio
from typing import Any

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import MessageType
from sut_adapters.base import ClientInfo
from sut_adapters.reference.coapnode import CoapNode
from sut_adapters.reference.cue import ReferenceConstrainedUE
from sut_adapters.reference.gateway import ReferenceGateway
from sut_adapters.reference.relay import ReferenceRelay


def watch_datagrams(node: CoapNode, watch: Any) -> None:
    """Call ``watch(data) -> bool`` on every datagram ``node`` receives; False drops it unseen."""
    mi = node._mi
    original = mi.datagram_msg_received

    def received(data: bytes, ancdata: Any, flags: int, address: Any) -> Any:
        if watch(bytes(data)):
            return original(data, ancdata, flags, address)
        return None

    mi.datagram_msg_received = received


class DeafAfterRejected(ReferenceRelay):
    """Stops handling anything (no ACK, no RST, no relaying) after the first datagram its strict
    parse rejects, on either side."""

    deaf = False

    async def start(self) -> None:
        await super().start()
        for node in (self.pc5, self.uu):
            assert node is not None
            watch_datagrams(node, self.watch)

    def watch(self, data: bytes) -> bool:
        if self.deaf:
            return False
        try:
            codec.parse(data)
        except codec.MalformedDatagram as exc:
            self.deaf = True
            self.note(f"(fragile) deaf from now on, after a datagram the strict parse rejects: {exc}")
            return False
        return True


class DiesOnLongToken(ReferenceRelay):
    """Dies (closes both sockets) on a datagram whose TKL field is 9..15, and on nothing else."""

    dead = False
    _death: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        for node in (self.pc5, self.uu):
            assert node is not None
            watch_datagrams(node, self.watch)

    def watch(self, data: bytes) -> bool:
        if self.dead:
            return False
        if data and data[0] & 0x0F > 8:
            self.dead = True
            self.note(f"(fragile) died on TKL {data[0] & 0x0F}")
            self._death = asyncio.get_running_loop().create_task(self.stop())
            return False
        return True


class StopsRelayingAfterBigDatagram(ReferenceRelay):
    """After any datagram over LIMIT bytes it still answers pings and acknowledges CONs, but relays
    nothing downlink any more (the ping alone would not notice)."""

    LIMIT = 1024
    stuck = False

    async def start(self) -> None:
        await super().start()
        for node in (self.pc5, self.uu):
            assert node is not None
            watch_datagrams(node, self.watch)

    def watch(self, data: bytes) -> bool:
        if len(data) > self.LIMIT and not self.stuck:
            self.stuck = True
            self.note(f"(fragile) relays nothing downlink from now on, after a {len(data)}-byte datagram")
        return True

    def forward_downlink(self, msg: CoapMessage, client: ClientInfo) -> None:
        if self.stuck:
            self.note(f"(fragile) not relaying {msg.summary()}")
            return
        super().forward_downlink(msg, client)


class GatewayStopsAckingAfterReservedCode(ReferenceGateway):
    """After a datagram with a reserved code class (1.xx, 6.xx, 7.xx) its PC5 side sends no empty
    ACK any more (pings are still answered with RST)."""

    stuck = False

    async def start(self) -> None:
        await super().start()
        assert self.pc5 is not None and self.uu is not None
        for node in (self.pc5, self.uu):
            watch_datagrams(node, self.watch)
        transport = self.pc5._mi.transport
        send = transport.sendmsg

        def sendmsg(data: bytes, anc: Any, flags: int, address: Any) -> Any:
            if self.stuck and len(data) == 4 and (data[0] >> 4) & 3 == MessageType.ACK:
                return None  # dropped on purpose
            return send(data, anc, flags, address)

        transport.sendmsg = sendmsg

    def watch(self, data: bytes) -> bool:
        if len(data) >= 2 and data[1] >> 5 in (1, 6, 7) and not self.stuck:
            self.stuck = True
            self.note(f"(fragile) no more empty ACKs, after code {data[1] >> 5}.{data[1] & 0x1F:02d}")
        return True


class CueMuteAfterBadVersion(ReferenceConstrainedUE):
    """After a datagram of CoAP version 0, 2 or 3 it never sends its configuration request again
    (pings are still answered)."""

    mute = False

    async def start(self) -> None:
        await super().start()
        assert self.node is not None
        watch_datagrams(self.node, self.watch)

    def watch(self, data: bytes) -> bool:
        if data and data[0] >> 6 != 1 and not self.mute:
            self.mute = True
            self.note(f"(fragile) mute from now on, after a version {data[0] >> 6} datagram")
        return True

    def request_configuration(self) -> None:
        if self.mute:
            self.note("(fragile) not sending the configuration request")
            return
        super().request_configuration()
