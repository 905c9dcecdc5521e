"""The one YAML loader (test cases, profiles, SUT profiles, waivers) is bounded: each hostile file
gets a located error at once, never a traceback, a hang or gigabytes (issue: bounded loading).

Each file below reproduces a finding: before the bounds, a NUL gave a ReaderError traceback, 500
levels or a recursive alias a RecursionError, a 342-byte alias bomb ran 40-50 s into MemoryError,
a 50 MB file took 170 s and 5.3 GB, and a FIFO blocked for ever. Time and memory per file are
printed by benchmarks/bench_hostile_files.py.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from msgin5g_conformance import yamlsource
from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.world.profile import load_profile

from .conftest import ROOT, TESTCASES, profile_with
from .test_cli import run_cli


def bomb(levels: int = 9) -> str:
    """The classic alias bomb: 9 levels of 9 aliases each, 9**9 (387 million) nodes when expanded."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    names = "abcdefghijklmnop"
    for x, y in itertools.pairwise(names[:levels]):
        text += f"{y}: &{y} [" + ",".join([f"*{x}"] * 9) + "]\n"
    return text


HOSTILE: dict[str, tuple[bytes, int | None, str]] = {
    # name: (content, line of the error, words of the error)
    "nul": (b"id: X\ntitle: a\x00b\n", 2, "column 9: character U+0000 is not allowed"),
    "escape": (b"id: X\n\x1b[31mtitle: red\n", 2, "U+001B"),
    "deep-flow": (b"a: " + b"[" * 500 + b"]" * 500 + b"\n", 1, "nested more than 64 levels deep"),
    "deep-block": (
        "".join("  " * i + f"k{i}:\n" for i in range(500)).encode(),
        64,
        "nested more than 64 levels deep",
    ),
    "recursive-alias": (b"a: &a [*a]\n", 1, "a recursive alias?"),
    "recursive-map": (b"a: &a {b: *a}\n", 1, "nested more than 64 levels deep"),
    "alias-bomb": (bomb().encode(), None, "aliases expand to more than 10000 nodes"),
    "latin-1": (b"id: caf\xe9\n", 1, "not UTF-8"),
    "empty": (b"", 1, "the file is empty"),
}


def test_the_alias_bomb_is_the_342_byte_one() -> None:
    assert len(bomb()) == 342


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_gets_a_located_error(name: str, tmp_path: Path) -> None:
    content, line, words = HOSTILE[name]
    f = tmp_path / f"{name}.yaml"
    f.write_bytes(content)
    with pytest.raises(DefinitionError) as info:
        yamlsource.load_file(f)
    (problem,) = info.value.problems
    assert problem.file == str(f)
    assert words in problem.message, problem
    if line is not None:
        assert problem.line == line, problem


def test_an_oversized_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    with f.open("wb") as out:
        out.write(b"items:\n")
        out.truncate(50 * 1024 * 1024)  # 50 MB (sparse: nothing is written)
    with pytest.raises(DefinitionError, match=rf"larger than the limit of {yamlsource.MAX_FILE_BYTES} bytes"):
        yamlsource.load_file(f)
    assert len(yamlsource.read_bounded(TESTCASES / "relay" / "RELAY-DL-001.yaml")) < 10_000


def test_a_fifo_a_folder_and_a_missing_file_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nothing ever writes to it: reading would block for ever
    for path, words in ((fifo, r"not a regular file \(a FIFO\)"), (tmp_path, r"not a regular file \(a folder\)")):
        with pytest.raises(DefinitionError, match=words):
            yamlsource.load_file(path)
    with pytest.raises(DefinitionError, match="cannot read: No such file"):
        yamlsource.load_file(tmp_path / "missing.yaml")


def test_anchors_and_merge_keys_within_bounds_still_load(tmp_path: Path) -> None:
    """Aliases are YAML and stay allowed: only expansion past the bound is refused."""
    text = "base: &b {type: NON, code: '2.05'}\nuse: {<<: *b, token: 'aa'}\nlist: &l [1, 2]\nagain: *l\n"
    data = yamlsource.load_text(text, "x.yaml").data
    assert data["use"] == {"type": "NON", "code": "2.05", "token": "aa"}
    assert data["again"] == [1, 2]
    assert yamlsource.load_text(bomb(3), "x.yaml").data["c"][0] == [["lol"] * 9] * 9  # 81 nodes


@pytest.mark.parametrize("kind", ["testcase", "profile", "sut-profile", "waivers"])
def test_every_kind_of_file_is_bounded(kind: str, tmp_path: Path) -> None:
    """The four kinds of input file go through the bounded loader: each refuses the bomb with its
    location, from the command line, exit 2 and no traceback."""
    f = tmp_path / f"{kind}.yaml"
    f.write_text(bomb(), encoding="utf-8")
    if kind == "testcase":
        with pytest.raises(DefinitionError, match="aliases expand"):
            load_testcase(f, None)
        args = ["lint", str(f)]
    elif kind == "profile":
        with pytest.raises(DefinitionError, match="aliases expand"):
            load_profile(f)
        args = ["lint", "--profile", str(f), str(TESTCASES / "relay" / "RELAY-DL-001.yaml")]
    elif kind == "sut-profile":
        args = ["run", "--sut", str(f), str(TESTCASES / "relay" / "RELAY-DL-001.yaml")]
    else:
        args = ["report", "--waivers", str(f), "--reports-dir", str(tmp_path / "reports"), "--no-html"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode in (1, 2), (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    out = proc.stderr + proc.stdout
    assert f"{f}:" in out and "aliases expand to more than 10000 nodes" in out, out


def test_lint_of_a_folder_with_bad_files_checks_the_rest(tmp_path: Path) -> None:
    good = (TESTCASES / "relay" / "RELAY-DL-001.yaml").read_bytes()
    (tmp_path / "RELAY-DL-001.yaml").write_bytes(good)
    for name in ("alias-bomb", "nul", "deep-flow"):
        (tmp_path / f"{name}.yaml").write_bytes(HOSTILE[name][0])
    proc = run_cli("lint", str(tmp_path), cwd=ROOT)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "4 file(s) checked, 3 with problems" in out, out
    assert "RELAY-DL-001.yaml" not in out


def test_the_size_limit_is_a_profile_value(tmp_path: Path) -> None:
    """limits.max_file_bytes bounds the test case files a run reads: a small limit refuses a
    shipped case naming the limit, a larger one admits a file over the default."""
    from msgin5g_conformance.spec.loader import load_testcases

    case = TESTCASES / "relay" / "RELAY-DL-001.yaml"
    small = load_profile(profile_with(tmp_path, "small", {"limits.max_file_bytes": 1024}))
    assert small.max_file_bytes == 1024
    with pytest.raises(DefinitionError) as refused:
        load_testcases(case, small)
    assert "larger than the limit of 1024 bytes (limits.max_file_bytes of the profile)" in str(refused.value)
    big = tmp_path / "RELAY-DL-001.yaml"
    big.write_text(case.read_text() + "#" * 300_000 + "\n", encoding="utf-8")  # over the 256 KiB default
    with pytest.raises(DefinitionError):
        load_testcases(big, load_profile())
    large = load_profile(profile_with(tmp_path, "large", {"limits.max_file_bytes": 1 << 20}))
    assert load_testcases(big, large)[0].id == "RELAY-DL-001"


@pytest.mark.parametrize("value", [1023, 16777217, 65536.0, "1 MiB"])
def test_a_size_limit_out_of_range_is_a_located_error(tmp_path: Path, value: object) -> None:
    with pytest.raises(DefinitionError) as refused:
        load_profile(profile_with(tmp_path, "p", {"limits.max_file_bytes": value}))
    assert "limits.max_file_bytes" in str(refused.value)


def test_the_size_limit_bounds_sut_profiles_and_waivers_too(tmp_path: Path) -> None:
    from msgin5g_conformance.errors import UsageError
    from msgin5g_conformance.report.gate import load_waivers
    from sut_adapters.registry import make_adapter

    sut = tmp_path / "sut.yaml"
    sut.write_text((ROOT / "examples" / "example-sut.yaml").read_text() + "#" * 2000 + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match="larger than the limit of 1024 bytes"):
        make_adapter(str(sut), 1024)
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers: []\n" + "#" * 2000 + "\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match="larger than the limit of 1024 bytes"):
        load_waivers(waivers, 1024)
