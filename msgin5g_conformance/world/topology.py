"""Named nodes on distinct loopback addresses, one address block per run.

Every MSGin5G endpoint binds UDP 65401 (the profile's port) on its own 127.0.0.0/8 address
(Linux routes the whole /8 to ``lo`` with no set-up). Each run, and each pytest-xdist worker,
claims a /24 block with an exclusive file lock held for its lifetime, so no two runs share a
socket even though aiocoap sets SO_REUSEPORT.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from msgin5g_conformance.errors import HarnessError

Address = tuple[str, int]

# Host part of each node within the block.
_FIXED_HOSTS = {"sut.pc5": 1, "sut.uu": 2, "sut.cue": 3, "relay": 4, "scms": 5, "scms_alt": 5, "cue_nolink": 9}
_CUE = re.compile(r"^cue([1-9][0-9]?)$")
_LOCK_DIR = Path(tempfile.gettempdir()) / "msgin5g-conformance-blocks"
_SECOND_OCTETS = range(64, 128)


@dataclass
class AddressBlock:
    """A claimed 127.A.B.0/24 block; release() (or process exit) frees it."""

    prefix: str
    _fd: int | None

    def host(self, n: int) -> str:
        return f"{self.prefix}.{n}"

    @property
    def network(self) -> str:
        return f"{self.prefix}.0/24"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _usable(prefix: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((f"{prefix}.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def claim_block(port: int = 65401) -> AddressBlock:
    """Claim a free address block; bounded: gives up with an error after trying every block."""
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = os.getpid() * 7919
    n = len(_SECOND_OCTETS) * 256
    for i in range(n):
        k = (start + i) % n
        prefix = f"127.{_SECOND_OCTETS[k // 256]}.{k % 256}"
        fd = os.open(_LOCK_DIR / f"{prefix}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                continue
            raise
        if _usable(prefix, port):
            return AddressBlock(prefix, fd)
        os.close(fd)
    raise HarnessError("no free loopback address block in 127.64.0.0/10")


@dataclass(frozen=True)
class Topology:
    """Where every node of a run lives. SUT endpoints may be overridden by an external SUT."""

    block: AddressBlock
    port: int
    alt_port: int
    sut_overrides: tuple[tuple[str, Address], ...] = ()

    def address(self, node: str) -> Address:
        for name, addr in self.sut_overrides:
            if name == node:
                return addr
        if node in _FIXED_HOSTS:
            port = self.alt_port if node == "scms_alt" else self.port
            return (self.block.host(_FIXED_HOSTS[node]), port)
        m = _CUE.match(node)
        if m:
            return (self.block.host(10 + int(m.group(1))), self.port)
        raise HarnessError(f"unknown node {node!r}")

    def node_at(self, addr: Address) -> str | None:
        """The node name bound at an address, for display; None when it is nobody we know."""
        for node in ("sut.pc5", "sut.uu", "sut.cue", "relay", "scms", "scms_alt", "cue_nolink"):
            if self.address(node) == addr:
                return node
        host, port = addr
        if host.startswith(self.block.prefix + ".") and port == self.port:
            n = int(host.rsplit(".", 1)[1]) - 10
            if 1 <= n <= 99:
                return f"cue{n}"
        return None

    def label(self, addr: Address) -> str:
        name = self.node_at(addr)
        return f"{name} {addr[0]}:{addr[1]}" if name else f"{addr[0]}:{addr[1]}"
