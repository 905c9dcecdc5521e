"""Constrained UE: faulty variant -> the constrained-UE cases it must not pass."""

from __future__ import annotations

# SUT -> {case id: verdict}: the cases it must not pass, with the verdict they must have.
EXPECTED: dict[str, dict[str, str]] = {
    "reference": {},
    "faulty:cue-applies-others": {"CUE-RSP-004": "fail"},
    "faulty:cue-wrong-port": {"CUE-REQ-001": "fail"},
    "faulty:cue-no-recipient": {"CUE-REQ-001": "fail"},
    "faulty:cue-ignores-403": {"CUE-RSP-002": "fail"},
    # The GET also goes straight to the SCM-S's address: seen in every case, whatever it checks.
    "faulty:cue-also-direct-to-scms": dict.fromkeys(
        ["CUE-REQ-001", "CUE-RSP-001", "CUE-RSP-002", "CUE-RSP-003", "CUE-RSP-004"], "fail"
    ),
}
