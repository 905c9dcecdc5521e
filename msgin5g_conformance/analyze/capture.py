"""The capture read path the analysis uses.

Until the streaming reader (``analyze/reader.py``, another branch) is merged this is a private shim
with its names, built on :func:`msgin5g_conformance.wire.capture.pcap.read_pcap`. The switch is one
line: replace everything below the imports with ``from msgin5g_conformance.analyze.reader import
CaptureFileError, Frame, Problem, capture_files, iter_capture``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.wire.capture.pcap import PcapError, read_pcap


@dataclass(frozen=True, slots=True)
class Frame:
    number: int
    when: float
    offset: int
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes
    frames: tuple[int, ...] = ()
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    frame: int
    offset: int
    message: str


class CaptureFileError(HarnessError):
    def __init__(self, path: str, offset: int, frame: int | None, message: str) -> None:
        self.path, self.offset, self.frame, self.message = path, offset, frame, message
        super().__init__(f"{path}: at byte offset {offset}: {message}")


def iter_capture(path: str | Path) -> Iterator[Frame | Problem]:
    try:
        datagrams = read_pcap(path)
    except PcapError as exc:
        raise CaptureFileError(exc.path, exc.offset, None, exc.reason) from None
    except OSError as exc:
        raise CaptureFileError(str(path), 0, None, f"cannot read: {exc.strerror or exc}") from None
    for d in datagrams:
        yield Frame(d.seq + 1, d.time, 0, d.src, d.dst, d.data)


_SUFFIXES = (".pcap", ".pcapng", ".cap")


def capture_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.is_file() and f.suffix in _SUFFIXES)
    return [p]
