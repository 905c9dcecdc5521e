"""``since_step``: an expectation's deadline counted from an earlier step, checked at lint."""

from __future__ import annotations

from pathlib import Path

from msgin5g_conformance.spec import loader
from msgin5g_conformance.world.profile import load_profile

from .conftest import TESTCASES

PROFILE = load_profile()


def test_since_step_must_name_an_earlier_step(tmp_path: Path) -> None:
    """A since_step that is not an earlier top-level step is a located lint problem."""
    text = (TESTCASES / "gateway" / "GW-BULK-002.yaml").read_text(encoding="utf-8")
    broken = text.replace("since_step: 0 ", "since_step: 5 ")
    assert broken != text
    path = tmp_path / "GW-BULK-002.yaml"
    path.write_text(broken, encoding="utf-8")
    count, problems = loader.lint([path], PROFILE)
    assert count == 1 and len(problems) == 1
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if "since_step" in t)
    assert (problems[0].line, problems[0].path) == (line, "steps[1].expect.since_step")
    assert problems[0].message == "expected the index of an earlier top-level step (< 1), found 5"


def test_since_step_is_loaded_into_the_model() -> None:
    """The shipped min-batch case counts its deadline from step 0 (the first request)."""
    case = loader.load_testcase(TESTCASES / "gateway" / "GW-BULK-002.yaml", PROFILE)
    (expect,) = [s for s in case.steps if getattr(s, "since_step", None) is not None]
    assert getattr(expect, "since_step", None) == 0 and getattr(expect, "timeout_ms", None) == 1300
