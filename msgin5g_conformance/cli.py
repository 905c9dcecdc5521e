"""``msgin5g-conformance``: run, list and lint test cases.

``run`` is a thin front over pytest with the conformance plugin (one runner for both), which
writes JUnit XML and allure-results into ``reports/`` and one pcap per case into ``pcaps/``.
A user's mistake (bad file, unknown SUT, bad profile) is one clear line and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from msgin5g_conformance import __version__
from msgin5g_conformance.errors import DefinitionError, UsageError
from msgin5g_conformance.spec.loader import discover, lint, load_testcases
from msgin5g_conformance.world.profile import Profile, load_profile

EXIT_USAGE = 2


def default_testcases() -> Path:
    """``./testcases`` when it exists, else the folder shipped beside the package."""
    here = Path("testcases")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "testcases"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="msgin5g-conformance",
        description="MSGin5G constrained-device configuration conformance harness (3GPP TS 24.538 clause 6.2.2).",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run test cases against a SUT")
    run.add_argument("paths", nargs="*", help="test case files or folders (default: testcases/)")
    run.add_argument("--sut", default="reference", help="SUT adapter name (default: reference)")
    run.add_argument("--profile", default=None, help="protocol profile YAML (default: shipped profile)")
    run.add_argument("-k", dest="keyword", default=None, help="only cases matching this pytest -k expression")
    run.add_argument(
        "--role",
        action="append",
        default=[],
        choices=["relay", "gateway", "constrained-ue"],
        help="only cases of this role (repeatable)",
    )
    run.add_argument(
        "--capture",
        default="tap",
        choices=["tap", "sniff"],
        help="tap: unprivileged (default); sniff: live capture on lo, needs root",
    )
    run.add_argument(
        "--reports-dir",
        default="reports",
        help="where run directories go: REPORTS/runs/<time>-<SUT>/, REPORTS/latest links the newest (default: reports)",
    )
    run.add_argument(
        "--pcap-dir",
        default=None,
        help="write the captures here instead of the run directory's pcaps/ (default: ./pcaps links to them)",
    )
    run.add_argument("--waivers", default=None, help="YAML file of known deviations, for the gate")
    run.add_argument("--strict", action="store_true", help="fail the gate on deviations from a SHOULD too")
    run.add_argument(
        "--no-html", action="store_true", help="skip the HTML report and the PDF summary (faster; matrix and gate stay)"
    )
    run.add_argument("--keep-runs", type=int, default=0, metavar="N", help="remove the oldest run directories beyond N")
    run.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="cases running at once against a SUT that opens several (default 8; 1: one by one)",
    )
    run.add_argument("-n", dest="workers", default=None, help="pytest-xdist workers (e.g. 2 or auto)")
    run.add_argument("-q", "--quiet", action="store_true")

    ls = sub.add_parser("list", help="list test cases")
    ls.add_argument("paths", nargs="*")
    ls.add_argument("--role", action="append", default=[])
    ls.add_argument("--profile", default=None, help="protocol profile YAML (default: shipped profile)")

    rp = sub.add_parser("report", help="rebuild the compliance matrix, HTML report, summary and gate of a run")
    rp.add_argument("--reports-dir", default="reports", help="where the runs are (default: reports)")
    rp.add_argument(
        "--run",
        action="append",
        default=None,
        metavar="DIR",
        help="the run directory (default: REPORTS/latest); repeated: shards of one SUT and profile, merged into "
        "a new run directory REPORTS/runs/<time>-<SUT>-merged/",
    )
    rp.add_argument("--pcap-dir", default=None, help="where the captures are, if not in the run directory")
    rp.add_argument("--profile", default=None, help="the profile the run used (default: as the run recorded it)")
    rp.add_argument("--sut", default=None, help="name the SUT so (default: as recorded in the results)")
    rp.add_argument("--testcases", default=None, help="test case folder (default: testcases/)")
    rp.add_argument("--waivers", default=None, help="YAML file of known deviations (requirement, reason, expires)")
    rp.add_argument(
        "--no-html", action="store_true", help="skip the HTML report and the PDF summary (Allure needs Node.js)"
    )
    rp.add_argument(
        "--strict", action="store_true", help="fail the gate on deviations from a SHOULD too (they are warnings)"
    )

    li = sub.add_parser("lint", help="check test case files without running them")
    li.add_argument("paths", nargs="+")
    li.add_argument("--profile", default=None)

    # numbers are checked by cmd_sweep, so that a bad one is one line naming it (not argparse's usage)
    sw = sub.add_parser("sweep", help="robustness sweep: malformed and hostile datagrams, with liveness probes")
    sw.add_argument("--sut", required=True, help="SUT adapter name or SUT profile (.yaml), as for run")
    sw.add_argument("--role", required=True, metavar="{relay,gateway,constrained-ue}", help="the role to sweep")
    sw.add_argument("--count", required=True, metavar="N", help="inputs per SUT endpoint (1 to 100000)")
    sw.add_argument("--probe-every", default="50", metavar="K", help="a liveness probe every K inputs (default: 50)")
    sw.add_argument("--seed", default="1", metavar="S", help="seed of the generators (default: 1)")
    sw.add_argument(
        "--time-limit", default="120", metavar="SECONDS", help="stop sending after this long (default: 120, max 3600)"
    )
    sw.add_argument("--profile", default=None, help="protocol profile YAML (default: shipped profile)")
    sw.add_argument("--pcap-dir", default="pcaps", help="where sweep-<role>.pcap goes (default: pcaps)")
    sw.add_argument("--out", default=None, help="JSON report (default: reports/sweep-<role>.json)")

    # load mode (docs/load.md); numbers are checked by load.make_plan, one line naming the bad one
    ld = sub.add_parser("load", help="capacity figures: R checked configuration exchanges per second through the SUT")
    ld.add_argument("--sut", default="reference", help="SUT adapter name or SUT profile (.yaml), as for run")
    ld.add_argument("--role", required=True, metavar="{relay,gateway}", help="the role to load")
    ld.add_argument("--rate", default=None, metavar="R", help="exchanges (relay) or rounds (gateway) per second")
    ld.add_argument("--duration", default="5", metavar="S", help="seconds per step (default: 5; at most 600 in all)")
    ld.add_argument("--steps", default=None, metavar="R1,R2,...", help="a stepped profile: one rate per step")
    ld.add_argument("--ues", default="10", metavar="N", help="gateway: constrained UEs per round (default: 10)")
    ld.add_argument("--clients", default="50", metavar="N", help="relay: linked tester clients (default: 50)")
    ld.add_argument(
        "--timeout",
        default=None,
        metavar="S",
        help="an exchange unanswered this long is lost (default: relay 1, gateway 2)",
    )
    ld.add_argument("--profile", default=None, help="protocol profile YAML (default: shipped profile)")
    ld.add_argument(
        "--reports-dir", default="reports", help="the run directory goes under REPORTS/runs/ (default: reports)"
    )
    ld.add_argument("--out", default=None, help="write load.json and load.html here instead of a new run directory")
    an = sub.add_parser("analyze", help="judge captures offline with a role map (docs/analyze.md)")
    an.add_argument("captures", nargs="+", help="capture files (pcap, pcapng) or folders of them")
    an.add_argument("--roles", required=True, help="the role map YAML")
    an.add_argument("--profile", default=None, help="protocol profile YAML (default: shipped profile)")
    an.add_argument("--out", default=None, help="output folder (default: analysis)")
    an.add_argument(
        "--no-html", action="store_true", help="skip the HTML report and the PDF summary (Allure needs Node.js)"
    )
    return p


def cmd_run(a: argparse.Namespace) -> int:
    """Run the cases into a run directory of their own, then write its matrix, reports and gate.

    The exit status is the gate's (0: every applicable case passed or is waived, 1: not), or
    pytest's own when the run itself broke (2 interrupted, 3 internal error, 4 usage, 5 nothing
    collected): so a CI job fails on any status but 0."""
    import pytest

    from msgin5g_conformance.report import rundir
    from sut_adapters.registry import identity, make_adapter

    try:
        profile = load_profile(a.profile)
        adapter = make_adapter(a.sut, profile.max_file_bytes)
        if a.waivers:
            from msgin5g_conformance.report import gate

            gate.load_waivers(a.waivers, profile.max_file_bytes)
        if a.concurrency is not None and not 1 <= a.concurrency <= 64:
            raise UsageError(f"--concurrency {a.concurrency}: expected 1 to 64")
        if a.keep_runs < 0:
            raise UsageError(f"--keep-runs {a.keep_runs}: expected 0 (keep every run) or more")
    except (DefinitionError, UsageError) as exc:
        print(f"msgin5g-conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    paths = a.paths or [str(default_testcases())]
    for p in paths:
        if not Path(p).exists():
            print(f"msgin5g-conformance: error: no such file or folder: {p}", file=sys.stderr)
            return EXIT_USAGE
    sut = identity(adapter)
    started = datetime.now(UTC)
    run_id = rundir.new_run_id(str(sut["name"]), started)
    try:
        run_dir = rundir.create(a.reports_dir, run_id)
        run_id = run_dir.name
        rundir.point_latest(a.reports_dir, run_dir)
    except OSError as exc:
        print(f"msgin5g-conformance: error: cannot create the run directory: {exc}", file=sys.stderr)
        return EXIT_USAGE
    pcaps = Path(a.pcap_dir) if a.pcap_dir else run_dir / "pcaps"
    record = {
        "format": rundir.FORMAT,
        "id": run_id,
        "started": started.isoformat(timespec="seconds"),
        "finished": None,
        "status": None,
        "harness_version": __version__,
        "sut": sut,
        "profile": rundir.profile_identity(profile),
        "capture": a.capture,
        "testcases": paths,
        "pcaps": str(pcaps),
    }
    rundir.write_identity(run_dir, record)
    print(f"run {run_id}: SUT {rundir.sut_label(sut)}; evidence in {run_dir}")
    args = [
        *paths,
        "--sut",
        a.sut,
        "--run-id",
        run_id,
        "--run-started",
        record["started"],
        "--run-dir",
        str(run_dir),
        "--wire-capture",
        a.capture,
        "--pcap-dir",
        str(pcaps),
        "--results-dir",
        str(run_dir / "results"),
        "--alluredir",
        str(run_dir / "allure-results"),
        "--clean-alluredir",
        "--junitxml",
        str(run_dir / "junit.xml"),
        "-o",
        "junit_family=xunit2",
        "-p",
        "no:cacheprovider",
        # Hypothesis's pytest plugin (a dev dependency, for the harness's own tests) costs a
        # conformance run 0.8 s of start-up and does nothing in it
        "-p",
        "no:hypothesispytest",
        # no assertion rewriting: a conformance run has no Python test module whose asserts need it
        "--assert=plain",
        "-rfEs",
        "-q" if a.quiet else "-v",
    ]
    if a.profile:
        args += ["--profile", a.profile]
    if a.keyword:
        args += ["-k", a.keyword]
    for r in a.role:
        args += ["--role", r]
    if a.workers:
        args += ["-n", a.workers]
    if a.concurrency is not None:
        args += ["--concurrency", str(a.concurrency)]
    try:
        code = int(pytest.main(args))
    except KeyboardInterrupt:  # a signal pytest did not turn into its status (e.g. during teardown)
        code = int(pytest.ExitCode.INTERRUPTED)
    finally:
        record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        rundir.write_identity(run_dir, record)
    if code == 5:
        print("msgin5g-conformance: no test case matched", file=sys.stderr)
    if not a.pcap_dir:
        warning = rundir.link_captures(Path("pcaps"), pcaps)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    cut_short = bool(_TERMINATED) or code == int(pytest.ExitCode.INTERRUPTED)
    gate_code = _reports(
        run_dir,
        profile,
        pcaps,
        a.waivers,
        strict=a.strict,
        html=not (a.no_html or cut_short),  # a run cut short gets its matrix and gate, fast
        sut_name=None,
        testcases=None,
    )
    status = gate_code if code in (0, 1) else code
    record["status"] = status
    rundir.write_identity(run_dir, record)
    if a.keep_runs:
        for gone in rundir.prune(a.reports_dir, a.keep_runs):
            print(f"removed the old run directory {gone}")
    return status


def _reports(
    run_dir: Path,
    profile: Profile,
    pcaps: Path,
    waivers: str | None,
    *,
    strict: bool,
    html: bool,
    sut_name: str | None,
    testcases: str | None,
) -> int:
    """Matrix, HTML report, one-page summary and gate of one run directory; the gate's status."""
    from msgin5g_conformance.report import gate, matrix, publish

    results = run_dir / "results"
    tc_dir = Path(testcases) if testcases else default_testcases()
    m = matrix.build(results, tc_dir, pcaps, profile, sut_name, __version__)
    json_path, md_path = matrix.write(m, run_dir)
    for warning in m.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    result = gate.check(results, waivers, strict=strict, max_file_bytes=profile.max_file_bytes)
    print(f"compliance matrix: {md_path} and {json_path}")
    for line in publish.publish(run_dir, m, result, html_report=html):
        print(line)
    for line in result.lines:
        print(line)
    return int(result.exit_code)


def cmd_report(a: argparse.Namespace) -> int:
    """Matrix, HTML, summary and gate of a run (the newest unless --run names one); the exit
    status is the gate's: 0 only when every applicable case passed or is covered by an unexpired
    waiver."""
    from msgin5g_conformance.report import gate, rundir

    if a.run and len(a.run) > 1:
        try:
            run_dir = rundir.merge(a.reports_dir, [Path(r) for r in a.run])
            rundir.point_latest(a.reports_dir, run_dir)
        except (ValueError, OSError) as exc:
            print(f"msgin5g-conformance: error: cannot merge the runs: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"merged {len(a.run)} runs into {run_dir}")
    else:
        run_dir = rundir.resolve(a.reports_dir, a.run[0] if a.run else None)
    recorded = rundir.read_identity(run_dir) or {}
    try:
        profile_path = a.profile
        if profile_path is None and recorded.get("profile", {}).get("source"):
            source = Path(str(recorded["profile"]["source"]))
            profile_path = str(source) if source.is_file() else None
        profile = load_profile(profile_path)
        if a.waivers:
            gate.load_waivers(a.waivers, profile.max_file_bytes)
    except DefinitionError as exc:
        print(f"msgin5g-conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not (run_dir / "results").is_dir():
        print(f"msgin5g-conformance: error: no results in {run_dir / 'results'}; run first", file=sys.stderr)
        return EXIT_USAGE
    pcaps = Path(a.pcap_dir) if a.pcap_dir else Path(str(recorded.get("pcaps") or run_dir / "pcaps"))
    if not pcaps.is_absolute() and not pcaps.is_dir() and (run_dir / "pcaps").is_dir():
        pcaps = run_dir / "pcaps"
    return _reports(
        run_dir,
        profile,
        pcaps,
        a.waivers,
        strict=a.strict,
        html=not a.no_html,
        sut_name=a.sut,
        testcases=a.testcases,
    )


def cmd_list(a: argparse.Namespace) -> int:
    paths = a.paths or [str(default_testcases())]
    try:
        profile = load_profile(a.profile)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 1
    bad = 0
    for f in discover(paths):
        try:
            cases = load_testcases(f, profile)
        except DefinitionError as exc:
            print(exc, file=sys.stderr)
            bad += 1
            continue
        # A role-independent file: one line with its id and role "any" (it runs once per role);
        # with --role, the line of each role's run that is selected (COAP-VER-001[gateway]).
        if a.role:
            shown = [(tc.id, tc.role, tc) for tc in cases if tc.role in a.role]
        else:
            shown = [(cases[0].base_id or cases[0].id, "any" if cases[0].generic else cases[0].role, cases[0])]
        for cid, role, tc in shown:
            print(f"{cid:16} {role:14} {tc.strength:6} {','.join(tc.requirements):40} {tc.title}")
    return 1 if bad else 0


def cmd_lint(a: argparse.Namespace) -> int:
    try:
        profile = load_profile(a.profile)
    except DefinitionError as exc:
        print(exc, file=sys.stderr)
        return 1
    for p in a.paths:
        if not Path(p).exists():
            print(f"{p}: no such file or folder", file=sys.stderr)
            return 1
    count, problems = lint(a.paths, profile)
    for problem in problems:
        print(problem, file=sys.stderr)
    if count == 0:
        print("no test case files found", file=sys.stderr)
        return 1
    files_bad = len({p.file for p in problems})
    print(f"{count} file(s) checked, {files_bad} with problems, {len(problems)} problem(s)")
    return 1 if problems else 0


def _sweep_numbers(a: argparse.Namespace) -> tuple[int, int, int, float]:
    """--count, --probe-every, --seed and --time-limit, each checked against its bound."""
    from msgin5g_conformance import sweep

    def whole(flag: str, text: str, low: int | None, high: int | None) -> int:
        try:
            value = int(text)
        except ValueError:
            raise UsageError(f"{flag} expects a whole number, found {text!r}") from None
        if low is not None and value < low:
            raise UsageError(f"{flag} {value} is below {low}")
        if high is not None and value > high:
            raise UsageError(f"{flag} {value} is over the bound of {high:,}; refusing to run")
        return value

    count = whole("--count", a.count, 1, sweep.MAX_COUNT)
    every = whole("--probe-every", a.probe_every, 1, None)
    seed = whole("--seed", a.seed, None, None)
    try:
        limit = float(a.time_limit)
    except ValueError:
        raise UsageError(f"--time-limit expects seconds, found {a.time_limit!r}") from None
    if not 0 < limit <= sweep.MAX_TIME_LIMIT_S:  # (also refuses nan and inf)
        raise UsageError(f"--time-limit {a.time_limit} is outside 0 < SECONDS <= {sweep.MAX_TIME_LIMIT_S:.0f}")
    return count, every, seed, limit


def cmd_load(a: argparse.Namespace) -> int:
    """Exit 0 when every exchange was checked right (no loss, no wrong delivery), 1 otherwise, 2
    for a usage or set-up error (one line on stderr)."""
    from msgin5g_conformance import load
    from msgin5g_conformance.load import report as load_report
    from msgin5g_conformance.load.runner import SetupError
    from msgin5g_conformance.report import rundir
    from sut_adapters.registry import identity, make_adapter

    def error(exc: Exception) -> int:
        one_line = "; ".join(part.strip() for part in str(exc).replace(":\n", ": ").splitlines() if part.strip())
        print(f"msgin5g-conformance: error: {one_line}", file=sys.stderr)
        return EXIT_USAGE

    try:
        plan = load.make_plan(a.role, a.rate, a.duration, a.steps, a.ues, a.clients, a.timeout)
        profile = load_profile(a.profile)
        adapter = make_adapter(a.sut, profile.max_file_bytes)
        sut = identity(adapter)
        result = load.run_load(adapter, profile, plan, sut)
    except (DefinitionError, UsageError, SetupError) as exc:
        return error(exc)
    try:
        out = Path(a.out) if a.out else rundir.create(a.reports_dir, rundir.new_run_id(f"{adapter.name}-load"))
        load_report.write(result, out)
    except OSError as exc:
        print(load_report.summary(result, None))
        return error(OSError(f"cannot write the load report: {exc}"))
    print(load_report.summary(result, out))
    return result.exit_code


def cmd_sweep(a: argparse.Namespace) -> int:
    """Exit 0 when every probe passed, 1 when the SUT stopped answering, 2 for a usage or set-up
    error (one line on stderr; nothing was sent)."""
    from msgin5g_conformance import sweep
    from sut_adapters.registry import make_adapter

    def error(exc: Exception) -> int:
        one_line = "; ".join(part.strip() for part in str(exc).replace(":\n", ": ").splitlines() if part.strip())
        print(f"msgin5g-conformance: error: {one_line}", file=sys.stderr)
        return EXIT_USAGE

    try:
        count, every, seed, limit = _sweep_numbers(a)
        if a.role not in ("relay", "gateway", "constrained-ue"):
            raise UsageError(f"--role {a.role!r}: expected one of relay, gateway, constrained-ue")
        profile = load_profile(a.profile)
        adapter = make_adapter(a.sut, profile.max_file_bytes)
    except (DefinitionError, UsageError) as exc:
        return error(exc)
    out = Path(a.out) if a.out else Path("reports") / f"sweep-{a.role}.json"
    run = sweep.Sweep(
        adapter, profile, a.role, count=count, probe_every=every, seed=seed, time_limit_s=limit, sut_label=a.sut
    )
    try:
        result = run.run()
    except sweep.SetupError as exc:
        return error(exc)
    try:
        report, pcap = sweep.write(result, out, Path(a.pcap_dir))
    except (OSError, ValueError) as exc:
        print(sweep.summary(result, None, None))
        return error(OSError(f"cannot write the sweep's report or pcap: {exc}"))
    print(sweep.summary(result, report, pcap))
    return result.exit_code


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what a CI time-out sends), handled as Ctrl-C is: the run stops, the SUT with it."""


_TERMINATED: list[int] = []  # the signal, once received (pytest turns the interrupt into status 2)


def _on_sigterm(signum: int, frame: object) -> None:
    _TERMINATED.append(signum)
    raise _Terminated


def _on_sigint(signum: int, frame: object) -> None:
    _TERMINATED.append(signum)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # Without this SIGTERM ends the interpreter at once: no cleanup, the SUT left running.
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        status = _command(a)
    except _Terminated:
        status = 143
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `list | head`: the reader left; nothing more to say, and no traceback
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if not _TERMINATED:
            raise
        # A teardown cut short by the signal can fail in a way a finished run never does (seen once
        # in about twenty interrupted runs, inside pytest's hooks): one line, not a traceback.
        print(f"msgin5g-conformance: teardown after the signal failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        status = 130
    if _TERMINATED:
        if _TERMINATED[0] == signal.SIGINT:
            print("msgin5g-conformance: interrupted (SIGINT): stopped, the SUT with it", file=sys.stderr)
            return 130
        print("msgin5g-conformance: terminated (SIGTERM): stopped, the SUT with it", file=sys.stderr)
        return 143
    return status


def _command(a: argparse.Namespace) -> int:
    if a.command == "run":
        return cmd_run(a)
    if a.command == "list":
        return cmd_list(a)
    if a.command == "report":
        return cmd_report(a)
    if a.command == "sweep":
        return cmd_sweep(a)
    if a.command == "load":
        return cmd_load(a)
    if a.command == "analyze":
        from msgin5g_conformance.analyze.run import cmd_analyze

        return cmd_analyze(a.captures, a.roles, a.profile, a.out, html=not a.no_html)
    return cmd_lint(a)


if __name__ == "__main__":
    sys.exit(main())
