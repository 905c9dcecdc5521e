"""Tests for the pcap writer/reader and the live loopback sniffer."""

from __future__ import annotations

import os
import queue
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.packet import Packet, Raw

from msgin5g_conformance.wire.capture.pcap import PcapError, read_pcap, write_pcap
from msgin5g_conformance.wire.capture.record import Datagram, Recorder
from msgin5g_conformance.wire.capture.sniff import CaptureError, LoopbackSniffer, sniff_available

COAP_PORT = 65401
# A confirmable CoAP GET, message ID 0x1234, no token, Uri-Path "a" (RFC 7252).
COAP_GET = bytes.fromhex("40011234") + b"\xb1a"

TSHARK = shutil.which("tshark")
DUMPCAP = shutil.which("dumpcap")
EDITCAP = shutil.which("editcap")


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _dg(seq: int, src: str, dst: str, data: bytes, when: float, sport: int = COAP_PORT) -> Datagram:
    return Datagram(seq, when, (src, sport), (dst, COAP_PORT), data)


def _sample(v6: bool = False) -> list[Datagram]:
    a, b = ("::1", "fd00:5::2") if v6 else ("127.77.3.1", "127.77.3.2")
    base = 1_750_000_000.0
    return [
        _dg(0, a, b, COAP_GET, base + 0.000001),
        _dg(1, b, a, bytes.fromhex("6045123400"), base + 0.5, sport=40000),
        _dg(2, a, b, b"", base + 1.999999),
        _dg(3, b, a, bytes(range(256)) * 3 + b"\x01", base + 2.25),
    ]


def _mixed() -> list[Datagram]:
    """IPv4 and IPv6 samples in one sequence, renumbered and in time order."""
    return [Datagram(i, d.time + i, d.src, d.dst, d.data) for i, d in enumerate(_sample() + _sample(v6=True))]


def _usec(t: float) -> int:
    return round(t * 1_000_000)


def _assert_same(got: list[Datagram], want: list[Datagram]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.seq, g.src, g.dst, g.data) == (w.seq, w.src, w.dst, w.data)
        assert _usec(g.time) == _usec(w.time)


def _rfc1071(data: bytes) -> int:
    """Plain word-by-word Internet checksum, written independently of the module."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _raw_records(path: Path) -> Iterator[bytes]:
    buf = path.read_bytes()
    offset = 24
    while offset < len(buf):
        _, _, incl, orig = struct.unpack_from("<IIII", buf, offset)
        assert incl == orig
        yield buf[offset + 16 : offset + 16 + incl]
        offset += 16 + incl


def _pseudo_sum_ok(packet: bytes) -> tuple[bool, bool, int]:
    """Return (ip header checksum ok, udp checksum ok, udp checksum field) for a raw packet."""
    if packet[0] >> 4 == 4:
        ihl = (packet[0] & 0xF) * 4
        udp = packet[ihl:]
        pseudo = packet[12:20] + b"\x00\x11" + udp[4:6]
        ip_ok = _rfc1071(packet[:ihl]) == 0
    else:
        udp = packet[40:]
        pseudo = packet[8:40] + struct.pack("!I", len(udp)) + b"\x00\x00\x00\x11"
        ip_ok = True
    field: int = struct.unpack_from("!H", udp, 6)[0]
    return ip_ok, _rfc1071(pseudo + udp) == 0, field


def _fresh_pair() -> tuple[str, socket.socket, socket.socket]:
    """Bind two sockets on an unused 127.x.y.1/.2 pair, both on the CoAP port."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(50):
        base = f"127.{rng.randint(100, 254)}.{rng.randint(1, 254)}"
        first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            first.bind((f"{base}.1", COAP_PORT))
            second.bind((f"{base}.2", COAP_PORT))
        except OSError:
            first.close()
            second.close()
            continue
        return base, first, second
    raise RuntimeError("no free 127.x.y.0/24 pair found")


def _require_sniffing() -> None:
    ok, why = sniff_available()
    if not ok:
        pytest.skip(why)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True)


# --------------------------------------------------------------------------- #
# write_pcap / read_pcap
# --------------------------------------------------------------------------- #


def test_round_trip_ipv4(tmp_path: Path) -> None:
    """IPv4 datagrams come back with exact bytes, addresses, ports and microsecond times."""
    want = _sample()
    write_pcap(tmp_path / "v4.pcap", want)
    _assert_same(read_pcap(tmp_path / "v4.pcap"), want)


def test_round_trip_ipv6_and_mixed(tmp_path: Path) -> None:
    """IPv6 datagrams, alone and interleaved with IPv4 ones, round-trip exactly."""
    v6 = _sample(v6=True)
    write_pcap(tmp_path / "v6.pcap", v6)
    _assert_same(read_pcap(tmp_path / "v6.pcap"), v6)
    mixed = _mixed()
    write_pcap(str(tmp_path / "mixed.pcap"), mixed)
    _assert_same(read_pcap(str(tmp_path / "mixed.pcap")), mixed)


def test_v4_mapped_addresses_are_written_as_ipv4(tmp_path: Path) -> None:
    """An IPv4-mapped IPv6 address (dual-stack socket view) is written as the IPv4 it is."""
    write_pcap(tmp_path / "m.pcap", [_dg(0, "::ffff:127.77.3.1", "127.77.3.2", b"x", 1.0)])
    [got] = read_pcap(tmp_path / "m.pcap")
    assert got.src == ("127.77.3.1", COAP_PORT)
    assert next(_raw_records(tmp_path / "m.pcap"))[0] >> 4 == 4


def test_file_header_and_ip_fields(tmp_path: Path) -> None:
    """Global header is pcap 2.4/µs/snaplen 65535/LINKTYPE_RAW; IPv4 has TTL 64, UDP and unique ids."""
    path = tmp_path / "h.pcap"
    write_pcap(path, _sample() * 5)
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", path.read_bytes())
    assert (magic, major, minor, snaplen, linktype) == (0xA1B2C3D4, 2, 4, 65535, 101)
    packets = list(_raw_records(path))
    assert all(p[8] == 64 and p[9] == 17 for p in packets)
    ids = [struct.unpack_from("!H", p, 4)[0] for p in packets]
    assert len(set(ids)) == len(ids)


def test_checksums_recomputed_independently(tmp_path: Path) -> None:
    """IPv4 header and UDP checksums verify with an independent RFC 1071 implementation."""
    path = tmp_path / "c.pcap"
    write_pcap(path, _sample() + _sample(v6=True))
    for packet in _raw_records(path):
        ip_ok, udp_ok, field = _pseudo_sum_ok(packet)
        assert ip_ok and udp_ok and field != 0


def test_zero_udp_checksum_is_sent_as_all_ones(tmp_path: Path) -> None:
    """A payload whose UDP checksum computes to zero is written with 0xFFFF (RFC 768)."""
    src, dst = "127.77.3.1", "127.77.3.2"
    prefix = b"ab"
    udp_len = 8 + len(prefix) + 2
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, udp_len)
    header = struct.pack("!HHHH", COAP_PORT, COAP_PORT, udp_len, 0)
    partial = ~_rfc1071(pseudo + header + prefix) & 0xFFFF  # one's-complement sum so far
    filler = struct.pack("!H", 0xFFFF - partial)  # brings the sum to 0xFFFF: checksum 0
    path = tmp_path / "z.pcap"
    write_pcap(path, [_dg(0, src, dst, prefix + filler, 1.0)])
    packet = next(_raw_records(path))
    ip_ok, udp_ok, field = _pseudo_sum_ok(packet)
    assert ip_ok and udp_ok and field == 0xFFFF


def test_checksums_match_scapy(tmp_path: Path) -> None:
    """scapy recomputes the same IP and UDP checksums after they are deleted and rebuilt."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6

    path = tmp_path / "s.pcap"
    write_pcap(path, _sample() + _sample(v6=True))
    for packet in _raw_records(path):
        parsed = IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)
        rebuilt = parsed.copy()
        if IP in rebuilt:
            del rebuilt[IP].chksum
        del rebuilt[UDP].chksum
        fresh = type(parsed)(bytes(rebuilt))
        assert fresh[UDP].chksum == parsed[UDP].chksum
        if IP in parsed:
            assert fresh[IP].chksum == parsed[IP].chksum
        assert bytes(fresh) == packet


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_dissects_written_coap(tmp_path: Path) -> None:
    """tshark decodes a written CoAP GET over IPv4 and IPv6, with good checksums."""
    path = tmp_path / "coap.pcap"
    write_pcap(path, [_dg(0, "127.77.3.1", "127.77.3.2", COAP_GET, 5.0), _dg(1, "::1", "::1", COAP_GET, 6.0)])
    assert TSHARK is not None
    out = _run(
        [
            TSHARK,
            "-r",
            str(path),
            "-d",
            f"udp.port=={COAP_PORT},coap",
            "-T",
            "fields",
            "-e",
            "coap.code",
            "-e",
            "coap.mid",
        ]
    ).stdout
    assert out.split("\n")[:2] == ["1\t4660", "1\t4660"]
    checks = _run(
        [
            TSHARK,
            "-r",
            str(path),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-d",
            f"udp.port=={COAP_PORT},coap",
            "-T",
            "fields",
            "-e",
            "udp.checksum.status",
            "-e",
            "coap.opt.uri_path",
        ]
    ).stdout
    assert checks.split("\n")[:2] == ["1\ta", "1\ta"]  # 1 = "Good"


def test_write_creates_parent_and_is_atomic(tmp_path: Path) -> None:
    """The parent directory is created; a failing write leaves the old file and no temp file."""
    path = tmp_path / "deep" / "er" / "case.pcap"
    write_pcap(path, _sample())
    before = path.read_bytes()
    bad = [*_sample(), _dg(9, "127.0.0.1", "::1", b"x", 1.0)]  # mixed IP versions
    with pytest.raises(ValueError, match="seq=9"):
        write_pcap(path, bad)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["case.pcap"]


def test_write_10000_datagrams_is_fast(tmp_path: Path) -> None:
    """Writing 10,000 datagrams takes well under a second and reads back intact."""
    want = [
        _dg(i, "127.77.3.1", "127.77.3.2", COAP_GET + i.to_bytes(4, "big") * (i % 30), 1e9 + i / 1000)
        for i in range(10_000)
    ]
    path = tmp_path / "big.pcap"
    started = time.perf_counter()
    write_pcap(path, want)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"write_pcap took {elapsed:.3f} s"
    _assert_same(read_pcap(path), want)


# --------------------------------------------------------------------------- #
# Corrupt input
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("cut", "offset"),
    [
        pytest.param(10, 10, id="inside-global-header"),
        pytest.param(24 + 9, 24, id="inside-record-header"),
        pytest.param(24 + 16 + 30, 24, id="inside-record-data"),
    ],
)
def test_truncated_file_raises_located_error(tmp_path: Path, cut: int, offset: int) -> None:
    """A truncated pcap raises PcapError naming the file and the byte offset."""
    good = tmp_path / "good.pcap"
    write_pcap(good, _sample())
    data = good.read_bytes()
    bad = tmp_path / "cut.pcap"
    bad.write_bytes(data[:cut])
    with pytest.raises(PcapError, match=rf"cut\.pcap: at byte offset {offset}:") as info:
        read_pcap(bad)
    assert info.value.path == str(bad)


def test_truncated_last_record_reports_its_offset(tmp_path: Path) -> None:
    """Cutting the final byte points at the last record's header, not at the start."""
    good = tmp_path / "good.pcap"
    write_pcap(good, _sample())
    data = good.read_bytes()
    last = 24
    for packet in list(_raw_records(good))[:-1]:
        last += 16 + len(packet)
    (tmp_path / "short.pcap").write_bytes(data[:-1])
    with pytest.raises(PcapError) as info:
        read_pcap(tmp_path / "short.pcap")
    assert info.value.offset == last


@pytest.mark.parametrize(
    ("content", "offset"),
    [
        pytest.param(b"", 0, id="empty"),
        pytest.param(b"\x00\x01", 2, id="two-bytes"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, id="not-a-capture"),
        pytest.param(
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101) + b"\xff" * 40,
            24,
            id="garbage-record",
        ),
        pytest.param(b"\x0a\x0d\x0d\x0a" + b"\x00" * 20, 8, id="pcapng-bad-byte-order"),
    ],
)
def test_garbage_file_raises_located_error(tmp_path: Path, content: bytes, offset: int) -> None:
    """Garbage raises PcapError (never IndexError/struct.error) with the offset of the problem."""
    path = tmp_path / "junk.pcap"
    path.write_bytes(content)
    with pytest.raises(PcapError, match=rf"junk\.pcap: at byte offset {offset}:"):
        read_pcap(path)


def test_snaplen_cut_udp_datagram_is_an_error(tmp_path: Path) -> None:
    """A UDP datagram cut short by the capture's snaplen is reported, not returned partially."""
    good = tmp_path / "good.pcap"
    write_pcap(good, [_dg(0, "127.77.3.1", "127.77.3.2", b"0123456789", 1.0)])
    packet = next(_raw_records(good))
    header = good.read_bytes()[:24]
    record = struct.pack("<IIII", 1, 0, len(packet) - 4, len(packet)) + packet[:-4]
    (tmp_path / "snap.pcap").write_bytes(header + record)
    with pytest.raises(PcapError, match=r"at byte offset 24: .*cut short"):
        read_pcap(tmp_path / "snap.pcap")


# --------------------------------------------------------------------------- #
# Files written by other tools
# --------------------------------------------------------------------------- #


def _scapy_frames(kind: str) -> list[Packet]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Ether, Loopback

    v4 = IP(src="127.77.3.1", dst="127.77.3.2") / UDP(sport=COAP_PORT, dport=COAP_PORT) / Raw(COAP_GET)
    v6 = IPv6(src="::1", dst="::1") / UDP(sport=1234, dport=COAP_PORT) / Raw(b"\x00v6")
    tcp = IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=1, dport=2) / Raw(b"not udp")
    frames: list[Packet] = []
    for payload, proto in ((v4, 0x0800), (tcp, 0x0800), (v6, 0x86DD)):
        if kind == "null":
            frames.append(Loopback(type=2 if proto == 0x0800 else 10) / payload)
        elif kind == "ethernet":
            frames.append(Ether(type=proto) / payload)
        elif kind == "sll":
            frames.append(CookedLinux(proto=proto) / payload)
        elif kind == "sll2":
            frames.append(CookedLinuxV2(proto=proto) / payload)
        else:
            frames.append(payload)
    if kind == "ethernet":
        frames.append(Ether() / ARP())
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000 + i + 0.25
    return frames


@pytest.mark.parametrize("kind", ["null", "ethernet", "raw", "sll", "sll2"])
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_reads_scapy_written_link_types(tmp_path: Path, kind: str, fmt: str) -> None:
    """Files scapy writes with NULL/Ethernet/RAW/SLL/SLL2 framing yield only the UDP datagrams."""
    from scapy.utils import PcapNgWriter, PcapWriter

    frames = _scapy_frames(kind)
    path = tmp_path / f"{kind}.{fmt}"
    writer = PcapWriter(str(path), sync=True) if fmt == "pcap" else PcapNgWriter(str(path))
    for frame in frames:
        writer.write(frame)
    writer.close()
    got = read_pcap(path)
    assert [(d.src, d.dst, d.data) for d in got] == [
        (("127.77.3.1", COAP_PORT), ("127.77.3.2", COAP_PORT), COAP_GET),
        (("::1", 1234), ("::1", COAP_PORT), b"\x00v6"),
    ]
    assert [_usec(d.time) for d in got] == [_usec(1_700_000_000.25), _usec(1_700_000_002.25)]


@pytest.mark.skipif(EDITCAP is None, reason="editcap is not installed")
@pytest.mark.parametrize("fmt", ["pcapng", "nsecpcap"])
def test_reads_editcap_conversions(tmp_path: Path, fmt: str) -> None:
    """editcap's pcapng and nanosecond-pcap conversions of our file read back identically."""
    want = _mixed()
    ours = tmp_path / "ours.pcap"
    write_pcap(ours, want)
    converted = tmp_path / f"conv.{fmt}"
    assert EDITCAP is not None
    _run([EDITCAP, "-F", fmt, str(ours), str(converted)])
    _assert_same(read_pcap(converted), want)


@pytest.mark.skipif(EDITCAP is None, reason="editcap is not installed")
def test_truncated_pcapng_raises_located_error(tmp_path: Path) -> None:
    """A pcapng file cut inside a block raises PcapError with the block's offset."""
    ours = tmp_path / "ours.pcap"
    write_pcap(ours, _sample())
    full = tmp_path / "full.pcapng"
    assert EDITCAP is not None
    _run([EDITCAP, "-F", "pcapng", str(ours), str(full)])
    data = full.read_bytes()
    (tmp_path / "cut.pcapng").write_bytes(data[:-6])
    with pytest.raises(PcapError, match=r"cut\.pcapng: at byte offset \d+: block of type 0x6"):
        read_pcap(tmp_path / "cut.pcapng")


@pytest.mark.skipif(DUMPCAP is None, reason="dumpcap is not installed")
@pytest.mark.parametrize(
    ("iface", "linktype", "classic"),
    [("lo", None, False), ("lo", None, True), ("any", "LINUX_SLL", True), ("any", "LINUX_SLL2", False)],
)
def test_reads_live_dumpcap_capture(tmp_path: Path, iface: str, linktype: str | None, classic: bool) -> None:
    """A real dumpcap capture on lo / any (pcap or pcapng) reads back as the datagrams sent."""
    _require_sniffing()
    assert DUMPCAP is not None
    base, first, second = _fresh_pair()
    out = tmp_path / "live.cap"
    count = 6
    cmd = [DUMPCAP, "-i", iface, "-f", f"udp and net {base}.0/24", "-c", str(count), "-w", str(out), "-q"]
    cmd += ["-P"] if classic else []
    cmd += ["-y", linktype] if linktype else []
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr

    def pump() -> None:
        for line in stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 10
        seen: list[str] = []
        while not any(line.startswith("File:") for line in seen):
            try:
                seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"dumpcap did not start within 10 s: {seen}")
        sent = [bytes([i]) * (i + 1) for i in range(count)]
        for i, data in enumerate(sent):
            (first if i % 2 else second).sendto(data, (f"{base}.{2 if i % 2 else 1}", COAP_PORT))
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        first.close()
        second.close()
    got = read_pcap(out)
    assert [d.data for d in got] == sent
    assert [(d.src, d.dst) for d in got[:2]] == [
        ((f"{base}.2", COAP_PORT), (f"{base}.1", COAP_PORT)),
        ((f"{base}.1", COAP_PORT), (f"{base}.2", COAP_PORT)),
    ]


# --------------------------------------------------------------------------- #
# Live sniffer
# --------------------------------------------------------------------------- #


def test_sniff_available_gives_a_reason() -> None:
    """sniff_available answers with a bool and a human-readable explanation."""
    ok, why = sniff_available()
    assert isinstance(ok, bool) and why
    bad_ok, bad_why = sniff_available("no-such-iface0")
    assert not bad_ok and bad_why


def test_sniffer_records_each_datagram_once() -> None:
    """20 datagrams between 127.x.y.1 and .2 are each recorded once with exact bytes; others are not."""
    _require_sniffing()
    base, first, second = _fresh_pair()
    outsider_base, out_a, out_b = _fresh_pair()
    stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stray.bind((f"{base}.1", 0))
    recorder = Recorder()
    sniffer = LoopbackSniffer(recorder, f"{base}.0/24", port_hint=COAP_PORT)
    try:
        sniffer.start()
        assert sniffer.running
        sent = []
        for i in range(20):
            data = COAP_GET[:2] + i.to_bytes(2, "big") + os.urandom(i)
            if i % 2:
                first.sendto(data, (f"{base}.2", COAP_PORT))
                sent.append(((f"{base}.1", COAP_PORT), (f"{base}.2", COAP_PORT), data))
            else:
                second.sendto(data, (f"{base}.1", COAP_PORT))
                sent.append(((f"{base}.2", COAP_PORT), (f"{base}.1", COAP_PORT), data))
            out_a.sendto(b"out of scope", (f"{outsider_base}.2", COAP_PORT))
            stray.sendto(b"wrong port", (f"{base}.2", 9))
    finally:
        sniffer.stop()
        for sock in (first, second, out_a, out_b, stray):
            sock.close()
    assert not sniffer.running
    got = [(d.src, d.dst, d.data) for d in recorder.datagrams]
    assert sorted(got) == sorted(sent)
    assert len(set(got)) == len(got) == 20
    assert [d.seq for d in recorder.datagrams] == list(range(20))
    assert all(abs(d.time - time.time()) < 60 for d in recorder.datagrams)


def test_sniffer_ipv6_addresses_and_restart() -> None:
    """An address-list sniffer on ::1 records IPv6 datagrams; stop is idempotent; start twice fails."""
    _require_sniffing()
    first = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    second = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    first.bind(("::1", 0))
    second.bind(("::1", 0))
    port = second.getsockname()[1]
    recorder = Recorder()
    try:
        with LoopbackSniffer(recorder, ["::1"], port_hint=port) as sniffer:
            with pytest.raises(CaptureError, match="already"):
                sniffer.start()
            for i in range(5):
                first.sendto(b"v6-%d" % i, ("::1", port))
        sniffer.stop()
    finally:
        first.close()
        second.close()
    assert [d.data for d in recorder.datagrams] == [b"v6-%d" % i for i in range(5)]
    assert {d.dst for d in recorder.datagrams} == {("::1", port)}


def test_sniffer_rejects_bad_scope() -> None:
    """A sniffer needs exactly one of addresses and network, and valid addresses."""
    with pytest.raises(ValueError):
        LoopbackSniffer(Recorder())
    with pytest.raises(ValueError):
        LoopbackSniffer(Recorder(), ["127.0.0.1"], network="127.0.0.0/8")
    with pytest.raises(ValueError):
        LoopbackSniffer(Recorder(), ["not-an-address"])
    idle = LoopbackSniffer(Recorder(), network="127.77.0.0/16")
    idle.stop()  # stopping a sniffer that never started does nothing
    assert not idle.running


@pytest.mark.parametrize(
    ("sut", "failing"), [("reference", set()), ("faulty:coap-acks-tkl-9", {"COAP-FMT-001[relay]"})]
)
def test_answers_checks_judge_in_sniff_mode(tmp_path: Path, sut: str, failing: set[str]) -> None:
    """In sniff mode the tester's datagrams are numbered by the capture, after they were sent: a
    step's `answers:` finds its CON by its bytes (before, every such case was an error there:
    'answers: step 0[sut.pc5] sent nothing'); the verdicts are those of the tap."""
    _require_sniffing()
    from msgin5g_conformance.engine.session import Session
    from msgin5g_conformance.spec.loader import load_testcases
    from msgin5g_conformance.world.profile import load_profile
    from sut_adapters.registry import make_adapter

    from .conftest import TESTCASES

    profile = load_profile()
    cases = [c for f in sorted((TESTCASES / "coap").glob("*.yaml")) for c in load_testcases(f, profile)]
    cases = [c for c in cases if c.role == "relay"]
    with Session(profile, make_adapter(sut), capture_mode="sniff", pcap_dir=None, concurrency=4) as session:
        results = session.run_cases(cases)
    verdicts = {r.case_id: r.verdict.value for r in results}
    assert {cid for cid, v in verdicts.items() if v != "pass"} == failing, {
        cid: (v, r.reason) for (cid, v), r in zip(verdicts.items(), results, strict=True) if v != "pass"
    }
