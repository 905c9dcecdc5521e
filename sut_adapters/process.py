"""The ``process`` adapter: an implementation in any language, driven by the upper-tester protocol.

A SUT profile (YAML, checked against ``sut-profile.schema.json``, mistakes reported as
``file:line: field.path: ...``) says how to start the implementation and how to talk to it. The
upper-tester protocol (version 1, ``docs/upper-tester-protocol.md``, one JSON Schema per message
in ``schemas/ut/``) is JSON lines: the harness writes operations, the SUT writes a ``ready`` event
once, one response per operation and optional ``log`` events.

Lifecycle::

    start(env)    check the SUT profile's `protocol` against the run's profile (mismatch: every
                  case errors), start the command in its own process group, wait (ready_s) for
                  `ready`, send `configure` (endpoints, peers, profile values)
    open_case     restart first if the process failed; `configure` again when the case's peers
                  (the tester's SCM-S and relay, on the case's own addresses) changed; then
                  `reset` with the role
    ...           establish_link, release_link, request_configuration, send_bulk_now,
                  read_configuration, each answered within op_s
    stop()        `shutdown`, a short grace period, then SIGKILL to the whole process group

Who is at fault: a crash, a hang past ``op_s``, a line on stdout that is not a valid protocol
message, or an operation answered with an error is the SUT's: a :class:`~sut_adapters.base.SutFault`
(verdict ``error``: the case could not be judged) whose message names the SUT and what it did
(``the SUT <name> exited during <op>: ...``, ``the SUT <name> broke the upper-tester protocol:
...``) with the tail of its stderr; a process that broke is killed and the next ``reset`` starts
it again. An operation answered ``not-supported`` is :class:`~sut_adapters.base.NotSupported`
(verdict ``not-applicable``). Whatever the SUT does, nothing it started outlives the run: the process group
is killed at ``stop()`` and, failing that, at interpreter exit; descendants that left the group
(a new session, a double fork) are found by a mark in their environment and killed too; and the
SUT gets SIGKILL from the kernel if the harness itself dies (``PR_SET_PDEATHSIG``).

The SUT's output kept as evidence is bounded in lines and in bytes: each line is cut at
:data:`LINE_KEPT` characters and the oldest lines go once :data:`LOG_BYTES` are held; what was
cut or dropped is counted and said in the excerpt.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ipaddress
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Any

import jsonschema
from referencing import Registry, Resource

from msgin5g_conformance import schemacheck, yamlsource
from msgin5g_conformance.errors import DefinitionError, HarnessError, Problem
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.wire.numbers import code_to_str

from .base import CaseWorld, ClientInfo, NotSupported, SutEnvironment, SutFault, protocol_mismatches

PROTOCOL_VERSION = 1
OPERATIONS = (
    "configure",
    "reset",
    "establish_link",
    "release_link",
    "request_configuration",
    "send_bulk_now",
    "read_configuration",
    "shutdown",
)
ERROR_CODES = ("unknown-op", "not-supported", "bad-request", "failed")
ROLE_ENDPOINTS = {"relay": ("sut.pc5", "sut.uu"), "gateway": ("sut.pc5", "sut.uu"), "constrained-ue": ("sut.cue",)}

DEFAULT_READY_S = 10.0
DEFAULT_OP_S = 5.0
# The runner bounds reset() to 10 s; a restart inside it must finish before that.
RESET_BUDGET_S = 9.0
SHUTDOWN_ANSWER_S = 1.0
STOP_GRACE_S = 2.0
EXIT_WAIT_S = 2.0  # for a SUT that closed its output to exit and its stderr to be read
LINE_LIMIT = 1 << 20  # one protocol line; longer is garbage
LOG_LINES = 2000  # ring buffer of SUT output kept as evidence
LOG_BYTES = 256 * 1024  # and at most this much of it
LINE_KEPT = 4000  # characters of one stderr line kept (the rest is counted)
TAIL_LINES = 12  # stderr lines quoted in an error
SHOWN_CHARS = 300  # how much of one line an error quotes
SCHEMA_BASE = "https://msgin5g-conformance.invalid/schemas/ut/"


class SutFailed(SutFault):
    """The SUT process crashed, hung or wrote garbage; it is killed and restarted at the next reset."""


class _Broken(Exception):
    """Internal: the conversation ended or went wrong (the reason is the message)."""


# ---------------------------------------------------------------------------------------------
# The SUT profile
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SutProfile:
    """A validated SUT profile."""

    name: str
    version: str | None
    source: str
    command: tuple[str, ...] | None
    cwd: Path
    env: Mapping[str, str]
    control: str  # stdio | tcp | none
    tcp: Address | None
    roles: frozenset[str]
    capabilities: frozenset[str]
    options: frozenset[str]  # MAY behaviours it implements (the suite's PICS)
    endpoints: Mapping[str, Address]
    protocol: Mapping[str, Any]
    ready_s: float
    op_s: float
    description: str | None = None  # shown under the name in every report
    instances: int = 1  # processes the harness may start, each on its own addresses


def _host_port(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _address_problem(host: str, port: int) -> str | None:
    """Fixed endpoints must stay on this machine: loopback, or a private (network namespace) address."""
    if not 0 < port < 65536:
        return f"expected a UDP port from 1 to 65535, found {port}"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"expected an IP address, found {host!r}"
    if ip.is_loopback or ip.is_private:
        return None
    return (
        f"expected a loopback address or a private address of a network namespace, found {host}: "
        "test traffic must not leave this machine"
    )


def _executable_problem(command: list[str], cwd: Path) -> str | None:
    program = command[0]
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else cwd / program
        if not path.is_file():
            return f"expected an executable, found no file {str(path)!r}"
        if not os.access(path, os.X_OK):
            return f"expected an executable, found {str(path)!r} without execute permission"
        return None
    if shutil.which(program) is None:
        return f"expected an executable, found no program {program!r} on PATH"
    return None


def load_sut_profile(path: str | Path, limit: int = yamlsource.MAX_FILE_BYTES) -> SutProfile:
    """Read and check a SUT profile; every mistake is a located :class:`DefinitionError`."""
    located = yamlsource.load_file(path, limit)
    if not isinstance(located.data, dict):
        raise DefinitionError([located.problem([], "a SUT profile must be a mapping")])
    schemacheck.check(located, "sut-profile.schema.json")
    d: dict[str, Any] = located.data
    problems: list[Problem] = []
    here = Path(path).resolve().parent
    cwd = (here / d["cwd"]).resolve() if "cwd" in d else here
    if not cwd.is_dir():
        problems.append(located.problem(["cwd"], f"expected a folder, found no folder {str(cwd)!r}"))
    command = d.get("command")
    if command is not None and cwd.is_dir():
        why = _executable_problem(command, cwd)
        if why:
            problems.append(located.problem(["command", 0], why))
    control_value = d["control"]
    tcp: Address | None = None
    if isinstance(control_value, dict):
        control = "tcp"
        tcp = _host_port(control_value["tcp"])
        # the control socket is on this machine too (localhost, loopback or a namespace's address)
        why = _address_problem("127.0.0.1" if tcp[0] == "localhost" else tcp[0], tcp[1])
        if why:
            problems.append(located.problem(["control", "tcp"], why.replace("UDP port", "TCP port")))
    else:
        control = control_value
    roles = d["roles"]
    capabilities = d.get("capabilities", [])
    endpoints: dict[str, Address] = {}
    for name, text in d.get("endpoints", {}).items():
        host, port = _host_port(text)
        why = _address_problem(host, port)
        if why is None and ":" in host:
            why = (
                f"expected an IPv4 address, found {host}: the tester's nodes are on 127.0.0.0/8 and "
                "a case cannot mix IP versions (IPv6 endpoints are not supported yet)"
            )
        if why:
            problems.append(located.problem(["endpoints", name], why))
        endpoints[name] = (host, port)
    if control == "stdio" and command is None:
        problems.append(
            located.problem(
                ["control"],
                "stdio needs a command to start; give command, or control {tcp: host:port} for a running SUT",
            )
        )
    if control == "none":
        if capabilities:
            problems.append(
                located.problem(
                    ["capabilities"],
                    f"expected none with control none (nothing can perform them), found {', '.join(capabilities)}",
                )
            )
        if len(roles) != 1:
            problems.append(
                located.problem(["roles"], f"expected exactly one role with control none, found {len(roles)}")
            )
        needed = sorted({n for r in roles for n in ROLE_ENDPOINTS[r]} - set(endpoints))
        if needed:
            problems.append(
                located.problem(
                    ["control"],
                    f"control none cannot tell the SUT its addresses: expected fixed endpoints for {', '.join(needed)}",
                )
            )
    instances = d.get("instances", 1)
    if instances > 1:
        # each process gets its own addresses from the harness (configure) and its own pipes
        if control != "stdio":
            problems.append(
                located.problem(
                    ["instances"],
                    f"expected 1 with control {control}, found {instances}: "
                    "several instances need control stdio (each process its own conversation)",
                )
            )
        if endpoints:
            problems.append(
                located.problem(
                    ["instances"],
                    f"expected 1 with fixed endpoints, found {instances}: several instances cannot share "
                    f"{', '.join(sorted(endpoints))}; leave endpoints out and each gets its own addresses",
                )
            )
    if problems:
        raise DefinitionError(problems)
    timeouts = d.get("timeouts", {})
    return SutProfile(
        name=d["name"],
        version=d.get("version"),
        source=located.file,
        command=tuple(command) if command is not None else None,
        cwd=cwd,
        env=dict(d.get("env", {})),
        control=control,
        tcp=tcp,
        roles=frozenset(roles),
        capabilities=frozenset(capabilities),
        options=frozenset(d.get("options", [])),
        endpoints=endpoints,
        protocol=dict(d.get("protocol", {})),
        ready_s=float(timeouts.get("ready_s", DEFAULT_READY_S)),
        op_s=float(timeouts.get("op_s", DEFAULT_OP_S)),
        description=d.get("description"),
        instances=instances,
    )


# ---------------------------------------------------------------------------------------------
# Protocol messages: schemas and the configure message
# ---------------------------------------------------------------------------------------------


def schema_text(name: str) -> str:
    """One upper-tester schema file shipped with the package (``ut/<name>.schema.json``)."""
    ref = resources.files("msgin5g_conformance.schemas").joinpath("ut", f"{name}.schema.json")
    return ref.read_text(encoding="utf-8")


@cache
def message_names() -> dict[str, tuple[str, ...]]:
    """Message names by direction, from the index schema."""
    listed = json.loads(schema_text("index"))["x-messages"]
    return {direction: tuple(names) for direction, names in listed.items()}


@cache
def _registry() -> Registry[Any]:
    names = ["index", *(n for group in message_names().values() for n in group)]
    return Registry().with_resources(
        (SCHEMA_BASE + f"{n}.schema.json", Resource.from_contents(json.loads(schema_text(n)))) for n in names
    )


@cache
def message_validator(name: str) -> Any:
    """A validator for one message (``index`` validates any message); built once per process."""
    schema = {"$ref": SCHEMA_BASE + f"{name}.schema.json"}
    return jsonschema.Draft202012Validator(schema, registry=_registry())


@cache
def _result_validator(op: str) -> Any | None:
    if op != "read_configuration":
        return None
    schema = {"$ref": SCHEMA_BASE + "read_configuration.schema.json#/$defs/result"}
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def message_problem(message: Any, name: str) -> str | None:
    """The first way ``message`` breaks the schema of message ``name``, or None."""
    for error in message_validator(name).iter_errors(message):
        where = yamlsource.format_path(error.absolute_path) or "(message)"
        return f"{where}: {error.message}"
    return None


def _endpoint(addr: Address) -> dict[str, Any]:
    return {"host": addr[0], "port": addr[1]}


def configure_fields(
    env: SutEnvironment, endpoints: Mapping[str, Address], peers: Mapping[str, Address]
) -> dict[str, Any]:
    """The body of ``configure``: where to listen, the peers, and every profile value the SUT needs."""
    p = env.profile
    bulk_schema = json.loads(p.bulk_response_schema_path.read_text(encoding="utf-8"))
    return {
        "endpoints": {name: _endpoint(endpoints[name]) for name in ("sut.pc5", "sut.uu", "sut.cue")},
        "peers": {name: _endpoint(peers[name]) for name in ("scms", "relay")},
        "profile": {
            "name": p.name,
            "port": p.port,
            "port_match": p.port_match,
            "recipient_option": p.recipient_option,
            "addresses": {"scm_s": p.scm_s_address, "client": p.client_address_template, "sut_ue": p.sut_ue_address},
            "content_format": p.content_format,
            "single_path": p.single_path,
            "bulk_path": p.bulk_path,
            "query": {
                "ue_ids": p.query_ue_ids,
                "vendor": p.query_vendor,
                "type": p.query_type,
                "list_encoding": p.list_encoding,
            },
            "relayed_codes": sorted(code_to_str(c) for c in p.relayed_codes),
            "bulk_policy": {"min_batch": p.min_batch, "max_wait_ms": p.max_wait_ms},
            "api": {
                "root_path": list(p.root_path),
                "val_service_id": p.val_service_id,
                "bulk_conf_flag": p.bulk_conf_flag,
                "single_path_template": list(p.single_path_template),
                "bulk_path_template": list(p.bulk_path_template),
            },
            "bulk_response_shape": p.bulk_response_shape,
            "readings": dict(p.readings),
            "timers": {"ack_timeout_ms": p.timers.ack_timeout_ms, "max_retransmit": p.timers.max_retransmit},
            "config_schema": p.config_schema(),
            "bulk_response_schema": bulk_schema,
        },
    }


def _shorten(text: str) -> str:
    text = text.rstrip("\r\n")
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + f"... ({len(text)} characters)"


# ---------------------------------------------------------------------------------------------
# Evidence: stderr and protocol traffic, bounded
# ---------------------------------------------------------------------------------------------


class _Evidence:
    """A ring buffer of what the SUT said, fed from reader threads, bounded in lines (``limit``)
    and in characters (``max_bytes``); a line longer than ``line_kept`` is cut, with its length."""

    def __init__(self, limit: int = LOG_LINES, max_bytes: int = LOG_BYTES, line_kept: int = LINE_KEPT) -> None:
        self._lines: deque[tuple[int, str, str, float]] = deque()  # number, kind, text, wall time
        self._limit, self._max_bytes, self._line_kept = limit, max_bytes, line_kept
        self._held = 0  # characters held
        self._count = 0
        self._dropped: list[tuple[int, int]] = []  # (line number, characters) of each line dropped or cut
        self._lock = threading.Lock()

    def add(self, kind: str, text: str) -> None:
        text = text.rstrip("\r\n")
        with self._lock:
            now = time.time()  # the clock of the record's datagrams (taken in the lock: in order)
            self._count += 1
            if kind != "stderr":
                text = _shorten(text)
            elif len(text) > self._line_kept:
                self._dropped.append((self._count, len(text) - self._line_kept))
                text = text[: self._line_kept] + f"... (line cut: {len(text)} characters)"
            self._lines.append((self._count, kind, text, now))
            self._held += len(text)
            while len(self._lines) > self._limit or (self._held > self._max_bytes and len(self._lines) > 1):
                n, _, old, _ = self._lines.popleft()
                self._held -= len(old)
                self._dropped.append((n, len(old)))
            if len(self._dropped) > 4 * self._limit:  # keep the count, not every entry
                first = self._dropped[0][0]
                total = sum(c for _, c in self._dropped)
                self._dropped = [(first, total)]

    def mark(self) -> int:
        with self._lock:
            return self._count

    def since(self, mark: int) -> list[str]:
        return [text for _, text in self.entries_since(mark)]

    def entries_since(self, mark: int) -> list[tuple[float | None, str]]:
        """The lines after ``mark`` as shown, each with the wall time it was read (None for the
        note on what the bounds dropped)."""
        with self._lock:
            lines: list[tuple[float | None, str]] = [
                (at, text if kind == "stderr" else f"[{kind}] {text}") for n, kind, text, at in self._lines if n > mark
            ]
            first_kept = self._lines[0][0] if self._lines else self._count + 1
            lost = [c for n, c in self._dropped if n > mark]
            gone = max(0, first_kept - 1 - mark)  # lines of this interval no longer held
        if gone or lost:
            note = f"[harness] SUT output bounded to {self._max_bytes} characters: "
            note += f"{gone} earlier line(s) dropped, {sum(lost)} character(s) not kept"
            lines.insert(0, (None, note))
        return lines

    def tail(self, kind: str, n: int, since: int = 0) -> list[str]:
        with self._lock:
            return [text for m, k, text, _ in self._lines if k == kind and m > since][-n:]


# ---------------------------------------------------------------------------------------------
# The child process and the conversation with it
# ---------------------------------------------------------------------------------------------

_LIVE_GROUPS: set[int] = set()

# Every process a SUT starts inherits this variable; its value names this harness process and the
# launch, so that descendants that left the SUT's process group can still be found and killed.
MARK_VARIABLE = "MSGIN5G_CONFORMANCE_SUT"
_RUN_MARK = f"{os.getpid()}.{secrets.token_hex(4)}"
_PR_SET_PDEATHSIG = 1
try:  # resolved here, not in the child: between fork and exec only the call itself runs
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the group kill and the marks still apply
    _PRCTL = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the child: SIGKILL when the harness thread that started it dies (Linux prctl)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def marked_processes(prefix: str) -> list[int]:
    """The pids (other than ours) whose environment holds ``MARK_VARIABLE=<prefix>...``."""
    needle = f"{MARK_VARIABLE}={prefix}".encode()
    out = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(var.startswith(needle) for var in env.split(b"\0")):
            out.append(int(entry.name))
    return out


def kill_marked(prefix: str, passes: int = 5) -> int:
    """SIGKILL every process marked ``prefix`` (a few passes: one may fork while we kill); how many."""
    killed = 0
    for _ in range(passes):
        pids = marked_processes(prefix)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.01)
    return killed


@atexit.register
def _kill_leftovers() -> None:
    """Last resort: no SUT process group, and nothing a SUT started, outlives the harness."""
    for group in list(_LIVE_GROUPS):
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
        _LIVE_GROUPS.discard(group)
    kill_marked(_RUN_MARK + ".")


def _describe_status(code: int | None) -> str:
    if code is None:
        return "the process is still running"
    if code < 0:
        try:
            return f"the process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the process was killed by signal {-code}"
    return f"the process exited with status {code}"


class _Child:
    """The SUT's process, in its own process group, with its output read by threads."""

    def __init__(self, sut: SutProfile, evidence: _Evidence, stdout_is_protocol: bool) -> None:
        assert sut.command is not None
        program = sut.command[0]
        if "/" in program and not Path(program).is_absolute():
            program = str(sut.cwd / program)
        self.argv = [program, *sut.command[1:]]
        self.evidence = evidence
        self.mark = f"{_RUN_MARK}.{secrets.token_hex(4)}"
        self.proc = subprocess.Popen(
            self.argv,
            cwd=sut.cwd,
            env={**os.environ, **sut.env, MARK_VARIABLE: self.mark},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() kills everything it started
            preexec_fn=_die_with_parent,  # one prctl call, resolved before the fork
        )
        self.pid = self.proc.pid
        _LIVE_GROUPS.add(self.pid)
        self._stderr = threading.Thread(target=self._drain, args=(self.proc.stderr, "stderr"), daemon=True)
        self._stderr.start()
        self._stdout: threading.Thread | None = None
        if not stdout_is_protocol:
            self._stdout = threading.Thread(target=self._drain, args=(self.proc.stdout, "stdout"), daemon=True)
            self._stdout.start()

    def _drain(self, stream: IO[bytes] | None, kind: str) -> None:
        if stream is None:
            return
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(lambda: stream.readline(LINE_LIMIT), b""):
                self.evidence.add(kind, raw.decode("utf-8", "replace"))

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def wait_exit(self, timeout: float) -> bool:
        """Wait (bounded) for the process to end and its stderr to be read."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None or self._stderr.is_alive():
            if time.monotonic() >= deadline:
                return self.proc.poll() is not None
            await asyncio.sleep(0.01)
        return True

    def kill_group(self) -> None:
        """SIGKILL the SUT's process group, and every process it started that left the group."""
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        kill_marked(self.mark)

    async def finish(self, grace: float) -> None:
        """After `grace` seconds for a clean exit, SIGKILL the whole group and reap the process."""
        await self.wait_exit(grace)
        self.kill_group()  # also whatever the SUT started and left behind in its group
        await self.wait_exit(2.0)
        # stdout and stderr are left to their reader threads, which end at end of file.
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.proc.poll() is not None:
            _LIVE_GROUPS.discard(self.pid)

    def status(self) -> str:
        return _describe_status(self.proc.poll())


class _Conversation:
    """JSON lines with the SUT over a byte stream pair; reading and writing happen on threads.

    Lines arrive on the event loop through ``call_soon_threadsafe``; between test cases, when the
    loop is not running, they wait there. Writes go through a queue so that a SUT that stops
    reading can never block the event loop.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        read: IO[bytes],
        write: Callable[[bytes], object],
        evidence: _Evidence,
        transcript: deque[tuple[str, Any]],
        closer: Callable[[], None] = lambda: None,
    ) -> None:
        self.loop = loop
        self.evidence = evidence
        self.transcript = transcript
        self.broken: str | None = None
        self.ended = False  # the SUT closed its end (it is probably exiting)
        self.ready: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._next_id = 1
        self._write = write
        self._closer = closer
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._reader, args=(read,), daemon=True).start()
        threading.Thread(target=self._writer, daemon=True).start()

    # -- threads ---------------------------------------------------------------------------------

    def _post(self, fn: Callable[..., None], *args: Any) -> bool:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
            return True
        except RuntimeError:  # the loop is closed: the run is over
            return False

    def _reader(self, stream: IO[bytes]) -> None:
        try:
            while True:
                raw = stream.readline(LINE_LIMIT + 1)
                if not raw:
                    break
                if not self._post(self._on_line, raw):
                    return
        except (OSError, ValueError):
            pass
        self._post(self._on_eof)

    def _writer(self) -> None:
        while True:
            data = self._outbox.get()
            if data is None:
                return
            try:
                self._write(data)
            except (OSError, ValueError):
                return  # the SUT is gone; the reader reports it

    # -- on the event loop -------------------------------------------------------------------------

    def _break(self, reason: str) -> None:
        if self.broken is not None:
            return
        self.broken = reason
        for _, future in self.pending.values():
            if not future.done():
                future.set_exception(_Broken(reason))
        self.pending.clear()
        if not self.ready.done():
            self.ready.set_exception(_Broken(reason))
            self.ready.exception()  # retrieved here: nobody may be waiting any more

    def _on_eof(self) -> None:
        self.ended = True
        self._break("the SUT closed its end of the conversation (stdout or the control connection)")

    def _on_line(self, raw: bytes) -> None:
        if self.broken is not None:
            return
        if len(raw) > LINE_LIMIT:
            self._break(f"the SUT wrote a line longer than {LINE_LIMIT} bytes on its protocol channel")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._break(f"the SUT wrote a line that is not UTF-8 on its protocol channel: {raw[:80]!r}")
            return
        if not text.strip():
            return
        try:
            message = json.loads(text)
        except ValueError:
            self._break(f"the SUT wrote a line that is not an upper-tester message: {_shorten(text)!r}")
            return
        self.transcript.append(("sut", message))
        problem = self._problem(message)
        if problem:
            self._break(f"the SUT wrote an invalid upper-tester message ({problem}): {_shorten(text)!r}")
            return
        if "event" in message:
            self._on_event(message)
            return
        if message["id"] is None:
            error = message["error"]
            self._break(f"the SUT could not read a request of the harness ({error['code']}: {error['message']})")
            return
        entry = self.pending.pop(message["id"], None)
        if entry is None:
            self._break(f"the SUT answered id {message['id']!r}, which no pending operation has: {_shorten(text)!r}")
            return
        _, future = entry
        if not future.done():
            future.set_result(message)

    def _problem(self, message: Any) -> str | None:
        if not isinstance(message, dict):
            return "expected a JSON object"
        if "event" in message:
            name = message["event"] if message["event"] in ("ready", "log") else None
            if name is None:
                return None if message.get("v") == PROTOCOL_VERSION else "v: expected 1"
        elif "ok" in message:
            name = "response-ok" if message["ok"] is True else "response-error"
        else:
            return "neither an event nor a response (no 'event', no 'ok')"
        problem = message_problem(message, name)
        if problem is None and name == "response-ok":
            pending = self.pending.get(message["id"])
            validator = _result_validator(pending[0]) if pending else None
            if validator is not None:
                for error in validator.iter_errors(message["result"]):
                    where = yamlsource.format_path(["result", *error.absolute_path])
                    return f"{where}: {error.message}"
        return problem

    def _on_event(self, message: dict[str, Any]) -> None:
        if message["event"] == "ready":
            if self.ready.done():
                self.evidence.add("harness", "a second ready event was ignored")
            else:
                self.ready.set_result(message)
        elif message["event"] == "log":
            self.evidence.add("log", message["message"])
        else:  # a later protocol version's event: kept, not acted on
            self.evidence.add("harness", f"unknown event {message['event']!r} ignored")

    def request(self, op: str, fields: Mapping[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Send one operation; the future gets its response (or _Broken)."""
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        if self.broken is not None:
            future.set_exception(_Broken(self.broken))
            return future
        message = {"v": PROTOCOL_VERSION, "id": self._next_id, "op": op, **fields}
        self.pending[self._next_id] = (op, future)
        self._next_id += 1
        self.transcript.append(("harness", message))
        self._outbox.put(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
        return future

    def close(self) -> None:
        self._outbox.put(None)
        with contextlib.suppress(OSError):
            self._closer()


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------


class ProcessCase:
    """The external SUT (one process) as it acts in one test case; ``release`` hands the process
    back to its pool when the case is over."""

    def __init__(self, adapter: ProcessAdapter, role: str, release: Callable[[], None] | None = None) -> None:
        self.adapter = adapter
        self.role = role
        self.mark = adapter._mark
        self._release = release

    def endpoints(self) -> Mapping[str, Address]:
        return {n: self.adapter._endpoints[n] for n in ROLE_ENDPOINTS.get(self.role, ())}

    async def establish_link(self, client: ClientInfo) -> None:
        await self.adapter.establish_link(client)

    async def release_link(self, client: ClientInfo) -> None:
        await self.adapter.release_link(client)

    async def request_configuration(self) -> None:
        await self.adapter.request_configuration()

    async def send_bulk_now(self) -> None:
        await self.adapter.send_bulk_now()

    async def read_configuration(self) -> Any:
        return await self.adapter.read_configuration()

    def log_text(self) -> str:
        return "\n".join(self.adapter.evidence.since(self.mark))

    def log_entries(self) -> list[tuple[float | None, str]]:
        """The lines of :meth:`log_text`, each with the wall time the harness read it."""
        return self.adapter.evidence.entries_since(self.mark)

    async def died(self) -> str | None:
        """The SUT process exited during this case: how (status, stderr tail). The process is
        reaped here, so the next case starts it again instead of blaming its own reset."""
        return await self.adapter.died_during_case()

    async def close(self) -> None:
        """The next case's reset starts from scratch; a pooled process is free again."""
        release, self._release = self._release, None
        if release is not None:
            release()


class ProcessAdapter:
    """Runs an implementation outside the harness from its SUT profile (see module docstring)."""

    instances = 1  # one process plays one role at a time (ProcessPool runs several)

    def __init__(
        self,
        profile_path: str | Path,
        max_file_bytes: int = yamlsource.MAX_FILE_BYTES,
        *,
        sut: SutProfile | None = None,
        index: int = 0,
    ) -> None:
        self.sut = sut if sut is not None else load_sut_profile(profile_path, max_file_bytes)
        self.index = index  # which of a pool's processes (its addresses: the run's endpoint set ``index``)
        self.name = self.sut.name
        self.roles = self.sut.roles
        self.capabilities = self.sut.capabilities
        self.options = self.sut.options
        self.role = sorted(self.roles)[0]
        self.env: SutEnvironment | None = None
        self._peers: dict[str, Address] = {}
        self._configured: dict[str, Address] | None = None  # the peers the SUT was last told
        self.evidence = _Evidence()
        self.transcript: deque[tuple[str, Any]] = deque(maxlen=1000)
        self.implementation: dict[str, Any] = {}
        self._child: _Child | None = None
        self._conv: _Conversation | None = None
        self._endpoints: dict[str, Address] = {}
        self._failure: tuple[str, int] | None = None  # a failure during start and its log mark
        self._mark = 0
        self._launch_mark = 0
        self.launches = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, env: SutEnvironment) -> None:
        mismatches = protocol_mismatches(self.sut.protocol, env.profile)
        if mismatches:
            where = f"SUT profile {self.sut.source} and the run's profile"
            raise HarnessError(f"protocol mismatch between {where}: " + "; ".join(mismatches))
        self.env = env
        own = env.instance_endpoints[self.index] if self.index < len(env.instance_endpoints) else env.endpoints
        if self.index and own is env.endpoints:
            raise HarnessError(f"SUT {self.name}: the run gave no addresses for instance {self.index + 1}")
        self._endpoints = dict(own)
        self._endpoints.update(self.sut.endpoints)
        # placeholders until the first case names its peers (configure is sent again then)
        self._peers = {n: (self._endpoints["sut.pc5"][0], 1) for n in ("scms", "relay")}
        mark = self.evidence.mark()
        try:
            await self._launch(self.sut.ready_s)
        except SutFailed as exc:
            # A SUT that falls over while starting is reported by the first test case (with its
            # output as that case's SUT log) and restarted by the next one, like any other crash.
            self._failure = (str(exc), mark)

    async def open_case(self, world: CaseWorld, release: Callable[[], None] | None = None) -> ProcessCase:
        """``configure`` when the case's peers differ from what the SUT was told, then ``reset``."""
        self._peers = {n: world.peers[n] for n in ("scms", "relay")}
        await self.reset(world.role)
        return ProcessCase(self, world.role, release)

    async def reset(self, role: str) -> None:
        if role not in self.roles:
            raise NotSupported(f"SUT {self.name} does not play the {role} role")
        self._mark = self.evidence.mark()
        if self._failure is not None:
            (failure, self._mark), self._failure = self._failure, None
            raise SutFailed(failure)
        deadline = time.monotonic() + RESET_BUDGET_S
        if self.sut.control == "none":
            if self.sut.command is not None:  # no upper tester: a fresh process is the only reset
                await self._shutdown()
                await self._launch(deadline - time.monotonic())
            self.role = role
            return
        if self._conv is None:
            await self._launch(min(self.sut.ready_s, deadline - time.monotonic()), deadline)
        if self._configured != self._peers:
            await self._configure(deadline - time.monotonic())
        await self._call("reset", {"role": role}, deadline - time.monotonic())
        self.role = role

    async def _configure(self, timeout: float | None) -> None:
        assert self.env is not None
        await self._call("configure", configure_fields(self.env, self._endpoints, self._peers), timeout)
        self._configured = dict(self._peers)

    async def stop(self) -> None:
        await self._shutdown()

    def endpoints(self) -> Mapping[str, Address]:
        return {n: self._endpoints[n] for n in ROLE_ENDPOINTS.get(self.role, ())}

    def log_text(self) -> str:
        return "\n".join(self.evidence.since(self._mark))

    def log_entries(self) -> list[tuple[float | None, str]]:
        return self.evidence.entries_since(self._mark)

    # -- upper-tester operations -----------------------------------------------------------------

    def _client(self, client: ClientInfo) -> dict[str, Any]:
        return {"node": client.node, "address": client.address, "endpoint": _endpoint(client.endpoint)}

    async def establish_link(self, client: ClientInfo) -> None:
        await self._call("establish_link", {"client": self._client(client)})

    async def release_link(self, client: ClientInfo) -> None:
        await self._call("release_link", {"client": self._client(client)})

    async def request_configuration(self) -> None:
        await self._call("request_configuration", {})

    async def send_bulk_now(self) -> None:
        await self._call("send_bulk_now", {})

    async def read_configuration(self) -> Any:
        return await self._call("read_configuration", {})

    async def call(self, op: str, fields: Mapping[str, Any] | None = None) -> Any:
        """Any operation by name (tests use it for operations the protocol does not have)."""
        return await self._call(op, fields or {})

    # -- internals -------------------------------------------------------------------------------

    async def _launch(self, ready_s: float, budget_end: float | None = None) -> None:
        """Start the command (if any), open the conversation, wait for ready, send configure.

        ``budget_end`` (a monotonic time) bounds the whole launch when it happens inside reset.
        """
        assert self.env is not None
        self.launches += 1
        self._launch_mark = self.evidence.mark()
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + max(ready_s, 0.1)
        sut = self.sut
        if sut.command is not None:
            try:
                self._child = _Child(sut, self.evidence, stdout_is_protocol=sut.control == "stdio")
            except OSError as exc:
                raise HarnessError(f"cannot start SUT {self.name} ({' '.join(sut.command)}): {exc}") from None
            self.evidence.add("harness", f"started pid {self._child.pid}: {' '.join(self._child.argv)}")
        if sut.control == "none":
            await self._wait_bound(deadline)
            return
        if sut.control == "stdio":
            assert self._child is not None
            proc = self._child.proc
            assert proc.stdin is not None and proc.stdout is not None
            stdin = proc.stdin

            def write(data: bytes) -> None:
                stdin.write(data)
                stdin.flush()

            self._conv = _Conversation(loop, proc.stdout, write, self.evidence, self.transcript)
        else:
            self._conv = await self._connect(loop, deadline)
        conv = self._conv
        try:
            ready = await asyncio.wait_for(asyncio.shield(conv.ready), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise await self._fail(f"no ready event within {ready_s:g} s") from None
        except _Broken as exc:
            raise await self._fail(f"no ready event: {exc}", "before its ready event" if conv.ended else None) from None
        self.implementation = dict(ready["implementation"])
        missing = sorted((self.roles - set(ready["roles"])) | (self.capabilities - set(ready["capabilities"])))
        if missing:
            await self._shutdown()
            raise HarnessError(
                f"SUT profile {sut.source} declares {', '.join(missing)}, which the SUT's ready event does not offer"
            )
        left = None if budget_end is None else budget_end - time.monotonic()
        await self._configure(left)

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Conversation:
        """Connect to a control socket, retrying while the SUT comes up (bounded by the deadline)."""
        assert self.sut.tcp is not None
        last: OSError | None = None
        while time.monotonic() < deadline:
            if self._child is not None and not self._child.alive():
                break
            try:
                sock = await loop.run_in_executor(
                    None, socket.create_connection, self.sut.tcp, max(0.05, min(1.0, deadline - time.monotonic()))
                )
            except OSError as exc:
                last = exc
                await asyncio.sleep(0.05)
                continue
            sock.settimeout(None)
            reader = sock.makefile("rb")

            def close(sock: socket.socket = sock) -> None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

            return _Conversation(loop, reader, sock.sendall, self.evidence, self.transcript, close)
        host, port = self.sut.tcp
        raise await self._fail(
            f"cannot connect to the control socket {host}:{port}: {last or 'the process ended'}",
            "before its control socket took a connection",
            broke="did not open its control socket",
        )

    async def _wait_bound(self, deadline: float) -> None:
        """control none: ready once every fixed loopback endpoint is bound (our bind then fails)."""
        pending = [a for a in self.sut.endpoints.values() if ipaddress.ip_address(a[0]).is_loopback]
        while pending:
            if self._child is not None and not self._child.alive():
                raise await self._fail(
                    "the process ended before binding its endpoints", "before binding its endpoints", broke="failed"
                )
            still = []
            for host, port in pending:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(family, socket.SOCK_DGRAM) as probe:
                    try:
                        probe.bind((host, port))
                        still.append((host, port))
                    except OSError:
                        pass  # taken: the SUT has bound it
            pending = still
            if pending and time.monotonic() >= deadline:
                shown = ", ".join(f"{h}:{p}" for h, p in pending)
                raise await self._fail(f"endpoints {shown} not bound within the ready time", broke="did not get ready")
            if pending:
                await asyncio.sleep(0.05)

    async def _call(self, op: str, fields: Mapping[str, Any], timeout: float | None = None) -> Any:
        if self.sut.control == "none":
            raise NotSupported(f"SUT {self.name} has no upper tester (control: none), so no {op}")
        conv = self._conv
        if conv is None:
            raise SutFailed(f"the SUT {self.name} is not running (it failed earlier; the next test case restarts it)")
        limit = self.sut.op_s if timeout is None else max(0.0, min(self.sut.op_s, timeout))
        future = conv.request(op, fields)
        self.evidence.add("ut", f"> {op}" + ("" if op == "configure" or not fields else f" {json.dumps(fields)}"))
        try:
            response = await asyncio.wait_for(future, limit)
        except TimeoutError:
            raise await self._fail(f"no answer to {op} within {limit:g} s (the SUT hangs)") from None
        except _Broken as exc:
            raise await self._fail(f"during {op}: {exc}", f"during {op}" if conv.ended else None) from None
        if response["ok"]:
            self.evidence.add("ut", f"< {op} ok")
            return response["result"]
        code, message = response["error"]["code"], response["error"]["message"]
        self.evidence.add("ut", f"< {op} {code}: {message}")
        if code == "not-supported":
            raise NotSupported(f"SUT {self.name} does not support {op}: {message}")
        if code == "unknown-op":
            raise SutFault(
                f"the SUT {self.name} broke the upper-tester protocol: it does not know operation {op} "
                f"(unknown-op: {message})"
            )
        raise SutFault(f"the SUT {self.name} could not {op} (it answered {code}: {message})")

    async def died_during_case(self) -> str | None:
        child = self._child
        if child is None or child.alive():
            return None
        _, status, tail = await self._reap()
        self.evidence.add("harness", f"SUT {self.name}: exited during the test case; {status}")
        return status + tail

    async def _fail(
        self, what: str, when: str | None = None, broke: str = "broke the upper-tester protocol"
    ) -> SutFailed:
        """Kill the broken SUT and say what it did, with the tail of its stderr: ``the SUT <name>
        exited <when>: <status>`` when the process ended on its own and ``when`` says that ending
        is what went wrong (the conversation ended with it), else ``the SUT <name> <broke>: <what>``."""
        exited, status, tail = await self._reap()
        if exited and when is not None:
            text = f"the SUT {self.name} exited {when}: {status}"
        else:
            text = f"the SUT {self.name} {broke}: {what}" + (f"; {status}" if status else "")
        self.evidence.add("harness", text)
        return SutFailed(text + tail)

    async def _reap(self) -> tuple[bool, str, str]:
        """End the broken SUT's process and conversation: whether the process had exited on its own,
        its status (or that the harness killed it), and its stderr tail as a reason ends with it."""
        child, self._child = self._child, None
        conv, self._conv = self._conv, None
        status, exited = "", False
        if child is not None:
            # A SUT that closed its end is exiting: let it finish and its last stderr lines be
            # read. One that is still talking (hang, garbage, no ready) is killed at once.
            ending = (conv is not None and conv.ended) or not child.alive()
            exited = await child.wait_exit(EXIT_WAIT_S if ending else 0.0)
            status = child.status() if exited else "the harness killed it"
            await child.finish(0.0)
        if conv is not None:
            conv.close()
        tail = self.evidence.tail("stderr", TAIL_LINES, since=self._launch_mark)
        if tail:
            return exited, status, "; stderr tail:\n" + "\n".join(f"  {line}" for line in tail)
        return exited, status, "; nothing on stderr" if child is not None else ""

    async def _shutdown(self) -> None:
        """Ask the SUT to exit, give it a moment, then kill its process group."""
        child, conv = self._child, self._conv
        self._child, self._conv = None, None
        asked = False
        if conv is not None:
            if child is not None and conv.broken is None:  # only a process we started is told to exit
                future = conv.request("shutdown", {})
                asked = True
                with contextlib.suppress(TimeoutError, _Broken):
                    await asyncio.wait_for(future, SHUTDOWN_ANSWER_S)
            conv.close()
        if child is not None:
            await child.finish(STOP_GRACE_S if asked else 0.0)


class ProcessPool:
    """``instances: N`` in the SUT profile: N processes of the implementation, each on its own
    addresses (the run's endpoint set of its index), so that independent test cases run at once.

    A case holds its process from ``open_case`` until the case is over (its late window included,
    so no reset cuts a late datagram of the case short); the next case takes a free process, and
    waits (bounded by the caller's open bound) when all are held. Each process is an ordinary
    :class:`ProcessAdapter`: restarted when it fails, killed with its group at ``stop``.
    """

    def __init__(self, profile_path: str | Path, max_file_bytes: int = yamlsource.MAX_FILE_BYTES) -> None:
        self.sut = load_sut_profile(profile_path, max_file_bytes)
        self.name = self.sut.name
        self.roles = self.sut.roles
        self.capabilities = self.sut.capabilities
        self.options = self.sut.options
        self.instances = self.sut.instances
        self.members = [ProcessAdapter(profile_path, sut=self.sut, index=i) for i in range(self.instances)]
        self._free: asyncio.Queue[ProcessAdapter] | None = None
        self._last = self.members[0]

    @property
    def implementation(self) -> dict[str, Any]:
        """What the first process that got ready said of itself (its ready event)."""
        return next((m.implementation for m in self.members if m.implementation), {})

    @property
    def launches(self) -> int:
        return sum(m.launches for m in self.members)

    async def start(self, env: SutEnvironment) -> None:
        # as many processes as the run has address sets for (a sweep or a load run, which open
        # the SUT once, give one: the pool is then one process)
        usable = max(1, min(len(env.instance_endpoints), len(self.members)))
        self.members = self.members[:usable]
        self.instances = usable
        self._free = asyncio.Queue()
        await asyncio.gather(*(m.start(env) for m in self.members))
        for m in self.members:
            self._free.put_nowait(m)

    async def open_case(self, world: CaseWorld) -> ProcessCase:
        assert self._free is not None, "start() first"
        member = await self._free.get()
        self._last = member
        free = self._free
        try:
            return await member.open_case(world, lambda: free.put_nowait(member))
        except BaseException:
            free.put_nowait(member)
            raise

    async def stop(self) -> None:
        await asyncio.gather(*(m.stop() for m in self.members), return_exceptions=True)

    def log_text(self) -> str:
        """The log of the process the last case was opened on (the evidence when opening failed)."""
        return self._last.log_text()

    def log_entries(self) -> list[tuple[float | None, str]]:
        return self._last.log_entries()
