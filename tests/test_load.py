"""The load mode (``msgin5g-conformance load``): every exchange checked, failures counted and named.

* a short load against the reference relay and gateway: every exchange sent is checked, none lost
  or wrong, the figures in load.json, the HTML with its two SVG plots, exit 0;
* faulty relays and gateways (delivering to an unlinked or the wrong client, dropping 4.04s,
  sending a UE someone else's configuration, answering nothing) are caught: counted, the first
  ones named (client, MID, token), exit 1, and a silent SUT does not hold the run past its bound;
* bad arguments and a SUT without the role are exit 2 with one line on stderr, nothing written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance import cli
from msgin5g_conformance.load import LIMITS, make_plan
from msgin5g_conformance.load.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["--duration", "0.5", "--timeout", "0.3"]


def run_load(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    status = cli.main(["load", *args, "--out", str(out)])
    return status, json.loads((out / "load.json").read_text("utf-8"))


def test_reference_relay_every_exchange_checked(tmp_path: Path) -> None:
    """200/s for 0.5 s through the reference relay: 100 exchanges, each checked, none lost or wrong."""
    status, doc = run_load(tmp_path, "--role", "relay", "--rate", "200", *SHORT)
    f = doc["figures"]
    assert status == 0 and doc["passed"] is True
    assert f["sent"] == 100 and f["ok"] == 100
    assert (f["lost"], f["wrong"], f["mangled"], f["unexpected"]) == (0, 0, 0, 0)
    assert f["throughput_exchanges_per_s"] == 200.0
    lat = f["latency"]
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert f["cpu"]["share_of_one_core"] > 0 and len(f["load_average"]) == 3
    assert doc["sut"]["name"] == "reference" and doc["steps"][0]["offered_rate"] == 200.0
    assert doc["latency_over_time"] and set(doc["endpoints"]) == {"sut.pc5", "sut.uu"}
    page = (tmp_path / "out" / "load.html").read_text("utf-8")
    assert page.count("<svg ") == 2
    assert 'id="latency-over-time"' in page and 'id="throughput-vs-offered"' in page
    assert "<polyline" in page


def test_stepped_profile_has_one_row_per_step(tmp_path: Path) -> None:
    """--steps: each step its own interval, with its own throughput against its offered rate."""
    status, doc = run_load(tmp_path, "--role", "relay", "--steps", "100,300", "--duration", "0.3", "--timeout", "0.3")
    assert status == 0
    assert [s["offered_rate"] for s in doc["steps"]] == [100.0, 300.0]
    assert [s["sent"] for s in doc["steps"]] == [30, 90]
    assert [s["checked_ok"] for s in doc["steps"]] == [30, 90]


@pytest.mark.parametrize(
    ("sut", "kind", "count", "named"),
    [
        # one exchange in ten is from a client without a link: each answer reaches it
        ("faulty:relays-without-link", "wrong", 10, "(no link)"),
        # every answer goes to cue1: nine of ten linked exchanges are wrong (cue1's own are right)
        ("faulty:wrong-client", "wrong", 90 - 2, "got the answer meant for"),
        # cue9 is unknown to the SCM-S (4.04): its two exchanges are lost downlink
        ("faulty:drops-404", "lost", 2, "lost downlink"),
        ("faulty:rewrites-payload", "mangled", None, "payload of"),
    ],
)
def test_faulty_relays_are_caught(tmp_path: Path, sut: str, kind: str, count: int | None, named: str) -> None:
    """A relay that breaks a requirement: its failures counted and the first ones named, exit 1."""
    status, doc = run_load(tmp_path, "--sut", sut, "--role", "relay", "--rate", "200", *SHORT)
    f = doc["figures"]
    assert status == 1 and doc["passed"] is False
    if count is not None:
        assert f[kind] >= count, f
    else:
        assert f[kind] > 0, f
    first = [x for x in doc["failures"] if x["kind"] == kind]
    assert first and named in f"{first[0]['at']}: {first[0]['what']}", first
    assert first[0]["mid"] is not None and first[0]["token"] and first[0]["at"].startswith("cue")


def test_silent_sut_ends_within_its_bound(tmp_path: Path) -> None:
    """A SUT that answers nothing: every exchange lost (uplink), and the run ends by itself."""
    began = time.monotonic()
    status, doc = run_load(tmp_path, "--sut", "faulty:silent", "--role", "relay", "--rate", "100", *SHORT)
    assert time.monotonic() - began < 15  # 0.5 s of sending, 0.3 s of timeout, set-up: a loose bound
    assert status == 1
    assert doc["figures"]["lost"] == doc["figures"]["sent"] == 50 and doc["figures"]["ok"] == 0
    assert "lost uplink" in doc["failures"][0]["what"]


def test_reference_gateway_rounds(tmp_path: Path) -> None:
    """Gateway rounds of 10 UEs: each UE gets its own configuration once, every round checked."""
    status, doc = run_load(tmp_path, "--role", "gateway", "--ues", "10", "--rate", "10", *SHORT)
    f = doc["figures"]
    assert status == 0, doc["failures"]
    assert f["rounds"] == {"sent": 5, "ok": 5, "failed": 0}
    assert f["sent"] == 50 and f["ok"] == 50 and f["throughput_rounds_per_s"] == 10.0


def test_faulty_gateway_everything_to_everyone(tmp_path: Path) -> None:
    """A gateway sending each UE the others' configurations too: wrong deliveries, failed rounds."""
    status, doc = run_load(
        tmp_path, "--sut", "faulty:gw-everything-to-everyone", "--role", "gateway", "--ues", "5", "--rate", "10", *SHORT
    )
    assert status == 1
    assert doc["figures"]["wrong"] > 0 and doc["figures"]["rounds"]["failed"] > 0
    assert "not its own" in next(x for x in doc["failures"] if x["kind"] == "wrong")["what"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--role", "relay", "--rate", "0"], ["--rate 0", "at least"]),
        (["--role", "relay", "--rate", "50000"], ["--rate 50000", "over the bound of 20,000"]),
        (["--role", "relay", "--rate", "10", "--duration", "601"], ["--duration 601", "over the bound"]),
        (["--role", "relay", "--rate", "10", "--duration", "400", "--steps", "5,5"], ["800 s", "bound of 600"]),
        (["--role", "relay", "--rate", "5000", "--duration", "300"], ["1,500,000 exchanges", "1,000,000"]),
        (["--role", "relay", "--rate", "x"], ["--rate expects a number"]),
        (["--role", "constrained-ue", "--rate", "10"], ["--role 'constrained-ue'", "relay, gateway"]),
        (["--role", "relay"], ["--rate or --steps is required"]),
        (["--role", "gateway", "--rate", "1", "--ues", "5000"], ["--ues 5000", "over the bound"]),
        (["--role", "relay", "--rate", "10", "--sut", "nosuch"], ["unknown SUT 'nosuch'"]),
        (["--role", "gateway", "--rate", "10", "--sut", "RELAY_ONLY"], ["does not implement the gateway role"]),
    ],
)
def test_bad_arguments_are_one_line(
    args: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Out-of-bounds numbers, an unknown role or SUT, a SUT without the role: exit 2, one line."""
    example = (ROOT / "examples" / "example-sut.yaml").read_text(encoding="utf-8")
    relay_only = tmp_path / "relay-only.yaml"
    relay_only.write_text(
        example.replace("roles: [relay, gateway, constrained-ue]", "roles: [relay]").replace(
            "example_sut.py]", f"{ROOT / 'examples' / 'example_sut.py'}]"
        ),
        encoding="utf-8",
    )
    assert "roles: [relay]\n" in relay_only.read_text(encoding="utf-8")
    args = [str(relay_only) if a == "RELAY_ONLY" else a for a in args]
    assert cli.main(["load", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    assert not (tmp_path / "out").exists()


def test_plan_bounds_and_percentiles() -> None:
    """The documented limits hold at their edges; nearest-rank percentiles."""
    plan = make_plan("gateway", "2", "10", ues="1000")
    assert plan.exchanges == 20_000 and LIMITS["exchanges"] == 1_000_000
    assert make_plan("relay", str(LIMITS["rate"]), "50").exchanges == 1_000_000
    values = [float(i) for i in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) is None
