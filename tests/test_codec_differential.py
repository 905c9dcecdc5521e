"""A short differential run of the codec against Wireshark's CoAP dissector (tshark).

Generated datagrams (valid messages of every type and code class, tokens 0-8 bytes, options of
the registered numbers with values in their RFC 7252 5.10 length ranges, the recipient option
65003, payloads up to 1,200 bytes; then single-byte mutations of them that the codec still
accepts) are written to one pcap by the harness's own writer and dissected by tshark once. For
every datagram the codec accepts, both must read the same version, type, code, message ID,
token, number of options and payload length. Bounded: 600 datagrams, one tshark run (about 2 s),
seed fixed so a failure reproduces. Datagrams the codec rejects are not compared: in the
earlier 37.5-million-datagram fuzzing every disagreement on what is malformed was Wireshark's
(checked against an independent RFC 7252 oracle), so tshark is no judge there.

``.ci/run`` installs tshark, and in CI this test may not skip (tests/conftest.py).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from msgin5g_conformance.wire.capture.pcap import write_pcap
from msgin5g_conformance.wire.capture.record import Datagram
from msgin5g_conformance.wire.codec import CoapMessage, MalformedDatagram, encode, parse
from msgin5g_conformance.wire.numbers import OPTION_LENGTHS, MessageType

TSHARK = shutil.which("tshark")
PORT = 65401
SEED = 7252
VALID, MUTATED = 300, 300
FIELDS = ["coap.version", "coap.type", "coap.code", "coap.mid", "coap.token", "coap.opt.length", "coap.payload_length"]
FIELDS += ["coap.block_length"]  # with a Block1/Block2 option Wireshark calls the payload a block
# Option numbers Wireshark knows (others it flags as invalid, a dissector choice), and the recipient;
# not OSCORE (9) or EDHOC (21): with them Wireshark reads the rest as a protected message.
NUMBERS = [*sorted(n for n in OPTION_LENGTHS if n < 300 and n not in (9, 21)), 65003]


def random_message(rng: random.Random) -> CoapMessage:
    mtype = rng.choice(list(MessageType))
    code = rng.choice([0, 1, 2, 3, 4, 0x41, 0x44, 0x45, 0x83, 0x84, 0x80, 0xA0, 0xA3])
    if mtype is MessageType.RST or (mtype is MessageType.ACK and rng.random() < 0.3):
        return CoapMessage(mtype, 0, rng.randrange(1 << 16))
    options = []
    for number in sorted(rng.sample(NUMBERS, rng.randrange(0, 6))):
        low, high = OPTION_LENGTHS.get(number, (1, 255))
        length = rng.randint(low, min(high, 300))
        options.append((number, bytes(rng.randrange(256) for _ in range(length))))
    payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 1, 17, 300, 1200])))
    token = bytes(rng.randrange(256) for _ in range(rng.randint(0, 8)))
    return CoapMessage(mtype, code, rng.randrange(1 << 16), token, tuple(options), payload)


def datagrams() -> list[bytes]:
    rng = random.Random(SEED)
    valid = [encode(random_message(rng)) for _ in range(VALID)]
    mutated = []
    while len(mutated) < MUTATED:
        data = bytearray(rng.choice(valid))
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
        mutated.append(bytes(data))
    return valid + mutated


def ours(data: bytes) -> list[str] | None:
    try:
        m = parse(data)
    except MalformedDatagram:
        return None
    return [
        str(m.version),
        str(int(m.mtype)),
        str(m.code),
        str(m.mid),
        m.token.hex(),
        str(len(m.options)),
        str(len(m.payload)) if m.payload else "",
    ]


def theirs(line: str) -> list[str]:
    version, mtype, code, mid, token, lengths, payload, block = line.split("|")
    options = str(len(lengths.split(",")) if lengths else 0)
    return [version, mtype, code, mid, token.replace(":", ""), options, payload or block]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_codec_agrees_with_tshark_on_generated_datagrams(tmp_path: Path) -> None:
    data = datagrams()
    pcap = tmp_path / "generated.pcap"
    write_pcap(
        pcap, [Datagram(i, 1.0 + i / 1000, ("127.0.0.1", PORT), ("127.0.0.2", PORT), d) for i, d in enumerate(data)]
    )
    assert TSHARK is not None
    args = [TSHARK, "-r", str(pcap), "-d", f"udp.port=={PORT},coap", "-T", "fields", "-E", "separator=|"]
    for field in FIELDS:
        args += ["-e", field]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == len(data)
    compared = 0
    differ = []
    for i, (datagram, line) in enumerate(zip(data, lines, strict=True)):
        mine = ours(datagram)
        if mine is None:
            continue
        compared += 1
        if mine != theirs(line):
            differ.append(f"#{i} {datagram[:24].hex()}...: codec {mine}, tshark {theirs(line)}")
    assert compared >= VALID  # every valid one, and the mutations the codec still accepts
    assert differ == [], "\n".join(differ[:10])
