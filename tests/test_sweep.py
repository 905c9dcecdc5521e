"""The robustness sweep (``msgin5g-conformance sweep``): its generators, its probes, its verdicts.

* the generators are deterministic for a seed and make what their names say (each input is parsed
  with the strict codec and must be rejected where its generator promises a format error);
* the reference Relay UE, Gateway UE and Constrained UE, and the external example implementation,
  survive a sweep of a few hundred inputs: every probe passes, exit 0, and the pcap holds every
  input as it was generated;
* each deliberately fragile variant (sut_adapters/faulty/sweep_targets.py) is caught: exit 1, the
  probe that failed and why, and the first input that stopped it (index, generator, bytes), which
  is checked against the generated stream independently of the sweep's own localization;
* usage errors are exit 2 with one line on stderr and no traceback; the time limit stops a long
  sweep by itself; a datagram the kernel refuses is counted as refused, with its errno.
"""

from __future__ import annotations

import errno
import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance import cli
from msgin5g_conformance.sweep import GENERATORS, Input, SetupError, Sweep, SweepResult, as_dict, inputs
from msgin5g_conformance.sweep import runner as sweep_runner
from msgin5g_conformance.sweep.generators import (
    MAX_UDP_PAYLOAD,
    PROBE_CLIENT,
    SENDERS,
    EndpointStream,
)
from msgin5g_conformance.wire import codec
from msgin5g_conformance.wire.capture.pcap import read_pcap
from msgin5g_conformance.wire.numbers import OptionNumber
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import load_profile
from sut_adapters.faulty import sweep_targets as fragile
from sut_adapters.reference import ReferenceAdapter

from .conftest import ROOT, profile_with
from .test_cli import run_cli

PROFILE = load_profile()
ROLES = ("relay", "gateway", "constrained-ue")


def rejected(data: bytes) -> str | None:
    """The strict parse's reason for rejecting ``data``, or None when it is a well-formed message."""
    try:
        codec.parse(data)
    except codec.MalformedDatagram as exc:
        return exc.reason
    return None


def run_sweep(adapter: Any, role: str, count: int, **kw: Any) -> SweepResult:
    return Sweep(adapter, PROFILE, role, count=count, **kw).run()


# --------------------------------------------------------------------------- #
# generators
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("role", ROLES)
def test_generators_are_deterministic_for_a_seed(role: str) -> None:
    """The same seed gives the same inputs, byte for byte and label for label; another seed does not."""

    def key(i: Input) -> tuple[int, str, str, bytes, str]:
        return (i.index, i.endpoint, i.generator, i.data, i.note)

    first = [key(i) for i in inputs(PROFILE, role, 7, 300)]
    assert first == [key(i) for i in inputs(PROFILE, role, 7, 300)]
    assert first != [key(i) for i in inputs(PROFILE, role, 8, 300)]
    endpoints = nodes.SUT_ENDPOINTS[role]
    assert len(first) == 300 * len(endpoints)
    assert [k[0] for k in first] == list(range(len(first)))
    assert [k[1] for k in first] == [endpoints[i % len(endpoints)] for i in range(len(first))]
    # every generator has its turn in the first round, in the documented order
    assert [k[2] for k in first[: len(GENERATORS) * len(endpoints) : len(endpoints)]] == list(GENERATORS)


@pytest.mark.parametrize("role", ROLES)
def test_valid_messages_are_built_from_the_profile(role: str) -> None:
    """What the inputs are made from is well-formed and says what the role's valid messages say."""
    p = PROFILE
    for endpoint in nodes.SUT_ENDPOINTS[role]:
        for msg in EndpointStream(p, role, endpoint, 1).bases:
            again = codec.parse(codec.encode(msg))
            recipient = again.option_values(p.recipient_option)
            if endpoint == "sut.pc5":
                assert again.code == 0x01
                assert recipient == [p.scm_s_address.encode()]
                assert again.uri_path() == p.single_path
                assert again.uri_query() == [f"{p.query_ue_ids}={p.client_address('cue2')}"]
            else:
                assert again.code >> 5 in (2, 4)
                who = p.client_address(PROBE_CLIENT) if endpoint == "sut.uu" else p.sut_ue_address
                assert recipient == [who.encode()]
                if again.payload:
                    assert again.content_format() == p.content_format
                    assert json.loads(again.payload) == p.document_for("cue2")  # never the probe's payload


# what each generator promises: a check on (input, strict parse's reason or None)
PROMISES: dict[str, Callable[[Input, str | None], bool]] = {
    "truncation": lambda i, why: i.base is not None and i.data == i.base[: len(i.data)] and len(i.data) < len(i.base),
    "bit-flip": lambda i, why: i.base is not None and _bits(i.base, i.data) == 1,
    "multi-bit-flip": lambda i, why: i.base is not None and 2 <= _bits(i.base, i.data) <= 8,
    "tkl-9-15": lambda i, why: i.data[0] & 0x0F >= 9 and why is not None and "token length" in why,
    "option-nibble-15": lambda i, why: why is not None and "nibble 15" in why,
    "option-length-overrun": lambda i, why: why is not None and "truncated" in why,
    "oversized-option": lambda i, why: why is None and _oversized(i.data),
    "payload-marker-empty": lambda i, why: why == "payload marker with empty payload",
    "bad-version": lambda i, why: i.data[0] >> 6 in (0, 2, 3) and why is not None and why.startswith("version"),
    "reserved-code-class": lambda i, why: i.data[1] >> 5 in (1, 6, 7) and why is not None and "reserved code" in why,
    "empty-with-content": lambda i, why: i.data[1] == 0 and why is not None,
    "max-datagram": lambda i, why: len(i.data) == MAX_UDP_PAYLOAD,
}


def _bits(a: bytes, b: bytes) -> int:
    assert len(a) == len(b)
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))


def _oversized(data: bytes) -> bool:
    """Some option far over its length: Uri-Path/Uri-Query over 255, Content-Format over 2, any
    other option over 1,024 bytes, or 2,000 options."""
    m = codec.parse(data)
    limits = {OptionNumber.URI_PATH: 255, OptionNumber.URI_QUERY: 255, OptionNumber.CONTENT_FORMAT: 2}
    return len(m.options) >= 2000 or any(len(v) > limits.get(n, 1024) for n, v in m.options)


@pytest.mark.parametrize("role", ROLES)
def test_each_generator_makes_what_its_name_says(role: str) -> None:
    """Every input (enough to exhaust every finite generator) is checked against its generator's
    promise with the strict codec; the structural ones are all rejected, none repaired."""
    seen: dict[str, int] = dict.fromkeys(GENERATORS, 0)
    all_inputs = list(inputs(PROFILE, role, 3, 1500))
    for i in all_inputs:
        why = rejected(i.data)
        assert PROMISES[i.generator](i, why), (i.generator, i.note, why, i.data[:40].hex())
        seen[i.generator] += 1
    assert all(seen.values()), seen
    for endpoint in nodes.SUT_ENDPOINTS[role]:
        mine = [i for i in all_inputs if i.endpoint == endpoint]
        # truncation at every length of each valid message
        for base in EndpointStream(PROFILE, role, endpoint, 3).bases:
            size = len(codec.encode(base))
            cuts = {len(i.data) for i in mine if i.generator == "truncation" and i.base and len(i.base) == size}
            assert cuts == set(range(size))
        # the very large datagrams are few and go out once each, however long the sweep
        big = [i for i in mine if len(i.data) > 60_000]
        assert len(big) == 5  # 2 oversized options of 65,000 bytes, 3 max-datagrams
        assert [i.generator for i in mine].count("max-datagram") == 3
        # and the TKL and empty-message generators cover what they name
        assert {i.data[0] & 0x0F for i in mine if i.generator == "tkl-9-15"} == set(range(9, 16))
        assert {i.data[0] >> 6 for i in mine if i.generator == "bad-version"} == {0, 2, 3}
        assert {i.data[1] >> 5 for i in mine if i.generator == "reserved-code-class"} == {1, 6, 7}


def test_inputs_never_reuse_a_message_id_probes_use() -> None:
    """Inputs made from a message are stamped with a fresh Message ID of the lower half (probes take
    the upper half, and skip any an input used); only a bit flip of the Message ID itself, or the
    raw 65,507-byte datagrams (0xff..., random bytes), reach the upper half."""
    mids: dict[str, list[int]] = {}
    for i in inputs(PROFILE, "relay", 5, 400):
        raw = i.generator == "max-datagram" and not i.note.startswith("a ")
        if len(i.data) >= 4 and i.generator not in ("bit-flip", "multi-bit-flip") and not raw:
            assert i.data[2] < 0x80, (i.generator, i.note)
            mids.setdefault(i.endpoint, []).append(int.from_bytes(i.data[2:4], "big"))
    for endpoint, seen in mids.items():
        assert len(set(seen)) == len(seen), f"a Message ID repeated among the inputs to {endpoint}"


# --------------------------------------------------------------------------- #
# the reference SUT and the example implementation survive
# --------------------------------------------------------------------------- #


def _sent_to_sut(pcap: Path, role: str, endpoints: dict[str, str]) -> dict[str, list[bytes]]:
    """Per SUT endpoint, the datagrams its input sender sent to it, in order (pings included)."""
    out: dict[str, list[bytes]] = {e: [] for e in nodes.SUT_ENDPOINTS[role]}
    at = {addr: name for name, addr in endpoints.items()}
    for d in read_pcap(pcap):
        name = at.get(f"{d.dst[0]}:{d.dst[1]}")
        if name is not None and d.src[0].endswith(f".{nodes.kind(SENDERS[name]).host}"):  # type: ignore[union-attr]
            out[name].append(d.data)
    return out


@pytest.mark.parametrize("role", ROLES)
def test_reference_survives_a_sweep(role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sweep --sut reference --role ROLE --count 200`: every probe passes, exit 0; the JSON report
    counts every input and the pcap holds each one, byte for byte, in order, to its endpoint."""
    out = tmp_path / "report.json"
    args = ["sweep", "--sut", "reference", "--role", role, "--count", "200", "--seed", "11"]
    code = cli.main([*args, "--out", str(out), "--pcap-dir", str(tmp_path)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert "every probe passed" in stdout
    r = json.loads(out.read_text())
    e = len(nodes.SUT_ENDPOINTS[role])
    assert r["verdict"] == "survived" and r["exit_code"] == 0 and r["first_failure"] is None
    assert r["stopped_by"] == "count"
    assert r["inputs_sent"] == r["inputs_planned"] == 200 * e
    assert sum(g["sent"] for g in r["per_generator"].values()) == 200 * e
    assert set(r["per_generator"]) == set(GENERATORS)
    assert r["probes"]["run"] == r["probes"]["passed"] == 1 + math.ceil(200 * e / 50)
    assert all(p["passed"] for p in r["probes"]["list"])
    assert r["pcap"] == str(tmp_path / f"sweep-{role}.pcap")
    sent = _sent_to_sut(Path(r["pcap"]), role, r["endpoints"])
    for endpoint, datagrams in sent.items():
        expected = [i.data for i in inputs(PROFILE, role, 11, 200) if i.endpoint == endpoint]
        it = iter(datagrams)
        assert all(any(d == x for d in it) for x in expected), f"an input to {endpoint} is missing from the pcap"
        assert len(datagrams) > len(expected)  # the pings went there too


def test_example_implementation_survives_a_short_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The external example (a separate process, through its SUT profile) survives a short relay sweep."""
    out = tmp_path / "report.json"
    args = ["sweep", "--sut", str(ROOT / "examples" / "example-sut.yaml"), "--role", "relay", "--count", "150"]
    code = cli.main([*args, "--out", str(out), "--pcap-dir", str(tmp_path)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    r = json.loads(out.read_text())
    assert r["verdict"] == "survived" and r["inputs_sent"] == 300
    assert r["probes"]["run"] == r["probes"]["passed"] == 1 + math.ceil(300 / 50)
    assert r["pacing"]["syncs"] > 0 and r["pacing"]["unanswered"] == 0


def test_default_output_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --out and --pcap-dir: reports/sweep-<role>.json and pcaps/sweep-<role>.pcap; and
    --probe-every sets the probes (a baseline, one per K inputs, one at the end)."""
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(["sweep", "--sut", "reference", "--role", "constrained-ue", "--count", "100", "--probe-every", "30"])
        == 0
    )
    stdout = capsys.readouterr().out
    r = json.loads((tmp_path / "reports" / "sweep-constrained-ue.json").read_text())
    assert (tmp_path / "pcaps" / "sweep-constrained-ue.pcap").is_file()
    assert "reports/sweep-constrained-ue.json" in stdout
    assert [p["after_input"] for p in r["probes"]["list"]] == [None, 29, 59, 89, 99]


# --------------------------------------------------------------------------- #
# fragile variants are caught, and the input that stopped them is named
# --------------------------------------------------------------------------- #

FRAGILE = [
    # (role, ReferenceAdapter keyword, class, what stops it, the probe stage that notices)
    ("relay", "relay_class", fragile.DeafAfterRejected, lambda d: rejected(d) is not None, "ping"),
    ("relay", "relay_class", fragile.DiesOnLongToken, lambda d: bool(d) and d[0] & 0x0F > 8, "ping"),
    ("relay", "relay_class", fragile.StopsRelayingAfterBigDatagram, lambda d: len(d) > 1024, "exchange"),
    (
        "gateway",
        "gateway_class",
        fragile.GatewayStopsAckingAfterReservedCode,
        lambda d: len(d) >= 2 and d[1] >> 5 in (1, 6, 7),
        "exchange",
    ),
    ("constrained-ue", "cue_class", fragile.CueMuteAfterBadVersion, lambda d: bool(d) and d[0] >> 6 != 1, "exchange"),
]


@pytest.mark.parametrize(("role", "keyword", "cls", "kills", "stage"), FRAGILE, ids=[f[2].__name__ for f in FRAGILE])
def test_fragile_variant_is_caught_and_the_input_named(
    role: str, keyword: str, cls: type, kills: Callable[[bytes], bool], stage: str, tmp_path: Path
) -> None:
    adapter = ReferenceAdapter(name=f"test:{cls.__name__}", **{keyword: cls})
    r = run_sweep(adapter, role, 200, seed=2)
    assert r.exit_code == 1 and not r.survived
    assert r.stopped_by == "probe-failed"
    # independently of the sweep: the first input of the stream that does what breaks the variant
    expected = next(i for i in inputs(PROFILE, role, 2, 200) if kills(i.data))
    assert r.failed_probe is not None and r.failed_probe.stage == stage
    assert r.failed_probe.after_input is not None and r.failed_probe.after_input >= expected.index
    assert r.localization is not None and r.localization.localized, r.localization
    culprit = r.localization.culprit
    assert culprit is not None
    assert (culprit.index, culprit.generator, culprit.data) == (expected.index, expected.generator, expected.data)
    # the sweep stopped at the first failed probe: nothing was sent after it
    assert r.inputs_sent == r.failed_probe.after_input + 1
    # the JSON report names it: index, generator, endpoint, bytes (all, or 512 and the length)
    report = as_dict(r, None)
    failure = report["first_failure"]
    assert report["verdict"] == "stopped-answering" and report["exit_code"] == 1
    assert failure["probe"]["stage"] == stage and failure["probe"]["reason"]
    shown = failure["input"]
    assert (shown["index"], shown["generator"], shown["endpoint"]) == (
        expected.index,
        expected.generator,
        expected.endpoint,
    )
    assert shown["length"] == len(expected.data)
    assert shown["hex"] == expected.data[:512].hex() and shown["hex_truncated"] == (len(expected.data) > 512)


def test_time_limit_stops_a_long_sweep() -> None:
    """--count 100000 with a 1 s time limit stops by itself, says so, and still probes at the end."""
    r = run_sweep(ReferenceAdapter(), "relay", 100_000, time_limit_s=1.0)
    assert r.stopped_by == "time-limit"
    assert 0 < r.inputs_sent < r.inputs_planned == 200_000
    assert r.survived and r.exit_code == 0
    assert r.probes[-1].after_input == r.inputs_sent - 1  # the probe at the end, after the last input
    assert r.sending_s < 1.0 + 2 * PROFILE.timers.ack_bound_ms / 1000 + PROFILE.timers.response_ms / 1000
    assert r.wall_s < 10


def test_a_refused_send_is_counted_as_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A datagram the kernel refuses (65,508 bytes: EMSGSIZE over IPv4) is counted as refused with its
    errno, not as sent; the sweep goes on."""
    too_big = Input(0, "sut.cue", "max-datagram", b"\x40" + b"\x00" * MAX_UDP_PAYLOAD, "one byte too many")
    ok = Input(1, "sut.cue", "bit-flip", b"\x40\x01\x00\x01", "a GET")
    monkeypatch.setattr(sweep_runner, "inputs", lambda *a: iter([too_big, ok]))
    r = run_sweep(ReferenceAdapter(), "constrained-ue", 1)
    assert r.refused == 1 and r.inputs_sent == 1
    assert r.refusals[0].index == 0 and r.refusals[0].errno == errno.EMSGSIZE
    assert r.per_generator["max-datagram"] == {"sent": 0, "refused": 1}
    assert as_dict(r, None)["refused"][0]["errno"] == errno.EMSGSIZE
    assert r.survived


class ElsewhereAdapter(ReferenceAdapter):
    """A reference SUT that claims its endpoints are at 10.9.8.7 (outside loopback)."""

    async def open_case(self, world: Any) -> Any:
        case = await super().open_case(world)
        case._endpoints = {n: ("10.9.8.7", a[1]) for n, a in case._endpoints.items()}
        return case


def test_nothing_is_sent_outside_loopback() -> None:
    """A SUT endpoint outside 127.0.0.0/8 is a set-up error (exit 2 from the CLI); nothing is sent."""
    sweep = Sweep(ElsewhereAdapter(), PROFILE, "relay", count=10)
    with pytest.raises(SetupError, match=r"sut\.pc5 is at 10\.9\.8\.7, outside 127\.0\.0\.0/8"):
        sweep.run()
    assert sweep.capture.total == 0


# --------------------------------------------------------------------------- #
# usage errors: exit 2, one line, no traceback
# --------------------------------------------------------------------------- #


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("msgin5g-conformance: error: ")
    for w in words:
        assert w in lines[0], lines[0]


def test_count_over_the_bound_is_refused(tmp_path: Path) -> None:
    done = run_cli("sweep", "--sut", "reference", "--role", "relay", "--count", "100001", cwd=tmp_path)
    _one_line_error(done, "--count 100001", "100,000")
    assert not (tmp_path / "reports").exists()  # nothing ran


def test_unknown_sut_is_refused(tmp_path: Path) -> None:
    done = run_cli("sweep", "--sut", "no-such-sut", "--role", "relay", "--count", "10", cwd=tmp_path)
    _one_line_error(done, "unknown SUT 'no-such-sut'")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--count", "0"], ["--count 0 is below 1"]),
        (["--count", "lots"], ["--count expects a whole number"]),
        (["--count", "10", "--probe-every", "0"], ["--probe-every 0"]),
        (["--count", "10", "--time-limit", "3601"], ["--time-limit 3601"]),
        (["--count", "10", "--time-limit", "nan"], ["--time-limit nan"]),
        (["--count", "10", "--role", "router"], ["--role 'router'"]),
        (["--count", "10", "--profile", "PROFILE"], ["PROFILE", "a profile must be a mapping"]),
        (["--count", "10", "--sut", "SUTPROFILE"], ["bad SUT profile", "SUTPROFILE"]),
        (  # the example implementation has option 65003 built in: refused before it is started
            ["--count", "10", "--sut", "EXAMPLE", "--profile", "OTHER_OPTION"],
            ["did not start: protocol mismatch", "recipient_option"],
        ),
        (["--count", "10", "--sut", "RELAY_ONLY", "--role", "gateway"], ["does not implement the gateway role"]),
    ],
)
def test_usage_errors_are_one_line(
    args: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_profile = tmp_path / "bad-profile.yaml"
    bad_profile.write_text("just a string\n", encoding="utf-8")
    bad_sut = tmp_path / "bad-sut.yaml"
    bad_sut.write_text("name: x\ncontrol: pigeon\n", encoding="utf-8")
    example = (ROOT / "examples" / "example-sut.yaml").read_text(encoding="utf-8")
    relay_only = tmp_path / "relay-only.yaml"
    relay_only.write_text(
        example.replace("roles: [relay, gateway, constrained-ue]", "roles: [relay]").replace(
            "example_sut.py]", f"{ROOT / 'examples' / 'example_sut.py'}]"
        ),
        encoding="utf-8",
    )
    assert "roles: [relay]\n" in relay_only.read_text(encoding="utf-8")
    subst = {
        "PROFILE": str(bad_profile),
        "SUTPROFILE": str(bad_sut),
        "EXAMPLE": str(ROOT / "examples" / "example-sut.yaml"),
        "OTHER_OPTION": str(profile_with(tmp_path, "other-option", {"recipient_option.number": 65005})),
        "RELAY_ONLY": str(relay_only),
    }
    args = [subst.get(a, a) for a in args]
    base = {"--sut": "reference", "--role": "relay"}
    for flag, value in base.items():
        if flag not in args:
            args = [flag, value, *args]
    assert cli.main(["sweep", *args, "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert subst.get(w, w) in err, err
    assert not (tmp_path / "r.json").exists()
