"""The requirement catalogue: the ids test cases cite, defined once in ``data/requirements.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    clause: str
    tag: str
    # Profile readings under which nothing of this requirement is on the wire (every value listed
    # must hold), and why: the matrix says so instead of leaving the requirement silent.
    unobservable: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def unobservable_under(self, readings: Mapping[str, str]) -> bool:
        return bool(self.unobservable) and all(readings.get(k) == v for k, v in self.unobservable)


@cache
def catalogue() -> dict[str, Requirement]:
    text = resources.files("msgin5g_conformance.data").joinpath("requirements.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {
        k: Requirement(
            k,
            v["title"],
            v["clause"],
            v["tag"],
            tuple(sorted((str(r), str(val)) for r, val in (v.get("unobservable") or {}).items())),
            str(v.get("note", "")),
        )
        for k, v in data.items()
    }


# Options (the PICS of this suite): behaviours the clauses allow but do not require. A case that
# exercises one names it (``option:``); it applies only to a SUT that declares the option.
OPTIONS: dict[str, str] = {
    "bulk-configuration": (
        "TS 24.538 6.2.2.x: 'If the MSGin5G Gateway UE decides to use bulk configuration based on the "
        "service policy, the MSGin5G Gateway UE may initiate a CoAP GET request ... including all "
        "cached/stored configuration requests'"
    ),
}
