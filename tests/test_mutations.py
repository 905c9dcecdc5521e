"""Mutations of the engine that the tests must notice: each one, applied, makes a check fail.

A check that cannot fail proves nothing. For each property the lower tester claims (absence
window, late window, ACK bound, catch-all, since_step, duplicates as message-layer traffic,
reading what was sent before a deadline is judged), the engine is mutated to drop it, and the
check of that property (tests/test_engine.py, the same function its own test runs) must then
raise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from msgin5g_conformance.engine import case as case_module
from msgin5g_conformance.engine import matching, steps
from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.world.profile import Profile

from . import test_engine as engine


def _no_ack_bound(inbox: matching.Inbox, *args: Any) -> list[matching.Violation]:
    return [v for v in matching.message_layer_violations(inbox, *args) if v.requirement != matching.REQ_ACK]


def _ignore_since_step(run: Any, step: Any) -> float:
    import asyncio

    return asyncio.get_running_loop().time()


# name -> (what to patch, the replacement, the checks that must then fail)
MUTATIONS: dict[str, tuple[tuple[object, str], object, list[Callable[..., None]]]] = {
    "no absence window": ((steps, "absence_wait_s"), lambda run, step: 0.0, [engine.check_absence_waits_its_window]),
    "no late window": (
        (Session, "late_window_s"),
        lambda self: 0.0,
        [engine.check_late_window_catches_a_late_violation],
    ),
    "no ACK bound": (
        (case_module, "message_layer_violations"),
        _no_ack_bound,
        [engine.check_unacknowledged_con_fails_the_ack_bound],
    ),
    "no catch-all": (
        (matching.Inbox, "leftovers"),
        lambda self: [],
        [engine.check_unused_address_is_judged, engine.check_echo_to_a_peer_is_judged],
    ),
    "since_step ignored": (
        (steps, "deadline_base"),
        _ignore_since_step,
        [engine.check_since_step_counts_from_the_earlier_step],
    ),
    "no drain before judging": ((steps, "DRAIN_TURNS"), 0, [engine.check_a_held_loop_does_not_hide_a_send]),
    "duplicate responses treated as new": (
        (matching.Inbox, "is_repeat"),
        staticmethod(lambda first, d: False),
        [engine.check_repeated_answers_are_message_layer],
    ),
}


def _call(check: Callable[..., None], profile: Profile, tmp: Path) -> None:
    params = check.__code__.co_varnames[: check.__code__.co_argcount]
    check(*([profile, tmp] if "tmp" in params else [profile]))


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_is_noticed(name: str, fast_profile: Profile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the mutation applied, every check of the property it removes fails."""
    (target, attr), replacement, checks = MUTATIONS[name]
    for check in checks:  # first, unmutated, the check holds
        _call(check, fast_profile, tmp_path)
    monkeypatch.setattr(target, attr, replacement)
    for check in checks:
        with pytest.raises(AssertionError):
            _call(check, fast_profile, tmp_path)
