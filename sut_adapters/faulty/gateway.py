"""Faulty variants of the reference Gateway UE (TS 24.538 6.2.2.x), each breaking one requirement.

Like :mod:`sut_adapters.faulty` for the relay: the self-test runs the gateway suite against each
and checks that exactly the cases of the broken requirement fail. Where a defect could also touch
another requirement's traffic (whole-bulk errors, per-UE error codes), it is confined to the
traffic of its own requirement, so that a case never fails for a reason it does not claim.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber
from sut_adapters.reference.gateway import BulkExchange, CachedRequest, Option, ReferenceGateway


class OmitsOneUe(ReferenceGateway):
    """Breaks REQ-GW-BULK-1: leaves the last cached UE id out of the bulk GET's query."""

    def bulk_ue_ids(self, entries: list[CachedRequest]) -> list[str]:
        return super().bulk_ue_ids(entries)[:-1]


class ListsOneTwice(ReferenceGateway):
    """Breaks REQ-GW-BULK-1: lists the first cached UE id twice in the bulk GET's query."""

    def bulk_ue_ids(self, entries: list[CachedRequest]) -> list[str]:
        ids = super().bulk_ue_ids(entries)
        return [*ids, ids[0]] if ids else ids


class DropsVendor(ReferenceGateway):
    """Breaks REQ-GW-BULK-1: never passes the ue-vendor values of the cached requests on."""

    def bulk_vendors(self, entries: list[CachedRequest]) -> list[str]:
        return []


class NoBulkFlag(ReferenceGateway):
    """Breaks REQ-GW-BULK-1: sends the bulk GET on the single-UE path (no bulkConfFlag segment)."""

    def bulk_path(self) -> list[str]:
        return list(self.profile.single_path)


class EverythingToEveryone(ReferenceGateway):
    """Breaks REQ-GW-BULK-2: a UE answered 2.05 also gets every other UE's 2.05 configuration.

    The extra copies are NONs (2,450 of them for 50 UEs): as CONs their retransmission state
    slowed the shared event loop so much on a busy machine that some were sent again after their
    ACK, a second fault (REQ-COAP-MSG-2) this variant is not about."""

    def split_answer(self, exchange: BulkExchange, results: list[dict[str, Any]]) -> None:
        super().split_answer(exchange, results)
        documents = [r for r in results if r["result"] == "2.05"]
        own = {r["ue-uri"]: r["result"] for r in results}
        for entry in exchange.entries:
            if own.get(entry.ue_id) != "2.05":
                continue  # UEs with an error result keep it alone: that is REQ-GW-BULK-3's ground
            for r in documents:
                if r["ue-uri"] != entry.ue_id:
                    self.note(f"(faulty) also sending {r['ue-uri']}'s configuration to {entry.ue_id}")
                    extra = dataclasses.replace(entry, mtype=MessageType.NON)
                    self.deliver(extra, Code.CONTENT, r["configuration"], exchange)


class LosesOneResponse(ReferenceGateway):
    """Breaks REQ-GW-BULK-2: the last cached UE never gets its 2.05 response."""

    def split_answer(self, exchange: BulkExchange, results: list[dict[str, Any]]) -> None:
        last = exchange.entries[-1].ue_id
        lost = [r for r in results if r["ue-uri"] == last and r["result"] == "2.05"]
        if not lost:
            super().split_answer(exchange, results)
            return
        self.note(f"(faulty) losing the response for {last}")
        rest = dataclasses.replace(exchange, entries=exchange.entries[:-1])
        super().split_answer(rest, [r for r in results if r["ue-uri"] != last])


class WrongRecipient(ReferenceGateway):
    """Breaks REQ-GW-BULK-2: each split 2.05 names the next cached UE (rotating) as recipient,
    though it goes to the right endpoint with the right token."""

    def response_recipient(self, entry: CachedRequest, exchange: BulkExchange, code: int) -> str:
        ids = [e.ue_id for e in exchange.entries]
        if code != Code.CONTENT or len(ids) < 2:
            return super().response_recipient(entry, exchange, code)
        return ids[(ids.index(entry.ue_id) + 1) % len(ids)]


class FansOutErrors(ReferenceGateway):
    """Breaks REQ-GW-BULK-3: the first per-UE error result (4.03/4.04) of the bulk answer is sent
    to every UE whose own result is an error, whichever error it was (UEs answered 2.05 still get
    their documents: that is REQ-GW-BULK-2's ground)."""

    def split_answer(self, exchange: BulkExchange, results: list[dict[str, Any]]) -> None:
        errors = [r["result"] for r in results if r["result"] != "2.05"]
        if not errors:
            super().split_answer(exchange, results)
            return
        self.note(f"(faulty) fanning {errors[0]} out to every UE with an error result")
        super().split_answer(exchange, [{**r, "result": errors[0]} if r["result"] != "2.05" else r for r in results])


class IgnoresMaxWait(ReferenceGateway):
    """Breaks REQ-GW-BULK-1 (service policy): never sends a bulk GET on its own below min_batch."""

    def schedule_max_wait(self) -> None:
        self.note("(faulty) no max_wait timer")


class IgnoresMinBatch(ReferenceGateway):
    """Breaks REQ-GW-BULK-1 (service policy): waits for max_wait_ms even with a full batch."""

    def policy_reached(self) -> bool:
        return False


class StopsBlockwise(ReferenceGateway):
    """Breaks REQ-GW-BULK-2: fetches only the first Block2 block of the bulk answer and splits
    what it has (a truncated document: every UE gets 5.02)."""

    def wants_next_block(self, exchange: BulkExchange, num: int) -> bool:
        self.note("(faulty) not fetching the next block")
        return False


class CopiesToIdleUe(ReferenceGateway):
    """Breaks REQ-GW-BULK-2 where no case looked before: every split 2.05 also goes to a UE that
    never asked (the address cue100 would have, a host of the case's range no node owns)."""

    def deliver(
        self, entry: CachedRequest, code: int, configuration: dict[str, Any] | None, exchange: BulkExchange
    ) -> None:
        super().deliver(entry, code, configuration, exchange)
        if code == Code.CONTENT:
            idle = (entry.endpoint[0].rsplit(".", 1)[0] + ".110", entry.endpoint[1])
            super().deliver(dataclasses.replace(entry, endpoint=idle), code, configuration, exchange)


class FloatNumbers(ReferenceGateway):
    """Breaks REQ-GW-BULK-2: writes every integer of a UE's document as a float ("Segment-size":
    1024.0), a document the UE's schema (an integer) refuses though Python's == calls it equal."""

    def encode_configuration(self, configuration: dict[str, Any]) -> bytes:
        floated = {
            k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in configuration.items()
        }
        return super().encode_configuration(floated)


class DuplicateKeys(ReferenceGateway):
    """Breaks REQ-GW-BULK-2: each UE's document repeats its first member with another value before
    the real one (a lenient parser keeps the last and sees nothing; which one a UE keeps is open)."""

    def encode_configuration(self, configuration: dict[str, Any]) -> bytes:
        body = super().encode_configuration(configuration)
        first = next(iter(configuration), None)
        if first is None:
            return body
        decoy = json.dumps({first: "decoy"}, separators=(",", ":"))[1:-1].encode("utf-8")
        return b"{" + decoy + b"," + body[1:]


class NeverAsksOwnConfig(ReferenceGateway):
    """Breaks REQ-GW-CFG-1 (a SHOULD): accepts the upper tester's request for its own configuration
    but never sends the configuration GET (no configuration management client behind it)."""

    def request_configuration(self) -> None:
        self.note("(faulty) no configuration management client: its own configuration GET is not sent")


class OwnConfigNoUeId(ReferenceGateway):
    """Breaks REQ-GW-CFG-1 (a SHOULD): its own configuration GET names no UE (no ue-uri): the VAL UE
    ID of a Get VAL UE configuration request is mandatory (TS 23.434 table 11.3.2.1-1)."""

    def own_config_options(self) -> tuple[Option, ...]:
        return tuple(o for o in super().own_config_options() if o[0] != OptionNumber.URI_QUERY)


class OwnConfigOnBulkPath(ReferenceGateway):
    """Breaks REQ-GW-CFG-1 (a SHOULD): asks for its own configuration on the bulk configuration
    resource (.../{bulkConfFlag}), which 6.2.2.x reserves for the cached requests of the constrained
    UEs, instead of the single-UE resource of TS 24.546 C.3.1."""

    def own_config_path(self) -> list[str]:
        return list(self.profile.bulk_path)


VARIANTS: dict[str, tuple[type[ReferenceGateway], str]] = {
    "gw-omits-one-ue": (OmitsOneUe, "REQ-GW-BULK-1"),
    "gw-lists-one-twice": (ListsOneTwice, "REQ-GW-BULK-1"),
    "gw-drops-vendor": (DropsVendor, "REQ-GW-BULK-1"),
    "gw-no-bulk-flag": (NoBulkFlag, "REQ-GW-BULK-1"),
    "gw-ignores-max-wait": (IgnoresMaxWait, "REQ-GW-BULK-1"),
    "gw-ignores-min-batch": (IgnoresMinBatch, "REQ-GW-BULK-1"),
    "gw-everything-to-everyone": (EverythingToEveryone, "REQ-GW-BULK-2"),
    "gw-loses-one-response": (LosesOneResponse, "REQ-GW-BULK-2"),
    "gw-wrong-recipient": (WrongRecipient, "REQ-GW-BULK-2"),
    "gw-stops-blockwise": (StopsBlockwise, "REQ-GW-BULK-2"),
    "gw-fans-out-errors": (FansOutErrors, "REQ-GW-BULK-3"),
    "gw-copies-to-idle-ue": (CopiesToIdleUe, "REQ-GW-BULK-2"),
    "gw-float-numbers": (FloatNumbers, "REQ-GW-BULK-2"),
    "gw-duplicate-keys": (DuplicateKeys, "REQ-GW-BULK-2"),
    "gw-never-asks-own-config": (NeverAsksOwnConfig, "REQ-GW-CFG-1"),
    "gw-own-config-no-ue-id": (OwnConfigNoUeId, "REQ-GW-CFG-1"),
    "gw-own-config-on-bulk-path": (OwnConfigOnBulkPath, "REQ-GW-CFG-1"),
}
