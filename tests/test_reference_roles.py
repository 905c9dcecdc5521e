"""Unit tests of the reference Gateway UE and Constrained UE (TS 24.538 6.2.2.x, 6.2.2.2) and of
their faulty variants, driven directly with small CoAP nodes on a claimed loopback block.

Each test runs its own event loop and stops every node it started, in every outcome: aiocoap sets
SO_REUSEPORT, so a leaked context would share its port with the next test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pytest

from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.endpoint import CoapTimers
from msgin5g_conformance.wire.numbers import (
    Code,
    MessageType,
    OptionNumber,
    code_to_str,
    decode_uint,
    encode_uint,
    is_request,
    is_response,
)
from msgin5g_conformance.world.profile import Profile, load_profile
from msgin5g_conformance.world.topology import CaseAddresses, claim_block
from sut_adapters.base import CaseWorld, ClientInfo, SutEnvironment
from sut_adapters.faulty import cue as faulty_cue
from sut_adapters.faulty import gateway as faulty_gateway
from sut_adapters.reference import ReferenceAdapter
from sut_adapters.reference.coapnode import CoapNode, FastTuning
from sut_adapters.reference.common import RoleContext
from sut_adapters.reference.cue import ReferenceConstrainedUE
from sut_adapters.reference.gateway import ReferenceGateway

PROFILE = load_profile()
UNKNOWN_CRITICAL = 65001  # odd, so critical (RFC 7252 5.4.6), and registered nowhere
QUIET_S = 0.25  # how long "nothing more arrives" is watched (after the expected traffic arrived)


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


class Peer:
    """A tester-side node that records everything it receives and may answer requests."""

    def __init__(
        self,
        name: str,
        address: Address,
        tuning: FastTuning,
        answer: Callable[[CoapNode, CoapMessage, Address], None] | None = None,
    ) -> None:
        self.received: list[tuple[CoapMessage, Address]] = []
        self.answer = answer
        self.node = CoapNode(name, address, tuning=tuning, on_message=self._on)

    def _on(self, node: CoapNode, msg: CoapMessage, src: Address) -> None:
        self.received.append((msg, src))
        if self.answer is not None and is_request(msg.code):
            self.answer(node, msg, src)

    async def stop(self) -> None:
        await self.node.stop()

    def requests(self) -> list[CoapMessage]:
        return [m for m, _ in self.received if is_request(m.code)]

    def responses(self) -> list[CoapMessage]:
        return [m for m, _ in self.received if is_response(m.code)]


class Bench:
    """A claimed address block, the environment a SUT gets, and everything started on it."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.block = claim_block(profile.port)
        self.topology = CaseAddresses(self.block.open_space(256), profile.port, profile.alt_port, (), ())
        self.world = self.world_for("relay")
        self.env = RoleContext(profile, FastTuning(0.15, 2), self.world)
        self.sut_env = SutEnvironment(profile, CoapTimers(0.15, 2), self.world.endpoints)
        self.running: list[_Stoppable] = []

    def world_for(self, role: str) -> CaseWorld:
        return CaseWorld(
            role,
            {n: self.topology.address(n) for n in ("sut.pc5", "sut.uu", "sut.cue")},
            {n: self.topology.address(n) for n in ("scms", "relay")},
            lambda address: None,
        )

    def client(self, node: str) -> ClientInfo:
        return ClientInfo(node, self.profile.client_address(node), self.topology.address(node))

    async def peer(
        self, node: str, answer: Callable[[CoapNode, CoapMessage, Address], None] | None = None, port: int | None = None
    ) -> Peer:
        address = self.topology.address(node)
        if port is not None:
            address = (address[0], port)
        p = Peer(f"test-{node}", address, self.env.tuning, answer)
        self.running.append(p)
        await p.node.start()
        return p

    async def gateway(self, cls: type[ReferenceGateway] = ReferenceGateway) -> ReferenceGateway:
        gw = cls(self.env)
        self.running.append(gw)
        await gw.start()
        return gw

    async def cue(self, cls: type[ReferenceConstrainedUE] = ReferenceConstrainedUE) -> ReferenceConstrainedUE:
        ue = cls(self.env)
        self.running.append(ue)
        await ue.start()
        return ue

    async def close(self) -> None:
        try:
            for thing in reversed(self.running):
                await asyncio.wait_for(thing.stop(), 5)
        finally:
            self.block.release()


def run(test: Callable[[Bench], Awaitable[None]], profile: Profile = PROFILE, timeout: float = 20.0) -> None:
    async def main() -> None:
        bench = Bench(profile)
        try:
            await asyncio.wait_for(test(bench), timeout)
        finally:
            await bench.close()

    asyncio.run(main())


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def recipient_of(msg: CoapMessage) -> str | None:
    values = msg.option_values(PROFILE.recipient_option)
    return values[0].decode() if len(values) == 1 else None


def with_policy(min_batch: int = 50, max_wait_ms: int = 400, **more: Any) -> Profile:
    return dataclasses.replace(PROFILE, min_batch=min_batch, max_wait_ms=max_wait_ms, **more)


# -- constrained UEs and a fake SCM-S facing the gateway ------------------------------------------


def ue_get(
    token: bytes,
    ue_id: str,
    *,
    mtype: MessageType = MessageType.CON,
    vendor: str | None = None,
    ue_type: str | None = None,
    recipient: str | None = PROFILE.scm_s_address,
    code: int = Code.GET,
    extra: tuple[tuple[int, bytes], ...] = (),
) -> CoapMessage:
    options: list[tuple[int, bytes]] = [(OptionNumber.URI_PATH, s.encode()) for s in PROFILE.single_path]
    if ue_id:
        options.append((OptionNumber.URI_QUERY, f"ue-uri={ue_id}".encode()))
    if vendor:
        options.append((OptionNumber.URI_QUERY, f"ue-vendor={vendor}".encode()))
    if ue_type:
        options.append((OptionNumber.URI_QUERY, f"ue-type={ue_type}".encode()))
    if recipient is not None:
        options.append((PROFILE.recipient_option, recipient.encode()))
    options += extra
    return CoapMessage(mtype, code, 0, token, tuple(sorted(options, key=lambda o: o[0])))


def bulk_body(results: dict[str, str | None]) -> bytes:
    """A bulk answer: node -> "2.05" | "4.03" | "4.04", or None to leave the node out."""
    entries: list[dict[str, Any]] = []
    for node, result in results.items():
        if result is None:
            continue
        entry: dict[str, Any] = {"ue-uri": PROFILE.client_address(node), "result": result}
        if result == "2.05":
            entry["configuration"] = PROFILE.document_for(node)
        entries.append(entry)
    return json.dumps({"ue-configurations": entries}, separators=(",", ":")).encode()


def three_blocks(body: bytes) -> tuple[bytes, int]:
    """Pad ``body`` (JSON allows trailing white space) so that it takes exactly three blocks."""
    szx = 0
    while 3 * (16 << szx) - 10 < len(body):
        szx += 1
    assert szx < 7
    return body + b" " * (3 * (16 << szx) - 10 - len(body)), szx


def scm_answer(body: bytes, *, szx: int | None = None, code: int = Code.CONTENT) -> Callable[..., None]:
    """Answer every GET piggybacked with ``body``, block-wise (RFC 7959) when ``szx`` is given."""

    def answer(node: CoapNode, msg: CoapMessage, src: Address) -> None:
        options: list[tuple[int, bytes]] = []
        payload = body
        if code == Code.CONTENT:
            options.append((OptionNumber.CONTENT_FORMAT, encode_uint(50)))
        if szx is not None:
            requested = msg.option_values(OptionNumber.BLOCK2)
            num = decode_uint(requested[0]) >> 4 if requested else 0
            size = 16 << szx
            payload = body[num * size : (num + 1) * size]
            more = (num + 1) * size < len(body)
            options.append((OptionNumber.BLOCK2, encode_uint(num << 4 | int(more) << 3 | szx)))
        response = CoapMessage(MessageType.CON, code, 0, msg.token, tuple(options), payload)
        node.reply(msg, response, src)

    return answer


# -- the reference Gateway UE -------------------------------------------------------------------


def test_gateway_splits_a_three_block_bulk_answer() -> None:
    """Two UEs, min_batch 2: one bulk GET, a 3-block answer, each UE gets exactly its own 2.05."""
    body, szx = three_blocks(bulk_body({"cue1": "2.05", "cue2": "2.05"}))

    async def test(b: Bench) -> None:
        scms = await b.peer("scms", scm_answer(body, szx=szx))
        gw = await b.gateway()
        cue1, cue2 = await b.peer("cue1"), await b.peer("cue2")
        pc5 = b.topology.address("sut.pc5")
        cue1.node.send(ue_get(b"\x01\x01", "cue1.msgin5g.example", vendor="acme", ue_type="t1"), pc5)
        await wait_until(lambda: len(gw.cache) == 1)
        cue2.node.send(ue_get(b"\x02\x02", "cue2.msgin5g.example", mtype=MessageType.NON, vendor="beta"), pc5)
        await wait_until(lambda: bool(cue1.responses()) and bool(cue2.responses()))
        await asyncio.sleep(QUIET_S)

        gets = scms.requests()
        assert len(gets) == 3
        assert len({g.token for g in gets}) == 3
        for i, g in enumerate(gets):
            assert g.mtype == MessageType.CON and g.code == Code.GET
            assert g.uri_path() == PROFILE.bulk_path
            assert g.uri_query() == [
                "ue-uri=cue1.msgin5g.example",
                "ue-uri=cue2.msgin5g.example",
                "ue-vendor=acme",
                "ue-vendor=beta",
                "ue-type=t1",
            ]
            assert recipient_of(g) == PROFILE.scm_s_address
            numbers = [n for n, _ in g.options]
            assert numbers == sorted(numbers)
            block2 = g.option_values(OptionNumber.BLOCK2)
            assert (decode_uint(block2[0]) if block2 else None) == (None if i == 0 else (i << 4 | szx))

        for peer, node, token, mtype in (
            (cue1, "cue1", b"\x01\x01", MessageType.CON),
            (cue2, "cue2", b"\x02\x02", MessageType.NON),
        ):
            (rsp,) = peer.responses()
            assert rsp.code == Code.CONTENT and rsp.mtype == mtype and rsp.token == token
            assert recipient_of(rsp) == PROFILE.client_address(node)
            assert rsp.content_format() == PROFILE.content_format
            assert json.loads(rsp.payload) == PROFILE.document_for(node)
        assert not gw.cache and not gw.outstanding

    run(test, with_policy(min_batch=2))


def test_gateway_max_wait_sends_what_it_has() -> None:
    """Below min_batch, max_wait_ms after the first request the bulk GET goes with one UE."""
    serve = scm_answer(bulk_body({"cue1": "2.05"}))
    arrived: list[float] = []

    def answer(node: CoapNode, msg: CoapMessage, src: Address) -> None:
        arrived.append(time.monotonic())
        serve(node, msg, src)

    async def test(b: Bench) -> None:
        scms = await b.peer("scms", answer)
        await b.gateway()
        cue1 = await b.peer("cue1")
        sent = time.monotonic()
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), b.topology.address("sut.pc5"))
        await wait_until(lambda: bool(cue1.responses()))
        # A lower bound only: a loaded machine delays the timer, it never advances it.
        assert arrived[0] - sent >= 0.14
        assert scms.requests()[0].uri_query() == ["ue-uri=cue1.msgin5g.example"]
        assert cue1.responses()[0].code == Code.CONTENT

    run(test, with_policy(max_wait_ms=150))


def test_gateway_whole_bulk_error_goes_to_every_ue() -> None:
    """A separate CON 4.03 to the bulk GET: each UE gets 4.03 on its own token, no payload."""

    def forbid(node: CoapNode, msg: CoapMessage, src: Address) -> None:
        node.send(CoapMessage(MessageType.CON, Code.FORBIDDEN, 0, msg.token), src)

    async def test(b: Bench) -> None:
        await b.peer("scms", forbid)
        gw = await b.gateway()
        cue1, cue2 = await b.peer("cue1"), await b.peer("cue2")
        pc5 = b.topology.address("sut.pc5")
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), pc5)
        cue2.node.send(ue_get(b"\x02", "cue2.msgin5g.example"), pc5)
        await wait_until(lambda: len(gw.cache) == 2)
        gw.send_bulk_now()
        await wait_until(lambda: bool(cue1.responses()) and bool(cue2.responses()))
        for peer, token, node in ((cue1, b"\x01", "cue1"), (cue2, b"\x02", "cue2")):
            (rsp,) = peer.responses()
            assert (rsp.code, rsp.token, rsp.payload) == (Code.FORBIDDEN, token, b"")
            assert recipient_of(rsp) == PROFILE.client_address(node)

    run(test)


def test_gateway_per_ue_results_and_missing_ue() -> None:
    """Per-UE 2.05 / 4.04 as answered; a UE left out of the answer gets 4.04; strangers ignored."""
    body = bulk_body({"cue1": "2.05", "cue2": "4.04", "cue7": "2.05"})

    async def test(b: Bench) -> None:
        await b.peer("scms", scm_answer(body))
        gw = await b.gateway()
        peers = [await b.peer(n) for n in ("cue1", "cue2", "cue3")]
        for i, p in enumerate(peers, 1):
            p.node.send(ue_get(bytes([i]), f"cue{i}.msgin5g.example"), b.topology.address("sut.pc5"))
        await wait_until(lambda: len(gw.cache) == 3)
        gw.send_bulk_now()
        await wait_until(lambda: all(p.responses() for p in peers))
        await asyncio.sleep(QUIET_S)
        assert [[r.code for r in p.responses()] for p in peers] == [[Code.CONTENT], [Code.NOT_FOUND], [Code.NOT_FOUND]]
        assert peers[1].responses()[0].payload == b""
        assert any("cue7" in line for line in gw.log)

    run(test)


def test_gateway_invalid_answer_is_502() -> None:
    """An answer that fails the bulk-response schema: every waiting UE gets 5.02 Bad Gateway."""
    body = json.dumps({"ue-configurations": [{"ue-uri": "cue1.msgin5g.example", "result": "2.05"}]}).encode()

    async def test(b: Bench) -> None:
        await b.peer("scms", scm_answer(body))
        gw = await b.gateway()
        cue1 = await b.peer("cue1")
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), b.topology.address("sut.pc5"))
        await wait_until(lambda: len(gw.cache) == 1)
        gw.send_bulk_now()
        await wait_until(lambda: bool(cue1.responses()))
        assert cue1.responses()[0].code == Code.BAD_GATEWAY
        assert any("schema" in line for line in gw.log)

    run(test)


def test_gateway_silent_server_is_504() -> None:
    """No (complete) answer within the transfer bound: 5.04 Gateway Timeout to every waiting UE."""

    async def test(b: Bench) -> None:
        scms = await b.peer("scms")
        gw = await b.gateway()
        gw.TRANSFER_TIMEOUT_S = 0.3
        cue1 = await b.peer("cue1")
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), b.topology.address("sut.pc5"))
        await wait_until(lambda: len(gw.cache) == 1)
        gw.send_bulk_now()
        await wait_until(lambda: bool(cue1.responses()))
        assert scms.requests()
        assert cue1.responses()[0].code == Code.GATEWAY_TIMEOUT
        assert not gw.cache and not gw.outstanding and not gw.exchanges

    run(test)


def test_gateway_refuses_what_it_must_not_cache() -> None:
    """4.00 without ue-uri, 4.02 for an unknown critical option; wrong recipient, POST and a
    foreign source port are not cached (and so no bulk GET)."""

    async def test(b: Bench) -> None:
        scms = await b.peer("scms")
        gw = await b.gateway()
        cue1 = await b.peer("cue1")
        stray = await b.peer("cue2", port=PROFILE.alt_port)
        pc5 = b.topology.address("sut.pc5")
        cue1.node.send(ue_get(b"\x01", ""), pc5)
        cue1.node.send(ue_get(b"\x02", "cue1.msgin5g.example", extra=((UNKNOWN_CRITICAL, b"x"),)), pc5)
        await wait_until(lambda: len(cue1.responses()) == 2)
        codes = {r.token: r.code for r in cue1.responses()}
        assert codes == {b"\x01": Code.BAD_REQUEST, b"\x02": Code.BAD_OPTION}
        cue1.node.send(ue_get(b"\x03", "cue1.msgin5g.example", recipient="elsewhere.example"), pc5)
        cue1.node.send(ue_get(b"\x04", "cue1.msgin5g.example", code=Code.POST), pc5)
        stray.node.send(ue_get(b"\x05", "cue2.msgin5g.example"), pc5)
        await wait_until(lambda: sum("not cached" in line for line in gw.log) == 3)
        assert not gw.cache
        gw.send_bulk_now()
        await asyncio.sleep(QUIET_S)
        assert not scms.requests()

    run(test)


def test_gateway_csv_list_and_replaced_request() -> None:
    """csv list encoding; a repeated request from the same UE replaces its entry (new token)."""
    body = bulk_body({"cue1": "2.05", "cue2": "2.05"})

    async def test(b: Bench) -> None:
        scms = await b.peer("scms", scm_answer(body))
        gw = await b.gateway()
        cue1, cue2 = await b.peer("cue1"), await b.peer("cue2")
        pc5 = b.topology.address("sut.pc5")
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), pc5)
        cue2.node.send(ue_get(b"\x02", "cue2.msgin5g.example"), pc5)
        await wait_until(lambda: len(gw.cache) == 2)
        cue1.node.send(ue_get(b"\x11", "cue1.msgin5g.example"), pc5)
        await wait_until(lambda: gw.cache["cue1.msgin5g.example"].token == b"\x11")
        gw.send_bulk_now()
        await wait_until(lambda: bool(cue1.responses()) and bool(cue2.responses()))
        assert scms.requests()[0].uri_query() == ["ue-uri=cue2.msgin5g.example,cue1.msgin5g.example"]
        assert [r.token for r in cue1.responses()] == [b"\x11"]

    run(test, with_policy(list_encoding="csv"))


# -- the reference Gateway UE's own configuration (6.2.2.x: "should support" the client) --------


def own_answer(code: int, doc: Any = None) -> Callable[[CoapNode, CoapMessage, Address], None]:
    """An SCM-S answering every GET piggybacked with ``code`` (and ``doc`` as JSON)."""

    def answer(node: CoapNode, msg: CoapMessage, src: Address) -> None:
        options: tuple[tuple[int, bytes], ...] = ()
        payload = b""
        if doc is not None:
            options = ((OptionNumber.CONTENT_FORMAT, encode_uint(50)),)
            payload = json.dumps(doc).encode()
        node.reply(msg, CoapMessage(MessageType.ACK, code, 0, msg.token, options, payload), src)

    return answer


@dataclasses.dataclass
class OwnConfig:
    scms: list[tuple[CoapMessage, Address]]  # what the SCM-S received, with the source
    own: dict[str, Any]  # the gateway's own configuration afterwards
    pc5: list[CoapMessage]  # whatever reached a linked constrained UE
    uu: Address  # the gateway's network-side endpoint


def own_config_scenario(
    cls: type[ReferenceGateway], answer: Callable[[CoapNode, CoapMessage, Address], None] | None
) -> OwnConfig:
    """The gateway, with a linked UE, is asked for its own configuration."""
    holder: list[OwnConfig] = []

    async def test(b: Bench) -> None:
        scms = await b.peer("scms", answer)
        cue1 = await b.peer("cue1")
        gw = await b.gateway(cls)
        gw.establish_link(b.client("cue1"))
        gw.request_configuration()
        await asyncio.sleep(QUIET_S)
        pc5 = [m for m, _ in cue1.received]
        holder.append(OwnConfig(list(scms.received), gw.own_configuration(), pc5, b.topology.address("sut.uu")))

    run(test)
    return holder[0]


def test_gateway_requests_and_applies_its_own_configuration() -> None:
    """A CON GET from the network side for the single-UE resource with its own UE id; the 2.05
    document is applied; nothing goes to the PC5 side, nothing is cached."""
    doc = {"MSGin5G-Server-address": "coap://msgin5g-server.example:65401", "MSGin5G-UE-Service-id": "svc-gw"}
    out = own_config_scenario(ReferenceGateway, own_answer(Code.CONTENT, doc))
    ((req, src),) = [(m, a) for m, a in out.scms if is_request(m.code)]
    assert src == out.uu
    assert (req.mtype, req.code, len(req.token)) == (MessageType.CON, Code.GET, 4)
    assert req.uri_path() == PROFILE.single_path
    assert req.uri_query() == [f"ue-uri={PROFILE.sut_ue_address}"]
    assert recipient_of(req) == PROFILE.scm_s_address
    assert out.own == {"status": "2.05", "configuration": doc}
    assert out.pc5 == []


@pytest.mark.parametrize(
    ("code", "doc", "status"),
    [(Code.FORBIDDEN, None, "4.03"), (Code.NOT_FOUND, None, "4.04"), (Code.CONTENT, {"Segment-size": 0}, "invalid")],
)
def test_gateway_records_its_own_failures(code: Code, doc: Any, status: str) -> None:
    """4.03 and 4.04 are recorded; a document that fails the configuration schema is not applied."""
    out = own_config_scenario(ReferenceGateway, own_answer(code, doc))
    assert out.own == {"status": status, "configuration": None}
    assert out.pc5 == []


def test_gateway_ignores_a_stale_answer_to_its_own_request() -> None:
    """A 2.05 on another token, or from another endpoint than the SCM-S, changes nothing."""
    doc = {"MSGin5G-Server-address": "coap://x.example", "MSGin5G-UE-Service-id": "svc-gw"}

    async def test(b: Bench) -> None:
        scms = await b.peer("scms")
        relay = await b.peer("relay")
        gw = await b.gateway()
        gw.request_configuration()
        await wait_until(lambda: bool(scms.requests()))
        token = scms.requests()[0].token
        uu = b.topology.address("sut.uu")
        stale = CoapMessage(MessageType.CON, Code.CONTENT, 0, b"\xee" * 4, ((OptionNumber.CONTENT_FORMAT, b"\x32"),))
        scms.node.send(dataclasses.replace(stale, payload=json.dumps(doc).encode()), uu)
        relay.node.send(dataclasses.replace(stale, token=token, payload=json.dumps(doc).encode()), uu)
        await wait_until(lambda: sum("ignored" in line for line in gw.log) == 2)
        assert gw.own_configuration() == {"status": "none", "configuration": None}
        scms.node.send(dataclasses.replace(stale, token=token, payload=json.dumps(doc).encode()), uu)
        await wait_until(lambda: gw.own_configuration()["status"] == "2.05")

    run(test)


def test_adapter_runs_both_new_roles() -> None:
    """The reference adapter builds, starts and stops the gateway and the constrained UE."""

    async def test(b: Bench) -> None:
        adapter = ReferenceAdapter()
        await adapter.start(b.sut_env)
        try:
            gw = await adapter.open_case(b.world_for("gateway"))
            assert isinstance(gw.impl, ReferenceGateway)
            await gw.establish_link(b.client("cue1"))
            await gw.send_bulk_now()
            # its own configuration client: the same upper-tester operations as a constrained UE's
            assert await gw.read_configuration() == {"status": "none", "configuration": None}
            await gw.request_configuration()
            assert gw.impl.own_token is not None
            await gw.close()
            ue = await adapter.open_case(b.world_for("constrained-ue"))
            assert await ue.read_configuration() == {"status": "none", "configuration": None}
            assert set(ue.endpoints()) == {"sut.cue"}
            await ue.close()
        finally:
            await adapter.stop()

    run(test)


# -- the reference Constrained UE ---------------------------------------------------------------


def relay_response(
    token: bytes, code: int, recipient: str | None, doc: Any = None, mtype: MessageType = MessageType.CON
) -> CoapMessage:
    options: list[tuple[int, bytes]] = []
    if recipient is not None:
        options.append((PROFILE.recipient_option, recipient.encode()))
    payload = b""
    if doc is not None:
        options.append((OptionNumber.CONTENT_FORMAT, encode_uint(50)))
        payload = json.dumps(doc).encode()
    return CoapMessage(mtype, code, 0, token, tuple(sorted(options, key=lambda o: o[0])), payload)


def test_cue_request_on_the_wire_and_own_document_applied() -> None:
    """The GET as 6.2.1.2 builds it; 2.05 for another client or on another token is ignored,
    its own 2.05 is applied."""

    async def test(b: Bench) -> None:
        relay = await b.peer("relay")
        ue = await b.cue()
        ue.request_configuration()
        await wait_until(lambda: bool(relay.requests()))
        (req, src), *_ = relay.received
        assert src == b.topology.address("sut.cue")
        assert req.mtype == MessageType.CON and req.code == Code.GET and len(req.token) == 4
        assert recipient_of(req) == PROFILE.scm_s_address
        assert req.uri_path() == PROFILE.single_path
        assert req.uri_query() == [f"ue-uri={PROFILE.sut_ue_address}"]

        doc = PROFILE.document_for("sut")
        cue_at = b.topology.address("sut.cue")
        relay.node.send(relay_response(req.token, Code.CONTENT, "cue1.msgin5g.example", doc), cue_at)
        relay.node.send(relay_response(b"\xee" * 4, Code.CONTENT, PROFILE.sut_ue_address, doc), cue_at)
        relay.node.send(relay_response(req.token, Code.CONTENT, None, doc), cue_at)
        await wait_until(lambda: sum("ignored" in line for line in ue.log) == 3)
        assert ue.applied() == {"status": "none", "configuration": None}
        relay.node.send(relay_response(req.token, Code.CONTENT, PROFILE.sut_ue_address, doc), cue_at)
        await wait_until(lambda: ue.applied()["status"] == "2.05")
        assert ue.applied()["configuration"] == doc

    run(test)


@pytest.mark.parametrize("code", [Code.FORBIDDEN, Code.NOT_FOUND])
def test_cue_records_failure_codes(code: Code) -> None:
    """4.03 and 4.04 (NON here) are recorded without a configuration; 5.00 is ignored."""

    async def test(b: Bench) -> None:
        relay = await b.peer("relay")
        ue = await b.cue()
        ue.request_configuration()
        await wait_until(lambda: bool(relay.requests()))
        token = relay.requests()[0].token
        cue_at = b.topology.address("sut.cue")
        relay.node.send(relay_response(token, Code.INTERNAL_SERVER_ERROR, PROFILE.sut_ue_address), cue_at)
        await wait_until(lambda: any("ignored" in line for line in ue.log))
        relay.node.send(relay_response(token, code, PROFILE.sut_ue_address, mtype=MessageType.NON), cue_at)
        await wait_until(lambda: ue.applied()["status"] != "none")
        assert ue.applied() == {"status": code_to_str(code), "configuration": None}

    run(test)


def test_cue_applies_a_piggybacked_answer() -> None:
    """A 2.05 piggybacked on the relay's ACK is a response like any other."""
    doc = PROFILE.document_for("sut")

    def answer(node: CoapNode, msg: CoapMessage, src: Address) -> None:
        node.reply(msg, relay_response(msg.token, Code.CONTENT, PROFILE.sut_ue_address, doc), src)

    async def test(b: Bench) -> None:
        await b.peer("relay", answer)
        ue = await b.cue()
        ue.request_configuration()
        await wait_until(lambda: ue.applied()["status"] == "2.05")
        assert ue.applied()["configuration"] == doc

    run(test)


def test_cue_keeps_state_on_an_invalid_document() -> None:
    """A 2.05 whose document fails the configuration schema is not applied: the UE reports it as
    handled and invalid, with the configuration in force unchanged."""

    async def test(b: Bench) -> None:
        relay = await b.peer("relay")
        ue = await b.cue()
        ue.request_configuration()
        await wait_until(lambda: bool(relay.requests()))
        token = relay.requests()[0].token
        bad = {"Segment-size": 0}
        relay.node.send(relay_response(token, Code.CONTENT, PROFILE.sut_ue_address, bad), b.topology.address("sut.cue"))
        await wait_until(lambda: any("not applied" in line for line in ue.log))
        assert ue.applied() == {"status": "invalid", "configuration": None}

    run(test)


# -- faulty Gateway UE variants ------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    gateway: ReferenceGateway
    scms: list[CoapMessage]
    cues: dict[str, list[CoapMessage]]


def gateway_scenario(
    cls: type[ReferenceGateway], results: dict[str, str | None], *, blockwise: bool = False
) -> Outcome:
    """Three UEs (vendors acme/beta, one type), send_bulk_now, the SCM-S answering ``results``."""
    body = bulk_body(results)
    szx = None
    if blockwise:
        body, szx = three_blocks(body)
    holder: list[Outcome] = []

    async def test(b: Bench) -> None:
        scms = await b.peer("scms", scm_answer(body, szx=szx))
        gw = await b.gateway(cls)
        peers = {n: await b.peer(n) for n in ("cue1", "cue2", "cue3")}
        vendors = {"cue1": "acme", "cue2": "beta", "cue3": None}
        for i, (n, p) in enumerate(peers.items(), 1):
            msg = ue_get(bytes([i]), PROFILE.client_address(n), vendor=vendors[n], ue_type="t1")
            p.node.send(msg, b.topology.address("sut.pc5"))
        await wait_until(lambda: len(gw.cache) == 3)
        gw.send_bulk_now()
        await wait_until(lambda: sum(bool(p.responses()) for p in peers.values()) >= 2)
        await asyncio.sleep(QUIET_S)
        holder.append(Outcome(gw, scms.requests(), {n: p.responses() for n, p in peers.items()}))

    run(test)
    return holder[0]


ALL_OK: dict[str, str | None] = {"cue1": "2.05", "cue2": "2.05", "cue3": "2.05"}


def ids_in(msg: CoapMessage) -> list[str]:
    return [q.split("=", 1)[1] for q in msg.uri_query() if q.startswith("ue-uri=")]


def test_reference_passes_the_faulty_scenario() -> None:
    """The control: the same scenario against the reference shows none of the defects below."""
    out = gateway_scenario(ReferenceGateway, {"cue1": "2.05", "cue2": "4.03", "cue3": "2.05"}, blockwise=True)
    assert len(out.scms) == 3
    assert ids_in(out.scms[0]) == [PROFILE.client_address(n) for n in ("cue1", "cue2", "cue3")]
    assert [q for q in out.scms[0].uri_query() if q.startswith("ue-vendor=")] == ["ue-vendor=acme", "ue-vendor=beta"]
    assert out.scms[0].uri_path() == PROFILE.bulk_path
    assert {n: [(r.code, recipient_of(r)) for r in rs] for n, rs in out.cues.items()} == {
        n: [(c, PROFILE.client_address(n))]
        for n, c in (("cue1", Code.CONTENT), ("cue2", Code.FORBIDDEN), ("cue3", Code.CONTENT))
    }


def test_gw_omits_one_ue() -> None:
    out = gateway_scenario(faulty_gateway.OmitsOneUe, ALL_OK)
    assert ids_in(out.scms[0]) == ["cue1.msgin5g.example", "cue2.msgin5g.example"]


def test_gw_lists_one_twice() -> None:
    out = gateway_scenario(faulty_gateway.ListsOneTwice, ALL_OK)
    assert ids_in(out.scms[0]).count("cue1.msgin5g.example") == 2


def test_gw_drops_vendor() -> None:
    out = gateway_scenario(faulty_gateway.DropsVendor, ALL_OK)
    assert not [q for q in out.scms[0].uri_query() if q.startswith("ue-vendor=")]
    assert "ue-type=t1" in out.scms[0].uri_query()


def test_gw_no_bulk_flag() -> None:
    out = gateway_scenario(faulty_gateway.NoBulkFlag, ALL_OK)
    assert out.scms[0].uri_path() == PROFILE.single_path


def test_gw_everything_to_everyone() -> None:
    out = gateway_scenario(faulty_gateway.EverythingToEveryone, ALL_OK)
    assert all(len(rs) == 3 for rs in out.cues.values())
    docs = [json.loads(r.payload) for r in out.cues["cue1"]]
    assert PROFILE.document_for("cue2") in docs


def test_gw_loses_one_response() -> None:
    out = gateway_scenario(faulty_gateway.LosesOneResponse, ALL_OK)
    assert out.cues["cue3"] == []
    assert len(out.cues["cue1"]) == len(out.cues["cue2"]) == 1


def test_gw_wrong_recipient() -> None:
    out = gateway_scenario(faulty_gateway.WrongRecipient, ALL_OK)
    assert recipient_of(out.cues["cue1"][0]) == "cue2.msgin5g.example"
    assert recipient_of(out.cues["cue3"][0]) == "cue1.msgin5g.example"
    assert out.cues["cue1"][0].token == b"\x01"


def test_gw_fans_out_errors() -> None:
    out = gateway_scenario(faulty_gateway.FansOutErrors, {"cue1": "2.05", "cue2": "4.03", "cue3": "4.04"})
    # the UEs with an error result all get the first error; the one with a document keeps it
    assert [rs[0].code for rs in out.cues.values()] == [Code.CONTENT, Code.FORBIDDEN, Code.FORBIDDEN]


def test_gw_stops_blockwise() -> None:
    out = gateway_scenario(faulty_gateway.StopsBlockwise, ALL_OK, blockwise=True)
    assert len(out.scms) == 1
    assert {rs[0].code for rs in out.cues.values()} == {Code.BAD_GATEWAY}


def test_gw_ignores_max_wait() -> None:
    async def test(b: Bench) -> None:
        scms = await b.peer("scms", scm_answer(bulk_body({"cue1": "2.05"})))
        await b.gateway(faulty_gateway.IgnoresMaxWait)
        cue1 = await b.peer("cue1")
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), b.topology.address("sut.pc5"))
        await asyncio.sleep(0.1 + 3 * QUIET_S)
        assert not scms.requests() and not cue1.responses()

    run(test, with_policy(max_wait_ms=100))


def test_gw_ignores_min_batch() -> None:
    """With a full batch (min_batch 2) the faulty gateway still waits for the max_wait timer."""

    async def test(b: Bench) -> None:
        scms = await b.peer("scms", scm_answer(bulk_body({"cue1": "2.05", "cue2": "2.05"})))
        await b.gateway(faulty_gateway.IgnoresMinBatch)
        cue1, cue2 = await b.peer("cue1"), await b.peer("cue2")
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), b.topology.address("sut.pc5"))
        cue2.node.send(ue_get(b"\x02", "cue2.msgin5g.example"), b.topology.address("sut.pc5"))
        await asyncio.sleep(0.2)
        assert not scms.requests()  # a correct gateway would have sent the bulk GET at once
        for _ in range(300):  # the timer (600 ms after the first request) still sends it; bounded 3 s
            if scms.requests():
                break
            await asyncio.sleep(0.01)
        assert len(scms.requests()) == 1

    run(test, with_policy(min_batch=2, max_wait_ms=600))


def test_gw_copies_to_idle_ue() -> None:
    """Each split 2.05 also reaches the address cue100 would have, which never asked."""

    async def test(b: Bench) -> None:
        await b.peer("scms", scm_answer(bulk_body({"cue1": "2.05"})))
        idle = await b.peer("cue100")
        cue1 = await b.peer("cue1")
        gw = await b.gateway(faulty_gateway.CopiesToIdleUe)
        cue1.node.send(ue_get(b"\x01", "cue1.msgin5g.example"), b.topology.address("sut.pc5"))
        await wait_until(lambda: len(gw.cache) == 1)
        gw.send_bulk_now()
        await wait_until(lambda: bool(idle.responses()))
        assert [m.code for m in cue1.responses()] == [Code.CONTENT]
        assert idle.responses()[0].payload == cue1.responses()[0].payload

    run(test)


def test_gw_float_numbers() -> None:
    """Every integer of a UE's document is written as a float: equal under ==, not by type."""
    out = gateway_scenario(faulty_gateway.FloatNumbers, ALL_OK)
    body = out.cues["cue1"][0].payload
    doc = json.loads(body)
    assert doc == PROFILE.document_for("cue1")  # Python's == cannot tell them apart
    ints = [k for k, v in PROFILE.document_for("cue1").items() if isinstance(v, int) and not isinstance(v, bool)]
    assert ints and all(isinstance(doc[k], float) for k in ints)


def test_gw_duplicate_keys() -> None:
    """Each UE's document repeats its first member (with a decoy value) before the real one."""
    out = gateway_scenario(faulty_gateway.DuplicateKeys, ALL_OK)
    body = out.cues["cue1"][0].payload
    first = next(iter(PROFILE.document_for("cue1")))
    assert body.count(json.dumps(first).encode()) == 2
    assert json.loads(body) == PROFILE.document_for("cue1")  # a lenient parser keeps the last


def test_gw_never_asks_own_config() -> None:
    out = own_config_scenario(faulty_gateway.NeverAsksOwnConfig, own_answer(Code.NOT_FOUND))
    assert out.scms == [] and out.own == {"status": "none", "configuration": None}


def test_gw_own_config_no_ue_id() -> None:
    out = own_config_scenario(faulty_gateway.OwnConfigNoUeId, own_answer(Code.NOT_FOUND))
    (req,) = [m for m, _ in out.scms if is_request(m.code)]
    assert req.uri_path() == PROFILE.single_path and req.uri_query() == []
    assert out.own["status"] == "4.04"


def test_gw_own_config_on_bulk_path() -> None:
    out = own_config_scenario(faulty_gateway.OwnConfigOnBulkPath, own_answer(Code.NOT_FOUND))
    (req,) = [m for m, _ in out.scms if is_request(m.code)]
    assert req.uri_path() == PROFILE.bulk_path
    assert req.uri_query() == [f"ue-uri={PROFILE.sut_ue_address}"]


def test_every_gateway_variant_is_tested() -> None:
    assert len(faulty_gateway.VARIANTS) >= 8
    tested = {name[len("test_") :].replace("_", "-") for name in globals() if name.startswith("test_gw_")}
    assert tested == set(faulty_gateway.VARIANTS)
    assert all(name.startswith("gw-") for name in faulty_gateway.VARIANTS)


# -- faulty Constrained UE variants -------------------------------------------------------------


def cue_scenario(
    cls: type[ReferenceConstrainedUE], answer: Callable[[bytes], list[CoapMessage]]
) -> tuple[list[tuple[CoapMessage, Address]], dict[str, Any]]:
    """The UE requests; the relay peer sends ``answer(token)`` back; what the relay saw and the
    applied state are returned."""
    holder: list[tuple[list[tuple[CoapMessage, Address]], dict[str, Any]]] = []

    async def test(b: Bench) -> None:
        relay = await b.peer("relay")
        ue = await b.cue(cls)
        ue.request_configuration()
        await wait_until(lambda: bool(relay.requests()))
        req, src = relay.received[0]
        for msg in answer(req.token):
            relay.node.send(msg, src)
        await asyncio.sleep(QUIET_S)
        holder.append((list(relay.received), ue.applied()))

    run(test)
    return holder[0]


def test_cue_applies_others() -> None:
    doc = PROFILE.document_for("cue1")
    _, applied = cue_scenario(
        faulty_cue.AppliesOthers, lambda t: [relay_response(t, Code.CONTENT, "cue1.msgin5g.example", doc)]
    )
    assert applied == {"status": "2.05", "configuration": doc}


def test_cue_wrong_port() -> None:
    seen, _ = cue_scenario(faulty_cue.WrongPort, lambda t: [])
    assert seen[0][1][1] == PROFILE.alt_port


def test_cue_no_recipient() -> None:
    seen, _ = cue_scenario(faulty_cue.NoRecipient, lambda t: [])
    assert not seen[0][0].has_option(PROFILE.recipient_option)


def test_cue_ignores_403() -> None:
    _, applied = cue_scenario(
        faulty_cue.Ignores403, lambda t: [relay_response(t, Code.FORBIDDEN, PROFILE.sut_ue_address)]
    )
    assert applied == {"status": "none", "configuration": None}


def test_cue_also_direct_to_scms() -> None:
    """The GET goes to the relay and, besides, straight to the SCM-S's address."""

    async def test(b: Bench) -> None:
        relay, scms = await b.peer("relay"), await b.peer("scms")
        ue = await b.cue(faulty_cue.AlsoDirectToScms)
        ue.request_configuration()
        await wait_until(lambda: bool(relay.requests()) and bool(scms.requests()))
        assert relay.requests()[0].token == scms.requests()[0].token

    run(test)


def test_cue_applies_invalid() -> None:
    """A 2.05 whose document fails the configuration schema is applied anyway."""
    bad = {"MSGin5G-Server-address": "coap://x.example", "Segment-size": "large"}
    _, applied = cue_scenario(
        faulty_cue.AppliesInvalid, lambda t: [relay_response(t, Code.CONTENT, PROFILE.sut_ue_address, bad)]
    )
    assert applied == {"status": "2.05", "configuration": bad}


def test_cue_repeats_get() -> None:
    """100 ms after its GET, and after the 2.05 it applied, the same request goes out again: a new
    message (another Message ID), the same token."""
    doc = PROFILE.document_for("sut")
    seen, applied = cue_scenario(
        faulty_cue.RepeatsGet, lambda t: [relay_response(t, Code.CONTENT, PROFILE.sut_ue_address, doc)]
    )
    gets = [m for m, _ in seen if is_request(m.code)]
    assert len(gets) == 2 and gets[0].token == gets[1].token and gets[0].mid != gets[1].mid
    assert applied == {"status": "2.05", "configuration": doc}


def test_cue_direct_to_scms() -> None:
    """The GET goes to the SCM-S's address only; the relay sees nothing."""

    async def test(b: Bench) -> None:
        relay, scms = await b.peer("relay"), await b.peer("scms")
        ue = await b.cue(faulty_cue.DirectToScms)
        ue.request_configuration()
        await wait_until(lambda: bool(scms.requests()))
        await asyncio.sleep(QUIET_S)
        assert relay.received == []
        assert scms.requests()[0].uri_path() == PROFILE.single_path

    run(test)


def test_every_cue_variant_is_tested() -> None:
    assert len(faulty_cue.VARIANTS) >= 4
    tested = {name[len("test_") :].replace("_", "-") for name in globals() if name.startswith("test_cue_")}
    assert set(faulty_cue.VARIANTS) <= tested
    assert all(name.startswith("cue-") for name in faulty_cue.VARIANTS)
