"""Strict CoAP message codec for the UDP binding (RFC 7252 section 3).

:func:`parse` is the harness's judge of what a system under test put on the
wire, so it accepts exactly the datagrams RFC 7252 allows and rejects the rest
with a reason and the byte offset of the faulty field.  It never repairs
anything: there is no "close enough" in a conformance verdict.

:func:`encode` is the other direction.  It refuses only what the wire format
cannot express (a 17-bit option number, a 16-byte token, ...).  Messages that
fit the bit fields but break a protocol rule, such as version 2 or a Reset
that carries a token, are encoded as asked, because negative test cases need
to send exactly those to a peer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass
from operator import itemgetter

from msgin5g_conformance.wire.numbers import (
    OPTION_FORMATS,
    MessageType,
    OptionFormat,
    OptionNumber,
    code_name,
    code_to_str,
    decode_uint,
    option_name,
)

__all__ = ["CoapMessage", "MalformedDatagram", "encode", "parse"]

# Header layout, RFC 7252 section 3: Ver(2) T(2) TKL(4) | Code(8) | Message ID(16).
_HEADER_LEN = 4
_PAYLOAD_MARKER = 0xFF
# Extended option delta/length forms (RFC 7252 section 3.1): nibble 13 adds one
# byte biased by 13, nibble 14 adds two bytes biased by 269.
_EXT8_BIAS = 13
_EXT16_BIAS = 269
_MAX_OPTION_NUMBER = 0xFFFF
_MAX_OPTION_LENGTH = 0xFFFF + _EXT16_BIAS
_MAX_TOKEN_FIELD = 15  # what 4 bits of TKL can say; RFC 7252 allows only 0..8
_MAX_TOKEN_LEN = 8

# Indexing a tuple is cheaper than calling the enum constructor per datagram.
_TYPES = tuple(MessageType)
_BLOCK_OPTIONS = frozenset({OptionNumber.BLOCK1, OptionNumber.BLOCK2, OptionNumber.Q_BLOCK1, OptionNumber.Q_BLOCK2})
# How much of an option value one summary line shows before eliding.
_SUMMARY_TEXT_CHARS = 32
_SUMMARY_HEX_BYTES = 16

Option = tuple[int, bytes]


class MalformedDatagram(ValueError):
    """A datagram that is not a well-formed CoAP message (RFC 7252 section 3).

    ``offset`` is the index of the first byte of the field at fault: the
    header byte of a bad option, the start of a truncated token or value, or
    the position where missing extension bytes should have been.
    """

    def __init__(self, reason: str, offset: int) -> None:
        # Both go to args so the exception pickles and copies faithfully.
        super().__init__(reason, offset)
        self.reason = reason
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.reason} (at byte {self.offset})"


@dataclass(frozen=True, slots=True)
class CoapMessage:
    """One CoAP message as it appears on the wire (RFC 7252 section 3).

    ``code`` stays a plain int so unregistered codes survive a round trip.
    ``options`` holds (number, raw value) pairs in wire order; values are
    not interpreted here, the option modules do that.
    """

    mtype: MessageType
    code: int
    mid: int
    token: bytes = b""
    options: tuple[Option, ...] = ()
    payload: bytes = b""
    version: int = 1

    def option_values(self, number: int) -> list[bytes]:
        """Raw values of every instance of option ``number``, in wire order."""
        return [value for n, value in self.options if n == number]

    def has_option(self, number: int) -> bool:
        """Whether option ``number`` occurs at least once."""
        return any(n == number for n, _ in self.options)

    def uri_path(self) -> list[str]:
        """Uri-Path segments (RFC 7252 section 5.10.1), UTF-8 decoded.

        Raises :class:`UnicodeDecodeError` on a segment that is not UTF-8,
        which the string format of section 3.2 forbids.
        """
        return [v.decode("utf-8") for v in self.option_values(OptionNumber.URI_PATH)]

    def uri_query(self) -> list[str]:
        """Uri-Query arguments (RFC 7252 section 5.10.1), UTF-8 decoded."""
        return [v.decode("utf-8") for v in self.option_values(OptionNumber.URI_QUERY)]

    def content_format(self) -> int | None:
        """The Content-Format number (RFC 7252 section 5.10.3), if present.

        The option is not repeatable; should a peer repeat it anyway the first
        instance is returned and judging the repetition is left to the caller.
        """
        for n, value in self.options:
            if n == OptionNumber.CONTENT_FORMAT:
                return decode_uint(value)
        return None

    def encode(self) -> bytes:
        """Wire bytes of this message; see :func:`encode`."""
        return encode(self)

    def summary(self) -> str:
        """One log line: type, code, Message ID, token, options, payload size."""
        parts = [
            _TYPES[self.mtype].name if 0 <= self.mtype <= 3 else f"type{int(self.mtype)}",
            code_name(self.code) if 0 <= self.code <= 0xFF else f"code {self.code}",
            f"mid=0x{self.mid:04x}",
            f"token={self.token.hex() or '-'}",
        ]
        if self.version != 1:
            parts.insert(0, f"v{self.version}")
        if self.options:
            parts.append("[" + ", ".join(_render_option(n, v) for n, v in self.options) + "]")
        if self.payload:
            parts.append(f"payload={len(self.payload)} B")
        return " ".join(parts)


def _render_option(number: int, value: bytes) -> str:
    """``name=value`` with the value shown according to its registered format."""
    name = option_name(number)
    fmt = OPTION_FORMATS.get(number)
    if not value and fmt in (OptionFormat.EMPTY, OptionFormat.OPAQUE, None):
        return name
    if fmt is OptionFormat.UINT and len(value) <= 8:
        v = decode_uint(value)
        if number in _BLOCK_OPTIONS:
            # NUM/M/size, the way RFC 7959 section 2.2 writes block values.
            szx = v & 7
            size = str(16 << szx) if szx < 7 else "szx7"
            return f"{name}={v >> 4}/{(v >> 3) & 1}/{size}"
        return f"{name}={v}"
    if fmt in (OptionFormat.STRING, None):
        # Unregistered options are shown as text when they look like text,
        # since that is how most vendor options are used.
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if text and text.isprintable():
            if len(text) > _SUMMARY_TEXT_CHARS:
                text = text[:_SUMMARY_TEXT_CHARS] + "…"
            return f"{name}={text}"
    shown = value[:_SUMMARY_HEX_BYTES].hex()
    return f"{name}=0x{shown}{'…' if len(value) > _SUMMARY_HEX_BYTES else ''}"


# A frozen dataclass's __init__ sets each field through object.__setattr__ (about 1 us for
# CoapMessage's seven, a third of parsing a small datagram): parse builds each message as this
# unfrozen twin (the same fields, hence the same slots) and then gives it CoapMessage's class,
# which CPython allows between identical layouts; from then on it is an ordinary, frozen message.
_Parts = make_dataclass("_Parts", [(f.name, f.type, field(default=f.default)) for f in fields(CoapMessage)], slots=True)


def _message(
    mtype: MessageType, code: int, mid: int, token: bytes, options: tuple[Option, ...], payload: bytes
) -> CoapMessage:
    made: CoapMessage = _Parts(mtype, code, mid, token, options, payload)
    made.__class__ = CoapMessage
    return made


# the members parse compares with, bound once (an enum member is looked up on its class each time)
_NON, _ACK, _RST = MessageType.NON, MessageType.ACK, MessageType.RST


# Tails (options and payload) that parsed well, by their bytes: at most 1,024 of at most 512
# bytes each (about 0.6 MB), emptied when full.
_TAIL_ENTRIES = 1024
_TAIL_BYTES = 512
_tails: dict[bytes, tuple[tuple[Option, ...], bytes]] = {}


def parse(data: bytes | bytearray | memoryview) -> CoapMessage:
    """Decode one UDP datagram into a :class:`CoapMessage`, strictly.

    Implements the message format of RFC 7252 section 3 and 3.1 together
    with the message-level rules of section 4: an Empty message has no token
    and nothing after the Message ID (4.1), a Reset is always Empty (4.2,
    4.3), a Non-confirmable message is never Empty (4.3), and an
    Acknowledgement never carries a request (4.2).  Code classes 1, 6 and 7
    are reserved (section 12.1).  Any violation raises
    :class:`MalformedDatagram`.
    """
    # A plain index loop over the bytes, no per-byte objects: measured at about
    # 150,000 small messages/s (26-byte CON GET, CPython 3.11, on the machine
    # this harness was developed on), far above one test case's traffic.

    # bytearray/memoryview input: one copy up front keeps every slice below a
    # real, immutable bytes object.
    buf = data if type(data) is bytes else bytes(data)
    n = len(buf)
    if n < _HEADER_LEN:
        raise MalformedDatagram(f"datagram is {n} bytes, shorter than the 4-byte CoAP header", 0)

    first = buf[0]
    version = first >> 6
    if version != 1:
        raise MalformedDatagram(f"version {version}: only CoAP version 1 is defined", 0)
    mtype = _TYPES[(first >> 4) & 0x3]
    tkl = first & 0x0F
    if tkl > _MAX_TOKEN_LEN:
        raise MalformedDatagram(f"reserved token length {tkl} (TKL 9..15 is a format error)", 0)

    code = buf[1]
    code_class = code >> 5
    if code_class in (1, 6, 7):
        raise MalformedDatagram(f"reserved code class {code_class} ({code_to_str(code)})", 1)
    mid = (buf[2] << 8) | buf[3]

    if code == 0:
        if mtype is _NON:
            raise MalformedDatagram("a Non-confirmable message must not be Empty (code 0.00)", 1)
        if tkl:
            raise MalformedDatagram(f"Empty message (code 0.00) with token length {tkl}, must be 0", 0)
        if n > _HEADER_LEN:
            raise MalformedDatagram(
                f"Empty message (code 0.00) has {n - _HEADER_LEN} bytes after the Message ID", _HEADER_LEN
            )
        return _message(mtype, 0, mid, b"", (), b"")
    if mtype is _RST:
        raise MalformedDatagram(f"a Reset message must be Empty (code 0.00), got {code_name(code)}", 1)
    if mtype is _ACK and code_class == 0:
        raise MalformedDatagram(f"an Acknowledgement must not carry a request, got {code_name(code)}", 1)

    pos = _HEADER_LEN + tkl
    if pos > n:
        raise MalformedDatagram(
            f"token truncated: TKL is {tkl} but only {n - _HEADER_LEN} bytes follow the header", _HEADER_LEN
        )
    token = buf[_HEADER_LEN:pos]

    # The options and payload after the token as decoded before: a relay's copy carries its
    # original's unchanged (a trace holds each twice) and a retransmission repeats them.
    tail = buf[pos:] if n - pos <= _TAIL_BYTES else None
    if tail is not None:
        known = _tails.get(tail)
        if known is not None:
            return _message(mtype, code, mid, token, known[0], known[1])

    options: list[Option] = []
    number = 0
    payload = b""
    while pos < n:
        start = pos
        byte = buf[pos]
        if byte == _PAYLOAD_MARKER:
            pos += 1
            if pos == n:
                # RFC 7252 section 3: a marker followed by a zero-length payload
                # is a format error, not an empty payload.
                raise MalformedDatagram("payload marker with empty payload", start)
            payload = buf[pos:]
            break
        delta = byte >> 4
        length = byte & 0x0F
        if delta == 15:
            raise MalformedDatagram(
                f"option delta nibble 15 in byte 0x{byte:02x}: reserved for the payload marker 0xFF", start
            )
        if length == 15:
            raise MalformedDatagram(f"option length nibble 15 in byte 0x{byte:02x} is reserved", start)
        pos += 1
        if delta == 13:
            if pos >= n:
                raise MalformedDatagram("extended option delta truncated: 1 byte expected", pos)
            delta = buf[pos] + _EXT8_BIAS
            pos += 1
        elif delta == 14:
            if pos + 2 > n:
                raise MalformedDatagram(f"extended option delta truncated: 2 bytes expected, {n - pos} present", pos)
            delta = ((buf[pos] << 8) | buf[pos + 1]) + _EXT16_BIAS
            pos += 2
        if length == 13:
            if pos >= n:
                raise MalformedDatagram("extended option length truncated: 1 byte expected", pos)
            length = buf[pos] + _EXT8_BIAS
            pos += 1
        elif length == 14:
            if pos + 2 > n:
                raise MalformedDatagram(f"extended option length truncated: 2 bytes expected, {n - pos} present", pos)
            length = ((buf[pos] << 8) | buf[pos + 1]) + _EXT16_BIAS
            pos += 2
        number += delta
        if number > _MAX_OPTION_NUMBER:
            raise MalformedDatagram(f"option number {number} exceeds 65535", start)
        end = pos + length
        if end > n:
            raise MalformedDatagram(f"option value truncated: length {length} but {n - pos} bytes remain", pos)
        options.append((number, buf[pos:end]))
        pos = end

    decoded = tuple(options)
    if tail is not None:
        if len(_tails) >= _TAIL_ENTRIES:
            _tails.clear()
        _tails[tail] = (decoded, payload)
    return _message(mtype, code, mid, token, decoded, payload)


def _ext(value: int) -> tuple[int, bytes]:
    """Nibble and extension bytes for an option delta or length (RFC 7252 3.1)."""
    if value < _EXT8_BIAS:
        return value, b""
    if value < _EXT16_BIAS:
        return 13, bytes((value - _EXT8_BIAS,))
    return 14, (value - _EXT16_BIAS).to_bytes(2, "big")


def encode(msg: CoapMessage) -> bytes:
    """Serialise ``msg`` in the RFC 7252 section 3 wire format.

    Options are written in ascending number order; ``sorted`` is stable, so
    repeated options keep their relative order, which carries meaning for
    e.g. Uri-Path (section 5.4.5).  The payload marker is written only when
    there is a payload, as section 3 requires.  Raises :class:`ValueError`
    for fields the header cannot hold; see the module docstring for why
    protocol-rule violations are not refused here.
    """
    version, mtype, code, mid, token = msg.version, msg.mtype, msg.code, msg.mid, msg.token
    if not 0 <= version <= 3:
        raise ValueError(f"version {version} does not fit the 2-bit Ver field")
    if not 0 <= mtype <= 3:
        raise ValueError(f"type {mtype} does not fit the 2-bit T field")
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code {code} does not fit the 8-bit Code field")
    if not 0 <= mid <= 0xFFFF:
        raise ValueError(f"message ID {mid} does not fit 16 bits")
    if len(token) > _MAX_TOKEN_FIELD:
        raise ValueError(f"token of {len(token)} bytes does not fit the 4-bit TKL field")

    out = bytearray((version << 6 | mtype << 4 | len(token), code, mid >> 8, mid & 0xFF))
    out += token
    previous = 0
    for number, value in sorted(msg.options, key=itemgetter(0)):
        if not 0 <= number <= _MAX_OPTION_NUMBER:
            raise ValueError(f"option number {number} is outside 0..65535")
        if len(value) > _MAX_OPTION_LENGTH:
            raise ValueError(f"option {number} value of {len(value)} bytes exceeds {_MAX_OPTION_LENGTH}")
        delta_nibble, delta_ext = _ext(number - previous)
        length_nibble, length_ext = _ext(len(value))
        out.append(delta_nibble << 4 | length_nibble)
        # Extended delta bytes precede extended length bytes (section 3.1).
        out += delta_ext
        out += length_ext
        out += value
        previous = number
    if msg.payload:
        out.append(_PAYLOAD_MARKER)
        out += msg.payload
    return bytes(out)
