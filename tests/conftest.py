"""Shared fixtures for the harness's own tests.

In CI (``CI`` set, as ``.ci/run`` does) a test may not skip because a tool is missing: ``.ci/run``
installs every tool the tests use, so such a skip means a check silently did not run. It is
turned into a failure that names the tool (:func:`pytest_runtest_makereport`).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import yaml

from msgin5g_conformance.world.profile import Profile, load_profile

ROOT = Path(__file__).resolve().parent.parent
TESTCASES = ROOT / "testcases"
DEFAULT_PROFILE = ROOT / "msgin5g_conformance" / "data" / "default-profile.yaml"


def write_profile(folder: Path, **timers: int) -> Path:
    """A copy of the default profile with some timers changed (shorter waits for self-tests)."""
    data = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    data["timers"].update(timers)
    data["config_schema"] = str(ROOT / "msgin5g_conformance" / "schemas" / "ue-config.schema.json")
    path = folder / "fast-profile.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def profile_with(folder: Path, name: str, changes: dict[str, object]) -> Path:
    """A copy of the default profile with dotted keys changed (``query.ue_ids``, ``readings.relay_model``)."""
    data = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    schemas = ROOT / "msgin5g_conformance" / "schemas"
    data["config_schema"] = str(schemas / "ue-config.schema.json")
    data["bulk_response_schema"] = str(schemas / "bulk-response.schema.json")
    data["name"] = name
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    if data.get("bulk_response_shape") == "by-id":
        data["bulk_response_schema"] = str(schemas / "bulk-response-by-id.schema.json")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def fast_profile(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    """The profile used by the self-tests (the default timers, written as a file like a lab would)."""
    return load_profile(write_profile(tmp_path_factory.mktemp("profile"), response_ms=1000))


# Words of the skip reasons that mean "a tool this machine lacks" (not "not applicable here").
MISSING_TOOL = ("not installed", "is out of date", "not run:", "needs make", "unavailable")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(words in reason for words in MISSING_TOOL):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every tool must be present: {reason}"
