"""roles.yaml beside a live run's pcaps: what it records, that it validates, and what it costs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from msgin5g_conformance.analyze import run as analyze_run
from msgin5g_conformance.analyze.roles import load_roles
from msgin5g_conformance.engine.rolemap import FILE, HEADER, RoleMapWriter, _items
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES

CASES = {
    "relay": ["RELAY-DL-001", "RELAY-DL-004", "RELAY-DL-005", "RELAY-UL-001"],
    "constrained-ue": [],
}


def _run(profile: Profile, folder: Path, ids: list[str], sut: str = "reference") -> dict[str, object]:
    cases = [load_testcase(TESTCASES / i.split("-")[0].lower() / f"{i}.yaml", profile) for i in ids]
    with Session(profile, make_adapter(sut), pcap_dir=folder, concurrency=8) as session:
        return {r.case_id: r for r in session.run_cases(cases)}


def test_a_relay_run_records_each_case(fast_profile: Profile, tmp_path: Path) -> None:
    """Every case with a pcap has its topology: the SUT's sides, the SCM-S and its recipient value,
    each client with its UE id and links (a precondition's from the case's start, a release's end;
    cue_nolink never), in the pcap's clock; the file validates and `analyze` judges the folder."""
    began = time.time()
    got = _run(fast_profile, tmp_path, CASES["relay"])
    ended = time.time()
    roles = load_roles(tmp_path / FILE)
    by_name = {t.name: t for t in roles.topologies}
    assert set(by_name) == set(got)
    for name, t in by_name.items():
        assert t.role == "relay" and t.capture == f"{name}.pcap" and (tmp_path / t.capture).is_file()
        assert t.scms_recipient == fast_profile.address_of("scms")
        assert t.pc5 is not None and t.uu is not None and t.pc5 != t.uu
        assert t.observed is not None and began <= t.observed[0] < t.observed[1] <= ended
        for c in t.clients:
            assert c.ue_id == fast_profile.client_address(c.name)
    dl4 = by_name["RELAY-DL-004"]
    nolink = next(c for c in dl4.clients if c.name == "cue_nolink")
    assert nolink.links == ()
    dl5 = {c.name: c for c in by_name["RELAY-DL-005"].clients}
    (c1_from, c1_to), (c2_from, c2_to) = dl5["cue1"].links[0], dl5["cue2"].links[0]  # type: ignore[index]
    assert c1_from == c2_from == by_name["RELAY-DL-005"].observed[0]  # type: ignore[index]
    assert c1_to is not None and c2_to is not None and c1_to < c2_to  # cue1 released in the case
    assert c2_to == by_name["RELAY-DL-005"].observed[1]  # type: ignore[index]
    # a link interval holds the datagrams of its time: a pcap timestamp in it is linked
    assert dl5["cue2"].linked_at((c2_from + c2_to) / 2) and not dl5["cue1"].linked_at(c1_to + 0.001)
    assert analyze_run.cmd_analyze([str(tmp_path)], str(tmp_path / FILE), None, str(tmp_path / "an")) == 0


def test_a_constrained_ue_case_names_its_peer(fast_profile: Profile, tmp_path: Path) -> None:
    first = sorted((TESTCASES / "constrained-ue").glob("*.yaml"))[0]
    case = load_testcase(first, fast_profile)
    with Session(fast_profile, make_adapter("reference"), pcap_dir=tmp_path) as session:
        result = session.run_case(case)
    assert result.verdict is not Verdict.ERROR, result.reason
    (t,) = load_roles(tmp_path / FILE).topologies
    assert t.role == "constrained-ue" and t.cue_id == fast_profile.address_of("sut.cue")
    assert t.peer is not None and t.peer[0].endswith(".4") and t.clients == ()


def test_a_faulty_run_is_judged_failing(fast_profile: Profile, tmp_path: Path) -> None:
    """The role map makes the offline analysis see what the live run saw: a relay that never
    relays fails offline too (the wait ran out inside the observed time)."""
    got = _run(fast_profile, tmp_path, ["RELAY-DL-001"], "faulty:silent")
    assert got["RELAY-DL-001"].verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert analyze_run.cmd_analyze([str(tmp_path)], str(tmp_path / FILE), None, str(tmp_path / "an")) == 1


def _topology(name: str, clients: int = 1) -> str:
    from msgin5g_conformance.engine.rolemap import render

    return render(
        {
            "name": name,
            "capture": f"{name}.pcap",
            "observed": {"from": 1.0, "to": 2.0},
            "relay": {"pc5": {"address": "127.0.0.1", "port": 65401}, "uu": {"address": "127.0.0.2", "port": 65401}},
            "scms": {"address": "127.0.0.5", "port": 65401, "recipient": "scm-s.msgin5g.example"},
            "clients": [
                {"name": f"cue{i}", "address": f"127.0.{i // 200}.{10 + i % 200}", "port": 65401, "ue_id": f"u{i}"}
                for i in range(1, clients + 1)
            ],
        }
    )


def test_concurrent_writers_leave_a_whole_file(tmp_path: Path) -> None:
    """Threads of one writer and a second writer of the same folder (another xdist worker): every
    topology of both ends up in the file, which is whole after every rewrite; no temp file stays."""
    a, b = RoleMapWriter(tmp_path), RoleMapWriter(tmp_path)
    seen: list[int] = []

    def work(w: RoleMapWriter, prefix: str) -> None:
        for i in range(15):
            w.add(f"{prefix}-{i:03d}", _topology(f"{prefix}-{i:03d}"))
            found = _items((tmp_path / FILE).read_text(encoding="utf-8"))
            assert found is not None
            seen.append(len(found))

    threads = [threading.Thread(target=work, args=(w, p)) for w, p in ((a, "A"), (a, "B"), (b, "C"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert {t.name for t in load_roles(tmp_path / FILE).topologies} == {
        f"{p}-{i:03d}" for p in "ABC" for i in range(15)
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    a.add("A-000", _topology("A-000", clients=2))  # a case run again replaces its topology
    (again,) = [t for t in load_roles(tmp_path / FILE).topologies if t.name == "A-000"]
    assert len(again.clients) == 2 and len(load_roles(tmp_path / FILE).topologies) == 45


def test_a_foreign_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text("topologies: []\n", encoding="utf-8")
    RoleMapWriter(tmp_path).add("X", _topology("X"))
    text = (tmp_path / FILE).read_text(encoding="utf-8")
    assert text.startswith(HEADER) and [t.name for t in load_roles(tmp_path / FILE).topologies] == ["X"]


@pytest.mark.parametrize("clients", [1, 50])
def test_two_hundred_cases_stay_cheap(tmp_path: Path, clients: int) -> None:
    """A rewrite joins texts rendered once: 200 cases (with 50 clients each: a 2 MB file at the end)
    take well under a second in all, and the 200th rewrite is not much dearer than a small one."""
    w = RoleMapWriter(tmp_path)
    texts = [_topology(f"CASE-{i:04d}", clients) for i in range(200)]
    began = time.perf_counter()
    for i, text in enumerate(texts):
        w.add(f"CASE-{i:04d}", text)
    spent = time.perf_counter() - began
    assert w.writes == 200 and spent < 2.0, spent
    found = _items((tmp_path / FILE).read_text(encoding="utf-8"))
    assert found is not None and list(found) == [f"CASE-{i:04d}" for i in range(200)]
    if clients == 1:
        assert len(load_roles(tmp_path / FILE).topologies) == 200


def _named(case: object) -> set[str]:
    """The requirements a case's checks may decide: its own, its steps' (nested ones too), and the
    message-layer well-formedness every case judges."""
    from msgin5g_conformance import roles as role_rules

    out = {*case.requirements, role_rules.MALFORMED_REQUIREMENT}  # type: ignore[attr-defined]

    def walk(step: object) -> None:
        out.update(getattr(step, "requirements", ()))
        for inner in (*getattr(step, "control", ()), *getattr(step, "body", ())):
            walk(inner)

    for step in case.steps:  # type: ignore[attr-defined]
        walk(step)
    return out


def test_the_disagreement_table_is_narrow(fast_profile: Profile) -> None:
    """Every entry of tests/offline_expected.py names a case of its role, a requirement the offline
    checks judge and a reason; and every judgeable requirement stays compared in some case."""
    from msgin5g_conformance.analyze.checks import JUDGEABLE

    from .offline_expected import DISAGREE

    folders = {"relay": "relay", "gateway": "gateway", "constrained-ue": "constrained-ue"}
    cases = {
        role: {c.id: c for c in (load_testcase(f, fast_profile) for f in sorted((TESTCASES / d).glob("*.yaml")))}
        for role, d in folders.items()
    }
    for (role, cid, req), reason in DISAGREE.items():
        assert cid in cases[role], (role, cid)
        assert req in JUDGEABLE[role] and req in _named(cases[role][cid]), (role, cid, req)
        assert len(reason) > 40, (role, cid, req)
    for role, judgeable in JUDGEABLE.items():
        for req in judgeable:
            left = [cid for cid, c in cases[role].items() if req in _named(c) and (role, cid, req) not in DISAGREE]
            assert left, f"{role} {req}: every case that judges it is excused from the comparison"


def test_the_probe_s_link_is_recorded(fast_profile: Profile, tmp_path: Path) -> None:
    """A role-independent case run in the relay role links the probe's client itself (the probe's
    relay exchange): the role map says so, and the offline analysis passes that exchange."""
    from msgin5g_conformance.spec.loader import load_testcases

    (case,) = [c for c in load_testcases(TESTCASES / "coap" / "COAP-PING-001.yaml", fast_profile) if c.role == "relay"]
    with Session(fast_profile, make_adapter("reference"), pcap_dir=tmp_path) as session:
        assert session.run_case(case).verdict is Verdict.PASS
    (t,) = load_roles(tmp_path / FILE).topologies
    linked = [c for c in t.clients if c.links]
    assert linked and all(c.links[0][0] > t.observed[0] for c in linked)  # type: ignore[index]
    assert analyze_run.cmd_analyze([str(tmp_path)], str(tmp_path / FILE), None, str(tmp_path / "an")) == 0


def test_the_relay_rules_the_comparison_added(tmp_path: Path) -> None:
    """What the live-vs-offline comparison made the offline relay checks see: an intact copy after a
    look-alike passes; a copy as an ACK, or with an option encoded otherwise, fails; a message no
    exchange accounts for fails; and `observed` lets a wait run out inside the trace."""
    from msgin5g_conformance.wire import codec
    from msgin5g_conformance.wire.numbers import Code, MessageType

    from .test_analyze import CUE1, PC5, SCMS, UU, msg, run, verdicts

    def ack(m: bytes) -> bytes:
        return bytes([(m[0] & 0xCF) | 0x20]) + m[1:]

    def con(m: bytes) -> bytes:
        return bytes([m[0] & 0xCF]) + m[1:]

    long_cf = codec.encode(
        codec.CoapMessage(
            MessageType.NON, Code.CONTENT, 12, b"\x01", ((12, b"\x00\x32"), (65003, b"cue1.msgin5g.example"))
        )
    )
    short_cf = codec.encode(
        codec.CoapMessage(MessageType.NON, Code.CONTENT, 4, b"\x01", ((12, b"\x32"), (65003, b"cue1.msgin5g.example")))
    )
    status, doc = run(
        tmp_path,
        [
            (0.0, SCMS, UU, msg(Code.CONTENT, 2, "cue1.msgin5g.example", b"{}")),
            (0.01, PC5, CUE1, msg(Code.CONTENT, 8, "cue1.msgin5g.example", b"{ }")),  # a look-alike
            (0.02, PC5, CUE1, msg(Code.CONTENT, 9, "cue1.msgin5g.example", b"{}")),  # the copy
            (0.1, SCMS, UU, msg(Code.CONTENT, 3, "cue1.msgin5g.example", b"[]")),
            (0.11, PC5, CUE1, ack(msg(Code.CONTENT, 10, "cue1.msgin5g.example", b"[]"))),  # as an ACK
            (0.2, SCMS, UU, short_cf),
            (0.21, PC5, CUE1, long_cf),  # Content-Format 50 in two bytes
            (0.3, UU, ("127.0.1.77", 65401), msg(Code.GET, 11, "scm-s.msgin5g.example", b"", ("x",))),  # to nobody
            (2.0, SCMS, SCMS, b"x"),
        ],
    )
    assert status == 1
    got = verdicts(doc)
    assert ("pass", ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1"), [1, 3]) in got
    assert ("fail", ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1"), [4, 5]) in got
    assert ("fail", ("REQ-RELAY-DL-1", "REQ-RELAY-TERM-1"), [6, 7]) in got
    assert ("fail", ("REQ-RELAY-DL-1",), [2]) in got  # the look-alike: a message of its own
    assert ("fail", ("REQ-RELAY-UL-1",), [8]) in got and len(got) == 5
    # an ACK that carries the response piggybacked on the client's own CON (RFC 7252 5.2.1) is a copy;
    # the same ACK on a Message ID the client never sent a CON with answers nothing: it fails
    for ack_mid, want in ((21, (0, ["pass", "pass"])), (99, (1, ["pass", "fail"]))):
        status, doc = run(
            tmp_path,
            [
                (0.0, CUE1, PC5, con(msg(Code.GET, 21, "scm-s.msgin5g.example", b"", ("q",)))),
                (0.01, UU, SCMS, con(msg(Code.GET, 22, "scm-s.msgin5g.example", b"", ("q",)))),
                (0.02, SCMS, UU, ack(msg(Code.CONTENT, 22, "cue1.msgin5g.example", b"{}"))),
                (0.03, PC5, CUE1, ack(msg(Code.CONTENT, ack_mid, "cue1.msgin5g.example", b"{}"))),
                (2.0, SCMS, SCMS, b"x"),
            ],
        )
        assert (status, [v for v, _, _ in verdicts(doc)]) == want, verdicts(doc)
    # the same GET without a copy: inconclusive at the trace's last frame, failed when `observed` says
    # the capture went on past the wait
    roles = """\
topologies:
  - relay: {pc5: {address: 127.0.1.1, port: 65401}, uu: {address: 127.0.1.2, port: 65401}}
    scms: {address: 127.0.1.5, port: 65401, recipient: scm-s.msgin5g.example}
    observed: {from: 999.0, to: OBSERVED}
"""
    for to, want in (("1000.5", "inconclusive"), ("1003.0", "fail")):
        folder = tmp_path / to
        folder.mkdir()
        from msgin5g_conformance.analyze.run import cmd_analyze
        from msgin5g_conformance.wire.capture.pcap import write_pcap
        from msgin5g_conformance.wire.capture.record import Datagram

        write_pcap(
            folder / "t.pcap",
            [Datagram(0, 1000.0, CUE1, PC5, msg(Code.GET, 1, "scm-s.msgin5g.example", b"q", ("su-uc",)))],
        )
        (folder / "roles.yaml").write_text(roles.replace("OBSERVED", to), encoding="utf-8")
        cmd_analyze([str(folder / "t.pcap")], str(folder / "roles.yaml"), None, str(folder / "out"))
        (record,) = json.loads((folder / "out" / "results.json").read_text())["captures"].values()
        assert [r["verdict"] for r in record] == [want]


def test_a_case_whose_sut_never_opened_has_no_topology(fast_profile: Profile) -> None:
    """The SUT gave no endpoints (it did not open for the case, whose pcap is still written): the
    role map leaves the case out rather than name addresses nobody had (and the case keeps its own
    error instead of a harness error from the role map)."""

    class NoEndpoints:
        case = load_testcase(TESTCASES / "relay" / "RELAY-DL-001.yaml", fast_profile)
        profile = fast_profile
        addresses = type("A", (), {"sut_endpoints": staticmethod(dict)})()

    from msgin5g_conformance.engine.rolemap import topology

    assert topology(NoEndpoints(), "x.pcap", 0.0) is None  # type: ignore[arg-type]
