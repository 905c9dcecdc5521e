"""Run directories: each run's evidence in a folder of its own, ``reports/latest`` pointing at it.

``msgin5g-conformance run`` creates ``<reports>/runs/<UTC stamp>-<SUT name>/`` and writes
everything of that run into it::

    run.json            the run's identity: SUT (name, version, kind, options), profile and
                        readings, harness version, capture mode, start and end, exit status
    results/            one JSON result per case, and _collected.json (what the run collected)
    allure-results/     for the HTML report
    junit.xml
    pcaps/              one capture per case
    compliance.json     the compliance matrix (and compliance.md)
    index.html          the single-file HTML report
    summary.html        the one-page summary (and summary.pdf, printed by headless Chromium)

``<reports>/latest`` is a relative symbolic link to the newest run, and ``pcaps`` (in the
current folder, where the design has always put the captures) one to that run's ``pcaps/``, so
neither ever shows a capture of another run. Runs are kept; ``--keep-runs N`` removes the oldest
beyond N (only folders holding a ``run.json``, that is, runs this harness wrote).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgin5g_conformance.engine import rolemap

if TYPE_CHECKING:
    from msgin5g_conformance.world.profile import Profile

FORMAT = "msgin5g-run/1"
RUNS = "runs"
LATEST = "latest"
IDENTITY = "run.json"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
CAPTURE_SUFFIXES = (".pcap", ".pcapng")


def new_run_id(sut_name: str, now: datetime | None = None) -> str:
    """``20261202T054218Z-example-sut``: sortable by time, readable by SUT."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    slug = _SLUG.sub("-", sut_name).strip("-.")[:60] or "sut"
    return f"{stamp}-{slug}"


def create(reports_dir: str | Path, run_id: str) -> Path:
    """A new, empty run directory (``-2``, ``-3``... when two runs start in one second)."""
    base = Path(reports_dir) / RUNS
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = base / (run_id if n == 1 else f"{run_id}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise OSError(f"{base}: cannot create a run directory for {run_id} (999 exist)")


def _relink(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (relative), replacing an older link atomically."""
    rel = os.path.relpath(target.resolve(), link.parent.resolve())
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(rel, tmp, target_is_directory=True)
    os.replace(tmp, link)


def point_latest(reports_dir: str | Path, run_dir: Path) -> None:
    link = Path(reports_dir) / LATEST
    if link.exists() and not link.is_symlink():
        raise OSError(f"{link} exists and is not a link; move it away so that it can point at the newest run")
    _relink(link, run_dir)


def link_captures(link: Path, captures: Path) -> str | None:
    """Make ``link`` (``pcaps``) point at this run's captures; a warning when it cannot.

    A real folder there holding only captures (what an earlier version of the harness wrote) is
    replaced; one holding anything else is left alone, with the warning."""
    if link.is_symlink() or not link.exists():
        _relink(link, captures)
        return None
    if link.is_dir():
        entries = list(link.iterdir())
        if all(e.is_file() and e.suffix in CAPTURE_SUFFIXES for e in entries):
            shutil.rmtree(link)
            _relink(link, captures)
            return None
    return f"{link} holds files that are not captures, so it does not point at this run; the captures are in {captures}"


def resolve(reports_dir: str | Path, run: str | Path | None = None) -> Path:
    """The run directory a report is built from: ``run`` when given, else ``<reports>/latest``;
    a reports folder of the old, flat layout (``reports/results``) is its own run directory."""
    if run is not None:
        return Path(run)
    reports = Path(reports_dir)
    latest = reports / LATEST
    if latest.exists():
        return latest.resolve()
    return reports


def write_identity(run_dir: Path, identity: dict[str, Any]) -> Path:
    path = run_dir / IDENTITY
    tmp = run_dir / f".{IDENTITY}.{os.getpid()}"
    tmp.write_text(json.dumps(identity, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_identity(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / IDENTITY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def prune(reports_dir: str | Path, keep: int) -> list[Path]:
    """Remove the oldest run directories beyond ``keep`` (the newest are kept); returns them."""
    base = Path(reports_dir) / RUNS
    if keep < 1 or not base.is_dir():
        return []
    ours = sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and (p / IDENTITY).is_file())
    gone = ours[: max(0, len(ours) - keep)]
    latest = (Path(reports_dir) / LATEST).resolve()
    for p in gone:
        if p.resolve() != latest:
            shutil.rmtree(p, ignore_errors=True)
    return gone


MERGED = "merged"


def merge(reports_dir: str | Path, shards: list[Path]) -> Path:
    """One run directory holding the runs of several shards (machines, CI jobs, roles) of one
    SUT under one profile: their results, records of what each collected, Allure results and
    captures, copied into ``<reports>/runs/<time>-<SUT>-merged/``; its identity names the shards.

    Shards of different SUTs or profiles, a shard that is not a run directory, and a case that
    two shards both ran are refused (:class:`ValueError` naming them): one report certifies one
    product under one reading of the clauses."""
    from msgin5g_conformance.report.matrix import MANIFEST

    records: list[tuple[Path, dict[str, Any], dict[str, Any]]] = []
    for shard in shards:
        ident = read_identity(shard)
        try:
            manifest = json.loads((shard / "results" / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{shard}: not a run directory with its results ({exc})") from None
        if ident is None or not isinstance(manifest, dict) or not isinstance(manifest.get("run"), dict):
            raise ValueError(f"{shard}: not a run directory of this harness (no run.json or no run in its record)")
        records.append((shard, ident, manifest))
    first = records[0][2]["run"]
    for shard, _, manifest in records[1:]:
        run = manifest["run"]
        for what, key in (("SUT", lambda r: sut_label(r.get("sut"))), ("profile", lambda r: r["profile"]["sha256"])):
            if key(run) != key(first):
                raise ValueError(
                    f"{shard}: a run of {what} {key(run)!r}, not {key(first)!r} as {records[0][0]}: "
                    "one report certifies one SUT under one profile"
                )
    owner: dict[str, Path] = {}
    for shard, _, manifest in records:
        for case in manifest.get("cases") or []:
            cid = str(case.get("id"))
            if cid in owner:
                raise ValueError(f"{cid} ran in both {owner[cid]} and {shard}; merge shards that split the cases")
            owner[cid] = shard
    started = min(str(m["run"].get("started") or "") for _, _, m in records) or None
    target = create(reports_dir, new_run_id(f"{first['sut'].get('name', 'sut')}-{MERGED}"))
    ident = {
        **first,
        "id": target.name,
        "started": started,
        "merged_from": [m["run"]["id"] for _, _, m in records],
    }
    cases: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for shard, _, manifest in records:
        shard_id = manifest["run"]["id"]
        cases += [{**c, "run_id": shard_id} for c in manifest.get("cases") or []]
        errors += list(manifest.get("collection_errors") or [])
        for sub in ("results", "allure-results", "pcaps"):
            source = shard / sub
            if source.is_dir():
                (target / sub).mkdir(exist_ok=True)
                for f in source.iterdir():
                    if sub == "pcaps" and f.name == rolemap.FILE:  # the shards' role maps, together
                        rolemap.RoleMapWriter(target / sub).merge_file(f)
                    elif f.is_file() and f.name != MANIFEST and not f.name.startswith(("msgin5g-run-", ".")):
                        shutil.copy2(f, target / sub / f.name)
    (target / "results").mkdir(exist_ok=True)
    record = {"run": ident, "cases": cases, "collection_errors": errors}
    (target / "results" / MANIFEST).write_text(json.dumps(record, indent=1), encoding="utf-8")
    finished = [str(i.get("finished") or "") for _, i, _ in records]
    statuses = [i.get("status") for _, i, _ in records]
    write_identity(
        target,
        {
            "format": FORMAT,
            **{k: v for k, v in ident.items() if k != "format"},
            "finished": max(finished) or None,
            "status": None,
            "shards": [{"run": str(s), "status": st} for (s, _, _), st in zip(records, statuses, strict=True)],
            "pcaps": str(target / "pcaps"),
        },
    )
    return target


def profile_identity(profile: Profile) -> dict[str, Any]:
    """The profile as a run's identity names it: name, hash, source and every reading."""
    return {
        "name": profile.name,
        "sha256": profile.sha256,
        "source": profile.source,
        "readings": {**profile.readings, "bulk_response_shape": profile.bulk_response_shape},
    }


def sut_label(sut: dict[str, Any] | None) -> str:
    """``example-sut 1.0`` (an external SUT: name and version), ``reference``, ``faulty:NAME``."""
    if not sut:
        return "unknown SUT"
    name = str(sut.get("name") or "unknown SUT")
    version = sut.get("version")
    return f"{name} {version}" if version and sut.get("kind") == "external" else name


def readings_text(readings: dict[str, Any]) -> str:
    """``seed_revision: 001, relay_model: terminating, ...`` (in the profile's order)."""
    return ", ".join(f"{k}: {v}" for k, v in readings.items())
