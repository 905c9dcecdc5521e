"""The requirement catalogue: the ids test cases cite, defined once in ``data/requirements.yaml``."""

from __future__ import annotations

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


@cache
def catalogue() -> dict[str, Requirement]:
    text = resources.files("msgin5g_conformance.data").joinpath("requirements.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {k: Requirement(k, v["title"], v["clause"], v["tag"]) for k, v in data.items()}
