"""The adapter protocol between the harness and a system under test (after httpx's transports).

An adapter starts and stops the SUT, resets it between test cases, says where its endpoints
are, which roles and capabilities it offers, and performs upper-tester operations. An
operation the SUT does not offer raises :class:`NotSupported`, which the runner turns into the
verdict ``not-applicable`` with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from msgin5g_conformance.coapnode import FastTuning
from msgin5g_conformance.errors import NotApplicable
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.world.profile import Profile
from msgin5g_conformance.world.topology import Topology

# Upper-tester capabilities a test case may require (schema: $defs/capability).
LINK_CONTROL = "link-control"
TRIGGER_REQUEST = "trigger-request"
TRIGGER_BULK = "trigger-bulk"
READ_CONFIG = "read-config"


class NotSupported(NotApplicable):
    """The SUT does not offer this operation."""


@dataclass(frozen=True)
class ClientInfo:
    """A constrained UE as the SUT knows it: node name, recipient address string, UDP endpoint."""

    node: str
    address: str
    endpoint: Address


@dataclass(frozen=True)
class SutEnvironment:
    """What the harness tells a SUT at start: the profile and where the tester's nodes live."""

    profile: Profile
    topology: Topology
    tuning: FastTuning
    client_lookup: Callable[[str], ClientInfo | None]

    def client(self, node: str) -> ClientInfo:
        info = ClientInfo(node, self.profile.client_address(node), self.topology.address(node))
        return info

    @property
    def scm_s(self) -> Address:
        return self.topology.address("scms")


@runtime_checkable
class SutAdapter(Protocol):
    """What every kind of SUT offers the runner."""

    name: str
    roles: frozenset[str]
    capabilities: frozenset[str]

    async def start(self, env: SutEnvironment) -> None:
        """Bring the SUT up (bounded); raise HarnessError if it cannot start."""

    async def reset(self, role: str) -> None:
        """Return to the initial state before a test case and act in ``role`` (relay, gateway or
        constrained-ue): no links, no cached requests, nothing applied."""

    async def stop(self) -> None:
        """Shut down; leave no socket, task or process behind."""

    def endpoints(self) -> Mapping[str, Address]:
        """The SUT's endpoints by node name (``sut.pc5``, ``sut.uu``, ``sut.cue``)."""

    async def establish_link(self, client: ClientInfo) -> None:
        """Establish a one-to-one ProSe link with ``client`` (or make the SUT believe it has)."""

    async def release_link(self, client: ClientInfo) -> None:
        """Release the one-to-one ProSe link with ``client``."""

    async def request_configuration(self) -> None:
        """Make the constrained UE send its configuration request now."""

    async def send_bulk_now(self) -> None:
        """Make the gateway send its cached requests now."""

    async def read_configuration(self) -> Any:
        """The configuration (or failure code) the constrained UE applied."""

    def log_text(self) -> str:
        """The SUT's log since the last reset (evidence in reports)."""
