"""Benchmark: the capture reader and ``analyze`` against tshark's CoAP field extraction, side by side.

Generates deterministic captures (classic pcap, Ethernet framing as ``tcpdump -i lo``
writes) of 100,000 and 1,000,000 packets in a temporary folder, streaming: 200 UEs'
configuration GETs relayed by a Relay UE (PC5 side 127.14.0.1, Uu side 127.14.0.2, its
own Message IDs) to the SCM-S and the SCM-S's 2.05 relayed back, with the recipient
option, on port 65401 (some GETs over IPv6, outside the role map), a 2.05 large enough
to be cut into three IPv4 fragments every 200 datagrams, and non-CoAP traffic (TCP,
ARP, other UDP); and the role map naming the relay, the SCM-S and every UE (linked),
so that the full analysis judges every exchange.  Then, for each file and each in a
fresh process of its own:

* (a) the streaming reader (``msgin5g_conformance.analyze.reader.iter_capture``);
* (b) the full analysis, when ``msgin5g_conformance.analyze.run.analyze_benchmark(path, roles)``
  exists (else "n/a"): every relay check, judgements streamed as ``analyze`` does (the verdicts
  are counted and printed);
* (c) ``tshark -r FILE -n -d udp.port==65401,coap -T fields`` with the fields the
  checks need.

(b) and (c) run alternately, three times each by default (``--repeat``), and each is judged
by its best run (all are printed, with the ratio of each alternate pair).  Each is timed
wall-clock (process start included) and its peak RSS is read with
``resource.getrusage(RUSAGE_CHILDREN)`` in a wrapper process that runs only it.
Prints frames/s, RSS (MB) and the tshark/ours time ratio next to the targets of
issue 14 (ratio >= 2, RSS <= 100 MB).  No assertions: the figures are printed.

    .venv/bin/python benchmarks/bench_analyze.py                  # 100,000 and 1,000,000
    .venv/bin/python benchmarks/bench_analyze.py --packets 20000 --keep
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import json
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 65401
RSS_TARGET_MB = 100.0
RATIO_TARGET = 2.0
FRAGMENT_EVERY = 200  # one datagram in this many is a 3-fragment 2.05
TSHARK_FIELDS = [
    "frame.number",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
    "coap.type",
    "coap.code",
    "coap.mid",
    "coap.token",
    "coap.opt.uri_path",
    "coap.opt.uri_query",
]
CHILD_TIMEOUT = 1800.0  # seconds one measured process may take

# --------------------------------------------------------------------------- #
# The capture
# --------------------------------------------------------------------------- #

_ETH_V4 = b"\x00" * 12 + b"\x08\x00"
_ETH_V6 = b"\x00" * 12 + b"\x86\xdd"
_REC = struct.Struct("<IIII")


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: bytes, dst: bytes, ident: int, flags: int, proto: int, body: bytes) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, flags, 64, proto, 0, src, dst)
    return _ETH_V4 + head[:10] + _checksum(head).to_bytes(2, "big") + head[12:] + body


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


RECIPIENT = 65003  # the default profile's recipient option
SCMS_ID = b"scm-s.msgin5g.example"
UES = 200


def _nibble(n: int) -> tuple[int, bytes]:
    """An option delta or length as its 4-bit field and extension bytes (RFC 7252 3.1)."""
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    return 14, (n - 269).to_bytes(2, "big")


def _option(delta: int, value: bytes) -> bytes:
    d, dx = _nibble(delta)
    n, nx = _nibble(len(value))
    return bytes([d << 4 | n]) + dx + nx + value


def _ue_id(ue: int) -> bytes:
    return f"ue-{ue}.msgin5g.example".encode()


def _coap_get(mid: int, token: bytes, ue: int) -> bytes:
    query = f"ue=ue-{ue}".encode()
    return (
        bytes([0x44, 0x01])
        + mid.to_bytes(2, "big")
        + token
        + _option(11, b"msgin5g")
        + _option(0, b"config")
        + _option(4, query)
        + _option(RECIPIENT - 15, SCMS_ID)
    )


def _coap_205(mid: int, token: bytes, size: int, ue: int) -> bytes:
    body = (b'{"cfg":"' + b"x" * size)[:size]
    head = bytes([0x64, 0x45]) + mid.to_bytes(2, "big") + token
    return head + _option(12, b"\x32") + _option(RECIPIENT - 12, _ue_id(ue)) + b"\xff" + body


def role_map(path: Path) -> None:
    """The role map of the generated capture: the relay's two sides, the SCM-S, every UE linked."""
    lines = [
        "topologies:",
        "  - name: benchmark",
        f"    relay: {{pc5: {{address: 127.14.0.1, port: {PORT}}}, uu: {{address: 127.14.0.2, port: {PORT}}}}}",
        f"    scms: {{address: 127.14.2.1, port: {PORT}, recipient: {SCMS_ID.decode()}}}",
        "    clients:",
    ]
    for n in range(UES):
        lines.append(
            f"      - {{name: cue{n}, address: 127.14.1.{n + 2}, port: {PORT}, ue_id: {_ue_id(n).decode()}, "
            "links: [{from: 0}]}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_capture(path: Path, packets: int, seed: int = 14) -> None:
    """Write ``packets`` frames to ``path`` (classic pcap, Ethernet), deterministically, streaming."""
    rng = random.Random(seed)
    relay = bytes([127, 14, 0, 1])  # the relay's PC5 side (the UEs talk to it)
    relay_uu = bytes([127, 14, 0, 2])  # its Uu side (towards the SCM-S)
    scms = bytes([127, 14, 2, 1])
    ues = [bytes([127, 14, 1, n]) for n in range(2, 2 + UES)]
    v6_ue = b"\xfd\x00" + b"\x00" * 13 + b"\x02"
    v6_relay = b"\xfd\x00" + b"\x00" * 13 + b"\x01"
    written = 0
    when = 1_700_000_000_000_000  # microseconds
    mid = 0
    relay_mid = 0x8000  # the relay numbers its own messages (RFC 7252 4.4)
    ident = 0
    datagrams = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        batch: list[bytes] = []

        def put(frame: bytes) -> None:
            nonlocal written, when
            if written >= packets:
                return
            when += 100
            batch.append(_REC.pack(when // 1_000_000, when % 1_000_000, len(frame), len(frame)))
            batch.append(frame)
            written += 1

        while written < packets:
            roll = rng.random()
            mid = (mid + 1) & 0xFFFF
            ident = (ident + 1) & 0xFFFF
            token = rng.randbytes(4)
            ue_index = rng.randrange(len(ues))
            ue = ues[ue_index]
            if roll < 0.02:  # TCP: IP but not UDP
                put(_ipv4(ue, relay, ident, 0x4000, 6, b"\x00" * 20 + b"not udp"))
            elif roll < 0.03:  # ARP: not IP
                put(b"\xff" * 6 + b"\x00" * 6 + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20)
            elif roll < 0.04:  # UDP but not CoAP
                put(_ipv4(ue, relay, ident, 0x4000, 17, _udp(5353, 5353, b"\x00\x00\x01\x00" + b"\x00" * 30)))
            elif roll < 0.08:  # CoAP over IPv6
                get = _udp(PORT, PORT, _coap_get(mid, token, ue_index))
                put(_ETH_V6 + struct.pack("!IHBB16s16s", 6 << 28, len(get), 17, 64, v6_ue, v6_relay) + get)
                answer = _udp(PORT, PORT, _coap_205(mid, token, 60, ue_index))
                put(_ETH_V6 + struct.pack("!IHBB16s16s", 6 << 28, len(answer), 17, 64, v6_relay, v6_ue) + answer)
            else:  # CoAP over IPv4: UE -> relay -> SCM-S and back
                put(_ipv4(ue, relay, ident, 0x4000, 17, _udp(PORT, PORT, _coap_get(mid, token, ue_index))))
                relay_mid = (relay_mid + 1) & 0xFFFF
                copy = _udp(PORT, PORT, _coap_get(relay_mid, token, ue_index))
                put(_ipv4(relay_uu, scms, (ident + 1) & 0xFFFF, 0x4000, 17, copy))
                datagrams += 1
                size = 2960 if datagrams % FRAGMENT_EVERY == 0 else rng.randrange(20, 200)
                # piggybacked answers (RFC 7252 5.2.1): each ACK carries the Message ID of the CON it
                # answers, the SCM-S's the relay's copy's, the relay's the UE's
                for src, dst, m in ((scms, relay_uu, relay_mid), (relay, ue, mid)):
                    answer = _udp(PORT, PORT, _coap_205(m, token, size, ue_index))
                    ident = (ident + 2) & 0xFFFF
                    if len(answer) <= 1480:
                        put(_ipv4(src, dst, ident, 0x4000, 17, answer))
                        continue
                    for start in range(0, len(answer), 1480):
                        more = 0x2000 if start + 1480 < len(answer) else 0
                        put(_ipv4(src, dst, ident, more | (start // 8), 17, answer[start : start + 1480]))
            if len(batch) >= 20_000:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


def _wrap(cmd: list[str]) -> None:
    """Run ``cmd`` as this process's only child; print its wall time, peak RSS and output lines."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    lines = 0
    first = b""
    while chunk := proc.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
        if not first:
            first = chunk[:2000]
    err = proc.stderr.read() if proc.stderr else b""
    code = proc.wait()
    wall = time.perf_counter() - started
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "wall": wall,
                "rss_mb": rss_kb / 1024,
                "lines": lines,
                "first": first.decode(errors="replace"),
                "code": code,
                "stderr": err.decode(errors="replace")[-500:],
            }
        )
    )


def _measure(cmd: list[str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--wrap", *cmd],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=True,
    )
    return dict(json.loads(out.stdout))


def _reader_child(path: str) -> None:
    from msgin5g_conformance.analyze.reader import ReaderStats, iter_capture

    stats = ReaderStats()
    started = time.perf_counter()
    for _ in iter_capture(path, stats):
        pass
    loop = time.perf_counter() - started
    print(json.dumps({"loop": loop, "frames": stats.frames, "datagrams": stats.datagrams, "stats": repr(stats)}))


_ANALYZE_CHILD = (
    "import json, sys\nfrom msgin5g_conformance.analyze.run import analyze_benchmark\n"
    "tally = {}\nframes = analyze_benchmark(sys.argv[1], sys.argv[2], tally)\n"
    "print(json.dumps({'frames': frames, 'verdicts': tally}))\n"
)


def _has_analysis() -> bool:
    try:
        module = importlib.import_module("msgin5g_conformance.analyze.run")
    except ImportError:
        return False
    return callable(getattr(module, "analyze_benchmark", None))


def _line(name: str, frames: int, got: dict[str, object] | None, extra: str = "") -> str:
    if got is None:
        return f"  {name:<8} n/a"
    wall = float(str(got["wall"]))
    rss = float(str(got["rss_mb"]))
    mark = "ok" if rss <= RSS_TARGET_MB else "OVER"
    status = "" if got.get("code") == 0 else f"  EXIT {got.get('code')}: {got.get('stderr')}"
    return (
        f"  {name:<8} {wall:7.2f} s wall, {frames / wall:>10,.0f} frames/s, peak RSS {rss:6.1f} MB "
        f"(target <= {RSS_TARGET_MB:.0f} MB: {mark}){extra}{status}"
    )


def _ratio(name: str, tshark: dict[str, object] | None, ours: dict[str, object] | None, target: bool) -> str:
    if tshark is None or ours is None:
        return f"  ratio tshark/{name}: n/a"
    ratio = float(str(tshark["wall"])) / float(str(ours["wall"]))
    goal = f" (target >= {RATIO_TARGET:g}: {'ok' if ratio >= RATIO_TARGET else 'MISSED'})" if target else ""
    return f"  ratio tshark/{name}: {ratio:.2f}x{goal}"


def _best(runs: list[dict[str, object]]) -> dict[str, object] | None:
    """The fastest run that succeeded (else the first, to show its failure); None without runs."""
    ok = [r for r in runs if r.get("code") == 0]
    if not ok:
        return runs[0] if runs else None
    return min(ok, key=lambda r: float(str(r["wall"])))


def run(sizes: list[int], keep: bool, repeat: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    tshark = shutil.which("tshark")
    analysis = _has_analysis()
    print(f"python {sys.version.split()[0]}; tshark {'at ' + tshark if tshark else 'not installed'}; ", end="")
    print(f"full analysis {'present' if analysis else 'not present (n/a)'}; files in {folder}")
    print("figures on a shared 2-core machine are noisy; wall time includes process start-up")
    # byte-code as an installed package has it (make bytecode): without it, under
    # PYTHONDONTWRITEBYTECODE every measured process would compile the package first
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "msgin5g_conformance"), quiet=1)
    began = time.perf_counter()
    roles = folder / "roles.yaml"
    role_map(roles)
    try:
        for packets in sizes:
            path = folder / f"bench-{packets}.pcap"
            started = time.perf_counter()
            write_capture(path, packets)
            made = time.perf_counter() - started
            megabytes = path.stat().st_size / 1e6
            print(f"\n{packets:,} packets ({megabytes:.1f} MB, pcap/Ethernet), generated in {made:.1f} s")
            reader = _measure([sys.executable, __file__, "--reader-child", str(path)])
            inner = json.loads(str(reader["first"]))
            extra = (
                f"; {inner['frames'] / inner['loop']:,.0f} frames/s in the loop "
                f"(aim >= 500,000), {inner['datagrams']:,} datagrams"
            )
            # analyze and tshark alternately, `repeat` times each: on a shared machine either can be
            # slowed by a neighbour, so each is judged by its best run (every run is printed)
            fulls: list[dict[str, object]] = []
            sharks: list[dict[str, object]] = []
            fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
            for _ in range(repeat):
                if analysis:
                    fulls.append(_measure([sys.executable, "-c", _ANALYZE_CHILD, str(path), str(roles)]))
                if tshark:
                    cmd = [tshark, "-r", str(path), "-n", "-d", f"udp.port=={PORT},coap", "-T", "fields", *fields]
                    sharks.append(_measure(cmd))
            full = _best(fulls)
            shark = _best(sharks)
            if repeat > 1:
                for name, runs in (("analyze", fulls), ("tshark", sharks)):
                    if runs:
                        walls = ", ".join(f"{float(str(r['wall'])):.2f}" for r in runs)
                        print(f"  {name} runs: {walls} s wall (the best is used)")
                pairs = [float(str(t["wall"])) / float(str(a["wall"])) for a, t in zip(fulls, sharks, strict=False)]
                if pairs:
                    print(f"  ratio per alternate pair: {', '.join(f'{r:.2f}x' for r in pairs)}")
            print(_line("reader", packets, reader, extra))
            judged = ""
            if full is not None and full.get("code") == 0:
                verdicts = json.loads(str(full["first"]))["verdicts"]
                judged = "; judged " + ", ".join(f"{n:,} {v}" for v, n in sorted(verdicts.items()))
            print(_line("analyze", packets, full, judged))
            print(_line("tshark", packets, shark, f"; {shark['lines']:,} rows" if shark else ""))
            print(_ratio("analyze", shark, full, target=True))
            print(_ratio("reader", shark, reader, target=False))
        print(f"\nbenchmark finished in {time.perf_counter() - began:.0f} s")
    finally:
        if keep:
            print(f"\nkept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--wrap":
        _wrap(sys.argv[2:])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--reader-child":
        _reader_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--packets", type=int, action="append", help="capture size (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the generated captures")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of analyze and of tshark per size, alternately (best used)"
    )
    args = parser.parse_args()
    sizes = args.packets or [100_000, 1_000_000]
    if any(n < 1 or n > 50_000_000 for n in sizes):
        parser.error("--packets takes 1 to 50,000,000")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat takes 1 to 10")
    run(sizes, args.keep, args.repeat)


if __name__ == "__main__":
    main()
