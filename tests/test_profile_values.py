"""Every profile value lint accepts is one the run can use (issue: everything lint accepts runs).

Reproducers: ``port: 65401.0`` (JSON Schema's integer admits it) gave a TypeError in every case
and no results; ``ready_s: .nan`` was accepted (no comparison with NaN is true, so it passed every
bound); a control socket on port 99999 or on a public address was only found out by a 10 s
connection attempt per case.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.world.profile import load_profile
from sut_adapters.process import load_sut_profile

from .conftest import profile_with


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("port", 65401.0, "port: expected an integer, found number 65401.0"),
        ("alt_port", 5683.5, "alt_port: expected an integer"),
        ("timers.response_ms", 400.0, "timers.response_ms: expected an integer"),
        ("port", True, "port: expected an integer, found boolean true"),
        ("content_format", float("nan"), "content_format: expected an integer"),
    ],
)
def test_a_profile_number_must_be_an_integer_as_written(key: str, value: object, words: str, tmp_path: Path) -> None:
    path = profile_with(tmp_path, "p", {key: value})
    with pytest.raises(DefinitionError) as info:
        load_profile(path)
    assert any(words in str(p) for p in info.value.problems), info.value.problems
    assert all(p.line for p in info.value.problems)


def sut_profile(tmp_path: Path, **fields: object) -> Path:
    data: dict[str, object] = {"name": "x", "control": "stdio", "command": ["/bin/true"], "roles": ["relay"]}
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "sut.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, -1, 26])
def test_sut_timeouts_must_be_finite_and_in_range(value: float, tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"timeouts\.ready_s: expected seconds above 0 and at most 25"):
        load_sut_profile(sut_profile(tmp_path, timeouts={"ready_s": value}))
    assert load_sut_profile(sut_profile(tmp_path, timeouts={"ready_s": 2.5})).ready_s == 2.5


@pytest.mark.parametrize(
    ("tcp", "words"),
    [
        ("127.0.0.1:99999", "control.tcp: expected a TCP port from 1 to 65535, found 99999"),
        ("127.0.0.1:0", "expected a TCP port from 1 to 65535, found 0"),
        ("8.8.8.8:5000", "control.tcp: expected a loopback address or a private address"),
    ],
)
def test_the_control_socket_is_range_checked(tcp: str, words: str, tmp_path: Path) -> None:
    path = sut_profile(tmp_path, control={"tcp": tcp}, command=None)
    with pytest.raises(DefinitionError) as info:
        load_sut_profile(path)
    assert any(words in str(p) for p in info.value.problems), info.value.problems
    for ok in ("127.0.0.1:5000", "localhost:5000", "[::1]:5000"):
        assert load_sut_profile(sut_profile(tmp_path, control={"tcp": ok}, command=None)).tcp is not None


def test_an_ipv6_endpoint_is_refused_up_front(tmp_path: Path) -> None:
    """``[::1]:65401`` (the form the schema showed) crashed every relay case in write_pcap (mixed IP
    versions) and wrote no result; it is refused at load time, with its line."""
    path = sut_profile(tmp_path, endpoints={"sut.pc5": "[::1]:65401", "sut.uu": "127.0.0.2:65401"})
    with pytest.raises(DefinitionError) as info:
        load_sut_profile(path)
    (problem,) = info.value.problems
    assert problem.path == "endpoints.sut.pc5" and problem.line
    assert "expected an IPv4 address, found ::1" in problem.message
    ok = sut_profile(tmp_path, endpoints={"sut.pc5": "127.0.0.1:65401", "sut.uu": "127.0.0.2:65401"})
    assert load_sut_profile(ok).endpoints["sut.pc5"] == ("127.0.0.1", 65401)
