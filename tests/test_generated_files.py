"""Everything lint accepts runs; everything it rejects gets a located error (issue: nothing lost,
nothing hangs, finding 3).

Files are generated from the valid ones (the shipped profile, the example SUT profile and shipped
test cases) by schema-blind mutations: one leaf replaced by a hostile value (a float for an
integer, NaN, infinities, huge and negative numbers, booleans, null, empty and control-character
text, an odd-length or 9-byte hex token, a list or a mapping), a key deleted, an unknown key
added. Each generated file is loaded as lint loads it; a rejection must be a DefinitionError whose
problems name the file, and an acceptance must run: its cases against the reference (or, for a
SUT profile, the example SUT) end with verdicts and no "harness error: SomeError" (an exception
inside the harness). Seeds are fixed (a failure reproduces) and the counts bounded.
"""

from __future__ import annotations

import copy
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.process import ProcessAdapter, load_sut_profile
from sut_adapters.registry import make_adapter

from .conftest import DEFAULT_PROFILE, ROOT, TESTCASES

HOSTILE: list[Any] = [
    0, -1, 1, 2, 65535, 65536, 2**31, 2**64, 1.5, 65401.0, math.nan, math.inf, -math.inf, True, False, None,
    "", "x", "\x07bell", "a" * 5000, "cue1", "${addr.nobody}", "${profile.nothing}", "0", "4.04", "GET",
    "abc", "0011223344556677889900", [], [1, "a"], {}, {"hex": "zz"}, {"unknown": 1},
]  # fmt: skip
CRASH = re.compile(r"harness error: [A-Z]\w*(Error|Exception)\b")


def leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [path] if path else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += leaves(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += leaves(v, (*path, i))
    return out


def mutate(data: Any, rng: random.Random) -> tuple[Any, str]:
    data = copy.deepcopy(data)
    path = rng.choice(leaves(data))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    what = rng.random()
    if what < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
        return data, f"deleted {path}"
    if what < 0.25 and isinstance(parent, dict):
        parent["unexpected_key"] = 1
        return data, f"added a key beside {path}"
    value = rng.choice(HOSTILE)
    parent[path[-1]] = value
    return data, f"{path} = {value!r}"


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def assert_located(exc: DefinitionError, path: Path, what: str) -> None:
    assert exc.problems, what
    assert all(p.file == str(path) and (p.line or p.path) for p in exc.problems), (what, exc.problems)


def profile_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    schemas = ROOT / "msgin5g_conformance" / "schemas"
    data["config_schema"] = str(schemas / "ue-config.schema.json")
    data["bulk_response_schema"] = str(schemas / "bulk-response.schema.json")
    data["timers"].update({"response_ms": 400, "absence_window_ms": 60, "late_window_ms": 60})
    return data


ONE_PER_ROLE = [
    TESTCASES / "relay" / "RELAY-DL-001.yaml",
    TESTCASES / "gateway" / "GW-SPLIT-001.yaml",
    TESTCASES / "constrained-ue" / "CUE-RSP-001.yaml",
]


def run_clean(profile: Profile, adapter: Any, paths: list[Path], what: str) -> None:
    cases = []
    for p in paths:
        try:
            cases.append(load_testcase(p, profile))
        except DefinitionError as exc:  # the profile may make a case invalid: located, then
            assert_located(exc, p, what) if exc.problems[0].file == str(p) else None
    with Session(profile, adapter, pcap_dir=None, concurrency=4) as session:
        results = session.run_cases(cases)
    for r in results:
        assert not CRASH.search(r.reason or ""), (what, r.case_id, r.reason)
        for s in r.steps:
            assert not CRASH.search(s.reason or ""), (what, r.case_id, s.index, s.reason)


@pytest.mark.xdist_group("generated")
@pytest.mark.parametrize("seed", range(24))
def test_a_generated_profile_runs_or_is_refused(seed: int, tmp_path: Path) -> None:
    data, what = mutate(profile_data(), random.Random(seed))
    path = write(tmp_path, "profile.yaml", data)
    try:
        profile = load_profile(path)
    except DefinitionError as exc:
        assert_located(exc, path, what)
        return
    run_clean(profile, make_adapter("reference"), ONE_PER_ROLE, what)


@pytest.mark.xdist_group("generated")
@pytest.mark.parametrize("seed", range(16))
def test_a_generated_sut_profile_runs_or_is_refused(seed: int, tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "examples" / "example-sut.yaml").read_text(encoding="utf-8"))
    data["cwd"] = str(ROOT / "examples")
    data, what = mutate(data, random.Random(1000 + seed))
    path = write(tmp_path, "sut.yaml", data)
    try:
        load_sut_profile(path)
    except DefinitionError as exc:
        assert_located(exc, path, what)
        return
    profile = load_profile(write(tmp_path, "profile.yaml", profile_data()))
    run_clean(profile, ProcessAdapter(path), ONE_PER_ROLE[:1], what)


@pytest.mark.xdist_group("generated")
def test_generated_test_cases_run_or_are_refused(tmp_path: Path) -> None:
    """60 mutants of three shipped cases: each refused with its location, or run in one session."""
    profile = load_profile(write(tmp_path, "profile.yaml", profile_data()))
    rng = random.Random(7252)
    accepted: list[Path] = []
    refused = 0
    for i in range(60):
        source = ONE_PER_ROLE[i % 3]
        data, what = mutate(yaml.safe_load(source.read_text(encoding="utf-8")), rng)
        if isinstance(data, dict):
            data["id"] = f"GEN-{i:03d}"
        path = write(tmp_path, f"GEN-{i:03d}.yaml", data)
        try:
            load_testcase(path, profile)
        except DefinitionError as exc:
            assert_located(exc, path, what)
            refused += 1
            continue
        accepted.append(path)
    assert refused and accepted  # the mutations reach both sides
    run_clean(profile, make_adapter("reference"), accepted, "generated test cases")


@pytest.mark.parametrize("token", ["abc", "001122334455667788", "a", "${x}z"])
def test_a_token_lint_accepts_goes_on_the_wire(token: str, tmp_path: Path) -> None:
    """Reproducers: 'abc' (odd length) crashed the case in fromhex, a 9-byte token went out as
    TKL 9 and crashed the tester's own codec. Both are now refused with their line."""
    text = (TESTCASES / "relay" / "RELAY-DL-001.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data["steps"][0]["send"]["token"] = token
    path = write(tmp_path, "case.yaml", data)
    with pytest.raises(DefinitionError) as info:
        load_testcase(path, None)
    (problem,) = info.value.problems
    assert problem.path == "steps[0].send.token" and problem.line, problem
