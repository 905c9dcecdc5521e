"""Acceptance tests of the pytest plugin: ``pytest testcases --sut ... --profile ...``.

Each test lays out a ``testcases/`` folder in a pytester directory and runs pytest in a
subprocess (the plugin opens sockets and an event loop), bounded by a timeout.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from msgin5g_conformance.world.profile import load_profile

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
TESTCASES = REPO / "testcases"
RELAY = TESTCASES / "relay"
GUIDE = (REPO / "docs" / "writing-testcases.md").read_text(encoding="utf-8")
DEFAULT_PROFILE = resources.files("msgin5g_conformance.data").joinpath("default-profile.yaml").read_text()
MAX_WAIT = load_profile().max_wait_ms
TIMEOUT_S = 120
COMMON = ("--pcap-dir", "pcaps", "-p", "no:cacheprovider")


def lay_out(pytester: pytest.Pytester, *ids: str, folder_name: str = "testcases") -> Path:
    """Copy shipped cases (of any role) by id into a folder of the pytester directory."""
    folder = pytester.path / folder_name
    folder.mkdir(exist_ok=True)
    for case_id in ids:
        (source,) = TESTCASES.rglob(f"{case_id}.yaml")
        shutil.copy(source, folder / f"{case_id}.yaml")
    return folder


def run(pytester: pytest.Pytester, *args: str, target: str = "testcases") -> pytest.RunResult:
    return pytester.runpytest_subprocess(target, *args, *COMMON, timeout=TIMEOUT_S)


def write_profile(pytester: pytest.Pytester, name: str, *edits: tuple[str, str]) -> Path:
    """The default profile renamed to ``name`` with text edits, written beside the test cases."""
    text = DEFAULT_PROFILE.replace("name: default", f"name: {name}")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = pytester.path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def failures_section(result: pytest.RunResult) -> list[str]:
    """The lines of the FAILURES section only.

    On CI (``CI`` or ``BUILD_NUMBER`` set) pytest repeats the whole failure message in its short summary,
    so a line that is unique in the failure report can appear twice in the full output.
    """
    lines = result.stdout.lines
    start = next(i for i, s in enumerate(lines) if re.fullmatch(r"=+ FAILURES =+", s))
    end = next((i for i, s in enumerate(lines) if "short test summary info" in s), len(lines))
    return lines[start:end]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, s in enumerate(path.read_text("utf-8").splitlines(), start=1) if needle in s)


def test_two_cases_pass_against_the_reference(pytester: pytest.Pytester) -> None:
    """Two shipped cases collected from testcases/ pass against the reference SUT and leave pcaps."""
    lay_out(pytester, "RELAY-DL-001", "RELAY-UL-001")
    result = run(pytester, "--sut", "reference")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    assert (pytester.path / "pcaps" / "RELAY-DL-001.pcap").is_file()
    assert (pytester.path / "pcaps" / "RELAY-UL-001.pcap").is_file()


def test_faulty_sut_fails_with_location(pytester: pytest.Pytester) -> None:
    """Against a relay that drops 4.04, RELAY-DL-003 fails and the report names the YAML line of the step."""
    folder = lay_out(pytester, "RELAY-DL-003")
    result = run(pytester, "--sut", "faulty:drops-404")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FAIL: RELAY-DL-003 " in out
    case = folder / "RELAY-DL-003.yaml"
    assert f"at {case}:{line_of(case, '- expect:')} (step 1): no matching message arrived at cue1" in out
    assert "requirements: REQ-RELAY-DL-1, REQ-RELAY-TERM-1 (shall)" in out
    assert "SUT: faulty:drops-404" in out


def test_missing_message_report_says_expected_and_found(pytester: pytest.Pytester) -> None:
    """When the awaited message never comes, the failure still says what was expected and what was found."""
    lay_out(pytester, "RELAY-DL-003")
    result = run(pytester, "--sut", "faulty:drops-404")
    result.assert_outcomes(failed=1)
    # the folder's name holds this test's name, so leave paths out of the search
    lines = [s.replace(str(pytester.path), "<dir>") for s in result.stdout.lines]
    start = next(i for i, s in enumerate(lines) if s.startswith("FAIL: RELAY-DL-003"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("requirements:"))
    report = lines[start + 1 : end]
    assert (
        "    message: expected 4.04 Not Found token=d3d3 recipient='cue1.msgin5g.example' payload text; found nothing"
        in report
    ), "\n".join(report)


def test_wrong_field_report_shows_expected_and_found(pytester: pytest.Pytester) -> None:
    """A relay that rewrites the payload fails RELAY-DL-001 with a payload finding (expected; found)."""
    lay_out(pytester, "RELAY-DL-001")
    result = run(pytester, "--sut", "faulty:rewrites-payload")
    result.assert_outcomes(failed=1)
    findings = [s.strip() for s in result.stdout.lines if s.strip().startswith("payload: expected ")]
    assert findings, result.stdout.str()
    assert "; found '{\\n " in findings[0]


def test_role_filter_deselects_relay_cases(pytester: pytest.Pytester) -> None:
    """--role gateway deselects every relay case, so pytest exits 5 (nothing ran)."""
    lay_out(pytester, "RELAY-DL-001", "RELAY-DL-002")
    result = run(pytester, "--role", "gateway")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*2 deselected*"])


def test_unknown_sut_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """--sut bogus stops pytest with a usage error (exit 4) that lists the known SUT names."""
    lay_out(pytester, "RELAY-DL-001")
    result = run(pytester, "--sut", "bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "unknown SUT 'bogus'; expected one of: reference, " in err
    assert "Traceback" not in err


def test_broken_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A --profile with a mistake stops pytest with a usage error naming the profile's file and line."""
    lay_out(pytester, "RELAY-DL-001")
    profile = pytester.path / "broken.yaml"
    profile.write_text(DEFAULT_PROFILE.replace("port_match: both ", "port_match: either"), encoding="utf-8")
    result = run(pytester, "--profile", str(profile))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    where = f"{profile}:{line_of(profile, 'port_match:')}"
    message = f"{where}: port_match: expected one of source, destination, both, found 'either'"
    assert message in result.stderr.str()


def test_profile_condition_makes_case_not_applicable(pytester: pytest.Pytester) -> None:
    """With port_match: destination, RELAY-DL-007 is skipped as not-applicable and -rs shows why."""
    lay_out(pytester, "RELAY-DL-007")
    profile = pytester.path / "destination.yaml"
    text = DEFAULT_PROFILE.replace("name: default", "name: dest")
    profile.write_text(text.replace("port_match: both ", "port_match: destination"), encoding="utf-8")
    result = run(pytester, "--profile", str(profile), "-rs")
    result.assert_outcomes(skipped=1)
    skipped = [s for s in result.stdout.lines if s.startswith("SKIPPED [1] ")]
    case = pytester.path / "testcases" / "RELAY-DL-007.yaml"
    assert skipped == [
        f"SKIPPED [1] testcases/RELAY-DL-007.yaml:{line_of(case, 'id: RELAY-DL-007')}: not-applicable: "
        "applies when profile port_match is ['source', 'both']; profile dest has 'destination'"
    ], result.stdout.str()


def test_broken_yaml_fails_only_its_own_collection(pytester: pytest.Pytester) -> None:
    """A broken YAML next to a good one: the good case passes, the broken one is one error with file:line."""
    folder = lay_out(pytester, "RELAY-DL-001")
    text = (RELAY / "RELAY-DL-002.yaml").read_text("utf-8").replace("role: relay", "role: router")
    broken = folder / "RELAY-DL-002.yaml"
    broken.write_text(text, encoding="utf-8")
    result = run(pytester)
    out = result.stdout.str()
    where = f"{broken}:{line_of(broken, 'role: router')}"
    assert f"{where}: role: expected one of relay, gateway, constrained-ue, found 'router'" in out
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_folder_of_any_name_is_collected(pytester: pytest.Pytester) -> None:
    """A folder given on the command line is collected whatever its name, and so is a single YAML file."""
    lay_out(pytester, "RELAY-DL-001", "CUE-RSP-002", folder_name="lab-cases")
    lay_out(pytester, "GW-WAIT-001", folder_name="elsewhere")
    result = pytester.runpytest_subprocess("lab-cases", "elsewhere/GW-WAIT-001.yaml", *COMMON, timeout=TIMEOUT_S)
    result.assert_outcomes(passed=3)
    for case_id in ("RELAY-DL-001", "CUE-RSP-002", "GW-WAIT-001"):
        assert (pytester.path / "pcaps" / f"{case_id}.pcap").is_file()


def test_one_case_of_each_role_passes(pytester: pytest.Pytester) -> None:
    """The reference SUT plays each role: one relay, one gateway and one constrained-UE case pass."""
    lay_out(pytester, "RELAY-DL-002", "GW-ERR-001", "CUE-REQ-001")
    result = run(pytester, "--sut", "reference", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*testcases/CUE-REQ-001.yaml::CUE-REQ-001 PASSED*"])


# --------------------------------------------------------------------------- #
# New format features, end to end
# --------------------------------------------------------------------------- #


def guide_gateway_example(pytester: pytest.Pytester) -> Path:
    """The foreach / {set: ...} example of docs/writing-testcases.md, as testcases/GW-DOC-001.yaml."""
    text = "id: GW-DOC-001\n" + GUIDE.split("```yaml\nid: GW-DOC-001\n", 1)[1].partition("```")[0]
    folder = pytester.path / "testcases"
    folder.mkdir(exist_ok=True)
    path = folder / "GW-DOC-001.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_foreach_and_set_pass_against_the_reference_gateway(pytester: pytest.Pytester) -> None:
    """The guide's gateway example passes; its result names the unrolled steps after foreach and node."""
    guide_gateway_example(pytester)
    result = run(pytester, "--sut", "reference", "--results-dir", "results")
    result.assert_outcomes(passed=1)
    steps = json.loads((pytester.path / "results" / "GW-DOC-001.json").read_text("utf-8"))["steps"]
    assert [s["index"] for s in steps if s["kind"] in ("send", "expect")] == [
        "0[cue1].0",
        "0[cue2].0",
        "0[cue3].0",
        "1",
        "2[cue1].0",
        "2[cue2].0",
        "2[cue3].0",
    ]
    assert {s["verdict"] for s in steps} == {"pass"}


def test_set_mismatch_fails_with_an_any_order_finding(pytester: pytest.Pytester) -> None:
    """A gateway that leaves one UE out of the bulk GET fails the {set: ...} expectation, located at its step."""
    case = guide_gateway_example(pytester)
    result = run(pytester, "--sut", "faulty:gw-omits-one-ue")
    result.assert_outcomes(failed=1)
    out = failures_section(result)
    where = f"at {case}:{line_of(case, '  - expect:')} (step 1): "
    assert any(s.startswith(f"  {where}") for s in out), result.stdout.str()
    prefix = (
        "    query.ue_ids (ue-uri): expected in any order, each once: 'cue1.msgin5g.example', "
        "'cue2.msgin5g.example', 'cue3.msgin5g.example'; found "
    )
    (finding,) = [s for s in out if s.startswith(prefix)]
    assert len(finding[len(prefix) :].split(", ")) == 2


# (case id, profile key, condition, reason when not applicable under the default profile, or None: it runs)
CONDITIONS = [
    ("TEST-APP-001", "port_match", "both", None),
    ("TEST-APP-002", "port_match", "source", "applies when profile port_match is 'source'; profile default has 'both'"),
    ("TEST-APP-003", "port_match", "[source, both]", None),
    ("TEST-APP-004", "bulk_policy.min_batch", "{min: 50}", None),
    (
        "TEST-APP-005",
        "bulk_policy.min_batch",
        "{min: 51}",
        "applies when profile bulk_policy.min_batch is {'min': 51}; profile default has 50",
    ),
    (
        "TEST-APP-006",
        "bulk_policy.max_wait_ms",
        f"{{max: {MAX_WAIT - 1}}}",
        f"applies when profile bulk_policy.max_wait_ms is {{'max': {MAX_WAIT - 1}}}; profile default has {MAX_WAIT}",
    ),
    ("TEST-APP-007", "bulk_policy.max_wait_ms", f"{{min: 100, max: {MAX_WAIT}}}", None),
]


def test_applicability_conditions_value_list_min_max(pytester: pytest.Pytester) -> None:
    """Profile conditions as a value, a list, {min: N}, {max: N}: the unmet ones are skipped with their reason."""
    folder = pytester.path / "testcases"
    folder.mkdir()
    for case_id, key, condition, _ in CONDITIONS:
        (folder / f"{case_id}.yaml").write_text(
            f'id: {case_id}\ntitle: "Condition {condition}"\npurpose: "Applies when {key} is {condition}."\n'
            "clause: TS 24.538 6.2.2.1\nrequirements: [REQ-RELAY-DL-1]\nstrength: shall\nrole: relay\n"
            f"applicability:\n  profile:\n    {key}: {condition}\nsteps:\n  - wait: {{ms: 1}}\n",
            encoding="utf-8",
        )
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=4, skipped=3)
    skipped = sorted(s for s in result.stdout.lines if s.startswith("SKIPPED [1] "))
    assert skipped == [
        f"SKIPPED [1] testcases/{case_id}.yaml:1: not-applicable: {reason}"
        for case_id, _, _, reason in CONDITIONS
        if reason
    ]


def test_case_excluded_by_its_condition_is_skipped_not_broken(pytester: pytest.Pytester) -> None:
    """With min_batch 100, GW-BULK-002 (which applies up to 99) is skipped as not-applicable, not a collection error."""
    lay_out(pytester, "GW-BULK-002")
    profile = write_profile(pytester, "big", ("min_batch: 50 ", "min_batch: 100"))
    result = run(pytester, "--profile", str(profile), "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] testcases/GW-BULK-002.yaml:*: not-applicable: applies when profile "
            "bulk_policy.min_batch is {'max': 99}; profile big has 100"
        ]
    )
