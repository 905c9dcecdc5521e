"""CoAP message-layer suite (``testcases/coap/``): per role, SUT -> the coap cases it must not pass.

Keys are a case's file id (``COAP-VER-001``); the suite runs it once per role
(``COAP-VER-001[relay]``, ...), and the verdict listed here is that of the role's run. Every SUT the
self-test (``tests/test_selftest_coap.py``) runs against the coap suite that is not listed here (or a
case not listed for it) must pass every coap case of the role. The ``should`` cases (COAP-DUP-*,
RFC 7252 4.5) are never failed by breaking their SHOULD: the self-test checks the recorded deviations
instead (``DEVIATIONS``).
"""

from __future__ import annotations

_ALL = (
    "COAP-ACK-001",
    "COAP-CRIT-001",
    "COAP-CRIT-002",
    "COAP-CRIT-003",
    "COAP-DUP-001",
    "COAP-DUP-002",
    "COAP-FMT-001",
    "COAP-FMT-002",
    "COAP-NON-001",
    "COAP-PING-001",
    "COAP-REJ-001",
    "COAP-REJ-002",
    "COAP-VER-001",
)
_PC5_ONLY = ("COAP-CRIT-001", "COAP-REJ-002", "COAP-DUP-002")  # endpoints: [sut.pc5]
_SHOULD = ("COAP-DUP-001", "COAP-DUP-002")


def _fail(cases: tuple[str, ...]) -> dict[str, str]:
    return dict.fromkeys(cases, "fail")


# A relay whose probe exchange breaks (the probe's 2.05 does not arrive intact): every shall case.
_RELAY_PROBE_FAILS = _fail(tuple(c for c in _ALL if c not in _SHOULD))
# A constrained UE whose request does not reach the tester's relay: every shall case it runs.
_CUE_PROBE_FAILS = _fail(tuple(c for c in _ALL if c not in _SHOULD and c not in _PC5_ONLY))


def _coap_variants(role: str) -> dict[str, dict[str, str]]:
    """The CoAP variants (sut_adapters/faulty/coap.py), the same in every role but for the cases a
    role does not run (those of sut.pc5 only are not run for a constrained UE)."""
    table = {
        "faulty:coap-answers-version-2": _fail(("COAP-VER-001",)),
        "faulty:coap-acks-ping": _fail(("COAP-PING-001",)),
        "faulty:coap-acks-reserved-class": _fail(("COAP-REJ-001",)),
        "faulty:coap-acks-unexpected-response": _fail(("COAP-REJ-002",)),
        "faulty:coap-acks-bad-non": _fail(("COAP-NON-001",)),
        "faulty:coap-resets-ack-and-rst": _fail(("COAP-ACK-001",)),
        "faulty:coap-acks-tkl-9": _fail(("COAP-FMT-001",)),
        "faulty:coap-dies-on-bad-nibble": _fail(("COAP-FMT-001", "COAP-FMT-002")),
        "faulty:coap-answers-malformed-non": _fail(("COAP-FMT-002",)),
        "faulty:coap-ignores-critical-request": _fail(("COAP-CRIT-001",)),
        "faulty:coap-acks-critical-response": _fail(("COAP-CRIT-002",)),
        "faulty:coap-answers-critical-non-response": _fail(("COAP-CRIT-003",)),
        "faulty:coap-ignores-duplicates": {},
        "faulty:coap-processes-duplicates": {},
    }
    if role == "constrained-ue":
        table = {sut: {c: v for c, v in cases.items() if c not in _PC5_ONLY} for sut, cases in table.items()}
    return table


# role -> SUT -> {case id: verdict}
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "relay": {
        "reference": {},
        **_coap_variants("relay"),
        # existing variants of the role: only those that break something the coap cases see
        "faulty:rewrites-payload": _RELAY_PROBE_FAILS,
        "faulty:reserialises-json": _RELAY_PROBE_FAILS,
        "faulty:silent": _RELAY_PROBE_FAILS,
        "faulty:sends-garbage": _fail(_ALL),  # malformed relaying: message-layer fails, should or not
        # RFC 7252 5.4.1 both ways: no 4.02 for a request, no Reset for a response
        "faulty:ignores-critical-option": _fail(("COAP-CRIT-001", "COAP-CRIT-002")),
        # stops relaying downlink after a malformed datagram on the network side: the probe after
        # every case that sends sut.uu one fails
        "faulty:uu-dies-on-malformed": _fail(
            ("COAP-ACK-001", "COAP-FMT-001", "COAP-FMT-002", "COAP-NON-001", "COAP-REJ-001", "COAP-VER-001")
        ),
    },
    "gateway": {"reference": {}, **_coap_variants("gateway")},
    "constrained-ue": {
        "reference": {},
        **_coap_variants("constrained-ue"),
        "faulty:cue-wrong-port": _CUE_PROBE_FAILS,
        "faulty:cue-direct-to-scms": _CUE_PROBE_FAILS,
        "faulty:cue-also-direct-to-scms": _CUE_PROBE_FAILS,  # its extra GET is unexpected in every case
    },
}

# role -> SUT -> the coap cases in which the SUT's run records a deviation (a SHOULD not held, on
# a check that passes); every SUT not listed records none. The SHOULD variants, and the SUTs whose
# defect also stops a step of a should case (its probe, or the 4.02 that COAP-DUP-002 repeats).
_DUP_BOTH = {"COAP-DUP-001", "COAP-DUP-002"}
DEVIATIONS: dict[str, dict[str, set[str]]] = {
    "relay": {
        "faulty:coap-ignores-duplicates": _DUP_BOTH,
        "faulty:coap-processes-duplicates": {"COAP-DUP-002"},
        "faulty:coap-ignores-critical-request": {"COAP-DUP-002"},
        "faulty:ignores-critical-option": {"COAP-DUP-002"},
        "faulty:rewrites-payload": _DUP_BOTH,
        "faulty:reserialises-json": _DUP_BOTH,
        "faulty:silent": _DUP_BOTH,
        "faulty:sends-garbage": _DUP_BOTH,
    },
    "gateway": {
        "faulty:coap-ignores-duplicates": _DUP_BOTH,
        "faulty:coap-processes-duplicates": {"COAP-DUP-002"},
        "faulty:coap-ignores-critical-request": {"COAP-DUP-002"},
    },
    "constrained-ue": {
        "faulty:coap-ignores-duplicates": {"COAP-DUP-001"},
        "faulty:cue-wrong-port": {"COAP-DUP-001"},
        "faulty:cue-direct-to-scms": {"COAP-DUP-001"},
        "faulty:cue-also-direct-to-scms": {"COAP-DUP-001"},
    },
}

# Variants of the role suites not run against the coap suite, and why.
NOT_RUN: dict[str, str] = {
    "faulty:floods": "floods the probe's client with 3,000 copies: whether a copy also reuses a Message ID of "
    "the case (REQ-COAP-MSG-3) is chance, so the verdict of a should case is not fixed",
}
