"""pytest plugin: collects YAML test cases and runs them through the shared runner.

Registered under the ``pytest11`` entry point, so ``pytest testcases --sut NAME --profile PATH``
works from any directory once the package is installed. Verdicts map onto pytest outcomes:
pass -> passed; fail, inconclusive, error -> failed (the report says which); not-applicable ->
skipped with its reason. A mistake in a YAML file fails the collection of that file only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance import __version__
from msgin5g_conformance.engine.session import Session, longest_first
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.errors import DefinitionError, HarnessError, UsageError
from msgin5g_conformance.report import rundir
from msgin5g_conformance.report.allure import FULL_STEPS, annotate, register_verdict_words
from msgin5g_conformance.report.matrix import MANIFEST
from msgin5g_conformance.spec.loader import load_testcases
from msgin5g_conformance.spec.model import TestCase
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.base import SutAdapter
from sut_adapters.registry import confirmed as sut_confirmed

# Cases in their active phase at once: the reference opens 64; eight keep a 2-core machine's
# timers honest (the self-test runs its suites at eight and compares them with a sequential run).
DEFAULT_CONCURRENCY = 8
_PROFILE = pytest.StashKey[Profile]()
_STATE = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("msgin5g", "MSGin5G conformance")
    group.addoption("--sut", default="reference", help="SUT adapter name (default: reference)")
    group.addoption("--profile", default=None, help="protocol profile YAML (default: the shipped profile)")
    group.addoption(
        "--wire-capture",
        default="tap",
        choices=["tap", "sniff"],
        help="tap: unprivileged in-process tap (default); sniff: live capture on lo (root)",
    )
    group.addoption("--pcap-dir", default="pcaps", help="where one pcap per test case is written")
    group.addoption(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"cases in their active phase at once, never more than the SUT can open at once (each on its "
        f"own addresses; a single-instance SUT runs them one by one; default {DEFAULT_CONCURRENCY})",
    )
    group.addoption("--role", action="append", default=[], help="run only test cases of this role")
    group.addoption(
        "--results-dir", default=None, help="also write one JSON result per test case here (used by reports)"
    )
    group.addoption("--run-id", default=None, help="the run's id, named in every result (default: a new one)")
    group.addoption("--run-started", default=None, help="when the run started (ISO 8601; default: now)")
    group.addoption(
        "--run-dir", default=None, help="the run directory: captures are named relative to it in the results"
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        profile = load_profile(config.getoption("--profile"))
    except DefinitionError as exc:
        raise pytest.UsageError(f"bad profile:\n{exc}") from None
    from sut_adapters.registry import make_adapter

    try:
        adapter = make_adapter(config.getoption("--sut"), profile.max_file_bytes)  # fail early on an unknown name
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_PROFILE] = profile
    config.stash[_STATE] = {
        "roots": [Path(str(a).split("::")[0]).resolve() for a in config.args],
        "identity": run_identity(config, profile, adapter),
    }
    register_verdict_words()  # Allure statuses and error banners in our words
    # A mistake in one YAML file fails that file's collection only; the other cases still run.
    config.option.continue_on_collection_errors = True
    config.addinivalue_line("markers", "msgin5g: a MSGin5G conformance test case")


_RUN_ENV = "MSGIN5G_CONFORMANCE_RUN"  # "<id> <started>": xdist workers inherit the controller's run


def _forget_run_env() -> None:
    os.environ.pop(_RUN_ENV, None)


def run_identity(config: pytest.Config, profile: Profile, adapter: SutAdapter) -> dict[str, Any]:
    """The run's identity, named in every result and at the top of every report: which SUT (by
    name and version), profile and readings, harness version, capture mode, when."""
    from sut_adapters.registry import identity

    run_id, started = config.getoption("--run-id"), config.getoption("--run-started")
    if not run_id:
        inherited = os.environ.get(_RUN_ENV, "").split(" ")
        if len(inherited) == 2 and hasattr(config, "workerinput"):
            run_id, started = inherited
        else:
            now = datetime.now(UTC)
            run_id = rundir.new_run_id(config.getoption("--sut").rsplit("/", 1)[-1], now)
            started = started or now.isoformat(timespec="seconds")
            if not hasattr(config, "workerinput"):
                os.environ[_RUN_ENV] = f"{run_id} {started}"
                config.add_cleanup(lambda: _forget_run_env())
    sut = identity(adapter)
    return {
        "format": rundir.FORMAT,
        "id": run_id,
        "started": started or datetime.now(UTC).isoformat(timespec="seconds"),
        "harness_version": __version__,
        "sut": sut,
        "profile": rundir.profile_identity(profile),
        "capture": config.getoption("--wire-capture"),
        # cases in their active phase at once, as the session applies it (verdicts do not depend
        # on it: the self-test compares its suites at 8 with a sequential run)
        "concurrency": max(1, min(config.getoption("--concurrency"), adapter.instances)),
    }


def pytest_report_header(config: pytest.Config) -> str:
    """Which SUT, profile and capture mode this run uses (each result names them too)."""
    profile = config.stash[_PROFILE]
    capture = config.getoption("--wire-capture")
    how = "unprivileged in-process tap" if capture == "tap" else "live capture on lo (libpcap)"
    ident = config.stash[_STATE]["identity"]
    sut = ident["sut"]
    where = f" ({sut['source']})" if sut.get("source") else ""
    return (
        f"msgin5g: run {ident['id']}; SUT {rundir.sut_label(sut)}{where}; profile {profile.name} "
        f"({profile.source}, sha256 {profile.sha256[:12]}); capture {capture}: {how}"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, {})
    session = state.pop("session", None)
    if session is not None:
        session.close()


def _is_testcase_file(file_path: Path, parent: pytest.Collector) -> bool:
    """YAML under a ``testcases`` folder, or given on the command line (itself or a folder of it)."""
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    if "testcases" in file_path.parts or parent.session.isinitpath(file_path):
        return True
    roots = parent.config.stash[_STATE].get("roots", [])
    resolved = file_path.resolve()
    return any(r.is_dir() and r in resolved.parents and r.name != "tests" for r in roots)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A symlinked folder that leads back to one of its own ancestors (a loop) is not entered:
    pytest would follow it until the kernel's ELOOP and run each case 41 times."""
    if collection_path.is_symlink() and collection_path.is_dir():
        target = collection_path.resolve()
        here = collection_path.parent.resolve()
        if target == here or target in here.parents:
            return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_testcase_file(file_path, parent):
        seen: dict[Path, Path] = parent.config.stash[_STATE].setdefault("files", {})
        first = seen.setdefault(file_path.resolve(), file_path)
        if first != file_path:  # the same file reached again through a link: loaded once
            return None
        # (pytest may ask again for the same path, once per command-line argument in its folder)
        return YamlCaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Point a not-applicable skip at the test case's YAML file, not at this plugin."""
    outcome = yield
    rep = outcome.get_result()
    if isinstance(item, CaseItem) and rep.skipped and isinstance(rep.longrepr, tuple):
        rep.longrepr = (str(item.path), item.case.line, rep.longrepr[2])


def case_record(case: TestCase) -> dict[str, Any]:
    """What a report needs to know of a test case without reading its YAML again."""
    return {
        "id": case.id,
        "title": case.title,
        "file": case.file,
        "sha256": case.sha256,
        "clause": case.clause,
        "requirements": list(case.requirements),
        "strength": case.strength,
        "role": case.role,
        **({"base_id": case.base_id, "endpoints": list(case.endpoints)} if case.generic else {}),
    }


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A file that cannot be collected (a broken test case) is remembered: its cases are lost to
    the run, and the gate must count that, not pass on the cases that did load."""
    if report.failed:
        text = str(report.longrepr).strip().splitlines()
        _COLLECT_ERRORS.append({"file": report.nodeid or str(report.fspath), "message": text[0] if text else "?"})


_COLLECT_ERRORS: list[dict[str, str]] = []  # this process's collection errors (reset per session)


def pytest_sessionstart(session: pytest.Session) -> None:
    _COLLECT_ERRORS.clear()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Record which cases this run collected, so that a report knows what should have a result."""
    out = session.config.getoption("--results-dir")
    if not out:
        return
    cases = [case_record(i.case) for i in session.items if isinstance(i, CaseItem)]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    # every xdist worker collects the same items: each writes the same file, atomically
    tmp = folder / f".{MANIFEST}.{os.getpid()}"
    record = {
        "run": session.config.stash[_STATE]["identity"],
        "cases": cases,
        "collection_errors": list(_COLLECT_ERRORS),
    }
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first: dict[str, CaseItem] = {}
    for item in items:  # two files with one id: one result would overwrite the other
        if isinstance(item, CaseItem):
            other = first.setdefault(item.case.id, item)
            if other is not item:
                raise pytest.UsageError(
                    f"{item.path}:{item.case.line}: id: {item.case.id!r} is also the id of "
                    f"{other.path}:{other.case.line}; every test case needs an id of its own"
                )
    roles = config.getoption("--role")
    if not roles:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if not isinstance(item, CaseItem) or item.case.role in roles else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class YamlCaseFile(pytest.File):
    """One YAML file holding one test case (a role-independent one: one per role, e.g.
    ``COAP-VER-001[relay]``, each its own item, result and pcap)."""

    def collect(self) -> list[CaseItem]:
        cases = load_testcases(self.path, self.config.stash[_PROFILE])
        return [CaseItem.from_parent(self, name=case.id, case=case) for case in cases]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, DefinitionError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class CaseFailed(Exception):
    """Raised to make pytest report an inconclusive or error verdict as a failed test."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.reason)
        self.result = result


class CaseFailedAssertion(CaseFailed, AssertionError):
    """A ``fail`` verdict: an assertion about the SUT did not hold (Allure shows it as Failed,
    not Broken, which it keeps for inconclusive and error)."""


def _raise_for(result: CaseResult) -> None:
    if result.verdict is Verdict.FAIL:
        raise CaseFailedAssertion(result)
    raise CaseFailed(result)


def _session(config: pytest.Config) -> Session:
    state = config.stash[_STATE]
    if "session" not in state:
        from sut_adapters.registry import make_adapter

        spec = config.getoption("--sut")
        s = Session(
            config.stash[_PROFILE],
            make_adapter(spec, config.stash[_PROFILE].max_file_bytes),
            capture_mode=config.getoption("--wire-capture"),
            pcap_dir=Path(config.getoption("--pcap-dir")),
            sut_label=rundir.sut_label(state["identity"]["sut"]),
            concurrency=max(1, config.getoption("--concurrency")),
        )
        s.open()
        state["session"] = s
    session: Session = state["session"]
    return session


# cases queued ahead of the one pytest is running, so that late windows overlap and the longest
# planned cases start first (a whole shipped suite fits; the results wait, capped, for pytest)
LOOKAHEAD = 1000


def _future(item: CaseItem) -> concurrent.futures.Future[CaseResult]:
    """Submit this case (if not yet) and the cases after it, so that the session can start the
    next case while this one is in its late window. Without xdist the whole run's order is known;
    an xdist worker knows only the item it runs next."""
    state = item.config.stash[_STATE]
    futures: dict[str, concurrent.futures.Future[CaseResult]] = state.setdefault("futures", {})
    session = _session(item.config)
    ahead: list[CaseItem] = [item]
    if hasattr(item.config, "workerinput"):
        nxt = state.get("next", {}).get(item.nodeid)
        if isinstance(nxt, CaseItem):
            ahead.append(nxt)
    else:
        items = item.session.items
        with contextlib.suppress(ValueError):
            i = items.index(item)
            ahead += [x for x in items[i + 1 : i + 1 + LOOKAHEAD] if isinstance(x, CaseItem)]
    fresh = [x for x in ahead if x.nodeid not in futures]
    if session.concurrency > 1:  # cases at once: the longest planned start first
        fresh = [fresh[i] for i in longest_first([x.case for x in fresh], session.profile)]
    for x in fresh:
        futures[x.nodeid] = session.submit(x.case)
    return futures.pop(item.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Remember which item comes next (an xdist worker's only look ahead)."""
    if isinstance(item, CaseItem):
        item.config.stash[_STATE].setdefault("next", {})[item.nodeid] = nextitem


class CaseItem(pytest.Item):
    """One test case run against the SUT."""

    def __init__(self, *, case: TestCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.result: CaseResult | None = None
        self.add_marker("msgin5g")
        for req in case.requirements:
            self.user_properties.append(("requirement", req))

    def runtest(self) -> None:
        session: Session | None = None
        try:
            session = _session(self.config)
            result = _future(self).result(session.result_timeout() * 2)
        except HarnessError as exc:
            result = self._error_result(str(exc))
        except concurrent.futures.TimeoutError:
            result = self._error_result("the session gave no result in time (harness error)")
        self.result = result
        self.user_properties.extend(
            [
                ("verdict", result.verdict.value),
                ("profile", result.profile),
                ("provisional", ",".join(result.provisional)),
                ("pcap", result.pcap or ""),
            ]
        )
        state = self.config.stash[_STATE]
        ident = state["identity"]
        confirmed = sut_confirmed(session.adapter) if session is not None else None
        if confirmed and "confirmed" not in ident["sut"]:  # the ready event's name and version
            ident["sut"]["confirmed"] = confirmed
        run_dir = self.config.getoption("--run-dir")
        record = result_json(self.case, result, ident, Path(run_dir) if run_dir else None)
        annotate(self.case, result, record)
        out = self.config.getoption("--results-dir")
        if out:
            _write_json(Path(out), self.case, record)
        if result.verdict is Verdict.PASS:
            return
        if result.verdict is Verdict.NOT_APPLICABLE:
            pytest.skip(f"not-applicable: {result.reason}")
        _raise_for(result)

    def _error_result(self, reason: str) -> CaseResult:
        """An error the session could not put in a result of its own (it never opened, or gave no
        result in time): still a result, written like any other."""
        state = self.config.stash[_STATE]
        ident, profile = state["identity"], self.config.stash[_PROFILE]
        return CaseResult(
            self.case.id,
            Verdict.ERROR,
            reason,
            [],
            profile.name,
            profile.sha256,
            rundir.sut_label(ident["sut"]),
            ident["capture"],
            None,
            [],
            0.0,
        )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return format_result(self.case, excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"{self.case.id}: {self.case.title}"


def format_result(case: TestCase, r: CaseResult) -> str:
    """The failure text: verdict, the step and datagram that set it, findings, the exchange."""
    lines = [f"{r.verdict.value.upper()}: {case.id} {case.title}"]
    step = next((s for s in r.steps if s.index == r.decisive_step), None)
    where = f"{case.file}:{step.line}" if step and step.line else case.file
    lines.append(f"  at {where} (step {r.decisive_step or '-'}): {r.reason}")
    if step:
        for f in step.findings:
            if not f.ok:
                lines.append(f"    {f.field}: expected {f.expected}; found {f.found}")
    lines.append(f"  requirements: {', '.join(case.requirements)} ({case.strength}); clause {case.clause}")
    lines.append(f"  profile: {r.profile}; SUT: {r.sut}; capture: {r.capture_mode}; pcap: {r.pcap}")
    if r.provisional:
        lines.append(f"  provisional profile items relied on: {', '.join(r.provisional)}")
    if r.datagrams:
        lines.append("  exchange:")
        lines.extend(f"    {d}" for d in r.datagrams[:40])
        if len(r.datagrams) > 40:
            lines.append(f"    ... {len(r.datagrams) - 40} more datagrams in the pcap")
    if r.sut_log_excerpt:  # the SUT's own lines around the decisive datagram, polling folded
        lines.append("  SUT log (excerpt; the whole log is in the result and the report):")
        lines.extend(f"    {x}" for x in r.sut_log_excerpt.splitlines())
    elif r.sut_log:
        lines.append("  SUT log:")
        lines.extend(f"    {x}" for x in r.sut_log.splitlines()[-20:])
    return "\n".join(lines)


SUT_LOG_EXCERPT_MAX = 64 * 1024  # characters of SUT log a result keeps (the excerpt, else the tail)


def _pcap_shown(pcap: str | None, run_dir: Path | None) -> str | None:
    """A capture inside the run directory is named relative to it (the folder can be moved)."""
    if not pcap or run_dir is None:
        return pcap
    path = Path(pcap).resolve()
    return path.relative_to(run_dir.resolve()).as_posix() if path.is_relative_to(run_dir.resolve()) else pcap


def result_json(
    case: TestCase, r: CaseResult, run: dict[str, Any] | None = None, run_dir: Path | None = None
) -> dict[str, Any]:
    """One case's result record (``results/<id>.json``): the verdict, the run's identity, the
    checks with their findings, the exchange and the SUT log excerpt."""
    excerpt = r.sut_log_excerpt or r.sut_log[-SUT_LOG_EXCERPT_MAX:]
    every = len(r.steps) <= FULL_STEPS
    return {
        **case_record(case),
        "run": run,
        "verdict": r.verdict.value,
        "reason": r.reason,
        "decisive_step": r.decisive_step,
        "decisive_datagram": r.decisive_datagram,
        "profile": r.profile,
        "profile_sha256": r.profile_sha256,
        "sut": r.sut,
        "sut_source": (run or {}).get("sut", {}).get("source"),
        "capture": r.capture_mode,
        "pcap": _pcap_shown(r.pcap, run_dir),
        "provisional": r.provisional,
        "duration_s": round(r.duration_s, 4),
        "steps": [
            {
                "index": s.index,
                "kind": s.kind,
                "line": s.line,
                "verdict": s.verdict.value,
                "reason": s.reason,
                "datagram": s.datagram,
                "node": s.node,
                "peer": s.peer,
                "requirements": list(s.requirements),
                "covered_ms": s.covered_ms,
                "strength": s.strength,
                "deviations": [d.__dict__ for d in s.deviations],
                # a big case (over FULL_STEPS checks) keeps the findings of the checks that did not pass
                "findings": [f.__dict__ for f in s.findings] if every or s.verdict.value != "pass" else [],
            }
            for s in r.steps
        ],
        "exchange": r.exchange,
        "exchange_summary": r.exchange_summary,
        "readings": r.readings,
        "deviations": [{"step": index, **d.__dict__} for index, d in r.deviations],
        "sut_log": excerpt[-SUT_LOG_EXCERPT_MAX:],
        "sut_log_chars": len(r.sut_log),
    }


def _write_json(folder: Path, case: TestCase, record: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # written aside and renamed: a run stopped mid-write (SIGINT, timeout) leaves whole results only
    tmp = folder / f".{case.id}.json.{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, folder / f"{case.id}.json")
