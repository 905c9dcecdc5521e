"""What each faulty variant must do to the suites: the self-test's table, in one place.

Per role, ``EXPECTED[role][sut]`` maps the cases a SUT must not pass to the verdict each must have
(``fail`` or ``inconclusive``); every other case of that role must pass. The self-test
(``tests/test_selftest*.py``) runs each role's suite against every SUT listed here and compares,
and the compliance matrix reads the same table to list, per case, the faulty variants that prove
the case can fail. One module per role, so that adding a case touches one file.
"""

from __future__ import annotations

from . import coap, cue, gateway, relay

EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "relay": relay.EXPECTED,
    "gateway": gateway.EXPECTED,
    "constrained-ue": cue.EXPECTED,
}

# Under a profile reading (see relay.UNDER_READINGS): (role, readings, SUT, {case id: verdict}).
UNDER_READINGS: list[tuple[str, dict[str, str], str, dict[str, str]]] = [
    ("relay", readings, sut, cases) for readings, sut, cases in relay.UNDER_READINGS
]

# The CoAP message-layer suite, run for every role: role -> SUT -> {case id: verdict}.
COAP: dict[str, dict[str, dict[str, str]]] = coap.EXPECTED


# SHOULD cases: no variant fails them, a variant that breaks the SHOULD passes them with a recorded
# deviation (a warning): (SUT, case id) for each, from the gateway and coap tables.
DEVIATIONS: list[tuple[str, str]] = sorted(
    {(sut, cid) for sut, cases in gateway.DEVIATIONS.items() for cid in cases}
    | {(sut, cid) for by_sut in coap.DEVIATIONS.values() for sut, cases in by_sut.items() for cid in cases}
)


def _label(sut: str, readings: dict[str, str]) -> str:
    if not readings:
        return sut
    return f"{sut} (under {', '.join(f'{k}: {v}' for k, v in sorted(readings.items()))})"


def proven_cases() -> dict[str, list[str]]:
    """Case id -> the faulty variants the self-test expects to fail it (with the readings a variant
    needs, when it breaks a profile reading; for a SHOULD case, the variants it records a deviation
    of), for every case some variant fails or deviates."""
    out: dict[str, set[str]] = {}

    def add(sut: str, cases: dict[str, str], readings: dict[str, str]) -> None:
        for cid, verdict in cases.items():
            if verdict == "fail":
                out.setdefault(cid, set()).add(_label(sut, readings))

    for by_sut in EXPECTED.values():
        for sut, cases in by_sut.items():
            add(sut, cases, {})
    for role, by_sut in COAP.items():  # by file id, and by the role's run (COAP-VER-001[relay])
        for sut, cases in by_sut.items():
            add(sut, cases, {})
            add(sut, {f"{cid}[{role}]": v for cid, v in cases.items()}, {})
    for role, devs in coap.DEVIATIONS.items():
        for sut, cids in devs.items():
            for cid in cids:
                out.setdefault(f"{cid}[{role}]", set()).add(f"{sut} (a SHOULD: deviation)")
    for _, readings, sut, cases in UNDER_READINGS:
        add(sut, cases, readings)
    for sut, cid in DEVIATIONS:
        out.setdefault(cid, set()).add(f"{sut} (a SHOULD: deviation)")
    return {cid: sorted(suts) for cid, suts in sorted(out.items())}


def variants_failing(case_id: str) -> list[str]:
    """The faulty variants the self-test expects to fail ``case_id``, sorted."""
    return proven_cases().get(case_id, [])
