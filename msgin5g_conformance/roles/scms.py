"""The tester's configuration management server (SCM-S), serving the gateway suite.

It answers the single-UE GET (``{apiRoot}/su-uc/v1/val-services/{valServiceId}/ue-configurations``,
TS 24.546 C.3.1) and the bulk GET (``.../{bulkConfFlag}`` with one ``ue-uri`` per UE, seed CR to
TS 24.538 6.2.2) from the documents of the protocol profile: a document per UE id, 4.03 for UE ids
the profile (or the test case) marks forbidden, 4.04 for unknown ones. An answer larger than one
block goes block-wise (RFC 7959 Block2, with Size2 on the first block), computed afresh for each
block request so the server keeps no per-transfer state.

Every document and bulk answer is validated against the profile's schemas before it is served: an
invalid one is a set-up error of the harness (verdict ``error``), never something the SUT is
judged on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.schemacheck import file_validator
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.endpoint import Endpoint
from msgin5g_conformance.wire.numbers import Code, OptionNumber, code_to_str, decode_uint, encode_uint, is_request
from msgin5g_conformance.world.profile import Profile

ANSWER_CODES = {"document": Code.CONTENT, "forbidden": Code.FORBIDDEN, "unknown": Code.NOT_FOUND}
# The largest bulk answer it serves: 4 MiB, 4,096 blocks of 1,024 bytes (some twenty times the answer
# for cue1..cue4000, the most UEs a case can have); any number of blocks up to that, each cut on
# request (RFC 7959 2.2 allows NUM up to 2^20 - 1). A bigger answer is a set-up error (5.00).
MAX_ANSWER_BYTES = 4 << 20


def _check(path: Path, doc: Any, what: str) -> None:
    errors = list(file_validator(str(path)).iter_errors(doc))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.absolute_path)) or "(document)"
        raise HarnessError(f"the SCM-S would serve an invalid {what} ({path.name}: {where}: {e.message})")


class ScmServer:
    """Answers configuration GETs on the ``scms`` node; logs what it served."""

    def __init__(
        self,
        profile: Profile,
        node_for: Callable[[str], str | None],
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.profile = profile
        self.node_for = node_for
        self.overrides = dict(overrides or {})
        self.log: list[str] = []
        self.errors: list[str] = []
        # Each block request of a block-wise transfer asks for the same answer again: build and
        # validate it once per query (an SCM-S computing it afresh is correct but slow).
        self._bulk_cache: dict[tuple[str, ...], bytes] = {}

    # -- content ----------------------------------------------------------------------------

    def answer_for(self, ue_id: str) -> tuple[str, dict[str, Any] | None]:
        """('document'|'forbidden'|'unknown', document) for a UE id."""
        node = self.node_for(ue_id)
        if node is None:
            return "unknown", None
        kind = self.overrides.get(node) or self.profile.scm_answer_for(node)
        if kind != "document":
            return kind, None
        doc = self.profile.document_for(node)
        _check(self.profile.config_schema_path, doc, f"configuration document for {ue_id}")
        return "document", doc

    def ue_ids(self, queries: list[str]) -> list[str]:
        name = self.profile.query_ue_ids + "="
        ids: list[str] = []
        for q in queries:
            if q.startswith(name):
                value = q[len(name) :]
                ids.extend(value.split(",") if self.profile.list_encoding == "csv" else [value])
        return ids

    def bulk_answer(self, ids: list[str]) -> bytes:
        key = tuple(ids)
        if key not in self._bulk_cache:
            self._bulk_cache[key] = self._build_bulk_answer(ids)
        return self._bulk_cache[key]

    def _build_bulk_answer(self, ids: list[str]) -> bytes:
        """The bulk answer in the shape the profile names (bulk_response_shape): ``entries``, a
        list of {ue-uri, result, configuration}, or ``by-id``, one member per UE id."""
        results: dict[str, dict[str, Any]] = {}
        for ue_id in ids:
            kind, doc = self.answer_for(ue_id)
            results[ue_id] = {"result": code_to_str(ANSWER_CODES[kind])}
            if doc is not None:
                results[ue_id]["configuration"] = doc
        answer: dict[str, Any]
        if self.profile.bulk_response_shape == "by-id":
            answer = results
        else:
            answer = {"ue-configurations": [{"ue-uri": i, **r} for i, r in results.items()]}
        _check(self.profile.bulk_response_schema_path, answer, "bulk answer")
        body = json.dumps(answer, separators=(",", ":")).encode("utf-8")
        if len(body) > MAX_ANSWER_BYTES:
            raise HarnessError(
                f"the bulk answer for {len(ids)} UE id(s) is {len(body)} bytes, above the {MAX_ANSWER_BYTES} "
                f"the SCM-S serves"
            )
        return body

    # -- protocol ---------------------------------------------------------------------------

    def respond(self, node: Endpoint, msg: CoapMessage, src: Address) -> CoapMessage | None:
        """The endpoint's handler: the answer to a request (the endpoint piggybacks it on the
        ACK of a CON, or sends it separately, RFC 7252 5.2), None for anything else."""
        if not is_request(msg.code):  # only requests are served
            return None
        try:
            return self._serve(msg)
        except HarnessError as exc:
            self.errors.append(str(exc))
            self.log.append(f"scms: {exc}")
            return self._response(msg, Code.INTERNAL_SERVER_ERROR, [], b"")

    @staticmethod
    def _response(req: CoapMessage, code: int, options: list[tuple[int, bytes]], payload: bytes) -> CoapMessage:
        # type and Message ID are the endpoint's business (piggybacked, separate or NON)
        return CoapMessage(req.mtype, code, 0, req.token, tuple(sorted(options, key=lambda o: o[0])), payload)

    def _serve(self, req: CoapMessage) -> CoapMessage:
        path = req.uri_path()
        queries = req.uri_query()
        p = self.profile
        if req.code != Code.GET:
            return self._response(req, Code.METHOD_NOT_ALLOWED, [], b"")
        ids = self.ue_ids(queries)
        options: list[tuple[int, bytes]] = []
        if path == p.bulk_path:
            payload = self.bulk_answer(ids)
            code = Code.CONTENT
            options.append((OptionNumber.CONTENT_FORMAT, encode_uint(p.content_format)))
            self.log.append(f"scms: bulk answer for {len(ids)} UE id(s), {len(payload)} bytes{self._block_note(req)}")
        elif path == p.single_path and len(ids) == 1:
            kind, doc = self.answer_for(ids[0])
            code = ANSWER_CODES[kind]
            options.append((p.recipient_option, ids[0].encode("utf-8")))
            payload = b""
            if doc is not None:
                payload = json.dumps(doc, separators=(",", ":")).encode("utf-8")
                options.append((OptionNumber.CONTENT_FORMAT, encode_uint(p.content_format)))
            self.log.append(f"scms: single answer {code_to_str(code)} for {ids[0]}")
        else:
            self.log.append(f"scms: 4.04 for path /{'/'.join(path)}")
            return self._response(req, Code.NOT_FOUND, [], b"")
        options, payload = self._block(req, options, payload)
        return self._response(req, code, options, payload)

    @staticmethod
    def _block_note(req: CoapMessage) -> str:
        requested = req.option_values(OptionNumber.BLOCK2)
        return f", block {decode_uint(requested[0]) >> 4}" if requested else ""

    def _block(
        self, req: CoapMessage, options: list[tuple[int, bytes]], payload: bytes
    ) -> tuple[list[tuple[int, bytes]], bytes]:
        """Cut the requested Block2 out of the payload (RFC 7959 2.2-2.4)."""
        requested = req.option_values(OptionNumber.BLOCK2)
        szx = max(0, self.profile.block_size.bit_length() - 5)
        num = 0
        if requested:
            value = decode_uint(requested[0])
            num, szx = value >> 4, min(szx, value & 7)
        size = 1 << (szx + 4)
        if not requested and len(payload) <= size:
            return options, payload
        chunk = payload[num * size : (num + 1) * size]
        more = (num + 1) * size < len(payload)
        options = [*options, (OptionNumber.BLOCK2, encode_uint((num << 4) | (int(more) << 3) | szx))]
        if num == 0:
            options.append((OptionNumber.SIZE2, encode_uint(len(payload))))
        return options, chunk
