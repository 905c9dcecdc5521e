"""Reference Constrained UE with an MSGin5G Client: TS 24.538 clause 6.2.2.2, its request built as
in 6.2.1.2, as read by the protocol profile.

Request: a CON GET from UDP port 65401 to the Relay UE (or Gateway UE), recipient option naming
the SCM-S, Uri-Path of the single-UE configuration resource, Uri-Query ``ue-uri=<own UE id>``.
Response: a 2.05, 4.03 or 4.04 whose recipient option names this UE and whose token is the one of
its outstanding request is handled; a 2.05 document is applied only if it is valid against the
configuration schema. Anything else is ignored ("Otherwise ... shall discard").

Every decision is a method, so that a faulty variant overrides exactly one of them.
"""

from __future__ import annotations

import copy
import json
import os
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
    is_response,
)
from sut_adapters.reference.coapnode import CoapNode

from .common import EndpointRules, RoleContext

Option = tuple[int, bytes]

# The codes 6.2.2.2 gives the client something to do with.
HANDLED_CODES = frozenset({Code.CONTENT, Code.FORBIDDEN, Code.NOT_FOUND})


class ReferenceConstrainedUE(EndpointRules):
    """A constrained UE (TS 24.538 6.2.2.2) on one endpoint (port 65401) that asks for its configuration."""

    LABEL = "cue"

    def __init__(self, env: RoleContext) -> None:
        EndpointRules.__init__(self)
        self.env = env
        self.profile = env.profile
        self.address = env.endpoint("sut.cue")
        self.ue_id = self.profile.sut_ue_address
        self.node: CoapNode | None = None
        self.token: bytes | None = None
        self.state: dict[str, Any] = {"status": "none", "configuration": None}
        self._config_validator = file_validator(str(self.profile.config_schema_path))

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.node = CoapNode("cue", self.address, tuning=self.env.tuning, on_message=self.on_message)
        await self.node.start()

    async def stop(self) -> None:
        if self.node is not None:
            node, self.node = self.node, None
            await node.stop()

    # -- upper tester -----------------------------------------------------------------------

    def applied(self) -> dict[str, Any]:
        """The last handled result (status "none", "2.05", "4.03", "4.04" or "invalid") and the
        configuration in force."""
        return copy.deepcopy(self.state)

    def request_configuration(self) -> None:
        """Send the configuration GET towards the SCM-S through the relay (6.2.2.2, 6.2.1.2)."""
        self.token = os.urandom(4)
        request = CoapMessage(MessageType.CON, Code.GET, 0, self.token, self.request_options())
        relay = self.env.relay
        self.sending_node().send(request, relay)
        self.note(f"sent configuration GET token={self.token.hex()} to the relay at {relay}")

    # -- decisions --------------------------------------------------------------------------

    def sending_node(self) -> CoapNode:
        assert self.node is not None
        return self.node

    def request_options(self) -> tuple[Option, ...]:
        p = self.profile
        options: list[Option] = [(p.recipient_option, p.scm_s_address.encode("utf-8"))]
        options += [(OptionNumber.URI_PATH, s.encode("utf-8")) for s in p.single_path]
        options.append((OptionNumber.URI_QUERY, f"{p.query_ue_ids}={self.ue_id}".encode()))
        return tuple(sorted(options, key=lambda o: o[0]))

    def addressed_to_me(self, msg: CoapMessage) -> bool:
        return self.recipient(msg) == self.ue_id

    def handles_code(self, code: int) -> bool:
        return code in HANDLED_CODES

    # -- handling ---------------------------------------------------------------------------

    def on_message(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        if not is_response(msg.code):
            self.note(f"ignored {code_name(msg.code)} from {src}: not a response")
            return
        self.handle_response(msg, src)

    def handle_response(self, msg: CoapMessage, src: Address) -> None:
        what = f"{code_name(msg.code)} token={msg.token.hex()} from {src}"
        if not self.addressed_to_me(msg):
            self.note(f"ignored {what}: recipient {self.recipient(msg)!r} is not {self.ue_id!r}")
            return
        if self.token is None or msg.token != self.token:
            self.note(f"ignored {what}: no outstanding request with this token")
            return
        if not self.handles_code(msg.code):
            self.note(f"ignored {what}: not 2.05, 4.03 or 4.04")
            return
        bad = self.unknown_critical(msg)
        if bad:
            # RFC 7252 5.4.1: a response with an unrecognised critical option is rejected.
            self.note(f"ignored {what}: unrecognised critical option {bad[0]}")
            return
        if msg.code == Code.CONTENT:
            self.apply_document(msg, what)
        else:
            self.apply_failure(msg, what)

    def apply_document(self, msg: CoapMessage, what: str) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError as exc:
            self.note(f"not applied {what}: payload is not JSON ({exc})")
            return
        errors = list(self._config_validator.iter_errors(doc))
        if errors:
            e = errors[0]
            where = "/".join(map(str, e.absolute_path)) or "(document)"
            self.state = {"status": "invalid", "configuration": self.state["configuration"]}
            self.token = None
            self.note(f"not applied {what}: configuration invalid at {where}: {e.message}")
            return
        self.state = {"status": "2.05", "configuration": doc}
        self.token = None  # answered: a later response on this token is stale
        self.note(f"applied configuration from {what}")

    def apply_failure(self, msg: CoapMessage, what: str) -> None:
        # 4.03/4.04: handled; whatever configuration was in force stays in force
        self.state = {"status": code_to_str(msg.code), "configuration": self.state["configuration"]}
        self.token = None
        self.note(f"recorded {what}: no configuration")
