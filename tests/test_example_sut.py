"""The example implementation outside the harness (examples/example_sut.py) against the suite.

It runs as a vendor's implementation would: the command line (`msgin5g-conformance run --sut
examples/...yaml`) in a subprocess, verdicts read back from the JSON results. Each deliberate fault
of the example is also run through a Session and must fail exactly the cases that check it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber
from msgin5g_conformance.world.profile import Profile, load_profile
from sut_adapters.faulty.expected.gateway import GW_SCALE
from sut_adapters.faulty.expected.relay import RELAY_UNDER_DISCARD
from sut_adapters.registry import make_adapter

from .conftest import ROOT, TESTCASES, profile_with

EXAMPLES = ROOT / "examples"
RUN_TIMEOUT_S = 300
ALL_CASES = 83  # 47 role cases and 13 coap cases run once per role (36 runs)
READING_ONLY = {
    **dict.fromkeys(RELAY_UNDER_DISCARD, "not-applicable"),  # apply only under a discard reading
    **dict.fromkeys(GW_SCALE, "not-applicable"),  # apply only with a batch of 200 / 1,000 (default: 50)
}
GATEWAY_ASIDE = dict.fromkeys(GW_SCALE, "not-applicable")

# The commands docs/vendor-guide.md shows; tests/test_vendor_guide.py checks that they match.
EXAMPLE_RUN = (".venv/bin/msgin5g-conformance", "run", "--sut", "examples/example-sut.yaml")
FAULTY_RUN = (".venv/bin/msgin5g-conformance", "run", "--sut", "examples/example-sut-faulty.yaml", "--role", "relay")
# drops-404: no 4.04 downlink, wherever the relay should carry one
FAULTY_FAILS = dict.fromkeys(["RELAY-DL-003", "RELAY-DL-008", "RELAY-DL-014", "RELAY-E2E-002"], "fail")

# Each fault of the example -> (role whose suite catches it, the cases that must not pass).
FAULTS: dict[str, tuple[str, dict[str, str]]] = {
    "drops-404": ("relay", FAULTY_FAILS),
    "keeps-released-link": ("relay", dict.fromkeys(["RELAY-DL-005", "RELAY-DL-012"], "fail")),
    "ignores-port": ("relay", {"RELAY-DL-007": "fail"}),
    "ignores-critical-option": ("relay", {"RELAY-UL-002": "fail"}),
    "applies-others": ("constrained-ue", {"CUE-RSP-004": "fail"}),
}


Results = dict[str, dict[str, Any]]


def run_documented(command: tuple[str, ...], out: Path) -> tuple[subprocess.CompletedProcess[str], Results]:
    """Run a documented command from the repository root with its outputs in ``out``; return verdicts."""
    program = Path(sys.executable).parent / Path(command[0]).name  # .venv/bin/X, wherever the venv is
    argv = [str(program), *command[1:], "--pcap-dir", str(out / "pcaps"), "--reports-dir", str(out / "reports")]
    argv += ["-q", "--no-html"]  # the HTML report is tested on its own
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    results = {p.stem: json.loads(p.read_text()) for p in (out / "reports" / "latest" / "results").glob("[!_]*.json")}
    return done, results


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_sut", EXAMPLES / "example_sut.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_sut"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_example_sut_passes_every_case(tmp_path: Path) -> None:
    """`run --sut examples/example-sut.yaml` passes every case (the coap suite in each role) and
    exits 0; only the cases of another reading are set aside."""
    done, results = run_documented(EXAMPLE_RUN, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert len(results) == ALL_CASES
    assert {cid: r["verdict"] for cid, r in results.items() if r["verdict"] != "pass"} == READING_ONLY
    assert {r["sut"] for r in results.values()} == {"example-sut 1.0"}  # by name and version
    assert {r["sut_source"] for r in results.values()} == {"examples/example-sut.yaml"}  # the path: a detail
    assert len(list((tmp_path / "pcaps").glob("*.pcap"))) == ALL_CASES - len(READING_ONLY)


def test_faulty_example_fails_the_expected_cases(tmp_path: Path) -> None:
    """The faulty build exits non-zero, failing exactly the relay cases that carry a 4.04."""
    done, results = run_documented(FAULTY_RUN, tmp_path)
    assert done.returncode != 0
    relay_cases = {p.stem for p in (TESTCASES / "relay").glob("*.yaml")}
    assert relay_cases <= set(results)
    assert all(c.startswith("COAP-") and c.endswith("[relay]") for c in set(results) - relay_cases)
    not_passed = {cid: r["verdict"] for cid, r in results.items() if r["verdict"] != "pass"}
    assert not_passed == {**dict.fromkeys(RELAY_UNDER_DISCARD, "not-applicable"), **FAULTY_FAILS}  # relay only
    for cid in FAULTY_FAILS:  # the 4.04 never reached the client
        assert results[cid]["reason"].startswith("no matching message arrived at cue"), results[cid]["reason"]


def test_faulty_profile_selects_the_documented_fault() -> None:
    """example-sut-faulty.yaml runs the example with the fault its comments describe."""
    data = yaml.safe_load((EXAMPLES / "example-sut-faulty.yaml").read_text())
    assert data["command"][-2:] == ["--fault", "drops-404"]
    assert FAULTS["drops-404"][1] == FAULTY_FAILS


def run_example(
    flags: list[str],
    role: str,
    profile: Profile,
    tmp_path: Path,
    protocol: dict[str, Any] | None = None,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run the example built with ``flags`` through a Session against the suite of ``role`` (or
    only the cases named)."""
    sut: dict[str, Any] = {
        "name": "example-" + "-".join(flags or ["default"]),
        "command": [sys.executable, str(EXAMPLES / "example_sut.py"), *flags],
        "control": "stdio",
        "roles": [role],
        "capabilities": ["link-control", "trigger-request", "trigger-bulk", "read-config"],
        "options": ["bulk-configuration"],
        "instances": 4,  # the cases run at once, as the shipped example profile lets them
    }
    if protocol:
        sut["protocol"] = protocol
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "sut.yaml"
    path.write_text(yaml.safe_dump(sut), encoding="utf-8")
    files = sorted((TESTCASES / role).glob("*.yaml"))
    cases = [load_testcase(f, profile) for f in files if not only or f.stem in only]
    with Session(profile, make_adapter(str(path)), pcap_dir=tmp_path, concurrency=4) as session:
        return {r.case_id: r for r in session.run_cases(cases)}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_is_caught(fault: str, fast_profile: Profile, tmp_path: Path) -> None:
    """Each deliberate fault of the example fails exactly the cases that check that behaviour."""
    role, expected = FAULTS[fault]
    got = run_example(["--fault", fault], role, fast_profile, tmp_path)
    verdicts = {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS}
    aside = dict.fromkeys(RELAY_UNDER_DISCARD, "not-applicable") if role == "relay" else {}
    aside = GATEWAY_ASIDE if role == "gateway" else aside
    assert verdicts == {**aside, **expected}, {cid: got[cid].reason for cid in verdicts}


# Each legal alternative of the example -> the role whose suite must pass it.
CHOICES = {
    "fresh-token": "relay",
    "vendor-type": "constrained-ue",
    "vendor-per-ue": "gateway",
    "rst-others": "constrained-ue",
}


def test_every_choice_of_the_example_is_tested() -> None:
    """The table above names every --choice the example offers, and each cites what allows it."""
    example = load_example()
    assert set(example.CHOICES) == set(CHOICES)
    assert all(re.search(r"RFC \d+|TS \d+\.\d+|6\.2\.\d", why) for why in example.CHOICES.values())


@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_each_choice_passes(choice: str, fast_profile: Profile, tmp_path: Path) -> None:
    """A legal alternative built into the external example passes every case of its role: the
    external path accepts what the clauses allow, as the in-process conformant variants do."""
    role = CHOICES[choice]
    got = run_example(["--choice", choice], role, fast_profile, tmp_path)
    not_passed = {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS}
    aside = dict.fromkeys(RELAY_UNDER_DISCARD, "not-applicable") if role == "relay" else {}
    aside = GATEWAY_ASIDE if role == "gateway" else aside
    assert not_passed == aside, {cid: got[cid].reason for cid in not_passed}


def test_the_choices_are_visible_on_the_wire(fast_profile: Profile, tmp_path: Path) -> None:
    """fresh-token really re-originates (a token the SCM-S did not use reaches the client) and keeps
    the client's token on a solicited response, and rst-others really resets: the passes above are
    not the default behaviour under another name."""
    both = ("RELAY-DL-001", "RELAY-E2E-001")
    relay = run_example(["--choice", "fresh-token"], "relay", fast_profile, tmp_path / "relay", only=both)
    records = [r for r in relay["RELAY-DL-001"].exchange if r.get("code") not in (None, "0.00")]
    sent = {r["token"] for r in records if r["src_node"] == "scms"}
    relayed = {r["token"] for r in records if str(r["src_node"]).startswith("sut")}
    assert sent and relayed and not sent & relayed, records
    # The token is free only under that reading: under "transparent" the same build fails the
    # unsolicited case, and still passes the round trip (a solicited response keeps the client's token).
    transparent = load_profile(profile_with(tmp_path, "transparent", {"readings.unsolicited_token": "transparent"}))
    strict = run_example(["--choice", "fresh-token"], "relay", transparent, tmp_path / "transparent", only=both)
    assert strict["RELAY-DL-001"].verdict is Verdict.FAIL, strict["RELAY-DL-001"].reason
    assert strict["RELAY-DL-001"].readings.get("unsolicited_token") == "transparent"
    assert strict["RELAY-E2E-001"].verdict is Verdict.PASS, strict["RELAY-E2E-001"].reason
    cue = run_example(
        ["--choice", "rst-others"], "constrained-ue", fast_profile, tmp_path / "cue", only=("CUE-RSP-004",)
    )
    resets = [r for r in cue["CUE-RSP-004"].exchange if r.get("type") == "RST"]
    assert resets and all(str(r["src_node"]).startswith("sut") for r in resets), cue["CUE-RSP-004"].exchange


def test_the_example_reads_the_other_answer_shape(tmp_path: Path) -> None:
    """Under a profile whose SCM-S serves the answer keyed by UE id (bulk_response_shape: by-id),
    the example (its SUT profile says so) passes the gateway suite; declared otherwise, it is refused."""
    profile = load_profile(profile_with(tmp_path, "by-id", {"bulk_response_shape": "by-id"}))
    got = run_example([], "gateway", profile, tmp_path / "by-id", protocol={"bulk_response_shape": "by-id"})
    assert {cid: r.verdict.value for cid, r in got.items() if r.verdict is not Verdict.PASS} == GATEWAY_ASIDE
    refused = run_example([], "gateway", profile, tmp_path / "entries", protocol={"bulk_response_shape": "entries"})
    assert {refused.pop(cid).verdict for cid in GW_SCALE} == {Verdict.NOT_APPLICABLE}  # batch of 50
    assert {r.verdict for r in refused.values()} == {Verdict.ERROR}
    assert all("bulk_response_shape" in r.reason for r in refused.values())


def test_example_is_independent_of_the_harness() -> None:
    """The example imports nothing but the Python standard library (no harness, no aiocoap)."""
    tree = ast.parse((EXAMPLES / "example_sut.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


def test_example_codec_agrees_with_the_harness_codec() -> None:
    """The example's own CoAP codec and the harness's strict codec produce and read the same bytes."""
    example = load_example()
    message = CoapMessage(
        MessageType.CON,
        Code.CONTENT,
        0x1234,
        b"\x0e\x2e",
        ((OptionNumber.URI_PATH, b"su-uc"), (OptionNumber.CONTENT_FORMAT, b"\x32"), (65003, b"cue1.msgin5g.example")),
        b'{"a":1}',
    )
    wire = codec.encode(message)
    mine = example.decode(wire)
    assert (mine.mtype, mine.code, mine.mid, mine.token, mine.payload) == (0, 0x45, 0x1234, b"\x0e\x2e", b'{"a":1}')
    assert mine.options == list(message.options)
    assert example.encode(mine) == wire
    assert codec.parse(example.encode(example.Message(2, 0, 7))) == CoapMessage(MessageType.ACK, 0, 7, b"")
    for bad in (b"\x40", b"\x49\x01\x00\x01", b"\x40\x01\x00\x01\xff", b"\x40\x01\x00\x01\xf0"):
        with pytest.raises(ValueError):
            example.decode(bad)


# Heavy subprocess work (a browser, whole-suite runs, Node): one xdist worker runs all of it in
# turn (make runs pytest with --dist loadgroup), so it never loads both cores at once while the
# timing-sensitive self-tests run on the other.
pytestmark = [*globals().get("pytestmark", []), pytest.mark.xdist_group("heavy")]
