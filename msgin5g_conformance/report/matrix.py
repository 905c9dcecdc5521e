"""The compliance matrix: every catalogued requirement, the cases citing it and their verdicts.

:func:`build` reads the per-case result records (``reports/results/*.json``), the test case
files and the pcaps, and returns one plain dict; :func:`write` renders it as
``compliance.json`` and ``compliance.md``.

Requirement status, from the verdicts of the cases citing it:

* ``uncovered`` - no test case cites it;
* ``fail`` - at least one case failed (the SUT broke it);
* ``error`` - otherwise, at least one case could not be run properly (harness or set-up);
* ``inconclusive`` - otherwise, at least one case could not decide;
* ``not-run`` - otherwise, at least one citing case has no result in this run;
* ``not-applicable`` - every citing case was not applicable to the SUT;
* ``pass`` - every citing case that applied passed.

A requirement is flagged *provisional* when a citing case relied on a profile item the profile
marks provisional: the verdict stands only as far as that profile value does.

Each case lists the faulty variants of the reference that the self-test proves it fails
(``proven_by``, read from the self-test's own table, ``sut_adapters/faulty/expected/``): the
evidence that a pass of that case means something. A requirement the catalogue marks
``unobservable`` under the run's readings (the Gateway UE's own configuration client where it is
not collocated and uses SEAL-C) carries that reason, so it is not left silent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.report import rundir
from msgin5g_conformance.spec.loader import discover, load_testcase
from msgin5g_conformance.spec.requirements import catalogue
from msgin5g_conformance.world.profile import Profile
from sut_adapters.faulty.expected import proven_cases

FORMAT = "msgin5g-compliance/1"
MANIFEST = "_collected.json"  # beside the results: every case the run collected (written by the plugin)
NONE = "\u2014"
STATUS_ORDER = ("fail", "error", "inconclusive", "not-run", "pass", "not-applicable", "uncovered")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def read_results(results_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """All result records in a folder, sorted by case id, and a line per unreadable file."""
    folder = Path(results_dir)
    results: list[dict[str, Any]] = []
    problems: list[str] = []
    if not folder.is_dir():
        return [], [f"{folder}: no such results folder"]
    for f in sorted(folder.glob("*.json")):
        if f.name.startswith("_"):  # the run's own records (e.g. the collected cases), not results
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{f}: unreadable result: {exc}")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or "verdict" not in data:
            problems.append(f"{f}: not a test case result (expected a mapping with id and verdict)")
            continue
        results.append(data)
    results.sort(key=lambda r: str(r["id"]))
    return results, problems


_RANK = {"pass": 0, "inconclusive": 1, "fail": 2, "error": 3}


def per_requirement(result: Mapping[str, Any]) -> dict[str, str]:
    """What one case result says of each requirement: the worst verdict of the checks that decide it.

    A requirement the case cites that no check decided (the case stopped before it, or errored)
    takes the case's verdict."""
    out: dict[str, str] = {}
    for step in result.get("steps") or []:
        verdict = str(step.get("verdict", ""))
        if verdict not in _RANK:
            continue
        for req in step.get("requirements") or []:
            if _RANK[verdict] >= _RANK.get(out.get(req, "pass"), 0):
                out[req] = verdict
    case_verdict = str(result.get("verdict", ""))
    for req in result.get("requirements") or []:
        stopped = case_verdict in ("error", "inconclusive") and not _decided_fully(result)
        if req not in out or (stopped and out[req] == "pass"):
            out[req] = case_verdict
    return out


def _deviations_by_requirement(result: Mapping[str, Any]) -> dict[str, int]:
    """How many SHOULDs did not hold, per requirement of the check that saw them."""
    out: dict[str, int] = {}
    for step in result.get("steps") or []:
        for req in step.get("requirements") or []:
            if step.get("deviations"):
                out[req] = out.get(req, 0) + len(step["deviations"])
    return out


def _decided_fully(result: Mapping[str, Any]) -> bool:
    """Whether the case ran to its end (its catch-all ran): then a passing check stands."""
    return any(step.get("kind") == "no-unexpected" for step in result.get("steps") or [])


def _collected(
    results_dir: Path, tc_dir: Path, profile: Profile, warnings: list[str]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    """The collected cases as the run recorded them (``_collected.json``), and their files."""
    manifest = results_dir / MANIFEST
    defined: dict[str, dict[str, Any]] = {}
    files: list[dict[str, str]] = []
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            records = list(data["cases"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.append(f"{manifest}: unreadable record of the collected cases: {exc}")
            records = []
        listed: set[str] = set()
        for rec in records:
            if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                path = Path(str(rec.get("file", "")))
                shown = path.relative_to(tc_dir).as_posix() if path.is_relative_to(tc_dir) else path.as_posix()
                defined[rec["id"]] = {**rec, "file": shown}
                if shown not in listed:  # a role-independent file: once, under its own id
                    listed.add(shown)
                    files.append(
                        {
                            "file": shown,
                            "sha256": str(rec.get("sha256", "")),
                            "id": str(rec.get("base_id") or rec["id"]),
                        }
                    )
        return defined, sorted(files, key=lambda f: f["file"])
    warnings.append(f"{manifest}: no record of the collected cases; the test case files were read instead")
    paths = discover([tc_dir]) if tc_dir.is_dir() else []
    if not tc_dir.is_dir():
        warnings.append(f"{tc_dir}: no such test case folder")
    for path in paths:
        entry = {"file": path.relative_to(tc_dir).as_posix(), "sha256": sha256_file(path), "id": ""}
        files.append(entry)
        try:
            tc = load_testcase(path, profile)
        except DefinitionError as exc:
            warnings.append(f"test case file not loadable: {exc}")
            continue
        entry["id"] = tc.id
        defined[tc.id] = {
            "id": tc.id,
            "title": tc.title,
            "file": entry["file"],
            "sha256": tc.sha256,
            "clause": tc.clause,
            "requirements": list(tc.requirements),
            "strength": tc.strength,
            "role": tc.role,
        }
    return defined, files


def requirement_status(verdicts: Iterable[str]) -> str:
    """The status of one requirement from its cases' verdicts (see the module docstring)."""
    seen = set(verdicts)
    if not seen:
        return "uncovered"
    for status in ("fail", "error", "inconclusive", "not-run"):
        if status in seen:
            return status
    if seen == {"not-applicable"}:
        return "not-applicable"
    return "pass"


def capture_path(pcap: str, results_dir: Path, pcaps_dir: Path) -> Path | None:
    """Where a result's capture is: named relative to the run directory (the results folder's
    parent), as an absolute path, or (moved) by its file name in the captures folder."""
    named = Path(pcap)
    for candidate in (
        named if named.is_absolute() else results_dir.parent / named,
        named,
        pcaps_dir / named.name,
    ):
        if candidate.is_file():
            return candidate
    return None


def _own_captures(
    results: Sequence[Mapping[str, Any]], results_dir: Path, pcaps_dir: Path, warnings: list[str]
) -> dict[str, tuple[str, str]]:
    """case id -> (file name, SHA-256) of the capture each result of this run names; captures
    in the folder that no result names (another run's) are left out, with a warning."""
    out: dict[str, tuple[str, str]] = {}
    used: set[Path] = set()
    for r in results:
        if not r.get("pcap"):
            continue
        path = capture_path(str(r["pcap"]), results_dir, pcaps_dir)
        if path is None:
            warnings.append(f"{r['id']}: its capture {r['pcap']} is missing")
            continue
        used.add(path.resolve())
        out[str(r["id"])] = (path.name, sha256_file(path))
    if pcaps_dir.is_dir():
        strays = sorted(
            p.name
            for p in pcaps_dir.iterdir()
            if p.suffix in (".pcap", ".pcapng") and p.is_file() and p.resolve() not in used
        )
        if strays:
            shown = ", ".join(strays[:5]) + (f" and {len(strays) - 5} more" if len(strays) > 5 else "")
            warnings.append(
                f"{pcaps_dir}: {len(strays)} capture(s) no result of this run names (another run's?), "
                f"not hashed: {shown}"
            )
    return out


def run_identity(results_dir: Path, results: Sequence[Mapping[str, Any]], warnings: list[str]) -> dict[str, Any]:
    """The identity of the run the results belong to (the record of what it collected names it;
    results name theirs), with a warning for every result of another run, SUT or profile."""
    ident: dict[str, Any] = {}
    manifest = results_dir / MANIFEST
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        recorded = json.loads(manifest.read_text(encoding="utf-8")).get("run")
        if isinstance(recorded, dict):
            ident = recorded
    if not ident:
        ident = next((dict(r["run"]) for r in results if isinstance(r.get("run"), dict)), {})
    # a merged run (report --run A --run B) holds the results of its shards
    mine = set(ident.get("merged_from") or []) or {ident.get("id")}
    for r in results:
        other = r.get("run")
        if not isinstance(other, dict) or not ident:
            continue
        if other.get("id") not in mine:
            warnings.append(f"{r['id']}: result of another run ({other.get('id')}), not of {ident.get('id')}")
        elif isinstance(other.get("sut"), dict) and other["sut"].get("confirmed"):
            ident.setdefault("sut", {}).setdefault("confirmed", other["sut"]["confirmed"])
    return ident


def build(
    results_dir: str | Path,
    testcases_dir: str | Path,
    pcaps_dir: str | Path,
    profile: Profile,
    sut: str | None,
    harness_version: str,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The compliance matrix of one run as a JSON-ready dict.

    ``sut`` names the SUT the run was against; ``None`` takes it from the results (the names
    found, joined with ", " if they differ).
    """
    results, warnings = read_results(results_dir)
    run = run_identity(Path(results_dir), results, warnings)
    if sut is None:
        names = sorted({str(r["sut"]) for r in results if r.get("sut")})
        sut = rundir.sut_label(run["sut"]) if run.get("sut") else ", ".join(names) or "unknown"
    tc_dir, pcap_dir = Path(testcases_dir), Path(pcaps_dir)
    cat = catalogue()

    # The cases the run collected (so a case that did not run still shows up as not-run), as the
    # run recorded them; only a run that left no record makes the matrix read the YAML files.
    defined, files = _collected(Path(results_dir), tc_dir, profile, warnings)

    captures = _own_captures(results, Path(results_dir), pcap_dir, warnings)
    pcaps = [{"file": name, "sha256": digest, "id": cid} for cid, (name, digest) in sorted(captures.items())]

    proven = proven_cases()

    def proven_by(cid: str) -> list[str]:
        return proven.get(cid) or proven.get(cid.split("[", 1)[0], [])  # COAP-...[relay]: that role's run

    cases: dict[str, dict[str, Any]] = {}
    for r in results:
        cid = str(r["id"])
        d = defined.get(cid, {})
        if d and r.get("sha256") and d["sha256"] != r["sha256"]:
            warnings.append(f"{cid}: the test case file changed after the run (SHA-256 differs)")
        if r.get("profile_sha256") and r["profile_sha256"] != profile.sha256:
            warnings.append(
                f"{cid}: run with profile {r.get('profile')!r} ({str(r['profile_sha256'])[:12]}...), "
                f"not the reported profile {profile.name!r} ({profile.sha256[:12]}...)"
            )
        if r.get("sut") and r["sut"] != sut:
            warnings.append(f"{cid}: run against SUT {r['sut']!r}, not {sut!r}")
        pcap_name = Path(str(r["pcap"])).name if r.get("pcap") else None
        pcap_sum = captures[cid][1] if cid in captures else None
        cases[cid] = {
            "id": cid,
            "title": r.get("title", d.get("title", "")),
            "file": d.get("file", r.get("file", "")),
            "requirements": list(r.get("requirements") or d.get("requirements") or []),
            "strength": r.get("strength", d.get("strength", "")),
            "role": r.get("role", d.get("role", "")),
            "verdict": str(r["verdict"]),
            "reason": str(r.get("reason", "")),
            "provisional": sorted(r.get("provisional") or []),
            "pcap": pcap_name,
            "pcap_sha256": pcap_sum,
            "duration_s": r.get("duration_s"),
            "readings": dict(r.get("readings") or {}),
            "deviations": _deviations_by_requirement(r),
            "proven_by": proven_by(cid),
        }
    for cid, d in defined.items():
        if cid not in cases:
            cases[cid] = {
                **{k: d[k] for k in ("id", "title", "file", "requirements", "strength", "role")},
                "verdict": "not-run",
                "reason": "no result in this run",
                "provisional": [],
                "pcap": None,
                "pcap_sha256": None,
                "duration_s": None,
                "readings": {},
                "deviations": {},
                "proven_by": proven_by(cid),
            }

    # Which requirements each case decided, and how: a check names the requirement it decides,
    # so a case that failed one requirement can still show another as passed.
    decided = {str(r["id"]): per_requirement(r) for r in results}
    citing: dict[str, list[str]] = {}
    for cid in sorted(cases):
        for req in sorted(set(cases[cid]["requirements"]) | set(decided.get(cid, {}))):
            citing.setdefault(req, []).append(cid)
            if req not in cat:
                warnings.append(f"{cid}: cites {req}, which is not in the requirement catalogue")

    def verdict_of(cid: str, rid: str) -> str:
        return decided.get(cid, {}).get(rid) or cases[cid]["verdict"]

    requirements = []
    for rid, req in cat.items():
        ids = citing.get(rid, [])
        provisional = sorted(
            {
                item
                for c in ids
                for item in cases[c]["provisional"]
                if cases[c]["verdict"] not in ("not-run", "not-applicable")
            }
        )
        unobservable = req.unobservable_under(profile.readings)
        requirements.append(
            {
                "id": rid,
                "title": req.title,
                "clause": req.clause,
                "tag": req.tag,
                "note": req.note,
                # nothing of it is on the wire under the run's readings: the note says why
                "unobservable": (", ".join(f"{k}: {v}" for k, v in req.unobservable) if unobservable else None),
                "status": requirement_status(verdict_of(c, rid) for c in ids),
                "strength": sorted({str(cases[c]["strength"]) for c in ids if cases[c]["strength"]}),
                "readings": {k: v for c in ids for k, v in cases[c]["readings"].items()},
                "warnings": sum(cases[c]["deviations"].get(rid, 0) for c in ids),
                "provisional": bool(provisional),
                "provisional_items": provisional,
                "cases": [
                    {
                        "id": c,
                        "verdict": verdict_of(c, rid),
                        "provisional": cases[c]["provisional"],
                        "proven_by": cases[c]["proven_by"],
                    }
                    for c in ids
                ],
            }
        )

    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return {
        "format": FORMAT,
        "identity": {
            "run": run.get("id"),
            "started": run.get("started"),
            "finished": run.get("finished"),
            "sut_detail": run.get("sut") or {},
            "capture": run.get("capture"),
            "harness_version": harness_version,
            # how the run read the open points, whether or not a case of this run rested on one
            "profile": rundir.profile_identity(profile),
            "sut": sut,
            "date": when,
            "testcases_dir": str(tc_dir),
            "pcaps_dir": str(pcap_dir),
            "testcases": files,
            "pcaps": pcaps,
        },
        "summary": {
            "requirements": dict(Counter(r["status"] for r in requirements)),
            "cases": dict(Counter(c["verdict"] for c in cases.values())),
            "provisional_requirements": sum(1 for r in requirements if r["provisional"]),
        },
        "requirements": requirements,
        "cases": [cases[c] for c in sorted(cases)],
        "warnings": warnings,
    }


def _cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _counts(counts: Mapping[str, int]) -> str:
    keys = [k for k in STATUS_ORDER if k in counts] + sorted(k for k in counts if k not in STATUS_ORDER)
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "none"


def identity_rows(ident: Mapping[str, Any], code: Callable[[str], str] = str) -> list[tuple[str, str]]:
    """The run's identity as (label, text) rows, the product first: what every report shows on
    its first screen (the matrix, the HTML report's environment, the one-page summary); ``code``
    marks up a hash (Markdown: as code)."""
    sut = ident.get("sut_detail") or {}
    rows = [("SUT", str(ident.get("sut") or "unknown"))]
    if sut.get("description"):
        rows.append(("Description", str(sut["description"])))
    confirmed = sut.get("confirmed")
    if confirmed:
        said = " ".join(str(confirmed[k]) for k in ("name", "version") if confirmed.get(k))
        shown = rundir.sut_label({**sut, "kind": "external"})
        rows.append(("Ready event", said + ("" if said == shown else f" (the SUT profile says {shown})")))
    if sut.get("roles"):
        rows.append(("Roles", ", ".join(sut["roles"])))
    rows.append(("Declared options", ", ".join(sut.get("options") or []) or "none"))
    profile = ident.get("profile") or {}
    rows.append(("Profile", f"{profile.get('name', '?')} (SHA-256 {code(str(profile.get('sha256', '')))})"))
    rows.append(("Readings", rundir.readings_text(profile.get("readings") or {}) or "none"))
    rows.append(("Harness version", str(ident.get("harness_version", "?"))))
    if ident.get("capture"):
        rows.append(("Capture", str(ident["capture"])))
    if ident.get("run"):
        rows.append(("Run", str(ident["run"])))
    rows.append(("Started", str(ident.get("started") or ident.get("date") or "?")))
    rows.append(("Report built", str(ident.get("date", "?"))))
    if sut.get("source"):
        rows.append(("SUT profile file", str(sut["source"])))
    return rows


def render_markdown(matrix: Mapping[str, Any]) -> str:
    """``compliance.md``: identity, summary, requirements, cases, file and capture hashes."""
    ident = matrix["identity"]
    out = [
        "# MSGin5G compliance matrix (TS 24.538 6.2.2)",
        "",
        "| Run | |",
        "|---|---|",
        *(f"| {_cell(k)} | {_cell(v)} |" for k, v in identity_rows(ident, lambda s: f"`{s}`")),
        f"| Test case files | {len(ident['testcases'])} in `{_cell(ident['testcases_dir'])}` |",
        f"| Captures | {len(ident['pcaps'])} of this run's results, SHA-256 below |",
        "",
        f"**Requirements:** {_counts(matrix['summary']['requirements'])}.  ",
        f"**Test cases:** {_counts(matrix['summary']['cases'])}.  ",
        f"**Provisional:** {matrix['summary']['provisional_requirements']} requirement(s) rest on provisional "
        "profile items (marked \u26a0 below).",
        "",
        "## Requirements",
        "",
        "| Requirement | Status | Strength | Reading | Warnings | Test cases | Clause | Tag | Title |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in matrix["requirements"]:
        status = r["status"].upper() if r["status"] in ("pass", "fail", "error") else r["status"]
        if r["provisional"]:
            status += f" \u26a0 provisional ({', '.join(r['provisional_items'])})"
        if r.get("unobservable"):
            status += f" (not on the wire under {r['unobservable']}: {r['note']})"
        cases = ", ".join(f"{c['id']} ({c['verdict']})" for c in r["cases"]) or NONE
        readings = ", ".join(f"{k}: {v}" for k, v in sorted(r["readings"].items())) or NONE
        strength = ", ".join(r["strength"]) or NONE
        cells = [r["id"], status, strength, readings, r["warnings"] or NONE, cases, r["clause"], r["tag"], r["title"]]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    out += [
        "",
        "## Test cases",
        "",
        "| Case | Verdict | Requirements | Provisional items | Reason | pcap SHA-256 |",
        "|---|---|---|---|---|---|",
    ]
    for c in matrix["cases"]:
        pcap = f"{c['pcap']} `{c['pcap_sha256']}`" if c.get("pcap_sha256") else (c.get("pcap") or NONE)
        provisional = ", ".join(c["provisional"]) or NONE
        out.append(
            f"| {_cell(c['id'])} | {_cell(c['verdict'])} | {_cell(', '.join(c['requirements']))} | "
            f"{_cell(provisional)} | {_cell(c['reason'])} | {_cell(pcap)} |"
        )
    out += [
        "",
        "## Cases proven to fail",
        "",
        "Per requirement, each citing case and the faulty variants of the reference that the self-test",
        "shows failing it (`--sut faulty:NAME`; a SHOULD case: recording a deviation of it): a case",
        "no variant fails would pass anything.",
        "",
        "| Requirement | Case | Faulty variants that fail it |",
        "|---|---|---|",
    ]
    for r in matrix["requirements"]:
        for c in r["cases"]:
            variants = ", ".join(v.removeprefix("faulty:") for v in c.get("proven_by", [])) or "none"
            out.append(f"| {_cell(r['id'])} | {_cell(c['id'])} | {_cell(variants)} |")
    out += ["", "## Test case files", "", "| File | Case | SHA-256 |", "|---|---|---|"]
    out += [f"| {_cell(f['file'])} | {_cell(f['id'] or '?')} | `{f['sha256']}` |" for f in ident["testcases"]]
    out += ["", "## Captures", "", "| File | SHA-256 |", "|---|---|"]
    out += [f"| {_cell(p['file'])} | `{p['sha256']}` |" for p in ident["pcaps"]]
    if matrix["warnings"]:
        out += ["", "## Warnings", ""]
        out += [f"- {w}" for w in matrix["warnings"]]
    return "\n".join(out) + "\n"


def write(matrix: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``compliance.json`` and ``compliance.md`` into ``out_dir``; return both paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    j, m = folder / "compliance.json", folder / "compliance.md"
    j.write_text(json.dumps(matrix, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    m.write_text(render_markdown(matrix), encoding="utf-8")
    return j, m
