"""The lower tester's CoAP endpoint on real loopback UDP sockets (RFC 7252 section 4 message layer).

Every test claims its own ``127.A.0.0/16`` block and uses distinct hosts of one case range, so
nothing here shares an address with another test or another run. The peers the endpoint talks to
are plain UDP sockets read on the same event loop, with the arrival time of every datagram, so
what is asserted is exactly what went on the wire. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.endpoint import CoapTimers, Endpoint
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber
from msgin5g_conformance.world.topology import CaseSpace, claim_block

Address = tuple[str, int]

PORT = 65401
FAST = CoapTimers(ack_timeout_s=0.05, max_retransmit=3)  # copies at 0, 50, 150, 350 ms; give up at 750 ms
SLOW = CoapTimers(ack_timeout_s=0.25, max_retransmit=3)  # no retransmission inside a short test window
WAIT_S = 2.0  # the bound on every wait for something that must happen
QUIET_S = 0.15  # how long "nothing arrives" is watched
BROADCAST: Address = ("255.255.255.255", 9)


# -- helpers -------------------------------------------------------------------------------------


class Recorder:
    """The ``record`` callable: every datagram the endpoint received or sent, with a sequence number."""

    def __init__(self) -> None:
        self.items: list[tuple[Address, Address, bytes, float]] = []

    def __call__(self, src: Address, dst: Address, data: bytes, when: float) -> int:
        self.items.append((src, dst, bytes(data), when))
        return len(self.items) - 1

    def sent_by(self, address: Address) -> list[tuple[Address, bytes]]:
        return [(dst, data) for src, dst, data, _ in self.items if src == address]

    def received_by(self, address: Address) -> list[tuple[Address, bytes]]:
        return [(src, data) for src, dst, data, _ in self.items if dst == address]


class Peer:
    """A plain UDP socket on the running loop that keeps every datagram with its loop arrival time."""

    def __init__(self, address: Address) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(address)
        self.address: Address = self.sock.getsockname()
        self.got: list[tuple[float, bytes, Address]] = []
        self._changed = asyncio.Event()
        self.loop.add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data, src = self.sock.recvfrom(70000)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.got.append((self.loop.time(), data, (src[0], src[1])))
            self._changed.set()

    @property
    def data(self) -> list[bytes]:
        return [d for _, d, _ in self.got]

    def send(self, data: bytes, to: Address) -> None:
        self.sock.sendto(data, to)

    async def wait(self, count: int, timeout: float = WAIT_S) -> list[bytes]:
        """Until at least ``count`` datagrams have arrived (bounded)."""

        async def enough() -> None:
            while len(self.got) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            pytest.fail(f"{self.address} got {len(self.got)} datagrams within {timeout} s, expected {count}")
        return self.data

    async def quiet(self, seconds: float = QUIET_S) -> list[bytes]:
        """Everything that has arrived once ``seconds`` more have passed."""
        await asyncio.sleep(seconds)
        return self.data

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class Nodes:
    """Opens endpoints and peers inside the running loop and closes all of them at the end."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []

    def endpoint(self, name: str, address: Address, timers: CoapTimers = SLOW, **options: object) -> Endpoint:
        ep = Endpoint(name, address, timers, **options)  # type: ignore[arg-type]
        ep.open()
        self._closers.append(ep.close)
        return ep

    def peer(self, address: Address) -> Peer:
        p = Peer(address)
        self._closers.append(p.close)
        return p

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


def run(scenario: Callable[[Nodes], Awaitable[None]]) -> None:
    """Run one test's scenario on a fresh event loop; every socket is closed whatever happens."""

    async def main() -> None:
        nodes = Nodes()
        try:
            await scenario(nodes)
        finally:
            nodes.close()

    asyncio.run(main())


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.002)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"not within {timeout} s: {what}")


def at(host: str) -> Address:
    return (host, PORT)


def header(mtype: MessageType, code: int, mid: int, tkl: int = 0) -> bytes:
    """The 4-byte CoAP header, written out by hand (independent of the codec under use)."""
    return bytes((0x40 | mtype << 4 | tkl, code, mid >> 8, mid & 0xFF))


def empty_ack(mid: int) -> bytes:
    return header(MessageType.ACK, 0, mid)


def empty_rst(mid: int) -> bytes:
    return header(MessageType.RST, 0, mid)


def request(mtype: MessageType, mid: int, token: bytes = b"", path: str = "msgin5g") -> bytes:
    return codec.encode(CoapMessage(mtype, Code.GET, mid, token, ((OptionNumber.URI_PATH, path.encode()),)))


def mid_of(data: bytes) -> int:
    return (data[2] << 8) | data[3]


@pytest.fixture
def space() -> Iterator[CaseSpace]:
    """A /24 of loopback hosts that no other test (or run) uses while this test runs."""
    block = claim_block()
    try:
        yield block.open_space(256)
    finally:
        block.release()


# -- receiving -----------------------------------------------------------------------------------


def test_largest_udp_datagram_is_received_and_recorded_whole(space: CaseSpace) -> None:
    """A 65,507-byte datagram (the IPv4 UDP maximum) from a plain socket is recorded byte for byte."""

    async def scenario(n: Nodes) -> None:
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), record=rec)
        sender = n.peer(at(space.host(2)))
        data = b"\x00" + os.urandom(65506)  # version 0: not CoAP, so the endpoint answers nothing
        sender.send(data, ep.address)
        await until(lambda: ep.received == 1, "the endpoint reads the datagram")
        assert len(rec.items) == 1
        src, dst, got, when = rec.items[0]
        assert (src, dst) == (sender.address, ep.address)
        assert len(got) == 65507
        assert got == data
        assert abs(when - time.time()) < WAIT_S
        assert await sender.quiet() == []

    run(scenario)


def test_kernel_dropped_datagrams_are_counted(space: CaseSpace) -> None:
    """Datagrams the kernel drops for a full receive buffer show up in ``drops`` (SO_RXQ_OVFL)."""

    async def scenario(n: Nodes) -> None:
        ep = n.endpoint("ue", at(space.host(1)), listen_only=True)
        assert ep._sock is not None
        ep._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a few datagrams at most
        flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            flood.bind(at(space.host(2)))
            for i in range(500):  # no yield to the loop: the endpoint cannot read in between
                flood.sendto(header(MessageType.NON, Code.POST, i) + b"\xff" + b"x" * 64, ep.address)
            await until(lambda: ep.received > 0, "the endpoint reads what the kernel kept")
            await asyncio.sleep(0.05)
            kept = ep.received
            assert 0 < kept < 500
            # the drop count rides on the next datagram the kernel queues
            flood.sendto(header(MessageType.NON, Code.POST, 999) + b"\xff" + b"last", ep.address)
            await until(lambda: ep.received == kept + 1, "the endpoint reads the datagram after the flood")
        finally:
            flood.close()
        assert ep.drops == 500 - kept

    run(scenario)


# -- sending -------------------------------------------------------------------------------------


def test_refused_send_is_a_failure_and_not_recorded(space: CaseSpace) -> None:
    """A send the kernel refuses (broadcast without SO_BROADCAST: EACCES) is a SendFailure, never recorded."""

    async def scenario(n: Nodes) -> None:
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), FAST, record=rec)
        peer = n.peer(at(space.host(2)))
        raw = header(MessageType.NON, Code.GET, 0x0101)
        assert await ep.send_raw(raw, BROADCAST) is None
        assert len(ep.failures) == 1
        f = ep.failures[0]
        assert (f.node, f.to, f.size, f.errno) == ("ue", BROADCAST, len(raw), errno.EACCES)
        assert f.reason
        assert rec.items == []

        # a CON the kernel refuses is an exchange that failed: not retransmitted, not awaited
        assert await ep.send(CoapMessage(MessageType.CON, Code.GET, 0), BROADCAST) is None
        assert [x.errno for x in ep.failures] == [errno.EACCES, errno.EACCES]
        assert [ex.state for ex in ep.exchanges] == ["failed"]
        assert ep.exchanges[0].first_seq is None
        await asyncio.sleep(3 * FAST.ack_timeout_s)
        assert len(ep.failures) == 2
        assert ep.exchanges[0].transmissions == 1
        assert rec.items == []

        # the endpoint still sends to a reachable peer, and records that
        seq = await ep.send_raw(raw, peer.address)
        assert seq == 0
        assert await peer.wait(1) == [raw]
        assert rec.sent_by(ep.address) == [(peer.address, raw)]

    run(scenario)


def test_send_after_icmp_port_unreachable_is_not_lost(space: CaseSpace) -> None:
    """After datagrams to a closed port (ICMP port unreachable), the next send still goes out and arrives."""

    async def scenario(n: Nodes) -> None:
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), record=rec)
        peer = n.peer(at(space.host(2)))
        closed = at(space.host(3))  # nothing is bound there
        for i in range(3):
            assert await ep.send_raw(header(MessageType.NON, Code.GET, i) + b"\xffdead", closed) is not None
            await asyncio.sleep(0.02)  # the ICMP error is queued by now
            live = header(MessageType.NON, Code.GET, 100 + i) + b"\xfflive"
            assert await ep.send_raw(live, peer.address) is not None
            got = await peer.wait(i + 1)
            assert got[i] == live
        assert ep.failures == []
        assert [dst for dst, _ in rec.sent_by(ep.address)] == [closed, peer.address] * 3
        # and the reader is still alive
        peer.send(header(MessageType.NON, Code.GET, 7) + b"\xffback", ep.address)
        await until(lambda: ep.received == 1, "the endpoint still receives")

    run(scenario)


def test_send_gives_fresh_message_ids_unless_kept(space: CaseSpace) -> None:
    """CON and NON get consecutive fresh Message IDs unless keep_mid; ACK and RST keep theirs."""

    async def scenario(n: Nodes) -> None:
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), record=rec)
        peer = n.peer(at(space.host(2)))
        base = ep.new_mid()
        sent = [
            CoapMessage(MessageType.NON, Code.GET, 0x1111),
            CoapMessage(MessageType.CON, Code.GET, 0x2222, b"\x01"),
            CoapMessage(MessageType.NON, Code.GET, 0x3333),
            CoapMessage(MessageType.ACK, 0, 0x4444),
            CoapMessage(MessageType.RST, 0, 0x5555),
        ]
        seqs = [await ep.send(m, peer.address) for m in sent]
        seqs.append(await ep.send(CoapMessage(MessageType.NON, Code.GET, 0x6666), peer.address, keep_mid=True))
        assert seqs == [0, 1, 2, 3, 4, 5]
        got = await peer.wait(6)
        mids = [mid_of(d) for d in got]
        assert mids == [(base + 1) & 0xFFFF, (base + 2) & 0xFFFF, (base + 3) & 0xFFFF, 0x4444, 0x5555, 0x6666]
        assert [codec.parse(d).mtype for d in got] == [m.mtype for m in sent] + [MessageType.NON]
        assert [d for _, d in rec.sent_by(ep.address)] == got
        assert [ex.mid for ex in ep.exchanges] == [mids[1]]  # only the CON is an exchange

    run(scenario)


# -- the node's own CONs -------------------------------------------------------------------------


def test_con_to_silent_peer_is_retransmitted_then_given_up(space: CaseSpace) -> None:
    """A CON to a silent peer goes out 1 + MAX_RETRANSMIT times, same bytes, at doubling intervals, then gives up."""

    async def scenario(n: Nodes) -> None:
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), FAST, record=rec)
        peer = n.peer(at(space.host(2)))
        loop = asyncio.get_running_loop()
        msg = CoapMessage(MessageType.CON, Code.GET, 0, b"\x07\x08", ((OptionNumber.URI_PATH, b"x"),))
        seq = await ep.send(msg, peer.address)
        assert seq == 0
        [ex] = ep.exchanges
        assert (ex.to, ex.first_seq, ex.state) == (peer.address, 0, "waiting")
        assert await ep.settled(loop.time() + WAIT_S)
        gave_up = loop.time()
        assert ex.state == "given-up"
        assert ex.transmissions == 1 + FAST.max_retransmit
        assert gave_up - ex.sent_at >= 0.9 * FAST.max_transmit_wait_s
        copies = await peer.quiet(2 * FAST.ack_timeout_s)  # and nothing after giving up
        assert len(copies) == 1 + FAST.max_retransmit
        assert len(set(copies)) == 1
        assert mid_of(copies[0]) == ex.mid
        assert codec.parse(copies[0]).token == b"\x07\x08"
        times = [t for t, _, _ in peer.got]
        for k, (earlier, later) in enumerate(itertools.pairwise(times)):
            expected = FAST.ack_timeout_s * 2**k
            gap = later - earlier
            assert 0.7 * expected <= gap <= expected + 0.12, f"gap {k + 1} is {gap:.3f} s, expected ~{expected} s"
        assert [d for _, d in rec.sent_by(ep.address)] == copies
        assert ep.failures == []

    run(scenario)


def test_con_acked_by_its_peer_stops_retransmission(space: CaseSpace) -> None:
    """An empty ACK from the peer the CON went to, with its Message ID, ends the exchange as acked."""

    async def scenario(n: Nodes) -> None:
        ep = n.endpoint("ue", at(space.host(1)), SLOW)
        peer = n.peer(at(space.host(2)))
        loop = asyncio.get_running_loop()
        await ep.send(CoapMessage(MessageType.CON, Code.GET, 0, b"\x01"), peer.address)
        [first] = await peer.wait(1)
        peer.send(empty_ack(mid_of(first)), ep.address)
        assert await ep.settled(loop.time() + WAIT_S)
        [ex] = ep.exchanges
        assert ex.state == "acked"
        assert ex.answered_at is not None and ex.answered_at >= ex.sent_at
        assert ex.transmissions == 1
        assert await peer.quiet(2 * SLOW.ack_timeout_s) == [first]  # no retransmission

    run(scenario)


def test_con_reset_by_its_peer_stops_retransmission(space: CaseSpace) -> None:
    """An RST from the peer with the CON's Message ID ends the exchange as reset (RFC 7252 4.2)."""

    async def scenario(n: Nodes) -> None:
        ep = n.endpoint("ue", at(space.host(1)), SLOW)
        peer = n.peer(at(space.host(2)))
        loop = asyncio.get_running_loop()
        await ep.send(CoapMessage(MessageType.CON, Code.GET, 0), peer.address)
        [first] = await peer.wait(1)
        peer.send(empty_rst(mid_of(first)), ep.address)
        assert await ep.settled(loop.time() + WAIT_S)
        assert [ex.state for ex in ep.exchanges] == ["reset"]
        assert await peer.quiet(2 * SLOW.ack_timeout_s) == [first]

    run(scenario)


def test_piggybacked_response_acks_the_con_and_reaches_the_handler(space: CaseSpace) -> None:
    """An ACK carrying a response acks the CON and is handed to the handler (it needs no ACK of its own)."""

    async def scenario(n: Nodes) -> None:
        seen: list[tuple[CoapMessage, Address]] = []

        def handler(node: Endpoint, msg: CoapMessage, src: Address) -> CoapMessage | None:
            seen.append((msg, src))
            return None

        ep = n.endpoint("ue", at(space.host(1)), SLOW, handler=handler)
        peer = n.peer(at(space.host(2)))
        loop = asyncio.get_running_loop()
        await ep.send(CoapMessage(MessageType.CON, Code.GET, 0, b"\xab"), peer.address)
        [first] = await peer.wait(1)
        response = CoapMessage(MessageType.ACK, Code.CONTENT, mid_of(first), b"\xab", (), b"doc")
        peer.send(codec.encode(response), ep.address)
        assert await ep.settled(loop.time() + WAIT_S)
        assert [ex.state for ex in ep.exchanges] == ["acked"]
        assert seen == [(response, peer.address)]
        assert await peer.quiet(2 * SLOW.ack_timeout_s) == [first]

    run(scenario)


def test_ack_from_another_address_or_with_another_mid_does_not_stop_retransmission(space: CaseSpace) -> None:
    """An ACK with the CON's MID from another host or port, or from the peer with another MID, matches nothing."""

    async def scenario(n: Nodes) -> None:
        ep = n.endpoint("ue", at(space.host(1)), FAST)
        peer = n.peer(at(space.host(2)))
        other_host = n.peer(at(space.host(3)))
        other_port = n.peer((space.host(2), PORT + 1))
        loop = asyncio.get_running_loop()
        await ep.send(CoapMessage(MessageType.CON, Code.GET, 0), peer.address)
        [first] = await peer.wait(1)
        mid = mid_of(first)
        other_host.send(empty_ack(mid), ep.address)
        other_port.send(empty_ack(mid), ep.address)
        other_host.send(empty_rst(mid), ep.address)
        peer.send(empty_ack(mid ^ 0x0001), ep.address)
        await until(lambda: ep.received == 4, "the endpoint reads the four stray answers")
        [ex] = ep.exchanges
        assert ex.state == "waiting"
        assert await ep.settled(loop.time() + WAIT_S)
        assert ex.state == "given-up"
        assert await peer.quiet(0.05) == [first] * (1 + FAST.max_retransmit)
        assert other_host.data == [] and other_port.data == []

    run(scenario)


# -- answering the peer's messages ---------------------------------------------------------------


def test_con_request_is_acked_at_once_and_duplicates_get_the_same_ack(space: CaseSpace) -> None:
    """An incoming CON gets an empty ACK at once; a duplicate (same source, same MID) the same ACK, handled once."""

    async def scenario(n: Nodes) -> None:
        calls: list[tuple[int, Address]] = []

        def handler(node: Endpoint, msg: CoapMessage, src: Address) -> CoapMessage | None:
            calls.append((msg.mid, src))
            return None

        rec = Recorder()
        ep = n.endpoint("scms", at(space.host(1)), record=rec, handler=handler)
        peer = n.peer(at(space.host(2)))
        other = n.peer(at(space.host(3)))
        loop = asyncio.get_running_loop()
        req = request(MessageType.CON, 0x4321, b"\xaa\xbb")
        sent_at = loop.time()
        peer.send(req, ep.address)
        await peer.wait(1)
        assert peer.got[0][0] - sent_at < 0.5
        peer.send(req, ep.address)
        got = await peer.wait(2)
        assert got == [b"\x60\x00\x43\x21", b"\x60\x00\x43\x21"]
        assert calls == [(0x4321, peer.address)]
        # the same MID from another source is a new message, not a duplicate (RFC 7252 4.5)
        other.send(req, ep.address)
        assert await other.wait(1) == [b"\x60\x00\x43\x21"]
        assert calls == [(0x4321, peer.address), (0x4321, other.address)]
        assert await peer.quiet() == got  # nothing more: no separate response, no retransmission
        assert ep.exchanges == []
        assert [(src, dst) for src, dst, _, _ in rec.items] == [
            (peer.address, ep.address),
            (ep.address, peer.address),
            (peer.address, ep.address),
            (ep.address, peer.address),
            (other.address, ep.address),
            (ep.address, other.address),
        ]

    run(scenario)


def content_handler(calls: list[CoapMessage]) -> Callable[[Endpoint, CoapMessage, Address], CoapMessage | None]:
    def handler(node: Endpoint, msg: CoapMessage, src: Address) -> CoapMessage | None:
        calls.append(msg)
        options = ((OptionNumber.CONTENT_FORMAT, b"\x32"),)
        return CoapMessage(MessageType.CON, Code.CONTENT, 0, msg.token, options, b'{"ok":1}')

    return handler


def test_con_request_is_answered_piggybacked(space: CaseSpace) -> None:
    """A handler's response to a CON goes in the ACK: same MID and token, the response's code and payload."""

    async def scenario(n: Nodes) -> None:
        calls: list[CoapMessage] = []
        ep = n.endpoint("scms", at(space.host(1)), FAST, handler=content_handler(calls))
        peer = n.peer(at(space.host(2)))
        req = request(MessageType.CON, 0x0102, b"\x01\x02\x03\x04")
        peer.send(req, ep.address)
        [data] = await peer.wait(1)
        got = codec.parse(data)
        assert (got.mtype, got.mid, got.code, got.token) == (MessageType.ACK, 0x0102, Code.CONTENT, b"\x01\x02\x03\x04")
        assert got.payload == b'{"ok":1}'
        assert got.content_format() == 50
        peer.send(req, ep.address)  # a duplicate: the same piggybacked response again, not handled again
        assert await peer.wait(2) == [data, data]
        assert len(calls) == 1 and calls[0].mid == 0x0102
        assert await peer.quiet(3 * FAST.ack_timeout_s) == [data, data]  # no separate response
        assert ep.exchanges == []

    run(scenario)


def test_separate_response_follows_an_empty_ack_and_is_retransmitted_until_acked(space: CaseSpace) -> None:
    """With separate=True a CON gets an empty ACK, then a CON response with the token, resent until ACKed."""

    async def scenario(n: Nodes) -> None:
        calls: list[CoapMessage] = []
        ep = n.endpoint("scms", at(space.host(1)), FAST, handler=content_handler(calls), separate=True)
        peer = n.peer(at(space.host(2)))
        loop = asyncio.get_running_loop()
        req = request(MessageType.CON, 0x0A0B, b"\xfe\xed")
        peer.send(req, ep.address)
        ack, response = await peer.wait(2)
        assert ack == b"\x60\x00\x0a\x0b"
        sep = codec.parse(response)
        assert (sep.mtype, sep.code, sep.token, sep.payload) == (
            MessageType.CON,
            Code.CONTENT,
            b"\xfe\xed",
            b'{"ok":1}',
        )
        assert sep.mid != 0x0A0B
        [ex] = ep.exchanges
        assert (ex.to, ex.mid, ex.state) == (peer.address, sep.mid, "waiting")
        again = (await peer.wait(3))[2]  # not acknowledged: retransmitted
        assert again == response
        peer.send(empty_ack(sep.mid), ep.address)
        assert await ep.settled(loop.time() + WAIT_S)
        assert ex.state == "acked"
        copies = await peer.quiet(3 * FAST.ack_timeout_s)
        assert copies.count(response) == ex.transmissions >= 2
        # a duplicate request gets the empty ACK again, no second response
        peer.send(req, ep.address)
        copies = await peer.wait(len(copies) + 1)
        assert copies[-1] == ack
        assert await peer.quiet() == copies
        assert len(calls) == 1 and len(ep.exchanges) == 1

    run(scenario)


def test_non_request_gets_a_non_response_with_a_fresh_mid(space: CaseSpace) -> None:
    """A NON request with a handler gets a NON (no ACK) with the endpoint's next Message ID; a duplicate, nothing."""

    async def scenario(n: Nodes) -> None:
        calls: list[CoapMessage] = []
        ep = n.endpoint("scms", at(space.host(1)), handler=content_handler(calls))
        peer = n.peer(at(space.host(2)))
        base = ep.new_mid()
        req_mid = (base + 0x8000) & 0xFFFF
        req = request(MessageType.NON, req_mid, b"\x09")
        peer.send(req, ep.address)
        [data] = await peer.wait(1)
        got = codec.parse(data)
        assert (got.mtype, got.code, got.token, got.payload) == (MessageType.NON, Code.CONTENT, b"\x09", b'{"ok":1}')
        assert got.mid == (base + 1) & 0xFFFF != req_mid
        peer.send(req, ep.address)  # a duplicate NON is silently ignored (RFC 7252 4.5)
        await until(lambda: ep.received == 2, "the endpoint reads the duplicate")
        assert await peer.quiet() == [data]
        assert ep.exchanges == [] and len(calls) == 1

    run(scenario)


def test_empty_con_ping_is_answered_with_a_reset(space: CaseSpace) -> None:
    """An Empty CON ("CoAP ping") gets an RST with its Message ID, even when ACKs are held; never the handler."""

    async def scenario(n: Nodes) -> None:
        calls: list[CoapMessage] = []
        acking = n.endpoint("ue1", at(space.host(1)), handler=content_handler(calls))
        holding = n.endpoint("ue2", at(space.host(2)), handler=content_handler(calls), auto_ack=False)
        peer = n.peer(at(space.host(3)))
        ping = b"\x40\x00\x12\x34"
        for count, ep in enumerate((acking, holding), start=1):
            peer.send(ping, ep.address)
            await peer.wait(2 * count - 1)
            peer.send(ping, ep.address)  # a duplicate ping: the same Reset again
            await peer.wait(2 * count)
        assert await peer.quiet() == [b"\x70\x00\x12\x34"] * 4
        assert [src for _, _, src in peer.got] == [acking.address] * 2 + [holding.address] * 2
        assert calls == []

    run(scenario)


def test_held_ack_is_sent_by_the_step_and_repeated_for_duplicates(space: CaseSpace) -> None:
    """With auto_ack=False a CON gets no ACK until sent explicitly; a later duplicate then gets that ACK again."""

    async def scenario(n: Nodes) -> None:
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), record=rec, auto_ack=False)
        peer = n.peer(at(space.host(2)))
        req = request(MessageType.CON, 0xBEEF, b"\x55")
        peer.send(req, ep.address)
        await until(lambda: ep.received == 1, "the endpoint reads the CON")
        assert await peer.quiet() == []
        peer.send(req, ep.address)  # a duplicate before the ACK: still nothing
        await until(lambda: ep.received == 2, "the endpoint reads the duplicate")
        assert await peer.quiet() == []
        seq = await ep.send(CoapMessage(MessageType.ACK, 0, 0xBEEF), peer.address)
        assert seq == 2
        assert await peer.wait(1) == [b"\x60\x00\xbe\xef"]
        peer.send(req, ep.address)
        assert await peer.wait(2) == [b"\x60\x00\xbe\xef"] * 2
        assert await peer.quiet() == [b"\x60\x00\xbe\xef"] * 2
        assert ep.exchanges == []
        assert [d for _, d in rec.sent_by(ep.address)] == [b"\x60\x00\xbe\xef"] * 2

    run(scenario)


def test_burst_of_sends_reaches_a_receiver_on_the_same_loop(space: CaseSpace) -> None:
    """2,000 back-to-back NON sends reach an endpoint on the same loop with a small buffer: each send yields."""

    async def scenario(n: Nodes) -> None:
        sent, got = Recorder(), Recorder()
        a = n.endpoint("ue1", at(space.host(1)), record=sent)
        b = n.endpoint("ue2", at(space.host(2)), record=got)
        assert b._sock is not None
        # a receive buffer of a few dozen datagrams: a burst that did not yield would overflow it
        b._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        for i in range(2000):
            msg = CoapMessage(MessageType.NON, Code.POST, 0, b"", (), i.to_bytes(2, "big"))
            assert await a.send(msg, b.address) is not None
        await until(lambda: b.received == 2000, "all 2,000 datagrams are read", timeout=3.0)
        assert b.drops == 0
        assert a.failures == []
        assert [d for _, d in got.received_by(b.address)] == [d for _, d in sent.sent_by(a.address)]
        assert len({mid_of(d) for _, d in got.received_by(b.address)}) == 2000
        assert {codec.parse(d).payload for _, d in got.received_by(b.address)} == {
            i.to_bytes(2, "big") for i in range(2000)
        }

    run(scenario)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes((0x49, 0x01, 0xBE, 0xEF)) + b"123456789", id="tkl-9"),
        pytest.param(bytes((0x40, 0x01, 0xBE, 0xEF, 0xFF)), id="marker-without-payload"),
        pytest.param(bytes((0x40, 0x01, 0xBE, 0xEF, 0xF1, 0x00)), id="option-delta-15"),
        pytest.param(bytes((0x40, 0xE0, 0xBE, 0xEF)), id="reserved-code-class-7"),
        pytest.param(bytes((0x40, 0x00, 0xBE, 0xEF, 0x00)), id="empty-with-bytes"),
    ],
)
def test_malformed_con_is_rejected_with_a_reset_and_recorded(space: CaseSpace, data: bytes) -> None:
    """A CON with a format error is recorded exactly and answered with an RST with its MID (RFC 7252 4.2)."""

    async def scenario(n: Nodes) -> None:
        calls: list[CoapMessage] = []
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), record=rec, handler=content_handler(calls))
        peer = n.peer(at(space.host(2)))
        peer.send(data, ep.address)
        assert await peer.wait(1) == [b"\x70\x00\xbe\xef"]
        assert [(src, dst, d) for src, dst, d, _ in rec.items] == [
            (peer.address, ep.address, data),
            (ep.address, peer.address, b"\x70\x00\xbe\xef"),
        ]
        assert await peer.quiet() == [b"\x70\x00\xbe\xef"]
        assert calls == []

    run(scenario)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes((0x59, 0x01, 0xBE, 0xEF)) + b"123456789", id="non-tkl-9"),
        pytest.param(bytes((0x50, 0x00, 0xBE, 0xEF)), id="empty-non"),
        pytest.param(bytes((0x80, 0x01, 0xBE, 0xEF)), id="version-2-con"),
        pytest.param(bytes((0x00, 0x01, 0xBE, 0xEF)), id="version-0-con"),
        pytest.param(bytes((0x40, 0x01, 0xBE)), id="short-header"),
        pytest.param(bytes((0x60, 0x01, 0xBE, 0xEF)), id="ack-carrying-a-request"),
    ],
)
def test_malformed_datagram_that_is_not_a_v1_con_is_ignored(space: CaseSpace, data: bytes) -> None:
    """A malformed datagram that is not a version-1 CON is recorded and silently ignored."""

    async def scenario(n: Nodes) -> None:
        calls: list[CoapMessage] = []
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), record=rec, handler=content_handler(calls))
        peer = n.peer(at(space.host(2)))
        peer.send(data, ep.address)
        await until(lambda: ep.received == 1, "the endpoint reads the datagram")
        assert await peer.quiet() == []
        assert [(src, dst, d) for src, dst, d, _ in rec.items] == [(peer.address, ep.address, data)]
        assert calls == []

    run(scenario)


def test_listen_only_records_and_never_answers(space: CaseSpace) -> None:
    """A listen_only node records every datagram and answers none: no ACK, no RST, no response."""

    async def scenario(n: Nodes) -> None:
        calls: list[CoapMessage] = []
        rec = Recorder()
        ep = n.endpoint("elsewhere", at(space.host(1)), record=rec, handler=content_handler(calls), listen_only=True)
        peer = n.peer(at(space.host(2)))
        datagrams = [
            request(MessageType.CON, 0x0001, b"\x01"),
            b"\x40\x00\x00\x02",  # ping
            request(MessageType.NON, 0x0003),
            bytes((0x49, 0x01, 0x00, 0x04)) + b"123456789",  # malformed CON
            request(MessageType.CON, 0x0001, b"\x01"),  # duplicate
        ]
        for d in datagrams:
            peer.send(d, ep.address)
        await until(lambda: ep.received == len(datagrams), "the listener reads every datagram")
        assert await peer.quiet() == []
        assert [(src, dst, d) for src, dst, d, _ in rec.items] == [(peer.address, ep.address, d) for d in datagrams]
        assert calls == []
        assert ep.exchanges == [] and ep.failures == []

    run(scenario)


def test_handler_exception_does_not_stop_the_reader(space: CaseSpace) -> None:
    """A handler that raises does not stop the endpoint, nor cost the peer its ACK: every CON is answered."""

    async def scenario(n: Nodes) -> None:
        def handler(node: Endpoint, msg: CoapMessage, src: Address) -> CoapMessage | None:
            if msg.token == b"\xde\xad":
                raise RuntimeError("handler bug")
            return None

        escaped: list[dict[str, object]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: escaped.append(context))
        ep = n.endpoint("scms", at(space.host(1)), handler=handler)
        peer = n.peer(at(space.host(2)))
        peer.send(request(MessageType.CON, 0x0001, b"\xde\xad"), ep.address)
        peer.send(request(MessageType.CON, 0x0002, b"\x01"), ep.address)
        assert await peer.wait(2) == [empty_ack(0x0001), empty_ack(0x0002)]
        assert ep.received == 2
        assert escaped == []  # the endpoint kept the error to itself (logged), the loop never saw it

    run(scenario)


# -- closing -------------------------------------------------------------------------------------


def test_close_cancels_retransmission_and_later_sends_fail_with_ebadf(space: CaseSpace) -> None:
    """close() stops a CON's retransmissions; a send after close is a SendFailure (EBADF), not an exception."""

    async def scenario(n: Nodes) -> None:
        rec = Recorder()
        ep = n.endpoint("ue", at(space.host(1)), FAST, record=rec)
        peer = n.peer(at(space.host(2)))
        await ep.send(CoapMessage(MessageType.CON, Code.GET, 0), peer.address)
        [first] = await peer.wait(1)
        ep.close()
        assert not ep.is_open
        # all retransmissions would have gone out by 350 ms
        assert await peer.quiet(FAST.ack_timeout_s * 2**FAST.max_retransmit) == [first]
        assert ep.exchanges[0].transmissions == 1
        recorded = len(rec.items)

        assert await ep.send(CoapMessage(MessageType.CON, Code.GET, 0), peer.address) is None
        assert await ep.send_raw(b"\x50\x01\x00\x01", peer.address) is None
        assert [(f.to, f.errno) for f in ep.failures] == [(peer.address, errno.EBADF)] * 2
        assert len(ep.exchanges) == 1  # the refused CON is not tracked
        ep.close()  # closing twice is harmless

        peer.send(request(MessageType.CON, 0x0001), ep.address)  # the address is no longer read
        assert await peer.quiet() == [first]
        assert len(rec.items) == recorded
        assert ep.received == 0

    run(scenario)


# -- regressions: _track() took "not numbered by record" for "refused" (both fail on HEAD 85568a9) ----------


def test_con_is_retransmitted_even_when_the_record_does_not_number_it(space: CaseSpace) -> None:
    """A CON the kernel accepted is retransmitted even if ``record`` returns None (a stray, a full recorder)."""

    async def scenario(n: Nodes) -> None:
        def record(src: Address, dst: Address, data: bytes, when: float) -> int | None:
            return None  # what Router.record returns for a stray, and for a Recorder at its limit

        ep = n.endpoint("ue", at(space.host(1)), FAST, record=record)
        peer = n.peer(at(space.host(2)))
        loop = asyncio.get_running_loop()
        assert await ep.send(CoapMessage(MessageType.CON, Code.GET, 0), peer.address) is None
        [first] = await peer.wait(1)  # it did go on the wire
        assert ep.failures == []
        [ex] = ep.exchanges
        assert ex.state == "waiting", (
            f"a CON the kernel accepted is in state {ex.state!r} because record() returned None; "
            "it must wait for its ACK and be retransmitted"
        )
        assert await ep.settled(loop.time() + WAIT_S)
        assert await peer.quiet(0.05) == [first] * (1 + FAST.max_retransmit)

    run(scenario)


def test_refused_con_fails_without_a_record(space: CaseSpace) -> None:
    """With record=None (sniff capture mode) a CON the kernel refused is a failed exchange, not retransmitted."""

    async def scenario(n: Nodes) -> None:
        ep = n.endpoint("ue", at(space.host(1)), FAST, record=None)
        assert await ep.send(CoapMessage(MessageType.CON, Code.GET, 0), BROADCAST) is None
        assert [f.errno for f in ep.failures] == [errno.EACCES]
        [ex] = ep.exchanges
        await asyncio.sleep(3 * FAST.ack_timeout_s)
        assert (ex.state, ex.transmissions, len(ep.failures)) == ("failed", 1, 1), (
            f"a CON the kernel refused (EACCES) is in state {ex.state!r} after {ex.transmissions} "
            f"transmissions and {len(ep.failures)} send failures because no record is set; it must be "
            "'failed' at once and never retransmitted"
        )

    run(scenario)
