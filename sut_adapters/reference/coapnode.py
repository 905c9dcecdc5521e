"""One CoAP endpoint of the embedded reference SUT, built on aiocoap's UDP transport.

The reference SUT runs on a real, independent CoAP stack on purpose: aiocoap is not the
harness's lower tester (that is :mod:`msgin5g_conformance.wire.endpoint`, which owns its message
layer), so the reference and the tester do not share one implementation's mistakes.
aiocoap does the message layer (Message IDs, ACKs, CON retransmission, de-duplication); this
module works below its request/response matching, because a relay routes responses by the
recipient option, not by a token it issued:

* every incoming request and response (after aiocoap's message layer) goes to ``on_message``,
  as the strict :class:`~msgin5g_conformance.wire.codec.CoapMessage`;
* ``send`` puts any message on the wire from this node's own address and port;
* an optional tap records every datagram sent and received, byte for byte (the unprivileged
  capture mode).

aiocoap 0.4.17 internals used (pinned in pyproject): ``Context.request_interfaces[0]`` is the
TokenManager, its ``token_interface`` the MessageManager, whose ``message_interface`` is the
UDP6 transport; ``MessageManager._send_initially`` sends with a caller-chosen Message ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import aiocoap
from aiocoap.message import Direction
from aiocoap.numbers.constants import TransportTuning
from aiocoap.transports.udp6 import UDP6EndpointAddress

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.record import Address, Recorder
from msgin5g_conformance.wire.endpoint import CoapTimers
from msgin5g_conformance.wire.numbers import MessageType

log = logging.getLogger(__name__)


class FastTuning(TransportTuning):  # type: ignore[misc]
    """Retransmission timing for loopback tests: RFC 7252's defaults make a silent peer cost 93 s."""

    def __init__(self, ack_timeout_s: float = 0.15, max_retransmit: int = 2) -> None:
        self.ACK_TIMEOUT = ack_timeout_s
        self.ACK_RANDOM_FACTOR = 1.0
        self.MAX_RETRANSMIT = max_retransmit
        self.EMPTY_ACK_DELAY = 0.0

    @classmethod
    def of(cls, timers: CoapTimers) -> FastTuning:
        return cls(timers.ack_timeout_s, timers.max_retransmit)


def _plain(sockaddr: Any) -> Address:
    host = str(sockaddr[0])
    if host.startswith("::ffff:"):
        host = host[7:]
    return (host, int(sockaddr[1]))


def _v6(addr: Address) -> tuple[str, int, int, int]:
    host, port = addr
    return ((host if ":" in host else "::ffff:" + host), port, 0, 0)


class _TolerantBacklogs(dict[Any, Any]):
    """aiocoap's per-peer backlog map, where removing an absent peer is not an error."""

    def __delitem__(self, key: Any) -> None:
        self.pop(key, None)


# Messages with this many options or more are built by CoapNode._outgoing_many.
_MANY_OPTIONS = 32
MAX_DATAGRAM = 65535  # read buffer: the largest UDP payload (65,507 bytes over IPv4, 65,527 over IPv6) fits
_REUSED = frozenset({11, 15})  # Uri-Path, Uri-Query (RFC 7252 5.10)

MessageHandler = Callable[["CoapNode", codec.CoapMessage, Address], None]


class CoapNode:
    """An aiocoap server context bound to ``address``, driven at the message level."""

    def __init__(
        self,
        name: str,
        address: Address,
        *,
        tuning: FastTuning,
        recorder: Recorder | None = None,
        on_message: MessageHandler | None = None,
        ack_requests: bool = True,
    ) -> None:
        self.name = name
        self.address = address
        self.tuning = tuning
        self.recorder = recorder
        self.on_message = on_message
        self.ack_requests = ack_requests
        self.send_failures: list[str] = []
        self._ctx: Any = None
        self._mm: Any = None
        self._mi: Any = None
        self._next_mid = random.randrange(0x10000)
        self._option_cache: dict[tuple[tuple[int, bytes], ...], list[Any]] = {}
        self._current_raw: bytes | None = None
        self._seen: set[tuple[Address, int, int]] = set()  # (source, MID, type) processed (one case)
        self.reject_current = False  # a handler sets it to answer the response it got with a Reset
        # RFC 7252 message-layer rules applied before aiocoap sees a datagram (aiocoap 0.4.17
        # accepts TKL 9-15 and an empty payload after the marker, and rejects no malformed or
        # reserved-class CON with a Reset): screen(node, data, source) -> True when it dealt with
        # the datagram. By default the role implementation's own ``screen`` (common.EndpointRules).
        self.screen: Callable[[CoapNode, bytes, Address], bool] | None = None

    async def start(self) -> None:
        owner = getattr(self.on_message, "__self__", None)
        if self.screen is None and callable(getattr(owner, "screen", None)):
            self.screen = owner.screen  # type: ignore[union-attr]
        self._ctx = await aiocoap.Context.create_server_context(
            None, bind=self.address, transports=["udp6"], loggername=f"coap.{self.name}"
        )
        tm = self._ctx.request_interfaces[0]
        self._mm = tm.token_interface
        self._mi = self._mm.message_interface
        tm.process_request = self._process_request
        tm.process_response = self._process_response
        # send() puts CONs on the wire at once, even several to one peer (a lower tester must not
        # hold a stimulus back behind NSTART=1). aiocoap's backlog bookkeeping assumes one
        # exchange per peer and would raise on the second one's end; make that bookkeeping
        # tolerate it.
        self._mm._backlogs = _TolerantBacklogs(self._mm._backlogs)
        original_continue = self._mm._continue_backlog

        def continue_backlog(remote: Any) -> None:
            if remote in self._mm._backlogs:
                original_continue(remote)

        self._mm._continue_backlog = continue_backlog
        # aiocoap 0.4.17 reads at most 4,096 bytes of a datagram (RecvmsgSelectorDatagramTransport.
        # max_size) and silently drops the rest; a reference SUT must read any UDP datagram whole.
        self._mi.transport.max_size = MAX_DATAGRAM
        self._install_hooks()

    def _install_hooks(self) -> None:
        """Keep the exact bytes of each incoming datagram (and, as the tap, record both ways)."""
        recorder = self.recorder
        mi = self._mi
        me = self.address
        original_recv = mi.datagram_msg_received

        def received(data: bytes, ancdata: Any, flags: int, address: Any) -> Any:
            if recorder is not None:
                recorder.append(_plain(address), me, data)
            if self.screen is not None:
                try:
                    if self.screen(self, bytes(data), _plain(address)):
                        return None
                except Exception:  # a rule's bug must not kill the transport
                    log.exception("%s: screening a datagram failed", self.name)
            # dispatch is synchronous: _deliver() runs inside this call and reads these bytes
            self._current_raw = bytes(data)
            try:
                return original_recv(data, ancdata, flags, address)
            finally:
                self._current_raw = None

        mi.datagram_msg_received = received
        if recorder is not None:
            transport = mi.transport
            original_send = transport.sendmsg

            def sendmsg(data: bytes, anc: Any, fl: int, address: Any) -> Any:
                recorder.append(me, _plain(address), data)
                return original_send(data, anc, fl, address)

            transport.sendmsg = sendmsg

    async def stop(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ctx.shutdown(), 2.0)

    # -- incoming ---------------------------------------------------------------------------

    def _deliver(self, message: Any) -> None:
        raw = self._current_raw
        if raw is None or self.on_message is None:
            return
        try:
            cm = codec.parse(raw)
        except codec.MalformedDatagram as exc:  # aiocoap accepted what the strict parse rejects
            log.info("%s: ignoring a datagram the strict parse rejects: %s", self.name, exc)
            return
        src = _plain(message.remote.sockaddr)
        if cm.mtype in (MessageType.CON, MessageType.NON):
            # RFC 7252 4.5: a duplicate is processed once. aiocoap 0.4.17 hands a retransmitted
            # CON response to the application again, so the reference deduplicates itself.
            key = (src, cm.mid, cm.mtype)
            if key in self._seen:
                log.info(
                    "%s: duplicate %s mid=0x%04x from %s not processed again", self.name, cm.mtype.name, cm.mid, src
                )
                return
            self._seen.add(key)
        try:
            self.on_message(self, cm, src)
        except Exception:  # a handler bug must not kill the transport
            log.exception("%s: message handler failed", self.name)

    def _process_request(self, request: Any) -> None:
        self._deliver(request)  # the handler may answer at once (piggybacked), see reply()
        if self.ack_requests and request.mtype == aiocoap.CON:
            # Otherwise acknowledge at once with an empty ACK: a node must not make its peer
            # retransmit, nor wait on aiocoap's piggyback timer (EMPTY_ACK_DELAY).
            pending = self._mm._piggyback_opportunities.pop((request.remote, request.token), None)
            if pending is not None:
                pending[1].cancel()
                self._mm._send_empty_ack(request.remote, request.mid, "acknowledged at once")

    def _process_response(self, response: Any) -> bool:
        self.reject_current = False
        self._deliver(response)
        # recognised: a CON response gets an empty ACK, unless the handler rejected it (RST, 4.2)
        return not self.reject_current

    # -- outgoing ---------------------------------------------------------------------------

    def remote(self, address: Address) -> Any:
        return UDP6EndpointAddress(_v6(address), self._mi)

    def _outgoing(self, message: codec.CoapMessage, remote: Any) -> Any:
        if len(message.options) >= _MANY_OPTIONS:
            m = self._outgoing_many(message, remote)
        else:
            # Decoding our own exact bytes gives aiocoap the message field for field.
            m = aiocoap.Message.decode(codec.encode(message), remote)
        m.direction = Direction.OUTGOING
        m.transport_tuning = self.tuning
        return m

    def _outgoing_many(self, message: codec.CoapMessage, remote: Any) -> Any:
        """A message with many options (a bulk GET for 1,000 UEs has 1,000 Uri-Query options),
        built as aiocoap's decode would build it, option by option from the same bytes, but with
        the Uri-Path and Uri-Query options of a block-wise transfer's earlier requests reused:
        aiocoap 0.4.17 decodes options by slicing the remaining bytes, quadratic in their length,
        and RFC 7959 2.4 repeats the whole query in every block request."""
        m = aiocoap.Message(code=message.code, payload=message.payload)
        m.mtype = aiocoap.numbers.Type(message.mtype)
        m.mid = message.mid
        m.token = message.token
        m.remote = remote
        key = tuple(o for o in message.options if o[0] in _REUSED)
        reused = self._option_cache.get(key)
        if reused is None:
            reused = [aiocoap.numbers.OptionNumber(n).create_option(decode=v) for n, v in key]
            self._option_cache = {key: reused}  # one transfer at a time is enough
        pending = iter(reused)
        for number, value in message.options:  # in wire order, as decode adds them
            if number in _REUSED:
                m.opt.add_option(next(pending))
            else:
                m.opt.add_option(aiocoap.numbers.OptionNumber(number).create_option(decode=value))
        return m

    def send(self, message: codec.CoapMessage, to: Address, *, keep_mid: bool = False) -> None:
        """Send ``message`` to ``to``; CON is retransmitted per the tuning until ACKed or RST."""
        if self._ctx is None:
            raise RuntimeError(f"node {self.name} is not started")
        remote = self.remote(to)
        m = self._outgoing(message, remote)
        if not keep_mid and message.mtype in (MessageType.CON, MessageType.NON):
            m.mid = self._next_mid
            self._next_mid = (self._next_mid + 1) & 0xFFFF
        name = self.name

        def failed() -> None:
            self.send_failures.append(f"{name}: CON mid={m.mid:#06x} to {to[0]}:{to[1]} not acknowledged")

        self._mm._send_initially(m, failed if m.mtype == aiocoap.CON else None)

    def send_raw(self, data: bytes, to: Address) -> None:
        """Send exact bytes, bypassing the message layer (for malformed input)."""
        if self._ctx is None:
            raise RuntimeError(f"node {self.name} is not started")
        self._mi.transport.sendmsg(data, [], 0, _v6(to))

    def reply(self, request: codec.CoapMessage, response: codec.CoapMessage, to: Address) -> None:
        """Answer a request: piggybacked on its ACK when still possible, else as sent."""
        remote = self.remote(to)
        key = (remote, request.token)
        pending = self._mm._piggyback_opportunities.pop(key, None)
        if pending is not None:
            mid, handle = pending
            handle.cancel()
            m = self._outgoing(response, remote)
            m.mtype = aiocoap.ACK
            m.mid = mid
            self._mm._send_initially(m, None)
        else:
            self.send(response, to)
