"""Conformant variants of the reference Gateway UE (TS 24.538 6.2.2.x): other legal choices."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from msgin5g_conformance.wire.numbers import MessageType
from sut_adapters.reference.gateway import BulkExchange, CachedRequest, Option, ReferenceGateway


class VendorPerUe(ReferenceGateway):
    """Repeats ue-vendor and ue-type once per cached UE that gave them: the seed sets them "to the
    MSGin5G UE information ... if included" and says nothing of how often."""

    def bulk_vendors(self, entries: list[CachedRequest]) -> list[str]:
        return [e.vendor for e in entries if e.vendor is not None]

    def bulk_types(self, entries: list[CachedRequest]) -> list[str]:
        return [e.ue_type for e in entries if e.ue_type is not None]


class NonResponses(ReferenceGateway):
    """Answers every UE with a NON response, after the empty ACK of a CON request: an endpoint MUST
    be prepared to receive a NON response to a CON request (RFC 7252 5.2.3); the separate response
    follows the empty ACK (5.2.2), the CoAP form of the interim answer of TS 23.554 8.1.4."""

    def deliver(
        self, entry: CachedRequest, code: int, configuration: dict[str, Any] | None, exchange: BulkExchange
    ) -> None:
        super().deliver(_as_non(entry), code, configuration, exchange)


def _as_non(entry: CachedRequest) -> CachedRequest:
    return replace(entry, mtype=MessageType.NON)


class ConResponses(ReferenceGateway):
    """Answers every UE with a CON response, a NON request included: RFC 7252 5.2.3 says the
    response to a NON request SHOULD be NON and that an endpoint MUST be prepared to receive a CON
    one. A deviation from that SHOULD, recorded as a warning, never a fail."""

    def deliver(
        self, entry: CachedRequest, code: int, configuration: dict[str, Any] | None, exchange: BulkExchange
    ) -> None:
        super().deliver(replace(entry, mtype=MessageType.CON), code, configuration, exchange)


class ReadsById(ReferenceGateway):
    """Reads bulk answers keyed by UE id only (profile bulk_response_shape: by-id): the seeds leave
    the answer's shape to TS 24.538 7.3.2.1, which was not available; a gateway built for another
    shape states it in its protocol, and a run whose profile differs is refused up front."""

    PROTOCOL: ClassVar[dict[str, Any]] = {"bulk_response_shape": "by-id"}

    def entries_of(self, doc: Any) -> list[dict[str, Any]]:
        return [{"ue-uri": ue_id, **item} for ue_id, item in doc.items()]


class OwnConfigNoRecipient(ReferenceGateway):
    """Sends its own configuration GET without the recipient option: the Gateway UE reaches the
    SCM-S itself (6.2.2.x: its configuration management client "as specified in" TS 24.546, whose
    request has no recipient option); only a request the Relay UE routes names its recipient
    (6.2.2.1)."""

    def own_config_options(self) -> tuple[Option, ...]:
        return tuple(o for o in super().own_config_options() if o[0] != self.profile.recipient_option)


VARIANTS: dict[str, tuple[type[ReferenceGateway], str]] = {
    "gw-vendor-per-ue": (
        VendorPerUe,
        "TS 24.538 6.2.2.x: 'the ue-vendor and/or the ue-type parameter are set to the MSGin5G UE information "
        "... if included' (no count given)",
    ),
    "gw-non-responses": (
        NonResponses,
        "RFC 7252 5.2.2, 5.2.3: a separate response may be NON; an endpoint MUST accept a NON response to a CON",
    ),
    "gw-con-responses": (
        ConResponses,
        "RFC 7252 5.2.3: a NON request's response SHOULD be NON (a deviation is a warning); an endpoint MUST "
        "accept a CON response to a NON request",
    ),
    "gw-reads-by-id": (
        ReadsById,
        "TS 24.538 6.2.2.x refers the bulk data's JSON Schema to 7.3.2.1 (not available): another shape "
        "is as legal (profile bulk_response_shape: by-id)",
    ),
    "gw-own-config-no-recipient": (
        OwnConfigNoRecipient,
        "TS 24.538 6.2.2.x: the Gateway UE's own client works 'as specified in' TS 24.546, whose GET names no "
        "recipient; the recipient option routes what a Relay UE relays (6.2.2.1)",
    ),
}
