"""The record of every datagram that crossed the wire during one test case.

Both capture modes (the in-process tap and the live sniffer on ``lo``) feed one
:class:`Recorder`; verdicts are computed only from what it holds, and the pcap
of the test case is written from it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

Address = tuple[str, int]


@dataclass(frozen=True)
class Datagram:
    """One UDP datagram as seen on the wire: addresses, ports and exact bytes."""

    seq: int
    time: float
    src: Address
    dst: Address
    data: bytes


class ThreadsafeSink(Protocol):
    """Where a capture thread hands datagrams (a :class:`Recorder`, or the session's router)."""

    def append_threadsafe(self, src: Address, dst: Address, data: bytes, when: float) -> None: ...


class Recorder:
    """An append-only, ordered log of datagrams with an awaitable "something new" signal.

    It is fed from the event loop (tap) or from a sniffer thread through
    :meth:`append_threadsafe`.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._items: list[Datagram] = []
        self.limit = limit
        self.overflowed = False
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Event()

    def append(self, src: Address, dst: Address, data: bytes, when: float | None = None) -> Datagram | None:
        if self.limit is not None and len(self._items) >= self.limit:
            self.overflowed = True  # bounded memory under a flood; the runner reports it
            return None
        d = Datagram(len(self._items), time.time() if when is None else when, src, dst, bytes(data))
        self._items.append(d)
        if self._changed is not None:
            self._changed.set()
        return d

    def append_threadsafe(self, src: Address, dst: Address, data: bytes, when: float) -> None:
        if self._loop is None:
            self.append(src, dst, data, when)
        else:
            self._loop.call_soon_threadsafe(self.append, src, dst, data, when)

    @property
    def datagrams(self) -> list[Datagram]:
        return list(self._items)

    def since(self, start: int) -> list[Datagram]:
        """Datagrams with sequence numbers from ``start`` on (no full copy)."""
        return self._items[start:]

    def datagrams_at(self, seq: int) -> Datagram:
        return self._items[seq]

    def before(self, end: int) -> list[Datagram]:
        return self._items[:end]

    def __len__(self) -> int:
        return len(self._items)

    async def wait_for_more(self, count: int, deadline: float) -> bool:
        """Wait until more than ``count`` datagrams are held or the loop time ``deadline`` passes."""
        assert self._changed is not None and self._loop is not None
        while len(self._items) <= count:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            if len(self._items) > count:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return len(self._items) > count
        return True
