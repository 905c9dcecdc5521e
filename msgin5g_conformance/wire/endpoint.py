"""The lower tester's own CoAP endpoint: one UDP socket, the strict codec, its own message layer.

Every node the harness plays (constrained UEs, the SCM-S, the relay a Constrained UE talks to,
and the listeners on addresses nobody owns) is one :class:`Endpoint`. It owns everything between
the socket and the test case, so that nothing the SUT does is hidden by a library:

* **Receiving** reads whole datagrams (up to 65,535 bytes) as they come, records each one with
  its exact bytes, and counts what the kernel dropped (``SO_RXQ_OVFL``).
* **Sending** hands the datagram to the kernel and records it only once the kernel accepted it;
  a refused send is kept as a :class:`SendFailure` with its errno, never shown as sent. Every
  send yields to the event loop, so that a burst never queues past a receiver's buffer.
* **The message layer** (RFC 7252 section 4; state lives as long as the endpoint, which is one
  test case, far shorter than EXCHANGE_LIFETIME): a Confirmable message from the peer is answered
  with an ACK (empty, or carrying the response a handler gives: piggybacked, 5.2.1) unless the
  node holds its ACKs for the test case to send; an Empty CON ("ping") with a Reset (4.3);
  duplicates (same source and Message ID, 4.5) are answered with the same ACK again and not
  processed twice; the node's own CONs are retransmitted with the profile's ACK_TIMEOUT and
  MAX_RETRANSMIT (4.2, 4.8) until an ACK or RST from the peer they were sent to matches their
  Message ID (4.4).

The endpoint *acts*; it does not judge. Verdicts are computed from the record (the datagrams on
the wire) by :mod:`msgin5g_conformance.engine.matching`, so the two capture modes judge alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import MessageType

log = logging.getLogger(__name__)

Address = tuple[str, int]
# record(src, dst, data, wall_time) -> capture sequence number, or None when not recorded here
Record = Callable[[Address, Address, bytes, float], "int | None"]
# handler(endpoint, message, source) -> a response to send, or None
Handler = Callable[["Endpoint", CoapMessage, Address], "CoapMessage | None"]

MAX_DATAGRAM = 65535
RCVBUF = 4 << 20  # large enough for a flood of a few thousand small datagrams
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
_READS_PER_WAKE = 256  # then let other callbacks run
_ANC = socket.CMSG_SPACE(4)


@dataclass(frozen=True)
class CoapTimers:
    """The tester's own CON transmission parameters (RFC 7252 4.8; short for loopback)."""

    ack_timeout_s: float = 0.15
    max_retransmit: int = 2

    @property
    def max_transmit_wait_s(self) -> float:
        """RFC 7252 4.8.2: from the first transmission until the sender gives up (random factor 1)."""
        return float(self.ack_timeout_s * (2 ** (self.max_retransmit + 1) - 1))


@dataclass(frozen=True)
class SendFailure:
    """A datagram the kernel refused: it never went on the wire."""

    node: str
    to: Address
    size: int
    errno: int
    reason: str
    when: float


@dataclass
class Exchange:
    """One Confirmable message this endpoint sent, until an ACK or RST matches it (RFC 7252 4.2)."""

    to: Address
    mid: int
    data: bytes
    first_seq: int | None
    sent_at: float  # loop time of the first transmission
    transmissions: int = 1
    state: str = "waiting"  # waiting | acked | reset | given-up | failed
    answered_at: float | None = None
    _timer: asyncio.TimerHandle | None = None

    @property
    def open(self) -> bool:
        return self.state == "waiting"


@dataclass
class _Seen:
    """An incoming CON/NON, kept for deduplication (RFC 7252 4.5)."""

    reply: bytes | None = None  # the ACK or RST sent for it, resent for each duplicate
    copies: int = 1


def _plain(sockaddr: tuple[object, ...]) -> Address:
    return (str(sockaddr[0]).split("%", 1)[0], int(sockaddr[1]))  # type: ignore[call-overload]


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@dataclass
class Endpoint:
    """One tester node: a UDP socket bound to ``address`` with its own message layer."""

    name: str
    address: Address
    timers: CoapTimers
    record: Record | None = None
    handler: Handler | None = None
    auto_ack: bool = True  # acknowledge CONs by itself; False: the test case's steps answer
    separate: bool = False  # a handler's response goes as empty ACK + separate response (5.2.2)
    listen_only: bool = False  # a listener on an address nobody owns: never answers anything
    exchanges: list[Exchange] = field(default_factory=list)
    failures: list[SendFailure] = field(default_factory=list)
    drops: int = 0  # datagrams the kernel dropped for a full receive buffer
    received: int = 0
    _sock: socket.socket | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _next_mid: int = 0
    _seen: dict[tuple[Address, int], _Seen] = field(default_factory=dict)
    _changed: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Bind the socket and start reading (synchronous: binding cannot wait)."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(family_of(self.address[0]), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
            sock.bind(self.address)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop = loop
        self._changed = asyncio.Event()
        self._next_mid = int.from_bytes(os.urandom(2), "big")
        loop.add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        for ex in self.exchanges:
            if ex._timer is not None:
                ex._timer.cancel()
                ex._timer = None
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    # -- receiving ---------------------------------------------------------------------------

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(_READS_PER_WAKE):
            try:
                data, anc, _flags, src = sock.recvmsg(MAX_DATAGRAM, _ANC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. a queued ICMP error on an IPv6 socket: not a datagram
                log.debug("%s: recvmsg: %s", self.name, exc)
                continue
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                    self.drops = max(self.drops, struct.unpack("=I", value[:4])[0])
            self.received += 1
            peer = _plain(src)
            if self.record is not None:
                self.record(peer, self.address, data, time.time())
            if not self.listen_only:
                try:
                    self._incoming(data, peer)
                except Exception:  # a handler bug must not stop the reader
                    log.exception("%s: handling a datagram from %s failed", self.name, peer)

    def _incoming(self, data: bytes, peer: Address) -> None:
        try:
            msg = codec.parse(data)
        except codec.MalformedDatagram:
            # RFC 7252 4.2: a CON with a format error is rejected with a Reset.
            if len(data) >= 4 and data[0] >> 6 == 1 and (data[0] >> 4) & 3 == MessageType.CON:
                self._reply_rst(peer, (data[2] << 8) | data[3])
            return
        if msg.mtype in (MessageType.ACK, MessageType.RST):
            self._answered(msg, peer)
            if msg.mtype == MessageType.RST or msg.code == 0:
                return
            # a piggybacked response: the handler may want it; it needs no ACK of its own
            self._handle(msg, peer)
            return
        key = (peer, msg.mid)
        seen = self._seen.get(key)
        if seen is not None:  # a duplicate: same answer again, processed once (RFC 7252 4.5)
            seen.copies += 1
            if seen.reply is not None:
                self._send_now(seen.reply, peer)
            return
        seen = self._seen[key] = _Seen()
        if msg.code == 0:  # an Empty CON is a "CoAP ping": answered with a Reset (4.3)
            self._reply_rst(peer, msg.mid)
            return
        response = self._handle(msg, peer)
        if msg.mtype != MessageType.CON:
            if response is not None:
                self._send_soon(self._stamp(response, MessageType.NON), peer)
            return
        if response is not None and not self.separate:
            piggybacked = CoapMessage(
                MessageType.ACK, response.code, msg.mid, response.token, response.options, response.payload
            )
            seen.reply = codec.encode(piggybacked)
            self._send_now(seen.reply, peer)
            return
        if self.auto_ack or response is not None:
            seen.reply = codec.encode(CoapMessage(MessageType.ACK, 0, msg.mid))
            self._send_now(seen.reply, peer)
        if response is not None:
            self._send_soon(self._stamp(response, MessageType.CON), peer)

    def _handle(self, msg: CoapMessage, peer: Address) -> CoapMessage | None:
        if self.handler is None:
            return None
        try:
            return self.handler(self, msg, peer)
        except Exception:  # a handler bug must not cost the peer its ACK
            log.exception("%s: the handler failed on %s from %s", self.name, msg.summary(), peer)
            return None

    def _answered(self, msg: CoapMessage, peer: Address) -> None:
        assert self._loop is not None
        for ex in self.exchanges:
            if ex.mid == msg.mid and ex.to == peer and ex.open:
                ex.state = "acked" if msg.mtype == MessageType.ACK else "reset"
                ex.answered_at = self._loop.time()
                if ex._timer is not None:
                    ex._timer.cancel()
                    ex._timer = None
                self._notify()
                return

    def _reply_rst(self, peer: Address, mid: int) -> None:
        rst = codec.encode(CoapMessage(MessageType.RST, 0, mid))
        seen = self._seen.setdefault((peer, mid), _Seen())
        seen.reply = rst
        self._send_now(rst, peer)

    # -- sending -----------------------------------------------------------------------------

    def new_mid(self) -> int:
        mid = self._next_mid
        self._next_mid = (self._next_mid + 1) & 0xFFFF
        return mid

    def _stamp(self, msg: CoapMessage, mtype: MessageType) -> CoapMessage:
        return CoapMessage(mtype, msg.code, self.new_mid(), msg.token, msg.options, msg.payload)

    def _send_now(self, data: bytes, to: Address) -> int | None:
        """Hand one datagram to the kernel now; record it if accepted. Returns its capture number."""
        sock = self._sock
        if sock is None:
            self._failed(to, data, errno.EBADF, "endpoint closed")
            return None
        try:
            sock.sendto(data, to)
        except OSError as exc:
            self._failed(to, data, exc.errno or 0, exc.strerror or str(exc))
            return None
        return self._sent(data, to)

    def _sent(self, data: bytes, to: Address) -> int | None:
        if self.record is not None:
            return self.record(self.address, to, data, time.time())
        return None

    def _failed(self, to: Address, data: bytes, code: int, reason: str) -> None:
        self.failures.append(SendFailure(self.name, to, len(data), code, reason, time.time()))
        self._notify()

    def _send_soon(self, msg: CoapMessage, to: Address) -> None:
        """A message the message layer sends on its own (a separate response): as :meth:`send`."""
        assert self._loop is not None
        task = self._loop.create_task(self.send(msg, to, keep_mid=True))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def send(self, msg: CoapMessage, to: Address, *, keep_mid: bool = False) -> int | None:
        """Send a message from this node. CON and NON get a fresh Message ID unless ``keep_mid``;
        a CON is retransmitted until a matching ACK or RST. Returns the capture sequence number
        of the datagram (None when the kernel refused it: see :attr:`failures`)."""
        if msg.mtype in (MessageType.CON, MessageType.NON) and not keep_mid:
            msg = CoapMessage(msg.mtype, msg.code, self.new_mid(), msg.token, msg.options, msg.payload, msg.version)
        if msg.mtype in (MessageType.ACK, MessageType.RST):
            # an answer sent by a step (a piggybacked response, or an ACK the node held): a
            # duplicate of the message it answers gets the same answer again (RFC 7252 4.5)
            self._seen.setdefault((to, msg.mid), _Seen()).reply = codec.encode(msg)
        data = codec.encode(msg)
        refused = len(self.failures)
        seq = await self.send_raw(data, to)
        if msg.mtype == MessageType.CON and self._sock is not None:
            # (seq is None also when the datagram went out but was not numbered here: sniff mode)
            self._track(msg.mid, data, to, seq, refused=len(self.failures) > refused)
        return seq

    async def send_raw(self, data: bytes, to: Address) -> int | None:
        """Send exact bytes, outside the message layer (for malformed input)."""
        assert self._loop is not None
        sock = self._sock
        if sock is None:
            self._failed(to, data, errno.EBADF, "endpoint closed")
            return None
        try:
            # waits for room in the send buffer instead of failing or queueing without bound
            await self._loop.sock_sendto(sock, data, to)
        except OSError as exc:
            self._failed(to, data, exc.errno or 0, exc.strerror or str(exc))
            return None
        seq = self._sent(data, to)
        await asyncio.sleep(0)  # let receivers (the SUT may share this loop) read
        return seq

    def _track(self, mid: int, data: bytes, to: Address, seq: int | None, *, refused: bool) -> None:
        assert self._loop is not None
        if refused:  # never on the wire: nothing to retransmit, nothing to wait for
            ex = Exchange(to, mid, data, None, self._loop.time(), state="failed")
            self.exchanges.append(ex)
            return
        ex = Exchange(to, mid, data, seq, self._loop.time())
        self.exchanges.append(ex)
        ex._timer = self._loop.call_later(self.timers.ack_timeout_s, self._retransmit, ex)

    def _retransmit(self, ex: Exchange) -> None:
        assert self._loop is not None
        ex._timer = None
        if not ex.open or self._sock is None:
            return
        if ex.transmissions > self.timers.max_retransmit:
            ex.state = "given-up"  # RFC 7252 4.2: out of attempts
            self._notify()
            return
        self._send_now(ex.data, ex.to)
        ex.transmissions += 1
        wait = self.timers.ack_timeout_s * (2 ** (ex.transmissions - 1))
        ex._timer = self._loop.call_later(wait, self._retransmit, ex)

    def open_exchanges(self) -> list[Exchange]:
        return [ex for ex in self.exchanges if ex.open]

    async def settled(self, deadline: float) -> bool:
        """Wait until none of this node's CONs waits for its ACK, or the loop time ``deadline``."""
        assert self._loop is not None and self._changed is not None
        while self.open_exchanges():
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
