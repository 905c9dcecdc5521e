"""The ``reference`` adapter: the embedded reference SUT, in-process, on the run's event loop.

It plays whichever role a test case needs (``reset(role)``): the Relay UE (TS 24.538 6.2.2.1),
the Gateway UE (6.2.2.x, bulk configuration) or the Constrained UE with MSGin5G Client (6.2.2.2).
Faulty variants are the same adapter with one implementation class replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from msgin5g_conformance.wire.capture.record import Address
from sut_adapters.base import (
    LINK_CONTROL,
    READ_CONFIG,
    TRIGGER_BULK,
    TRIGGER_REQUEST,
    ClientInfo,
    NotSupported,
    SutEnvironment,
)

from .cue import ReferenceConstrainedUE
from .gateway import ReferenceGateway
from .relay import ReferenceRelay


class _Implementation(Protocol):
    log: list[str]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ReferenceAdapter:
    """Runs the reference implementation of the role each test case needs."""

    name = "reference"
    roles = frozenset({"relay", "gateway", "constrained-ue"})
    capabilities = frozenset({LINK_CONTROL, TRIGGER_BULK, TRIGGER_REQUEST, READ_CONFIG})

    def __init__(
        self,
        name: str | None = None,
        relay_class: type[ReferenceRelay] = ReferenceRelay,
        gateway_class: type[ReferenceGateway] = ReferenceGateway,
        cue_class: type[ReferenceConstrainedUE] = ReferenceConstrainedUE,
    ) -> None:
        if name:
            self.name = name
        self.relay_class = relay_class
        self.gateway_class = gateway_class
        self.cue_class = cue_class
        self.env: SutEnvironment | None = None
        self.role = "relay"
        self.impl: ReferenceRelay | ReferenceGateway | ReferenceConstrainedUE | None = None

    async def start(self, env: SutEnvironment) -> None:
        self.env = env

    async def reset(self, role: str) -> None:
        # A fresh implementation per test case: no link, no cache, no pending exchange.
        assert self.env is not None
        await self.stop()
        topo = self.env.topology
        self.role = role
        if role == "relay":
            self.impl = self.relay_class(self.env, topo.address("sut.pc5"), topo.address("sut.uu"))
        elif role == "gateway":
            self.impl = self.gateway_class(self.env, topo.address("sut.pc5"), topo.address("sut.uu"))
        elif role == "constrained-ue":
            self.impl = self.cue_class(self.env, topo.address("sut.cue"))
        else:
            raise NotSupported(f"no reference implementation of role {role!r}")
        await self.impl.start()

    async def stop(self) -> None:
        if self.impl is not None:
            impl, self.impl = self.impl, None
            await impl.stop()

    def endpoints(self) -> Mapping[str, Address]:
        assert self.env is not None
        topo = self.env.topology
        if self.role == "constrained-ue":
            return {"sut.cue": topo.address("sut.cue")}
        return {"sut.pc5": topo.address("sut.pc5"), "sut.uu": topo.address("sut.uu")}

    def _as(self, cls: type[Any], what: str) -> Any:
        if not isinstance(self.impl, cls):
            raise NotSupported(f"{what} is not an operation of the {self.role} role")
        return self.impl

    async def establish_link(self, client: ClientInfo) -> None:
        impl = self.impl
        if isinstance(impl, ReferenceRelay | ReferenceGateway):
            impl.establish_link(client)
        else:
            raise NotSupported(f"establish_link is not an operation of the {self.role} role")

    async def release_link(self, client: ClientInfo) -> None:
        impl = self.impl
        if isinstance(impl, ReferenceRelay | ReferenceGateway):
            impl.release_link(client)
        else:
            raise NotSupported(f"release_link is not an operation of the {self.role} role")

    async def request_configuration(self) -> None:
        self._as(ReferenceConstrainedUE, "request_configuration").request_configuration()

    async def send_bulk_now(self) -> None:
        self._as(ReferenceGateway, "send_bulk_now").send_bulk_now()

    async def read_configuration(self) -> Any:
        return self._as(ReferenceConstrainedUE, "read_configuration").applied()

    def log_text(self) -> str:
        return "\n".join(self.impl.log) if self.impl is not None else ""
