"""The sweep's inputs: malformed and hostile datagrams, deterministic from a seed.

Every input is derived from the *valid* messages of the role at one SUT endpoint (the
configuration GET a client sends to a relay's or gateway's PC5 side, a 2.05 / 4.04 the SCM-S sends
to its network side, a 2.05 / 4.03 the relay sends to a constrained UE), built from the profile's
accessors: recipient option, addresses, Uri-Path, the ue-uri query name, content format. Each
input carries the name of the generator that made it:

==========================  ==================================================================
``bit-flip``                one bit of a valid message flipped (endless)
``multi-bit-flip``          2 to 8 bits of a valid message flipped (endless)
``truncation``              a valid message cut at every length from 0 to its length - 1
``tkl-9-15``                token length 9..15 (RFC 7252 3: a format error)
``option-nibble-15``        option delta or length nibble 15 (reserved, RFC 7252 3.1)
``option-length-overrun``   an option whose length runs past the end of the datagram
``oversized-option``        well-formed framing, values far over the option's length (1,100-byte
                            Uri-Path, 4,000-byte recipient, 65,000-byte options, 2,000 options)
``payload-marker-empty``    a payload marker with no payload after it (RFC 7252 3)
``bad-version``             version 0, 2 or 3 (RFC 7252 3: only 1 is defined)
``reserved-code-class``     code classes 1, 6 and 7 (RFC 7252 12.1)
``empty-with-content``      code 0.00 with a token, options or a payload (RFC 7252 4.1, 4.3)
``max-datagram``            65,507-byte datagrams, the largest UDP payload over IPv4
==========================  ==================================================================

The generators take turns (round-robin); the finite ones drop out when they are done, so a long
sweep is mostly bit flips, and the few very large datagrams go out early and only once each.
Every message gets a fresh Message ID (from 0x0000..0x7FFF; the probes use the upper half), so
that a SUT's duplicate detection (RFC 7252 4.5) does not hide an input behind an earlier one.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, code_name, encode_uint
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import Profile

MAX_UDP_PAYLOAD = 65507  # 65,535 - 20 (IPv4 header) - 8 (UDP header)
FUZZ_MID_MASK = 0x7FFF  # inputs use Message IDs 0x0000..0x7FFF; probes pick from the upper half

PROBE_CLIENT = "cue1"  # the tester client the probes use (linked, asks for its configuration)
FUZZ_CLIENT = "cue2"  # the tester client the PC5-side inputs come from
OTHER_DOCUMENT = "cue2"  # inputs carry this node's document: a probe's payload is never an input's

# Which tester node sends the inputs (and the pings) to each SUT endpoint.
SENDERS: dict[str, str] = {"sut.pc5": FUZZ_CLIENT, "sut.uu": "scms", "sut.cue": "relay"}

GENERATORS = (
    "bit-flip",
    "truncation",
    "tkl-9-15",
    "option-nibble-15",
    "option-length-overrun",
    "oversized-option",
    "payload-marker-empty",
    "bad-version",
    "reserved-code-class",
    "empty-with-content",
    "max-datagram",
    "multi-bit-flip",
)

Option = tuple[int, bytes]


@dataclass(frozen=True)
class Input:
    """One datagram of the sweep."""

    index: int  # 0-based, over all endpoints, in sending order
    endpoint: str  # the SUT endpoint it goes to (sut.pc5, sut.uu, sut.cue)
    generator: str
    data: bytes
    note: str  # what exactly was done ("cut to 17 of 96 bytes", "bit 93 flipped", ...)
    base: bytes | None = None  # the valid message it was made from (None: not from one)

    def described(self, limit: int = 512) -> dict[str, object]:
        """The input as a report shows it: every byte, or the first ``limit`` bytes and the length."""
        cut = len(self.data) > limit
        return {
            "index": self.index,
            "generator": self.generator,
            "endpoint": self.endpoint,
            "length": len(self.data),
            "note": self.note,
            "hex": self.data[:limit].hex() if cut else self.data.hex(),
            "hex_truncated": cut,
        }


# -- the valid messages of each endpoint ---------------------------------------------------------


def _sorted(options: list[Option]) -> tuple[Option, ...]:
    return tuple(sorted(options, key=lambda o: o[0]))


def configuration_get(profile: Profile, client: str, mtype: MessageType, token: bytes) -> CoapMessage:
    """The configuration GET a client sends to a Relay UE or Gateway UE (TS 24.538 6.2.1.2, 6.2.2):
    recipient the SCM-S, Uri-Path of the single-UE resource, ``<ue_ids>=<client address>``."""
    p = profile
    options: list[Option] = [(p.recipient_option, p.scm_s_address.encode("utf-8"))]
    options += [(OptionNumber.URI_PATH, s.encode("utf-8")) for s in p.single_path]
    options.append((OptionNumber.URI_QUERY, f"{p.query_ue_ids}={p.client_address(client)}".encode()))
    return CoapMessage(mtype, Code.GET, 0, token, _sorted(options))


def configuration_response(
    profile: Profile, code: int, recipient: str, mtype: MessageType, token: bytes, document: str | None
) -> CoapMessage:
    """A 2.05 / 4.03 / 4.04 carrying the recipient option (and, for a 2.05, the document of the
    node ``document`` with the profile's content format)."""
    p = profile
    options: list[Option] = [(p.recipient_option, recipient.encode("utf-8"))]
    payload = b""
    if document is not None:
        options.append((OptionNumber.CONTENT_FORMAT, encode_uint(p.content_format)))
        payload = json.dumps(p.document_for(document), separators=(",", ":")).encode("utf-8")
    return CoapMessage(mtype, code, 0, token, _sorted(options), payload)


def valid_messages(profile: Profile, role: str, endpoint: str, rng: random.Random) -> list[CoapMessage]:
    """The valid messages the inputs to ``endpoint`` are made from (Message IDs are set later)."""
    p = profile
    if endpoint == "sut.pc5":
        return [
            configuration_get(p, FUZZ_CLIENT, MessageType.CON, rng.randbytes(4)),
            configuration_get(p, FUZZ_CLIENT, MessageType.NON, rng.randbytes(4)),
        ]
    if endpoint == "sut.uu":
        client = p.client_address(PROBE_CLIENT)  # a linked client: the relay really relays these
        return [
            configuration_response(p, Code.CONTENT, client, MessageType.CON, rng.randbytes(4), OTHER_DOCUMENT),
            configuration_response(p, Code.NOT_FOUND, client, MessageType.NON, rng.randbytes(4), None),
        ]
    if endpoint == "sut.cue":
        me = p.sut_ue_address
        return [
            configuration_response(p, Code.CONTENT, me, MessageType.CON, rng.randbytes(4), OTHER_DOCUMENT),
            configuration_response(p, Code.FORBIDDEN, me, MessageType.NON, rng.randbytes(4), None),
        ]
    raise ValueError(f"no SUT endpoint {endpoint!r} in role {role!r}")


# -- generators ------------------------------------------------------------------------------------

Made = tuple[bytes, str, bytes | None]  # data, note, base


@dataclass
class Context:
    """What a generator works from: the endpoint's valid messages, its own random stream, and
    ``fresh`` (a message with a fresh Message ID, encoded)."""

    bases: list[CoapMessage]
    rng: random.Random
    fresh: Callable[[CoapMessage], bytes]
    recipient_option: int


def _kind(msg: CoapMessage) -> str:
    return f"{MessageType(msg.mtype).name} {code_name(msg.code)}"


def _flip(data: bytes, bits: list[int]) -> bytes:
    out = bytearray(data)
    for bit in bits:
        out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def bit_flips(c: Context) -> Iterator[Made]:
    bases, rng, fresh = c.bases, c.rng, c.fresh
    while True:
        msg = rng.choice(bases)
        data = fresh(msg)
        bit = rng.randrange(len(data) * 8)
        yield _flip(data, [bit]), f"bit {bit} (byte {bit // 8}) of a {_kind(msg)} flipped", data


def multi_bit_flips(c: Context) -> Iterator[Made]:
    bases, rng, fresh = c.bases, c.rng, c.fresh
    while True:
        msg = rng.choice(bases)
        data = fresh(msg)
        bits = sorted(rng.sample(range(len(data) * 8), rng.randint(2, 8)))
        yield _flip(data, bits), f"bits {','.join(map(str, bits))} of a {_kind(msg)} flipped", data


def truncations(c: Context) -> Iterator[Made]:
    bases, fresh = c.bases, c.fresh
    for msg in bases:
        for cut in range(len(codec.encode(msg))):
            data = fresh(msg)
            yield data[:cut], f"a {_kind(msg)} of {len(data)} bytes cut to {cut}", data


def long_tokens(c: Context) -> Iterator[Made]:
    bases, rng, fresh = c.bases, c.rng, c.fresh

    def variants(tkl: int, size: int) -> Iterator[tuple[Callable[[bytes], bytes], str]]:
        yield (lambda data: data[4:]), f"with a {size}-byte token"  # the TKL says more than is there
        yield (lambda data: rng.randbytes(tkl) + data[4 + size :]), f"with {tkl} token bytes, then the options"
        yield (lambda data: b""), "header only"

    for msg in bases:
        for tkl in range(9, 16):
            for after, what in variants(tkl, len(msg.token)):
                data = fresh(msg)  # each input its own Message ID
                head = bytes(((data[0] & 0xF0) | tkl,)) + data[1:4]
                yield head + after(data), f"TKL {tkl} on a {_kind(msg)} {what}", data


def option_offsets(data: bytes) -> list[int]:
    """Where each option header byte of a well-formed message is (RFC 7252 3.1)."""
    pos = 4 + (data[0] & 0x0F)
    out: list[int] = []
    while pos < len(data) and data[pos] != 0xFF:
        out.append(pos)
        byte = data[pos]
        pos += 1
        delta, length = byte >> 4, byte & 0x0F
        pos += {13: 1, 14: 2}.get(delta, 0)
        if length == 13:
            length = data[pos] + 13
            pos += 1
        elif length == 14:
            length = ((data[pos] << 8) | data[pos + 1]) + 269
            pos += 2
        pos += length
    return out


def nibble_15(c: Context) -> Iterator[Made]:
    bases, fresh = c.bases, c.fresh
    msg = next(m for m in bases if m.options)
    for which in ("first", "last"):
        for nibble in range(15):
            for field in ("delta", "length"):
                data = fresh(msg)
                offsets = option_offsets(data)
                at = offsets[0] if which == "first" else offsets[-1]
                byte = 0xF0 | nibble if field == "delta" else (nibble << 4) | 0x0F
                out = data[:at] + bytes((byte,)) + data[at + 1 :]
                yield out, f"option {field} nibble 15 (0x{byte:02x}) in the {which} option header", data


def length_overruns(c: Context) -> Iterator[Made]:
    bases, rng, fresh = c.bases, c.rng, c.fresh
    msg = dataclasses.replace(bases[0], payload=b"")
    overruns: list[tuple[bytes, str]] = [
        (b"\x0c", "length 12, no value byte"),
        (b"\x0c" + rng.randbytes(5), "length 12, 5 value bytes"),
        (b"\x0c" + rng.randbytes(11), "length 12, 11 value bytes"),
        (b"\x0d\x00", "length 13 (1-byte extension), no value byte"),
        (b"\x0d\x00" + rng.randbytes(12), "length 13 (1-byte extension), 12 value bytes"),
        (b"\x0d\xff" + rng.randbytes(200), "length 268 (1-byte extension), 200 value bytes"),
        (b"\x0e\x00\x00" + rng.randbytes(268), "length 269 (2-byte extension), 268 value bytes"),
        (b"\x0e\xff\xff" + rng.randbytes(1000), "length 65,804 (2-byte extension), 1,000 value bytes"),
        (b"\x0d", "1-byte length extension missing"),
        (b"\x0e\x01", "2-byte length extension cut after 1 byte"),
        (b"\xd0", "1-byte delta extension missing"),
    ]
    for tail, what in overruns:
        data = fresh(msg)
        yield data + tail, f"an option after the last one of a {_kind(msg)}: {what}", data
    header = fresh(dataclasses.replace(msg, options=()))
    yield header + b"\x0c", f"the only option of a {_kind(msg)}: length 12, no value byte", header


def oversized_options(c: Context) -> Iterator[Made]:
    bases, rng, fresh = c.bases, c.rng, c.fresh
    msg = bases[0]
    recipient = c.recipient_option
    cases: list[tuple[list[Option], str, bool]] = [
        ([(OptionNumber.URI_PATH, b"a" * 1100)], "an extra 1,100-byte Uri-Path segment (limit 255)", False),
        ([(recipient, b"r" * 4000)], f"a 4,000-byte option {recipient} instead of the recipient", True),
        ([(OptionNumber.URI_QUERY, b"q=" + b"x" * 1998)], "an extra 2,000-byte Uri-Query (limit 255)", False),
        ([(OptionNumber.CONTENT_FORMAT, b"\xff" * 9)], "a 9-byte Content-Format (limit 2)", False),
        ([(65000, rng.randbytes(65000))], "an extra 65,000-byte elective option 65000", False),
        ([(OptionNumber.URI_PATH, b"p" * 65000)], "an extra 65,000-byte Uri-Path segment", False),
        ([(OptionNumber.URI_PATH, b"s")] * 2000, "2,000 extra one-byte Uri-Path segments", False),
    ]
    for extra, what, replace in cases:
        kept = [o for o in msg.options if not (replace and o[0] == recipient)]
        big = dataclasses.replace(msg, options=_sorted(kept + extra))
        yield fresh(big), f"a {_kind(msg)} with {what}", None


def empty_payload_markers(c: Context) -> Iterator[Made]:
    bases, fresh = c.bases, c.fresh
    for msg in bases:
        bare = dataclasses.replace(msg, payload=b"")
        data = fresh(bare)
        yield data + b"\xff", f"a {_kind(msg)} without payload, ending in a payload marker", data
    msg = bases[0]
    data = fresh(dataclasses.replace(msg, options=(), payload=b""))
    yield data + b"\xff", f"the header and token of a {_kind(msg)}, then a payload marker", data
    data = fresh(dataclasses.replace(msg, token=b"", options=(), payload=b""))
    yield data + b"\xff", f"the 4-byte header of a {_kind(msg)}, then a payload marker", data


def bad_versions(c: Context) -> Iterator[Made]:
    bases, fresh = c.bases, c.fresh
    for msg in bases:
        for version in (0, 2, 3):
            data = fresh(msg)
            yield bytes(((data[0] & 0x3F) | version << 6,)) + data[1:], f"version {version} on a {_kind(msg)}", data
    for version in (0, 2, 3):
        ping = fresh(CoapMessage(MessageType.CON, 0, 0))
        yield bytes(((ping[0] & 0x3F) | version << 6,)) + ping[1:], f"version {version} on an Empty CON (ping)", ping


RESERVED_CODES = (0x20, 0x21, 0x3F, 0xC0, 0xC5, 0xDF, 0xE0, 0xFF)  # 1.00 1.01 1.31 6.00 6.05 6.31 7.00 7.31


def reserved_codes(c: Context) -> Iterator[Made]:
    bases, fresh = c.bases, c.fresh
    for msg in bases:
        for code in RESERVED_CODES:
            data = fresh(msg)
            what = f"code {code >> 5}.{code & 0x1F:02d} on a {_kind(msg)}"
            yield data[:1] + bytes((code,)) + data[2:], what, data


def empty_with_content(c: Context) -> Iterator[Made]:
    rng, fresh = c.rng, c.fresh
    recipient = c.recipient_option

    def empty(mtype: MessageType, token: bytes = b"", options: tuple[Option, ...] = (), payload: bytes = b"") -> bytes:
        return fresh(CoapMessage(mtype, 0, 0, token, options, payload))

    for tkl in range(1, 9):
        yield empty(MessageType.CON, rng.randbytes(tkl)), f"Empty CON with a {tkl}-byte token", None
    yield empty(MessageType.CON, options=((OptionNumber.URI_PATH, b"x"),)), "Empty CON with a Uri-Path option", None
    yield empty(MessageType.CON, options=((recipient, b"x"),)), f"Empty CON with option {recipient}", None
    yield empty(MessageType.CON, payload=b"ping?"), "Empty CON with a payload", None
    yield empty(MessageType.ACK, rng.randbytes(4)), "Empty ACK with a 4-byte token", None
    yield empty(MessageType.ACK, payload=b"\x00"), "Empty ACK with a payload", None
    yield empty(MessageType.RST, rng.randbytes(4)), "Empty RST with a 4-byte token", None
    yield empty(MessageType.RST, options=((OptionNumber.URI_PATH, b"x"),)), "Empty RST with a Uri-Path option", None
    yield empty(MessageType.NON), "Empty NON (a NON must not be Empty)", None
    yield empty(MessageType.NON, rng.randbytes(2)), "Empty NON with a 2-byte token", None


def max_datagrams(c: Context) -> Iterator[Made]:
    bases, rng, fresh = c.bases, c.rng, c.fresh
    msg = dataclasses.replace(bases[0], payload=b"")
    data = fresh(msg)
    filler = MAX_UDP_PAYLOAD - len(data) - 1
    yield data + b"\xff" + b"{" * filler, f"a {_kind(msg)} with a {filler:,}-byte payload", None
    yield b"\xff" * MAX_UDP_PAYLOAD, "65,507 bytes of 0xff", None
    yield rng.randbytes(MAX_UDP_PAYLOAD), "65,507 random bytes", None


Generator = Callable[[Context], Iterator[Made]]
_MAKERS: dict[str, Generator] = {
    "bit-flip": bit_flips,
    "truncation": truncations,
    "tkl-9-15": long_tokens,
    "option-nibble-15": nibble_15,
    "option-length-overrun": length_overruns,
    "oversized-option": oversized_options,
    "payload-marker-empty": empty_payload_markers,
    "bad-version": bad_versions,
    "reserved-code-class": reserved_codes,
    "empty-with-content": empty_with_content,
    "max-datagram": max_datagrams,
    "multi-bit-flip": multi_bit_flips,
}
assert tuple(_MAKERS) == GENERATORS


class EndpointStream:
    """The inputs for one SUT endpoint: the generators in turn, each with its own random stream."""

    def __init__(self, profile: Profile, role: str, endpoint: str, seed: int) -> None:
        self.endpoint = endpoint
        self.bases = valid_messages(profile, role, endpoint, random.Random(f"{seed}/{endpoint}/bases"))
        option = profile.recipient_option
        self._mid = random.Random(f"{seed}/{endpoint}/mid").randrange(FUZZ_MID_MASK + 1)
        self._live: list[tuple[str, Iterator[Made]]] = [
            (name, make(Context(self.bases, random.Random(f"{seed}/{endpoint}/{name}"), self._fresh, option)))
            for name, make in _MAKERS.items()
        ]
        self._turn = 0

    def _fresh(self, msg: CoapMessage) -> bytes:
        self._mid = (self._mid + 1) & FUZZ_MID_MASK
        return codec.encode(dataclasses.replace(msg, mid=self._mid))

    def next(self) -> tuple[str, Made]:
        while True:  # the endless bit flips never leave, so this ends
            self._turn %= len(self._live)
            name, it = self._live[self._turn]
            try:
                made = next(it)
            except StopIteration:
                del self._live[self._turn]
                continue
            self._turn += 1
            return name, made


def inputs(profile: Profile, role: str, seed: int, count: int) -> Iterator[Input]:
    """``count`` inputs for each endpoint of ``role``, interleaved (pc5, uu, pc5, uu, ...)."""
    streams = [EndpointStream(profile, role, ep, seed) for ep in nodes.SUT_ENDPOINTS[role]]
    index = 0
    for _ in range(count):
        for stream in streams:
            name, (data, note, base) = stream.next()
            yield Input(index, stream.endpoint, name, data, note, base)
            index += 1
