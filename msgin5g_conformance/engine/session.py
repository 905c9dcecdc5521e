"""The session: one run against one SUT with one profile, and the order in which cases run.

A :class:`Session` owns an event loop in a thread of its own, the claimed loopback /16, the
started SUT adapter, the capture and the scheduler. The CLI and the pytest plugin both drive it:
:meth:`Session.submit` queues a test case and returns a future of its final result.

Scheduling: cases run one after another, each on its own address range. A case's verdict is
final only after its late window (every listener of the case stays up that long after its last
step). With an SUT that can open several cases at once (``instances`` > 1, such as the embedded
reference), the next case starts while the previous one is in its late window: the late windows
overlap instead of adding up. With a single-instance SUT the next case starts only when the
previous one is final, so that no reset can cut a late datagram short.

Every datagram goes through one :class:`Router`, which hands it to the recorder of the case whose
range holds its source (else its destination): the two capture modes judge alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import resource
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from msgin5g_conformance.engine.case import CaseRun, run_active
from msgin5g_conformance.engine.rolemap import RoleMapWriter
from msgin5g_conformance.engine.verdict import CaseResult, StepResult, Verdict
from msgin5g_conformance.errors import HarnessError, NotApplicable
from msgin5g_conformance.spec.model import ExpectNothingStep, ExpectStep, TestCase, UpperStep, WaitStep
from msgin5g_conformance.spec.requirements import OPTIONS
from msgin5g_conformance.wire.capture.record import Address
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import Profile, condition_holds
from msgin5g_conformance.world.topology import RunBlock, claim_block
from sut_adapters.base import SutAdapter, SutEnvironment, SutFault

log = logging.getLogger(__name__)

CASE_TIME_LIMIT_S = 60.0  # hard bound on one test case's steps, whatever the SUT does
MAX_DATAGRAMS = 20_000  # a SUT that floods beyond this is judged on what came before
START_S = 30.0
STOP_S = 10.0
# An SUT running several processes (``instances``) keeps process i's endpoints at host offsets
# i * INSTANCE_STRIDE + 1..3 of the run's own /24: 16 sets fit.
INSTANCE_STRIDE = 16
MAX_INSTANCES = 16

T = TypeVar("T")


class Router:
    """Hands every datagram of the run to the recorder of the case it belongs to."""

    def __init__(self) -> None:
        self.runs: list[CaseRun] = []
        self.strays = 0  # datagrams of no open case (e.g. later than a case's late window)
        self._sut_endpoints: dict[Address, CaseRun] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def add(self, run: CaseRun) -> None:
        self.runs.append(run)

    def update(self, run: CaseRun) -> None:
        """The case's SUT endpoints are known: datagrams from them outside any range are its own."""
        for addr in run.addresses.sut_endpoints().values():
            if not run.space.contains(addr):
                self._sut_endpoints[addr] = run

    def remove(self, run: CaseRun) -> None:
        with contextlib.suppress(ValueError):
            self.runs.remove(run)
        for addr in [a for a, r in self._sut_endpoints.items() if r is run]:
            del self._sut_endpoints[addr]

    def owner(self, src: Address, dst: Address) -> CaseRun | None:
        """The case of the sender first: what an SUT sends belongs to its case wherever it goes
        (also into another open case's range, when cases run at once)."""
        for run in self.runs:
            if run.space.contains(src):
                return run
        mine = self._sut_endpoints.get(src)
        if mine is not None:
            return mine
        for run in self.runs:
            if run.space.contains(dst):
                return run
        return self._sut_endpoints.get(dst)

    def record(self, src: Address, dst: Address, data: bytes, when: float) -> int | None:
        run = self.owner(src, dst)
        if run is None:
            self.strays += 1
            return None
        d = run.recorder.append(src, dst, data, when)
        return d.seq if d is not None else None

    def append_threadsafe(self, src: Address, dst: Address, data: bytes, when: float) -> None:
        """For the sniffer's thread."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.record, src, dst, data, when)


class Session:
    """One run against one SUT with one profile."""

    def __init__(
        self,
        profile: Profile,
        adapter: SutAdapter,
        *,
        capture_mode: str = "tap",
        pcap_dir: Path | None = Path("pcaps"),
        sut_label: str | None = None,
        max_datagrams: int = MAX_DATAGRAMS,
        concurrency: int = 1,
    ) -> None:
        if capture_mode not in ("tap", "sniff"):
            raise HarnessError(f"unknown capture mode {capture_mode!r}; expected tap or sniff")
        self.profile = profile
        self.adapter = adapter
        self.capture_mode = capture_mode
        self.pcap_dir = pcap_dir
        self.role_map = RoleMapWriter(pcap_dir) if pcap_dir is not None else None  # roles.yaml beside the pcaps
        self.sut_label = sut_label or adapter.name
        self.max_datagrams = max_datagrams
        # cases in their active phase at once (each on its own addresses; never above what the
        # SUT can open at once)
        self.concurrency = max(1, min(concurrency, adapter.instances))
        self.router = Router()
        self.block: RunBlock | None = None
        self.start_error: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[tuple[TestCase, concurrent.futures.Future[CaseResult]]] | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._finishing: set[asyncio.Task[None]] = set()
        self._sniffer: Any = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        raise_fd_limit()
        logging.getLogger("coap").setLevel(logging.ERROR)  # the reference SUT's aiocoap chatter
        self.block = claim_block(self.profile.port)
        loop = asyncio.new_event_loop()
        self.loop = loop
        self.router.loop = loop
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=main, name="msgin5g-session", daemon=True)
        self._thread.start()
        ready.wait(5)
        try:
            self._call(self._open(), START_S + 5)
        except Exception as exc:
            self.close()
            raise exc

    async def _open(self) -> None:
        self._queue = asyncio.Queue()
        if self.capture_mode == "sniff":
            await self._start_sniffer()
        assert self.block is not None
        run_space = self.block.run_space()
        hosts = {n: nodes.kind(n).host for n in nodes.ALL_SUT_ENDPOINTS}  # type: ignore[union-attr]
        sets = tuple(
            {n: (run_space.host(i * INSTANCE_STRIDE + h), self.profile.port) for n, h in hosts.items()}
            for i in range(max(1, min(self.adapter.instances, MAX_INSTANCES)))
        )
        env = SutEnvironment(self.profile, self.profile.timers.coap, sets[0], sets)
        try:
            await asyncio.wait_for(self.adapter.start(env), START_S)
        except (HarnessError, OSError, TimeoutError) as exc:
            self.start_error = f"SUT {self.sut_label} did not start: {exc or type(exc).__name__}"
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule())

    async def _start_sniffer(self) -> None:
        from msgin5g_conformance.wire.capture.sniff import LoopbackSniffer, sniff_available

        ok, why = sniff_available()
        if not ok:
            raise HarnessError(f"--capture sniff is not available here: {why}")
        assert self.block is not None
        self._sniffer = LoopbackSniffer(self.router, network=self.block.network)
        await asyncio.get_running_loop().run_in_executor(None, self._sniffer.start)

    async def flush_capture(self) -> None:
        """Sniff mode: every datagram on ``lo`` so far has reached its recorder."""
        if self._sniffer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._sniffer.flush)
            await asyncio.sleep(0)  # the records it queued on this loop

    def close(self) -> None:
        loop = self.loop
        if loop is not None and loop.is_running():
            try:
                self._call(self._close(), STOP_S + 20)
            except Exception as exc:  # teardown must not hide the run's results
                log.warning("closing the session failed: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            if not loop.is_running():
                loop.close()
        self.loop = None
        if self.block is not None:
            self.block.release()
            self.block = None

    async def _close(self) -> None:
        if self._queue is not None:
            while not self._queue.empty():
                _case, fut = self._queue.get_nowait()
                fut.cancel()
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._scheduler
        if self._finishing:
            await asyncio.wait(self._finishing, timeout=STOP_S)
        try:
            await asyncio.wait_for(self.adapter.stop(), STOP_S)
        except Exception as exc:
            log.warning("SUT stop failed: %s", exc)
        if self._sniffer is not None:
            sniffer, self._sniffer = self._sniffer, None
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, sniffer.stop)

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # -- running cases -----------------------------------------------------------------------------

    def submit(self, case: TestCase) -> concurrent.futures.Future[CaseResult]:
        """Queue a case; the future resolves to its final result (after its late window)."""
        assert self.loop is not None and self._queue is not None, "Session.open() first"
        fut: concurrent.futures.Future[CaseResult] = concurrent.futures.Future()
        queue = self._queue
        self.loop.call_soon_threadsafe(queue.put_nowait, (case, fut))
        return fut

    def result_timeout(self) -> float:
        """How long a caller may wait for one submitted case, queued behind others included."""
        return CASE_TIME_LIMIT_S + self.late_window_s() + self.profile.timers.ack_bound_ms / 1000 + 30

    def run_case(self, case: TestCase) -> CaseResult:
        return self.submit(case).result(self.result_timeout())

    def run_cases(self, cases: Iterable[TestCase]) -> list[CaseResult]:
        """Run cases pipelined; their results in the order given. With cases at once the longest
        planned ones start first (:func:`longest_first`), so that they do not end the run alone."""
        given = list(cases)
        order = longest_first(given, self.profile) if self.concurrency > 1 else list(range(len(given)))
        futures: dict[int, concurrent.futures.Future[CaseResult]] = {}
        for i in order:
            futures[i] = self.submit(given[i])
        rank = {i: r for r, i in enumerate(order)}
        return [futures[i].result(self.result_timeout() * (rank[i] + 1)) for i in range(len(given))]

    def late_window_s(self) -> float:
        return self.profile.timers.late_window_ms / 1000

    async def _schedule(self) -> None:
        """Start queued cases in order: at most ``concurrency`` in their active phase at once; a
        case's late window overlaps the next cases only when the SUT opens several at once."""
        assert self._queue is not None
        slots = asyncio.Semaphore(self.concurrency)
        loop = asyncio.get_running_loop()
        while True:
            case, fut = await self._queue.get()
            if fut.cancelled():
                continue
            await slots.acquire()
            task = loop.create_task(self._case(case, fut, slots))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _case(self, case: TestCase, fut: concurrent.futures.Future[CaseResult], slots: asyncio.Semaphore) -> None:
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        try:
            result = await self._run(case, release)
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except SutFault as exc:  # the SUT's fault: error with its reason, no traceback
            log.info("running %s: %s", case.id, exc)
            result = self.error_result(case, str(exc), time.monotonic())
        except Exception as exc:  # never lose a case: a harness bug is its error verdict
            log.exception("running %s failed inside the harness", case.id)
            result = self.error_result(case, f"harness error: {type(exc).__name__}: {exc}", time.monotonic())
        finally:
            release()
        _settle(fut, result)

    async def _run(self, case: TestCase, active_done: Callable[[], None]) -> CaseResult:
        began = time.monotonic()
        na = self.not_applicable(case)
        if na is not None:
            return self.result_for(case, Verdict.NOT_APPLICABLE, na, [], None, set(), began)
        if self.start_error:
            return self.error_result(case, self.start_error, began)
        assert self.block is not None
        space = self.block.open_space(nodes.hosts_needed(frozenset(case.nodes())))
        run = CaseRun(self, case, space)
        self.router.add(run)
        try:
            try:
                await asyncio.wait_for(run_active(run), CASE_TIME_LIMIT_S)
            except NotApplicable as exc:
                await run.close()
                return self.result_for(case, Verdict.NOT_APPLICABLE, str(exc), [], None, set(), began)
            except TimeoutError:
                run.results.append(
                    StepResult(
                        "case", "case", None, Verdict.ERROR, f"test case exceeded its {CASE_TIME_LIMIT_S:.0f} s bound"
                    )
                )
                run.stopped_at = run.results[-1]
            if self.adapter.instances > 1:
                active_done()  # the next case may start while this one waits out its late window
            try:
                return await run.finish()
            except SutFault as exc:  # the SUT's fault while the case ended: error, no traceback
                log.info("finishing %s: %s", case.id, exc)
                with contextlib.suppress(Exception):
                    await run.close()
                return self.error_result(case, str(exc), began)
            except Exception as exc:
                log.exception("finishing %s failed inside the harness", case.id)
                with contextlib.suppress(Exception):
                    await run.close()
                return self.error_result(case, f"harness error: {type(exc).__name__}: {exc}", began)
        finally:
            self.router.remove(run)
            self.block.close_space(space)

    def not_applicable(self, case: TestCase) -> str | None:
        a = self.adapter
        if case.role not in a.roles:
            return f"SUT {self.sut_label} does not implement the {case.role} role (roles: {', '.join(sorted(a.roles))})"
        missing = [c for c in case.capabilities if c not in a.capabilities]
        if missing:
            return f"SUT {self.sut_label} does not offer capability {', '.join(missing)}"
        if case.option is not None and case.option not in a.options:
            return (
                f"SUT {self.sut_label} does not declare option {case.option} (a MAY: {OPTIONS[case.option]}); "
                f"options declared: {', '.join(sorted(a.options)) or 'none'}"
            )
        for key, want in case.profile_conditions.items():
            try:
                have = self.profile.value(key)
            except KeyError:
                return f"profile {self.profile.name} has no value {key}"
            if not condition_holds(have, want):
                return f"applies when profile {key} is {want!r}; profile {self.profile.name} has {have!r}"
        return None

    # -- results -----------------------------------------------------------------------------------

    def result_for(
        self,
        case: TestCase,
        verdict: Verdict,
        reason: str,
        steps: list[StepResult],
        pcap: str | None,
        used: set[str],
        started: float,
    ) -> CaseResult:
        return CaseResult(
            case_id=case.id,
            verdict=verdict,
            reason=reason,
            steps=steps,
            profile=self.profile.name,
            profile_sha256=self.profile.sha256,
            sut=self.sut_label,
            capture_mode=self.capture_mode,
            pcap=pcap,
            provisional=sorted(used),
            duration_s=time.monotonic() - started,
        )

    def error_result(self, case: TestCase, reason: str, started: float) -> CaseResult:
        return self.result_for(case, Verdict.ERROR, reason, [], None, set(), started)


def planned_ms(case: TestCase, profile: Profile) -> int:
    """How long a case's steps take by their own declaration when the SUT answers at once: its
    waits, its expectations' explicit timeouts (a gateway's max-wait timer is waited out), its
    absence windows and settle times. An estimate, for the order of cases only."""
    total = 0
    steps: list[Any] = list(case.steps)
    while steps:
        step = steps.pop()
        if isinstance(step, WaitStep):
            total += step.ms
        elif isinstance(step, ExpectStep) and step.timeout_ms is not None:
            value: Any = step.timeout_ms
            if isinstance(value, str) and value.startswith("${profile.") and value.endswith("}"):
                with contextlib.suppress(KeyError):
                    value = profile.value(value[len("${profile.") : -1])
            total += value if isinstance(value, int) else 0
        elif isinstance(step, ExpectNothingStep):
            total += step.window_ms or profile.timers.absence_window_ms
            steps.extend(step.control)  # its positive control is waited for too
        elif isinstance(step, UpperStep):
            total += step.settle_ms
    return total


def longest_first(cases: list[TestCase], profile: Profile) -> list[int]:
    """Indices of ``cases``, the longest planned first (ties in the given order)."""
    return sorted(range(len(cases)), key=lambda i: -planned_ms(cases[i], profile))


def _settle(fut: concurrent.futures.Future[CaseResult], result: CaseResult) -> None:
    if not fut.done():
        fut.set_result(result)


def raise_fd_limit() -> None:
    """Each open case listens on every host of its range: allow a few thousand sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, 65536), hard))
