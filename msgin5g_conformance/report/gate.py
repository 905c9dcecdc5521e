"""The CI gate: green only when every applicable test case passed, bar waived known failures.

A waiver file (YAML, checked against ``schemas/waivers.schema.json``) lists known failures::

    waivers:
      - requirement: REQ-RELAY-DL-1
        reason: 4.04 relaying lands with firmware 2.3 (ticket RELAY-118)
        expires: 2026-03-31
        cases: [RELAY-DL-003]          # optional: only these cases

Rules applied by :func:`evaluate`:

* ``pass`` and ``not-applicable`` cases are fine;
* a ``fail`` or ``inconclusive`` case is tolerated when a valid waiver names one of the
  requirements it cites (and, if the waiver lists ``cases``, the case is among them);
* an ``error`` case (the harness or its set-up broke) is never waived;
* a waiver is valid up to and including its ``expires`` day; once expired it fails the gate by
  itself, whatever the results, so that stale waivers get looked at;
* a waiver naming a requirement missing from the catalogue is an error (and fails the gate);
* no results at all fails the gate: nothing was verified;
* the run's record of what it collected (``results/_collected.json``, written by ``run``) is the
  list the results are counted against: a collected case without a result (lost to a crash, or
  overwritten by another case of the same id), a result of a case the run did not collect (left
  by another run), an unreadable result, two collected cases with one id, or a missing or
  unreadable record each fail the gate, whatever the verdicts say.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from msgin5g_conformance import schemacheck, yamlsource
from msgin5g_conformance.errors import DefinitionError, Problem
from msgin5g_conformance.report.matrix import MANIFEST, read_results
from msgin5g_conformance.spec.requirements import catalogue

SCHEMA = "waivers.schema.json"
WAIVABLE = ("fail", "inconclusive")
FINE = ("pass", "not-applicable")


@dataclass(frozen=True)
class Waiver:
    """One accepted known failure, valid through ``expires`` (inclusive)."""

    requirement: str
    reason: str
    expires: date
    cases: tuple[str, ...] | None = None
    where: str = ""  # "waivers.yaml:3", for messages

    def covers(self, case_id: str, requirements: Iterable[str]) -> bool:
        return self.requirement in requirements and (self.cases is None or case_id in self.cases)

    def label(self) -> str:
        return f"{self.where}: " if self.where else ""


@dataclass(frozen=True)
class GateResult:
    """The gate decision and the lines explaining it (the last line is the summary)."""

    ok: bool
    lines: list[str]

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def _dates_to_text(value: Any) -> Any:
    """YAML turns ``2026-03-31`` into a date; the schema checks the text form."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _dates_to_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_to_text(v) for v in value]
    return value


def _impossible_dates(text: str, file: str) -> list[Problem]:
    """Locate date-shaped values the YAML loader rejects outright (``2026-02-30``)."""
    problems: list[Problem] = []
    checker = yaml.SafeLoader("")

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(v, (*path, str(k.value)))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, i))
        elif isinstance(node, yaml.ScalarNode) and node.tag.endswith(":timestamp"):
            try:
                checker.construct_yaml_timestamp(node)
            except ValueError as exc:
                problems.append(
                    Problem(
                        file,
                        node.start_mark.line + 1,
                        yamlsource.format_path(path),
                        f"expected a date written YYYY-MM-DD, found {node.value!r} ({exc})",
                    )
                )

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        return [Problem(file, None, "", f"YAML syntax: {exc}")]
    finally:
        checker.dispose()
    if root is not None:
        walk(root, ())
    return problems or [Problem(file, None, "", "a value could not be read as a date")]


def load_waivers(path: str | Path, limit: int = yamlsource.MAX_FILE_BYTES) -> list[Waiver]:
    """Read and validate a waiver file; every mistake is a located :class:`DefinitionError`."""
    p = Path(path)
    try:
        located = yamlsource.load_file(p, limit)
    except ValueError:  # the YAML loader itself refused an impossible date
        raise DefinitionError(_impossible_dates(p.read_text(encoding="utf-8"), str(p))) from None
    located.data = _dates_to_text(located.data)
    if not isinstance(located.data, dict):
        raise DefinitionError([located.problem([], "a waiver file must be a mapping with a 'waivers' list")])
    schemacheck.check(located, SCHEMA)
    known = catalogue()
    problems: list[Problem] = []
    waivers: list[Waiver] = []
    for i, w in enumerate(located.data["waivers"]):
        if w["requirement"] not in known:
            problems.append(
                located.problem(
                    ["waivers", i, "requirement"],
                    f"unknown requirement {w['requirement']!r}; expected an id from the "
                    "requirement catalogue (msgin5g_conformance/data/requirements.yaml)",
                )
            )
            continue
        line = located.line_of(["waivers", i])
        waivers.append(
            Waiver(
                requirement=w["requirement"],
                reason=w["reason"].strip(),
                expires=date.fromisoformat(w["expires"]),
                cases=tuple(w["cases"]) if "cases" in w else None,
                where=f"{located.file}:{line}" if line else located.file,
            )
        )
    if problems:
        raise DefinitionError(problems)
    return waivers


def evaluate(
    results: Sequence[Mapping[str, Any]], waivers: Sequence[Waiver], today: date, *, strict: bool = False
) -> GateResult:
    """Decide the gate for a run's results under the given waivers on day ``today``.

    A case that passed with recorded deviations (a SHOULD that did not hold) is listed as a
    WARNING; it passes the gate unless ``strict``."""
    lines: list[str] = []
    ok = True
    known = catalogue()
    valid: list[Waiver] = []
    expired = 0
    for w in waivers:
        if w.requirement not in known:
            ok = False
            lines.append(f"ERROR {w.label()}waiver names unknown requirement {w.requirement}")
        elif w.expires < today:
            ok = False
            expired += 1
            lines.append(
                f"EXPIRED {w.label()}waiver for {w.requirement} expired on {w.expires.isoformat()} "
                f"({w.reason}); renew it or fix the failure"
            )
        else:
            valid.append(w)

    used: set[int] = set()
    counts = {"passed": 0, "not applicable": 0, "waived": 0, "failing": 0}
    warnings = 0
    ids = set()
    for r in sorted(results, key=lambda r: str(r.get("id", ""))):
        cid, verdict = str(r.get("id", "?")), str(r.get("verdict", "?"))
        ids.add(cid)
        reqs = [str(x) for x in r.get("requirements") or []]
        if verdict == "pass":
            counts["passed"] += 1
            decides = {str(s.get("index")): s.get("requirements") or [] for s in r.get("steps") or []}
            for dev in r.get("deviations") or []:
                warnings += 1
                named = [str(x) for x in decides.get(str(dev.get("step")), [])] or reqs  # the check's own
                where = f"{cid} [{', '.join(named) or 'no requirement'}] step {dev.get('step')}"
                lines.append(
                    f"WARNING {where}: {dev.get('field')}: expected {dev.get('expected')}, found {dev.get('found')} "
                    "(a SHOULD: a deviation, not a fail)"
                )
            continue
        if verdict == "not-applicable":
            counts["not applicable"] += 1
            continue
        reason = str(r.get("reason", ""))
        match = [w for w in valid if w.covers(cid, reqs)] if verdict in WAIVABLE else []
        if match:
            counts["waived"] += 1
            used.update(id(w) for w in match)
            w = match[0]
            lines.append(
                f"WAIVED {cid} ({verdict}): {reason} -- waiver for {w.requirement} until "
                f"{w.expires.isoformat()} ({w.label()}{w.reason})"
            )
            continue
        ok = False
        counts["failing"] += 1
        note = (
            " (an error verdict is never waived)"
            if verdict == "error" and any(w.covers(cid, reqs) for w in valid)
            else ""
        )
        lines.append(f"FAIL {cid} ({verdict}) [{', '.join(reqs) or 'no requirement'}]: {reason}{note}")

    for w in valid:
        if id(w) not in used:
            lines.append(f"NOTE {w.label()}waiver for {w.requirement} matched no failing case; it can be removed")
        for c in w.cases or ():
            if c not in ids:
                lines.append(f"NOTE {w.label()}waiver for {w.requirement} lists {c}, which has no result in this run")
    if not results:
        ok = False
        lines.append("FAIL no test case results: nothing was verified")
    if strict and warnings:
        ok = False
        lines.append(f"FAIL --strict: {warnings} deviation(s) from a SHOULD")
    lines.append(
        f"gate {'PASSED' if ok else 'FAILED'}: {len(results)} case(s): {counts['passed']} passed, "
        f"{counts['waived']} waived, {counts['failing']} failing, {counts['not applicable']} not applicable; "
        f"{warnings} warning(s); {expired} expired waiver(s)"
    )
    return GateResult(ok, lines)


def today_utc() -> date:
    """The date the gate compares expiries with (UTC, so every CI runner agrees)."""
    return datetime.now(UTC).date()


def collected(results_dir: str | Path) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """The cases the run recorded as collected (each with the run's id, when the record names
    the run), and a FAIL line per problem with that record."""
    path = Path(results_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        run = data.get("run") if isinstance(data.get("run"), dict) else {}
        cases = [
            {**c, "run_id": c.get("run_id") or run.get("id")}  # a merged run names each case's shard
            for c in data["cases"]
            if isinstance(c, dict) and isinstance(c.get("id"), str)
        ]
        broken = [e for e in data.get("collection_errors") or [] if isinstance(e, dict)]
    except FileNotFoundError:
        return None, [f"FAIL {path}: no record of the cases the run collected: nothing to count the results against"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return None, [f"FAIL {path}: unreadable record of the collected cases: {exc}"]
    lost = [
        f"FAIL {e.get('file', '?')}: a test case file the run could not load (its cases did not run): "
        f"{e.get('message', '?')}"
        for e in broken
    ]
    return cases, lost


def completeness(collected_cases: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]) -> list[str]:
    """A FAIL line for every collected case without a result, every result the run did not collect
    and every id two collected cases share."""
    lines: list[str] = []
    files: dict[str, list[str]] = {}
    for c in collected_cases:
        files.setdefault(str(c["id"]), []).append(str(c.get("file", "?")))
    for cid, where in sorted(files.items()):
        if len(where) > 1:
            shared = f"{len(where)} collected cases share this id ({', '.join(where)})"
            lines.append(f"FAIL {cid}: {shared}; one result hides the others")
    got = {str(r.get("id")) for r in results}
    run_of = {str(c["id"]): str(c["run_id"]) for c in collected_cases if c.get("run_id")}
    for r in sorted(results, key=lambda r: str(r.get("id"))):
        theirs = r.get("run", {}).get("id") if isinstance(r.get("run"), dict) else None
        wanted = run_of.get(str(r.get("id")))
        if wanted and theirs != wanted:
            lines.append(
                f"FAIL {r.get('id')}: the result belongs to run {theirs or '(unnamed)'}, not to this run ({wanted})"
            )
    for cid in sorted(set(files) - got):
        lines.append(f"FAIL {cid}: collected, but no result was written (lost: the case crashed or did not finish)")
    for cid in sorted(got - set(files)):
        lines.append(f"FAIL {cid}: a result of a case this run did not collect (left by another run?)")
    return lines


def check(
    results_dir: str | Path,
    waivers_file: str | Path | None = None,
    today: date | None = None,
    *,
    strict: bool = False,
    max_file_bytes: int = yamlsource.MAX_FILE_BYTES,
) -> GateResult:
    """Load a run's results and an optional waiver file, then :func:`evaluate`.

    Unreadable results or a bad waiver file fail the gate with located messages; nothing raises
    for a user's mistake.
    """
    results, problems = read_results(results_dir)
    waivers: list[Waiver] = []
    bad: list[str] = [f"ERROR {p}" for p in problems]
    cases, record = collected(results_dir)
    bad += record
    if cases is not None:
        bad += completeness(cases, results)
    if waivers_file is not None:
        try:
            waivers = load_waivers(waivers_file, max_file_bytes)
        except DefinitionError as exc:
            bad.extend(f"ERROR {p}" for p in exc.problems)
    result = evaluate(results, waivers, today or today_utc(), strict=strict)
    if not bad:
        return result
    summary = result.lines[-1].replace("gate PASSED", "gate FAILED")
    return GateResult(False, [*bad, *result.lines[:-1], summary])
