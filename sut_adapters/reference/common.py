"""What every reference MSGin5G endpoint decides the same way (TS 24.538 6.2.2, RFC 7252 5.4.1).

The CoAP message layer (RFC 7252 3, 4.2, 4.3, 5.3.2, 5.4.1) where aiocoap 0.4.17 does not follow
it is :meth:`EndpointRules.screen`, which every reference endpoint runs on each datagram before
aiocoap (``CoapNode.screen``): a version other than 1 is silently ignored; a Confirmable message
with a format error or a reserved code class is rejected with a Reset, any other malformed
message silently ignored; a response is rejected (Reset for a CON, ignored for a NON) where the
endpoint takes no responses (the PC5 side of a relay or gateway) or when it carries an
unrecognised critical option.

The Relay UE, the Gateway UE and the Constrained UE each read the recipient address from the
profile's recipient option, apply the profile's reading of "from UDP port 65401", recognise the
same critical options and keep a timestamped log. These are methods, so a faulty variant can
still override exactly one decision of one role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import OPTION_FORMATS, Code, MessageType, code_name, is_critical, is_response
from msgin5g_conformance.world.profile import Profile
from sut_adapters.base import CaseWorld, ClientInfo
from sut_adapters.reference.coapnode import CoapNode, FastTuning


@dataclass(frozen=True)
class RoleContext:
    """What one reference implementation needs for one test case: the profile, CON timing,
    its endpoints and the tester's peers."""

    profile: Profile
    tuning: FastTuning
    world: CaseWorld

    def endpoint(self, name: str) -> Address:
        return self.world.endpoints[name]

    @property
    def scm_s(self) -> Address:
        return self.world.peers["scms"]

    @property
    def relay(self) -> Address:
        return self.world.peers["relay"]

    def client_lookup(self, address: str) -> ClientInfo | None:
        return self.world.client_lookup(address)


class EndpointRules:
    """Shared decisions; subclasses set ``profile`` and call ``__init__`` for the log."""

    LABEL = "sut"
    # Profile values this implementation has built in (a run with another profile is refused);
    # empty: it follows whatever the profile says.
    PROTOCOL: ClassVar[dict[str, Any]] = {}
    profile: Profile

    def __init__(self) -> None:
        self.log: list[str] = []
        self._t0 = time.monotonic()

    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic() - self._t0:9.3f} {self.LABEL}: {text}")

    def reject(self, node: CoapNode, msg: CoapMessage, src: Address, code: int, why: str) -> None:
        """Answer a request with an error ``code`` and ``why`` as its diagnostic payload."""
        self.note(f"{code_name(code)} to {src}: {why}")
        answer = CoapMessage(
            mtype=MessageType.NON if msg.mtype == MessageType.NON else MessageType.CON,
            code=code,
            mid=0,
            token=msg.token,
            payload=why.encode("utf-8"),
        )
        node.reply(msg, answer, src)

    def reject_bad_option(self, node: CoapNode, msg: CoapMessage, src: Address, numbers: list[int]) -> None:
        """RFC 7252 5.4.1: 4.02 for an unrecognised critical option (aiocoap 0.4.17 does not answer it by itself)."""
        self.reject(node, msg, src, Code.BAD_OPTION, f"unrecognised critical option {numbers[0]}")

    def recipient(self, msg: CoapMessage) -> str | None:
        """The recipient address in the profile's CoAP option: exactly one, UTF-8, else none."""
        values = msg.option_values(self.profile.recipient_option)
        if len(values) != 1:
            return None
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            return None

    def port_ok(self, src: Address) -> bool:
        """'received ... from UDP port 65401': the source port, under the profile's reading."""
        if self.profile.port_match in ("source", "both"):
            return src[1] == self.profile.port
        return True

    def configuration_get_refusal(self, msg: CoapMessage, src: Address) -> str | None:
        """Why a request is not the configuration GET of 6.2.2 (a GET from port 65401 whose
        recipient is the SCM-S), or None when it is."""
        if msg.code != Code.GET:
            return f"{code_name(msg.code)} is not a GET"
        if not self.port_ok(src):
            return f"GET from port {src[1]}, not {self.profile.port}"
        recipient = self.recipient(msg)
        if recipient != self.profile.scm_s_address:
            return f"GET recipient {recipient!r} is not the SCM-S"
        return None

    def unknown_critical(self, msg: CoapMessage) -> list[int]:
        """Critical options this endpoint does not recognise (RFC 7252 5.4.1)."""
        known = set(OPTION_FORMATS) | {self.profile.recipient_option}
        return sorted({n for n, _ in msg.options if is_critical(n) and n not in known})

    # -- the message layer aiocoap leaves out (RFC 7252 3, 4.2, 4.3, 5.3.2, 5.4.1) --------------

    def screen(self, node: CoapNode, data: bytes, src: Address) -> bool:
        """Apply the message-layer rules to one datagram before aiocoap does; True when the
        datagram was dealt with here (rejected or ignored), False to pass it on."""
        if len(data) < 4 or data[0] >> 6 != 1:
            # RFC 7252 3: "Messages with unknown version numbers MUST be silently ignored"
            # (and fewer than 4 bytes carry no Message ID to reject).
            self.ignore(node, data, src, f"version {data[0] >> 6}" if data else "empty datagram")
            return True
        mtype, mid = MessageType((data[0] >> 4) & 3), (data[2] << 8) | data[3]
        try:
            msg = codec.parse(data)
        except codec.MalformedDatagram as exc:
            # RFC 7252 4.2: a CON that is Empty with a token, has a reserved class (1, 6, 7) or a
            # format error (3, 3.1: TKL 9-15, nibble 15, marker without payload) is rejected with
            # a Reset; 4.2/4.3: a malformed NON, ACK or RST is ignored (a NON Reset is a MAY).
            if mtype == MessageType.CON:
                self.reject_con(node, mid, src, str(exc))
            else:
                self.ignore(node, data, src, str(exc))
            return True
        if msg.mtype in (MessageType.CON, MessageType.NON) and is_response(msg.code):
            why = None
            if not self.takes_responses(node):
                why = f"{code_name(msg.code)}: this endpoint expects no response (RFC 7252 5.3.2)"
            elif self.unknown_critical(msg):
                why = f"{code_name(msg.code)} with unrecognised critical option {self.unknown_critical(msg)[0]} (5.4.1)"
            if why is not None:
                if msg.mtype == MessageType.CON:
                    self.reject_con(node, mid, src, why)
                else:
                    self.ignore(node, data, src, why)
                return True
        return False

    def takes_responses(self, node: CoapNode) -> bool:
        """Whether this endpoint expects responses: not the PC5 side of a relay or gateway (its
        clients send requests only); the network side and a constrained UE do."""
        return node.address != getattr(self, "pc5_address", None)

    def reject_con(self, node: CoapNode, mid: int, src: Address, why: str) -> None:
        """RFC 7252 4.2: "Rejecting a Confirmable message is effected by sending a matching Reset
        message and otherwise ignoring it"."""
        self.note(f"RST mid=0x{mid:04x} to {src}: {why}")
        node.send_raw(codec.encode(CoapMessage(MessageType.RST, 0, mid)), src)

    def ignore(self, node: CoapNode, data: bytes, src: Address, why: str) -> None:
        self.note(f"ignored a datagram of {len(data)} bytes from {src}: {why}")


class LinkTable:
    """The one-to-one ProSe links the upper tester establishes and releases."""

    def __init__(self) -> None:
        self.links: dict[str, ClientInfo] = {}

    def note(self, text: str) -> None:  # provided by EndpointRules
        raise NotImplementedError

    def establish_link(self, client: ClientInfo) -> None:
        self.links[client.address] = client
        self.note(f"one-to-one link established with {client.address} at {client.endpoint}")

    def release_link(self, client: ClientInfo) -> None:
        self.links.pop(client.address, None)
        self.note(f"one-to-one link released with {client.address}")
