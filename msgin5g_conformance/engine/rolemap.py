"""``roles.yaml`` beside a live run's pcaps: each case's topology, for ``msgin5g-conformance analyze``.

As each case writes its pcap, its topology is added to the role map of the pcap folder (the format
of ``schemas/roles.schema.json``): the SUT's endpoints in its role, the tester's SCM-S with the
recipient value that names it, every tester client with its UE id and its one-to-one link
intervals in the wall-clock epoch seconds of the pcap's timestamps. The file is rewritten whole
after each case (a temporary file renamed over it), so a run stopped at any point leaves a whole,
valid role map of the cases that finished.

Cost: each topology is rendered once, as text; a rewrite joins the rendered texts (no YAML is
parsed or dumped again), so a run of N cases writes O(N) bytes per case. Several sessions may write
one folder (pytest-xdist workers of one run, or a later run reusing the folder): the rewrite holds
an exclusive lock on ``.roles.yaml.lock`` and, when another writer changed the file since this one
last wrote it, takes the other writers' topologies from it first; a case's own topology replaces an
older one of the same name (a case run again overwrites its pcap too).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgin5g_conformance.world import nodes

if TYPE_CHECKING:
    from msgin5g_conformance.engine.case import CaseRun

log = logging.getLogger(__name__)

FILE = "roles.yaml"
_LOCK = ".roles.yaml.lock"
LOCK_S = 10.0  # bound on waiting for another writer of the folder's role map
HEADER = (
    "# The role map of the captures in this folder, written by msgin5g-conformance as each case ended.\n"
    "# Re-judge them offline: msgin5g-conformance analyze <this folder> --roles <this file>\n"
    "version: 1\n"
    "topologies:\n"
)
_ITEM = "- name: "

Interval = tuple[float, float | None]


def _is_client(node: str) -> bool:
    return node == "cue_nolink" or nodes.cue_number(node) is not None


def _endpoint(address: tuple[str, int]) -> dict[str, Any]:
    return {"address": address[0], "port": address[1]}


def topology(run: CaseRun, capture: str, end: float) -> dict[str, Any] | None:
    """The role-map topology of a case: what the tester knew of every node while the case ran
    (None: the SUT never gave its endpoints for the case, so there is no topology to tell)."""
    profile = run.profile
    a = run.addresses
    role = run.case.role
    if any(n not in a.sut_endpoints() for n in nodes.SUT_ENDPOINTS[role]):
        return None
    scms = {**_endpoint(a.address("scms")), "recipient": profile.address_of("scms")}
    if run.recorder.overflowed and run.recorder.datagrams:  # the capture stopped at its limit
        end = run.recorder.datagrams[-1].time
    out: dict[str, Any] = {"name": run.case.id, "capture": capture, "observed": _interval(run.began_wall, end, end)}
    sut = a.sut_endpoints()
    if role == "constrained-ue":
        out["constrained_ue"] = {
            **_endpoint(sut["sut.cue"]),
            "ue_id": profile.address_of("sut.cue"),
            "peer": _endpoint(a.address("relay")),
        }
        out["scms"] = scms
        return out
    out[role] = {"pc5": _endpoint(sut["sut.pc5"]), "uu": _endpoint(sut["sut.uu"])}
    out["scms"] = scms
    clients = []
    for node in sorted((n for n in run.tester_names if _is_client(n)), key=_client_order):
        spans = [] if node == "cue_nolink" else run.link_spans.get(node, [])
        clients.append(
            {
                "name": node,
                **_endpoint(a.address(node)),
                "ue_id": profile.client_address(node),
                "links": [_interval(start, stop, end) for start, stop in spans],
            }
        )
    out["clients"] = clients
    return out


def _client_order(node: str) -> tuple[int, str]:
    n = nodes.cue_number(node)
    return (n if n is not None else 0, node)


def _interval(start: float, stop: float | None, end: float) -> dict[str, float]:
    return {"from": round(start, 6), "to": round(end if stop is None else stop, 6)}


def render(t: dict[str, Any]) -> str:
    """One topology as an item of the ``topologies`` list: block YAML whose values are JSON flow
    text (valid YAML), one line per key and per client, so a rewrite never parses YAML again."""
    lines = [_ITEM + json.dumps(t["name"])]
    for key, value in t.items():
        if key in ("name", "clients"):
            continue
        lines.append(f"  {key}: {json.dumps(value)}")
    if "clients" in t:
        if t["clients"]:
            lines.append("  clients:")
            lines.extend(f"  - {json.dumps(c)}" for c in t["clients"])
        else:
            lines.append("  clients: []")
    return "\n".join(lines) + "\n"


def _items(text: str) -> dict[str, str] | None:
    """The rendered topologies of a role map this module wrote, by name (None: not one of ours)."""
    if not text.startswith(HEADER):
        return None
    out: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in text[len(HEADER) :].splitlines(keepends=True):
        if line.startswith(_ITEM):
            if name is not None:
                out[name] = "".join(body)
            try:
                name = json.loads(line[len(_ITEM) :])
            except ValueError:
                return None
            if not isinstance(name, str):
                return None
            body = [line]
        elif name is None or not line.startswith("  "):
            return None
        else:
            body.append(line)
    if name is not None:
        out[name] = "".join(body)
    return out


class RoleMapWriter:
    """The role map of one pcap folder, rewritten whole (and atomically) after each case."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / FILE
        self._lock = threading.Lock()
        self._own: dict[str, str] = {}  # topologies this writer recorded, rendered
        self._others: dict[str, str] = {}  # those other writers left in the file
        self._stamp: tuple[int, int, int] | None = None  # the file as this writer last left it
        self.writes = 0

    def record(self, run: CaseRun, pcap: Path) -> None:
        """Add a finished case's topology (its pcap is written) and rewrite the file."""
        t = topology(run, pcap.name, time.time())
        if t is not None:
            self.add(run.case.id, render(t))

    def add(self, name: str, rendered: str) -> None:
        self.add_many({name: rendered})

    def merge_file(self, source: Path) -> None:
        """Add every topology of another role map this harness wrote (a shard's, when runs merge)."""
        found = _items(source.read_text(encoding="utf-8"))
        if found is None:
            raise OSError(f"{source}: not a role map written by a run")
        self.add_many(found)

    def add_many(self, rendered: dict[str, str]) -> None:
        with self._lock:
            self._own.update(rendered)
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / _LOCK, os.O_CREAT | os.O_RDWR, 0o666)
            try:
                _lock_file(fd, self.folder / _LOCK)
                self._merge()
                self._write()
            finally:
                os.close(fd)  # releases the lock

    def _merge(self) -> None:
        """Another writer changed the file since this one wrote it: take its topologies."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._others = {}
            return
        if (st.st_ino, st.st_mtime_ns, st.st_size) == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        found = _items(text)
        if found is None:  # not a role map this harness wrote: the run's own replaces it
            log.warning("%s is not a role map written by a run; replacing it", self.path)
            found = {}
        self._others = {k: v for k, v in found.items() if k not in self._own}

    def _write(self) -> None:
        every = {**self._others, **self._own}
        text = HEADER + "".join(every[k] for k in sorted(every))
        tmp = self.folder / f".{FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        st = os.stat(self.path)
        self._stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        self.writes += 1


def _lock_file(fd: int, path: Path) -> None:
    deadline = time.monotonic() + LOCK_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OSError(f"{path}: another writer held the lock for more than {LOCK_S:.0f} s") from None
            time.sleep(0.005)
