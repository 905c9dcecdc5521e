"""Benchmark: how long each hostile YAML file takes to be refused, and the memory it costs.

Each file is loaded in a fresh Python process by ``yamlsource.load_file`` (the loader every kind
of file goes through: test cases, profiles, SUT profiles, waivers); the time and the memory the
load allocated (tracemalloc peak) are that call's alone. The files are the reproducers of the bounded-loading
finding: a NUL, 500 levels of nesting, recursive aliases, the 342-byte alias bomb, a 50 MB file,
a FIFO nothing writes to, and for comparison a valid shipped case and a valid file just under the
size limit. Prints one line per file: wall seconds, peak MB, exit status and the first line of
the error. No timing assertions; a file that loads, or a traceback, is printed as such.

    .venv/bin/python benchmarks/bench_hostile_files.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from msgin5g_conformance import yamlsource

ROOT = Path(__file__).resolve().parent.parent


def bomb() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for x, y in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{y}: &{y} [" + ",".join([f"*{x}"] * 9) + "]\n"
    return text


def files(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = folder / f"{name}.yaml"
        out[name].write_bytes(data)

    put("nul", b"id: X\ntitle: a\x00b\n")
    put("nesting-500", b"a: " + b"[" * 500 + b"]" * 500 + b"\n")
    put("recursive-alias", b"a: &a [*a]\n")
    put("alias-bomb-342B", bomb().encode())
    big = folder / "50MB.yaml"
    with big.open("wb") as f:
        line = b"  - " + b"x" * 100 + b"\n"
        f.write(b"items:\n" + line * (50 * 1024 * 1024 // len(line)))
    out["50MB"] = big
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    out["fifo"] = fifo
    near = b"id: X\nitems:\n" + b"".join(b"  - {name: n%d, value: %d}\n" % (i, i) for i in range(36_000))
    put("valid-near-limit", near[: yamlsource.MAX_FILE_BYTES - 100].rsplit(b"\n", 1)[0] + b"\n")
    out["shipped-case"] = ROOT / "testcases" / "relay" / "RELAY-DL-001.yaml"
    return out


CHILD = """
import json, sys, time, tracemalloc
from msgin5g_conformance import yamlsource
from msgin5g_conformance.errors import DefinitionError
def load():
    try:
        yamlsource.load_file(sys.argv[1])
        return "loaded"
    except DefinitionError as exc:
        return str(exc.problems[0])
start = time.monotonic()
message = load()
seconds = time.monotonic() - start
tracemalloc.start()  # a second load, traced (tracing slows it: the time is the first one's)
load()
print(json.dumps([seconds, tracemalloc.get_traced_memory()[1], message]))
"""


def measure(path: Path) -> tuple[float, float, float, str]:
    """(seconds of the load, MB the load allocated at its peak, MB peak RSS of the process, first line)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        return 0.0, 0.0, 0.0, "CRASHED: " + (proc.stderr.strip().splitlines() or [""])[-1]
    seconds, traced, message = json.loads(proc.stdout)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, traced / 1e6, rss, message.replace(str(path.parent) + "/", "")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'file':<18} {'seconds':>8} {'load MB':>8} {'RSS MB':>7}  result")
        for name, path in files(Path(tmp)).items():
            seconds, traced, rss, first = measure(path)
            print(f"{name:<18} {seconds:8.3f} {traced:8.2f} {rss:7.1f}  {first[:100]}")
    print("seconds: the load_file call alone; load MB: what a second, traced call allocated at its peak;")
    print("RSS MB: the largest child process so far (a fresh interpreter with the loader imported),")
    print("so at most that file's own peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
