"""Tests for the CoAP registries and the strict RFC 7252 section 3 codec."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgin5g_conformance.wire.codec import CoapMessage, MalformedDatagram, encode, parse
from msgin5g_conformance.wire.numbers import (
    OPTION_FORMATS,
    OPTION_NAMES,
    Code,
    ContentFormat,
    MessageType,
    OptionFormat,
    OptionNumber,
    code_name,
    code_to_str,
    decode_uint,
    encode_uint,
    is_critical,
    is_empty,
    is_no_cache_key,
    is_request,
    is_response,
    is_unsafe,
    option_name,
    parse_code,
)

# --------------------------------------------------------------------------
# Hand-assembled wire vectors.  Each literal is written field by field so a
# reader can check it against the RFC 7252 section 3 diagram.
# --------------------------------------------------------------------------

CON_GET = bytes.fromhex(
    "42 01 1234"  # Ver 1, CON, TKL 2 | 0.01 GET | MID 0x1234
    "a1b2"  # token
    "b5 73752d7563"  # Uri-Path (delta 11, len 5) "su-uc"
    "06 636f6e666967"  # Uri-Path (delta 0, len 6) "config"
    "46 69643d756531"  # Uri-Query (delta 4, len 6) "id=ue1"
)

NON_CONTENT_JSON = bytes.fromhex(
    "51 45 beef"  # Ver 1, NON, TKL 1 | 2.05 Content | MID 0xbeef
    "7f"  # token
    "c1 32"  # Content-Format (delta 12, len 1) = 50
    "ff 7b226f6b223a747275657d"  # marker, {"ok":true}
)

# Option 65003: delta 65003 - 269 = 64734 = 0xfcde in the 2-byte form.
OPTION_65003 = bytes.fromhex("40 02 0001 e6 fcde 68c3a96c6c6f")  # "héllo"


def test_con_get_with_token_and_uri_options() -> None:
    """A CON GET with a token, two Uri-Path and one Uri-Query parses field by field."""
    msg = parse(CON_GET)
    assert msg.version == 1
    assert msg.mtype is MessageType.CON
    assert msg.code == Code.GET
    assert msg.mid == 0x1234
    assert msg.token == bytes.fromhex("a1b2")
    assert msg.options == ((11, b"su-uc"), (11, b"config"), (15, b"id=ue1"))
    assert msg.uri_path() == ["su-uc", "config"]
    assert msg.uri_query() == ["id=ue1"]
    assert msg.payload == b""
    assert msg.content_format() is None
    assert encode(msg) == CON_GET


def test_con_get_encodes_from_fields() -> None:
    """Building the CON GET from fields gives the hand-written bytes exactly."""
    msg = CoapMessage(
        MessageType.CON,
        Code.GET,
        0x1234,
        bytes.fromhex("a1b2"),
        (
            (OptionNumber.URI_QUERY, b"id=ue1"),
            (OptionNumber.URI_PATH, b"su-uc"),
            (OptionNumber.URI_PATH, b"config"),
        ),
    )
    assert msg.encode() == CON_GET


def test_non_content_with_json_payload() -> None:
    """A NON 2.05 with Content-Format 50 and a JSON payload round-trips byte-exactly."""
    msg = parse(NON_CONTENT_JSON)
    assert msg.mtype is MessageType.NON
    assert msg.code == Code.CONTENT
    assert msg.content_format() == ContentFormat.JSON
    assert msg.payload == b'{"ok":true}'
    built = CoapMessage(
        MessageType.NON,
        Code.CONTENT,
        0xBEEF,
        b"\x7f",
        ((OptionNumber.CONTENT_FORMAT, encode_uint(ContentFormat.JSON)),),
        b'{"ok":true}',
    )
    assert built == msg
    assert encode(built) == NON_CONTENT_JSON


def test_option_65003_uses_two_byte_extended_delta() -> None:
    """Option 65003 needs delta nibble 14 with a 2-byte extension and carries UTF-8 text."""
    msg = parse(OPTION_65003)
    assert msg.options == ((65003, "héllo".encode()),)
    assert msg.option_values(65003)[0].decode("utf-8") == "héllo"
    assert msg.has_option(65003)
    assert not msg.has_option(65004)
    built = CoapMessage(MessageType.CON, Code.POST, 1, options=((65003, "héllo".encode()),))
    assert built.encode() == OPTION_65003


def test_extended_delta_13_form() -> None:
    """Size1 (60) is written as delta nibble 13 plus one byte 60 - 13 = 0x2f."""
    wire = bytes.fromhex("40 01 0002 d2 2f 0400")
    msg = parse(wire)
    assert msg.options == ((OptionNumber.SIZE1, b"\x04\x00"),)
    assert decode_uint(msg.option_values(OptionNumber.SIZE1)[0]) == 1024
    assert encode(msg) == wire


@pytest.mark.parametrize(
    ("number", "header"),
    [
        (12, "c0"),  # largest delta that fits the nibble
        (13, "d0 00"),  # smallest 1-byte extension
        (268, "d0 ff"),  # largest 1-byte extension
        (269, "e0 0000"),  # smallest 2-byte extension
        (65535, "e0 fef2"),  # largest option number
    ],
)
def test_delta_form_boundaries(number: int, header: str) -> None:
    """Option deltas switch form exactly at 13 and 269, in both directions."""
    wire = bytes.fromhex("40 01 0000" + header)
    assert encode(CoapMessage(MessageType.CON, Code.GET, 0, options=((number, b""),))) == wire
    assert parse(wire).options == ((number, b""),)


def test_option_length_13_form() -> None:
    """A 13-byte value uses length nibble 13 with extension byte 0x00."""
    value = b"abcdefghijklm"
    wire = bytes.fromhex("40 01 0000 bd 00") + value
    msg = parse(wire)
    assert msg.options == ((11, value),)
    assert encode(msg) == wire


def test_option_length_268_is_last_one_byte_form() -> None:
    """A 268-byte value still fits the 1-byte length extension (0xff)."""
    value = bytes(range(256)) + b"x" * 12
    wire = bytes.fromhex("40 01 0000 bd ff") + value
    assert parse(wire).options == ((11, value),)
    assert encode(parse(wire)) == wire


def test_option_length_300_uses_two_byte_form() -> None:
    """A 300-byte value uses length nibble 14 with extension 300 - 269 = 0x001f."""
    value = b"v" * 300
    wire = bytes.fromhex("40 01 0000 be 001f") + value
    msg = parse(wire)
    assert msg.options == ((11, value),)
    assert encode(msg) == wire


def test_extended_delta_precedes_extended_length() -> None:
    """With both extended, the delta bytes come before the length bytes."""
    value = b"0123456789abcdefghij"  # 20 bytes: length nibble 13, extension 7
    wire = bytes.fromhex("40 01 0000 ed fcde 07") + value
    msg = parse(wire)
    assert msg.options == ((65003, value),)
    assert encode(msg) == wire


def test_empty_ack() -> None:
    """An Empty ACK is the 4-byte header alone."""
    wire = bytes.fromhex("60 00 1234")
    msg = parse(wire)
    assert msg == CoapMessage(MessageType.ACK, Code.EMPTY, 0x1234)
    assert encode(msg) == wire


def test_empty_con_ping_and_empty_rst() -> None:
    """CON and RST may be Empty (RFC 7252 4.2 ping and reset)."""
    assert parse(bytes.fromhex("40 00 0007")).mtype is MessageType.CON
    assert parse(bytes.fromhex("70 00 0007")).mtype is MessageType.RST


def test_encode_sorts_options_stably() -> None:
    """Encode orders options by number and keeps repeated options in their given order."""
    msg = CoapMessage(
        MessageType.CON,
        Code.GET,
        0,
        options=((15, b"b=2"), (11, b"a"), (15, b"a=1"), (11, b"b")),
    )
    assert parse(encode(msg)).options == ((11, b"a"), (11, b"b"), (15, b"b=2"), (15, b"a=1"))


def test_encode_omits_marker_without_payload() -> None:
    """No 0xFF is written when the payload is empty."""
    assert encode(CoapMessage(MessageType.ACK, Code.CHANGED, 9)) == bytes.fromhex("60 44 0009")


def test_parse_accepts_bytearray_and_memoryview() -> None:
    """Byte-like input parses the same as bytes and yields bytes fields."""
    msg = parse(memoryview(bytearray(CON_GET)))
    assert msg == parse(CON_GET)
    assert type(msg.token) is bytes
    assert all(type(v) is bytes for _, v in msg.options)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"version": 4}, "version"),
        ({"mid": 0x10000}, "message ID"),
        ({"code": 256}, "code"),
        ({"token": b"x" * 16}, "token"),
        ({"options": ((65536, b""),)}, "option number"),
        ({"options": ((-1, b""),)}, "option number"),
    ],
)
def test_encode_refuses_unrepresentable_fields(bad: dict[str, object], field: str) -> None:
    """Encode raises ValueError for values that cannot fit their wire field."""
    fields: dict[str, object] = {"mtype": MessageType.CON, "code": Code.GET, "mid": 0}
    fields.update(bad)
    with pytest.raises(ValueError, match=field):
        encode(CoapMessage(**fields))  # type: ignore[arg-type]


def test_encode_allows_rule_breaking_but_representable_message() -> None:
    """Negative tests can encode a version-2 datagram, which parse then rejects."""
    wire = encode(CoapMessage(MessageType.CON, Code.GET, 1, version=2))
    assert wire == bytes.fromhex("80 01 0001")
    with pytest.raises(MalformedDatagram):
        parse(wire)


def test_summary_line() -> None:
    """The summary names type, code, mid, token, options by name and payload size."""
    msg = CoapMessage(
        MessageType.CON,
        Code.POST,
        0x1234,
        bytes.fromhex("a1b2"),
        (
            (OptionNumber.URI_PATH, b"su-uc"),
            (OptionNumber.CONTENT_FORMAT, encode_uint(50)),
            (OptionNumber.BLOCK1, encode_uint((3 << 4) | (1 << 3) | 2)),
            (OptionNumber.ETAG, b"\x01\x02"),
            (OptionNumber.IF_NONE_MATCH, b""),
            (65003, "héllo".encode()),
        ),
        b"x" * 12,
    )
    assert msg.summary() == (
        "CON 0.02 POST mid=0x1234 token=a1b2 "
        "[uri-path=su-uc, content-format=50, block1=3/1/64, etag=0x0102, if-none-match, option 65003=héllo] "
        "payload=12 B"
    )
    assert parse(bytes.fromhex("60 00 0001")).summary() == "ACK 0.00 Empty mid=0x0001 token=-"


# --------------------------------------------------------------------------
# Rejections: each one carries a reason naming the problem and the offset of
# the offending field.
# --------------------------------------------------------------------------

REJECTIONS = [
    pytest.param("", "shorter than the 4-byte", 0, id="empty-datagram"),
    pytest.param("40 01 00", "3 bytes, shorter than the 4-byte", 0, id="3-byte-datagram"),
    pytest.param("80 01 0000", "version 2", 0, id="version-2"),
    pytest.param("00 01 0000", "version 0", 0, id="version-0"),
    pytest.param("49 01 0000" + "00" * 9, "reserved token length 9", 0, id="tkl-9"),
    pytest.param("4f 01 0000" + "00" * 15, "reserved token length 15", 0, id="tkl-15"),
    pytest.param("44 01 0000 a1b2", "token truncated", 4, id="token-truncated"),
    pytest.param("40 01 0000 f0", "delta nibble 15", 4, id="delta-15"),
    pytest.param("40 01 0000 b161 f1 00", "delta nibble 15", 6, id="delta-15-after-option"),
    pytest.param("40 01 0000 bf", "length nibble 15", 4, id="length-15"),
    pytest.param("40 01 0000 d0", "extended option delta truncated", 5, id="ext-delta-1-missing"),
    pytest.param("40 01 0000 e0 01", "extended option delta truncated", 5, id="ext-delta-2-short"),
    pytest.param("40 01 0000 bd", "extended option length truncated", 5, id="ext-length-1-missing"),
    pytest.param("40 01 0000 de 00 01", "extended option length truncated", 6, id="ext-length-2-short"),
    pytest.param("40 01 0000 b5 6162", "option value truncated", 5, id="value-truncated"),
    pytest.param("40 01 0000 e0 ffff", "option number 65804 exceeds 65535", 4, id="number-too-big"),
    pytest.param("40 01 0000 e0 fef2 10", "option number 65536 exceeds 65535", 7, id="number-sum-too-big"),
    pytest.param("40 01 0000 ff", "payload marker with empty payload", 4, id="marker-no-payload"),
    pytest.param("40 01 0000 b161 ff", "payload marker with empty payload", 6, id="marker-after-option"),
    pytest.param("41 00 0000 aa", "Empty message (code 0.00) with token length 1", 0, id="empty-with-token"),
    pytest.param("60 00 1234 b161", "Empty message (code 0.00) has 2 bytes after", 4, id="empty-with-option"),
    pytest.param("60 00 1234 ff61", "Empty message (code 0.00) has 2 bytes after", 4, id="empty-payload"),
    pytest.param("50 00 0000", "Non-confirmable message must not be Empty", 1, id="empty-non"),
    pytest.param("70 45 0000", "Reset message must be Empty", 1, id="rst-not-empty"),
    pytest.param("70 01 0000", "Reset message must be Empty", 1, id="rst-with-request"),
    pytest.param("60 01 0000", "Acknowledgement must not carry a request", 1, id="ack-with-get"),
    pytest.param("40 20 0000", "reserved code class 1 (1.00)", 1, id="class-1"),
    pytest.param("40 c3 0000", "reserved code class 6 (6.03)", 1, id="class-6"),
    pytest.param("40 e1 0000", "reserved code class 7 (7.01)", 1, id="class-7"),
]


@pytest.mark.parametrize(("hexdata", "reason", "offset"), REJECTIONS)
def test_parse_rejects(hexdata: str, reason: str, offset: int) -> None:
    """Malformed datagrams raise MalformedDatagram with the reason and field offset."""
    with pytest.raises(MalformedDatagram) as info:
        parse(bytes.fromhex(hexdata))
    err = info.value
    assert reason in err.reason
    assert err.offset == offset
    assert str(err) == f"{err.reason} (at byte {offset})"


def test_malformed_datagram_is_value_error_and_pickles() -> None:
    """MalformedDatagram is a ValueError and survives pickling with its fields."""
    err = MalformedDatagram("payload marker with empty payload", 4)
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.reason, copy.offset, str(copy)) == (err.reason, err.offset, str(err))


def test_class_3_code_is_accepted() -> None:
    """Class 3 lies in the 2.00-5.31 response range of RFC 7252 12.1, so it is not rejected."""
    assert parse(bytes.fromhex("60 61 0000")).code == 0x61


# --------------------------------------------------------------------------
# Property tests.
# --------------------------------------------------------------------------

_RESPONSE_CODES = st.integers(0x40, 0xBF)  # classes 2..5
_REQUEST_CODES = st.integers(0x01, 0x1F)


@st.composite
def valid_messages(draw: st.DrawFn) -> CoapMessage:
    """Any message RFC 7252 allows on UDP, with options already in wire order."""
    mtype = draw(st.sampled_from(MessageType))
    mid = draw(st.integers(0, 0xFFFF))
    if mtype is MessageType.RST:
        return CoapMessage(mtype, 0, mid)
    if mtype is MessageType.ACK:
        code = draw(st.one_of(st.just(0), _RESPONSE_CODES))
    elif mtype is MessageType.CON:
        code = draw(st.one_of(st.just(0), _REQUEST_CODES, _RESPONSE_CODES))
    else:
        code = draw(st.one_of(_REQUEST_CODES, _RESPONSE_CODES))
    if code == 0:
        return CoapMessage(mtype, 0, mid)
    numbers = sorted(draw(st.lists(st.integers(0, 0xFFFF), max_size=8)))
    options = tuple((n, draw(st.binary(max_size=300))) for n in numbers)
    return CoapMessage(
        mtype,
        code,
        mid,
        draw(st.binary(max_size=8)),
        options,
        draw(st.binary(max_size=64)),
    )


@given(valid_messages())
def test_roundtrip_valid_messages(msg: CoapMessage) -> None:
    """parse(encode(m)) == m for every valid message."""
    assert parse(encode(msg)) == msg


@given(st.binary(max_size=512))
def test_parse_arbitrary_bytes(data: bytes) -> None:
    """Arbitrary bytes either parse and re-encode identically or raise MalformedDatagram."""
    try:
        msg = parse(data)
    except MalformedDatagram:
        return
    # The wire format has one encoding per message, so anything accepted
    # must come back byte for byte.
    assert encode(msg) == data


@given(st.binary(min_size=4, max_size=64).map(lambda b: bytes([0x40 | (b[0] & 0x0F) % 9, 0x01]) + b[2:]))
def test_parse_header_valid_prefix_bytes(data: bytes) -> None:
    """Fuzzing behind a valid request header only ever raises MalformedDatagram."""
    try:
        msg = parse(data)
    except MalformedDatagram:
        return
    assert encode(msg) == data


# --------------------------------------------------------------------------
# Registries and helpers.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [(0x00, "0.00"), (0x01, "0.01"), (0x45, "2.05"), (0x5F, "2.31"), (0xA5, "5.05"), (0xFF, "7.31")],
)
def test_code_to_str(code: int, text: str) -> None:
    """Codes render as c.dd with a two-digit detail."""
    assert code_to_str(code) == text


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("2.05", 0x45),
        ("0.01", 0x01),
        ("4.04", 0x84),
        ("GET", 0x01),
        ("get", 0x01),
        ("CONTENT", 0x45),
        ("content", 0x45),
        ("bad-request", 0x80),
        ("Method Not Allowed", 0x85),
        (0, 0),
        (255, 255),
    ],
)
def test_parse_code_accepts(text: str | int, code: int) -> None:
    """parse_code takes c.dd, registry names in any case, and ints 0..255."""
    assert parse_code(text) == code


@pytest.mark.parametrize("text", ["2.5", "2.32", "8.00", "2.005", "GETT", "", "0x45", 256, -1, True])
def test_parse_code_rejects(text: str | int) -> None:
    """parse_code refuses anything that is not a code, with a hint."""
    with pytest.raises(ValueError, match="is not a CoAP code"):
        parse_code(text)


def test_parse_code_message_wording() -> None:
    """The error for '2.5' points to the c.dd form and to names."""
    with pytest.raises(ValueError) as info:
        parse_code("2.5")
    assert str(info.value) == "'2.5' is not a CoAP code: use c.dd such as 2.05, or a name such as GET"


def test_code_classification() -> None:
    """Requests are 0.01-0.31, responses classes 2/4/5, Empty is 0.00."""
    assert is_request(Code.GET) and is_request(0x1F)
    assert not is_request(Code.EMPTY) and not is_request(Code.CONTENT)
    assert is_response(Code.CONTENT) and is_response(Code.NOT_FOUND) and is_response(Code.GATEWAY_TIMEOUT)
    assert not is_response(Code.GET) and not is_response(0x61) and not is_response(0xE0)
    assert is_empty(0) and not is_empty(Code.GET)


def test_code_name() -> None:
    """Registered codes get their title, unknown ones stay bare c.dd."""
    assert code_name(0x45) == "2.05 Content"
    assert code_name(0x01) == "0.01 GET"
    assert code_name(0x8F) == "4.15 Unsupported Content-Format"
    assert code_name(0x47) == "2.07"


def test_every_code_has_a_title() -> None:
    """Each Code member renders with a title, not just digits."""
    for code in Code:
        assert code_name(code) != code_to_str(code)


@pytest.mark.parametrize(
    ("number", "critical", "unsafe", "no_cache_key"),
    [
        (65003, True, True, False),
        (OptionNumber.URI_PATH, True, True, False),
        (OptionNumber.CONTENT_FORMAT, False, False, False),
        (OptionNumber.MAX_AGE, False, True, False),
        (OptionNumber.ETAG, False, False, False),
        (OptionNumber.IF_MATCH, True, False, False),
        (OptionNumber.SIZE1, False, False, True),
        (OptionNumber.SIZE2, False, False, True),
        (OptionNumber.ECHO, False, False, True),
    ],
)
def test_option_properties(number: int, critical: bool, unsafe: bool, no_cache_key: bool) -> None:
    """Critical, unsafe and NoCacheKey follow the bits of RFC 7252 5.4.6."""
    assert is_critical(number) is critical
    assert is_unsafe(number) is unsafe
    assert is_no_cache_key(number) is no_cache_key


def test_registry_completeness() -> None:
    """Every OptionNumber has a format and a name, and names map back to numbers."""
    assert set(OPTION_FORMATS) == set(OptionNumber)
    assert set(OPTION_NAMES.values()) == set(OptionNumber)
    assert len(OPTION_NAMES) == len(OptionNumber)
    for number in OptionNumber:
        assert OPTION_NAMES[option_name(number)] == number
        assert option_name(number) == number.name.lower().replace("_", "-")


def test_option_formats_spot_checks() -> None:
    """Formats match the RFC 7252 5.10 table for representative options."""
    assert OPTION_FORMATS[OptionNumber.URI_PATH] is OptionFormat.STRING
    assert OPTION_FORMATS[OptionNumber.CONTENT_FORMAT] is OptionFormat.UINT
    assert OPTION_FORMATS[OptionNumber.BLOCK2] is OptionFormat.UINT
    assert OPTION_FORMATS[OptionNumber.ETAG] is OptionFormat.OPAQUE
    assert OPTION_FORMATS[OptionNumber.IF_NONE_MATCH] is OptionFormat.EMPTY


def test_option_name_unknown() -> None:
    """Unregistered option numbers are named 'option N'."""
    assert option_name(65003) == "option 65003"
    assert option_name(OptionNumber.URI_PATH) == "uri-path"


@pytest.mark.parametrize(
    ("value", "wire"), [(0, b""), (1, b"\x01"), (255, b"\xff"), (256, b"\x01\x00"), (0xFFFFFFFF, b"\xff" * 4)]
)
def test_uint_minimal_encoding(value: int, wire: bytes) -> None:
    """uint values use the fewest bytes, and zero is the empty string."""
    assert encode_uint(value) == wire
    assert decode_uint(wire) == value


def test_decode_uint_accepts_leading_zeros() -> None:
    """Receivers read padded uint values (RFC 7252 3.2)."""
    assert decode_uint(b"\x00\x00\x32") == 50


def test_encode_uint_rejects_negative() -> None:
    """Negative numbers have no uint encoding."""
    with pytest.raises(ValueError):
        encode_uint(-1)


def test_a_tail_parsed_before_is_reused_with_the_new_header() -> None:
    """parse keeps the options and payload of tails it decoded (a relay's copy repeats its
    original's): the same tail under another header gives that header's fields, a malformed tail
    fails every time, and the memory is bounded."""
    from msgin5g_conformance.wire import codec as c

    tail = b"\xb4conf\x33abc\xff{}"
    first = c.parse(b"\x42\x01\x00\x07\xab\xcd" + tail)  # CON GET, MID 7, token abcd
    again = c.parse(b"\x51\x45\x12\x34\x99" + tail)  # NON 2.05, MID 0x1234, token 99
    assert (first.mtype, first.code, first.mid, first.token) == (MessageType.CON, 0x01, 7, b"\xab\xcd")
    assert (again.mtype, again.code, again.mid, again.token) == (MessageType.NON, 0x45, 0x1234, b"\x99")
    assert again.options == first.options == ((11, b"conf"), (14, b"abc"))
    assert again.payload == first.payload == b"{}"
    with pytest.raises(c.MalformedDatagram):
        c.parse(b"\x40\x01\x00\x01\xff")  # marker, empty payload
    with pytest.raises(c.MalformedDatagram):
        c.parse(b"\x40\x01\x00\x02\xff")  # the same, not remembered as well-formed
    with pytest.raises(c.MalformedDatagram):
        c.parse(b"\x70\x01\x00\x02" + tail)  # a Reset is Empty whatever its tail
    for i in range(3 * c._TAIL_ENTRIES):
        c.parse(b"\x40\x01\x00\x01\xff" + i.to_bytes(4, "big"))
    assert len(c._tails) <= c._TAIL_ENTRIES
