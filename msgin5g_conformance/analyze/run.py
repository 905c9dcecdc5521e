"""``msgin5g-conformance analyze``: judge captures with a role map, write results like a run.

Exit status like ``run``: 0 every judged exchange passed, 1 one failed, 2 bad input (a named error,
no traceback).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from msgin5g_conformance.analyze.capture import CaptureFileError, capture_files, iter_capture
from msgin5g_conformance.analyze.checks import Judgement, analyse
from msgin5g_conformance.analyze.roles import RoleMap, load_roles
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.errors import DefinitionError, HarnessError
from msgin5g_conformance.world.profile import Profile, load_profile

if TYPE_CHECKING:  # the reports (allure, pytest's plugin) are imported when they are written
    from msgin5g_conformance.analyze.report import Collector


class Outputs:
    """``results.json`` and ``junit.xml`` written as the judgements come (a long trace's verdicts
    are not held in memory), into temporary files renamed over the outputs once the analysis
    is done; the reports of :mod:`.report` are built from the :class:`Collector`'s tallies."""

    def __init__(self, out: Path, profile: Profile, roles: RoleMap) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.profile = profile
        self.roles = roles
        from msgin5g_conformance.analyze.report import Collector

        self.collector: Collector = Collector(roles, profile)
        self.tally = dict.fromkeys(Verdict, 0)
        self.worst: dict[str, Verdict] = {}
        self._json_tmp = out / f".results.json.{os.getpid()}"
        self._junit_tmp = out / f".junit-cases.xml.{os.getpid()}"
        self._json = self._json_tmp.open("w", encoding="utf-8")
        self._junit = self._junit_tmp.open("w", encoding="utf-8")
        head = {
            "profile": profile.name,
            "profile_sha256": profile.sha256,
            "readings": profile.readings,
            "roles": roles.source,
        }
        self._json.write(json.dumps(head, indent=1)[:-2] + ',\n "captures": {')
        self._captures = 0
        self._capture = ""
        self._count = 0
        self.judged = 0  # judgements of the current capture
        self.with_requirements = 0

    def begin(self, path: str) -> None:
        self._json.write(("," if self._captures else "") + f"\n  {json.dumps(path)}: [")
        self._captures += 1
        self._capture = path
        self.judged = self.with_requirements = 0

    def add(self, j: Judgement) -> None:
        self.judged += 1
        self.with_requirements += bool(j.requirements)
        self._json.write(("," if self.judged > 1 else "") + "\n   " + json.dumps(_record(j)))
        self.tally[j.verdict] += 1
        for r in j.requirements:
            self.worst[r] = self.worst.get(r, Verdict.PASS).worst(j.verdict)
        self._count += 1
        text = f"{j.reason}; frames {j.frames}; {', '.join(j.requirements)}"
        case = ET.Element("testcase", classname=Path(self._capture).name, name=f"{self.judged:04d} {j.title}")
        if j.verdict is Verdict.FAIL:
            ET.SubElement(case, "failure", message=text)
        elif j.verdict is Verdict.ERROR:
            ET.SubElement(case, "error", message=text)
        elif j.verdict is Verdict.INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=f"inconclusive: {text}")
        self._junit.write(ET.tostring(case, encoding="unicode") + "\n")
        self.collector.add(self._capture, self.judged, j)
        if j.verdict is not Verdict.PASS:
            print(  # as it comes: a long trace's failures are not held
                f"{Path(self._capture).name}: frames {j.frames}: {j.verdict.value}: {j.title}: {j.reason} "
                f"[{', '.join(j.requirements)}]"
            )

    def end(self, frames: int) -> None:
        self._json.write("\n  ]")
        self.collector.frames[self._capture] = frames

    def finish(self) -> None:
        """The trailers, and the files renamed into place."""
        worst = {r: v.value for r, v in sorted(self.worst.items())}
        self._json.write("\n },\n " + '"requirements": ' + json.dumps(worst, indent=1).replace("\n", "\n ") + "\n}\n")
        self._json.close()
        self._junit.close()
        os.replace(self._json_tmp, self.out / "results.json")
        t = self.tally
        head = (
            "<?xml version='1.0' encoding='utf-8'?>\n"
            f'<testsuite name="msgin5g-analyze" tests="{self._count}" failures="{t[Verdict.FAIL]}" '
            f'errors="{t[Verdict.ERROR]}" skipped="{t[Verdict.INCONCLUSIVE]}">\n'
        )
        junit = self.out / f".junit.xml.{os.getpid()}"
        with junit.open("w", encoding="utf-8") as f, self._junit_tmp.open(encoding="utf-8") as cases:
            f.write(head)
            shutil.copyfileobj(cases, f)
            f.write("</testsuite>\n")
        self._junit_tmp.unlink()
        os.replace(junit, self.out / "junit.xml")

    def discard(self) -> None:
        """Bad input: the partial files go, nothing of this analysis is left."""
        for f in (self._json, self._junit):
            f.close()
        for p in (self._json_tmp, self._junit_tmp):
            p.unlink(missing_ok=True)


def judge(paths: list[Path], roles: RoleMap, profile: Profile, w: Outputs) -> None:
    """Every capture's judgements into ``w``; HarnessError for a capture the role map says nothing of."""
    judged = 0
    for path in paths:
        topologies = roles.for_capture(path)
        if not topologies:
            continue
        judged += 1
        w.begin(str(path))
        _, frames, matched = analyse(iter_capture(path), topologies, profile, w.add)
        if frames == 0 and not w.judged:
            names = ", ".join(sorted(roles.addresses()))
            raise HarnessError(f"{roles.source}: names no address of the trace {path} (it names {names})")
        if not w.with_requirements and matched:
            w.add(
                Judgement(
                    "no CoAP exchange",
                    Verdict.ERROR,
                    "the role map's addresses carry no exchange the checks can judge",
                    (),
                    [],
                    0.0,
                )
            )
        w.end(frames)
    if not judged:
        raise HarnessError(f"{roles.source}: no topology of the role map belongs to {', '.join(map(str, paths))}")


def judgements(paths: list[Path], roles: RoleMap, profile: Profile) -> dict[str, list[Judgement]]:
    """Every capture's judgements, held in memory (small captures: the self-tests); the command
    itself streams them (:func:`judge`)."""
    out: dict[str, list[Judgement]] = {}
    for path in paths:
        topologies = roles.for_capture(path)
        if topologies:
            out[str(path)] = analyse(iter_capture(path), topologies, profile)[0]
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


def cmd_analyze(
    captures: list[str], roles_path: str, profile_path: str | None, out: str | None, *, html: bool = False
) -> int:
    """The command: judge, write results.json and junit.xml, then the reports of a run (Allure
    results, compliance matrix, sequence charts, summary and, with ``html``, the HTML report and
    the PDF summary: the command line's default, ``--no-html`` leaves them out)."""
    target = Path(out) if out else Path("analysis")
    w: Outputs | None = None
    try:
        profile = load_profile(profile_path)
        roles = load_roles(roles_path, profile.max_file_bytes)
        paths = [f for c in captures for f in capture_files(c)]
        missing = [p for p in paths if not p.is_file()]
        if missing or not paths:
            raise HarnessError(f"no capture file at {missing[0] if missing else ', '.join(captures)}")
        w = Outputs(target, profile, roles)
        judge(paths, roles, profile, w)
    except (DefinitionError, CaptureFileError, HarnessError) as exc:
        if w is not None:
            w.discard()
        print(f"msgin5g-conformance analyze: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if w is not None:
            w.discard()
        print(f"msgin5g-conformance analyze: cannot write {target}: {exc}", file=sys.stderr)
        return 2
    w.finish()
    from msgin5g_conformance.analyze.report import Reports

    try:
        lines = Reports(target, w.collector, profile, roles).write(html=html)
    except (OSError, HarnessError) as exc:  # a capture changed under the second pass, a full disk
        print(f"msgin5g-conformance analyze: reports not written in {target}: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    tally = w.tally
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


def analyze_benchmark(path: str | Path, roles: str | Path | None = None, tally: dict[str, int] | None = None) -> int:
    """Analyse one capture with a generic role map (or ``roles``) as the command does (judgements
    handed on as they are made, not held); the number of frames judged. ``tally`` receives the
    count of judgements per verdict."""
    profile = load_profile(None)
    if roles is None:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "roles.yaml"
            f.write_text(GENERIC_ROLES, encoding="utf-8")
            role_map = load_roles(f)
    else:
        role_map = load_roles(roles)
    counts = tally if tally is not None else {}

    def count(j: Judgement) -> None:
        value = j.verdict._value_  # the member's attribute: .value is a Python-level property
        counts[value] = counts.get(value, 0) + 1

    _, frames, _ = analyse(iter_capture(path), list(role_map.topologies), profile, count)
    return frames
