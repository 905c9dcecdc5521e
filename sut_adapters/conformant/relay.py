"""Conformant variants of the reference Relay UE (TS 24.538 6.2.2.1): other legal choices."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import MessageType
from sut_adapters.base import ClientInfo
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


VARIANTS: dict[str, tuple[type[ReferenceRelay], str]] = {
    "slow-ack": (SlowAck, "RFC 7252 4.2, 4.5: an ACK is required, not a prompt one; duplicates are acknowledged again"),
    "added-latency": (AddedLatency, "TS 24.538 6.2.2.1 sets no latency bound on relaying"),
}
