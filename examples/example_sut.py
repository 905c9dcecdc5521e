#!/usr/bin/env python3
"""An example MSGin5G system under test that lives outside the harness.

It implements the three roles of TS 24.538 clause 6.2.2 over plain UDP sockets with its own small
CoAP codec, and it is driven through the upper-tester protocol (version 1): JSON lines on stdin
(operations from the harness) and stdout (the ``ready`` event and one response per operation).
Everything it wants a human to read goes to stderr. It uses the Python standard library only and
imports nothing from the harness, so it stands for "any implementation in any language"; see
docs/vendor-guide.md and docs/upper-tester-protocol.md.

Roles (chosen by the ``reset`` operation):

* ``relay`` (6.2.2.1): a GET from port 65401 whose recipient option names the SCM-S goes uplink
  unchanged; a 2.05/4.03/4.04 from port 65401 whose recipient option names a client with a
  one-to-one link goes downlink unchanged (NON stays NON, otherwise CON); anything else is
  discarded. A request with an unrecognised critical option gets 4.02 (RFC 7252 5.4.1).
* ``gateway`` (6.2.2.x, bulk): configuration GETs are cached and sent as one bulk GET (at
  ``min_batch`` requests, after ``max_wait_ms``, or on ``send_bulk_now``); the answer, fetched
  block-wise when needed (RFC 7959 Block2), is split into one response per constrained UE. On
  ``request_configuration`` it asks the SCM-S for its own configuration (6.2.2.x: "should support
  the configuration management client functionality"), which ``read_configuration`` reads back.
* ``constrained-ue`` (6.2.2.2): sends its configuration GET to the relay on request, and handles
  a 2.05/4.03/4.04 whose recipient option is its own UE id and whose token is its request's.

``--fault NAME`` builds a deliberately broken variant (see FAULTS) so that a vendor can watch the
suite catch a defect. ``--choice NAME`` builds another correct one (see CHOICES): a behaviour the
clauses leave to the implementation, which the suite must accept.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, cast

VERSION = "1.0"
PROTOCOL = 1
ROLES = ["relay", "gateway", "constrained-ue"]
CAPABILITIES = ["link-control", "trigger-request", "trigger-bulk", "read-config"]

# Each fault breaks one behaviour; the comment says which test cases catch it.
FAULTS = {
    "drops-404": "the relay does not relay 4.04 Not Found (RELAY-DL-003, RELAY-DL-008 fail)",
    "keeps-released-link": "the relay ignores release_link (RELAY-DL-005 fails)",
    "ignores-port": "the relay relays responses from any source port (RELAY-DL-007 fails)",
    "ignores-critical-option": "the relay relays a GET with an unknown critical option (RELAY-UL-002 fails)",
    "applies-others": "the constrained UE applies a 2.05 addressed to another client (CUE-RSP-004 fails)",
}

# Each choice is a legal alternative to the default behaviour; the comment cites what allows it.
CHOICES = {
    "fresh-token": "the relay re-originates a response no client asked for as a NON with a fresh token "
    "(the seed says 'relays the response', RFC 7252 5.3.2 ties a token to a request only)",
    "vendor-type": "the constrained UE adds ue-vendor and ue-type to its GET "
    "(optional VAL UE information, TS 23.434 table 11.3.2.1-1; 6.2.2.x: 'if included')",
    "vendor-per-ue": "the gateway repeats ue-vendor/ue-type once per UE in the bulk GET "
    "(6.2.2.x: 'set to the MSGin5G UE information', how often each appears is not said)",
    "rst-others": "the constrained UE rejects a CON response it does not handle with a Reset "
    "(RFC 7252 4.2: ACK or RST)",
}

Address = tuple[str, int]
Option = tuple[int, bytes]

# -------------------------------------------------------------------------------------------
# CoAP over UDP (RFC 7252 section 3): just what this example needs
# -------------------------------------------------------------------------------------------

CON, NON, ACK, RST = 0, 1, 2, 3
TYPE_NAMES = {CON: "CON", NON: "NON", ACK: "ACK", RST: "RST"}

GET = 0x01
CONTENT = 0x45  # 2.05
BAD_REQUEST = 0x80  # 4.00
BAD_OPTION = 0x82  # 4.02
FORBIDDEN = 0x83  # 4.03
NOT_FOUND = 0x84  # 4.04
BAD_GATEWAY = 0xA2  # 5.02
GATEWAY_TIMEOUT = 0xA4  # 5.04

URI_PATH = 11
CONTENT_FORMAT = 12
URI_QUERY = 15
BLOCK2 = 23

# Option numbers this implementation recognises, besides the recipient option: the IANA CoAP
# option registry as of RFC 9668. A critical (odd) option outside this set is "unrecognised".
REGISTERED_OPTIONS = frozenset(
    {1, 3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 19, 20, 21, 23, 27, 28, 31, 35, 39, 60, 252, 258, 292}
)


def code_text(code: int) -> str:
    return f"{code >> 5}.{code & 0x1F:02d}"


def is_request(code: int) -> bool:
    return code >> 5 == 0 and code != 0


def is_response(code: int) -> bool:
    return code >> 5 in (2, 4, 5)


@dataclass
class Message:
    """One CoAP message: options as (number, value) pairs in wire order."""

    mtype: int
    code: int
    mid: int = 0
    token: bytes = b""
    options: list[Option] = field(default_factory=list)
    payload: bytes = b""

    def values(self, number: int) -> list[bytes]:
        return [v for n, v in self.options if n == number]

    def texts(self, number: int) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.values(number)]

    def describe(self) -> str:
        return f"{TYPE_NAMES[self.mtype]} {code_text(self.code)} mid={self.mid} token={self.token.hex()}"


def _read_extended(data: bytes, pos: int, nibble: int) -> tuple[int, int]:
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos + 1 > len(data):
            raise ValueError("option extension byte missing")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 2 > len(data):
            raise ValueError("option extension bytes missing")
        return int.from_bytes(data[pos : pos + 2], "big") + 269, pos + 2
    raise ValueError("option nibble 15 is reserved")


def decode(data: bytes) -> Message:
    """Parse one datagram; raise ValueError for anything RFC 7252 does not allow."""
    if len(data) < 4:
        raise ValueError("shorter than the 4-byte header")
    if data[0] >> 6 != 1:
        raise ValueError(f"version {data[0] >> 6}")
    mtype, tkl = (data[0] >> 4) & 3, data[0] & 0x0F
    if tkl > 8:
        raise ValueError(f"token length {tkl}")
    code, mid = data[1], int.from_bytes(data[2:4], "big")
    pos = 4 + tkl
    if pos > len(data):
        raise ValueError("token cut short")
    token = bytes(data[4:pos])
    options: list[Option] = []
    number = 0
    payload = b""
    while pos < len(data):
        head = data[pos]
        pos += 1
        if head == 0xFF:
            if pos == len(data):
                raise ValueError("payload marker without payload")
            payload = bytes(data[pos:])
            break
        delta, pos = _read_extended(data, pos, head >> 4)
        length, pos = _read_extended(data, pos, head & 0x0F)
        if pos + length > len(data):
            raise ValueError("option value cut short")
        number += delta
        options.append((number, bytes(data[pos : pos + length])))
        pos += length
    if code == 0 and (token or options or payload):
        raise ValueError("an empty message carries nothing after its header")
    return Message(mtype, code, mid, token, options, payload)


def _nibble(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, (value - 269).to_bytes(2, "big")


def encode(msg: Message) -> bytes:
    out = bytearray([0x40 | (msg.mtype << 4) | len(msg.token), msg.code])
    out += msg.mid.to_bytes(2, "big") + msg.token
    previous = 0
    # A stable sort: repeated options (Uri-Path, Uri-Query) keep their order, which carries meaning.
    for number, value in sorted(msg.options, key=lambda o: o[0]):
        delta, delta_ext = _nibble(number - previous)
        length, length_ext = _nibble(len(value))
        out.append(delta << 4 | length)
        out += delta_ext + length_ext + value
        previous = number
    if msg.payload:
        out.append(0xFF)
        out += msg.payload
    return bytes(out)


def uint(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def read_uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


# -------------------------------------------------------------------------------------------
# A small JSON Schema checker: the keywords the harness's configuration schemas use
# -------------------------------------------------------------------------------------------

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_problem(value: Any, schema: Any, where: str = "(document)") -> str | None:
    """The first way ``value`` breaks ``schema``, or None. Unknown keywords are ignored."""
    if schema is True or not isinstance(schema, dict):
        return None
    if schema is False:
        return f"{where}: nothing is allowed here"
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES.get(k, lambda v: True)(value) for k in kinds):
            return f"{where}: expected {' or '.join(kinds)}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: expected {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: expected one of {schema['enum']}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{where}: too short"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{where}: does not match {schema['pattern']}"
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where}: below {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where}: above {schema['maximum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                return f"{where}: missing {key!r}"
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                sub = props[key]
            elif "additionalProperties" in schema:
                sub = schema["additionalProperties"]
                if sub is False:
                    return f"{where}: unexpected key {key!r}"
            else:
                continue
            problem = schema_problem(item, sub, f"{where}/{key}")
            if problem:
                return problem
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{where}: too few items"
        for i, item in enumerate(value):
            problem = schema_problem(item, schema.get("items", True), f"{where}/{i}")
            if problem:
                return problem
    if "if" in schema:
        branch = "then" if schema_problem(value, schema["if"], where) is None else "else"
        problem = schema_problem(value, schema.get(branch, True), where)
        if problem:
            return problem
    if "not" in schema and schema_problem(value, schema["not"], where) is None:
        return f"{where}: matches what is not allowed"
    for sub in schema.get("allOf", []):
        problem = schema_problem(value, sub, where)
        if problem:
            return problem
    return None


# -------------------------------------------------------------------------------------------
# Logging (stderr) and the upper-tester channel (stdout)
# -------------------------------------------------------------------------------------------

_T0 = time.monotonic()


def log(text: str) -> None:
    print(f"{time.monotonic() - _T0:9.3f} {text}", file=sys.stderr, flush=True)


def emit(message: dict[str, Any]) -> None:
    """One protocol message, one line: nothing else is ever written to stdout."""
    sys.stdout.write(json.dumps({"v": PROTOCOL, **message}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class OpError(Exception):
    """An operation that fails with a protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# -------------------------------------------------------------------------------------------
# The message layer: one UDP endpoint (RFC 7252 section 4)
# -------------------------------------------------------------------------------------------

Handler = Callable[["Endpoint", Message, Address], None]


@dataclass(frozen=True)
class Settings:
    """What ``configure`` said, in the form the roles use."""

    endpoints: dict[str, Address]
    peers: dict[str, Address]
    port: int
    port_match: str
    recipient_option: int
    scm_s: str
    sut_ue: str
    content_format: int
    single_path: list[str]
    bulk_path: list[str]
    query_ue_ids: str
    query_vendor: str
    query_type: str
    list_encoding: str
    relayed_codes: frozenset[int]
    min_batch: int
    max_wait_s: float
    ack_timeout_s: float
    max_retransmit: int
    config_schema: Any
    bulk_response_schema: Any
    bulk_response_shape: str
    faults: frozenset[str]
    choices: frozenset[str]


class Endpoint(asyncio.DatagramProtocol):
    """A UDP socket with CoAP's message layer: ACKs, de-duplication and CON retransmission."""

    SEEN_LIMIT = 1024  # remembered (peer, Message ID) pairs for de-duplication

    def __init__(self, name: str, settings: Settings, handler: Handler) -> None:
        self.name = name
        self.settings = settings
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.local: Address = ("", 0)
        self.gone: asyncio.Future[None] | None = None
        self.next_mid = random.randrange(0x10000)
        self.seen: collections.OrderedDict[tuple[Address, int], bytes | None] = collections.OrderedDict()
        self.unacked: dict[tuple[Address, int], asyncio.TimerHandle] = {}
        self.current: tuple[Address, Message] | None = None
        self.piggyback: Message | None = None
        self.reset_current = False  # set by a handler: answer the CON being handled with a Reset
        # RFC 7252 5.3.2, 5.4.1: why a response is rejected here (None: it is not), set by the role
        self.rejects: Callable[[Message], str | None] = lambda msg: None

    async def open(self, address: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, local_addr=address)
        except OSError as exc:
            raise OpError("failed", f"{self.name}: cannot bind {address[0]}:{address[1]}: {exc}") from None
        self.local = address

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # asyncio's class is not a subclass
        self.gone = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    async def close(self) -> None:
        """Close the socket and wait until it is really closed (asyncio closes on a later turn)."""
        for timer in self.unacked.values():
            timer.cancel()
        self.unacked.clear()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            if self.gone is not None:
                await asyncio.wait_for(self.gone, 1.0)

    def _sendto(self, data: bytes, to: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, to)

    # -- incoming ----------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Any) -> None:
        src: Address = (str(addr[0]), int(addr[1]))
        try:
            msg = decode(data)
            if msg.code >> 5 in (1, 6, 7):
                raise ValueError(f"reserved code class {msg.code >> 5}")
        except ValueError as exc:
            # RFC 7252 3: another version is silently ignored; 4.2: a CON with a format error or a
            # reserved class is rejected with a Reset; 4.3: anything else malformed is ignored
            if len(data) >= 4 and data[0] >> 6 == 1 and (data[0] >> 4) & 3 == CON:
                self._sendto(encode(Message(RST, 0, int.from_bytes(data[2:4], "big"))), src)
            log(f"{self.name}: rejected a malformed datagram from {src}: {exc}")
            return
        if (msg.mtype == ACK and is_request(msg.code)) or (msg.mtype == RST and msg.code != 0):
            log(f"{self.name}: ignored {msg.describe()} from {src} (RFC 7252 4.2)")
            return
        why = self.rejects(msg) if msg.mtype in (CON, NON) and is_response(msg.code) else None
        if why is not None:  # RFC 7252 5.3.2, 5.4.1: a response rejected (a Reset for a CON)
            if msg.mtype == CON:
                self._sendto(encode(Message(RST, 0, msg.mid)), src)
            log(f"{self.name}: rejected {msg.describe()} from {src}: {why}")
            return
        if msg.mtype in (ACK, RST):
            timer = self.unacked.pop((src, msg.mid), None)
            if timer is not None:
                timer.cancel()
            if msg.mtype == ACK and msg.code != 0:
                self.handler(self, msg, src)  # a piggybacked response
            return
        if msg.code == 0:  # a CoAP ping (or an empty NON): answered with a Reset
            if msg.mtype == CON:
                self._sendto(encode(Message(RST, 0, msg.mid)), src)
            return
        key = (src, msg.mid)
        if key in self.seen:  # a retransmission: the same acknowledgement again, no new delivery
            ack = self.seen[key]
            if ack is not None:
                self._sendto(ack, src)
            return
        self.seen[key] = None
        while len(self.seen) > self.SEEN_LIMIT:
            self.seen.popitem(last=False)
        self.current, self.piggyback, self.reset_current = (src, msg), None, False
        try:
            self.handler(self, msg, src)
        except Exception as exc:  # one bad message must not take the endpoint down
            log(f"{self.name}: handling {msg.describe()} failed: {exc!r}")
        finally:
            self.current = None
        if msg.mtype == CON:
            answer = self.piggyback or Message(ACK, 0)
            mtype = RST if self.reset_current and self.piggyback is None else ACK
            ack = encode(replace(answer, mtype=mtype, mid=msg.mid))
            self.seen[key] = ack
            self._sendto(ack, src)
        self.piggyback = None

    # -- outgoing ----------------------------------------------------------------------------

    def send(self, msg: Message, to: Address) -> None:
        """Send with a fresh Message ID; a CON is retransmitted until acknowledged."""
        msg = replace(msg, mid=self.next_mid)
        self.next_mid = (self.next_mid + 1) & 0xFFFF
        data = encode(msg)
        self._sendto(data, to)
        if msg.mtype == CON:
            self._arm(to, msg.mid, data, 0)

    def _arm(self, to: Address, mid: int, data: bytes, attempt: int) -> None:
        delay = self.settings.ack_timeout_s * (2**attempt)
        loop = asyncio.get_running_loop()
        self.unacked[(to, mid)] = loop.call_later(delay, self._retransmit, to, mid, data, attempt + 1)

    def _retransmit(self, to: Address, mid: int, data: bytes, attempt: int) -> None:
        if attempt > self.settings.max_retransmit:
            self.unacked.pop((to, mid), None)
            log(f"{self.name}: CON mid={mid} to {to} was never acknowledged")
            return
        self._sendto(data, to)
        self._arm(to, mid, data, attempt)

    def reply(self, request: Message, response: Message, to: Address) -> None:
        """Answer the request being handled: piggybacked on its ACK when it is a CON."""
        if self.current is not None and self.current[1] is request and self.current[0] == to and request.mtype == CON:
            self.piggyback = response
        else:
            self.send(response, to)


# -------------------------------------------------------------------------------------------
# Shared decisions
# -------------------------------------------------------------------------------------------


class Role:
    """What every role shares: its endpoints, the recipient option and the port rule."""

    name = "role"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.endpoints: list[Endpoint] = []

    async def open(self, node: str, handler: Handler) -> Endpoint:
        endpoint = Endpoint(f"{self.name}/{node}", self.s, handler)
        endpoint.rejects = lambda msg: self.rejects_response(node, msg)
        await endpoint.open(self.s.endpoints[node])
        self.endpoints.append(endpoint)
        return endpoint

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.close()
        self.endpoints.clear()

    def note(self, text: str) -> None:
        log(f"{self.name}: {text}")

    def has_fault(self, name: str) -> bool:
        return name in self.s.faults

    def has_choice(self, name: str) -> bool:
        return name in self.s.choices

    def recipient(self, msg: Message) -> str | None:
        values = msg.values(self.s.recipient_option)
        if len(values) != 1:
            return None
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            return None

    def port_ok(self, src: Address) -> bool:
        """'from UDP port 65401', read as the source port unless the profile says destination."""
        if self.has_fault("ignores-port"):
            return True
        return self.s.port_match == "destination" or src[1] == self.s.port

    def rejects_response(self, node: str, msg: Message) -> str | None:
        """Why a CON/NON response is rejected at endpoint ``node``: the PC5 side sends no request
        to its clients, so a response there is unexpected (RFC 7252 5.3.2); elsewhere, one with
        an unrecognised critical option (5.4.1)."""
        if node == "sut.pc5":
            return "no response is expected on the PC5 side"
        bad = self.unknown_critical(msg)
        return f"unrecognised critical option {bad[0]}" if bad else None

    def unknown_critical(self, msg: Message) -> list[int]:
        if self.has_fault("ignores-critical-option"):
            return []
        known = REGISTERED_OPTIONS | {self.s.recipient_option}
        return sorted({n for n, _ in msg.options if n & 1 and n not in known})

    def reject(self, endpoint: Endpoint, msg: Message, src: Address, code: int, why: str) -> None:
        self.note(f"{code_text(code)} to {src}: {why}")
        mtype = NON if msg.mtype == NON else CON
        endpoint.reply(msg, Message(mtype, code, 0, msg.token, [], why.encode("utf-8")), src)

    # Operations a role does not offer (the defaults) are "not-supported".
    def establish_link(self, client: dict[str, Any]) -> None:
        raise OpError("not-supported", f"establish_link is not an operation of the {self.name} role")

    def release_link(self, client: dict[str, Any]) -> None:
        raise OpError("not-supported", f"release_link is not an operation of the {self.name} role")

    def request_configuration(self) -> None:
        raise OpError("not-supported", f"request_configuration is not an operation of the {self.name} role")

    def send_bulk_now(self) -> None:
        raise OpError("not-supported", f"send_bulk_now is not an operation of the {self.name} role")

    def read_configuration(self) -> dict[str, Any]:
        raise OpError("not-supported", f"read_configuration is not an operation of the {self.name} role")


def client_endpoint(client: dict[str, Any]) -> tuple[str, Address]:
    ep = client["endpoint"]
    return str(client["address"]), (str(ep["host"]), int(ep["port"]))


# -------------------------------------------------------------------------------------------
# Relay UE (TS 24.538 6.2.2.1)
# -------------------------------------------------------------------------------------------


class Relay(Role):
    name = "relay"
    pc5: Endpoint
    uu: Endpoint

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.links: dict[str, Address] = {}
        self.asked: collections.OrderedDict[bytes, Address] = collections.OrderedDict()  # relayed GET tokens

    async def start(self) -> None:
        self.pc5 = await self.open("sut.pc5", self.on_pc5)
        self.uu = await self.open("sut.uu", self.on_uu)

    def establish_link(self, client: dict[str, Any]) -> None:
        address, endpoint = client_endpoint(client)
        self.links[address] = endpoint
        self.note(f"one-to-one link established with {address} at {endpoint}")

    def release_link(self, client: dict[str, Any]) -> None:
        address, _ = client_endpoint(client)
        if self.has_fault("keeps-released-link"):
            self.note(f"(fault) keeping the link with {address}")
            return
        self.links.pop(address, None)
        self.note(f"one-to-one link released with {address}")

    def on_pc5(self, endpoint: Endpoint, msg: Message, src: Address) -> None:
        if not is_request(msg.code):
            self.note(f"ignored {msg.describe()} from {src} on the PC5 side")
            return
        bad = self.unknown_critical(msg)
        if bad:
            self.reject(endpoint, msg, src, BAD_OPTION, f"unrecognised critical option {bad[0]}")
            return
        if msg.code != GET:
            self.note(f"not relayed: {code_text(msg.code)} is not a GET")
        elif not self.port_ok(src):
            self.note(f"not relayed: GET from port {src[1]}, not {self.s.port}")
        elif self.recipient(msg) != self.s.scm_s:
            self.note(f"not relayed: GET recipient {self.recipient(msg)!r} is not the SCM-S")
        else:
            self.uu.send(msg, self.s.peers["scms"])  # type, token, options and payload unchanged
            self.asked[msg.token] = src
            while len(self.asked) > 1024:
                self.asked.popitem(last=False)
            self.note(f"relayed GET token={msg.token.hex()} uplink to the SCM-S")

    def on_uu(self, endpoint: Endpoint, msg: Message, src: Address) -> None:
        if is_request(msg.code):
            bad = self.unknown_critical(msg)
            if bad:
                self.reject(endpoint, msg, src, BAD_OPTION, f"unrecognised critical option {bad[0]}")
            else:
                self.note(f"ignored request {code_text(msg.code)} from {src} on the network side")
            return
        if not is_response(msg.code):
            return
        what = code_text(msg.code)
        recipient = self.recipient(msg)
        if self.unknown_critical(msg):
            self.note(f"discarded {what}: unrecognised critical option (RFC 7252 5.4.1)")
        elif msg.code not in self.s.relayed_codes or (self.has_fault("drops-404") and msg.code == NOT_FOUND):
            self.note(f"discarded {what}: not a relayed code")
        elif not self.port_ok(src):
            self.note(f"discarded {what}: from port {src[1]}, not {self.s.port}")
        elif recipient is None:
            self.note(f"discarded {what}: no recipient option")
        elif recipient not in self.links:
            self.note(f"discarded {what}: no one-to-one link with {recipient!r}")
        else:
            mtype = NON if msg.mtype == NON else CON  # a piggybacked ACK goes on as a CON
            out = replace(msg, mtype=mtype)
            solicited = self.asked.get(msg.token) == self.links[recipient]
            if self.has_choice("fresh-token") and not solicited:
                out = replace(out, mtype=NON, token=os.urandom(4))  # nobody asked: a new message of ours
            self.pc5.send(out, self.links[recipient])
            self.note(f"relayed {what} token={msg.token.hex()} downlink to {recipient}")


# -------------------------------------------------------------------------------------------
# Gateway UE (TS 24.538 6.2.2.x, bulk configuration)
# -------------------------------------------------------------------------------------------


@dataclass
class Cached:
    ue_id: str
    token: bytes
    endpoint: Address
    mtype: int
    vendor: str | None
    ue_type: str | None


@dataclass
class Bulk:
    entries: list[Cached]
    query: list[str]
    body: bytearray = field(default_factory=bytearray)
    blocks: int = 0
    timer: asyncio.TimerHandle | None = None
    done: bool = False


class Gateway(Role):
    name = "gateway"
    pc5: Endpoint
    uu: Endpoint
    MAX_BLOCKS = 64  # a server that keeps saying "more" must not hold the UEs forever
    TRANSFER_TIMEOUT_S = 5.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.cache: dict[str, Cached] = {}
        self.outstanding: dict[bytes, Bulk] = {}
        self.bulks: list[Bulk] = []
        self.max_wait: asyncio.TimerHandle | None = None
        # its own configuration client (6.2.2.x: "should support"), collocated
        self.own_token: bytes | None = None
        self.own_state: dict[str, Any] = {"status": "none", "configuration": None}

    async def start(self) -> None:
        self.pc5 = await self.open("sut.pc5", self.on_pc5)
        self.uu = await self.open("sut.uu", self.on_uu)

    async def stop(self) -> None:
        if self.max_wait is not None:
            self.max_wait.cancel()
        for bulk in self.bulks:
            if bulk.timer is not None:
                bulk.timer.cancel()
        await super().stop()

    def establish_link(self, client: dict[str, Any]) -> None:
        self.note(f"one-to-one link established with {client['address']} (the gateway serves any UE)")

    def release_link(self, client: dict[str, Any]) -> None:
        self.note(f"one-to-one link released with {client['address']}")

    # -- its own configuration: the GET of any MSGin5G UE (6.2.1.2), from the network side ----

    def request_configuration(self) -> None:
        s = self.s
        self.own_token = os.urandom(4)
        options: list[Option] = [(s.recipient_option, s.scm_s.encode("utf-8"))]
        options += [(URI_PATH, segment.encode("utf-8")) for segment in s.single_path]
        options.append((URI_QUERY, f"{s.query_ue_ids}={s.sut_ue}".encode()))
        self.uu.send(Message(CON, GET, 0, self.own_token, options), s.peers["scms"])
        self.note(f"sent its own configuration GET token={self.own_token.hex()} to the SCM-S")

    def read_configuration(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.own_state))
        return copy

    def handle_own_answer(self, msg: Message) -> None:
        self.own_token = None
        in_force = self.own_state["configuration"]
        if msg.code in (FORBIDDEN, NOT_FOUND):
            self.own_state = {"status": code_text(msg.code), "configuration": in_force}
        elif msg.code == CONTENT:
            try:
                doc = json.loads(msg.payload)
            except ValueError:
                doc = None
            if doc is None or schema_problem(doc, self.s.config_schema):
                self.own_state = {"status": "invalid", "configuration": in_force}
            else:
                self.own_state = {"status": "2.05", "configuration": doc}
        self.note(f"handled {code_text(msg.code)} to its own configuration GET: {self.own_state['status']}")

    def query(self, msg: Message, name: str) -> list[str]:
        prefix = name + "="
        return [q[len(prefix) :] for q in msg.texts(URI_QUERY) if q.startswith(prefix)]

    # -- PC5 side: cache the requests --------------------------------------------------------

    def on_pc5(self, endpoint: Endpoint, msg: Message, src: Address) -> None:
        if not is_request(msg.code):
            self.note(f"ignored {msg.describe()} from {src} on the PC5 side")
            return
        bad = self.unknown_critical(msg)
        if bad:
            self.reject(endpoint, msg, src, BAD_OPTION, f"unrecognised critical option {bad[0]}")
            return
        if msg.code != GET:
            self.note(f"not cached: {code_text(msg.code)} is not a GET")
            return
        if not self.port_ok(src):
            self.note(f"not cached: GET from port {src[1]}, not {self.s.port}")
            return
        if self.recipient(msg) != self.s.scm_s:
            self.note(f"not cached: GET recipient {self.recipient(msg)!r} is not the SCM-S")
            return
        ids = self.query(msg, self.s.query_ue_ids)
        if len(ids) != 1 or not ids[0]:
            self.reject(endpoint, msg, src, BAD_REQUEST, f"expected one {self.s.query_ue_ids} query, got {ids}")
            return
        vendors, types = self.query(msg, self.s.query_vendor), self.query(msg, self.s.query_type)
        entry = Cached(
            ids[0],
            msg.token,
            src,
            NON if msg.mtype == NON else CON,
            vendors[0] if vendors else None,
            types[0] if types else None,
        )
        was_empty = not self.cache
        self.cache.pop(entry.ue_id, None)  # a repeat replaces the older request
        self.cache[entry.ue_id] = entry
        self.note(f"cached GET token={msg.token.hex()} from {entry.ue_id} ({len(self.cache)} cached)")
        if len(self.cache) >= self.s.min_batch:
            self.note(f"service policy: {len(self.cache)} >= min_batch {self.s.min_batch}")
            self.send_bulk_now()
        elif was_empty:
            self.max_wait = asyncio.get_running_loop().call_later(self.s.max_wait_s, self._max_wait_over)

    def _max_wait_over(self) -> None:
        self.max_wait = None
        if self.cache:
            self.note("service policy: the maximum wait is over")
            self.send_bulk_now()

    # -- network side: one bulk GET, block-wise answer ---------------------------------------

    def send_bulk_now(self) -> None:
        if self.max_wait is not None:
            self.max_wait.cancel()
            self.max_wait = None
        if not self.cache:
            self.note("no cached request: no bulk GET")
            return
        entries = list(self.cache.values())
        self.cache.clear()
        s = self.s
        ids = [e.ue_id for e in entries]
        if s.list_encoding == "csv":
            query = [f"{s.query_ue_ids}={','.join(ids)}"]
        else:
            query = [f"{s.query_ue_ids}={i}" for i in ids]
        if self.has_choice("vendor-per-ue"):
            query += [f"{s.query_vendor}={e.vendor}" for e in entries if e.vendor is not None]
            query += [f"{s.query_type}={e.ue_type}" for e in entries if e.ue_type is not None]
        else:
            query += [f"{s.query_vendor}={v}" for v in sorted({e.vendor for e in entries if e.vendor is not None})]
            query += [f"{s.query_type}={t}" for t in sorted({e.ue_type for e in entries if e.ue_type is not None})]
        bulk = Bulk(entries, query)
        bulk.timer = asyncio.get_running_loop().call_later(self.TRANSFER_TIMEOUT_S, self._transfer_timeout, bulk)
        self.bulks.append(bulk)
        self.request_block(bulk, None)

    def request_block(self, bulk: Bulk, block2: int | None) -> None:
        token = os.urandom(4)
        options: list[Option] = [(self.s.recipient_option, self.s.scm_s.encode("utf-8"))]
        options += [(URI_PATH, segment.encode("utf-8")) for segment in self.s.bulk_path]
        options += [(URI_QUERY, q.encode("utf-8")) for q in bulk.query]
        if block2 is not None:
            options.append((BLOCK2, uint(block2)))
        self.outstanding[token] = bulk
        self.uu.send(Message(CON, GET, 0, token, options), self.s.peers["scms"])
        which = "" if block2 is None else f" for block {block2 >> 4}"
        self.note(f"sent bulk GET{which} token={token.hex()} for {len(bulk.entries)} UE(s)")

    def on_uu(self, endpoint: Endpoint, msg: Message, src: Address) -> None:
        if is_request(msg.code):
            bad = self.unknown_critical(msg)
            if bad:
                self.reject(endpoint, msg, src, BAD_OPTION, f"unrecognised critical option {bad[0]}")
            return
        if not is_response(msg.code):
            return
        if self.own_token is not None and msg.token == self.own_token and src == self.s.peers["scms"]:
            self.handle_own_answer(msg)
            return
        bulk = self.outstanding.pop(msg.token, None)
        if bulk is None or src != self.s.peers["scms"]:
            self.note(f"ignored {code_text(msg.code)} token={msg.token.hex()} from {src}: no matching bulk GET")
            return
        if not bulk.done:
            self.handle_answer(bulk, msg)

    def handle_answer(self, bulk: Bulk, msg: Message) -> None:
        bad = self.unknown_critical(msg)
        if bad:
            self.fail(bulk, BAD_GATEWAY, f"bulk answer carries unrecognised critical option {bad[0]}")
            return
        if msg.code != CONTENT:
            code = msg.code if msg.code >> 5 in (4, 5) else BAD_GATEWAY
            self.fail(bulk, code, f"the SCM-S answered the bulk GET with {code_text(msg.code)}")
            return
        block2 = msg.values(BLOCK2)
        if not block2:
            bulk.body = bytearray(msg.payload)
            self.complete(bulk)
            return
        value = read_uint(block2[0])
        num, more, szx = value >> 4, bool(value & 0x08), value & 0x07
        if szx == 7:
            self.fail(bulk, BAD_GATEWAY, "Block2 with the reserved SZX 7")
            return
        size = 1 << (szx + 4)
        if num * size != len(bulk.body):
            self.fail(bulk, BAD_GATEWAY, f"Block2 {num} at offset {num * size}, expected {len(bulk.body)}")
            return
        bulk.body += msg.payload
        bulk.blocks += 1
        self.note(f"bulk answer block {num} ({len(msg.payload)} bytes, more={int(more)})")
        if not more:
            self.complete(bulk)
        elif bulk.blocks >= self.MAX_BLOCKS:
            self.fail(bulk, GATEWAY_TIMEOUT, f"bulk answer not complete after {self.MAX_BLOCKS} blocks")
        else:
            self.request_block(bulk, ((num + 1) << 4) | szx)

    def complete(self, bulk: Bulk) -> None:
        try:
            doc = json.loads(bytes(bulk.body))
        except ValueError as exc:
            self.fail(bulk, BAD_GATEWAY, f"bulk answer is not JSON: {exc}")
            return
        problem = schema_problem(doc, self.s.bulk_response_schema)
        if problem:
            self.fail(bulk, BAD_GATEWAY, f"bulk answer breaks its schema: {problem}")
            return
        self.finish(bulk)
        waiting = {e.ue_id: e for e in bulk.entries}
        codes = {"2.05": CONTENT, "4.03": FORBIDDEN, "4.04": NOT_FOUND}
        if self.s.bulk_response_shape == "by-id":  # {"<UE id>": {"result", "configuration"?}, ...}
            items = [(ue_id, item) for ue_id, item in doc.items()]
        else:  # {"ue-configurations": [{"ue-uri", "result", "configuration"?}, ...]}
            items = [(item["ue-uri"], item) for item in doc["ue-configurations"]]
        for ue_id, item in items:
            entry = waiting.pop(ue_id, None)
            if entry is None:
                self.note(f"bulk answer entry for {ue_id!r} ignored: nobody waits for it")
                continue
            self.deliver(entry, codes[item["result"]], item.get("configuration"))
        for entry in waiting.values():
            self.note(f"{entry.ue_id} missing from the bulk answer: 4.04")
            self.deliver(entry, NOT_FOUND, None)

    def deliver(self, entry: Cached, code: int, configuration: Any) -> None:
        """A separate response to one UE, on the token of its own request (RFC 7252 5.2.2)."""
        options: list[Option] = [(self.s.recipient_option, entry.ue_id.encode("utf-8"))]
        payload = b""
        if code == CONTENT and configuration is not None:
            options.append((CONTENT_FORMAT, uint(self.s.content_format)))
            payload = json.dumps(configuration, separators=(",", ":")).encode("utf-8")
        self.pc5.send(Message(entry.mtype, code, 0, entry.token, options, payload), entry.endpoint)
        self.note(f"sent {code_text(code)} token={entry.token.hex()} to {entry.ue_id}")

    def fail(self, bulk: Bulk, code: int, why: str) -> None:
        self.note(f"{why}: {code_text(code)} to every waiting UE")
        self.finish(bulk)
        for entry in bulk.entries:
            self.deliver(entry, code, None)

    def finish(self, bulk: Bulk) -> None:
        bulk.done = True
        if bulk.timer is not None:
            bulk.timer.cancel()
            bulk.timer = None
        for token in [t for t, b in self.outstanding.items() if b is bulk]:
            del self.outstanding[token]
        if bulk in self.bulks:
            self.bulks.remove(bulk)

    def _transfer_timeout(self, bulk: Bulk) -> None:
        bulk.timer = None
        if not bulk.done:
            self.fail(bulk, GATEWAY_TIMEOUT, f"bulk answer not complete after {self.TRANSFER_TIMEOUT_S} s")


# -------------------------------------------------------------------------------------------
# Constrained UE with MSGin5G Client (TS 24.538 6.2.2.2, request per 6.2.1.2)
# -------------------------------------------------------------------------------------------


class ConstrainedUE(Role):
    name = "constrained-ue"
    endpoint: Endpoint
    HANDLED: ClassVar[dict[int, str]] = {CONTENT: "2.05", FORBIDDEN: "4.03", NOT_FOUND: "4.04"}

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.token: bytes | None = None
        self.state: dict[str, Any] = {"status": "none", "configuration": None}

    async def start(self) -> None:
        self.endpoint = await self.open("sut.cue", self.on_message)

    def request_configuration(self) -> None:
        s = self.s
        self.token = os.urandom(4)
        options: list[Option] = [(s.recipient_option, s.scm_s.encode("utf-8"))]
        options += [(URI_PATH, segment.encode("utf-8")) for segment in s.single_path]
        options.append((URI_QUERY, f"{s.query_ue_ids}={s.sut_ue}".encode()))
        if self.has_choice("vendor-type"):
            options.append((URI_QUERY, f"{s.query_vendor}=example-vendor".encode()))
            options.append((URI_QUERY, f"{s.query_type}=sensor".encode()))
        self.endpoint.send(Message(CON, GET, 0, self.token, options), s.peers["relay"])
        self.note(f"sent configuration GET token={self.token.hex()} to the relay")

    def read_configuration(self) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(self.state))
        return copy

    def on_message(self, endpoint: Endpoint, msg: Message, src: Address) -> None:
        what = f"{code_text(msg.code)} token={msg.token.hex()} from {src}"
        recipient = self.recipient(msg)
        if not is_response(msg.code):
            self.note(f"ignored {what}: not a response")
        elif recipient != self.s.sut_ue and not self.has_fault("applies-others"):
            self.note(f"ignored {what}: recipient {recipient!r} is not {self.s.sut_ue!r}")
            self.refuse(endpoint, msg)
        elif self.token is None or msg.token != self.token:
            self.note(f"ignored {what}: no outstanding request with this token")
            self.refuse(endpoint, msg)
        elif msg.code not in self.HANDLED:
            self.note(f"ignored {what}: not 2.05, 4.03 or 4.04")
        elif self.unknown_critical(msg):
            self.note(f"ignored {what}: unrecognised critical option")
        elif msg.code == CONTENT:
            self.apply(msg, what)
        else:  # the failure is the last result; the configuration in force stays (none before one)
            self.state = {"status": self.HANDLED[msg.code], "configuration": self.state["configuration"]}
            self.token = None
            self.note(f"recorded {what}: no new configuration")

    def refuse(self, endpoint: Endpoint, msg: Message) -> None:
        if self.has_choice("rst-others") and msg.mtype == CON:
            endpoint.reset_current = True  # RFC 7252 4.2: a CON it will not process may be rejected

    def apply(self, msg: Message, what: str) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError as exc:
            self.note(f"not applied {what}: payload is not JSON ({exc})")
            self.state = {"status": "invalid", "configuration": self.state["configuration"]}
            return
        problem = schema_problem(doc, self.s.config_schema)
        if problem:
            self.note(f"not applied {what}: configuration invalid: {problem}")
            self.state = {"status": "invalid", "configuration": self.state["configuration"]}
            return
        self.state = {"status": "2.05", "configuration": doc}
        self.token = None  # answered: a later response with this token is stale
        self.note(f"applied configuration from {what}")


# -------------------------------------------------------------------------------------------
# The upper tester: operations from the harness
# -------------------------------------------------------------------------------------------


def _address(value: Any, what: str) -> Address:
    if not isinstance(value, dict) or not isinstance(value.get("host"), str) or not isinstance(value.get("port"), int):
        raise OpError("bad-request", f"{what}: expected {{host, port}}, found {value!r}")
    return (value["host"], value["port"])


def parse_configure(msg: dict[str, Any], faults: frozenset[str], choices: frozenset[str]) -> Settings:
    try:
        p = msg["profile"]
        return Settings(
            endpoints={k: _address(v, f"endpoints.{k}") for k, v in msg["endpoints"].items()},
            peers={k: _address(v, f"peers.{k}") for k, v in msg["peers"].items()},
            port=int(p["port"]),
            port_match=str(p["port_match"]),
            recipient_option=int(p["recipient_option"]),
            scm_s=str(p["addresses"]["scm_s"]),
            sut_ue=str(p["addresses"]["sut_ue"]),
            content_format=int(p["content_format"]),
            single_path=[str(x) for x in p["single_path"]],
            bulk_path=[str(x) for x in p["bulk_path"]],
            query_ue_ids=str(p["query"]["ue_ids"]),
            query_vendor=str(p["query"]["vendor"]),
            query_type=str(p["query"]["type"]),
            list_encoding=str(p["query"]["list_encoding"]),
            relayed_codes=frozenset(int(c.split(".")[0]) << 5 | int(c.split(".")[1]) for c in p["relayed_codes"]),
            min_batch=int(p["bulk_policy"]["min_batch"]),
            max_wait_s=int(p["bulk_policy"]["max_wait_ms"]) / 1000,
            ack_timeout_s=int(p["timers"]["ack_timeout_ms"]) / 1000,
            max_retransmit=int(p["timers"]["max_retransmit"]),
            config_schema=p["config_schema"],
            bulk_response_schema=p["bulk_response_schema"],
            bulk_response_shape=str(p.get("bulk_response_shape", "entries")),  # protocol 1.1; optional
            faults=faults,
            choices=choices,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise OpError("bad-request", f"configure: missing or malformed value: {exc!r}") from None


class Sut:
    """The whole implementation: the settings from ``configure`` and the current role."""

    ROLE_CLASSES: ClassVar[dict[str, type[Role]]] = {
        "relay": Relay,
        "gateway": Gateway,
        "constrained-ue": ConstrainedUE,
    }

    def __init__(self, faults: frozenset[str], choices: frozenset[str] = frozenset()) -> None:
        self.faults = faults
        self.choices = choices
        self.settings: Settings | None = None
        self.role: Role | None = None

    def current(self) -> Role:
        if self.role is None:
            raise OpError("bad-request", "no role yet: send reset first")
        return self.role

    async def handle(self, op: str, msg: dict[str, Any]) -> Any:
        if op == "configure":
            self.settings = parse_configure(msg, self.faults, self.choices)
            return {}
        if op == "reset":
            return await self.reset(msg.get("role"))
        if op == "shutdown":
            if self.role is not None:
                await self.role.stop()
            return {}
        if op in ("establish_link", "release_link"):
            client = msg.get("client")
            if not isinstance(client, dict) or "address" not in client:
                raise OpError("bad-request", f"{op}: expected a client {{node, address, endpoint}}")
            client_endpoint(client)
            getattr(self.current(), op)(client)
            return {}
        if op == "request_configuration":
            self.current().request_configuration()
            return {}
        if op == "send_bulk_now":
            self.current().send_bulk_now()
            return {}
        if op == "read_configuration":
            return self.current().read_configuration()
        raise OpError("unknown-op", f"this implementation has no operation {op!r}")

    async def reset(self, role: Any) -> dict[str, Any]:
        if self.settings is None:
            raise OpError("bad-request", "reset before configure")
        if role not in self.ROLE_CLASSES:
            raise OpError("not-supported", f"no such role {role!r}; this implementation plays {ROLES}")
        if self.role is not None:
            await self.role.stop()
            self.role = None
        fresh = self.ROLE_CLASSES[role](self.settings)
        try:
            await fresh.start()
        except OpError:
            await fresh.stop()
            raise
        self.role = fresh
        bound = ", ".join(f"{e.name} {e.local[0]}:{e.local[1]}" for e in fresh.endpoints)
        emit({"event": "log", "message": f"acting as {role}: {bound}"})
        return {}


async def control(sut: Sut) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit(
        {
            "event": "ready",
            "implementation": {"name": "example-sut", "version": VERSION},
            "roles": ROLES,
            "capabilities": CAPABILITIES,
        }
    )
    built = f"faults: {sorted(sut.faults) or 'none'}, choices: {sorted(sut.choices) or 'none'}"
    log(f"example SUT {VERSION} ready ({built})")
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # a line over the limit
            emit({"id": None, "ok": False, "error": {"code": "bad-request", "message": "line too long"}})
            continue
        if not line:
            log("stdin closed: the harness is gone, stopping")
            break
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError as exc:
            emit({"id": None, "ok": False, "error": {"code": "bad-request", "message": f"not JSON: {exc}"}})
            continue
        mid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or not isinstance(mid, int) or not isinstance(msg.get("op"), str):
            emit({"id": None, "ok": False, "error": {"code": "bad-request", "message": "expected {v, id, op}"}})
            continue
        if msg.get("v") != PROTOCOL:
            error = {"code": "bad-request", "message": f"protocol version {msg.get('v')!r}; this speaks {PROTOCOL}"}
            emit({"id": mid, "ok": False, "error": error})
            continue
        op = msg["op"]
        try:
            result = await sut.handle(op, msg)
        except OpError as exc:
            log(f"op {op} refused: {exc.code}: {exc}")
            emit({"id": mid, "ok": False, "error": {"code": exc.code, "message": str(exc)}})
            continue
        except Exception as exc:  # a bug here is a failed operation, not a dead SUT
            log(f"op {op} failed: {exc!r}")
            emit({"id": mid, "ok": False, "error": {"code": "failed", "message": repr(exc)}})
            continue
        emit({"id": mid, "ok": True, "result": result})
        if op == "shutdown":
            log("shutdown requested")
            break
    if sut.role is not None:
        await sut.role.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Example MSGin5G SUT speaking the upper-tester protocol on stdio.")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        help="break one behaviour on purpose (repeatable): " + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
    )
    parser.add_argument(
        "--choice",
        action="append",
        default=[],
        choices=sorted(CHOICES),
        help="another correct behaviour (repeatable): " + "; ".join(f"{k}: {v}" for k, v in CHOICES.items()),
    )
    args = parser.parse_args(argv)
    asyncio.run(control(Sut(frozenset(args.fault), frozenset(args.choice))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
