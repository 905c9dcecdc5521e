"""What the tester plays around each SUT role: its nodes, and how its SCM-S behaves.

The engine asks here instead of knowing roles itself: which tester nodes a case of a role always
has (the peers the SUT sends to on its own), and which handler the ``scms`` node runs.

``scms`` modes (test case ``preconditions.scms``):

* ``scripted``: the node acknowledges CONs and answers nothing by itself; the case's steps send
  the responses (default for Relay UE and Constrained UE cases);
* ``piggybacked``: the tester's SCM-S (:class:`~msgin5g_conformance.roles.scms.ScmServer`)
  answers each configuration GET in the ACK of a CON, as a CoAP server usually does (RFC 7252
  5.2.1), or with a NON for a NON (default for Gateway UE cases);
* ``separate``: the SCM-S acknowledges a CON at once with an empty ACK and sends its answer as a
  separate CON response (RFC 7252 5.2.2).
"""

from __future__ import annotations

from msgin5g_conformance.world import nodes

SCMS_MODES = ("scripted", "piggybacked", "separate")
DEFAULT_SCMS_MODE = {"relay": "scripted", "gateway": "piggybacked", "constrained-ue": "scripted"}


def tester_nodes(role: str, named: set[str]) -> list[str]:
    """The tester nodes of a case of ``role`` whose steps name ``named`` (SUT endpoints excluded)."""
    return sorted({n for n in named if nodes.is_tester_node(n)} | set(nodes.ROLE_NODES[role]))


# What a message the SUT sent that no step accounts for breaks, by role and by what it is: the
# requirement whose sentence says where such a message goes (and so, that it goes nowhere else).
_UNACCOUNTED = {
    ("relay", "request"): "REQ-RELAY-UL-1",  # the GET is relayed uplink to the SCM-S (6.2.2.1)
    ("relay", "response"): "REQ-RELAY-DL-1",  # a response is relayed downlink to the Client-2 named
    ("gateway", "request"): "REQ-GW-BULK-1",  # one bulk GET to the SCM-S (6.2.2.x)
    ("gateway", "response"): "REQ-GW-BULK-2",  # one response to each constrained UE
    ("constrained-ue", "request"): "REQ-CUE-REQ-1",  # the request, via the relay (6.2.2.2)
    ("constrained-ue", "response"): "REQ-CUE-RSP-1",  # a UE handles responses; it sends none
}
MALFORMED_REQUIREMENT = "REQ-COAP-MSG-4"  # RFC 7252 3, 4.2: well-formed messages, ACK/RST that answer


def unaccounted_requirement(role: str, code: int | None) -> str:
    """The requirement an unaccounted message breaks (``code`` None: malformed, or an ACK/RST
    that answers nothing)."""
    if code is None:
        return MALFORMED_REQUIREMENT
    kind = "request" if code >> 5 == 0 and code != 0 else "response"
    return _UNACCOUNTED[(role, kind)]
