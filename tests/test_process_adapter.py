"""Tests of the ``process`` adapter (sut_adapters/process.py) and of the upper-tester protocol.

Small SUT programs written into tmp_path play the misbehaving implementations (crash, hang,
garbage, a left-over grandchild, a TCP control socket); the example SUT (examples/example_sut.py)
plays the well-behaved one. Every wait is bounded: each adapter call runs under asyncio.wait_for,
each subprocess has a timeout, and polling loops have deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from msgin5g_conformance import cli
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.errors import HarnessError, UsageError
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire.endpoint import CoapTimers
from msgin5g_conformance.world.profile import Profile
from msgin5g_conformance.world.topology import Address, CaseAddresses, claim_block
from sut_adapters import process
from sut_adapters.base import ClientInfo, NotSupported, SutEnvironment
from sut_adapters.process import ProcessAdapter, load_sut_profile, message_names, message_problem
from sut_adapters.registry import make_adapter

from .conftest import ROOT, TESTCASES

EXAMPLE = ROOT / "examples" / "example-sut.yaml"
UT_SCHEMAS = ROOT / "msgin5g_conformance" / "schemas" / "ut"
DL_001 = TESTCASES / "relay" / "RELAY-DL-001.yaml"
DL_002 = TESTCASES / "relay" / "RELAY-DL-002.yaml"
BOUND_S = 30.0  # upper bound of any one adapter call in these tests

# A stand-in SUT whose behaviour is chosen by its first argument. It logs each start to
# starts.txt (one pid per line) so that a test can count restarts.
MINI_SUT = r"""
import json, os, subprocess, sys, time
mode = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "starts.txt"), "a") as fh:
    fh.write(f"{os.getpid()}\n")
def say(msg):
    sys.stdout.write(json.dumps({"v": 1, **msg}) + "\n")
    sys.stdout.flush()
if mode == "silent":
    print("mini: thinking instead of starting", file=sys.stderr, flush=True)
    time.sleep(120)
roles = ["router"] if mode == "bad-ready" else ["relay"]
say({"event": "ready", "implementation": {"name": "mini"}, "roles": roles, "capabilities": ["link-control"]})
if mode == "crash":
    print("boom: the mini SUT fell over", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "grandchild":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.path.join(here, "grandchild.txt"), "w") as fh:
        fh.write(str(child.pid))
for line in sys.stdin:
    msg = json.loads(line)
    if mode == "garbage":
        print("hello, this is not the protocol", flush=True)
        continue
    if mode == "hang" and msg["op"] == "establish_link":
        print("mini: establish_link received, now stuck", file=sys.stderr, flush=True)
        time.sleep(120)
    say({"id": msg["id"], "ok": True, "result": {}})
    if mode == "dies-once" and msg["op"] == "establish_link" and not os.path.exists(os.path.join(here, "died")):
        open(os.path.join(here, "died"), "w").close()
        print("mini: segfault after establish_link", file=sys.stderr, flush=True)
        time.sleep(0.05)
        os._exit(139)
    if msg["op"] == "shutdown":
        break
"""

# The same, over a TCP control socket (control: {tcp: host:port}); stdout is plain text.
TCP_SUT = r"""
import json, socket, sys
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("mini-tcp: listening", flush=True)
conn, _ = server.accept()
out = conn.makefile("w")
def say(msg):
    out.write(json.dumps({"v": 1, **msg}) + "\n")
    out.flush()
say({"event": "ready", "implementation": {"name": "mini-tcp", "version": "0"}, "roles": ["relay"],
     "capabilities": ["link-control"]})
for line in conn.makefile("r"):
    msg = json.loads(line)
    say({"id": msg["id"], "ok": True, "result": {}})
    if msg["op"] == "shutdown":
        break
"""


def write_sut(folder: Path, mode: str, extra: str = "", op_s: float = 2.0) -> Path:
    """A mini SUT program and its SUT profile in ``folder``; returns the profile's path."""
    (folder / "mini_sut.py").write_text(MINI_SUT, encoding="utf-8")
    profile = folder / "mini-sut.yaml"
    profile.write_text(
        f"name: mini\ncommand: [{sys.executable}, mini_sut.py, {mode}]\ncontrol: stdio\nroles: [relay]\n"
        f"capabilities: [link-control]\ntimeouts: {{ready_s: 20, op_s: {op_s}}}\n{extra}",
        encoding="utf-8",
    )
    return profile


def starts(folder: Path) -> list[int]:
    path = folder / "starts.txt"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """Poll (bounded) until no pid is alive; returns those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


@dataclass(frozen=True)
class Env:
    """The environment a SUT gets from a session, and where the tester's nodes would be."""

    sut: SutEnvironment
    addresses: CaseAddresses

    def address(self, node: str) -> Address:
        return self.addresses.address(node)


@contextlib.contextmanager
def environment(profile: Profile) -> Iterator[Env]:
    """A claimed address block and the environment a SUT gets from a session."""
    block = claim_block(profile.port)
    try:
        run = CaseAddresses(block.run_space(), profile.port, profile.alt_port, (), ())
        case = CaseAddresses(block.open_space(256), profile.port, profile.alt_port, (), ())
        endpoints = {n: run.address(n) for n in ("sut.pc5", "sut.uu", "sut.cue")}
        yield Env(SutEnvironment(profile, CoapTimers(0.15, 2), endpoints), case)
    finally:
        block.release()


def drive(profile: Profile, adapter: ProcessAdapter, script: Callable[[Env], Awaitable[Any]]) -> Any:
    """Start the adapter, run ``script`` and always stop it; every call bounded by BOUND_S."""

    async def main(env: Env) -> Any:
        await asyncio.wait_for(adapter.start(env.sut), BOUND_S)
        try:
            return await asyncio.wait_for(script(env), BOUND_S)
        finally:
            await asyncio.wait_for(adapter.stop(), BOUND_S)

    with environment(profile) as env:
        return asyncio.run(main(env))


def run_cases(profile: Profile, adapter: ProcessAdapter, cases: list[Path], pcaps: Path) -> list[Any]:
    """Run test cases through a Session, as the CLI and the plugin do."""
    loaded = [load_testcase(c, profile) for c in cases]
    with Session(profile, adapter, pcap_dir=pcaps) as session:
        return session.run_cases(loaded)


# ---------------------------------------------------------------------------------------------
# The protocol's schemas
# ---------------------------------------------------------------------------------------------


def test_ut_schemas_are_valid_and_indexed() -> None:
    """Every upper-tester schema is valid JSON Schema, and the index lists each message once."""
    files = {p.name.removesuffix(".schema.json") for p in UT_SCHEMAS.glob("*.schema.json")}
    for name in files:
        schema = json.loads((UT_SCHEMAS / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(f"/ut/{name}.schema.json")
    names = message_names()
    listed = [n for group in names.values() for n in group]
    assert sorted(listed) == sorted(files - {"index"})
    assert set(names["harness-to-sut"]) == set(process.OPERATIONS)
    assert set(names["sut-to-harness"]) == {"ready", "log", "response-ok", "response-error"}


def test_schemas_reject_what_the_protocol_forbids() -> None:
    """Wrong version, unknown fields, a bad error code and an unknown op are each rejected."""
    assert message_problem({"v": 1, "id": 3, "op": "reset", "role": "relay"}, "reset") is None
    assert message_problem({"v": 2, "id": 3, "op": "reset", "role": "relay"}, "reset") is not None
    assert message_problem({"v": 1, "id": 3, "op": "reset", "role": "relay", "x": 1}, "reset") is not None
    bad_code = {"v": 1, "id": 3, "ok": False, "error": {"code": "oops", "message": "?"}}
    assert message_problem(bad_code, "response-error") is not None
    assert message_problem({"v": 1, "id": 3, "op": "frobnicate"}, "index") is not None


def test_example_messages_validate_both_ways(fast_profile: Profile) -> None:
    """Every message exchanged with the example SUT validates against its schema, both directions."""
    adapter = ProcessAdapter(EXAMPLE)
    seen: dict[str, Any] = {}

    async def script(env: Env) -> None:
        cue1 = ClientInfo("cue1", fast_profile.client_address("cue1"), env.address("cue1"))
        await adapter.reset("relay")
        await adapter.establish_link(cue1)
        await adapter.release_link(cue1)
        with pytest.raises(NotSupported, match="not an operation of the relay role"):
            await adapter.read_configuration()
        await adapter.reset("gateway")
        await adapter.send_bulk_now()
        await adapter.reset("constrained-ue")
        await adapter.request_configuration()
        seen["applied"] = await adapter.read_configuration()

    drive(fast_profile, adapter, script)
    assert seen["applied"] == {"status": "none", "configuration": None}
    kinds: set[str] = set()
    for direction, message in adapter.transcript:
        if direction == "harness":
            name = message["op"]
        elif "event" in message:
            name = message["event"]
        else:
            name = "response-ok" if message["ok"] else "response-error"
        kinds.add(name)
        assert message_problem(message, name) is None, (name, message)
        assert message_problem(message, "index") is None, message
    assert set(process.OPERATIONS) <= kinds
    assert {"ready", "log", "response-ok", "response-error"} <= kinds


def test_unknown_op_is_answered_unknown_op(fast_profile: Profile) -> None:
    """The example answers an operation it does not know with unknown-op, and keeps running."""
    adapter = ProcessAdapter(EXAMPLE)

    async def script(env: Env) -> None:
        await adapter.reset("relay")
        with pytest.raises(HarnessError, match="unknown-op"):
            await adapter.call("frobnicate", {"when": "now"})
        await adapter.reset("relay")  # still alive and answering

    drive(fast_profile, adapter, script)
    answer = next(m for d, m in adapter.transcript if d == "sut" and m.get("ok") is False)
    assert answer["error"]["code"] == "unknown-op"
    assert message_problem(answer, "response-error") is None
    assert adapter.launches == 1


# ---------------------------------------------------------------------------------------------
# A SUT that misbehaves
# ---------------------------------------------------------------------------------------------


def test_crashing_sut_errors_with_its_stderr_and_is_restarted(fast_profile: Profile, tmp_path: Path) -> None:
    """A SUT that exits after ready gives verdict error quoting its stderr; the next case restarts it."""
    adapter = ProcessAdapter(write_sut(tmp_path, "crash"))
    first, second = run_cases(fast_profile, adapter, [DL_001, DL_002], tmp_path)
    for result in (first, second):
        assert result.verdict is Verdict.ERROR
        assert "the process exited with status 3" in result.reason
        assert "boom: the mini SUT fell over" in result.reason
        assert "boom: the mini SUT fell over" in result.sut_log
    assert len(starts(tmp_path)) == 2
    assert wait_gone(starts(tmp_path)) == []


def test_a_crash_lands_in_the_case_it_happens_in(fast_profile: Profile, tmp_path: Path) -> None:
    """A SUT that dies between operations of a case: that case is error with the exit status and
    the stderr tail (it used to be a fail, 'no matching message arrived', and the next case the
    error); the next case starts a fresh SUT and is judged normally."""
    adapter = ProcessAdapter(write_sut(tmp_path, "dies-once"))
    results = run_cases(fast_profile, adapter, [DL_001, DL_001], tmp_path)
    first, second = results
    assert first.verdict is Verdict.ERROR, first.reason
    assert "the SUT died during the case" in first.reason and "exited with status 139" in first.reason
    assert "mini: segfault after establish_link" in first.reason
    assert second.verdict is Verdict.FAIL, second.reason  # a mini SUT relays nothing: judged, not error
    assert "died" not in second.reason and "reset" not in second.reason
    assert len(starts(tmp_path)) == 2


def test_hanging_sut_errors_within_op_s(fast_profile: Profile, tmp_path: Path) -> None:
    """A SUT that never answers an operation gives error within op_s, is killed, and is restarted."""
    adapter = ProcessAdapter(write_sut(tmp_path, "hang", op_s=0.5))
    first, second = run_cases(fast_profile, adapter, [DL_001, DL_002], tmp_path)
    for result in (first, second):
        assert result.verdict is Verdict.ERROR
        assert "no answer to establish_link within 0.5 s (the SUT hangs)" in result.reason
        assert "mini: establish_link received, now stuck" in result.reason
        assert result.duration_s < 5.0
    pids = starts(tmp_path)
    assert len(pids) == 2
    assert wait_gone(pids) == []


def test_garbage_on_stdout_errors(fast_profile: Profile, tmp_path: Path) -> None:
    """A line on stdout that is not a protocol message gives verdict error that quotes it."""
    adapter = ProcessAdapter(write_sut(tmp_path, "garbage"))
    (result,) = run_cases(fast_profile, adapter, [DL_001], tmp_path)
    assert result.verdict is Verdict.ERROR
    assert "not an upper-tester message: 'hello, this is not the protocol'" in result.reason
    assert wait_gone(starts(tmp_path)) == []


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("silent", "no ready event within 3 s; the harness killed it; stderr tail:\n  mini: thinking instead"),
        ("bad-ready", "invalid upper-tester message (roles[0]: 'router' is not one of"),
    ],
)
def test_sut_that_never_gets_ready_errors(fast_profile: Profile, tmp_path: Path, mode: str, reason: str) -> None:
    """No ready event within ready_s, or an invalid one, gives verdict error saying which."""
    profile_path = write_sut(tmp_path, mode)
    if mode == "silent":
        profile_path.write_text(profile_path.read_text().replace("ready_s: 20", "ready_s: 3"))
    (result,) = run_cases(fast_profile, ProcessAdapter(profile_path), [DL_001], tmp_path)
    assert result.verdict is Verdict.ERROR
    assert reason in result.reason
    assert wait_gone(starts(tmp_path)) == []


def test_no_process_is_left_after_session_close(fast_profile: Profile, tmp_path: Path) -> None:
    """Closing the session ends the SUT and everything it started in its process group."""
    adapter = ProcessAdapter(write_sut(tmp_path, "grandchild"))
    loaded = load_testcase(DL_001, fast_profile)
    with Session(fast_profile, adapter, pcap_dir=tmp_path) as session:
        session.run_case(loaded)
        pids = [*starts(tmp_path), int((tmp_path / "grandchild.txt").read_text())]
        assert all(alive(p) for p in pids)
    assert wait_gone(pids) == []
    assert not process._LIVE_GROUPS


def test_sut_that_lacks_a_declared_capability_is_refused(fast_profile: Profile, tmp_path: Path) -> None:
    """A ready event that does not offer a capability the SUT profile declares is a clear error."""
    profile_path = write_sut(tmp_path, "ok")
    text = profile_path.read_text().replace("capabilities: [link-control]", "capabilities: [link-control, read-config]")
    profile_path.write_text(text)
    results = run_cases(fast_profile, ProcessAdapter(profile_path), [DL_001], tmp_path)
    assert results[0].verdict is Verdict.ERROR
    assert "declares read-config, which the SUT's ready event does not offer" in results[0].reason


# ---------------------------------------------------------------------------------------------
# SUT profiles
# ---------------------------------------------------------------------------------------------


BAD_PROFILES = [
    ("control: stdin\n", "control", "expected stdio, none or {tcp: \"host:port\"}, found 'stdin'"),
    ('control: stdio\nendpoints: {sut.pc5: "8.8.8.8:65401"}\n', "endpoints.sut.pc5", "test traffic must not leave"),
    ("control: stdio\ntimeouts: {op_s: 30}\n", "timeouts.op_s", "at most 8 (an upper-tester step is bounded to 10 s)"),
    ("control: none\n", "capabilities", "expected none with control none"),
    ("control: stdio\ninstances: 17\n", "instances", "a whole number of processes from 1 to 16"),
    ('control: {tcp: "127.0.0.1:7000"}\ninstances: 2\n', "instances", "expected 1 with control tcp, found 2"),
    ('control: stdio\nendpoints: {sut.pc5: "127.0.0.1:65401"}\ninstances: 2\n', "instances", "cannot share sut.pc5"),
]


@pytest.mark.parametrize(("lines", "field", "message"), BAD_PROFILES, ids=[b[1] for b in BAD_PROFILES])
def test_bad_sut_profile_is_a_located_error(tmp_path: Path, lines: str, field: str, message: str) -> None:
    """A mistake in a SUT profile is reported as file:line: field: expected ..., found ..."""
    path = tmp_path / "bad.yaml"
    text = f"name: bad\ncommand: [{sys.executable}, x.py]\nroles: [relay]\ncapabilities: [link-control]\n{lines}"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith(field.split(".")[0] + ":"))
    with pytest.raises(UsageError) as caught:
        make_adapter(str(path))
    assert f"{path}:{line}: {field}: " in str(caught.value)
    assert message in str(caught.value)


def test_cli_reports_a_bad_sut_profile_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`run --sut bad.yaml` exits 2 with the located problem and nothing else."""
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ncontrol: stdio\nroles: [relay, router]\n", encoding="utf-8")
    assert cli.main(["run", "--sut", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{path}:3: roles[1]: expected one of relay, gateway, constrained-ue, found 'router'" in err
    assert "Traceback" not in err


def test_missing_program_is_a_located_error(tmp_path: Path) -> None:
    """A command whose program does not exist is caught when the profile is read."""
    path = tmp_path / "sut.yaml"
    path.write_text("name: x\ncommand: [no-such-program-4711]\ncontrol: stdio\nroles: [relay]\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"sut.yaml:2: command\[0\]: expected an executable, found no program"):
        make_adapter(str(path))


def test_example_profiles_load() -> None:
    """The shipped example SUT profiles are valid and describe a stdio SUT with every role."""
    for name in ("example-sut.yaml", "example-sut-faulty.yaml"):
        sut = load_sut_profile(ROOT / "examples" / name)
        assert sut.control == "stdio" and sut.roles == {"relay", "gateway", "constrained-ue"}
        assert sut.cwd == ROOT / "examples"


def test_protocol_mismatch_errors_every_case(fast_profile: Profile, tmp_path: Path) -> None:
    """A SUT built for another recipient option is refused before it starts, in every case."""
    path = write_sut(tmp_path, "ok", extra="protocol: {recipient_option: 65004, port: 65401}\n")
    results = run_cases(fast_profile, ProcessAdapter(path), [DL_001, DL_002], tmp_path)
    for result in results:
        assert result.verdict is Verdict.ERROR
        assert "protocol mismatch" in result.reason
        assert "recipient_option: the SUT implements 65004, profile 'default' has 65003" in result.reason
    assert starts(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Other control modes
# ---------------------------------------------------------------------------------------------


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_tcp_control_socket(fast_profile: Profile, tmp_path: Path) -> None:
    """A SUT with a TCP control socket is driven the same way; its stdout is kept as evidence."""
    port = free_port(socket.SOCK_STREAM)
    (tmp_path / "tcp_sut.py").write_text(TCP_SUT, encoding="utf-8")
    profile = tmp_path / "tcp.yaml"
    profile.write_text(
        f'name: mini-tcp\ncommand: [{sys.executable}, tcp_sut.py, "{port}"]\ncontrol: {{tcp: "127.0.0.1:{port}"}}\n'
        "roles: [relay]\ncapabilities: [link-control]\ntimeouts: {ready_s: 20, op_s: 2}\n",
        encoding="utf-8",
    )
    adapter = ProcessAdapter(profile)

    async def script(env: Env) -> str:
        await adapter.reset("relay")
        await adapter.establish_link(ClientInfo("cue1", "cue1.example", env.address("cue1")))
        return adapter.log_text()

    log = drive(fast_profile, adapter, script)
    assert "[stdout] mini-tcp: listening" in adapter.evidence.since(0)
    assert "[ut] < establish_link ok" in log
    assert adapter.implementation == {"name": "mini-tcp", "version": "0"}
    assert [m["op"] for d, m in adapter.transcript if d == "harness"] == [
        "configure",
        "reset",
        "establish_link",
        "shutdown",
    ]


def test_control_none_uses_fixed_endpoints(fast_profile: Profile, tmp_path: Path) -> None:
    """With no upper tester, the fixed endpoints are used and every operation is not supported."""
    held = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for s in held:  # the already-running "SUT": two bound UDP sockets
            s.bind(("127.0.0.1", 0))
        pc5, uu = (s.getsockname() for s in held)
        profile = tmp_path / "none.yaml"
        profile.write_text(
            f'name: fixed\ncontrol: none\nroles: [gateway]\nendpoints: {{sut.pc5: "127.0.0.1:{pc5[1]}", '
            f'sut.uu: "127.0.0.1:{uu[1]}"}}\ntimeouts: {{ready_s: 2}}\n',
            encoding="utf-8",
        )
        adapter = ProcessAdapter(profile)

        async def script(env: Env) -> Any:
            await adapter.reset("gateway")
            with pytest.raises(NotSupported, match="control: none"):
                await adapter.send_bulk_now()
            return dict(adapter.endpoints())

        assert drive(fast_profile, adapter, script) == {
            "sut.pc5": ("127.0.0.1", pc5[1]),
            "sut.uu": ("127.0.0.1", uu[1]),
        }
    finally:
        for s in held:
            s.close()
