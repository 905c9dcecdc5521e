"""Read the UDP datagrams of a packet capture, streaming, with located errors.

This is the one place that decodes captures: the offline analysis iterates
:func:`iter_capture`, and the live harness's :func:`~msgin5g_conformance.wire.capture.pcap.read_pcap`
and :func:`~msgin5g_conformance.wire.capture.pcap.decode_frame` are thin wrappers over it.

Formats (draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng):

* classic pcap, micro- (``a1b2c3d4``) or nanosecond (``a1b23c4d``) timestamps,
  either byte order, and Kuznetzov's modified pcap;
* pcapng with any number of sections (each with its own byte order) and of
  interfaces per section (each with its own link type, ``if_tsresol`` in powers
  of 10 or 2 and ``if_tsoffset``), Enhanced, Simple and obsolete Packet Blocks;
  every other block type is checked for its framing and skipped.

Link types (the LINKTYPE registry of the tcpdump group): NULL (0) and LOOP (108),
Ethernet (1) with any number of IEEE 802.1Q / 802.1ad VLAN tags, RAW (101, and
the DLT aliases 12 and 14), IPV4 (228) / IPV6 (229), Linux cooked capture v1
SLL (113) and v2 SLL2 (276), the framings of ``tcpdump -i any``.

Network layers: IPv4 (RFC 791) and IPv6 (RFC 8200) with the hop-by-hop,
routing, destination-options, authentication and fragment extension headers,
then UDP (RFC 768).  Fragmented datagrams (IPv4 identification / offset / MF,
the IPv6 Fragment header) are reassembled, keyed by source, destination,
identification and protocol as both RFCs say, in a bounded table: at most
:data:`MAX_PENDING` datagrams and :data:`MAX_PENDING_BYTES` bytes pending, each
for at most :data:`FRAGMENT_TIMEOUT` seconds of capture time (Linux's
``ipfrag_time`` and ``ipfrag_high_thresh`` defaults).

What is wrong with a single frame (a missing or overlapping fragment, a header
cut by the snaplen, a malformed IP or UDP header) is a :class:`Problem` in the
stream, after which reading goes on.  What makes the file unreadable (not a
capture, a truncated or corrupt record or block, an unknown link type) raises
:class:`CaptureFileError` naming the file, the byte offset and, when known, the
frame number; frames before it have been yielded by then.  Frames that are not
IP, or IP but not UDP, are skipped and counted in :class:`ReaderStats`.

The file is read in :data:`CHUNK`-byte pieces, so memory does not grow with
the capture's size.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import BinaryIO

from msgin5g_conformance.errors import HarnessError

__all__ = [
    "CHUNK",
    "FRAGMENT_TIMEOUT",
    "MAX_PENDING",
    "MAX_PENDING_BYTES",
    "SUPPORTED_LINKTYPES",
    "CaptureFileError",
    "Frame",
    "Problem",
    "ReaderStats",
    "capture_files",
    "decode_packet",
    "iter_capture",
]

#: Bytes read from the file at a time.
CHUNK = 1 << 20
#: Seconds of capture time a datagram may wait for its missing fragments (Linux ``ipfrag_time``).
FRAGMENT_TIMEOUT = 30.0
#: Datagrams that may wait for fragments at once; the oldest is given up beyond that.
MAX_PENDING = 1024
#: Fragment bytes that may be held at once (Linux ``ipfrag_high_thresh``).
MAX_PENDING_BYTES = 4 << 20
#: Largest captured length of one packet we accept (libpcap's MAXIMUM_SNAPLEN is 262144).
MAX_PACKET = 1 << 24
#: Largest pcapng block we hold in memory; larger blocks of other types are skipped unread.
MAX_BLOCK = MAX_PACKET + (1 << 16)
#: File suffixes :func:`capture_files` takes from a folder.
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")

CAPTURE_SUFFIXES_TEXT = ", ".join(f"*{s}" for s in CAPTURE_SUFFIXES)

# --------------------------------------------------------------------------- #
# The interface
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class Frame:
    """One UDP datagram found in the capture.

    ``number`` is the 1-based frame number as Wireshark counts it (for a
    reassembled datagram, the frame that completed it, whose ``offset`` and
    ``when`` it also carries); ``frames`` lists every frame of a reassembled
    datagram and is empty otherwise.  ``truncated`` says the capture kept only
    a prefix of the payload (the snaplen cut it).
    """

    number: int
    when: float
    offset: int
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes
    frames: tuple[int, ...] = ()
    truncated: bool = False


# A frozen dataclass's __init__ sets each field through object.__setattr__: about
# 1 us for Frame's eight, more than the rest of decoding a frame.  The reader
# therefore builds each Frame as this unfrozen twin (the same fields, hence the
# same slots) and then gives it Frame's class, which CPython allows between
# identical layouts: the object is an ordinary, frozen Frame from then on.
_FrameParts = make_dataclass(
    "_FrameParts",
    [(f.name, f.type, field(default=f.default)) for f in fields(Frame)],
    slots=True,
)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with a frame that does not stop the reading.

    ``kind`` is one of ``missing-fragment``, ``overlapping-fragment``,
    ``truncated-frame``, ``bad-ip``, ``bad-udp``.
    """

    kind: str
    frame: int
    offset: int
    message: str


class CaptureFileError(HarnessError):
    """A capture file cannot be read on: names the path, the byte offset and the frame if known."""

    def __init__(self, path: str, offset: int, message: str, frame: int | None = None) -> None:
        self.path = path
        self.offset = offset
        self.message = message
        self.frame = frame
        where = f"{path}: at byte offset {offset}: {message}"
        super().__init__(where if frame is None else f"{where} (frame {frame})")

    @property
    def reason(self) -> str:
        """The message without the location (the name the live harness's PcapError used)."""
        return self.message

    def __reduce__(self) -> tuple[type[CaptureFileError], tuple[str, int, str, int | None]]:
        # Keep the error picklable (pytest-xdist and multiprocessing send exceptions
        # between processes); the default reduce would pass only the text.
        return type(self), (self.path, self.offset, self.message, self.frame)


@dataclass(slots=True)
class ReaderStats:
    """Counts of what one :func:`iter_capture` pass saw; filled in as it goes and when it ends."""

    frames: int = 0  # packet records / blocks, as Wireshark numbers them
    datagrams: int = 0  # Frame objects yielded (reassembled ones once)
    reassembled: int = 0  # of those, put together from fragments
    fragments: int = 0  # IP fragments taken into reassembly
    duplicate_fragments: int = 0  # a fragment seen twice with the same bytes (ignored)
    not_ip: int = 0  # frames carrying neither IPv4 nor IPv6
    not_udp: int = 0  # IP packets of another protocol
    truncated: int = 0  # datagrams yielded with truncated=True
    problems: int = 0  # Problem objects yielded
    linktypes: dict[int, int] = field(default_factory=dict)  # link type -> frames


# --------------------------------------------------------------------------- #
# Link types
# --------------------------------------------------------------------------- #

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_LOOP = 108
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

# How each link type's header leads to the IP header.
_K_RAW, _K_NULL, _K_ETH, _K_SLL, _K_SLL2 = range(5)
_LINK_KINDS: dict[int, int] = {
    LINKTYPE_RAW: _K_RAW,
    12: _K_RAW,  # DLT_RAW on most systems
    14: _K_RAW,  # DLT_RAW on OpenBSD
    228: _K_RAW,  # LINKTYPE_IPV4
    229: _K_RAW,  # LINKTYPE_IPV6
    # The 4-byte family is in the capturing host's byte order for NULL and in
    # network order for LOOP, and AF_INET6 differs between systems: the IP
    # version nibble is the safer guide for both.
    LINKTYPE_NULL: _K_NULL,
    LINKTYPE_LOOP: _K_NULL,
    LINKTYPE_ETHERNET: _K_ETH,
    LINKTYPE_LINUX_SLL: _K_SLL,
    LINKTYPE_LINUX_SLL2: _K_SLL2,
}
SUPPORTED_LINKTYPES = frozenset(_LINK_KINDS)

_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad, the older QinQ tag
_IPPROTO_UDP = 17

# IPv6 extension headers stepped over on the way to UDP (RFC 8200 section 4).
_V6_HOP, _V6_ROUTING, _V6_FRAGMENT, _V6_DSTOPTS, _V6_AH = 0, 43, 44, 60, 51
_V6_EIGHTS = frozenset({_V6_HOP, _V6_ROUTING, _V6_DSTOPTS})  # length in 8-octet units after the first 8

_V4_HDR = struct.Struct("!BxHHHxB")  # ver/ihl, total length, id, flags/offset, protocol
_V6_HDR = struct.Struct("!IHB")  # version/class/flow, payload length, next header
_V6_FRAG = struct.Struct("!BxHI")  # next header, offset/flags, identification
_UDP_LEN = struct.Struct("!4xH")  # the length field after the two ports
# Ethernet + IPv4 without options + UDP, from the frame's first byte: EtherType, ver/ihl, total
# length, flags/offset, protocol, addresses and ports (the _pairs key), UDP length
_ETH_V4_UDP = struct.Struct("!12xHBxH2xHxB2x12sH")

# --------------------------------------------------------------------------- #
# Addresses
# --------------------------------------------------------------------------- #

# (source address, destination address, ports) bytes -> the two (text, port) pairs.
_pairs: dict[bytes, tuple[tuple[str, int], tuple[str, int]]] = {}
_PAIR_CACHE = 8192


def _address_text(packed: bytes) -> str:
    if len(packed) == 4:
        return socket.inet_ntop(socket.AF_INET, packed)
    return str(ipaddress.IPv6Address(packed))  # RFC 5952 text, as ipaddress prints it


def _pair(key: bytes) -> tuple[tuple[str, int], tuple[str, int]]:
    """Decode ``src + dst + sport + dport`` (12 or 36 bytes) into two (address, port) pairs."""
    half = (len(key) - 4) // 2
    sport, dport = struct.unpack_from("!HH", key, 2 * half)
    pair = ((_address_text(key[:half]), sport), (_address_text(key[half : 2 * half]), dport))
    if len(_pairs) >= _PAIR_CACHE:
        _pairs.clear()
    _pairs[key] = pair
    return pair


# --------------------------------------------------------------------------- #
# Frame decoding and fragment reassembly
# --------------------------------------------------------------------------- #


@dataclass(slots=True)
class _Pending:
    """A datagram waiting for its fragments."""

    version: int
    addresses: bytes
    ident: int
    number: int  # first frame
    offset: int
    when: float
    pieces: list[tuple[int, bytes, int]] = field(default_factory=list)  # (offset, data, frame)
    frames: list[int] = field(default_factory=list)
    have: int = 0
    total: int | None = None
    dead: bool = False  # given up (overlap, bad fragment): later fragments are absorbed silently

    def describe(self) -> str:
        half = len(self.addresses) // 2
        src = _address_text(self.addresses[:half])
        dst = _address_text(self.addresses[half:])
        return f"IPv{self.version} datagram {src} -> {dst} (identification {self.ident:#x})"

    def had(self) -> str:
        spans = ", ".join(f"{o}-{o + len(d) - 1}" for o, d, _ in sorted(self.pieces))
        size = "an unknown length (the last fragment is missing)" if self.total is None else f"{self.total}"
        frames = ", ".join(str(n) for n in sorted(self.frames))
        return f"it had bytes {spans or 'none'} of {size} in frame(s) {frames}"


class _Decoder:
    """Turns captured frames into Frame / Problem objects; holds the reassembly table."""

    def __init__(self, reassemble: bool = True) -> None:
        self.reassemble = reassemble
        self.pending: dict[tuple[bytes, int, int], _Pending] = {}
        self.pending_bytes = 0
        self.oldest = 0.0  # capture time of the oldest pending datagram
        self.deferred: list[Problem] = []  # problems about earlier frames, found while decoding this one
        self.not_ip = 0
        self.not_udp = 0
        self.fragments = 0
        self.duplicates = 0
        self.reassembled = 0
        self.problems = 0
        self.truncated = 0

    # -- link layer ---------------------------------------------------------- #

    def packet(
        self, buf: bytes, start: int, end: int, wire: int, kind: int, number: int, offset: int, when: float
    ) -> Frame | Problem | None:
        """Decode the frame ``buf[start:end]`` (``wire`` bytes long on the wire)."""
        if self.pending and when - self.oldest > FRAGMENT_TIMEOUT:
            self._expire(when)
        if kind == _K_RAW:
            ip = start
        elif kind == _K_NULL:
            ip = start + 4
        elif kind == _K_ETH:
            pos = start + 12
            if pos + 2 > end:
                self.not_ip += 1
                return None
            ethertype = (buf[pos] << 8) | buf[pos + 1]
            while ethertype in _VLAN_TPIDS and pos + 6 <= end:
                pos += 4  # IEEE 802.1Q / 802.1ad tag: TPID, TCI, then the inner type
                ethertype = (buf[pos] << 8) | buf[pos + 1]
            if ethertype != _ETH_P_IP and ethertype != _ETH_P_IPV6:
                self.not_ip += 1
                return None
            ip = pos + 2
        elif kind == _K_SLL:
            if start + 16 > end:
                self.not_ip += 1
                return None
            ethertype = (buf[start + 14] << 8) | buf[start + 15]
            if ethertype != _ETH_P_IP and ethertype != _ETH_P_IPV6:
                self.not_ip += 1
                return None
            ip = start + 16
        else:  # _K_SLL2
            if start + 20 > end:
                self.not_ip += 1
                return None
            ethertype = (buf[start] << 8) | buf[start + 1]
            if ethertype != _ETH_P_IP and ethertype != _ETH_P_IPV6:
                self.not_ip += 1
                return None
            ip = start + 20
        if ip >= end:
            self.not_ip += 1
            return None
        version = buf[ip] >> 4
        if version == 4:
            return self._ipv4(buf, ip, end, wire - (ip - start), number, offset, when)
        if version == 6:
            return self._ipv6(buf, ip, end, wire - (ip - start), number, offset, when)
        if kind in (_K_RAW, _K_NULL):
            self.not_ip += 1
            return None
        return self._problem(
            "bad-ip", number, offset, f"frame {number}: the link layer says IP, but the version is {version}"
        )

    # -- IPv4 ------------------------------------------------------------------ #

    def _ipv4(
        self, buf: bytes, ip: int, end: int, on_wire: int, number: int, offset: int, when: float
    ) -> Frame | Problem | None:
        if ip + 20 > end:
            return self._short(number, offset, "IPv4 header", on_wire, end - ip)
        vihl, total, ident, frag, proto = _V4_HDR.unpack_from(buf, ip)
        hlen = (vihl & 0x0F) * 4
        if hlen < 20 or total < hlen:
            return self._problem(
                "bad-ip", number, offset, f"frame {number}: IPv4 header length {hlen} / total length {total} impossible"
            )
        if total > on_wire:
            return self._problem(
                "bad-ip",
                number,
                offset,
                f"frame {number}: IPv4 total length {total} is more than the {on_wire} bytes the frame holds",
            )
        if proto != _IPPROTO_UDP:
            self.not_udp += 1
            return None
        stop = ip + total
        if frag & 0x3FFF:  # MF set or a non-zero offset: a fragment (RFC 791)
            if not self.reassemble:
                self.fragments += 1
                return None
            if stop > end:
                return self._short(number, offset, "IPv4 fragment", on_wire, end - ip)
            return self._fragment(
                4,
                buf[ip + 12 : ip + 20],
                ident,
                proto,
                (frag & 0x1FFF) * 8,
                bool(frag & 0x2000),
                buf[ip + hlen : stop],
                number,
                offset,
                when,
            )
        return self._udp(buf, ip + 12, 8, ip + hlen, stop, end, on_wire - hlen, number, offset, when)

    # -- IPv6 ------------------------------------------------------------------ #

    def _ipv6(
        self, buf: bytes, ip: int, end: int, on_wire: int, number: int, offset: int, when: float
    ) -> Frame | Problem | None:
        if ip + 40 > end:
            return self._short(number, offset, "IPv6 header", on_wire, end - ip)
        _, plen, nxt = _V6_HDR.unpack_from(buf, ip)
        stop = ip + 40 + plen
        if plen == 0:  # a jumbogram (RFC 2675) or an empty packet: nothing loopback CoAP sends
            self.not_udp += 1
            return None
        if 40 + plen > on_wire:
            return self._problem(
                "bad-ip",
                number,
                offset,
                f"frame {number}: IPv6 payload length {plen} is more than the {on_wire - 40} bytes the frame holds",
            )
        pos = ip + 40
        while nxt != _IPPROTO_UDP:
            if pos + 8 > stop:
                return self._problem(
                    "bad-ip", number, offset, f"frame {number}: IPv6 extension header {nxt} runs past the packet"
                )
            if pos + 8 > end:
                return self._short(number, offset, "IPv6 extension header", on_wire, end - ip)
            if nxt in _V6_EIGHTS:
                step = (buf[pos + 1] + 1) * 8
            elif nxt == _V6_AH:
                step = (buf[pos + 1] + 2) * 4
            elif nxt == _V6_FRAGMENT:
                inner, flags, ident = _V6_FRAG.unpack_from(buf, pos)
                if flags & 0xFFF9:  # a real fragment: offset or M set (an atomic one is stepped over)
                    if not self.reassemble:
                        self.fragments += 1
                        return None
                    if inner != _IPPROTO_UDP and inner != _V6_DSTOPTS:
                        self.not_udp += 1
                        return None
                    if stop > end:
                        return self._short(number, offset, "IPv6 fragment", on_wire, end - ip)
                    return self._fragment(
                        6,
                        buf[ip + 8 : ip + 40],
                        ident,
                        inner,
                        flags & 0xFFF8,
                        bool(flags & 1),
                        buf[pos + 8 : stop],
                        number,
                        offset,
                        when,
                    )
                step = 8
            else:
                self.not_udp += 1  # ESP, ICMPv6, TCP, no-next-header, ...
                return None
            nxt = buf[pos]
            pos += step
        return self._udp(buf, ip + 8, 32, pos, stop, end, on_wire - (pos - ip), number, offset, when)

    # -- UDP ------------------------------------------------------------------- #

    def _udp(
        self,
        buf: bytes,
        addresses: int,
        size: int,
        udp: int,
        stop: int,
        end: int,
        on_wire: int,
        number: int,
        offset: int,
        when: float,
    ) -> Frame | Problem:
        """The UDP header at ``udp``; the IP layer ends at ``stop``, the capture at ``end``."""
        if udp + 8 > end:
            if udp + 8 > stop:
                return self._problem(
                    "bad-udp", number, offset, f"frame {number}: the IP packet is too short for a UDP header"
                )
            return self._short(number, offset, "UDP header", on_wire, end - udp)
        (ulen,) = _UDP_LEN.unpack_from(buf, udp)
        if ulen < 8 or udp + ulen > stop:
            return self._problem(
                "bad-udp",
                number,
                offset,
                f"frame {number}: UDP length {ulen} does not fit the {stop - udp} bytes the IP layer gives it",
            )
        # Without IP options or extension headers, addresses and ports are one slice.
        joined = udp == addresses + size
        key = buf[addresses : udp + 4] if joined else buf[addresses : addresses + size] + buf[udp : udp + 4]
        pair = _pairs.get(key) or _pair(key)
        last = udp + ulen
        made: Frame
        if last <= end:
            made = _FrameParts(number, when, offset, pair[0], pair[1], buf[udp + 8 : last])
        else:
            self.truncated += 1
            made = _FrameParts(number, when, offset, pair[0], pair[1], buf[udp + 8 : end], (), True)
        made.__class__ = Frame
        return made

    def _problem(self, kind: str, number: int, offset: int, message: str) -> Problem:
        self.problems += 1
        return Problem(kind, number, offset, message)

    def _short(self, number: int, offset: int, what: str, on_wire: int, captured: int) -> Problem:
        if captured < on_wire:
            message = f"frame {number}: the capture cut the {what} short (kept {captured} of {on_wire} bytes)"
            return self._problem("truncated-frame", number, offset, message)
        return self._problem("bad-ip", number, offset, f"frame {number}: the packet is too short for its {what}")

    # -- fragments ------------------------------------------------------------- #

    def _fragment(
        self,
        version: int,
        addresses: bytes,
        ident: int,
        proto: int,
        start: int,
        more: bool,
        data: bytes,
        number: int,
        offset: int,
        when: float,
    ) -> Frame | Problem | None:
        self.fragments += 1
        key = (addresses, ident, proto)
        entry = self.pending.get(key)
        if entry is None:
            while self.pending and (
                len(self.pending) >= MAX_PENDING or self.pending_bytes + len(data) > MAX_PENDING_BYTES
            ):
                self._give_up(
                    next(iter(self.pending)),
                    f"the reassembly table was full ({MAX_PENDING} datagrams or {MAX_PENDING_BYTES} bytes)",
                )
            entry = _Pending(version, addresses, ident, number, offset, when)
            if not self.pending:
                self.oldest = when
            self.pending[key] = entry
        entry.frames.append(number)
        if entry.dead:
            return None
        finish = start + len(data)
        for other_start, other, other_frame in entry.pieces:
            if start < other_start + len(other) and other_start < finish:
                if other_start == start and other == data:
                    self.duplicates += 1
                    entry.frames.pop()
                    return None
                return self._kill(
                    entry,
                    "overlapping-fragment",
                    number,
                    offset,
                    f"frame {number}: {entry.describe()}: bytes {start}-{finish - 1} overlap "
                    f"bytes {other_start}-{other_start + len(other) - 1} of frame {other_frame}; "
                    "the datagram is dropped",
                )
        if more and len(data) % 8:
            return self._kill(
                entry,
                "bad-ip",
                number,
                offset,
                f"frame {number}: {entry.describe()}: a fragment other than the last carries {len(data)} bytes, "
                "not a multiple of 8; the datagram is dropped",
            )
        if not more:
            if entry.total is not None and entry.total != finish:
                return self._kill(
                    entry,
                    "overlapping-fragment",
                    number,
                    offset,
                    f"frame {number}: {entry.describe()}: two last fragments end at {entry.total} and {finish}; "
                    "the datagram is dropped",
                )
            entry.total = finish
        limit = 65535 - (20 if version == 4 else 0)
        if finish > limit or (entry.total is not None and finish > entry.total):
            return self._kill(
                entry,
                "bad-ip",
                number,
                offset,
                f"frame {number}: {entry.describe()}: a fragment ends at byte {finish}, beyond the datagram's end",
            )
        entry.pieces.append((start, data, number))
        entry.have += len(data)
        self.pending_bytes += len(data)
        if entry.total is None or entry.have != entry.total:
            return None
        # No overlaps and as many bytes as the total: every byte is there.
        self._forget(key, entry)
        entry.pieces.sort()
        payload = b"".join(piece for _, piece, _ in entry.pieces)
        self.reassembled += 1
        return self._whole(entry, proto, payload, number, offset, when)

    def _whole(
        self, entry: _Pending, proto: int, payload: bytes, number: int, offset: int, when: float
    ) -> Frame | Problem | None:
        """The UDP datagram in a reassembled IP payload whose first header is ``proto``."""
        pos = 0
        while proto == _V6_DSTOPTS and pos + 8 <= len(payload):
            proto = payload[pos]
            pos += (payload[pos + 1] + 1) * 8
        if proto != _IPPROTO_UDP:
            self.not_udp += 1
            return None
        frames = tuple(sorted(entry.frames))
        if pos + 8 > len(payload):
            return self._problem(
                "bad-udp", number, offset, f"frame {number}: {entry.describe()} is too short for a UDP header"
            )
        (ulen,) = _UDP_LEN.unpack_from(payload, pos)
        if ulen < 8 or pos + ulen > len(payload):
            return self._problem(
                "bad-udp",
                number,
                offset,
                f"frame {number}: {entry.describe()}: UDP length {ulen} does not fit "
                f"its {len(payload) - pos} reassembled bytes",
            )
        key = entry.addresses + payload[pos : pos + 4]
        src, dst = _pairs.get(key) or _pair(key)
        return Frame(number, when, offset, src, dst, payload[pos + 8 : pos + ulen], frames)

    def _forget(self, key: tuple[bytes, int, int], entry: _Pending) -> None:
        del self.pending[key]
        self.pending_bytes -= entry.have
        if self.pending:
            self.oldest = next(iter(self.pending.values())).when

    def _kill(self, entry: _Pending, kind: str, number: int, offset: int, message: str) -> Problem:
        entry.dead = True
        self.pending_bytes -= entry.have
        entry.pieces.clear()
        entry.have = 0
        return self._problem(kind, number, offset, message)

    def _give_up(self, key: tuple[bytes, int, int], why: str) -> None:
        entry = self.pending[key]
        self._forget(key, entry)
        if not entry.dead:
            message = f"frame {entry.number}: {entry.describe()} is missing fragments: {entry.had()}; {why}"
            self.deferred.append(self._problem("missing-fragment", entry.number, entry.offset, message))

    def _expire(self, now: float) -> None:
        while self.pending:
            key = next(iter(self.pending))
            if now - self.pending[key].when <= FRAGMENT_TIMEOUT:
                self.oldest = self.pending[key].when
                return
            self._give_up(key, f"no fragment completed it within {FRAGMENT_TIMEOUT:g} s of capture time")

    def finish(self) -> None:
        """The capture has ended: every datagram still pending is missing fragments."""
        for key in list(self.pending):
            self._give_up(key, "the capture ends before its missing fragments")


_live = _Decoder(reassemble=False)


def decode_packet(linktype: int, frame: bytes) -> Frame | Problem | None:
    """Decode one captured frame on its own (no reassembly: a fragment gives ``None``).

    :raises ValueError: ``linktype`` is not one this module decodes.
    """
    kind = _LINK_KINDS.get(linktype)
    if kind is None:
        raise ValueError(f"unsupported link type {linktype}")
    return _live.packet(frame, 0, len(frame), len(frame), kind, 0, 0, 0.0)


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #


class _Chunks:
    """The file seen through a sliding buffer: ``buf[0]`` is at file offset ``base``."""

    def __init__(self, fh: BinaryIO, base: int) -> None:
        self.fh = fh
        self.base = base

    def refill(self, buf: bytes, pos: int, need: int) -> bytes:
        """Return a buffer starting at ``buf[pos]`` holding at least ``need`` bytes, fewer only at the end."""
        rest = buf[pos:]
        self.base += pos
        parts = [rest]
        have = len(rest)
        want = max(need, CHUNK)
        while have < need:
            data = self.fh.read(want - have)
            if not data:
                break
            parts.append(data)
            have += len(data)
        return b"".join(parts)

    def skip_to(self, offset: int) -> bytes:
        """Drop the buffer and continue at file ``offset``; return the new (empty) buffer."""
        self.fh.seek(offset)
        self.base = offset
        return b""


_PCAP_MAGICS: dict[bytes, tuple[str, int, int]] = {
    # first four file bytes -> (byte order, timestamp fraction divisor, extra record header bytes)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, 0),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, 0),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, 0),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, 0),
    # Kuznetzov's "modified" pcap adds ifindex, protocol, pkt_type and padding.
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, 8),
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, 8),
}
_SHB = b"\x0a\x0d\x0d\x0a"
_SHB_TYPE = 0x0A0D0D0A
_IDB, _OPB, _SPB, _EPB = 1, 2, 3, 6


class _Pass:
    """One reading of one file: the decoder, the numbering and the counts."""

    def __init__(self, path: str, fh: BinaryIO, size: int, stats: ReaderStats | None) -> None:
        self.path = path
        self.fh = fh
        self.size = size
        self.stats = stats
        self.decoder = _Decoder()
        self.number = 0
        self.yielded = 0

    def error(self, offset: int, message: str, frame: int | None = None) -> CaptureFileError:
        return CaptureFileError(self.path, offset, message, frame)

    def count(self, linktype: int, frames: int) -> None:
        if self.stats is not None and frames:
            self.stats.linktypes[linktype] = self.stats.linktypes.get(linktype, 0) + frames

    # -- classic pcap ------------------------------------------------------------ #

    def classic(self, head: bytes, order: str, divisor: int, extra: int) -> Generator[Frame | Problem, None, None]:
        if len(head) < 24:
            raise self.error(len(head), f"the file ends inside the 24-byte pcap header ({len(head)} bytes)")
        _, major, _, _, _, snaplen, network = struct.unpack_from(order + "IHHiIII", head, 0)
        if major != 2:
            raise self.error(4, f"unsupported pcap major version {major}")
        # Bits 16 and up may carry FCS information (draft-ietf-opsawg-pcap section 4).
        linktype = network & 0xFFFF
        kind = _LINK_KINDS.get(linktype)
        if kind is None:
            raise self.error(20, f"link type {linktype} of the file's interface is not one this reader decodes")
        most = min(max(snaplen, 262144), MAX_PACKET)
        record = struct.Struct(order + "IIII").unpack_from
        rec_size = 16 + extra
        chunks = _Chunks(self.fh, 24)
        decode = self.decoder.packet
        deferred = self.decoder.deferred
        pending = self.decoder.pending  # fragments waiting: then every frame goes through decode
        fast = kind == _K_ETH and self.decoder.reassemble
        eth_v4_udp, pairs, frame_parts = _ETH_V4_UDP.unpack_from, _pairs, _FrameParts
        buf = head[24:]
        pos = 0
        number = 0
        yielded = 0
        try:
            while True:
                if pos + rec_size > len(buf):
                    buf = chunks.refill(buf, pos, rec_size)
                    pos = 0
                    if len(buf) < rec_size:
                        if buf:
                            raise self.error(
                                chunks.base,
                                f"the file ends inside a {rec_size}-byte record header ({len(buf)} bytes left)",
                                number + 1,
                            )
                        break
                sec, frac, incl, orig = record(buf, pos)
                number += 1
                start = pos + rec_size
                stop = start + incl
                if stop > len(buf):
                    at = chunks.base + pos
                    if frac >= divisor:
                        raise self.error(at, f"timestamp fraction {frac} out of range (not a record header?)", number)
                    if incl > most:
                        raise self.error(
                            at, f"record claims {incl} captured bytes, more than the {most} allowed", number
                        )
                    if at + rec_size + incl > self.size:
                        raise self.error(
                            at,
                            f"record claims {incl} captured bytes but only {self.size - at - rec_size} remain",
                            number,
                        )
                    buf = chunks.refill(buf, pos, rec_size + incl)
                    start -= pos
                    stop -= pos
                    pos = 0
                    if stop > len(buf):  # the file shrank under us
                        raise self.error(chunks.base, "the file ends inside a record", number)
                elif frac >= divisor:
                    raise self.error(
                        chunks.base + pos, f"timestamp fraction {frac} out of range (not a record header?)", number
                    )
                if fast and incl >= 42 and orig <= incl and not pending:
                    # An Ethernet frame holding a whole IPv4/UDP datagram without IP options (what
                    # tcpdump -i lo writes): every header field in one unpack, the frame built here;
                    # anything else, or anything odd about it, goes the general way below.
                    ethertype, vihl, total, frag, proto, key, ulen = eth_v4_udp(buf, start)
                    if (
                        ethertype == _ETH_P_IP
                        and vihl == 0x45
                        and proto == _IPPROTO_UDP
                        and not frag & 0x3FFF
                        and 28 <= total <= incl - 14
                        and 8 <= ulen <= total - 20
                    ):
                        pair = pairs.get(key) or _pair(key)
                        made: Frame = frame_parts(
                            number,
                            sec + frac / divisor,
                            chunks.base + pos,
                            pair[0],
                            pair[1],
                            buf[start + 42 : start + 34 + ulen],
                        )
                        made.__class__ = Frame
                        yielded += 1
                        yield made
                        pos = stop
                        continue
                got = decode(
                    buf,
                    start,
                    stop,
                    orig if orig > incl else incl,
                    kind,
                    number,
                    chunks.base + pos,
                    sec + frac / divisor,
                )
                if deferred:
                    yielded += len(deferred)
                    yield from deferred
                    deferred.clear()
                if got is not None:
                    yielded += 1
                    yield got
                pos = stop
            yield from self.end()
        finally:
            self.number = number
            self.yielded += yielded
            self.count(linktype, number)

    # -- pcapng -------------------------------------------------------------------- #

    def pcapng(self, head: bytes) -> Generator[Frame | Problem, None, None]:
        chunks = _Chunks(self.fh, 0)
        decode = self.decoder.packet
        deferred = self.decoder.deferred
        buf = head
        pos = 0
        number = 0
        yielded = 0
        order = "<"
        header = struct.Struct("<II").unpack_from
        trail = struct.Struct("<I").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        # Per interface of the current section: (kind or None, divisor, offset seconds, snaplen, link type, IDB offset)
        interfaces: list[tuple[int | None, int, int, int, int, int]] = []
        counts: dict[int, int] = {}
        when = 0.0
        try:
            while True:
                if pos + 12 > len(buf):
                    buf = chunks.refill(buf, pos, 12)
                    pos = 0
                    if len(buf) < 12:
                        if buf:
                            raise self.error(
                                chunks.base, f"the file ends inside a block header ({len(buf)} bytes left)", number + 1
                            )
                        break
                at = chunks.base + pos
                if buf[pos : pos + 4] == _SHB:
                    bom = buf[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        order = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        order = ">"
                    else:
                        raise self.error(at + 8, f"bad pcapng byte-order magic {bom.hex()}")
                    header = struct.Struct(order + "II").unpack_from
                    trail = struct.Struct(order + "I").unpack_from
                    epb = struct.Struct(order + "IIIII").unpack_from
                    interfaces = []
                btype, blen = header(buf, pos)
                is_packet = btype in (_EPB, _SPB, _OPB)
                frame = number + 1 if is_packet else None
                if blen < 12 or blen % 4:
                    raise self.error(at, f"invalid pcapng block length {blen} (block type {btype:#x})", frame)
                if at + blen > self.size:
                    raise self.error(
                        at, f"block of type {btype:#x} claims {blen} bytes but only {self.size - at} remain", frame
                    )
                if pos + blen > len(buf):
                    if blen > MAX_BLOCK:
                        if is_packet or btype in (_SHB_TYPE, _IDB):
                            raise self.error(
                                at, f"block of type {btype:#x} claims {blen} bytes, more than {MAX_BLOCK}", frame
                            )
                        buf = chunks.skip_to(at + blen - 4)
                        tail = self.fh.read(4)
                        trailer = trail(tail, 0)[0] if len(tail) == 4 else None
                        if trailer != blen:
                            raise self.error(at, f"block length {blen} does not match its trailing copy {trailer}")
                        buf = chunks.skip_to(at + blen)
                        pos = 0
                        continue
                    buf = chunks.refill(buf, pos, blen)
                    pos = 0
                    if blen > len(buf):
                        raise self.error(at, f"the file ends inside a block of type {btype:#x}", frame)
                end = pos + blen - 4
                (trailer,) = trail(buf, end)
                if trailer != blen:
                    raise self.error(at, f"block length {blen} does not match its trailing copy {trailer}", frame)
                body = pos + 8
                if btype in (_EPB, _OPB):
                    number += 1
                    if body + 20 > end:
                        raise self.error(at, f"block of type {btype:#x} is too short for its fixed fields", number)
                    if btype == _EPB:
                        if_id, ts_hi, ts_lo, incl, orig = epb(buf, body)
                    else:
                        ids, ts_hi, ts_lo, incl, orig = epb(buf, body)
                        if_id = ids & 0xFFFF if order == "<" else ids >> 16
                    data = body + 20
                    if data + incl > end:
                        raise self.error(at, f"packet claims {incl} captured bytes, more than its block has", number)
                    if if_id >= len(interfaces):
                        raise self.error(
                            at, f"packet refers to interface {if_id}, which the section does not describe", number
                        )
                    kind, divisor, ts_offset, _, linktype, idb_at = interfaces[if_id]
                    if kind is None:
                        raise self.error(
                            at,
                            f"link type {linktype} of interface {if_id} (described at byte offset {idb_at}) "
                            "is not one this reader decodes",
                            number,
                        )
                    counts[linktype] = counts.get(linktype, 0) + 1
                    sec, frac = divmod((ts_hi << 32) | ts_lo, divisor)
                    when = sec + ts_offset + frac / divisor
                    got = decode(buf, data, data + incl, orig if orig > incl else incl, kind, number, at, when)
                    if deferred:
                        yielded += len(deferred)
                        yield from deferred
                        deferred.clear()
                    if got is not None:
                        yielded += 1
                        yield got
                elif btype == _SPB:
                    # interface 0, no timestamp: the previous packet's time stands in for it
                    number += 1
                    if body + 4 > end:
                        raise self.error(at, "simple packet block too short for its length field", number)
                    if not interfaces:
                        raise self.error(at, "simple packet block before any interface description", number)
                    (orig,) = struct.unpack_from(order + "I", buf, body)
                    kind, _, _, snaplen, linktype, idb_at = interfaces[0]
                    incl = min(orig, snaplen) if snaplen else orig
                    if body + 4 + incl > end:
                        raise self.error(at, f"simple packet claims {incl} bytes, more than its block holds", number)
                    if kind is None:
                        raise self.error(
                            at,
                            f"link type {linktype} of interface 0 (described at byte offset {idb_at}) "
                            "is not one this reader decodes",
                            number,
                        )
                    counts[linktype] = counts.get(linktype, 0) + 1
                    got = decode(buf, body + 4, body + 4 + incl, orig, kind, number, at, when)
                    if deferred:
                        yielded += len(deferred)
                        yield from deferred
                        deferred.clear()
                    if got is not None:
                        yielded += 1
                        yield got
                elif btype == _IDB:
                    if body + 8 > end:
                        raise self.error(at, "interface description block too short for its fixed fields")
                    linktype, _, snaplen = struct.unpack_from(order + "HHI", buf, body)
                    divisor, ts_offset = self._idb_options(buf, order, body + 8, end, chunks.base)
                    interfaces.append((_LINK_KINDS.get(linktype), divisor, ts_offset, snaplen, linktype, at))
                elif btype == _SHB_TYPE:
                    if body + 16 > end:
                        raise self.error(at, "section header block too short for its fixed fields")
                    major = struct.unpack_from(order + "H", buf, body + 4)[0]
                    if major != 1:
                        raise self.error(at, f"unsupported pcapng major version {major}")
                # Every other block type (name resolution, statistics, secrets, custom)
                # carries nothing we need.
                pos += blen
            yield from self.end()
        finally:
            self.number = number
            self.yielded += yielded
            for linktype, frames in counts.items():
                self.count(linktype, frames)

    def _idb_options(self, buf: bytes, order: str, pos: int, end: int, base: int) -> tuple[int, int]:
        """Return (timestamp units per second, timestamp offset seconds) from an IDB's options."""
        divisor, ts_offset = 1_000_000, 0
        opt = struct.Struct(order + "HH").unpack_from
        while pos + 4 <= end:
            code, length = opt(buf, pos)
            value = pos + 4
            if code == 0:  # opt_endofopt
                break
            if value + length > end:
                raise self.error(base + pos, f"interface option {code} runs past the end of its block")
            if code == 9 and length >= 1:  # if_tsresol: 10**-n, or 2**-n with the top bit set
                resol = buf[value]
                divisor = 2 ** (resol & 0x7F) if resol & 0x80 else 10 ** (resol & 0x7F)
                if divisor > 10**30:
                    raise self.error(base + pos, f"interface timestamp resolution {resol:#x} out of range")
            elif code == 14 and length >= 8:  # if_tsoffset
                (ts_offset,) = struct.unpack_from(order + "q", buf, value)
            pos = value + ((length + 3) & ~3)
        return divisor, ts_offset

    def end(self) -> Iterator[Problem]:
        self.decoder.finish()
        self.yielded += len(self.decoder.deferred)
        yield from self.decoder.deferred
        self.decoder.deferred.clear()


def iter_capture(path: str | os.PathLike[str], stats: ReaderStats | None = None) -> Iterator[Frame | Problem]:
    """Yield the UDP datagrams (and the problems) of a pcap or pcapng file, in file order.

    Reading is streaming: the file is read in :data:`CHUNK`-byte pieces and only
    fragments awaiting reassembly are kept.  When ``stats`` is given it is filled
    with the counts of what was seen (also when the iteration stops early).

    :raises CaptureFileError: the file cannot be opened, is empty or not a
        capture, or is truncated or corrupt at some byte offset (raised when the
        reading reaches that place, after the frames before it).
    """
    name = os.fspath(path)
    try:
        fh = open(name, "rb")  # noqa: SIM115 - closed in the finally below, across yields
    except OSError as exc:
        raise CaptureFileError(name, 0, f"cannot open: {exc.strerror or exc}") from None
    try:
        try:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(min(CHUNK, max(size, 24)))
        except OSError as exc:
            raise CaptureFileError(name, 0, f"cannot read: {exc.strerror or exc}") from None
        reading = _Pass(name, fh, size, stats)
        if not head:
            raise CaptureFileError(name, 0, "empty file")
        if len(head) < 4:
            raise CaptureFileError(name, len(head), f"the file ends inside the magic number ({len(head)} bytes)")
        magic = head[:4]
        if magic == _SHB:
            frames = reading.pcapng(head)
        elif magic in _PCAP_MAGICS:
            frames = reading.classic(head, *_PCAP_MAGICS[magic])
        else:
            raise CaptureFileError(name, 0, f"not a pcap or pcapng file (it starts with {magic.hex()})")
        try:
            yield from frames
        finally:
            frames.close()
            if stats is not None:
                decoder = reading.decoder
                stats.frames += reading.number
                stats.datagrams += reading.yielded - decoder.problems
                stats.problems += decoder.problems
                stats.truncated += decoder.truncated
                stats.reassembled += decoder.reassembled
                stats.fragments += decoder.fragments
                stats.duplicate_fragments += decoder.duplicates
                stats.not_ip += decoder.not_ip
                stats.not_udp += decoder.not_udp
    finally:
        fh.close()


def capture_files(path: str | os.PathLike[str]) -> list[Path]:
    """The capture files named by ``path``: the file itself, or a folder's captures sorted by name.

    From a folder only ``*.pcap``, ``*.pcapng`` and ``*.cap`` (any case) are
    taken, not recursively; other files are ignored.

    :raises CaptureFileError: ``path`` does not exist or cannot be read, or the
        folder holds no capture.
    """
    where = Path(path)
    try:
        if where.is_dir():
            found = sorted(p for p in where.iterdir() if p.suffix.lower() in CAPTURE_SUFFIXES and p.is_file())
            if not found:
                raise CaptureFileError(str(where), 0, f"the folder holds no capture ({CAPTURE_SUFFIXES_TEXT})")
            return found
        if where.is_file():
            with open(where, "rb"):
                pass
            return [where]
    except OSError as exc:
        raise CaptureFileError(str(where), 0, f"cannot read: {exc.strerror or exc}") from None
    raise CaptureFileError(str(where), 0, "no such file or folder")
