"""``msgin5g-conformance analyze``: judge captures with a role map, write results like a run.

Exit status like ``run``: 0 every judged exchange passed, 1 one failed, 2 bad input (a named error,
no traceback).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree as ET

from msgin5g_conformance.analyze.capture import CaptureFileError, capture_files, iter_capture
from msgin5g_conformance.analyze.checks import Judgement, analyse
from msgin5g_conformance.analyze.roles import RoleMap, load_roles
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.errors import DefinitionError, HarnessError
from msgin5g_conformance.world.profile import Profile, load_profile


def judge(paths: list[Path], roles: RoleMap, profile: Profile) -> dict[str, list[Judgement]]:
    """Every capture's judgements; HarnessError for a capture the role map says nothing of."""
    out: dict[str, list[Judgement]] = {}
    for path in paths:
        topologies = roles.for_capture(path)
        if not topologies:
            continue
        judgements, frames, matched = analyse(iter_capture(path), topologies, profile)
        if frames == 0 and not judgements:
            names = ", ".join(sorted(roles.addresses()))
            raise HarnessError(f"{roles.source}: names no address of the trace {path} (it names {names})")
        if not any(j.requirements for j in judgements) and matched:
            judgements.append(
                Judgement(
                    "no CoAP exchange",
                    Verdict.ERROR,
                    "the role map's addresses carry no exchange the checks can judge",
                    (),
                    [],
                    0.0,
                )
            )
        out[str(path)] = judgements
    if not out:
        raise HarnessError(f"{roles.source}: no topology of the role map belongs to {', '.join(map(str, paths))}")
    return out


def _record(j: Judgement) -> dict[str, object]:
    return {
        "title": j.title,
        "verdict": j.verdict.value,
        "reason": j.reason,
        "requirements": list(j.requirements),
        "frames": j.frames,
        "time": j.when,
        "covered_ms": j.covered_ms,
        "topology": j.topology,
    }


def write_outputs(out: Path, results: dict[str, list[Judgement]], profile: Profile, roles: RoleMap) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "profile": profile.name,
        "profile_sha256": profile.sha256,
        "readings": profile.readings,
        "roles": roles.source,
        "captures": {p: [_record(j) for j in js] for p, js in results.items()},
        "requirements": _per_requirement(results),
    }
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    suite = ET.Element("testsuite", name="msgin5g-analyze")
    count = fails = errors = skipped = 0
    for path, js in results.items():
        for n, j in enumerate(js, 1):
            count += 1
            case = ET.SubElement(suite, "testcase", classname=Path(path).name, name=f"{n:04d} {j.title}")
            text = f"{j.reason}; frames {j.frames}; {', '.join(j.requirements)}"
            if j.verdict is Verdict.FAIL:
                fails += 1
                ET.SubElement(case, "failure", message=text)
            elif j.verdict is Verdict.ERROR:
                errors += 1
                ET.SubElement(case, "error", message=text)
            elif j.verdict is Verdict.INCONCLUSIVE:
                skipped += 1
                ET.SubElement(case, "skipped", message=f"inconclusive: {text}")
    suite.set("tests", str(count))
    suite.set("failures", str(fails))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    ET.ElementTree(suite).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)


def _per_requirement(results: dict[str, list[Judgement]]) -> dict[str, str]:
    """The compliance matrix of the trace: each requirement's worst verdict."""
    worst: dict[str, Verdict] = {}
    for js in results.values():
        for j in js:
            for r in j.requirements:
                worst[r] = worst.get(r, Verdict.PASS).worst(j.verdict)
    return {r: v.value for r, v in sorted(worst.items())}


def cmd_analyze(captures: list[str], roles_path: str, profile_path: str | None, out: str | None) -> int:
    try:
        profile = load_profile(profile_path)
        roles = load_roles(roles_path, profile.max_file_bytes)
        paths = [f for c in captures for f in capture_files(c)]
        missing = [p for p in paths if not p.is_file()]
        if missing or not paths:
            raise HarnessError(f"no capture file at {missing[0] if missing else ', '.join(captures)}")
        results = judge(paths, roles, profile)
    except (DefinitionError, CaptureFileError, HarnessError) as exc:
        print(f"msgin5g-conformance analyze: {exc}", file=sys.stderr)
        return 2
    target = Path(out) if out else Path("analysis")
    write_outputs(target, results, profile, roles)
    every = [j for js in results.values() for j in js]
    tally = {v: sum(j.verdict is v for j in every) for v in Verdict}
    for path, js in results.items():
        for j in js:
            if j.verdict is not Verdict.PASS:
                print(
                    f"{Path(path).name}: frames {j.frames}: {j.verdict.value}: {j.title}: {j.reason} "
                    f"[{', '.join(j.requirements)}]"
                )
    print(", ".join(f"{n} {v.value}" for v, n in tally.items() if n) + f"; results in {target}")
    if tally[Verdict.ERROR]:
        return 2
    return 1 if tally[Verdict.FAIL] else 0


GENERIC_ROLES = """\
topologies:
  - relay: {pc5: {address: 127.0.1.1, port: 65401}, uu: {address: 127.0.1.2, port: 65401}}
    scms: {address: 127.0.1.5, port: 65401, recipient: scm-s.msgin5g.example}
    clients:
      - {name: cue1, address: 127.0.1.11, port: 65401, ue_id: cue1.msgin5g.example, links: [{from: 0}]}
"""


def analyze_benchmark(path: str | Path, roles: str | Path | None = None) -> int:
    """Analyse one capture with a generic role map (or ``roles``); the number of frames judged."""
    profile = load_profile(None)
    if roles is None:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "roles.yaml"
            f.write_text(GENERIC_ROLES, encoding="utf-8")
            role_map = load_roles(f)
    else:
        role_map = load_roles(roles)
    _, frames, _ = analyse(iter_capture(path), list(role_map.topologies), profile)
    return frames
