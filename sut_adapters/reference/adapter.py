"""The ``reference`` adapter: the embedded reference SUT, in-process, on the run's event loop.

It plays whichever role a test case needs: the Relay UE (TS 24.538 6.2.2.1), the Gateway UE
(6.2.2.x, bulk configuration) or the Constrained UE with MSGin5G Client (6.2.2.2). Each test
case gets a fresh implementation on the addresses the harness assigns to that case, so several
cases can be open at once (one in its late window while the next runs). Faulty and conformant
variants are the same adapter with one implementation class replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.spec.requirements import OPTIONS
from msgin5g_conformance.world import nodes
from sut_adapters.base import (
    LINK_CONTROL,
    READ_CONFIG,
    TRIGGER_BULK,
    TRIGGER_REQUEST,
    Address,
    CaseWorld,
    ClientInfo,
    NotSupported,
    SutEnvironment,
    protocol_mismatches,
)
from sut_adapters.reference.coapnode import FastTuning

from .common import RoleContext
from .cue import ReferenceConstrainedUE
from .gateway import ReferenceGateway
from .relay import ReferenceRelay

Implementation = ReferenceRelay | ReferenceGateway | ReferenceConstrainedUE


class ReferenceCase:
    """One reference implementation serving one test case."""

    def __init__(self, role: str, impl: Implementation, endpoints: Mapping[str, Address]) -> None:
        self.role = role
        self.impl = impl
        self._endpoints = dict(endpoints)

    def endpoints(self) -> Mapping[str, Address]:
        return self._endpoints

    def _as(self, cls: type[Any] | tuple[type[Any], ...], what: str) -> Any:
        if not isinstance(self.impl, cls):
            raise NotSupported(f"{what} is not an operation of the {self.role} role")
        return self.impl

    async def establish_link(self, client: ClientInfo) -> None:
        self._as((ReferenceRelay, ReferenceGateway), "establish_link").establish_link(client)

    async def release_link(self, client: ClientInfo) -> None:
        self._as((ReferenceRelay, ReferenceGateway), "release_link").release_link(client)

    async def request_configuration(self) -> None:
        # The constrained UE's request via the relay (6.2.2.2), or the Gateway UE's own (6.2.2.x).
        self._as((ReferenceConstrainedUE, ReferenceGateway), "request_configuration").request_configuration()

    async def send_bulk_now(self) -> None:
        self._as(ReferenceGateway, "send_bulk_now").send_bulk_now()

    async def read_configuration(self) -> Any:
        impl = self._as((ReferenceConstrainedUE, ReferenceGateway), "read_configuration")
        return impl.own_configuration() if isinstance(impl, ReferenceGateway) else impl.applied()

    def log_text(self) -> str:
        return "\n".join(self.impl.log)

    async def close(self) -> None:
        await self.impl.stop()


class ReferenceAdapter:
    """Runs the reference implementation of the role each test case needs."""

    name = "reference"
    roles = frozenset({"relay", "gateway", "constrained-ue"})
    capabilities = frozenset({LINK_CONTROL, TRIGGER_BULK, TRIGGER_REQUEST, READ_CONFIG})
    options = frozenset(OPTIONS)  # the reference gateway bulks (6.2.2.x's MAY)
    instances = 64  # each case on its own addresses; bounded only to keep sockets in check

    def __init__(
        self,
        name: str | None = None,
        relay_class: type[ReferenceRelay] = ReferenceRelay,
        gateway_class: type[ReferenceGateway] = ReferenceGateway,
        cue_class: type[ReferenceConstrainedUE] = ReferenceConstrainedUE,
    ) -> None:
        if name:
            self.name = name
        self.classes: dict[str, type[Implementation]] = {
            "relay": relay_class,
            "gateway": gateway_class,
            "constrained-ue": cue_class,
        }
        self.env: SutEnvironment | None = None

    @property
    def protocol(self) -> dict[str, Any]:
        """What the implementations have built in (a variant may implement one reading only)."""
        out: dict[str, Any] = {}
        for cls in self.classes.values():
            for key, value in cls.PROTOCOL.items():
                out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
        return out

    async def start(self, env: SutEnvironment) -> None:
        mismatches = protocol_mismatches(self.protocol, env.profile)
        if mismatches:
            raise HarnessError(
                f"protocol mismatch between SUT {self.name} and the run's profile: " + "; ".join(mismatches)
            )
        self.env = env

    async def open_case(self, world: CaseWorld) -> ReferenceCase:
        # A fresh implementation per test case: no link, no cache, no pending exchange.
        assert self.env is not None, "start() first"
        cls = self.classes.get(world.role)
        if cls is None:
            raise NotSupported(f"no reference implementation of role {world.role!r}")
        ctx = RoleContext(self.env.profile, FastTuning.of(self.env.timers), world)
        impl = cls(ctx)
        await impl.start()
        mine = {n: world.endpoints[n] for n in nodes.SUT_ENDPOINTS[world.role]}
        return ReferenceCase(world.role, impl, mine)

    async def stop(self) -> None:
        self.env = None

    def log_text(self) -> str:
        return ""  # each case's implementation keeps its own log
