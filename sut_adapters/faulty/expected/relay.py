"""Relay UE: faulty variant -> the relay cases it must not pass (every other relay case passes)."""

from __future__ import annotations

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
    "RELAY-E2E-001",
]
RELAY_DISCARD = ["RELAY-DL-004", "RELAY-DL-005", "RELAY-DL-006", "RELAY-DL-007"]

# SUT -> {case id: verdict}: the cases it must not pass, with the verdict they must have.
EXPECTED: dict[str, dict[str, str]] = {
    "reference": {},
    "faulty:relays-without-link": dict.fromkeys(["RELAY-DL-004", "RELAY-DL-005"], "fail"),
    "faulty:keeps-released-link": {"RELAY-DL-005": "fail"},
    "faulty:drops-404": dict.fromkeys(["RELAY-DL-003", "RELAY-DL-008"], "fail"),
    "faulty:rewrites-payload": dict.fromkeys(["RELAY-DL-001", "RELAY-DL-002", "RELAY-DL-003", "RELAY-DL-008"], "fail"),
    "faulty:ignores-port": {"RELAY-DL-007": "fail"},
    "faulty:wrong-client": dict.fromkeys(["RELAY-DL-008", "RELAY-E2E-001"], "fail"),
    # UL-002's positive control needs the uplink: with none, its absence check proves nothing.
    "faulty:no-uplink": {"RELAY-E2E-001": "fail", "RELAY-UL-001": "fail", "RELAY-UL-002": "inconclusive"},
    "faulty:relays-without-recipient": {"RELAY-DL-006": "fail"},
    # Every relayed response also goes back to the SCM-S: judged wherever a response is relayed.
    "faulty:echoes-uplink": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    # Every relayed 2.05 loses its Content-Format: where a 2.05 is relayed, and the positive
    # controls of the discard cases (a control that arrives wrong proves nothing).
    "faulty:drops-content-format": {
        **dict.fromkeys(["RELAY-DL-001", "RELAY-DL-008", "RELAY-DL-009", "RELAY-E2E-001"], "fail"),
        **dict.fromkeys(RELAY_DISCARD, "inconclusive"),
    },
    "faulty:ignores-critical-option": {"RELAY-UL-002": "fail"},
    # Strict options: an option the relay adds, or a value outside its length range, fails
    # wherever a response is relayed; the discard cases' controls then prove nothing.
    "faulty:adds-critical-option": {
        **dict.fromkeys(RELAY_DOWNLINK, "fail"),
        **dict.fromkeys(RELAY_DISCARD, "inconclusive"),
    },
    "faulty:long-content-format": {
        **dict.fromkeys(["RELAY-DL-001", "RELAY-DL-008", "RELAY-DL-009", "RELAY-E2E-001"], "fail"),
        **dict.fromkeys(RELAY_DISCARD, "inconclusive"),
    },
    # Responses as ACKs that answer nothing: no client can match them.
    "faulty:ack-type-responses": {
        **dict.fromkeys(RELAY_DOWNLINK, "fail"),
        **dict.fromkeys(RELAY_DISCARD, "inconclusive"),
    },
    # A discard proved only for tens of milliseconds misses these; the late window does not.
    "faulty:late-without-link-80ms": dict.fromkeys(["RELAY-DL-004", "RELAY-DL-005"], "fail"),
    "faulty:late-without-link-250ms": dict.fromkeys(["RELAY-DL-004", "RELAY-DL-005"], "fail"),
    # Discarded responses sent to an address no node owns: seen by the listeners there.
    "faulty:sends-to-unused-address": dict.fromkeys(RELAY_DISCARD[:3], "fail"),
    # Only the cases where the tester sends a CON the relay does not answer at once.
    "faulty:never-acks": dict.fromkeys(["RELAY-DL-001", "RELAY-E2E-001", "RELAY-UL-001"], "fail"),
    "faulty:retransmits-forever": dict.fromkeys(["RELAY-DL-001", "RELAY-E2E-001"], "fail"),
    # A second copy 150 ms later is judged in the case that caused it, never in the next one.
    "faulty:late-duplicate": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    # Robustness: a malformed datagram instead of each relayed response.
    "faulty:sends-garbage": dict.fromkeys(RELAY_DOWNLINK, "fail"),
    # Robustness: silence is a fail where something must arrive, inconclusive where only a
    # discard was being proved (a dead SUT never passes an absence check).
    "faulty:silent": {
        **dict.fromkeys([*RELAY_DOWNLINK, "RELAY-UL-001", "RELAY-UL-002"], "fail"),
        **dict.fromkeys(RELAY_DISCARD, "inconclusive"),
    },
    "faulty:floods": dict.fromkeys(RELAY_DOWNLINK, "fail"),
}


# Variants that break a profile reading of an open point: run under a profile holding that reading.
# Each entry: (the readings the profile sets, SUT, {case id: verdict}); every other relay case passes.
UNDER_READINGS: list[tuple[dict[str, str], str, dict[str, str]]] = []
