"""Where a live check and the offline analysis of its pcap cannot agree, and why.

{(role, case id, requirement): reason}. An entry is a check whose live verdict rests on what the
trace does not show (how the case compares a payload, which of the case's requirements a step
decides, a response that was never sent); the comparison skips that requirement in that case only.
"""

from __future__ import annotations

_JSON = (
    "the case compares the relayed payload as JSON (its point lies elsewhere); offline every copy is "
    "compared byte for byte, as RELAY-E2E-001 does live, so a re-serialised or rewritten document fails"
)

DISAGREE: dict[tuple[str, str, str], str] = {
    ("relay", "RELAY-E2E-001", "REQ-RELAY-UL-1"): (
        "the downlink check of the round trip decides the case's three requirements, UL-1 among them, "
        "and fails when the 2.05 comes back altered; offline the uplink GET is judged on its own copy"
    ),
    ("relay", "RELAY-E2E-001", "REQ-RELAY-DL-1"): (
        "with no uplink GET the tester's SCM-S has no token to answer with and sends no 2.05: the live "
        "downlink check fails on nothing arriving, the trace holds no response to judge"
    ),
    ("relay", "RELAY-DL-009", "REQ-RELAY-DL-1"): _JSON,
    ("relay", "RELAY-DL-009", "REQ-RELAY-TERM-1"): _JSON
    + "; and its 4.03 check decides DL-1 only, where offline a missing copy names DL-1 and TERM-1",
    ("relay", "RELAY-E2E-002", "REQ-RELAY-DL-1"): _JSON,
    ("relay", "RELAY-E2E-002", "REQ-RELAY-TERM-1"): _JSON,
    ("relay", "RELAY-MSG-001", "REQ-RELAY-DL-1"): _JSON,
    ("relay", "RELAY-MSG-001", "REQ-RELAY-TERM-1"): _JSON,
    ("relay", "RELAY-E2E-003", "REQ-RELAY-DL-1"): (
        "the live block checks match code and Block2/Size2, not the block's bytes, and the check of the "
        "second block decides UL-1 and DL-1: when the relay drops the GET for it, no second block is "
        "ever sent and only the uplink copy fails offline"
    ),
    ("relay", "RELAY-E2E-003", "REQ-RELAY-TERM-1"): (
        "the uplink check of the second block's GET decides UL-1 only, where offline a missing or "
        "altered copy names UL-1 and TERM-1; the live block checks do not compare the block's bytes"
    ),
    ("relay", "RELAY-DL-008", "REQ-RELAY-TERM-1"): (
        "the live absence check decides the case's requirements, TERM-1 among them; offline a late "
        "second copy is a message no exchange accounts for (DL-1), not an alteration"
    ),
    ("relay", "RELAY-DL-015", "REQ-RELAY-TERM-1"): (
        "under a flood of look-alike 2.05s the intact copy of the second response comes after the wait "
        "counted from its frame (offline the look-alike is judged altered); the live wait starts with "
        "its step, after the tester has read the flood"
    ),
}
