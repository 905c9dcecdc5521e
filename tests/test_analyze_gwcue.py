"""``analyze`` for Gateway UE and Constrained UE topologies.

Real captures first: live cases run against the embedded reference SUT and some of its faulty
variants write pcaps; a role map written here from the addresses (world/nodes.py: host 1 sut.pc5,
2 sut.uu, 3 sut.cue, 4 relay, 5 scms, 10+N cueN) judges them offline, and a variant is caught with
the requirement its live run fails. Then one hand-built bad exchange per rule, and the legal
choices the live suite accepts (csv list encoding, answers by id, NON or piggybacked responses).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance.analyze import cue as cue_rules
from msgin5g_conformance.analyze import gateway as gateway_rules
from msgin5g_conformance.analyze.capture import Frame, iter_capture
from msgin5g_conformance.analyze.checks import JUDGEABLE, Judgement, analyse
from msgin5g_conformance.analyze.roles import load_roles
from msgin5g_conformance.analyze.run import cmd_analyze
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import CaseResult, Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.pcap import write_pcap
from msgin5g_conformance.wire.capture.record import Datagram
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, encode_uint
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.faulty import cue as faulty_cue
from sut_adapters.faulty import gateway as faulty_gateway
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES, profile_with

ID = "{}.msgin5g.example"
SCMS_ID = "scm-s.msgin5g.example"
SUT_ID = "ue-under-test.msgin5g.example"


# -- real captures: the live cases against the reference SUT and faulty variants ---------------

# Short timers keep the live runs quick; the offline analysis reads the same profile.
TIMERS = {"timers.response_ms": 600}  # max_wait_ms as default: 50 sends fit in it on a loaded machine
GATEWAY_RUNS = {
    "reference": ["GW-BULK-001", "GW-BULK-003", "GW-BULK-005", "GW-ERR-001", "GW-SPLIT-002", "GW-CFG-001"],
    "faulty:gw-lists-one-twice": ["GW-BULK-003"],
    "faulty:gw-wrong-recipient": ["GW-BULK-003"],
    "faulty:gw-stops-blockwise": ["GW-BULK-003"],
    "faulty:gw-copies-to-idle-ue": ["GW-BULK-003"],
    "faulty:gw-fans-out-errors": ["GW-ERR-001"],
}
CUE_RUNS = {
    "reference": ["CUE-REQ-001", "CUE-REQ-002", "CUE-RSP-001", "CUE-RSP-004", "CUE-RSP-005"],
    "faulty:cue-repeats-get": ["CUE-RSP-001"],
    "faulty:cue-direct-to-scms": ["CUE-REQ-001"],
    "faulty:cue-wrong-port": ["CUE-REQ-001"],
}
# Other legal choices of the profile: ue-uri as one comma-separated value, the bulk answer keyed
# by UE id (with repeated ue-uri: as one value 50 ids outgrow a Uri-Query option). The reference
# passes live under them, and so offline.
CHOICES: dict[str, tuple[dict[str, object], dict[str, list[str]]]] = {
    "csv": (
        {**TIMERS, "query.list_encoding": "csv"},
        {"gateway": ["GW-BULK-001", "GW-ERR-001"], "constrained-ue": ["CUE-REQ-001", "CUE-RSP-001"]},
    ),
    "by-id": ({**TIMERS, "bulk_response_shape": "by-id"}, {"gateway": ["GW-BULK-003", "GW-ERR-001"]}),
}


@dataclass(frozen=True)
class Live:
    profile: Profile
    path: Path
    results: dict[tuple[str, str], tuple[CaseResult, Path]]
    choices: dict[str, Profile]  # the other legal choices; their runs are under (choice, case id)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    """Every run above: the profile (and its file), (SUT, case id) -> the live result and its pcap."""
    folder = tmp_path_factory.mktemp("gwcue")
    path = profile_with(folder, "gwcue", TIMERS)
    profile = load_profile(path)
    choices = {name: load_profile(profile_with(folder, name, changes)) for name, (changes, _) in CHOICES.items()}

    def run(prof: Profile, role: str, sut: str, ids: list[str]) -> list[tuple[CaseResult, Path]]:
        pcaps = folder / f"{prof.name}-{role}-{sut.replace(':', '-')}"
        cases = [load_testcase(TESTCASES / role / f"{i}.yaml", prof) for i in ids]
        with Session(prof, make_adapter(sut), pcap_dir=pcaps, concurrency=8) as session:
            return [(r, pcaps / f"{r.case_id}.pcap") for r in session.run_cases(cases)]

    # Each session claims its own 127.A.0.0/16 block: they run side by side.
    jobs = [
        (sut, profile, role, sut, ids)
        for role, runs in (("gateway", GATEWAY_RUNS), ("constrained-ue", CUE_RUNS))
        for sut, ids in runs.items()
    ]
    jobs += [
        (name, choices[name], role, "reference", ids)
        for name, (_, runs) in CHOICES.items()
        for role, ids in runs.items()
    ]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        done = [(key, pool.submit(run, *job)) for key, *job in jobs]
        out = {(key, r.case_id): (r, pcap) for key, job in done for r, pcap in job.result(timeout=120)}
    return Live(profile, path, out, choices)


def role_map(pcap: Path, role: str, folder: Path) -> Path:
    """The role map of one live case's pcap, from the host offsets of its address range."""
    first = next(f for f in iter_capture(pcap) if isinstance(f, Frame))
    net = first.src[0].rsplit(".", 1)[0]
    scms = f"scms: {{address: {net}.5, port: 65401, recipient: {SCMS_ID}}}"
    if role == "gateway":
        clients = "\n".join(
            f"      - {{name: cue{n}, address: {net}.{10 + n}, port: 65401, ue_id: {ID.format(f'cue{n}')}}}"
            for n in range(1, 51)
        )
        text = (
            f"topologies:\n  - gateway: {{pc5: {{address: {net}.1, port: 65401}}, "
            f"uu: {{address: {net}.2, port: 65401}}}}\n    {scms}\n    clients:\n{clients}\n"
        )
    else:
        text = (
            f"topologies:\n  - constrained_ue: {{address: {net}.3, port: 65401, ue_id: {SUT_ID}, "
            f"peer: {{address: {net}.4, port: 65401}}}}\n    {scms}\n"
        )
    path = folder / f"{pcap.stem}-roles.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def offline(pcap: Path, role: str, profile: Profile, folder: Path) -> list[Judgement]:
    roles = load_roles(role_map(pcap, role, folder))
    judgements, frames, _ = analyse(iter_capture(pcap), list(roles.topologies), profile)
    assert frames > 0
    return judgements


def live_failures(result: CaseResult) -> set[str]:
    return {r for s in result.steps if s.verdict is Verdict.FAIL for r in s.requirements}


@pytest.mark.parametrize(("role", "runs"), [("gateway", GATEWAY_RUNS), ("constrained-ue", CUE_RUNS)])
def test_reference_captures_pass_offline(role: str, runs: dict[str, list[str]], live: Live, tmp_path: Path) -> None:
    profile, results = live.profile, live.results
    judged: set[str] = set()
    for case_id in runs["reference"]:
        result, pcap = results[("reference", case_id)]
        assert result.verdict is Verdict.PASS, (case_id, result.reason)
        judgements = offline(pcap, role, profile, tmp_path)
        bad = [j for j in judgements if j.verdict is Verdict.FAIL or (j.verdict is not Verdict.PASS and not j.reason)]
        assert not bad, (case_id, [(j.title, j.reason) for j in bad])
        judged |= {r for j in judgements if j.verdict is Verdict.PASS for r in j.requirements}
    if role == "gateway":
        # the bulk GET, split 2.05s (one block-wise answer), the per-UE 4.03/4.04 and its own GET
        assert judged >= {"REQ-GW-BULK-1", "REQ-GW-BULK-2", "REQ-GW-BULK-3", "REQ-GW-CFG-1"}
    else:
        assert judged >= {"REQ-CUE-REQ-1", "REQ-CUE-RSP-2"}
    assert judged - {"REQ-CUE-RSP-2"} <= JUDGEABLE[role]


@pytest.mark.parametrize(
    ("choice", "role", "case_id"),
    [(name, role, c) for name, (_, runs) in CHOICES.items() for role, cs in runs.items() for c in cs],
)
def test_other_legal_choices_pass_offline_too(choice: str, role: str, case_id: str, live: Live, tmp_path: Path) -> None:
    result, pcap = live.results[(choice, case_id)]
    assert result.verdict is Verdict.PASS, (case_id, result.reason)
    judgements = offline(pcap, role, live.choices[choice], tmp_path)
    assert judgements and {j.verdict for j in judgements} == {Verdict.PASS}, [(j.title, j.reason) for j in judgements]


@pytest.mark.parametrize(
    ("role", "sut", "case_id"),
    [("gateway", s, c) for s, cs in GATEWAY_RUNS.items() if s != "reference" for c in cs]
    + [("constrained-ue", s, c) for s, cs in CUE_RUNS.items() if s != "reference" for c in cs],
)
def test_faulty_variants_are_caught_offline_as_live(
    role: str, sut: str, case_id: str, live: Live, tmp_path: Path
) -> None:
    profile, results = live.profile, live.results
    result, pcap = results[(sut, case_id)]
    assert result.verdict is Verdict.FAIL, result.reason
    failed_live = live_failures(result)
    failed_offline = {
        r for j in offline(pcap, role, profile, tmp_path) if j.verdict is Verdict.FAIL for r in j.requirements
    }
    variants = faulty_gateway.VARIANTS if role == "gateway" else faulty_cue.VARIANTS
    broken = variants[sut.removeprefix("faulty:")][1]  # the one requirement the variant breaks
    assert broken in failed_live
    assert failed_offline == {broken}, f"{sut} in {case_id}: offline {failed_offline}, live {failed_live}"


def test_analyze_judges_gateway_and_cue_captures_end_to_end(live: Live, tmp_path: Path) -> None:
    results, prof = live.results, str(live.path)
    _, pcap = results[("faulty:gw-wrong-recipient", "GW-BULK-003")]
    roles = role_map(pcap, "gateway", tmp_path)
    assert cmd_analyze([str(pcap)], str(roles), prof, str(tmp_path / "out")) == 1
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["requirements"]["REQ-GW-BULK-1"] == "pass"
    assert doc["requirements"]["REQ-GW-BULK-2"] == "fail"
    _, good = results[("reference", "CUE-RSP-001")]
    cue_roles = role_map(good, "constrained-ue", tmp_path)
    assert cmd_analyze([str(good)], str(cue_roles), prof, str(tmp_path / "cue")) == 0
    doc = json.loads((tmp_path / "cue" / "results.json").read_text())
    assert doc["requirements"] == {"REQ-CUE-REQ-1": "pass"}


def test_judgeable_names_what_the_modules_judge() -> None:
    assert JUDGEABLE["gateway"] == gateway_rules.JUDGED
    assert JUDGEABLE["constrained-ue"] == cue_rules.JUDGED


# -- hand-built exchanges: one bad exchange per rule --------------------------------------------

PC5, UU, SCMS = ("127.0.2.1", 65401), ("127.0.2.2", 65401), ("127.0.2.5", 65401)
CUE_SUT, RELAY = ("127.0.2.3", 65401), ("127.0.2.4", 65401)


def ue(n: int) -> tuple[str, int]:
    return (f"127.0.2.{10 + n}", 65401)


GATEWAY_ROLES = (
    "topologies:\n  - gateway: {pc5: {address: 127.0.2.1, port: 65401}, "
    "uu: {address: 127.0.2.2, port: 65401}}\n"
    f"    scms: {{address: 127.0.2.5, port: 65401, recipient: {SCMS_ID}}}\n    clients:\n"
    + "".join(
        f"      - {{name: cue{n}, address: 127.0.2.{10 + n}, port: 65401, ue_id: {ID.format(f'cue{n}')}}}\n"
        for n in range(1, 61)
    )
)
CUE_ROLES = (
    f"topologies:\n  - constrained_ue: {{address: 127.0.2.3, port: 65401, ue_id: {SUT_ID}, "
    f"peer: {{address: 127.0.2.4, port: 65401}}}}\n"
    f"    scms: {{address: 127.0.2.5, port: 65401, recipient: {SCMS_ID}}}\n"
)
RCPT = 65003
SINGLE = ["su-uc", "v1", "val-services", "msgin5g-svc", "ue-configurations"]
BULK = [*SINGLE, "bulk-conf"]


def coap(
    code: int,
    mid: int,
    token: bytes = b"",
    *,
    mtype: MessageType = MessageType.CON,
    recipient: str | None = None,
    path: list[str] | None = None,
    query: list[str] | None = None,
    payload: bytes = b"",
    extra: list[tuple[int, bytes]] | None = None,
) -> bytes:
    options = [(int(OptionNumber.URI_PATH), s.encode()) for s in path or []]
    options += [(int(OptionNumber.URI_QUERY), q.encode()) for q in query or []]
    if recipient is not None:
        options.append((RCPT, recipient.encode()))
    if payload and code == Code.CONTENT:
        options.append((int(OptionNumber.CONTENT_FORMAT), encode_uint(50)))
    options += extra or []
    options.sort(key=lambda o: o[0])
    return codec.encode(codec.CoapMessage(mtype, code, mid, token, tuple(options), payload))


def request(n: int, mid: int, **query: str) -> bytes:
    q = [f"ue-uri={ID.format(f'cue{n}')}"] + [f"ue-{k}={v}" for k, v in query.items()]
    return coap(Code.GET, mid, bytes([n]), recipient=SCMS_ID, path=SINGLE, query=q)


def doc(n: int) -> dict[str, Any]:
    return {"MSGin5G-Server-address": "coap://msgin5g-server.example:65401", "MSGin5G-UE-Service-id": f"svc-cue{n}"}


def bulk_answer(results: dict[int, str], by_id: bool = False) -> bytes:
    entries = {
        ID.format(f"cue{n}"): {"result": r, **({"configuration": doc(n)} if r == "2.05" else {})}
        for n, r in results.items()
    }
    body = entries if by_id else {"ue-configurations": [{"ue-uri": k, **v} for k, v in entries.items()]}
    return json.dumps(body, separators=(",", ":")).encode()


def answer_to(n: int, mid: int, code: int = Code.CONTENT, *, token: bytes | None = None, **kw: Any) -> bytes:
    payload = json.dumps(doc(n), separators=(",", ":")).encode() if code == Code.CONTENT else b""
    return coap(
        code,
        mid,
        bytes([n]) if token is None else token,
        recipient=kw.pop("recipient", ID.format(f"cue{n}")),
        payload=kw.pop("payload", payload),
        **kw,
    )


Trace = list[tuple[float, tuple[str, int], tuple[str, int], bytes]]


def judge_trace(
    tmp_path: Path, trace: Trace, roles: str = GATEWAY_ROLES, profile: Path | None = None
) -> list[Judgement]:
    cap = tmp_path / "t.pcap"
    write_pcap(cap, [Datagram(i, 1000.0 + t, s, d, b) for i, (t, s, d, b) in enumerate(trace)])
    path = tmp_path / "roles.yaml"
    path.write_text(roles, encoding="utf-8")
    judgements, _, _ = analyse(iter_capture(cap), list(load_roles(path).topologies), load_profile(profile))
    return judgements


def verdicts(judgements: list[Judgement]) -> list[tuple[str, tuple[str, ...]]]:
    return [(j.verdict.value, j.requirements) for j in judgements]


def bulk_get(ns: list[int], mid: int = 100, token: bytes = b"\xb0", **kw: Any) -> bytes:
    query = kw.pop("query", [f"ue-uri={ID.format(f'cue{n}')}" for n in ns])
    return coap(Code.GET, mid, token, recipient=SCMS_ID, path=kw.pop("path", BULK), query=query, **kw)


def good_exchange(answer: bytes | None = None) -> Trace:
    return [
        (0.0, ue(1), PC5, request(1, 1)),
        (0.01, ue(2), PC5, request(2, 2)),
        (1.5, UU, SCMS, bulk_get([1, 2])),
        (
            1.51,
            SCMS,
            UU,
            coap(
                Code.CONTENT, 100, b"\xb0", mtype=MessageType.ACK, payload=answer or bulk_answer({1: "2.05", 2: "2.05"})
            ),
        ),
        (1.52, PC5, ue(1), answer_to(1, 10)),
        (1.53, PC5, ue(2), answer_to(2, 11, mtype=MessageType.NON)),
        (2.0, ue(1), ue(1), b"end"),
    ]


BULK1, BULK2, BULK3 = ("REQ-GW-BULK-1",), ("REQ-GW-BULK-2",), ("REQ-GW-BULK-3",)


def test_a_correct_bulk_exchange_passes(tmp_path: Path) -> None:
    assert verdicts(judge_trace(tmp_path, good_exchange())) == [("pass", BULK1), ("pass", BULK2), ("pass", BULK2)]


@pytest.mark.parametrize(
    ("get", "why"),
    [
        (bulk_get([1, 2], path=SINGLE), "not the bulk resource"),  # a single (non-bulk) relay
        (bulk_get([1]), "leaves out cue2"),
        (bulk_get([1, 2, 1]), "more than once"),
        (bulk_get([1, 2, 3]), "names cue3.msgin5g.example, with no cached request"),
        (
            bulk_get([1, 2], query=["ue-uri=cue1.msgin5g.example", "ue-uri=cue2.msgin5g.example", "ue-vendor=x"]),
            "ue-vendor x, expected absent",
        ),
        (bulk_get([1, 2], extra=[(int(OptionNumber.IF_MATCH), b"")]), "options (others)"),
    ],
)
def test_a_bad_bulk_get_fails_bulk_1(tmp_path: Path, get: bytes, why: str) -> None:
    trace = good_exchange()
    trace[2] = (1.5, UU, SCMS, get)
    got = judge_trace(tmp_path, trace)
    assert got[0].verdict is Verdict.FAIL and got[0].requirements == BULK1, got[0].reason
    assert why in got[0].reason
    assert [j for j in got[1:] if j.verdict is Verdict.FAIL] == []  # its responses are not judged (needs)


def test_vendor_and_type_are_passed_on_as_the_requests_gave_them(tmp_path: Path) -> None:
    trace = good_exchange()
    trace[0] = (0.0, ue(1), PC5, request(1, 1, vendor="acme", type="meter"))
    trace[1] = (0.01, ue(2), PC5, request(2, 2, vendor="acme"))
    q = [
        "ue-uri=cue1.msgin5g.example",
        "ue-uri=cue2.msgin5g.example",
        "ue-vendor=acme",
        "ue-vendor=acme",
        "ue-type=meter",
    ]
    trace[2] = (1.5, UU, SCMS, bulk_get([], query=q))  # repeated values: each given value, nothing else
    assert verdicts(judge_trace(tmp_path, trace))[0] == ("pass", BULK1)
    trace[2] = (1.5, UU, SCMS, bulk_get([], query=[*q[:2], "ue-vendor=acme"]))
    got = judge_trace(tmp_path, trace)[0]
    assert got.verdict is Verdict.FAIL and "ue-type absent, expected meter" in got.reason


def test_the_service_policy_bounds_when_the_bulk_get_goes(tmp_path: Path) -> None:
    spread = [(0.0, ue(1), PC5, request(1, 1)), (0.8, ue(2), PC5, request(2, 2))]  # counted from the last
    assert verdicts(judge_trace(tmp_path, [*spread, (2.2, UU, SCMS, bulk_get([1, 2]))]))[0] == ("pass", BULK1)
    late = [(0.0, ue(1), PC5, request(1, 1)), (2.2, ue(2), ue(2), b"later")]
    assert verdicts(judge_trace(tmp_path, late)) == [("fail", BULK1)]
    assert "within 2000 ms" in judge_trace(tmp_path, late)[0].reason
    cut = late[:1]  # the trace ends before the max wait: not decided
    (only,) = judge_trace(tmp_path, cut)
    assert only.verdict is Verdict.INCONCLUSIVE and "the trace ends" in only.reason
    full = [(i * 0.001, ue(i), PC5, request(i, i)) for i in range(1, 51)]  # min_batch 50 reached
    slow = [*full, (1.4, UU, SCMS, bulk_get(list(range(1, 51))))]
    got = judge_trace(tmp_path, slow)
    assert verdicts(got)[0] == ("fail", BULK1) and "min_batch 50" in got[0].reason
    prompt = [*full, (0.06, UU, SCMS, bulk_get(list(range(1, 51))))]
    assert verdicts(judge_trace(tmp_path, prompt))[0] == ("pass", BULK1)


@pytest.mark.parametrize(
    ("response", "why"),
    [
        (answer_to(1, 10, token=b"\x09"), "token 09, not its request's 01"),
        (answer_to(1, 10, recipient=ID.format("cue2")), "recipient 'cue2.msgin5g.example'"),
        (answer_to(1, 10, payload=json.dumps(doc(2)).encode()), "is not its own configuration"),
        (
            answer_to(1, 10, payload=b'{"MSGin5G-UE-Service-id":"x","MSGin5G-UE-Service-id":"svc-cue1"}'),
            "duplicate key",
        ),
        (answer_to(1, 10, Code.NOT_FOUND), "code 4.04 Not Found, the bulk answer has 2.05 Content"),
        (answer_to(1, 10, extra=[(int(OptionNumber.LOCATION_PATH), b"x")]), "options (others)"),
    ],
)
def test_a_bad_split_response_fails_bulk_2(tmp_path: Path, response: bytes, why: str) -> None:
    trace = good_exchange()
    trace[4] = (1.52, PC5, ue(1), response)
    got = judge_trace(tmp_path, trace)
    assert verdicts(got) == [("pass", BULK1), ("fail", BULK2), ("pass", BULK2)]
    assert why in got[1].reason


def test_a_response_twice_to_nobody_or_never_fails_bulk_2(tmp_path: Path) -> None:
    trace = good_exchange()
    twice = [*trace[:6], (1.6, PC5, ue(1), answer_to(1, 12)), (1.61, PC5, ue(7), answer_to(7, 13)), trace[6]]
    got = judge_trace(tmp_path, twice)
    assert verdicts(got)[3:] == [("fail", BULK2), ("fail", BULK2)]
    assert "answered already" in got[3].reason and "cue7 has no request waiting" in got[4].reason
    repeated = [*trace[:3], (1.505, UU, SCMS, bulk_get([1, 2], mid=101, token=b"\xb1")), *trace[3:]]  # unanswered
    assert verdicts(judge_trace(tmp_path, repeated)) == [("pass", BULK1), ("pass", BULK2), ("pass", BULK2)]
    retransmitted = [*trace[:5], (1.515, PC5, ue(1), answer_to(1, 10)), *trace[5:]]  # same Message ID
    assert verdicts(judge_trace(tmp_path, retransmitted)) == verdicts(judge_trace(tmp_path, trace))
    lost = [*trace[:5], (2.6, ue(1), ue(1), b"later")]
    got = judge_trace(tmp_path, lost)
    assert verdicts(got)[-1] == ("fail", BULK2) and "no response within 1000 ms" in got[-1].reason
    early = [trace[0], (0.5, PC5, ue(1), answer_to(1, 10)), (0.6, ue(3), ue(3), b"x")]  # no bulk GET asked for it
    (before,) = judge_trace(tmp_path, early)
    assert before.verdict is Verdict.INCONCLUSIVE and "before any bulk GET" in before.reason
    (cut,) = [j for j in judge_trace(tmp_path, trace[:5]) if j.verdict is not Verdict.PASS]
    assert cut.verdict is Verdict.INCONCLUSIVE and "before the 1000 ms wait" in cut.reason


def test_per_ue_errors_are_judged_by_bulk_3(tmp_path: Path) -> None:
    trace = good_exchange(bulk_answer({1: "4.03", 2: "4.04"}))
    trace[4] = (1.52, PC5, ue(1), answer_to(1, 10, Code.FORBIDDEN))
    trace[5] = (1.53, PC5, ue(2), answer_to(2, 11, Code.FORBIDDEN))  # fanned out: not its result
    got = judge_trace(tmp_path, trace)
    assert verdicts(got) == [("pass", BULK1), ("pass", BULK3), ("fail", BULK3)]
    assert "the bulk answer has 4.04 Not Found" in got[2].reason


def block(num: int, more: bool, chunk: bytes, mid: int, token: bytes, size2: int | None = None) -> bytes:
    extra = [(int(OptionNumber.BLOCK2), encode_uint((num << 4) | (int(more) << 3) | 2))]  # SZX 2: 64 B
    if size2 is not None:
        extra.append((int(OptionNumber.SIZE2), encode_uint(size2)))
    return coap(Code.CONTENT, mid, token, mtype=MessageType.ACK, payload=chunk, extra=extra)


def test_a_block_wise_answer_is_put_together_in_order(tmp_path: Path) -> None:
    body = bulk_answer({1: "2.05", 2: "2.05"})
    chunks = [body[i : i + 64] for i in range(0, len(body), 64)]
    assert len(chunks) > 2
    trace = good_exchange()[:3]
    t = 1.51
    for num, chunk in enumerate(chunks):
        token = bytes([0xB0 + num])
        if num:
            nxt = encode_uint((num << 4) | 2)
            trace.append(
                (t, UU, SCMS, bulk_get([1, 2], mid=100 + num, token=token, extra=[(int(OptionNumber.BLOCK2), nxt)]))
            )
        trace.append((t + 0.001, SCMS, UU, block(num, num < len(chunks) - 1, chunk, 100 + num, token, len(body))))
        t += 0.01
    trace += [
        (t, PC5, ue(1), answer_to(1, 10)),
        (t + 0.01, PC5, ue(2), answer_to(2, 11)),
        (t + 0.5, ue(1), ue(1), b"x"),
    ]
    assert verdicts(judge_trace(tmp_path, trace)) == [("pass", BULK1), ("pass", BULK2), ("pass", BULK2)]
    stopped = [
        *trace[:4],
        (1.52, PC5, ue(1), answer_to(1, 10, Code.BAD_GATEWAY)),
        (1.53, PC5, ue(2), answer_to(2, 11, Code.BAD_GATEWAY)),
    ]
    got = judge_trace(tmp_path, stopped)
    assert verdicts(got) == [("pass", BULK1), ("fail", BULK2)]
    assert f"64 B fetched of the {len(body)} B it announced" in got[1].reason


def test_legal_choices_pass(tmp_path: Path) -> None:
    """csv list encoding, answers by id, a piggybacked response: every one the live suite accepts."""
    csv = profile_with(tmp_path, "csv", {"query.list_encoding": "csv", "bulk_response_shape": "by-id"})
    trace = good_exchange(bulk_answer({1: "2.05", 2: "2.05"}, by_id=True))
    trace[2] = (1.5, UU, SCMS, bulk_get([], query=["ue-uri=cue2.msgin5g.example,cue1.msgin5g.example"]))
    trace[4] = (1.52, PC5, ue(1), answer_to(1, 1, mtype=MessageType.ACK))  # piggybacked on the ACK of its CON
    assert verdicts(judge_trace(tmp_path, trace, profile=csv)) == [("pass", BULK1), ("pass", BULK2), ("pass", BULK2)]
    trace[2] = (1.5, UU, SCMS, bulk_get([1, 2]))  # two values under csv
    assert "not one comma-separated value" in judge_trace(tmp_path, trace, profile=csv)[0].reason


def test_the_gateways_own_configuration_get_never_fails(tmp_path: Path) -> None:
    own = [(0.0, UU, SCMS, coap(Code.GET, 5, b"\x55", path=SINGLE, query=[f"ue-uri={SUT_ID}"]))]
    assert verdicts(judge_trace(tmp_path, own)) == [("pass", ("REQ-GW-CFG-1",))]
    on_bulk = [(0.0, UU, SCMS, coap(Code.GET, 5, b"\x55", path=BULK))]
    (dev,) = judge_trace(tmp_path, on_bulk)
    assert dev.verdict is Verdict.PASS and dev.reason.startswith("deviation") and "no UE id" in dev.reason


def test_a_malformed_datagram_from_the_gateway_fails_msg_4(tmp_path: Path) -> None:
    got = judge_trace(tmp_path, [(0.0, PC5, ue(1), b"\x40\x01"), (0.1, ue(1), PC5, b"\x40")])
    assert verdicts(got) == [("fail", ("REQ-COAP-MSG-4",))]  # only what the gateway sends


# -- Constrained UE -------------------------------------------------------------------------------

REQ1 = ("REQ-CUE-REQ-1",)


def cue_get(mid: int, token: bytes = b"\x77", **kw: Any) -> bytes:
    query = kw.pop("query", [f"ue-uri={SUT_ID}"])
    return coap(
        Code.GET, mid, token, recipient=kw.pop("recipient", SCMS_ID), path=kw.pop("path", SINGLE), query=query, **kw
    )


def to_cue(mid: int, recipient: str = SUT_ID, payload: bytes | None = None, **kw: Any) -> bytes:
    body = json.dumps(doc(1)).encode() if payload is None else payload
    return coap(Code.CONTENT, mid, b"\x77", recipient=recipient, payload=body, **kw)


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ((0.0, CUE_SUT, SCMS, cue_get(1)), "straight to the SCM-S"),
        ((0.0, CUE_SUT, ("127.0.2.99", 65401), cue_get(1)), "goes to the relay"),
        ((0.0, ("127.0.2.3", 5683), RELAY, cue_get(1)), "sent from port 5683"),
        ((0.0, CUE_SUT, RELAY, cue_get(1, recipient=ID.format("cue1"))), "not the SCM-S"),
        ((0.0, CUE_SUT, RELAY, cue_get(1, path=BULK)), "Uri-Path"),
        ((0.0, CUE_SUT, RELAY, cue_get(1, query=[f"ue-uri={SUT_ID}", "ue-uri=x"])), "alone"),
        ((0.0, CUE_SUT, RELAY, cue_get(1, extra=[(int(OptionNumber.IF_NONE_MATCH), b"")])), "options (others)"),
    ],
)
def test_a_bad_configuration_request_fails_cue_req_1(tmp_path: Path, frame: Any, why: str) -> None:
    (got,) = judge_trace(tmp_path, [frame], CUE_ROLES)
    assert got.verdict is Verdict.FAIL and got.requirements == REQ1 and why in got.reason, got.reason


def response_ms_s() -> float:
    return load_profile(None).timers.response_ms / 1000


def test_no_second_request_after_its_2_05(tmp_path: Path) -> None:
    first = [(0.0, CUE_SUT, RELAY, cue_get(1, query=[f"ue-uri={SUT_ID}", "ue-vendor=acme"]))]
    again = [
        *first,
        (0.01, RELAY, CUE_SUT, to_cue(9)),
        (0.02, CUE_SUT, RELAY, coap(0, 9, mtype=MessageType.ACK)),
        (0.1, CUE_SUT, RELAY, cue_get(2)),
        (0.1, CUE_SUT, RELAY, cue_get(2)),
    ]
    got = judge_trace(tmp_path, again, CUE_ROLES)
    assert verdicts(got) == [("pass", REQ1), ("fail", REQ1)]  # the retransmission is judged once
    assert "after the 2.05 of frame 2" in got[1].reason
    reused = [*first, (0.5, CUE_SUT, RELAY, cue_get(1)), (300.0, CUE_SUT, RELAY, cue_get(1))]  # after 247 s: new
    assert verdicts(judge_trace(tmp_path, reused, CUE_ROLES)) == [("pass", REQ1), ("pass", REQ1)]
    # within an exchange's wait (response_ms) any second request fails, answered or not (as live:
    # a message no step asked for); after it, only a fresh 2.05 makes it one too many
    soon = [*again[:4], (0.1, CUE_SUT, RELAY, cue_get(2, token=b"\x78"))]
    soon[1] = (0.01, RELAY, CUE_SUT, to_cue(9, payload=b'{"Segment-size": "large"}'))
    got = judge_trace(tmp_path, soon, CUE_ROLES)
    assert (
        verdicts(got) == [("pass", REQ1), ("fail", REQ1)] and "a second configuration request 100 ms" in got[1].reason
    )
    later = response_ms_s() + 0.5
    again = [*again[:3], (later, CUE_SUT, RELAY, cue_get(2)), (later, CUE_SUT, RELAY, cue_get(2))]
    assert verdicts(judge_trace(tmp_path, again, CUE_ROLES)) == [("pass", REQ1), ("fail", REQ1)]  # still fresh
    stale = list(again)
    stale[1] = (0.01, RELAY, CUE_SUT, to_cue(9, extra=[(int(OptionNumber.MAX_AGE), encode_uint(0))]))
    assert verdicts(judge_trace(tmp_path, stale, CUE_ROLES)) == [("pass", REQ1), ("pass", REQ1)]
    invalid = list(again)
    invalid[1] = (0.01, RELAY, CUE_SUT, to_cue(9, payload=b'{"Segment-size": "large"}'))
    assert verdicts(judge_trace(tmp_path, invalid, CUE_ROLES)) == [("pass", REQ1), ("pass", REQ1)]
    other = list(again)
    other[1] = (0.01, RELAY, CUE_SUT, to_cue(9, recipient=ID.format("cue2")))
    assert verdicts(judge_trace(tmp_path, other, CUE_ROLES)) == [
        ("pass", REQ1),
        ("pass", ("REQ-CUE-RSP-2",)),
        ("pass", REQ1),
    ]


def test_a_con_response_for_another_client_is_acknowledged(tmp_path: Path) -> None:
    trace = [
        (0.0, CUE_SUT, RELAY, cue_get(1)),
        (0.01, RELAY, CUE_SUT, to_cue(9, recipient=ID.format("cue2"))),
        (1.2, RELAY, RELAY, b"later"),
    ]
    got = judge_trace(tmp_path, trace, CUE_ROLES)
    assert verdicts(got) == [("pass", REQ1), ("fail", ("REQ-CUE-RSP-2",))]
    assert "needs the upper tester" in got[1].reason
    (_, cut) = judge_trace(tmp_path, trace[:2], CUE_ROLES)
    assert cut.verdict is Verdict.INCONCLUSIVE and "the trace ends" in cut.reason


def test_a_malformed_datagram_from_the_ue_fails_msg_4(tmp_path: Path) -> None:
    got = judge_trace(tmp_path, [(0.0, CUE_SUT, RELAY, b"\x40\x01"), (0.1, RELAY, CUE_SUT, b"\x40")], CUE_ROLES)
    assert verdicts(got) == [("fail", ("REQ-COAP-MSG-4",))]


def test_a_constrained_ue_and_the_gateway_it_talks_to_are_judged_in_one_capture(tmp_path: Path) -> None:
    both = GATEWAY_ROLES + (
        f"  - constrained_ue: {{address: 127.0.2.11, port: 65401, ue_id: {ID.format('cue1')}, "
        f"peer: {{address: 127.0.2.1, port: 65401}}}}\n"
        f"    scms: {{address: 127.0.2.5, port: 65401, recipient: {SCMS_ID}}}\n"
    )
    trace = [*good_exchange()[:6], (2.0, ue(3), ue(3), b"end")]
    got = judge_trace(tmp_path, trace, both)
    assert sorted(verdicts(got)) == sorted([("pass", BULK1), ("pass", BULK2), ("pass", BULK2), ("pass", REQ1)])


def test_a_request_just_before_the_timer_may_go_with_the_next_bulk_get(tmp_path: Path) -> None:
    """A request captured within the receive-queue allowance (20 % of max_wait, 300 ms of the
    default 1,500) before a bulk GET below min_batch may still have been unread when the gateway's
    timer fired: left out, it goes with the next bulk GET. Captured earlier, leaving it out fails."""
    queued = [
        (0.0, ue(1), PC5, request(1, 1)),
        (1.3, ue(2), PC5, request(2, 2)),  # 200 ms before the bulk GET
        (1.5, UU, SCMS, bulk_get([1])),
        (2.9, UU, SCMS, bulk_get([2], mid=101, token=b"\xb1")),  # cue2's own max wait
    ]
    assert [v for v in verdicts(judge_trace(tmp_path, queued)) if v[1] == BULK1][:2] == [("pass", BULK1)] * 2
    earlier = [queued[0], (1.1, ue(2), PC5, request(2, 2)), *queued[2:]]  # 400 ms before: it was cached
    got = judge_trace(tmp_path, earlier)
    assert got[0].verdict is Verdict.FAIL and "leaves out cue2" in got[0].reason, got[0].reason


def test_a_bulk_get_sent_before_the_timer_leaves_nothing_out_below_min_batch(tmp_path: Path) -> None:
    """Sent 30 ms after the first request, a bulk GET is not the max-wait timer's: a request
    captured just before it and left out fails (gw-omits-one-ue), however close it came."""
    prompt = [(0.0, ue(1), PC5, request(1, 1)), (0.02, ue(2), PC5, request(2, 2)), (0.03, UU, SCMS, bulk_get([1]))]
    got = judge_trace(tmp_path, prompt)
    assert got[0].verdict is Verdict.FAIL and "leaves out cue2" in got[0].reason, got[0].reason
