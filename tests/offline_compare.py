"""The live-vs-offline comparison of the self-test: a run's pcaps re-judged with its roles.yaml.

For each case pcap and each requirement the offline checks judge for the role
(``analyze.checks.JUDGEABLE``), the live verdict of that requirement (the worst of the case's
checks that decide it) is compared with the offline one (the worst of the capture's judgements
that name it). The rule: what the live run fails must fail offline; what it passes must not fail
offline. Where the trace cannot show what the live check saw, ``tests/offline_expected.py`` says
why, case by case.
"""

from __future__ import annotations

from pathlib import Path

from msgin5g_conformance.analyze.capture import capture_files, iter_capture
from msgin5g_conformance.analyze.checks import JUDGEABLE, analyse
from msgin5g_conformance.analyze.roles import load_roles
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.world.profile import Profile

from .offline_expected import DISAGREE


def _worst(verdicts: list[Verdict]) -> Verdict | None:
    out: Verdict | None = None
    for v in verdicts:
        out = v if out is None else out.worst(v)
    return out


def live_verdicts(result: CaseResult, judgeable: frozenset[str]) -> dict[str, Verdict]:
    """Each judgeable requirement's worst verdict among the case's checks that decide it."""
    found: dict[str, list[Verdict]] = {}
    for step in result.steps:
        for r in step.requirements:
            if r in judgeable and step.verdict is not Verdict.NOT_APPLICABLE:
                found.setdefault(r, []).append(step.verdict)
    return {r: v for r, vs in found.items() if (v := _worst(vs)) is not None}


def offline_verdicts(folder: Path, profile: Profile) -> dict[str, dict[str, Verdict]]:
    """Per capture file name: each requirement's worst verdict among its judgements."""
    roles = load_roles(folder / "roles.yaml", profile.max_file_bytes)
    out: dict[str, dict[str, Verdict]] = {}
    for path in capture_files(folder):
        topologies = roles.for_capture(path)
        assert topologies, f"{path.name}: roles.yaml has no topology for it"
        judgements, _, _ = analyse(iter_capture(path), topologies, profile)
        worst: dict[str, Verdict] = {}
        for j in judgements:
            for r in j.requirements:
                worst[r] = worst[r].worst(j.verdict) if r in worst else j.verdict
        out[path.name] = worst
    return out


def offline_fails(folder: Path, profile: Profile) -> list[str]:
    """Every failing judgement of the folder's captures, as 'capture: title: reason (requirements)'."""
    roles = load_roles(folder / "roles.yaml", profile.max_file_bytes)
    out: list[str] = []
    for path in capture_files(folder):
        judgements, _, _ = analyse(iter_capture(path), roles.for_capture(path), profile)
        out += [
            f"{path.name}: {j.title}: {j.reason} ({', '.join(j.requirements)})"
            for j in judgements
            if j.verdict is Verdict.FAIL
        ]
    return out


def disagreements(
    role: str, results: dict[str, CaseResult], folder: Path, profile: Profile, breaks: str | None = None
) -> tuple[list[str], set[str], set[tuple[str, str, str]]]:
    """(mismatches no table entry explains, requirements compared, table entries used).

    ``breaks``: the requirement a faulty variant is built to break. Offline every exchange of every
    trace is judged, where a live case judges the exchanges its steps name: a variant that breaks
    its requirement in every exchange (a request from the wrong port, with no recipient) fails
    offline in cases whose live steps do not look at that. That is the variant's own fault, seen
    in more traces: allowed for that requirement only; any other offline fail is a mismatch."""
    judgeable = JUDGEABLE[role]
    offline = offline_verdicts(folder, profile)
    mismatches: list[str] = []
    compared: set[str] = set()
    used: set[tuple[str, str, str]] = set()
    for cid, result in sorted(results.items()):
        if result.pcap is None or result.verdict is Verdict.NOT_APPLICABLE:
            continue
        name = Path(result.pcap).name
        assert name in offline, f"{cid}: its pcap {name} is not in {folder}"
        judged = offline[name]
        for req, live in sorted(live_verdicts(result, judgeable).items()):
            off = judged.get(req)
            if live is Verdict.FAIL:
                ok = off is Verdict.FAIL
            elif live is Verdict.PASS:
                ok = off is not Verdict.FAIL or req == breaks
            else:
                continue  # an inconclusive or errored live check promises nothing offline
            compared.add(req)
            key = (role, cid, req)
            if key in DISAGREE:
                used.add(key)
                continue
            if not ok:
                mismatches.append(f"{cid} {req}: live {live.value}, offline {off.value if off else 'not judged'}")
    return mismatches, compared, used


def check(
    role: str, sut: str, results: dict[str, CaseResult], folder: Path, profile: Profile, breaks: str | None = None
) -> None:
    """The self-test's assertion: the offline analysis of the run's pcaps agrees with the live run."""
    mismatches, compared, _ = disagreements(role, results, folder, profile, breaks)
    assert not mismatches, f"{sut}: live and offline verdicts disagree: " + "; ".join(mismatches)
    if sut == "reference":  # what the live run judged of the judgeable requirements is compared somewhere
        judged = {r for res in results.values() for r in live_verdicts(res, JUDGEABLE[role])}
        assert judged <= compared, sorted(judged - compared)
