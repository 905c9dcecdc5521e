"""Constrained UE: faulty variant -> the constrained-UE cases it must not pass."""

from __future__ import annotations

CUE_ALL = ["CUE-REQ-001", "CUE-REQ-002", "CUE-RSP-001", "CUE-RSP-002", "CUE-RSP-003", "CUE-RSP-004", "CUE-RSP-005"]

# SUT -> {case id: verdict}: the cases it must not pass, with the verdict they must have.
EXPECTED: dict[str, dict[str, str]] = {
    "reference": {},
    "faulty:cue-applies-others": {"CUE-RSP-004": "fail"},
    "faulty:cue-wrong-port": {"CUE-REQ-001": "fail"},
    "faulty:cue-no-recipient": {"CUE-REQ-001": "fail"},
    "faulty:cue-ignores-403": {"CUE-RSP-002": "fail"},
    # The GET also goes straight to the SCM-S's address: seen in every case, whatever it checks.
    "faulty:cue-also-direct-to-scms": dict.fromkeys(CUE_ALL, "fail"),
    # Only a document that fails the configuration schema shows it.
    "faulty:cue-applies-invalid": {"CUE-RSP-005": "fail"},
    # The repeated GET reaches the relay in every case (CUE-REQ-002 names it: after the 2.05).
    "faulty:cue-repeats-get": dict.fromkeys(CUE_ALL, "fail"),
    # No request reaches the relay: every case's first expectation (REQ-CUE-REQ-1) fails, and
    # what would have answered it is not judged.
    "faulty:cue-direct-to-scms": dict.fromkeys(CUE_ALL, "fail"),
}
