"""Where every node lives: one loopback /16 per run, a fresh address range per test case.

Every MSGin5G endpoint binds UDP 65401 (the profile's port) on its own 127.0.0.0/8 address
(Linux routes the whole /8 to ``lo`` with no set-up). A run, and each pytest-xdist worker,
claims a ``127.A.0.0/16`` block with an exclusive file lock held for its lifetime, so no two runs
share a socket even though aiocoap sets SO_REUSEPORT.

Inside the block each test case gets its own :class:`CaseSpace`: one or more consecutive /24s
that no other case of the run uses while it is open, handed out round-robin so that a range is
reused as late as possible. A datagram is therefore attributed to a case by its addresses alone:
a late datagram of one case lands in that case's range, never in the next case's. The /24 at
``127.A.0.0`` is the run's own range, for the endpoints of an SUT that keeps one address for
the whole run (an external process).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.world import nodes

Address = tuple[str, int]

_LOCK_DIR = Path(tempfile.gettempdir()) / "msgin5g-conformance-blocks"
_SECOND_OCTETS = range(64, 128)
SUBNETS = 256  # /24s in a /16
RUN_SUBNET = 0  # the /24 kept for endpoints that live as long as the run


@dataclass
class RunBlock:
    """A claimed ``127.A.0.0/16``; :meth:`release` (or process exit) frees it."""

    prefix: str  # "127.A"
    _fd: int | None = None
    _next: int = 1
    _open: dict[int, CaseSpace] = field(default_factory=dict)

    @property
    def network(self) -> str:
        return f"{self.prefix}.0.0/16"

    def run_space(self) -> CaseSpace:
        """The /24 for endpoints that live as long as the run."""
        return CaseSpace(self.prefix, RUN_SUBNET, 1)

    def open_space(self, hosts: int) -> CaseSpace:
        """A range of at least ``hosts`` host offsets that no open case uses."""
        count = -(-hosts // 256)
        if count >= SUBNETS - 1:
            raise HarnessError(f"a test case needing {hosts} addresses does not fit in one run's /16")
        for _ in range(SUBNETS):
            first = self._next
            if first + count > SUBNETS:
                first = 1
            taken = any(s.first <= first + count - 1 and first <= s.last for s in self._open.values())
            self._next = first + count if first + count < SUBNETS else 1
            if not taken:
                space = CaseSpace(self.prefix, first, count)
                self._open[first] = space
                return space
        raise HarnessError("every address range of the run's /16 is in use by an open test case")

    def close_space(self, space: CaseSpace) -> None:
        self._open.pop(space.first, None)

    def open_spaces(self) -> list[CaseSpace]:
        return list(self._open.values())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class CaseSpace:
    """Consecutive /24s ``127.A.first.0`` .. ``127.A.last.255`` of one test case."""

    prefix: str
    first: int
    count: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    @property
    def size(self) -> int:
        """Host offsets in the range (0 .. size-1)."""
        return self.count * 256

    @property
    def networks(self) -> list[str]:
        """The range as /24 networks (a capture filter names each)."""
        return [f"{self.prefix}.{s}.0/24" for s in range(self.first, self.last + 1)]

    def host(self, offset: int) -> str:
        if not 0 <= offset < self.size:
            raise HarnessError(f"host offset {offset} is outside the case's {self.size} addresses")
        return f"{self.prefix}.{self.first + offset // 256}.{offset % 256}"

    def offset(self, host: str) -> int | None:
        """The host offset of an address of this range, or None when it lies outside."""
        parts = host.split(".")
        if len(parts) != 4 or ".".join(parts[:2]) != self.prefix:
            return None
        try:
            third, fourth = int(parts[2]), int(parts[3])
        except ValueError:
            return None
        if not self.first <= third <= self.last:
            return None
        return (third - self.first) * 256 + fourth

    def contains(self, address: Address) -> bool:
        return self.offset(address[0]) is not None


@dataclass(frozen=True)
class CaseAddresses:
    """The nodes of one test case and where they live (tester nodes, and the SUT's endpoints)."""

    space: CaseSpace
    port: int
    alt_port: int
    tester: tuple[str, ...]  # tester node names this case owns
    sut: tuple[tuple[str, Address], ...]  # the SUT's endpoints in this case

    def address(self, node: str) -> Address:
        found = self._by_name.get(node)
        if found is not None:
            return found
        k = nodes.kind(node)
        if k is None:
            raise HarnessError(f"unknown node {node!r}")
        return (self.space.host(k.host), self.alt_port if k.alt_port else self.port)

    # The two directories below are computed once per instance (the instance is frozen): a case
    # with 1,000 constrained UEs asks for an address or a label tens of thousands of times.
    @functools.cached_property
    def _by_name(self) -> dict[str, Address]:
        """Every node this case owns (and the SUT's endpoints), by name."""
        out = {n: self._computed(n) for n in self.tester}
        out.update(self.sut)
        return out

    @functools.cached_property
    def _owners(self) -> dict[Address, str]:
        out = {self._computed(n): n for n in self.tester}
        out.update({addr: name for name, addr in self.sut})
        return out

    def _computed(self, node: str) -> Address:
        for name, addr in self.sut:
            if name == node:
                return addr
        k = nodes.kind(node)
        if k is None:
            raise HarnessError(f"unknown node {node!r}")
        return (self.space.host(k.host), self.alt_port if k.alt_port else self.port)

    def sut_endpoints(self) -> dict[str, Address]:
        return dict(self.sut)

    def owners(self) -> dict[Address, str]:
        """Every address of the case that a node owns, by address."""
        return dict(self._owners)

    def spare_hosts(self) -> list[str]:
        """Hosts of the range that no node owns on the profile's port (the tester listens there
        too, so that a datagram sent to nobody is still seen)."""
        used = {addr[0] for addr, _ in self.owners().items() if addr[1] == self.port}
        return [h for h in (self.space.host(i) for i in range(1, self.space.size)) if h not in used]

    def label_of(self, address: Address) -> str | None:
        """The node name at an address, ``elsewhere`` for any other address of the range, else None."""
        owner = self._owners.get(address)
        if owner is not None:
            return owner
        if self.space.contains(address):
            return nodes.ELSEWHERE
        return None

    def label(self, address: Address) -> str:
        name = self.label_of(address)
        return f"{name} {address[0]}:{address[1]}" if name else f"{address[0]}:{address[1]}"


def _usable(prefix: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((f"{prefix}.1.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def claim_block(port: int = 65401) -> RunBlock:
    """Claim a free /16; bounded: gives up with an error after trying every block."""
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % len(_SECOND_OCTETS)
    for i in range(len(_SECOND_OCTETS)):
        second = _SECOND_OCTETS[(start + i) % len(_SECOND_OCTETS)]
        prefix = f"127.{second}"
        fd = os.open(_LOCK_DIR / f"{prefix}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                continue
            raise
        if _usable(prefix, port):
            return RunBlock(prefix, fd)
        os.close(fd)
    raise HarnessError("no free loopback address block in 127.64.0.0/10")
