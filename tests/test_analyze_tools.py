"""Captures by other tools: tcpdump (``-i any``: Linux cooked) and dumpcap (pcapng on ``lo``) record a
live run; analysed with the run's roles.yaml they give the judgements the harness's own pcaps give.

``.ci/run`` installs both tools and runs as root; in CI these tests may not skip (tests/conftest.py).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from msgin5g_conformance.analyze.capture import capture_files
from msgin5g_conformance.analyze.checks import Judgement
from msgin5g_conformance.analyze.roles import load_roles
from msgin5g_conformance.analyze.run import judgements
from msgin5g_conformance.engine.rolemap import FILE
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile
from sut_adapters.registry import make_adapter

from .conftest import TESTCASES

CASES = ["RELAY-DL-001", "RELAY-DL-004", "RELAY-DL-005", "RELAY-UL-001"]
FILTER = "udp and net 127.64.0.0/10"  # the harness's loopback blocks (world/topology.py)
READY_S = 10.0  # bound on a capture tool starting to listen
STOP_S = 10.0  # bound on it flushing and exiting after SIGINT
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_LINUX_SLL = 113
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _start(argv: list[str], ready: str) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start a capture tool and wait (bounded) until it says it listens (``ready`` on stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: list[str] = []
    listening = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace").rstrip())
            if ready in lines[-1]:
                listening.set()

    threading.Thread(target=read, daemon=True).start()
    if not listening.wait(READY_S):
        _stop(proc)
        pytest.fail(f"{argv[0]} did not start capturing within {READY_S:.0f} s: {' | '.join(lines)}")
    time.sleep(0.1)  # it says so as its socket opens
    return proc, lines


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT: the tool flushes its buffer and closes the file; bounded, then killed."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_S)
        pytest.fail(f"the capture tool did not exit within {STOP_S:.0f} s of SIGINT")


def _key(j: Judgement) -> tuple[str, str, tuple[str, ...], str]:
    return (j.topology, j.verdict.value, j.requirements, j.title)


def _run_captured(profile: Profile, folder: Path, argv: list[str], ready: str) -> list[str]:
    cases = [load_testcase(TESTCASES / "relay" / f"{i}.yaml", profile) for i in CASES]
    proc, lines = _start(argv, ready)
    try:
        with Session(profile, make_adapter("reference"), pcap_dir=folder, concurrency=8) as session:
            session.run_cases(cases)
        time.sleep(0.3)  # the last datagrams reach the tool's buffer before it is told to stop
    finally:
        _stop(proc)
    return lines


def _same_judgements(profile: Profile, folder: Path, capture: Path, said: list[str]) -> None:
    assert capture.stat().st_size > 100, f"the capture is empty: {' | '.join(said)}"
    roles = load_roles(folder / FILE)
    own = judgements(capture_files(folder), roles, profile)
    theirs = judgements([capture], roles, profile)
    want = sorted(_key(j) for js in own.values() for j in js)
    got = sorted(_key(j) for j in theirs[str(capture)])
    assert want and got == want, " | ".join(said)  # the tool's own count of what it dropped
    assert {k[0] for k in got} == set(CASES)


def _linktype(capture: Path) -> int:
    """The link type the file declares: the pcap header's, or the first pcapng interface's."""
    data = capture.read_bytes()[:4096]
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        order = "little" if data[8:12] == b"\x4d\x3c\x2b\x1a" else "big"
        idb = int.from_bytes(data[4:8], order)  # the section header block's length
        assert int.from_bytes(data[idb : idb + 4], order) == 1, "no interface description block"
        return int.from_bytes(data[idb + 8 : idb + 10], order)
    order = "little" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else "big"
    return int.from_bytes(data[20:24], order) & 0x0FFFFFFF


def test_a_tcpdump_capture_is_judged_like_the_harness_pcaps(fast_profile: Profile, tmp_path: Path) -> None:
    tcpdump = _tool("tcpdump")
    folder, capture = tmp_path / "pcaps", tmp_path / "tcpdump.pcap"
    # -U and --immediate-mode: each packet is written as it comes (SIGINT then loses none); a
    # 65,535-byte snaplen and a 32 MB buffer: with -s 0 and the default 2 MB buffer tcpdump reported
    # packets "dropped by kernel" within one case on a busy machine
    argv = [tcpdump, "-i", "any", "-U", "--immediate-mode", "-n", "-s", "65535", "-B", "32768"]
    said = _run_captured(fast_profile, folder, [*argv, "-w", str(capture), FILTER], "listening on")
    assert capture.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1")
    assert _linktype(capture) in (LINKTYPE_LINUX_SLL2, LINKTYPE_LINUX_SLL)  # cooked v2 on current tcpdump
    _same_judgements(fast_profile, folder, capture, said)


def test_a_dumpcap_capture_is_judged_like_the_harness_pcaps(fast_profile: Profile, tmp_path: Path) -> None:
    dumpcap = _tool("dumpcap")
    folder, capture = tmp_path / "pcaps", tmp_path / "dumpcap.pcapng"
    said = _run_captured(
        fast_profile,
        folder,
        [dumpcap, "-i", "lo", "-s", "65535", "-B", "32", "-f", FILTER, "-w", str(capture)],
        "Capturing on",
    )
    assert capture.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng
    assert _linktype(capture) in (LINKTYPE_ETHERNET, LINKTYPE_NULL)  # lo: Ethernet framing on Linux
    _same_judgements(fast_profile, folder, capture, said)
