"""The live run's reports for an offline analysis: Allure results, the compliance matrix, the
sequence charts and the HTML report, built by the same code as a run's (``report/``).

Two kinds of "case" come out of a trace:

* for the **Allure results**, one result per judged exchange (a failing exchange is a failed
  test of its own, with its frames, its chart and a pcap of just those frames; the report's
  statistics and categories then count exchanges, and the tree groups them by specification,
  clause and requirement like the live cases). Bounded: the first :data:`ATTACH_NONPASS`
  exchanges that did not pass and the first :data:`ATTACH_PASS` that passed get a result with
  their evidence; the rest are counted (every one is in ``results.json`` and ``junit.xml``, and
  the compliance matrix attached to the report counts them all);
* for the **compliance matrix**, one case per capture and topology, one check per kind of exchange
  (title, verdict, requirements) with how many exchanges it stands for: the matrix decides each
  requirement from the checks that name it, as for a live case; a requirement no exchange of the
  trace exercised is ``uncovered``.

The decisive frames are read back by a second streaming pass over each capture that keeps only
the frame numbers of the exchanges that get a result. Each result is described by
:func:`msgin5g_conformance.report.allure.annotate` (the live labels, links, steps, statuses and
attachments, the chart from :mod:`msgin5g_conformance.report.msc`), driven through
allure-python-commons without pytest by :class:`_Listener`.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import allure_commons
import allure_commons.logger
import allure_commons.reporter
import allure_commons.utils
import allure_pytest.utils
from allure_commons.model2 import Label, Link, Parameter, StatusDetails, TestResult, TestStepResult

from msgin5g_conformance import __version__
from msgin5g_conformance.analyze.capture import Frame, iter_capture
from msgin5g_conformance.analyze.checks import Judgement
from msgin5g_conformance.analyze.roles import Address, RoleMap, Topology
from msgin5g_conformance.engine.case import decoded
from msgin5g_conformance.engine.verdict import CaseResult, StepResult, Verdict
from msgin5g_conformance.plugin import case_record, result_json
from msgin5g_conformance.report import gate, matrix, publish, rundir
from msgin5g_conformance.report.allure import annotate, register_verdict_words
from msgin5g_conformance.report.matrix import MANIFEST, sha256_file
from msgin5g_conformance.spec.model import TestCase
from msgin5g_conformance.spec.requirements import catalogue
from msgin5g_conformance.wire.capture.pcap import write_pcap
from msgin5g_conformance.wire.capture.record import Datagram
from msgin5g_conformance.wire.numbers import (
    OPTION_FORMATS,
    OptionFormat,
    decode_uint,
    option_name,
)
from msgin5g_conformance.world.profile import Profile

ATTACH_NONPASS = 500  # exchanges that did not pass and get an Allure result with their evidence
ATTACH_PASS = 100  # passing exchanges that do
PROVISIONAL_USED = ("recipient_option", "port_match")  # profile items every relay judgement rests on
# allure-python-commons carries no annotations: its functions are called through these
_commons: Any = allure_commons
_status: Any = allure_pytest.utils  # how allure-pytest derives a step's status (as for a live case)
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Pick:
    """An exchange that gets an Allure result: which capture, its number there (as junit.xml)."""

    capture: str
    number: int
    j: Judgement


@dataclass
class _Group:
    """Every exchange of one capture and topology with one title, verdict and requirements."""

    count: int
    first: Judgement


@dataclass
class _Case:
    capture: str
    topology: str
    role: str
    groups: dict[tuple[str, str, tuple[str, ...]], _Group] = field(default_factory=dict)
    exchanges: int = 0


class Collector:
    """Fed every judgement as the analysis makes it; keeps per-case tallies and the capped picks
    (memory bounded by the caps and the kinds of exchange, not by the trace)."""

    def __init__(self, roles: RoleMap, profile: Profile) -> None:
        self.roles = roles
        self.profile = profile
        self.cases: dict[tuple[str, str], _Case] = {}
        self.picks: list[Pick] = []
        self.nonpass = 0
        self.passed = 0
        self.frames: dict[str, int] = {}  # capture -> frames the checks judged

    def add(self, capture: str, number: int, j: Judgement) -> None:
        case = self.cases.get((capture, j.topology))
        if case is None:
            role = next((t.role for t in self.roles.topologies if t.name == j.topology), "relay")
            case = self.cases[(capture, j.topology)] = _Case(capture, j.topology, role)
        case.exchanges += 1
        key = (j.title, j.verdict.value, j.requirements)
        group = case.groups.get(key)
        if group is None:
            case.groups[key] = _Group(1, j)
        else:
            group.count += 1
        if j.verdict is Verdict.PASS:
            self.passed += 1
            if self.passed <= ATTACH_PASS:
                self.picks.append(Pick(capture, number, j))
        else:
            self.nonpass += 1
            if self.nonpass <= ATTACH_NONPASS:
                self.picks.append(Pick(capture, number, j))

    def cap_line(self) -> str:
        shown_nonpass = min(self.nonpass, ATTACH_NONPASS)
        shown_pass = min(self.passed, ATTACH_PASS)
        text = (
            f"Allure: {shown_nonpass + shown_pass} of {self.nonpass + self.passed} exchanges written with their "
            f"frames and chart ({shown_nonpass} of {self.nonpass} that did not pass, {shown_pass} of "
            f"{self.passed} that passed"
        )
        if self.nonpass > ATTACH_NONPASS or self.passed > ATTACH_PASS:
            text += (
                f"; capped at the first {ATTACH_NONPASS} that did not pass and the first {ATTACH_PASS} that "
                "passed: every exchange is in results.json and junit.xml"
            )
        return text + ")"


# --------------------------------------------------------------------------- #
# Names and decoded frames
# --------------------------------------------------------------------------- #


def node_names(t: Topology) -> dict[Address, str]:
    """The role map's name of each address of a topology (``cue1``, ``relay.pc5``, ``scms``)."""
    names: dict[Address, str] = {t.scms: "scms"}
    side = "gateway" if t.role == "gateway" else "relay"
    if t.pc5 is not None:
        names[t.pc5] = f"{side}.pc5"
    if t.uu is not None:
        names[t.uu] = f"{side}.uu"
    if t.cue is not None:
        names[t.cue] = "sut.cue"
    if t.peer is not None:
        names[t.peer] = "peer"
    for c in t.clients:
        names[c.endpoint] = c.name
    return names


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _text_or_hex(value: bytes) -> dict[str, str]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": value.hex()}
    return {"text": text} if text.isprintable() else {"hex": value.hex()}


def _option(number: int, value: bytes) -> dict[str, Any]:
    """One option decoded by its registered format (RFC 7252 3.2): a number, text or bytes."""
    fmt = OPTION_FORMATS.get(number)
    shown: dict[str, Any]
    if fmt is OptionFormat.UINT and len(value) <= 8:
        shown = {"uint": decode_uint(value)}
    elif fmt is OptionFormat.EMPTY or not value:
        shown = {}
    elif fmt is OptionFormat.OPAQUE:
        shown = {"hex": value.hex()}
    else:
        shown = _text_or_hex(value)
    return {"number": number, "name": option_name(number), **shown}


def frame_record(f: Frame, t0: float, names: dict[Address, str], profile: Profile) -> dict[str, Any]:
    """One frame as the live exchange record (``CaseRun.describe``: what the charts and the decoded
    datagrams read), ``seq`` being the frame number of the capture, plus its time and decoding."""
    rec: dict[str, Any] = {
        "seq": f.number,
        "t_ms": round((f.when - t0) * 1000, 3),
        "src": f"{f.src[0]}:{f.src[1]}",
        "dst": f"{f.dst[0]}:{f.dst[1]}",
        "src_node": names.get(f.src),
        "dst_node": names.get(f.dst),
        "hex": f.payload.hex(),
        "frame": f.number,
        "time": _when(f.when),
    }
    m = decoded(f.payload, profile.recipient_option, rec)
    if m is None:
        return rec
    rec.update(
        options=[_option(n, v) for n, v in m.options],
        payload={"bytes": len(m.payload), **_text_or_hex(m.payload)} if m.payload else None,
    )
    return rec


def decisive_frames(path: Path, numbers: set[int]) -> dict[int, Frame]:
    """A second streaming pass: only the frames named (it stops once it has them all)."""
    found: dict[int, Frame] = {}
    if not numbers:
        return found
    for item in iter_capture(path):
        if isinstance(item, Frame) and item.number in numbers:
            found[item.number] = item
            if len(found) == len(numbers):
                break
    return found


# --------------------------------------------------------------------------- #
# Allure without pytest
# --------------------------------------------------------------------------- #


class _Listener:
    """What allure-pytest's listener does for ``allure.dynamic``, ``allure.step`` and
    ``allure.attach``, for the one test result in progress (no pytest here)."""

    def __init__(self) -> None:
        self.reporter: Any = _commons.reporter.AllureReporter()

    @allure_commons.hookimpl
    def start_step(self, uuid: str, title: str, params: dict[str, Any]) -> None:
        parameters = [Parameter(name=k, value=_commons.utils.represent(v)) for k, v in params.items()]
        self.reporter.start_step(
            None, uuid, TestStepResult(name=title, start=_commons.utils.now(), parameters=parameters)
        )

    @allure_commons.hookimpl
    def stop_step(self, uuid: str, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.reporter.stop_step(
            uuid,
            stop=_commons.utils.now(),
            status=_status.get_status(exc_val),
            statusDetails=_status.get_status_details(exc_type, exc_val, exc_tb),
        )

    @allure_commons.hookimpl
    def attach_data(self, body: Any, name: str, attachment_type: Any, extension: str) -> None:
        self.reporter.attach_data(uuid.uuid4(), body, name=name, attachment_type=attachment_type, extension=extension)

    @allure_commons.hookimpl
    def attach_file(self, source: str, name: str, attachment_type: Any, extension: str) -> None:
        self.reporter.attach_file(uuid.uuid4(), source, name=name, attachment_type=attachment_type, extension=extension)

    @allure_commons.hookimpl
    def add_title(self, test_title: str) -> None:
        test = self.reporter.get_test(None)
        if test:
            test.name = test_title

    @allure_commons.hookimpl
    def add_description(self, test_description: str) -> None:
        test = self.reporter.get_test(None)
        if test:
            test.description = test_description

    @allure_commons.hookimpl
    def add_link(self, url: str, link_type: str, name: str | None) -> None:
        test = self.reporter.get_test(None)
        if test and all(link.url != url for link in test.links):
            test.links.append(Link(link_type, url, url if name is None else name))

    @allure_commons.hookimpl
    def add_label(self, label_type: str, labels: Any) -> None:
        test = self.reporter.get_test(None)
        for label in labels if test else ():
            test.labels.append(Label(label_type, label))


@contextlib.contextmanager
def allure_writer(folder: Path) -> Iterator[_Listener]:
    """Allure results written into ``folder`` (emptied first) while the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    listener = _Listener()
    logger = _commons.logger.AllureFileLogger(str(folder))
    names = (f"msgin5g-analyze-listener-{id(listener)}", f"msgin5g-analyze-files-{id(logger)}")
    register_verdict_words()  # the status from our verdict, as for a live case
    allure_commons.plugin_manager.register(listener, names[0])
    allure_commons.plugin_manager.register(logger, names[1])
    try:
        yield listener
    finally:
        for name in names:
            allure_commons.plugin_manager.unregister(name=name)


# --------------------------------------------------------------------------- #
# Cases and results
# --------------------------------------------------------------------------- #


def _testcase(
    cid: str, title: str, purpose: str, requirements: tuple[str, ...], role: str, file: str, sha: str
) -> TestCase:
    cat = catalogue()
    clause = next((cat[r].clause for r in requirements if r in cat), "")
    return TestCase(
        id=cid,
        title=title,
        purpose=purpose,
        clause=clause,
        requirements=requirements,
        strength="shall",
        role=role,
        depends_on=(),
        capabilities=(),
        profile_conditions={},
        links=(),
        configurations={},
        steps=(),
        scms_mode="scripted",
        hold_ack=(),
        option=None,
        readings=(),
        file=file,
        line=0,
        sha256=sha,
    )


def _readings(profile: Profile, requirements: tuple[str, ...]) -> dict[str, str]:
    if "REQ-RELAY-DL-3" in requirements and "other_response_codes" in profile.readings:
        return {"other_response_codes": str(profile.readings["other_response_codes"])}
    return {}


def _missing(j: Judgement, t: Topology | None, first: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """For a copy that never came: (who should have received it, the SUT side it should have come
    from), so the chart draws it as ``expected, never came``."""
    if j.verdict is not Verdict.FAIL or len(j.frames) != 1 or t is None:
        return None, None
    # the relay's waits that expired (RelayAnalysis._expire), whichever requirements they name
    if j.title == "GET not relayed uplink":
        return "scms", node_names(t).get(t.uu) if t.uu else None
    if j.title.endswith(" not relayed downlink") and first is not None:
        client = t.client_by_id(first.get("recipient") or "")
        return (client.name if client else None), (node_names(t).get(t.pc5) if t.pc5 else None)
    return None, None


class Reports:
    """Writes the reports of one analysis into ``out`` from a :class:`Collector`."""

    def __init__(self, out: Path, collector: Collector, profile: Profile, roles: RoleMap) -> None:
        self.out = out
        self.c = collector
        self.profile = profile
        self.roles = roles
        self.roles_sha = sha256_file(Path(roles.source))
        started = datetime.now(UTC)
        self.sut = ", ".join(dict.fromkeys(t.name for t in roles.topologies)) or "the capture's SUT"
        self.run = {
            "id": rundir.new_run_id(f"analyze-{self.sut}", started),
            "started": started.isoformat(timespec="seconds"),
            "finished": None,
            "capture": "offline analysis of " + ", ".join(sorted({Path(c).name for c, _ in collector.cases})),
            "sut": {
                "kind": "capture",
                "name": self.sut,
                "description": f"judged offline from the capture(s) with the role map {roles.source}",
                "roles": sorted({t.role for t in roles.topologies}),
            },
        }

    def _topology(self, name: str) -> Topology | None:
        return next((t for t in self.roles.topologies if t.name == name), None)

    def write(self, *, html: bool) -> list[str]:
        lines = [self.write_allure()]
        lines += self.write_matrix(html=html)
        return lines

    # -- Allure ---------------------------------------------------------------

    def write_allure(self) -> str:
        by_capture: dict[str, list[Pick]] = {}
        for p in self.c.picks:
            by_capture.setdefault(p.capture, []).append(p)
        with (
            allure_writer(self.out / "allure-results") as listener,
            tempfile.TemporaryDirectory(prefix="msgin5g-frames-") as tmp,
        ):
            for capture, picks in by_capture.items():
                frames = decisive_frames(Path(capture), {n for p in picks for n in p.j.frames})
                for p in picks:
                    self._exchange(p, frames, Path(tmp), listener.reporter)
        return self.c.cap_line()

    def _exchange(self, p: Pick, frames: dict[int, Frame], tmp: Path, reporter: Any) -> None:
        j = p.j
        t = self._topology(j.topology)
        names = node_names(t) if t else {}
        got = [frames[n] for n in j.frames if n in frames]
        t0 = got[0].when if got else j.when
        exchange = [frame_record(f, t0, names, self.profile) for f in got]
        name = Path(p.capture).name
        cid = f"{name}#{p.number:04d}"
        frames_text = ", ".join(map(str, j.frames)) or "none"
        purpose = (
            f"Judged offline from {p.capture} ({j.topology or 'the capture'}), frames {frames_text}: {j.reason}."
            f" The attached pcap holds just these frames (renumbered from 1)."
        )
        case = _testcase(cid, j.title, purpose, j.requirements, t.role if t else "relay", p.capture, self.roles_sha)
        node, peer = _missing(j, t, exchange[0] if exchange else None)
        step = StepResult(
            "1",
            "expect" if node else "exchange",
            None,
            j.verdict,
            f"{j.title}: {j.reason} (frames {frames_text})",
            datagram=None if node else (j.frames[-1] if j.frames else None),
            node=node,
            peer=peer,
            requirements=j.requirements,
            covered_ms=j.covered_ms,
        )
        pcap: str | None = None
        if got:
            small = tmp / f"{_SLUG.sub('_', cid)}.pcap"
            try:
                write_pcap(small, [Datagram(f.number, f.when, f.src, f.dst, f.payload) for f in got])
                pcap = str(small)
            except ValueError:  # e.g. IPv4 and IPv6 in one exchange: the frames are still attached
                pcap = None
        result = CaseResult(
            cid,
            j.verdict,
            j.reason,
            [step],
            self.profile.name,
            self.profile.sha256,
            j.topology or self.sut,  # the chart's and the tag's SUT: this exchange's topology
            "offline",
            pcap,
            sorted(self.profile.provisional & set(PROVISIONAL_USED)),
            0.0,
            decisive_step="1" if j.verdict is not Verdict.PASS else None,
            decisive_datagram=step.datagram if j.verdict is not Verdict.PASS else None,
            exchange=exchange,
            exchange_summary={"datagrams": len(exchange), "shown": len(exchange), "omitted": 0, "pcap": pcap},
            readings=_readings(self.profile, j.requirements),
        )
        record = result_json(case, result, self.run)
        record["capture"] = name  # the chart's subline: which capture
        test_uuid = uuid.uuid4().hex
        test = TestResult(
            uuid=test_uuid,
            name=f"{cid}: {j.title}",
            fullName=f"{p.capture}#{p.number}",
            historyId=f"{p.capture}#{j.topology}#{','.join(map(str, j.frames))}",
            testCaseId=f"{name}#{j.topology}#{j.title}",
            start=_commons.utils.now(),
        )
        test.labels += [Label("parentSuite", name), Label("suite", j.topology or "capture")]
        if j.verdict is not Verdict.PASS:
            test.statusDetails = StatusDetails(message=j.reason)
        reporter.schedule_test(test_uuid, test)
        annotate(case, result, record)
        allure_commons.plugin_manager.hook.attach_data(
            body=json.dumps(
                {
                    "capture": p.capture,
                    "topology": j.topology,
                    "frames": j.frames,
                    "read_back": [r["frame"] for r in exchange],
                    "decoded": exchange,
                },
                indent=1,
                ensure_ascii=False,
            ),
            name="decisive frames",
            attachment_type="application/json",
            extension="json",
        )
        test.stop = _commons.utils.now()
        reporter.close_test(test_uuid)

    # -- the compliance matrix -------------------------------------------------

    def _case_id(self, capture: str, topology: str) -> str:
        return _SLUG.sub("_", f"{Path(capture).name}-{topology or 'capture'}").strip("_")

    def write_matrix(self, *, html: bool) -> list[str]:
        results = self.out / "results"
        results.mkdir(parents=True, exist_ok=True)
        for old in results.glob("*.json"):
            old.unlink()
        self.run["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        records = []
        for _, case in sorted(self.c.cases.items()):
            tc, result = self._matrix_case(case)
            records.append(case_record(tc))
            record = result_json(tc, result, self.run)
            (results / f"{tc.id}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        manifest = {"run": self.run, "cases": records, "collection_errors": []}
        (results / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        m = matrix.build(results, Path(self.roles.source).parent, results, self.profile, None, __version__)
        json_path, md_path = matrix.write(m, self.out)
        lines = [f"warning: {w}" for w in m.get("warnings", [])]
        lines.append(f"compliance matrix: {md_path} and {json_path}")
        decision = gate.check(results, max_file_bytes=self.profile.max_file_bytes)
        lines += publish.publish(self.out, m, decision, html_report=html)
        return lines

    def _matrix_case(self, case: _Case) -> tuple[TestCase, CaseResult]:
        cid = self._case_id(case.capture, case.topology)
        steps = []
        verdict = Verdict.PASS
        requirements: set[str] = set()
        for n, ((title, _, reqs), g) in enumerate(case.groups.items(), 1):
            j = g.first
            verdict = verdict.worst(j.verdict)
            requirements.update(reqs)
            many = f"{g.count} exchanges" if g.count > 1 else "1 exchange"
            steps.append(
                StepResult(
                    str(n),
                    "exchange",
                    None,
                    j.verdict,
                    f"{many} {title}: {j.verdict.value}; the first, frames {j.frames}: {j.reason}",
                    datagram=j.frames[-1] if j.frames else None,
                    requirements=reqs,
                    covered_ms=j.covered_ms,
                )
            )
        frames = self.c.frames.get(case.capture, 0)
        steps.append(
            StepResult(
                "end",
                "no-unexpected",
                None,
                Verdict.PASS,
                f"the whole capture was read: {frames} frame(s) on the role map's addresses judged, "
                f"{case.exchanges} exchange(s)",
            )
        )
        reqs = tuple(sorted(requirements))
        decisive = next((s for s in steps if s.verdict is verdict and verdict is not Verdict.PASS), None)
        reason = decisive.reason if decisive else f"every one of the {case.exchanges} judged exchange(s) passed"
        tc = _testcase(
            cid,
            f"{case.topology or 'capture'} in {Path(case.capture).name}",
            f"The exchanges of {case.capture} judged offline with the role map {self.roles.source}.",
            reqs,
            case.role,
            self.roles.source,
            self.roles_sha,
        )
        result = CaseResult(
            cid,
            verdict,
            reason,
            steps,
            self.profile.name,
            self.profile.sha256,
            self.sut,
            "offline",
            case.capture,
            sorted(self.profile.provisional & set(PROVISIONAL_USED)),
            0.0,
            decisive_step=decisive.index if decisive else None,
            decisive_datagram=decisive.datagram if decisive else None,
            readings=_readings(self.profile, reqs),
        )
        return tc, result
