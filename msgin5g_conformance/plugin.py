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
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.errors import DefinitionError, HarnessError, UsageError
from msgin5g_conformance.report.allure import annotate
from msgin5g_conformance.report.matrix import MANIFEST
from msgin5g_conformance.spec.loader import load_testcases
from msgin5g_conformance.spec.model import TestCase
from msgin5g_conformance.world.profile import Profile, load_profile

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
    group.addoption("--role", action="append", default=[], help="run only test cases of this role")
    group.addoption(
        "--results-dir", default=None, help="also write one JSON result per test case here (used by reports)"
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        profile = load_profile(config.getoption("--profile"))
    except DefinitionError as exc:
        raise pytest.UsageError(f"bad profile:\n{exc}") from None
    from sut_adapters.registry import make_adapter

    try:
        make_adapter(config.getoption("--sut"))  # fail early on an unknown name
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_PROFILE] = profile
    config.stash[_STATE] = {"roots": [Path(str(a).split("::")[0]).resolve() for a in config.args]}
    # A mistake in one YAML file fails that file's collection only; the other cases still run.
    config.option.continue_on_collection_errors = True
    config.addinivalue_line("markers", "msgin5g: a MSGin5G conformance test case")


def pytest_report_header(config: pytest.Config) -> str:
    """Which SUT, profile and capture mode this run uses (each result names them too)."""
    profile = config.stash[_PROFILE]
    capture = config.getoption("--wire-capture")
    how = "unprivileged in-process tap" if capture == "tap" else "live capture on lo (libpcap)"
    return (
        f"msgin5g: SUT {config.getoption('--sut')}; profile {profile.name} ({profile.source}, "
        f"sha256 {profile.sha256[:12]}); capture {capture}: {how}"
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
        seen = parent.config.stash[_STATE].setdefault("files", set())
        real = file_path.resolve()
        if real in seen:  # the same file reached again through a link: loaded once
            return None
        seen.add(real)
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
    tmp.write_text(json.dumps({"cases": cases}, indent=1), encoding="utf-8")
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
            make_adapter(spec),
            capture_mode=config.getoption("--wire-capture"),
            pcap_dir=Path(config.getoption("--pcap-dir")),
            sut_label=spec,
        )
        s.open()
        state["session"] = s
    session: Session = state["session"]
    return session


LOOKAHEAD = 64  # cases queued ahead of the one pytest is running, so late windows overlap


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
    for x in ahead:
        if x.nodeid not in futures:
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
        try:
            session = _session(self.config)
            result = _future(self).result(session.result_timeout() * 2)
        except HarnessError as exc:
            raise CaseFailed(_error_result(self.case, str(exc))) from None
        except concurrent.futures.TimeoutError:
            raise CaseFailed(_error_result(self.case, "the session gave no result in time (harness error)")) from None
        self.result = result
        self.user_properties.extend(
            [
                ("verdict", result.verdict.value),
                ("profile", result.profile),
                ("provisional", ",".join(result.provisional)),
                ("pcap", result.pcap or ""),
            ]
        )
        annotate(self.case, result)
        out = self.config.getoption("--results-dir")
        if out:
            _write_json(Path(out), self.case, result)
        if result.verdict is Verdict.PASS:
            return
        if result.verdict is Verdict.NOT_APPLICABLE:
            pytest.skip(f"not-applicable: {result.reason}")
        _raise_for(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return format_result(self.case, excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"{self.case.id}: {self.case.title}"


def _error_result(case: TestCase, reason: str) -> CaseResult:
    return CaseResult(case.id, Verdict.ERROR, reason, [], "?", "", "?", "?", None, [], 0.0)


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
    if r.sut_log:
        lines.append("  SUT log:")
        lines.extend(f"    {x}" for x in r.sut_log.splitlines()[-20:])
    return "\n".join(lines)


def result_json(case: TestCase, r: CaseResult) -> dict[str, Any]:
    return {
        **case_record(case),
        "verdict": r.verdict.value,
        "reason": r.reason,
        "decisive_step": r.decisive_step,
        "decisive_datagram": r.decisive_datagram,
        "profile": r.profile,
        "profile_sha256": r.profile_sha256,
        "sut": r.sut,
        "capture": r.capture_mode,
        "pcap": r.pcap,
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
                "findings": [f.__dict__ for f in s.findings],
            }
            for s in r.steps
        ],
        "exchange": r.exchange,
        "readings": r.readings,
        "deviations": [{"step": index, **d.__dict__} for index, d in r.deviations],
    }


def _write_json(folder: Path, case: TestCase, r: CaseResult) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{case.id}.json").write_text(json.dumps(result_json(case, r), indent=1), encoding="utf-8")
