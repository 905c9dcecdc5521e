"""CoAP registries: message types, codes, option numbers and content formats.

Names follow the IANA sub-registries set up by RFC 7252 section 12, extended
with the later entries the harness meets in practice (RFC 7641 Observe,
RFC 7959 Block, RFC 7967 No-Response, RFC 8132 FETCH/PATCH, RFC 8613 OSCORE,
RFC 8768 Hop-Limit, RFC 9175 Echo/Request-Tag, RFC 9177 Q-Block,
RFC 9668 EDHOC).  Every other module imports its numbers from here, so there
is exactly one place where a number is spelled.
"""

from __future__ import annotations

import re
from enum import Enum, IntEnum

__all__ = [
    "OPTION_FORMATS",
    "OPTION_LENGTHS",
    "OPTION_NAMES",
    "Code",
    "ContentFormat",
    "MessageType",
    "OptionFormat",
    "OptionNumber",
    "code_name",
    "code_to_str",
    "decode_uint",
    "encode_uint",
    "is_critical",
    "is_empty",
    "is_no_cache_key",
    "is_request",
    "is_response",
    "is_unsafe",
    "option_name",
    "parse_code",
]


class MessageType(IntEnum):
    """The 2-bit Type field of the header (RFC 7252 section 3, section 4)."""

    CON = 0
    NON = 1
    ACK = 2
    RST = 3


class Code(IntEnum):
    """Method and Response Codes (RFC 7252 sections 12.1.1 and 12.1.2).

    The value is the raw 8-bit Code field: class in the top 3 bits, detail
    in the low 5 bits, so ``CONTENT == 0x45`` is "2.05".
    """

    EMPTY = 0x00
    GET = 0x01
    POST = 0x02
    PUT = 0x03
    DELETE = 0x04
    FETCH = 0x05  # RFC 8132
    PATCH = 0x06  # RFC 8132
    IPATCH = 0x07  # RFC 8132
    CREATED = 0x41
    DELETED = 0x42
    VALID = 0x43
    CHANGED = 0x44
    CONTENT = 0x45
    CONTINUE = 0x5F  # RFC 7959
    BAD_REQUEST = 0x80
    UNAUTHORIZED = 0x81
    BAD_OPTION = 0x82
    FORBIDDEN = 0x83
    NOT_FOUND = 0x84
    METHOD_NOT_ALLOWED = 0x85
    NOT_ACCEPTABLE = 0x86
    REQUEST_ENTITY_INCOMPLETE = 0x88  # RFC 7959
    CONFLICT = 0x89  # RFC 8132
    PRECONDITION_FAILED = 0x8C
    REQUEST_ENTITY_TOO_LARGE = 0x8D
    UNSUPPORTED_CONTENT_FORMAT = 0x8F
    INTERNAL_SERVER_ERROR = 0xA0
    NOT_IMPLEMENTED = 0xA1
    BAD_GATEWAY = 0xA2
    SERVICE_UNAVAILABLE = 0xA3
    GATEWAY_TIMEOUT = 0xA4
    PROXYING_NOT_SUPPORTED = 0xA5


# Human-readable descriptions as the registry prints them.  Methods keep their
# upper-case token ("GET"); responses use the registry's title case, which is
# what people see in Wireshark and in the RFC text.
_CODE_TITLES: dict[int, str] = {
    Code.EMPTY: "Empty",
    Code.GET: "GET",
    Code.POST: "POST",
    Code.PUT: "PUT",
    Code.DELETE: "DELETE",
    Code.FETCH: "FETCH",
    Code.PATCH: "PATCH",
    Code.IPATCH: "iPATCH",
    Code.CREATED: "Created",
    Code.DELETED: "Deleted",
    Code.VALID: "Valid",
    Code.CHANGED: "Changed",
    Code.CONTENT: "Content",
    Code.CONTINUE: "Continue",
    Code.BAD_REQUEST: "Bad Request",
    Code.UNAUTHORIZED: "Unauthorized",
    Code.BAD_OPTION: "Bad Option",
    Code.FORBIDDEN: "Forbidden",
    Code.NOT_FOUND: "Not Found",
    Code.METHOD_NOT_ALLOWED: "Method Not Allowed",
    Code.NOT_ACCEPTABLE: "Not Acceptable",
    Code.REQUEST_ENTITY_INCOMPLETE: "Request Entity Incomplete",
    Code.CONFLICT: "Conflict",
    Code.PRECONDITION_FAILED: "Precondition Failed",
    Code.REQUEST_ENTITY_TOO_LARGE: "Request Entity Too Large",
    Code.UNSUPPORTED_CONTENT_FORMAT: "Unsupported Content-Format",
    Code.INTERNAL_SERVER_ERROR: "Internal Server Error",
    Code.NOT_IMPLEMENTED: "Not Implemented",
    Code.BAD_GATEWAY: "Bad Gateway",
    Code.SERVICE_UNAVAILABLE: "Service Unavailable",
    Code.GATEWAY_TIMEOUT: "Gateway Timeout",
    Code.PROXYING_NOT_SUPPORTED: "Proxying Not Supported",
}

# "c.dd": one class digit 0-7, a dot, exactly two detail digits.  "2.5" is
# refused on purpose: it is ambiguous between 2.05 and 2.50 to a reader.
_DOTTED = re.compile(r"([0-7])\.([0-9]{2})")

_CODE_HINT = "use c.dd such as 2.05, or a name such as GET"


def _check_byte(code: int) -> None:
    if not 0 <= code <= 0xFF:
        raise ValueError(f"{code} is not a CoAP code: a code is one byte, 0..255")


def code_to_str(code: int) -> str:
    """Render a Code byte in the "c.dd" notation of RFC 7252 section 3."""
    _check_byte(code)
    return f"{code >> 5}.{code & 0x1F:02d}"


def parse_code(text: str | int) -> int:
    """Turn what a user typed into a Code byte.

    Accepts "c.dd" (RFC 7252 section 3 notation, e.g. "2.05"), a registry
    name in any case with ``_``, ``-`` or space as separator ("GET",
    "content", "bad-request"), or an int 0..255.  Anything else is a
    :class:`ValueError` that says what would have been accepted.
    """
    # bool is an int subclass; True as a code is always a mistake.
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a CoAP code: {_CODE_HINT}")
    if isinstance(text, int):
        _check_byte(text)
        return text
    stripped = text.strip()
    dotted = _DOTTED.fullmatch(stripped)
    if dotted is not None:
        detail = int(dotted.group(2))
        if detail > 31:
            raise ValueError(f"{text!r} is not a CoAP code: the detail part is 00..31 ({_CODE_HINT})")
        return (int(dotted.group(1)) << 5) | detail
    key = re.sub(r"[-\s]+", "_", stripped).upper()
    if key in Code.__members__:
        return int(Code[key])
    raise ValueError(f"{text!r} is not a CoAP code: {_CODE_HINT}")


def is_request(code: int) -> bool:
    """Class 0 with a non-zero detail is a method (RFC 7252 section 12.1)."""
    return code >> 5 == 0 and code != 0


def is_response(code: int) -> bool:
    """Classes 2, 4 and 5 carry responses (RFC 7252 section 3)."""
    return code >> 5 in (2, 4, 5)


def is_empty(code: int) -> bool:
    """Code 0.00 marks an Empty message (RFC 7252 section 4.1)."""
    return code == 0


def _code_name(code: int) -> str:
    dotted = code_to_str(code)
    title = _CODE_TITLES.get(code)
    return dotted if title is None else f"{dotted} {title}"


_CODE_NAMES = tuple(_code_name(c) for c in range(256))  # offline analysis names a code per verdict


def code_name(code: int) -> str:
    """The code as "c.dd Title" when registered, as bare "c.dd" otherwise."""
    if 0 <= code <= 0xFF:
        return _CODE_NAMES[code]
    return _code_name(code)  # raises the ValueError of code_to_str


class OptionNumber(IntEnum):
    """CoAP Option Numbers (RFC 7252 section 12.2 and later registrations)."""

    IF_MATCH = 1
    URI_HOST = 3
    ETAG = 4
    IF_NONE_MATCH = 5
    OBSERVE = 6  # RFC 7641
    URI_PORT = 7
    LOCATION_PATH = 8
    OSCORE = 9  # RFC 8613
    URI_PATH = 11
    CONTENT_FORMAT = 12
    MAX_AGE = 14
    URI_QUERY = 15
    HOP_LIMIT = 16  # RFC 8768
    ACCEPT = 17
    Q_BLOCK1 = 19  # RFC 9177
    LOCATION_QUERY = 20
    EDHOC = 21  # RFC 9668
    BLOCK2 = 23  # RFC 7959
    BLOCK1 = 27  # RFC 7959
    SIZE2 = 28  # RFC 7959
    Q_BLOCK2 = 31  # RFC 9177
    PROXY_URI = 35
    PROXY_SCHEME = 39
    SIZE1 = 60
    ECHO = 252  # RFC 9175
    NO_RESPONSE = 258  # RFC 7967
    REQUEST_TAG = 292  # RFC 9175


class OptionFormat(Enum):
    """Option value formats (RFC 7252 section 3.2)."""

    EMPTY = "empty"
    OPAQUE = "opaque"
    UINT = "uint"
    STRING = "string"


_N = OptionNumber
_F = OptionFormat

# Format column of the RFC 7252 section 5.10 table, plus the format each later
# RFC gives its option.  EDHOC (RFC 9668 section 3.1) carries no value at all,
# hence EMPTY rather than OPAQUE.
OPTION_FORMATS: dict[int, OptionFormat] = {
    _N.IF_MATCH: _F.OPAQUE,
    _N.URI_HOST: _F.STRING,
    _N.ETAG: _F.OPAQUE,
    _N.IF_NONE_MATCH: _F.EMPTY,
    _N.OBSERVE: _F.UINT,
    _N.URI_PORT: _F.UINT,
    _N.LOCATION_PATH: _F.STRING,
    _N.OSCORE: _F.OPAQUE,
    _N.URI_PATH: _F.STRING,
    _N.CONTENT_FORMAT: _F.UINT,
    _N.MAX_AGE: _F.UINT,
    _N.URI_QUERY: _F.STRING,
    _N.HOP_LIMIT: _F.UINT,
    _N.ACCEPT: _F.UINT,
    _N.Q_BLOCK1: _F.UINT,
    _N.LOCATION_QUERY: _F.STRING,
    _N.EDHOC: _F.EMPTY,
    _N.BLOCK2: _F.UINT,
    _N.BLOCK1: _F.UINT,
    _N.SIZE2: _F.UINT,
    _N.Q_BLOCK2: _F.UINT,
    _N.PROXY_URI: _F.STRING,
    _N.PROXY_SCHEME: _F.STRING,
    _N.SIZE1: _F.UINT,
    _N.ECHO: _F.OPAQUE,
    _N.NO_RESPONSE: _F.UINT,
    _N.REQUEST_TAG: _F.OPAQUE,
}

# Length column of the RFC 7252 section 5.10 table (bytes, inclusive), plus the range each later RFC
# gives its option (RFC 7641 2, RFC 7959 2.1, RFC 8613 2, RFC 8768 3, RFC 9175 2.2.1 and 3.2,
# RFC 7967 2, RFC 9177 4, RFC 9668 3.1). RFC 7252 5.4.3: a value outside its range is treated
# like an unrecognised option.
OPTION_LENGTHS: dict[int, tuple[int, int]] = {
    _N.IF_MATCH: (0, 8),
    _N.URI_HOST: (1, 255),
    _N.ETAG: (1, 8),
    _N.IF_NONE_MATCH: (0, 0),
    _N.OBSERVE: (0, 3),
    _N.URI_PORT: (0, 2),
    _N.LOCATION_PATH: (0, 255),
    _N.OSCORE: (0, 255),
    _N.URI_PATH: (0, 255),
    _N.CONTENT_FORMAT: (0, 2),
    _N.MAX_AGE: (0, 4),
    _N.URI_QUERY: (0, 255),
    _N.HOP_LIMIT: (1, 1),
    _N.ACCEPT: (0, 2),
    _N.Q_BLOCK1: (0, 3),
    _N.LOCATION_QUERY: (0, 255),
    _N.EDHOC: (0, 0),
    _N.BLOCK2: (0, 3),
    _N.BLOCK1: (0, 3),
    _N.SIZE2: (0, 4),
    _N.Q_BLOCK2: (0, 3),
    _N.PROXY_URI: (1, 1034),
    _N.PROXY_SCHEME: (1, 255),
    _N.SIZE1: (0, 4),
    _N.ECHO: (1, 40),
    _N.NO_RESPONSE: (0, 1),
    _N.REQUEST_TAG: (0, 8),
}

# The names users type in profiles and on the command line: the registry
# name lower-cased ("Uri-Path" -> "uri-path").
OPTION_NAMES: dict[str, int] = {
    "if-match": _N.IF_MATCH,
    "uri-host": _N.URI_HOST,
    "etag": _N.ETAG,
    "if-none-match": _N.IF_NONE_MATCH,
    "observe": _N.OBSERVE,
    "uri-port": _N.URI_PORT,
    "location-path": _N.LOCATION_PATH,
    "oscore": _N.OSCORE,
    "uri-path": _N.URI_PATH,
    "content-format": _N.CONTENT_FORMAT,
    "max-age": _N.MAX_AGE,
    "uri-query": _N.URI_QUERY,
    "hop-limit": _N.HOP_LIMIT,
    "accept": _N.ACCEPT,
    "q-block1": _N.Q_BLOCK1,
    "location-query": _N.LOCATION_QUERY,
    "edhoc": _N.EDHOC,
    "block2": _N.BLOCK2,
    "block1": _N.BLOCK1,
    "size2": _N.SIZE2,
    "q-block2": _N.Q_BLOCK2,
    "proxy-uri": _N.PROXY_URI,
    "proxy-scheme": _N.PROXY_SCHEME,
    "size1": _N.SIZE1,
    "echo": _N.ECHO,
    "no-response": _N.NO_RESPONSE,
    "request-tag": _N.REQUEST_TAG,
}

_NAME_BY_NUMBER: dict[int, str] = {number: name for name, number in OPTION_NAMES.items()}


def option_name(number: int) -> str:
    """The kebab-case name of an option, or "option N" when unregistered."""
    return _NAME_BY_NUMBER.get(number, f"option {number}")


def is_critical(number: int) -> bool:
    """Odd option numbers are critical (RFC 7252 section 5.4.6)."""
    return bool(number & 1)


def is_unsafe(number: int) -> bool:
    """Bit 1 set means unsafe to forward (RFC 7252 section 5.4.6)."""
    return bool(number & 2)


def is_no_cache_key(number: int) -> bool:
    """Bits 2-4 all set marks a NoCacheKey option (RFC 7252 section 5.4.6).

    Only meaningful for safe-to-forward options; the bit pattern is what the
    RFC defines, so this function reports the pattern and nothing more.
    """
    return (number & 0x1E) == 0x1C


class ContentFormat(IntEnum):
    """CoAP Content-Formats (RFC 7252 section 12.3, RFC 7049 for CBOR)."""

    TEXT_PLAIN = 0
    LINK_FORMAT = 40
    XML = 41
    OCTET_STREAM = 42
    EXI = 47
    JSON = 50
    CBOR = 60


def encode_uint(value: int) -> bytes:
    """Minimal big-endian form of a uint option value (RFC 7252 section 3.2).

    Zero is the empty string: the RFC asks senders to drop leading zero bytes.
    """
    if value < 0:
        raise ValueError(f"uint option value must be non-negative, got {value}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def decode_uint(b: bytes) -> int:
    """Read a uint option value (RFC 7252 section 3.2).

    Leading zero bytes are accepted: minimal length is a rule for senders,
    and receivers are required to cope with padded values.
    """
    return int.from_bytes(b, "big")
