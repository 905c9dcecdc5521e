"""The streaming capture reader of `analyze`: fragments, cooked captures and broken files.

The formats the live harness writes and reads are covered by tests/test_capture*.py (read_pcap is
a wrapper over this reader); these tests cover what only a field trace brings: IPv4 fragments in
any order, a fragment that never came, a ``tcpdump -i any`` (Linux cooked v2) framing, and files
cut short or corrupt, each named with its byte offset.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from msgin5g_conformance.analyze.reader import CaptureFileError, Frame, Problem, ReaderStats, iter_capture

GLOBAL = struct.Struct("<IHHiIII")
RECORD = struct.Struct("<IIII")


def pcap(path: Path, linktype: int, frames: list[bytes]) -> Path:
    out = [GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, f in enumerate(frames):
        out.append(RECORD.pack(1_700_000_000 + i, 0, len(f), len(f)) + f)
    path.write_bytes(b"".join(out))
    return path


def ipv4(src: str, dst: str, body: bytes, ident: int = 7, offset8: int = 0, more: bool = False) -> bytes:
    flags = (0x2000 if more else 0) | offset8
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, flags, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    return header + body


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


PAYLOAD = bytes(range(256)) * 12  # 3,072 bytes: three fragments of 1,024 + the UDP header


def fragments() -> list[bytes]:
    whole = udp(65401, 65401, PAYLOAD)
    parts = [whole[i : i + 1024] for i in range(0, len(whole), 1024)]
    return [
        ipv4("127.9.0.1", "127.9.0.2", part, offset8=(i * 1024) // 8, more=i < len(parts) - 1)
        for i, part in enumerate(parts)
    ]


def test_fragments_in_any_order_are_one_datagram(tmp_path: Path) -> None:
    parts = fragments()
    shuffled = [parts[2], parts[0], parts[3], parts[1]]
    stats = ReaderStats()
    got = list(iter_capture(pcap(tmp_path / "f.pcap", 101, shuffled), stats))
    frames = [f for f in got if isinstance(f, Frame)]
    assert [f.payload for f in frames] == [PAYLOAD]
    assert frames[0].src == ("127.9.0.1", 65401) and frames[0].dst == ("127.9.0.2", 65401)
    assert sorted(frames[0].frames) == [1, 2, 3, 4]
    assert not [p for p in got if isinstance(p, Problem)]


def test_a_missing_fragment_is_a_problem_naming_its_frames(tmp_path: Path) -> None:
    parts = fragments()
    got = list(iter_capture(pcap(tmp_path / "f.pcap", 101, [parts[0], parts[1], parts[3]])))
    assert not [f for f in got if isinstance(f, Frame)]
    problems = [p for p in got if isinstance(p, Problem)]
    assert [p.kind for p in problems] == ["missing-fragment"]
    assert "1" in problems[0].message and "3" in problems[0].message


def test_linux_cooked_v2_as_tcpdump_any_writes_it(tmp_path: Path) -> None:
    packet = ipv4("127.9.0.3", "127.9.0.4", udp(40000, 65401, b"\x40\x01\x00\x01"))
    # SLL2: protocol, reserved, interface index, ARPHRD_LOOPBACK, packet type, address length, address
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 1, 772, 0, 0, b"\0" * 8)
    got = list(iter_capture(pcap(tmp_path / "any.pcap", 276, [sll2 + packet])))
    assert got == [
        Frame(
            number=1,
            when=1_700_000_000.0,
            offset=24,
            src=("127.9.0.3", 40000),
            dst=("127.9.0.4", 65401),
            payload=b"\x40\x01\x00\x01",
        )
    ]


def test_a_capture_cut_short_yields_what_came_then_names_the_offset(tmp_path: Path) -> None:
    packet = ipv4("127.9.0.3", "127.9.0.4", udp(40000, 65401, b"\x40\x01\x00\x01"))
    path = pcap(tmp_path / "cut.pcap", 101, [packet, packet])
    path.write_bytes(path.read_bytes()[:-10])
    seen: list[Frame | Problem] = []
    with pytest.raises(CaptureFileError) as err:
        for item in iter_capture(path):
            seen.append(item)
    assert len(seen) == 1
    second_record = 24 + RECORD.size + len(packet)
    assert err.value.offset == second_record
    assert str(second_record) in str(err.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"GET / HTTP/1.1\r\n\r\n" * 4, "not a"),
        (GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, 147), "147"),
    ],
    ids=["empty", "not-a-capture", "unknown-link-type"],
)
def test_bad_files_are_named_errors(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad.pcap"
    record = RECORD.pack(1, 0, 4, 4) + b"\0\0\0\0" if words == "147" else b""
    path.write_bytes(content + record)
    with pytest.raises(CaptureFileError) as err:
        list(iter_capture(path))
    assert words in str(err.value).lower()
    assert str(path) in str(err.value)


def pcapng(blocks: list[tuple[int, bytes]]) -> bytes:
    """A pcapng file: a section header, then (type, body) blocks with their two length fields."""

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        size = 12 + len(body)
        return struct.pack("<II", btype, size) + body + struct.pack("<I", size)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    return shb + b"".join(block(t, b) for t, b in blocks)


def test_a_corrupt_pcapng_block_is_named_with_its_offset(tmp_path: Path) -> None:
    """A pcapng block whose trailing length differs from its leading one: a named error at that
    block's byte offset, after the packets before it were read."""
    frame = ipv4("127.0.0.1", "127.0.0.2", udp(65401, 65401, b"\x40\x01\x00\x01"))
    idb = (1, struct.pack("<HHI", 228, 0, 65535))  # raw IPv4
    epb = (6, struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame)) + frame)
    good = pcapng([idb, epb])
    broken = bytearray(pcapng([idb, epb, epb]))
    second = len(good)
    struct.pack_into("<I", broken, len(broken) - 4, 0xFFF0)  # the last block's trailing copy
    path = tmp_path / "corrupt.pcapng"
    path.write_bytes(bytes(broken))
    seen = []
    with pytest.raises(CaptureFileError) as err:
        for item in iter_capture(path):
            seen.append(item)
    assert len(seen) == 1 and isinstance(seen[0], Frame)
    assert err.value.offset == second, str(err.value)
    assert "does not match its trailing copy" in str(err.value) and str(path) in str(err.value)


def _ethernet(packet: bytes, ethertype: int = 0x0800) -> bytes:
    return b"\x00" * 12 + struct.pack("!H", ethertype) + packet


def _edge_frames() -> list[bytes]:
    """Ethernet frames at the edges of the reader's IPv4/UDP fast path, each beside its neighbour."""
    plain = ipv4("127.9.0.1", "127.9.0.2", udp(65401, 65401, b"\x40\x01\x00\x01"))
    with_options = bytearray(plain)
    with_options[0] = 0x46  # IHL 6: four bytes of IP options
    with_options[2:4] = struct.pack("!H", len(plain) + 4)
    with_options[20:20] = b"\x01\x01\x01\x00"
    long_udp = bytearray(plain)
    long_udp[24:26] = struct.pack("!H", 200)  # a UDP length past the IP packet
    short_udp = bytearray(plain)
    short_udp[24:26] = struct.pack("!H", 4)  # shorter than its own header
    long_total = bytearray(plain)
    long_total[2:4] = struct.pack("!H", 400)  # an IP total length past the frame
    trailer = plain + b"\x00" * 6  # Ethernet padding after the datagram
    tcp = bytearray(plain)
    tcp[9] = 6
    vlan = b"\x00" * 12 + b"\x81\x00\x00\x01\x08\x00" + plain
    return [
        _ethernet(plain),
        _ethernet(bytes(with_options)),
        _ethernet(bytes(long_udp)),
        _ethernet(bytes(short_udp)),
        _ethernet(bytes(long_total)),
        _ethernet(trailer),
        _ethernet(bytes(tcp)),
        vlan,
        *(_ethernet(f) for f in fragments()),
        _ethernet(plain),
    ]


def test_the_ipv4_fast_path_reads_as_the_general_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's one-unpack path for Ethernet/IPv4/UDP frames gives exactly what the general
    decoder gives, frame by frame, for plain datagrams and for every frame it must hand on
    (IP options, bad UDP or IP lengths, padding, TCP, VLAN tags, fragments)."""
    from msgin5g_conformance.analyze import reader

    path = pcap(tmp_path / "edges.pcap", 1, _edge_frames())
    fast = [repr(f) for f in iter_capture(path)]

    class Never:
        def unpack_from(self, buf: bytes, offset: int) -> tuple[int, int, int, int, int, bytes, int]:
            return (0, 0, 0, 0, 0, b"", 0)  # no frame takes the fast path

    monkeypatch.setattr(reader, "_ETH_V4_UDP", Never())
    general = [repr(f) for f in iter_capture(path)]
    assert fast == general
    frames = [f for f in iter_capture(path) if isinstance(f, Frame)]
    assert [f.payload for f in frames[:2]] == [b"\x40\x01\x00\x01"] * 2  # plain, then with IP options
    assert len(frames) >= 5 and len(fast) > len(frames)  # problems among them
