"""Reference MSGin5G Gateway UE: bulk configuration per TS 24.538 clause 6.2.2 (seed CR), as read
by the protocol profile.

PC5 side: a CoAP GET from UDP port 65401 whose recipient option names the SCM-S and whose
Uri-Query carries ``ue-uri=<UE id>`` is not relayed but cached (UE id -> token, endpoint, type,
vendor, type of UE); a CON request is acknowledged at once.
Network side: based on the service policy (profile ``bulk_policy``) the cached requests go to the
SCM-S as one bulk GET on ``.../ue-configurations/{bulkConfFlag}`` listing every cached UE id (and
the distinct ``ue-vendor`` / ``ue-type`` values they carried). The answer, fetched block-wise when
it is larger than one block (RFC 7959 Block2), is split: each waiting UE gets its own response
(its own result code, its own configuration document) with the token of its own request and the
recipient option naming it.

Its own configuration (6.2.2.x: the Gateway UE "should support the configuration management client
functionality", here collocated): on the upper tester's ``request_configuration`` it sends, from its
network side, the configuration GET of an ordinary MSGin5G UE (TS 24.538 6.2.1.2, TS 24.546 C.3.1:
the single-UE resource, ``ue-uri=<its own UE id>``) and applies a valid 2.05 document as its own
configuration (``read_configuration``); 4.03/4.04 are recorded. None of it touches the PC5 side.

Every decision is a method, so that a faulty variant overrides exactly one of them.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any

from msgin5g_conformance.schemacheck import file_validator
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import (
    Code,
    MessageType,
    OptionNumber,
    code_name,
    code_to_str,
    decode_uint,
    encode_uint,
    is_request,
    is_response,
)
from sut_adapters.reference.coapnode import CoapNode

from .common import EndpointRules, LinkTable, RoleContext

Option = tuple[int, bytes]

# The per-UE result codes the bulk answer may carry (bulk-response.schema.json).
PER_UE_CODES = {"2.05": Code.CONTENT, "4.03": Code.FORBIDDEN, "4.04": Code.NOT_FOUND}


@dataclass(frozen=True)
class CachedRequest:
    """A constrained UE's configuration GET, kept until the bulk answer arrives (6.2.2.x)."""

    ue_id: str
    token: bytes
    endpoint: Address
    mtype: MessageType
    vendor: str | None
    ue_type: str | None


@dataclass
class BulkExchange:
    """One bulk GET and its (possibly block-wise) answer."""

    entries: list[CachedRequest]
    path: list[str]
    query: list[str]
    body: bytearray = field(default_factory=bytearray)
    blocks: int = 0
    timer: asyncio.TimerHandle | None = None
    done: bool = False


class ReferenceGateway(EndpointRules, LinkTable):
    """A Gateway UE (TS 24.538 6.2.2.x) with a PC5-side and a network-side endpoint, both on port 65401."""

    LABEL = "gateway"

    # Bounds of one block-wise transfer: a server that keeps saying "more" must not hold the
    # waiting UEs forever. The bound is on the answer's size, not on a count of blocks: 4 MiB is
    # 4,096 blocks of 1,024 bytes, some twenty times the answer for the most constrained UEs a case
    # can have (cue4000, about 190 bytes each); RFC 7959 2.2 allows NUM up to 2^20 - 1.
    MAX_ANSWER_BYTES = 4 << 20
    TRANSFER_TIMEOUT_S = 5.0

    def __init__(self, env: RoleContext) -> None:
        EndpointRules.__init__(self)
        LinkTable.__init__(self)
        self.env = env
        self.profile = env.profile
        self.pc5_address = env.endpoint("sut.pc5")
        self.uu_address = env.endpoint("sut.uu")
        self.cache: dict[str, CachedRequest] = {}
        self.outstanding: dict[bytes, BulkExchange] = {}
        self.exchanges: list[BulkExchange] = []
        self.pc5: CoapNode | None = None
        self.uu: CoapNode | None = None
        self._max_wait: asyncio.TimerHandle | None = None
        self._bulk_validator = file_validator(str(self.profile.bulk_response_schema_path))
        self._config_validator = file_validator(str(self.profile.config_schema_path))
        # Its own configuration client (6.2.2.x): the outstanding request's token and what it applied.
        self.own_token: bytes | None = None
        self.own_state: dict[str, Any] = {"status": "none", "configuration": None}

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.pc5 = CoapNode("gateway-pc5", self.pc5_address, tuning=self.env.tuning, on_message=self.on_pc5)
        self.uu = CoapNode("gateway-uu", self.uu_address, tuning=self.env.tuning, on_message=self.on_uu)
        await self.pc5.start()
        await self.uu.start()

    async def stop(self) -> None:
        # Timers first: a timer firing after the nodes are gone would try to send on them.
        self._cancel_max_wait()
        for exchange in self.exchanges:
            if exchange.timer is not None:
                exchange.timer.cancel()
        self.exchanges.clear()
        self.outstanding.clear()
        self.cache.clear()
        for node in (self.pc5, self.uu):
            if node is not None:
                await node.stop()
        self.pc5 = self.uu = None

    # -- link table (upper tester) ----------------------------------------------------------

    # -- decisions: requests from constrained UEs --------------------------------------------

    def query_values(self, msg: CoapMessage, name: str) -> list[str]:
        prefix = name + "="
        try:
            queries = msg.uri_query()
        except UnicodeDecodeError:
            return []
        return [q[len(prefix) :] for q in queries if q.startswith(prefix)]

    def cache_entry(self, msg: CoapMessage, src: Address, ue_id: str) -> CachedRequest:
        vendors = self.query_values(msg, self.profile.query_vendor)
        types = self.query_values(msg, self.profile.query_type)
        mtype = MessageType.NON if msg.mtype == MessageType.NON else MessageType.CON
        return CachedRequest(ue_id, msg.token, src, mtype, vendors[0] if vendors else None, types[0] if types else None)

    # -- decisions: the bulk GET (service policy and query) ----------------------------------

    def policy_reached(self) -> bool:
        return len(self.cache) >= self.profile.min_batch

    def schedule_max_wait(self) -> None:
        """Arm the max_wait_ms timer when the first request enters an empty cache."""
        loop = asyncio.get_running_loop()
        self._max_wait = loop.call_later(self.profile.max_wait_ms / 1000.0, self._max_wait_expired)

    def bulk_path(self) -> list[str]:
        return list(self.profile.bulk_path)

    def bulk_ue_ids(self, entries: list[CachedRequest]) -> list[str]:
        return [e.ue_id for e in entries]

    def bulk_vendors(self, entries: list[CachedRequest]) -> list[str]:
        return sorted({e.vendor for e in entries if e.vendor is not None})

    def bulk_types(self, entries: list[CachedRequest]) -> list[str]:
        return sorted({e.ue_type for e in entries if e.ue_type is not None})

    def bulk_query(self, entries: list[CachedRequest]) -> list[str]:
        p = self.profile
        ids = self.bulk_ue_ids(entries)
        if p.list_encoding == "csv":
            query = [f"{p.query_ue_ids}={','.join(ids)}"]
        else:
            query = [f"{p.query_ue_ids}={i}" for i in ids]
        query += [f"{p.query_vendor}={v}" for v in self.bulk_vendors(entries)]
        query += [f"{p.query_type}={t}" for t in self.bulk_types(entries)]
        return query

    def new_token(self) -> bytes:
        return os.urandom(4)

    # -- decisions: the answer ---------------------------------------------------------------

    def wants_next_block(self, exchange: BulkExchange, num: int) -> bool:
        """RFC 7959 2.4: M=1 asks the client to fetch block NUM+1."""
        return True

    def response_recipient(self, entry: CachedRequest, exchange: BulkExchange, code: int) -> str:
        return entry.ue_id

    def split_answer(self, exchange: BulkExchange, results: list[dict[str, Any]]) -> None:
        """One response per waiting UE with its own result and configuration; 4.04 if absent."""
        waiting = {e.ue_id: e for e in exchange.entries}
        for item in results:
            ue_id = item["ue-uri"]
            entry = waiting.pop(ue_id, None)
            if entry is None:
                self.note(f"bulk answer entry for {ue_id!r} ignored: no such request waiting (or answered)")
                continue
            self.deliver(entry, PER_UE_CODES[item["result"]], item.get("configuration"), exchange)
        for entry in waiting.values():
            self.note(f"{entry.ue_id} missing from the bulk answer: 4.04")
            self.deliver(entry, Code.NOT_FOUND, None, exchange)

    def encode_configuration(self, configuration: dict[str, Any]) -> bytes:
        """One UE's configuration document as the payload of its response (compact JSON)."""
        return json.dumps(configuration, separators=(",", ":")).encode("utf-8")

    def deliver(
        self, entry: CachedRequest, code: int, configuration: dict[str, Any] | None, exchange: BulkExchange
    ) -> None:
        """A separate response to one UE, on its own token (RFC 7252 5.2.2)."""
        assert self.pc5 is not None
        recipient = self.response_recipient(entry, exchange, code)
        options: list[Option] = [(self.profile.recipient_option, recipient.encode("utf-8"))]
        payload = b""
        if code == Code.CONTENT and configuration is not None:
            options.append((OptionNumber.CONTENT_FORMAT, encode_uint(self.profile.content_format)))
            payload = self.encode_configuration(configuration)
        response = CoapMessage(entry.mtype, code, 0, entry.token, _ordered(options), payload)
        self.pc5.send(response, entry.endpoint)
        self.note(f"sent {code_name(code)} token={entry.token.hex()} to {entry.ue_id} at {entry.endpoint}")

    # -- its own configuration (6.2.2.x: the configuration management client functionality) ----

    def own_ue_id(self) -> str:
        """The Gateway UE's own MSGin5G UE id (VAL UE ID): the profile's id of the UE under test."""
        return self.profile.sut_ue_address

    def own_config_path(self) -> list[str]:
        """The single-UE configuration resource (TS 24.546 C.3.1), as any MSGin5G UE asks (6.2.1.2)."""
        return list(self.profile.single_path)

    def own_config_options(self) -> tuple[Option, ...]:
        p = self.profile
        # The recipient option is not required here (the Gateway UE reaches the SCM-S itself, no
        # relay routes the request); it carries the SCM-S as the gateway's bulk GETs do.
        options: list[Option] = [(p.recipient_option, p.scm_s_address.encode("utf-8"))]
        options += [(OptionNumber.URI_PATH, s.encode("utf-8")) for s in self.own_config_path()]
        options.append((OptionNumber.URI_QUERY, f"{p.query_ue_ids}={self.own_ue_id()}".encode()))
        return _ordered(options)

    def request_configuration(self) -> None:
        """Ask the SCM-S for the Gateway UE's own configuration now (upper tester)."""
        assert self.uu is not None
        self.own_token = self.new_token()
        request = CoapMessage(MessageType.CON, Code.GET, 0, self.own_token, self.own_config_options())
        self.uu.send(request, self.env.scm_s)
        self.note(f"sent its own configuration GET token={self.own_token.hex()} to {self.env.scm_s}")

    def own_configuration(self) -> dict[str, Any]:
        """The last result of its own configuration request and the configuration in force."""
        return copy.deepcopy(self.own_state)

    def handle_own_answer(self, msg: CoapMessage) -> None:
        what = f"{code_name(msg.code)} token={msg.token.hex()} to its own configuration GET"
        self.own_token = None  # answered: a later response on this token is stale
        bad = self.unknown_critical(msg)
        if bad:
            self.note(f"ignored {what}: unrecognised critical option {bad[0]}")  # RFC 7252 5.4.1
            return
        if msg.code in (Code.FORBIDDEN, Code.NOT_FOUND):
            self.own_state = {"status": code_to_str(msg.code), "configuration": self.own_state["configuration"]}
            self.note(f"recorded {what}: no configuration")
            return
        if msg.code != Code.CONTENT:
            self.note(f"ignored {what}: not 2.05, 4.03 or 4.04")
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError as exc:
            self.own_state = {"status": "invalid", "configuration": self.own_state["configuration"]}
            self.note(f"not applied {what}: payload is not JSON ({exc})")
            return
        errors = list(self._config_validator.iter_errors(doc))
        if errors:
            self.own_state = {"status": "invalid", "configuration": self.own_state["configuration"]}
            self.note(f"not applied {what}: configuration invalid: {errors[0].message}")
            return
        self.own_state = {"status": "2.05", "configuration": doc}
        self.note(f"applied its own configuration from {what}")

    # -- PC5 side -----------------------------------------------------------------------------

    def on_pc5(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        if not is_request(msg.code):
            self.note(f"ignored {code_name(msg.code)} from {src} on the PC5 side")
            return
        bad = self.unknown_critical(msg)
        if bad:
            self.reject_bad_option(node, msg, src, bad)
            return
        self.handle_request(node, msg, src)

    def handle_request(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        refusal = self.configuration_get_refusal(msg, src)
        if refusal is not None:
            self.note(f"not cached: {refusal}")
            return
        ids = self.query_values(msg, self.profile.query_ue_ids)
        if len(ids) != 1 or not ids[0]:
            self.reject(node, msg, src, Code.BAD_REQUEST, f"expected one {self.profile.query_ue_ids} query, got {ids}")
            return
        self.cache_request(self.cache_entry(msg, src, ids[0]))

    def cache_request(self, entry: CachedRequest) -> None:
        was_empty = not self.cache
        # A repeat from the same UE replaces the old entry (its token is the one it now waits on).
        replaced = self.cache.pop(entry.ue_id, None) is not None
        self.cache[entry.ue_id] = entry
        self.note(
            f"{'replaced' if replaced else 'cached'} GET token={entry.token.hex()} from {entry.ue_id} "
            f"at {entry.endpoint} ({len(self.cache)} cached)"
        )
        if self.policy_reached():
            self.note(f"service policy: {len(self.cache)} >= min_batch {self.profile.min_batch}")
            self.send_bulk_now()
        elif was_empty:
            self.schedule_max_wait()

    def _cancel_max_wait(self) -> None:
        if self._max_wait is not None:
            self._max_wait.cancel()
            self._max_wait = None

    def _max_wait_expired(self) -> None:
        self._max_wait = None
        if self.cache:
            self.note(f"service policy: max_wait {self.profile.max_wait_ms} ms elapsed")
            self.send_bulk_now()

    # -- network side -------------------------------------------------------------------------

    def send_bulk_now(self) -> None:
        """Send every cached request as one bulk GET now (also the upper tester's trigger)."""
        self._cancel_max_wait()
        if not self.cache:
            self.note("no cached request: no bulk GET")
            return
        # The batch leaves the cache: requests arriving meanwhile start the next batch.
        entries = list(self.cache.values())
        self.cache.clear()
        exchange = BulkExchange(entries, self.bulk_path(), self.bulk_query(entries))
        exchange.timer = asyncio.get_running_loop().call_later(self.TRANSFER_TIMEOUT_S, self._timed_out, exchange)
        self.exchanges.append(exchange)
        self.request_block(exchange, None)

    def request_block(self, exchange: BulkExchange, block2: int | None) -> None:
        assert self.uu is not None
        token = self.new_token()
        options: list[Option] = [(self.profile.recipient_option, self.profile.scm_s_address.encode("utf-8"))]
        options += [(OptionNumber.URI_PATH, s.encode("utf-8")) for s in exchange.path]
        options += [(OptionNumber.URI_QUERY, q.encode("utf-8")) for q in exchange.query]
        if block2 is not None:
            options.append((OptionNumber.BLOCK2, encode_uint(block2)))
        request = CoapMessage(MessageType.CON, Code.GET, 0, token, _ordered(options))
        self.outstanding[token] = exchange
        self.uu.send(request, self.env.scm_s)
        what = "bulk GET" if block2 is None else f"bulk GET for block {block2 >> 4}"
        self.note(f"sent {what} token={token.hex()} for {len(exchange.entries)} UE(s) to {self.env.scm_s}")

    def on_uu(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        if is_request(msg.code):
            bad = self.unknown_critical(msg)
            if bad:
                self.reject_bad_option(node, msg, src, bad)
            else:
                self.note(f"ignored request {code_name(msg.code)} from {src} on the network side")
            return
        if not is_response(msg.code):
            return
        # RFC 7252 5.3.2: a response matches by token and comes from the endpoint asked.
        if self.own_token is not None and msg.token == self.own_token and src == self.env.scm_s:
            self.handle_own_answer(msg)
            return
        exchange = self.outstanding.get(msg.token)
        if exchange is None or src != self.env.scm_s:
            self.note(f"ignored {code_name(msg.code)} token={msg.token.hex()} from {src}: no matching bulk GET")
            return
        del self.outstanding[msg.token]
        if exchange.done:
            return
        self.handle_answer(exchange, msg)

    def handle_answer(self, exchange: BulkExchange, msg: CoapMessage) -> None:
        bad = self.unknown_critical(msg)
        if bad:
            # RFC 7252 5.4.1: a response with an unrecognised critical option is rejected.
            self.fail(exchange, Code.BAD_GATEWAY, f"bulk answer carries unrecognised critical option {bad[0]}")
            return
        if msg.code != Code.CONTENT:
            if msg.code >> 5 in (4, 5):
                self.fail(exchange, msg.code, f"SCM-S answered the bulk GET with {code_name(msg.code)}")
            else:
                self.fail(exchange, Code.BAD_GATEWAY, f"unexpected {code_name(msg.code)} to the bulk GET")
            return
        block2 = msg.option_values(OptionNumber.BLOCK2)
        if not block2:
            exchange.body = bytearray(msg.payload)
            self.complete(exchange)
            return
        value = decode_uint(block2[0])
        num, more, szx = value >> 4, bool(value & 0x08), value & 0x07
        if szx == 7:
            self.fail(exchange, Code.BAD_GATEWAY, "Block2 with the reserved SZX 7")
            return
        size = 1 << (szx + 4)
        if num * size != len(exchange.body):
            self.fail(exchange, Code.BAD_GATEWAY, f"Block2 {num} at offset {num * size}, expected {len(exchange.body)}")
            return
        exchange.body += msg.payload
        exchange.blocks += 1
        self.note(f"bulk answer block {num} ({len(msg.payload)} bytes, more={int(more)})")
        if not more or not self.wants_next_block(exchange, num):
            self.complete(exchange)
            return
        if len(exchange.body) + size > self.MAX_ANSWER_BYTES:
            self.fail(
                exchange,
                Code.GATEWAY_TIMEOUT,
                f"bulk answer not complete after {exchange.blocks} blocks ({len(exchange.body)} bytes): "
                f"the next would pass {self.MAX_ANSWER_BYTES} bytes",
            )
            return
        self.request_block(exchange, ((num + 1) << 4) | szx)

    def complete(self, exchange: BulkExchange) -> None:
        try:
            doc = json.loads(bytes(exchange.body))
        except ValueError as exc:
            self.fail(exchange, Code.BAD_GATEWAY, f"bulk answer is not JSON: {exc}")
            return
        errors = list(self._bulk_validator.iter_errors(doc))
        if errors:
            e = errors[0]
            where = "/".join(map(str, e.absolute_path)) or "(document)"
            self.fail(exchange, Code.BAD_GATEWAY, f"bulk answer fails its schema at {where}: {e.message}")
            return
        entries = self.entries_of(doc)
        self.note(f"bulk answer complete ({len(exchange.body)} bytes, {len(entries)} entries)")
        self.finish(exchange)
        self.split_answer(exchange, entries)

    def entries_of(self, doc: Any) -> list[dict[str, Any]]:
        """The per-UE results of a bulk answer in the profile's shape, as {ue-uri, result, configuration}."""
        if self.profile.bulk_response_shape == "by-id":
            return [{"ue-uri": ue_id, **item} for ue_id, item in doc.items()]
        return list(doc["ue-configurations"])

    def fail(self, exchange: BulkExchange, code: int, why: str) -> None:
        """The whole bulk failed: every waiting UE gets the same code."""
        self.note(f"{why}: {code_name(code)} to every waiting UE")
        self.finish(exchange)
        for entry in exchange.entries:
            self.deliver(entry, code, None, exchange)

    def finish(self, exchange: BulkExchange) -> None:
        exchange.done = True
        if exchange.timer is not None:
            exchange.timer.cancel()
            exchange.timer = None
        for token in [t for t, x in self.outstanding.items() if x is exchange]:
            del self.outstanding[token]
        if exchange in self.exchanges:
            self.exchanges.remove(exchange)

    def _timed_out(self, exchange: BulkExchange) -> None:
        exchange.timer = None
        if not exchange.done:
            self.fail(exchange, Code.GATEWAY_TIMEOUT, f"bulk answer not complete after {self.TRANSFER_TIMEOUT_S} s")


def _ordered(options: list[Option]) -> tuple[Option, ...]:
    # Stable: repeated options (Uri-Path, Uri-Query) keep their order, which carries meaning.
    return tuple(sorted(options, key=lambda o: o[0]))
