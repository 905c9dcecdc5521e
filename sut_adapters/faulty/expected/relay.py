"""Relay UE: faulty variant -> the relay cases it must not pass (every other relay case passes).

``EXPECTED`` is for the default profile and ``testcases/relay/*.yaml``. The cases that apply only
under a reading of an open point (``RELAY_UNDER_DISCARD``: REQ-RELAY-UL-2, REQ-RELAY-DL-3, not
applicable under the default ``open`` for every SUT) are judged under that reading:
``UNDER_READINGS``, run by ``tests/test_selftest_readings.py``.
"""

from __future__ import annotations

# Cases in which the relay relays at least one response downlink: a variant that breaks every
# relayed response (echoes it, duplicates it, garbles it, floods) fails each of them.
RELAY_DOWNLINK = [
    "RELAY-DL-001",
    "RELAY-DL-002",
    "RELAY-DL-003",
    "RELAY-DL-004",
    "RELAY-DL-005",
    "RELAY-DL-006",
    "RELAY-DL-007",
    "RELAY-DL-008",
    "RELAY-DL-009",
    "RELAY-DL-010",
    "RELAY-DL-011",
    "RELAY-DL-012",
    "RELAY-DL-013",
    "RELAY-DL-014",
    "RELAY-DL-015",
    "RELAY-E2E-001",
    "RELAY-E2E-002",
    "RELAY-E2E-003",
    "RELAY-MSG-001",
    "RELAY-ROB-002",
]
# Discard cases whose only relayed response is a positive control: a variant that spoils every
# relayed response leaves them inconclusive (a control that arrives wrong proves nothing).
RELAY_DISCARD = ["RELAY-DL-004", "RELAY-DL-005", "RELAY-DL-006", "RELAY-DL-007", "RELAY-DL-010", "RELAY-DL-011"]
# Discard cases that first carry a client's GET uplink (the discarded response answers it).
RELAY_ANSWER_DISCARD = ["RELAY-DL-012", "RELAY-DL-013"]
# Cases whose responses carry a Content-Format (every relayed 2.05).
RELAY_CONTENT_FORMAT = [
    "RELAY-DL-001",
    "RELAY-DL-008",
    "RELAY-DL-009",
    "RELAY-DL-015",
    "RELAY-E2E-001",
    "RELAY-E2E-002",
    "RELAY-E2E-003",
    "RELAY-MSG-001",
    "RELAY-ROB-002",
]
# Cases in which a client's GET is carried uplink before anything is judged downlink.
RELAY_UPLINK_FIRST = ["RELAY-DL-012", "RELAY-DL-013", "RELAY-E2E-001", "RELAY-E2E-002", "RELAY-E2E-003"]
# Cases in which the tester sends a CON the relay does not answer at once (it must ACK it).
RELAY_TESTER_CON = [
    "RELAY-DL-001",
    "RELAY-DL-012",
    "RELAY-DL-013",
    "RELAY-DL-014",
    "RELAY-DL-015",
    "RELAY-E2E-001",
    "RELAY-E2E-002",
    "RELAY-E2E-003",
    "RELAY-MSG-001",
    "RELAY-ROB-001",
    "RELAY-UL-001",
]

# SUT -> {case id: verdict}: the cases it must not pass, with the verdict they must have.
EXPECTED: dict[str, dict[str, str]] = {
    "reference": {},
    # A released link is a link no more, whatever request the response answers (DL-012).
    "faulty:relays-without-link": dict.fromkeys(["RELAY-DL-004", "RELAY-DL-005", "RELAY-DL-012"], "fail"),
    "faulty:keeps-released-link": dict.fromkeys(["RELAY-DL-005", "RELAY-DL-012"], "fail"),
    # DL-014 sends a confirmable 4.04, E2E-002 a piggybacked one.
    "faulty:drops-404": dict.fromkeys(["RELAY-DL-003", "RELAY-DL-008", "RELAY-DL-014", "RELAY-E2E-002"], "fail"),
    # Pretty-printed JSON, and a space after any other payload: wherever the bytes are judged.
    "faulty:rewrites-payload": dict.fromkeys(
        [
            "RELAY-DL-001",
            "RELAY-DL-002",
            "RELAY-DL-003",
            "RELAY-DL-008",
            "RELAY-DL-014",
            "RELAY-DL-015",
            "RELAY-E2E-001",
            "RELAY-ROB-002",
        ],
        "fail",
    ),
    "faulty:ignores-port": {"RELAY-DL-007": "fail"},
    # With two or more clients linked, the first one gets every response (DL-011: cue10's control
    # reaches cue1, an unexpected message).
    "faulty:wrong-client": dict.fromkeys(
        ["RELAY-DL-008", "RELAY-DL-011", "RELAY-DL-014", "RELAY-E2E-001", "RELAY-E2E-002"], "fail"
    ),
    # UL-002's positive control needs the uplink: with none, its absence check proves nothing. The
    # cases that carry a GET uplink first fail there (their downlink checks need it: not judged).
    "faulty:no-uplink": {
        **dict.fromkeys([*RELAY_UPLINK_FIRST, "RELAY-ROB-001", "RELAY-UL-001"], "fail"),
        "RELAY-UL-002": "inconclusive",
    },
    "faulty:relays-without-recipient": {"RELAY-DL-006": "fail"},
    # Every relayed response also goes back to the SCM-S: judged wherever a response is relayed.
    "faulty:echoes-uplink": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    # Every relayed 2.05 loses its Content-Format: where a 2.05 is relayed, and the positive
    # controls of the discard cases (a control that arrives wrong proves nothing).
    "faulty:drops-content-format": {
        **dict.fromkeys(RELAY_CONTENT_FORMAT, "fail"),
        **dict.fromkeys([*RELAY_DISCARD, *RELAY_ANSWER_DISCARD], "inconclusive"),
    },
    "faulty:ignores-critical-option": {"RELAY-UL-002": "fail"},
    # Strict options: an option the relay adds, or a value outside its length range, fails
    # wherever a response is relayed; the discard cases' controls then prove nothing.
    "faulty:adds-critical-option": {
        **dict.fromkeys(RELAY_DOWNLINK, "fail"),
        **dict.fromkeys([*RELAY_DISCARD, *RELAY_ANSWER_DISCARD], "inconclusive"),
    },
    "faulty:long-content-format": {
        **dict.fromkeys(RELAY_CONTENT_FORMAT, "fail"),
        **dict.fromkeys([*RELAY_DISCARD, *RELAY_ANSWER_DISCARD], "inconclusive"),
    },
    # Responses as ACKs that answer nothing: no client can match them.
    "faulty:ack-type-responses": {
        **dict.fromkeys(RELAY_DOWNLINK, "fail"),
        **dict.fromkeys([*RELAY_DISCARD, *RELAY_ANSWER_DISCARD], "inconclusive"),
    },
    # A discard proved only for tens of milliseconds misses these; the late window does not.
    "faulty:late-without-link-80ms": dict.fromkeys(["RELAY-DL-004", "RELAY-DL-005", "RELAY-DL-012"], "fail"),
    "faulty:late-without-link-250ms": dict.fromkeys(["RELAY-DL-004", "RELAY-DL-005", "RELAY-DL-012"], "fail"),
    # Discarded responses sent to an address no node owns: seen by the listeners there.
    "faulty:sends-to-unused-address": dict.fromkeys(
        [*RELAY_DISCARD[:3], "RELAY-DL-010", "RELAY-DL-011", "RELAY-DL-012", "RELAY-DL-013"], "fail"
    ),
    # Only the cases where the tester sends a CON the relay does not answer at once.
    "faulty:never-acks": dict.fromkeys(RELAY_TESTER_CON, "fail"),
    # Only where a CON is relayed downlink (a piggybacked answer goes on as a CON).
    "faulty:retransmits-forever": dict.fromkeys(
        [
            "RELAY-DL-001",
            "RELAY-DL-014",
            "RELAY-DL-015",
            "RELAY-E2E-001",
            "RELAY-E2E-002",
            "RELAY-E2E-003",
            "RELAY-MSG-001",
        ],
        "fail",
    ),
    # A copy 2 s after the client's ACK: only the case that waits that long after a delivery sees it.
    "faulty:retransmits-after-ack": {"RELAY-MSG-001": "fail"},
    # A second copy 150 ms later is judged in the case that caused it, never in the next one.
    "faulty:late-duplicate": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    # Robustness: a malformed datagram instead of each relayed response.
    "faulty:sends-garbage": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    # Robustness: silence is a fail where something must arrive, inconclusive where only a
    # discard was being proved (a dead SUT never passes an absence check).
    "faulty:silent": {
        **dict.fromkeys([*RELAY_DOWNLINK, "RELAY-ROB-001", "RELAY-UL-001", "RELAY-UL-002"], "fail"),
        **dict.fromkeys(RELAY_DISCARD, "inconclusive"),
    },
    "faulty:floods": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    # -- the field cases' own variants --
    # The SCM-S's answer in the ACK of the relay's GET (E2E-002: 2.05/4.03/4.04; E2E-003: blocks).
    "faulty:drops-piggybacked": dict.fromkeys(["RELAY-E2E-002", "RELAY-E2E-003"], "fail"),
    "faulty:con-errors-as-content": {"RELAY-DL-014": "fail"},
    # A recipient that extends, embeds (DL-010) or is a part of (DL-011: empty) a linked address.
    "faulty:matches-by-prefix": dict.fromkeys(["RELAY-DL-010", "RELAY-DL-011"], "fail"),
    "faulty:matches-by-substring": dict.fromkeys(["RELAY-DL-010", "RELAY-DL-011"], "fail"),
    "faulty:truncates-256": {"RELAY-DL-015": "fail"},
    "faulty:strips-block2": {"RELAY-E2E-003": "fail"},
    "faulty:drops-later-blocks": {"RELAY-E2E-003": "fail"},
    "faulty:pc5-dies-on-malformed": {"RELAY-ROB-001": "fail"},
    "faulty:uu-dies-on-malformed": {"RELAY-ROB-002": "fail"},
    # An answer to a request it carried, for a client whose link was released (DL-012) or for
    # the relay's own client (DL-013), goes back to the requester by its token.
    "faulty:routes-by-token": dict.fromkeys(["RELAY-DL-012", "RELAY-DL-013"], "fail"),
    "faulty:relays-own-address": {"RELAY-DL-013": "fail"},
    # The same JSON, other bytes: wherever a JSON payload's bytes are judged.
    "faulty:reserialises-json": dict.fromkeys(
        ["RELAY-DL-001", "RELAY-DL-008", "RELAY-DL-015", "RELAY-E2E-001", "RELAY-ROB-002"], "fail"
    ),
    # They break the discard readings of open points (UNDER_READINGS): under the default profile
    # (open) the cases that would catch them do not apply, and every other case passes.
    "faulty:relays-any-recipient": {},
    "faulty:uplink-ignores-port": {},
    "faulty:relays-other-codes": {},
}


# Variants that break a profile reading of an open point: run under a profile holding that reading.
# Each entry: (the readings the profile sets, SUT, {case id: verdict}); every other relay case passes.
DISCARD_READINGS = {"uplink_other_requests": "discard", "other_response_codes": "discard"}  # profile readings.NAME
# Every relay case that applies only under these readings.
RELAY_UNDER_DISCARD = ["RELAY-DL-016", "RELAY-UL-003", "RELAY-UL-004", "RELAY-UL-005"]
UNDER_READINGS: list[tuple[dict[str, str], str, dict[str, str]]] = [
    (DISCARD_READINGS, "reference", {}),
    (DISCARD_READINGS, "faulty:relays-any-recipient", dict.fromkeys(["RELAY-UL-003", "RELAY-UL-004"], "fail")),
    (DISCARD_READINGS, "faulty:uplink-ignores-port", {"RELAY-UL-005": "fail"}),
    (DISCARD_READINGS, "faulty:relays-other-codes", {"RELAY-DL-016": "fail"}),
    # The UL-2 cases' positive controls need the uplink: without it their discards prove nothing.
    (
        DISCARD_READINGS,
        "faulty:no-uplink",
        {
            **EXPECTED["faulty:no-uplink"],
            **dict.fromkeys(["RELAY-UL-003", "RELAY-UL-004", "RELAY-UL-005"], "inconclusive"),
        },
    ),
    # A dead SUT never passes an absence check under these readings either.
    (
        DISCARD_READINGS,
        "faulty:silent",
        {**EXPECTED["faulty:silent"], **dict.fromkeys(RELAY_UNDER_DISCARD, "inconclusive")},
    ),
]
