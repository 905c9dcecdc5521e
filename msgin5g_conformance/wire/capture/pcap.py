"""Write and read the datagram record as packet capture files.

Writing produces the classic libpcap format (the "tcpdump" format described in
draft-ietf-opsawg-pcap: magic ``0xa1b2c3d4``, version 2.4, microsecond
timestamps) with link type ``LINKTYPE_RAW`` (101).  Each record is a packet
synthesized around the recorded UDP payload: an IPv4 header (RFC 791) or an IPv6
header (RFC 8200) followed by a UDP header (RFC 768), both with correct
checksums, so Wireshark, tshark and scapy dissect the file without complaint.

Reading is done by the streaming reader of the offline analysis,
:mod:`msgin5g_conformance.analyze.reader` (classic pcap and pcapng; link types
NULL/LOOP, Ethernet with VLAN tags, RAW and its aliases, IPV4/IPV6, Linux cooked
SLL and SLL2; IPv4/IPv6 with fragments reassembled): :func:`read_pcap` collects
its UDP datagrams as :class:`~msgin5g_conformance.wire.capture.record.Datagram`
objects and :func:`decode_frame` decodes one live frame with it.  A file whose
structure is broken raises :class:`PcapError` (the reader's ``CaptureFileError``)
naming the file and the byte offset of the problem.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from msgin5g_conformance.analyze.reader import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    SUPPORTED_LINKTYPES,
    Frame,
    decode_packet,
    iter_capture,
)
from msgin5g_conformance.analyze.reader import CaptureFileError as PcapError
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

SNAPLEN = 65535
_IPPROTO_UDP = 17
_TTL = 64

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
# Reading: a thin layer over the streaming reader of the offline analysis
# --------------------------------------------------------------------------- #


def decode_frame(linktype: int, frame: bytes) -> UdpFrame | None:
    """Extract the UDP datagram from one captured frame of the given link type.

    Returns ``None`` for anything that is not a well-formed, unfragmented IPv4
    or IPv6 UDP packet.

    :raises ValueError: the link type is not one this module understands.
    """
    got = decode_packet(linktype, frame)
    if not isinstance(got, Frame):
        return None
    return UdpFrame(got.src, got.dst, got.payload, not got.truncated)


def read_pcap(path: str | os.PathLike[str]) -> list[Datagram]:
    """Read the IPv4/IPv6 UDP datagrams of a classic pcap or pcapng file.

    Datagrams are numbered from 0 in file order; fragmented ones are
    reassembled.  Non-UDP packets, malformed ones and fragments that never
    complete a datagram are skipped (:func:`~msgin5g_conformance.analyze.reader.iter_capture`
    reports those as problems).

    :raises PcapError: the file cannot be opened, is empty, of an unknown
        format, structurally corrupt or truncated, uses an unsupported link
        type, or holds a UDP datagram the capture cut short.
    """
    out: list[Datagram] = []
    for item in iter_capture(path):
        if not isinstance(item, Frame):
            continue
        if item.truncated:
            raise PcapError(
                os.fspath(path),
                item.offset,
                f"UDP datagram {item.src} -> {item.dst} was cut short by the capture "
                f"(kept {len(item.payload)} payload bytes); its payload is incomplete",
                item.number,
            )
        out.append(Datagram(len(out), item.when, item.src, item.dst, item.payload))
    return out
