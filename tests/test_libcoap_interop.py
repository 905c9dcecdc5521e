"""Interoperability with an independent CoAP stack: libcoap's coap-client as a constrained UE.

coap-client sends the configuration GET (recipient option as a text option, ``-O number,text``)
from cue1's address and port 65401 through the reference Relay UE; a tester SCM-S answers with a
2.05 naming cue1. The harness records the wire (the live sniffer on ``lo`` when available, the
SCM-S's tap otherwise) and parses every datagram strictly.

With the default profile (recipient option 65003, critical) libcoap does what RFC 7252 5.4.1
requires of a client that does not know the option: it rejects the relayed confirmable 2.05 with
a Reset. With an elective experimental number (65002) the same exchange completes and coap-client
prints the configuration: the relay carries whatever the profile names.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.pcap import write_pcap
from msgin5g_conformance.wire.capture.record import Address, Datagram, Recorder
from msgin5g_conformance.wire.capture.sniff import LoopbackSniffer, sniff_available
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.endpoint import CoapTimers, Endpoint
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, encode_uint
from msgin5g_conformance.world.profile import Profile, load_profile
from msgin5g_conformance.world.topology import CaseAddresses, claim_block
from sut_adapters.base import CaseWorld, ClientInfo, SutEnvironment
from sut_adapters.reference import ReferenceAdapter

from .conftest import DEFAULT_PROFILE

# Debian's libcoap3-bin installs the client under its TLS flavour's name only.
CLIENT = next(
    (
        found
        for name in ("coap-client", "coap-client-notls", "coap-client-gnutls", "coap-client-openssl")
        if (found := shutil.which(name))
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    CLIENT is None, reason="libcoap's coap-client is not installed (apt-get install libcoap3-bin)"
)

CLIENT_WAIT_S = 3  # coap-client -B: how long it waits for a response
BOUND_S = 20.0  # the whole exchange, whatever happens


@dataclass
class Wire:
    """What one exchange left behind: every datagram (strictly parsed), the addresses, coap-client's output."""

    messages: list[tuple[Datagram, CoapMessage]]
    client: Address
    pc5: Address
    uu: Address
    scms: Address
    stdout: str
    captured_by: str

    def between(self, src: Address, dst: Address) -> list[CoapMessage]:
        return [m for d, m in self.messages if d.src == src and d.dst == dst]


async def _exchange(profile: Profile, pcap: Path) -> Wire:
    loop = asyncio.get_running_loop()
    block = claim_block(profile.port)
    recorder = Recorder()
    recorder.bind_loop(loop)
    topology = CaseAddresses(block.open_space(256), profile.port, profile.alt_port, ("scms",), ())
    relay = ReferenceAdapter()
    document = json.dumps(profile.document_for("cue1"), separators=(",", ":")).encode()
    sniffing, _ = sniff_available()
    sniffer = LoopbackSniffer(recorder, network=block.network) if sniffing else None

    def scm_s(node: Endpoint, msg: CoapMessage, src: Address) -> CoapMessage:
        options = [
            (profile.recipient_option, profile.client_address("cue1").encode()),
            (OptionNumber.CONTENT_FORMAT, encode_uint(50)),
        ]
        return CoapMessage(MessageType.CON, Code.CONTENT, 0, msg.token, tuple(sorted(options)), document)

    def record(src: Address, dst: Address, data: bytes, when: float) -> int | None:
        d = recorder.append(src, dst, data, when)
        return d.seq if d is not None else None

    scms = Endpoint("scms", topology.address("scms"), CoapTimers(0.15, 2), None if sniffing else record, scm_s)
    world = CaseWorld(
        "relay",
        {n: topology.address(n) for n in ("sut.pc5", "sut.uu")},
        {n: topology.address(n) for n in ("scms", "relay")},
        lambda address: None,
    )
    case = None
    try:
        await relay.start(SutEnvironment(profile, CoapTimers(0.15, 2), world.endpoints))
        case = await relay.open_case(world)
        cue1 = topology.address("cue1")
        await case.establish_link(ClientInfo("cue1", profile.client_address("cue1"), cue1))
        scms.open()
        if sniffer is not None:
            await loop.run_in_executor(None, sniffer.start)
        pc5 = topology.address("sut.pc5")
        uri = f"coap://{pc5[0]}:{pc5[1]}/{'/'.join(profile.single_path)}?ue-uri={profile.client_address('cue1')}"
        assert CLIENT is not None
        argv = [CLIENT, "-m", "get", "-a", cue1[0], "-p", str(cue1[1]), "-U", "-B", str(CLIENT_WAIT_S)]
        argv += ["-O", f"{profile.recipient_option},{profile.scm_s_address}", uri]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), CLIENT_WAIT_S + 5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await asyncio.wait_for(proc.wait(), 5)
        await asyncio.sleep(0.05)  # the client's last ACK or RST is on its way through lo
    finally:
        if sniffer is not None and sniffer.running:
            await loop.run_in_executor(None, sniffer.stop)
        scms.close()
        if case is not None:
            await case.close()
        await relay.stop()
        block.release()
    write_pcap(str(pcap), recorder.datagrams)
    # Strict parse of every datagram: a malformed one fails the test here.
    messages = [(d, codec.parse(d.data)) for d in recorder.datagrams]
    return Wire(
        messages,
        cue1,
        pc5,
        topology.address("sut.uu"),
        topology.address("scms"),
        out.decode("utf-8", "replace"),
        "sniff" if sniffing else "tap",
    )


def exchange(profile: Profile, pcap: Path) -> Wire:
    return asyncio.run(asyncio.wait_for(_exchange(profile, pcap), BOUND_S))


def check_relayed_both_ways(wire: Wire, profile: Profile) -> tuple[CoapMessage, CoapMessage]:
    """The GET reached the SCM-S intact and the 2.05 came back to coap-client's address."""
    (uplink,) = [m for m in wire.between(wire.uu, wire.scms) if m.code == Code.GET]
    assert uplink.option_values(profile.recipient_option) == [profile.scm_s_address.encode()]
    assert uplink.uri_path() == profile.single_path
    assert uplink.uri_query() == [f"ue-uri={profile.client_address('cue1')}"]
    answers = [m for m in wire.between(wire.scms, wire.uu) if m.code == Code.CONTENT]
    assert len(answers) == 1 and answers[0].token == uplink.token
    if wire.captured_by == "tap":  # without the sniffer only the SCM-S's own datagrams are seen
        pytest.skip("live capture unavailable (needs root or CAP_NET_RAW): only the SCM-S leg was judged")
    (request,) = [m for m in wire.between(wire.client, wire.pc5) if m.code == Code.GET]
    assert request.option_values(profile.recipient_option) == [profile.scm_s_address.encode()]
    assert uplink.token == request.token and uplink.options == request.options
    (downlink,) = [m for m in wire.between(wire.pc5, wire.client) if m.code == Code.CONTENT]
    assert downlink.token == request.token
    assert downlink.option_values(profile.recipient_option) == [profile.client_address("cue1").encode()]
    assert downlink.content_format() == 50 and downlink.payload == answers[0].payload
    return request, downlink


def test_coap_client_rejects_the_critical_recipient_option(tmp_path: Path) -> None:
    """With option 65003 the relayed 2.05 reaches coap-client, which resets it (RFC 7252 5.4.1)."""
    profile = load_profile()
    assert profile.recipient_option == 65003
    wire = exchange(profile, tmp_path / "interop-65003.pcap")
    _, downlink = check_relayed_both_ways(wire, profile)
    replies = wire.between(wire.client, wire.pc5)
    assert any(m.mtype == MessageType.RST and m.mid == downlink.mid for m in replies), replies
    assert downlink.payload.decode() not in wire.stdout


def test_coap_client_receives_its_configuration_with_an_elective_option(tmp_path: Path) -> None:
    """With the elective option 65002 coap-client acknowledges the relayed 2.05 and prints the payload."""
    data = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    data["recipient_option"]["number"] = 65002
    data["name"] = "elective-recipient-option"
    data["config_schema"] = str(DEFAULT_PROFILE.parent.parent / "schemas" / "ue-config.schema.json")
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    profile = load_profile(tmp_path / "profile.yaml")
    wire = exchange(profile, tmp_path / "interop-65002.pcap")
    assert json.loads(wire.stdout) == profile.document_for("cue1")
    _, downlink = check_relayed_both_ways(wire, profile)
    replies = wire.between(wire.client, wire.pc5)
    assert any(m.mtype == MessageType.ACK and m.code == 0 and m.mid == downlink.mid for m in replies), replies
