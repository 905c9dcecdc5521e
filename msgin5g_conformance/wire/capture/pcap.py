"""Write and read the datagram record as packet capture files.

Writing produces the classic libpcap format (the "tcpdump" format described in
draft-ietf-opsawg-pcap: magic ``0xa1b2c3d4``, version 2.4, microsecond
timestamps) with link type ``LINKTYPE_RAW`` (101).  Each record is a packet
synthesized around the recorded UDP payload: an IPv4 header (RFC 791) or an IPv6
header (RFC 8200) followed by a UDP header (RFC 768), both with correct
checksums, so Wireshark, tshark and scapy dissect the file without complaint.

Reading accepts what we write plus what libpcap, dumpcap, tshark and scapy write
when capturing on the loopback interface: classic pcap (micro- or nanosecond,
either byte order) and pcapng (draft-ietf-opsawg-pcapng), with link types NULL
(0), Ethernet (1), RAW (101, and the platform aliases 12/14), IPV4/IPV6
(228/229), Linux cooked capture SLL (113) and SLL2 (276).  Only IPv4/IPv6 UDP
packets become :class:`~msgin5g_conformance.wire.capture.record.Datagram` objects;
everything else is skipped.  A file whose structure is broken raises
:class:`PcapError` naming the file and the byte offset of the problem.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from msgin5g_conformance.wire.capture.record import Address, Datagram

__all__ = [
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "SUPPORTED_LINKTYPES",
    "PcapError",
    "UdpFrame",
    "decode_frame",
    "read_pcap",
    "write_pcap",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
# DLT_RAW is 12 on most systems and 14 on OpenBSD; some old files carry those
# numbers instead of LINKTYPE_RAW.  228/229 are raw IPv4-only / IPv6-only.
_RAW_ALIASES = frozenset({LINKTYPE_RAW, 12, 14, 228, 229})
# LINKTYPE_LOOP (108) is NULL with the family in network byte order; both are
# handled by looking at the IP version nibble instead of the family value.
_NULL_ALIASES = frozenset({LINKTYPE_NULL, 108})
SUPPORTED_LINKTYPES = frozenset(
    _RAW_ALIASES | _NULL_ALIASES | {LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2}
)

SNAPLEN = 65535
_IPPROTO_UDP = 17
_TTL = 64
_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})

_GLOBAL_HDR = struct.Struct("<IHHiIII")
_REC_HDR = struct.Struct("<IIII")
_IPV4_HDR = struct.Struct("!BBHHHBBH4s4s")
_IPV6_HDR = struct.Struct("!IHBB16s16s")
_UDP_HDR = struct.Struct("!HHHH")
_V4_PSEUDO = struct.Struct("!4s4sxBH")
_V6_PSEUDO = struct.Struct("!16s16sI3xB")

# Largest UDP payload whose synthesized packet still fits in SNAPLEN bytes, so
# no record we write is ever truncated.
_MAX_V4_PAYLOAD = SNAPLEN - 20 - 8
_MAX_V6_PAYLOAD = SNAPLEN - 40 - 8

_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


class PcapError(ValueError):
    """A capture file is corrupt, truncated or in a format we cannot read."""

    def __init__(self, path: str, offset: int, message: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = message
        super().__init__(f"{path}: at byte offset {offset}: {message}")

    def __reduce__(self) -> tuple[type[PcapError], tuple[str, int, str]]:
        # The default reduce passes only the formatted message back to
        # __init__, which needs three arguments; keep the error picklable
        # (pytest-xdist and multiprocessing send exceptions between processes).
        return type(self), (self.path, self.offset, self.reason)


class UdpFrame(NamedTuple):
    """The UDP datagram carried by one captured frame.

    ``complete`` is false when the capture cut the frame short (snaplen), in
    which case ``data`` holds only the captured prefix of the payload.
    """

    src: Address
    dst: Address
    data: bytes
    complete: bool


# --------------------------------------------------------------------------- #
# Internet checksum (RFC 1071)
# --------------------------------------------------------------------------- #


def _ones_complement_sum(data: bytes) -> int:
    """RFC 1071 one's-complement sum of ``data`` taken as big-endian 16-bit words.

    Because 2**16 is congruent to 1 modulo 0xFFFF, the end-around-carry sum of
    the words equals the whole buffer read as one big integer modulo 0xFFFF;
    that lets one C-level ``int.from_bytes`` replace a Python loop over words.
    The only fix-up is that a non-zero sum that is a multiple of 0xFFFF is
    0xFFFF (negative zero), never 0.
    """
    if len(data) & 1:
        data += b"\x00"
    value = int.from_bytes(data, "big")
    folded = value % 0xFFFF
    if folded == 0 and value:
        return 0xFFFF
    return folded


def _checksum(data: bytes) -> int:
    return ~_ones_complement_sum(data) & 0xFFFF


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #

_pack_cache: dict[str, tuple[int, bytes]] = {}
_text_cache: dict[bytes, str] = {}


def _pack_address(host: str) -> tuple[int, bytes]:
    """Return ``(ip_version, packed)`` for a textual address, memoized per string."""
    hit = _pack_cache.get(host)
    if hit is not None:
        return hit
    bare = host.split("%", 1)[0]  # a zone index ("fe80::1%lo") is not on the wire
    try:
        result = (4, socket.inet_pton(socket.AF_INET, bare))
    except OSError:
        try:
            packed = socket.inet_pton(socket.AF_INET6, bare)
        except OSError:
            raise ValueError(f"not an IP address: {host!r}") from None
        # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d, but what
        # crossed the wire was IPv4, so that is what the capture shows.
        result = (4, packed[12:]) if packed.startswith(_V4_MAPPED_PREFIX) else (6, packed)
    if len(_pack_cache) < 4096:
        _pack_cache[host] = result
    return result


def _synthesize(d: Datagram, ip_id: int) -> bytes:
    """Build the IPv4/IPv6 + UDP packet that carries ``d.data``."""
    src_ver, src = _pack_address(d.src[0])
    dst_ver, dst = _pack_address(d.dst[0])
    if src_ver != dst_ver:
        raise ValueError(f"source {d.src[0]} and destination {d.dst[0]} are of different IP versions")
    data = d.data
    udp_len = 8 + len(data)
    sport, dport = d.src[1], d.dst[1]
    if src_ver == 4:
        if len(data) > _MAX_V4_PAYLOAD:
            raise ValueError(f"{len(data)}-byte payload does not fit in one IPv4 packet")
        pseudo = _V4_PSEUDO.pack(src, dst, _IPPROTO_UDP, udp_len)
    else:
        if len(data) > _MAX_V6_PAYLOAD:
            raise ValueError(f"{len(data)}-byte payload exceeds the {SNAPLEN}-byte snaplen")
        pseudo = _V6_PSEUDO.pack(src, dst, udp_len, _IPPROTO_UDP)
    udp_csum = _checksum(pseudo + _UDP_HDR.pack(sport, dport, udp_len, 0) + data)
    if udp_csum == 0:
        udp_csum = 0xFFFF  # RFC 768: a computed zero is sent as all ones; 0 means "none"
    udp = _UDP_HDR.pack(sport, dport, udp_len, udp_csum)
    if src_ver == 4:
        # DF set, as Linux does for UDP on a path without fragmentation.
        hdr = _IPV4_HDR.pack(0x45, 0, 20 + udp_len, ip_id, 0x4000, _TTL, _IPPROTO_UDP, 0, src, dst)
        hdr = hdr[:10] + _checksum(hdr).to_bytes(2, "big") + hdr[12:]
    else:
        hdr = _IPV6_HDR.pack(6 << 28, udp_len, _IPPROTO_UDP, _TTL, src, dst)
    return hdr + udp + data


def write_pcap(path: str | os.PathLike[str], datagrams: Iterable[Datagram]) -> None:
    """Write ``datagrams`` as a classic libpcap file with ``LINKTYPE_RAW`` framing.

    Timestamps are rounded to the microsecond.  The IPv4 identification field
    counts up from 1 (modulo 2**16) so every packet in a file carries its own.
    The file is written to a temporary name in the same directory, flushed to
    disk and renamed over ``path``, so readers never see a partial file.

    :raises ValueError: a datagram cannot be represented (bad address, mixed
        IP versions, port out of range, payload too large, negative time).
    """
    target = Path(path)
    chunks: list[bytes] = [_GLOBAL_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW)]
    append = chunks.append
    rec_pack = _REC_HDR.pack
    for index, d in enumerate(datagrams):
        try:
            packet = _synthesize(d, (index + 1) & 0xFFFF)
            micros = round(d.time * 1_000_000)
            if micros < 0:
                raise ValueError(f"time {d.time} is before 1970")
            sec, usec = divmod(micros, 1_000_000)
            append(rec_pack(sec, usec, len(packet), len(packet)))
        except (ValueError, struct.error, OverflowError, TypeError) as exc:
            raise ValueError(f"cannot write datagram seq={d.seq} ({d.src} -> {d.dst}): {exc}") from exc
        append(packet)
    blob = b"".join(chunks)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    # os.open with 0o666 lets the umask decide the mode, like an ordinary
    # open(); tempfile would force 0o600 and hide the capture from other users.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- #
# Frame decoding
# --------------------------------------------------------------------------- #


def _text_address(packed: bytes) -> str:
    hit = _text_cache.get(packed)
    if hit is None:
        family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
        hit = socket.inet_ntop(family, packed)
        if len(_text_cache) < 4096:
            _text_cache[packed] = hit
    return hit


def _udp_at(buf: bytes, src: bytes, dst: bytes, start: int, end: int, captured_end: int) -> UdpFrame | None:
    """Decode the UDP header at ``start``; the IP layer says it ends at ``end``."""
    if start + 8 > captured_end:
        return None
    sport, dport, ulen, _ = _UDP_HDR.unpack_from(buf, start)
    if ulen < 8 or start + ulen > end:
        return None  # malformed (or a jumbogram, which loopback never carries)
    stop = start + ulen
    complete = stop <= captured_end
    return UdpFrame(
        (_text_address(src), sport),
        (_text_address(dst), dport),
        bytes(buf[start + 8 : min(stop, captured_end)]),
        complete,
    )


def _ipv4(buf: bytes, off: int) -> UdpFrame | None:
    size = len(buf)
    if off + 20 > size:
        return None
    vihl, _, total, _, frag, _, proto, _, src, dst = _IPV4_HDR.unpack_from(buf, off)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or total < ihl or proto != _IPPROTO_UDP:
        return None
    if frag & 0x3FFF:
        return None  # a fragment: loopback's 64 KiB MTU never fragments UDP, so skip
    return _udp_at(buf, src, dst, off + ihl, off + total, size)


# IPv6 extension headers we can step over to reach UDP (RFC 8200 section 4).
_V6_EXT_HOP, _V6_EXT_ROUTING, _V6_EXT_FRAGMENT, _V6_EXT_DSTOPTS, _V6_EXT_AH = 0, 43, 44, 60, 51


def _ipv6(buf: bytes, off: int) -> UdpFrame | None:
    size = len(buf)
    if off + 40 > size:
        return None
    first, plen, nxt, _, src, dst = _IPV6_HDR.unpack_from(buf, off)
    if first >> 28 != 6 or plen == 0:
        return None
    pos = off + 40
    end = pos + plen
    while nxt != _IPPROTO_UDP:
        if pos + 8 > min(end, size):
            return None
        if nxt in (_V6_EXT_HOP, _V6_EXT_ROUTING, _V6_EXT_DSTOPTS):
            step = (buf[pos + 1] + 1) * 8
        elif nxt == _V6_EXT_AH:
            step = (buf[pos + 1] + 2) * 4
        elif nxt == _V6_EXT_FRAGMENT:
            if int.from_bytes(buf[pos + 2 : pos + 4], "big") & 0xFFF9:
                return None  # a real fragment (offset or more-fragments set)
            step = 8
        else:
            return None
        nxt = buf[pos]
        pos += step
    return _udp_at(buf, src, dst, pos, end, size)


def _by_version(buf: bytes, off: int) -> UdpFrame | None:
    if off >= len(buf):
        return None
    version = buf[off] >> 4
    if version == 4:
        return _ipv4(buf, off)
    if version == 6:
        return _ipv6(buf, off)
    return None


def _by_ethertype(buf: bytes, ethertype: int, off: int) -> UdpFrame | None:
    if ethertype == _ETH_P_IP:
        return _ipv4(buf, off)
    if ethertype == _ETH_P_IPV6:
        return _ipv6(buf, off)
    return None


def decode_frame(linktype: int, frame: bytes) -> UdpFrame | None:
    """Extract the UDP datagram from one captured frame of the given link type.

    Returns ``None`` for anything that is not a well-formed, unfragmented IPv4
    or IPv6 UDP packet.

    :raises ValueError: the link type is not one this module understands.
    """
    if linktype in _RAW_ALIASES:
        return _by_version(frame, 0)
    if linktype == LINKTYPE_ETHERNET:
        off = 12
        while off + 2 <= len(frame):
            ethertype = int.from_bytes(frame[off : off + 2], "big")
            if ethertype in _VLAN_TPIDS:
                off += 4  # IEEE 802.1Q / 802.1ad tag
                continue
            return _by_ethertype(frame, ethertype, off + 2)
        return None
    if linktype in _NULL_ALIASES:
        # The 4-byte family is in the capturing host's byte order and AF_INET6
        # differs between systems, so the IP version nibble is the safer guide.
        return _by_version(frame, 4)
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        return _by_ethertype(frame, int.from_bytes(frame[14:16], "big"), 16)
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        return _by_ethertype(frame, int.from_bytes(frame[0:2], "big"), 20)
    raise ValueError(f"unsupported link type {linktype}")


# --------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------- #


class _Collector:
    """Turns captured frames into numbered datagrams, with located errors."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.out: list[Datagram] = []

    def add(self, offset: int, linktype: int, frame: bytes, orig_len: int, when: float) -> None:
        try:
            udp = decode_frame(linktype, frame)
        except ValueError as exc:
            raise PcapError(self.path, offset, str(exc)) from None
        if udp is None:
            return
        if not udp.complete:
            raise PcapError(
                self.path,
                offset,
                f"UDP datagram {udp.src} -> {udp.dst} was cut short by the capture "
                f"(captured {len(frame)} of {orig_len} bytes); its payload is incomplete",
            )
        self.out.append(Datagram(len(self.out), when, udp.src, udp.dst, udp.data))


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
_PCAPNG_SHB = 0x0A0D0D0A
# Bytes of fixed fields in the body of each block type we interpret.
_PCAPNG_FIXED = {_PCAPNG_SHB: 16, 1: 8, 2: 20, 3: 4, 6: 20}


def _read_classic(path: str, buf: bytes, order: str, divisor: int, extra: int) -> list[Datagram]:
    if len(buf) < 24:
        raise PcapError(path, len(buf), f"file ends inside the 24-byte global header ({len(buf)} bytes)")
    _, major, _, _, _, _, network = struct.unpack_from(order + "IHHiIII", buf, 0)
    if major != 2:
        raise PcapError(path, 4, f"unsupported pcap major version {major}")
    # Bits 16 and up carry FCS information (draft-ietf-opsawg-pcap section 4);
    # the link type proper is the low 16 bits.
    linktype = network & 0xFFFF
    rec = struct.Struct(order + "IIII")
    rec_size = rec.size + extra
    out = _Collector(path)
    offset = 24
    size = len(buf)
    while offset < size:
        if offset + rec_size > size:
            raise PcapError(
                path, offset, f"file ends inside a {rec_size}-byte record header ({size - offset} bytes left)"
            )
        sec, frac, incl, orig = rec.unpack_from(buf, offset)
        start = offset + rec_size
        if incl > size - start:
            raise PcapError(path, offset, f"record claims {incl} captured bytes but only {size - start} remain")
        if frac >= divisor:
            raise PcapError(path, offset, f"timestamp fraction {frac} out of range (not a record header?)")
        out.add(offset, linktype, buf[start : start + incl], orig, sec + frac / divisor)
        offset = start + incl
    return out.out


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    divisor: int
    ts_offset: int


def _idb_options(path: str, buf: bytes, order: str, pos: int, end: int) -> tuple[int, int]:
    """Return (timestamp divisor, timestamp offset seconds) from IDB options."""
    divisor, ts_offset = 1_000_000, 0
    while pos + 4 <= end:
        code, length = struct.unpack_from(order + "HH", buf, pos)
        value_at = pos + 4
        if code == 0:  # opt_endofopt
            break
        if value_at + length > end:
            raise PcapError(path, pos, f"interface option {code} runs past the end of its block")
        if code == 9 and length >= 1:  # if_tsresol
            resol = buf[value_at]
            divisor = 2 ** (resol & 0x7F) if resol & 0x80 else 10**resol
        elif code == 14 and length >= 8:  # if_tsoffset
            (ts_offset,) = struct.unpack_from(order + "q", buf, value_at)
        pos = value_at + ((length + 3) & ~3)
    return divisor, ts_offset


def _read_pcapng(path: str, buf: bytes) -> list[Datagram]:
    out = _Collector(path)
    size = len(buf)
    offset = 0
    order = "<"
    interfaces: list[_Interface] = []
    while offset < size:
        if offset + 12 > size:
            raise PcapError(path, offset, f"file ends inside a block header ({size - offset} bytes left)")
        raw_type = buf[offset : offset + 4]
        if raw_type == b"\x0a\x0d\x0d\x0a":
            # A Section Header Block sets the byte order for its whole section.
            bom = buf[offset + 8 : offset + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise PcapError(path, offset + 8, f"bad pcapng byte-order magic {bom.hex()}")
            interfaces = []
        btype, blen = struct.unpack_from(order + "II", buf, offset)
        if blen < 12 or blen % 4:
            raise PcapError(path, offset, f"invalid pcapng block length {blen}")
        if offset + blen > size:
            raise PcapError(
                path, offset, f"block of type {btype:#x} claims {blen} bytes but only {size - offset} remain"
            )
        (trailer,) = struct.unpack_from(order + "I", buf, offset + blen - 4)
        if trailer != blen:
            raise PcapError(path, offset, f"block length {blen} does not match its trailing copy {trailer}")
        body = offset + 8
        body_end = offset + blen - 4
        fixed = _PCAPNG_FIXED.get(btype, 0)
        if body + fixed > body_end:
            raise PcapError(path, offset, f"block of type {btype:#x} is too short for its fixed fields")
        if btype == _PCAPNG_SHB:
            major = struct.unpack_from(order + "H", buf, body + 4)[0]
            if major != 1:
                raise PcapError(path, offset, f"unsupported pcapng major version {major}")
        elif btype == 1:  # Interface Description Block
            linktype, _, snaplen = struct.unpack_from(order + "HHI", buf, body)
            divisor, ts_offset = _idb_options(path, buf, order, body + 8, body_end)
            interfaces.append(_Interface(linktype, snaplen, divisor, ts_offset))
        elif btype in (6, 2):  # Enhanced Packet Block / obsolete Packet Block
            if btype == 6:
                if_id, ts_hi, ts_lo, incl, orig = struct.unpack_from(order + "IIIII", buf, body)
            else:
                if_id, _, ts_hi, ts_lo, incl, orig = struct.unpack_from(order + "HHIIII", buf, body)
            if if_id >= len(interfaces):
                raise PcapError(path, offset, f"packet refers to undeclared interface {if_id}")
            data_at = body + 20
            if data_at + incl > body_end:
                raise PcapError(path, offset, f"packet claims {incl} captured bytes, more than its block has")
            iface = interfaces[if_id]
            sec, frac = divmod((ts_hi << 32) | ts_lo, iface.divisor)
            when = sec + iface.ts_offset + frac / iface.divisor
            out.add(offset, iface.linktype, buf[data_at : data_at + incl], orig, when)
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if not interfaces:
                raise PcapError(path, offset, "simple packet block before any interface description")
            (orig,) = struct.unpack_from(order + "I", buf, body)
            iface = interfaces[0]
            incl = min(orig, iface.snaplen) if iface.snaplen else orig
            if body + 4 + incl > body_end:
                raise PcapError(path, offset, f"simple packet claims {incl} bytes, more than its block holds")
            out.add(offset, iface.linktype, buf[body + 4 : body + 4 + incl], orig, 0.0)
        # Every other block type (name resolution, statistics, secrets, custom)
        # carries nothing we need.
        offset += blen
    return out.out


def read_pcap(path: str | os.PathLike[str]) -> list[Datagram]:
    """Read the IPv4/IPv6 UDP datagrams of a classic pcap or pcapng file.

    Datagrams are numbered from 0 in file order.  Non-UDP packets and IP
    fragments are skipped.

    :raises PcapError: the file is empty, of an unknown format, structurally
        corrupt or truncated, uses an unsupported link type, or holds a UDP
        datagram the capture cut short.
    :raises OSError: the file cannot be opened.
    """
    name = os.fspath(path)
    with open(name, "rb") as fh:
        buf = fh.read()
    if not buf:
        raise PcapError(name, 0, "empty file")
    if len(buf) < 4:
        raise PcapError(name, len(buf), f"file ends inside the magic number ({len(buf)} bytes)")
    magic = buf[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return _read_pcapng(name, buf)
    fmt = _PCAP_MAGICS.get(magic)
    if fmt is None:
        raise PcapError(name, 0, f"not a pcap or pcapng file (magic {magic.hex()})")
    return _read_classic(name, buf, *fmt)
