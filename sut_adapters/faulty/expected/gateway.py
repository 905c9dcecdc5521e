"""Gateway UE: faulty variant -> the gateway cases it must not pass (every other gateway case passes)."""

from __future__ import annotations

# The bulk configuration cases (6.2.2.x's MAY); the Gateway UE's own configuration cases (GW-CFG-*)
# are a SHOULD, so no variant fails them: see DEVIATIONS.
GW_ALL = [
    "GW-BULK-001",
    "GW-BULK-002",
    "GW-BULK-003",
    "GW-BULK-004",
    "GW-BULK-005",
    "GW-ERR-001",
    "GW-SPLIT-001",
    "GW-SPLIT-002",
    "GW-WAIT-001",
]

# The scale cases (200 and 1,000 constrained UEs in one bulk GET) apply only under a profile whose
# bulk_policy.min_batch holds them (>= 200, >= 1,000): under the self-test profile (min_batch 50)
# they are not applicable, and tests/test_scale.py runs them under min_batch 1,000. The verdicts
# below are theirs there. GW-SCALE-001's 200 requests stay below that batch and go out on the
# max_wait timer; GW-SCALE-002's 1,000 reach it.
GW_SCALE = ["GW-SCALE-001", "GW-SCALE-002"]
SCALE_FAIL = {  # variants failing both, for the reasons they fail GW-BULK-003
    "faulty:gw-omits-one-ue",
    "faulty:gw-lists-one-twice",
    "faulty:gw-no-bulk-flag",
    "faulty:gw-everything-to-everyone",
    "faulty:gw-loses-one-response",
    "faulty:gw-wrong-recipient",
    "faulty:gw-stops-blockwise",
    "faulty:gw-copies-to-idle-ue",
    "faulty:gw-float-numbers",
    "faulty:gw-duplicate-keys",
}

# SUT -> {case id: verdict}: the cases it must not pass, with the verdict they must have.
EXPECTED: dict[str, dict[str, str]] = {
    "reference": {},
    "faulty:gw-omits-one-ue": dict.fromkeys(GW_ALL, "fail"),
    "faulty:gw-lists-one-twice": dict.fromkeys(GW_ALL, "fail"),
    "faulty:gw-drops-vendor": {"GW-BULK-001": "fail"},
    "faulty:gw-no-bulk-flag": dict.fromkeys(GW_ALL, "fail"),
    "faulty:gw-ignores-max-wait": dict.fromkeys(
        ["GW-BULK-001", "GW-BULK-005", "GW-ERR-001", "GW-SPLIT-001", "GW-SPLIT-002", "GW-WAIT-001"], "fail"
    ),
    # The timer still fires, so only the case that needs the full batch to trigger notices.
    "faulty:gw-ignores-min-batch": {"GW-BULK-002": "fail"},
    "faulty:gw-everything-to-everyone": dict.fromkeys(
        ["GW-BULK-001", "GW-BULK-002", "GW-BULK-003", "GW-BULK-005", "GW-SPLIT-001", "GW-SPLIT-002"], "fail"
    ),
    "faulty:gw-loses-one-response": dict.fromkeys(
        [c for c in GW_ALL if c != "GW-ERR-001"],  # ERR-001's lost UE is a 4.04, not a 2.05
        "fail",
    ),
    "faulty:gw-wrong-recipient": dict.fromkeys(
        ["GW-BULK-001", "GW-BULK-002", "GW-BULK-003", "GW-BULK-005", "GW-ERR-001", "GW-SPLIT-001", "GW-SPLIT-002"],
        "fail",
    ),
    # Half a block-wise transfer: only the 50-UE answers need more than one block.
    "faulty:gw-stops-blockwise": dict.fromkeys(["GW-BULK-002", "GW-BULK-003"], "fail"),
    "faulty:gw-fans-out-errors": {"GW-ERR-001": "fail"},
    # A copy of each configuration to a UE that never asked: judged wherever a 2.05 is split.
    "faulty:gw-copies-to-idle-ue": dict.fromkeys(GW_ALL, "fail"),
    # JSON judged by type and without repeated keys: wherever a document reaches a UE.
    "faulty:gw-float-numbers": dict.fromkeys(GW_ALL, "fail"),
    "faulty:gw-duplicate-keys": dict.fromkeys(GW_ALL, "fail"),
    # REQ-GW-CFG-1 is a SHOULD ("should support the configuration management client functionality"):
    # its cases pass with a recorded deviation, never fail (tests/test_gateway_own_config.py).
    "faulty:gw-never-asks-own-config": {},
    "faulty:gw-own-config-no-ue-id": {},
    "faulty:gw-own-config-on-bulk-path": {},
}

# SUT -> the GW-CFG cases it must pass with a recorded deviation deciding REQ-GW-CFG-1 (the other
# GW-CFG cases pass without one); tests/test_gateway_own_config.py checks it.
DEVIATIONS: dict[str, set[str]] = {
    "reference": set(),
    "faulty:gw-never-asks-own-config": {"GW-CFG-001", "GW-CFG-002"},  # nothing asked, nothing handled
    "faulty:gw-own-config-no-ue-id": {"GW-CFG-001"},  # the SCM-S still answers it 4.04
    # the bulk answer it gets is no configuration document: nothing handled as 4.04 either
    "faulty:gw-own-config-on-bulk-path": {"GW-CFG-001", "GW-CFG-002"},
}

for _sut in SCALE_FAIL:
    EXPECTED[_sut].update(dict.fromkeys(GW_SCALE, "fail"))
# With min_batch 1,000 the 200 requests of GW-SCALE-001 wait for the timer it ignores.
EXPECTED["faulty:gw-ignores-max-wait"]["GW-SCALE-001"] = "fail"
