"""The one registry of node names: the tester's nodes, the SUT's endpoints per role, their hosts.

Every other module asks here what a node name means; none spells the names itself.

A test case talks about *nodes*. The tester plays the constrained UEs ``cue1`` .. ``cueN``
(clients, with a one-to-one ProSe link or not), ``cue_nolink`` (a client that never has a link),
the configuration management server ``scms`` (and ``scms_alt``: the same host, another port, for
"not from UDP port 65401"), and ``relay`` (the Relay UE a Constrained UE under test talks to).
The SUT's endpoints are ``sut.pc5`` and ``sut.uu`` (Relay UE and Gateway UE: the PC5 side and the
network side) or ``sut.cue`` (Constrained UE).

Within a case's address range (:class:`~msgin5g_conformance.world.topology.CaseSpace`) each node
has a fixed host offset, so a host number in a pcap tells which node it is: 1-3 the SUT's
endpoints, 4 ``relay``, 5 ``scms``, 9 ``cue_nolink``, 10+N ``cueN``. Every other host of the range
belongs to nobody: the tester listens there too (``elsewhere``), so that a datagram the SUT sends
to an address no node owns is seen and judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("relay", "gateway", "constrained-ue")

# The SUT's endpoints by role (design.md, "Roles under test").
SUT_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "relay": ("sut.pc5", "sut.uu"),
    "gateway": ("sut.pc5", "sut.uu"),
    "constrained-ue": ("sut.cue",),
}
ALL_SUT_ENDPOINTS = ("sut.pc5", "sut.uu", "sut.cue")

# Tester nodes the SUT sends to on its own (not in answer to a tester message), by role: the
# SCM-S (relay uplink, gateway bulk GET) and the relay (the constrained UE's request).
PEERS: dict[str, tuple[str, ...]] = {
    "relay": ("scms",),
    "gateway": ("scms",),
    "constrained-ue": ("relay",),
}
ALL_PEERS = ("scms", "relay")

# Tester nodes every case of a role has, whether its steps name them or not.
ROLE_NODES: dict[str, tuple[str, ...]] = PEERS

ELSEWHERE = "elsewhere"  # label of any address of a case's range that no node owns

_FIXED_HOSTS = {"sut.pc5": 1, "sut.uu": 2, "sut.cue": 3, "relay": 4, "scms": 5, "scms_alt": 5, "cue_nolink": 9}
_CUE_BASE = 10
MAX_CUE = 4000  # cue1..cue4000: a case range holds up to 16 /24 blocks
_CUE = re.compile(r"^cue([1-9][0-9]{0,3})$")
FIXED_TESTER_NODES = ("relay", "scms", "scms_alt", "cue_nolink")
NODE_PATTERN = r"cue[1-9][0-9]{0,3}|cue_nolink|scms|scms_alt|relay"
SUT_PATTERN = r"sut\.(?:pc5|uu|cue)"


@dataclass(frozen=True)
class NodeKind:
    """What a node name is."""

    name: str
    sut: bool  # one of the SUT's endpoints
    host: int  # offset within the case's range
    alt_port: bool  # on the profile's alt_port instead of its port


def cue_number(name: str) -> int | None:
    """N of ``cueN``, or None for any other name (and for N above :data:`MAX_CUE`)."""
    m = _CUE.match(name)
    if m is None:
        return None
    n = int(m.group(1))
    return n if n <= MAX_CUE else None


def kind(name: str) -> NodeKind | None:
    """The node a name denotes, or None when it denotes no node."""
    if name in _FIXED_HOSTS:
        return NodeKind(name, name.startswith("sut."), _FIXED_HOSTS[name], name == "scms_alt")
    n = cue_number(name)
    if n is not None:
        return NodeKind(name, False, _CUE_BASE + n, False)
    return None


def is_tester_node(name: str) -> bool:
    k = kind(name)
    return k is not None and not k.sut


def client_node(template: str, address: str) -> str | None:
    """The tester client node a recipient address names under the profile's client address
    template (``{node}.msgin5g.example``), or None: exact match only, never the SCM-S."""
    head, _, tail = template.partition("{node}")
    if not (address.startswith(head) and address.endswith(tail) and len(address) > len(head) + len(tail)):
        return None
    node = address[len(head) : len(address) - len(tail)] if tail else address[len(head) :]
    if not is_tester_node(node) or node.startswith("scms"):
        return None
    return node


def is_sut_endpoint(name: str) -> bool:
    return name in ALL_SUT_ENDPOINTS


def hosts_needed(names: set[str] | frozenset[str]) -> int:
    """How many host offsets a case using ``names`` needs (the highest offset + 1)."""
    highest = max((k.host for k in map(kind, names) if k is not None), default=0)
    return max(highest, _CUE_BASE) + 1


def node_at(host: int, alt_port: bool) -> str | None:
    """The node living at a host offset (on the port or the alt_port), or None."""
    for name, h in _FIXED_HOSTS.items():
        if h == host and (name == "scms_alt") == alt_port:
            return name
    if not alt_port and host > _CUE_BASE and host - _CUE_BASE <= MAX_CUE:
        return f"cue{host - _CUE_BASE}"
    return None


def cue_range(first: int, last: int) -> list[str]:
    """``cueFIRST`` .. ``cueLAST``."""
    return [f"cue{i}" for i in range(first, last + 1)]
