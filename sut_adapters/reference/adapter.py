"""The ``reference`` adapter: the embedded reference SUT, in-process, on the run's event loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgin5g_conformance.capture.record import Address
from sut_adapters.base import (
    LINK_CONTROL,
    ClientInfo,
    NotSupported,
    SutEnvironment,
)

from .relay import ReferenceRelay


class ReferenceAdapter:
    """Runs the reference Relay UE; faulty variants pass another relay class."""

    name = "reference"
    roles = frozenset({"relay"})
    capabilities = frozenset({LINK_CONTROL})
    relay_class: type[ReferenceRelay] = ReferenceRelay

    def __init__(self, name: str | None = None, relay_class: type[ReferenceRelay] | None = None) -> None:
        if name:
            self.name = name
        if relay_class is not None:
            self.relay_class = relay_class
        self.env: SutEnvironment | None = None
        self.relay: ReferenceRelay | None = None

    async def start(self, env: SutEnvironment) -> None:
        self.env = env
        await self._start_relay()

    async def _start_relay(self) -> None:
        assert self.env is not None
        topo = self.env.topology
        self.relay = self.relay_class(self.env, topo.address("sut.pc5"), topo.address("sut.uu"))
        await self.relay.start()

    async def reset(self) -> None:
        # A fresh relay per test case: no link, no pending exchange, no retransmission left over.
        if self.relay is not None:
            await self.relay.stop()
        await self._start_relay()

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None

    def endpoints(self) -> Mapping[str, Address]:
        assert self.env is not None
        topo = self.env.topology
        return {"sut.pc5": topo.address("sut.pc5"), "sut.uu": topo.address("sut.uu")}

    async def establish_link(self, client: ClientInfo) -> None:
        assert self.relay is not None
        self.relay.establish_link(client)

    async def release_link(self, client: ClientInfo) -> None:
        assert self.relay is not None
        self.relay.release_link(client)

    async def request_configuration(self) -> None:
        raise NotSupported("the reference SUT has no constrained UE role yet")

    async def send_bulk_now(self) -> None:
        raise NotSupported("the reference SUT has no gateway role yet")

    async def read_configuration(self) -> Any:
        raise NotSupported("the reference SUT has no constrained UE role yet")

    def log_text(self) -> str:
        return "\n".join(self.relay.log) if self.relay is not None else ""
