"""The SUT-log excerpt of a result: the SUT's own lines around the moment that decided the case.

A case's SUT log (:attr:`~msgin5g_conformance.engine.verdict.CaseResult.sut_log`) holds everything
the SUT and the upper-tester conversation said during the case; an external SUT's log is mostly
the harness's own polling (a ``read_configuration`` step asks about 89 times a second until the
configuration is applied or its time is up). :func:`excerpt` keeps the lines around the decisive
datagram (or the end of the case when no datagram decided it), with each run of the harness's
polls folded into one line. A pure function of the lines, their times and the moment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

BEFORE = 15  # lines kept before the moment
AFTER = 10  # and after it

# The harness's own polling as the process adapter logs it (the operation, and its answer when ok).
POLL = re.compile(r"^\[ut\] (> read_configuration|< read_configuration ok)$")
POLL_REQUEST = "[ut] > read_configuration"

Entry = tuple[float | None, str]  # (wall time the line was read, or None when unknown; the line)


def fold_polls(entries: Sequence[Entry]) -> list[Entry]:
    """Each run of two or more harness polls (``read_configuration`` and its ``ok``, with nothing
    of the SUT's in between) as one line ``... N read_configuration polls (harness) folded ...``,
    at the time of the run's first line. A request left without an ok answer stays as it is."""
    out: list[Entry] = []
    run: list[Entry] = []

    def flush() -> None:
        # a last request without its ok answer (an error answer follows, or none came) is kept
        pending = [run.pop()] if run and run[-1][1] == POLL_REQUEST else []
        polls = sum(1 for _, line in run if line == POLL_REQUEST)
        if polls >= 2:
            out.append((run[0][0], f"... {polls} read_configuration polls (harness) folded ..."))
        else:
            out.extend(run)
        out.extend(pending)
        run.clear()

    for entry in entries:
        if POLL.match(entry[1]):
            run.append(entry)
            continue
        flush()
        out.append(entry)
    flush()
    return out


def excerpt(
    entries: Sequence[Entry],
    moment: float | None,
    what: str = "the decisive datagram",
    *,
    before: int = BEFORE,
    after: int = AFTER,
) -> str:
    """Up to ``before`` lines up to ``moment`` (a wall time) and ``after`` lines after it, polls
    folded, with a marker line at the moment naming ``what`` happened then and a count of the lines
    left out on each side. Without a moment, or without any timed line, the excerpt is the last
    ``before`` lines, ending at the end of the case. A line without a time is placed after the
    timed line before it. Empty when there are no lines."""
    lines = fold_polls(entries)
    if not lines:
        return ""
    timed = moment is not None and any(at is not None for at, _ in lines)
    if moment is None or not timed:
        at_index, marker = len(lines), "--- end of the case ---"
    else:
        at_index, last = 0, float("-inf")
        for i, (at, _) in enumerate(lines):
            last = at if at is not None else last
            if last <= moment:
                at_index = i + 1
        marker = f"--- {what} ---"
    start = max(0, at_index - before)
    end = min(len(lines), at_index + (after if timed else 0))
    out: list[str] = []
    if start > 0:
        out.append(f"... {start} earlier line(s) not shown ...")
    out.extend(line for _, line in lines[start:at_index])
    out.append(marker)
    out.extend(line for _, line in lines[at_index:end])
    if end < len(lines):
        out.append(f"... {len(lines) - end} later line(s) not shown ...")
    return "\n".join(out)
