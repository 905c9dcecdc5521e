"""The role map: which addresses of a trace play which part, and the links a trace cannot show.

The format is documented in ``docs/analyze.md`` and described by ``schemas/roles.schema.json``;
it is loaded like every other YAML file of the harness (bounded read, located errors).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msgin5g_conformance import schemacheck, yamlsource
from msgin5g_conformance.errors import DefinitionError, Problem

Address = tuple[str, int]


@dataclass(frozen=True)
class Client:
    name: str
    endpoint: Address
    ue_id: str
    links: tuple[tuple[float, float | None], ...] | None  # None: the role map does not say

    def linked_at(self, when: float) -> bool | None:
        """Whether a one-to-one link was established at ``when``; None when unknown."""
        if self.links is None:
            return None
        for start, end in self.links:  # noqa: SIM110 (a loop, not any(): it runs for every response judged)
            if start <= when and (end is None or when < end):
                return True
        return False


@dataclass(frozen=True)
class Topology:
    """One SUT and its peers in a trace. ``role`` is ``relay`` or ``gateway`` (the SUT's sides
    ``pc5`` and ``uu``, the constrained UEs in ``clients``) or ``constrained-ue`` (the SUT at
    ``cue``, naming itself ``cue_id``, talking to the Relay UE or Gateway UE at ``peer``)."""

    name: str
    capture: str | None  # the capture file this topology belongs to (None: every capture)
    pc5: Address | None
    uu: Address | None
    scms: Address
    scms_recipient: str
    clients: tuple[Client, ...]
    role: str = "relay"
    cue: Address | None = None
    cue_id: str | None = None
    peer: Address | None = None
    # when the capture watched these addresses (epoch seconds): frames outside are another
    # topology's (a range used again later), and the trace is known to go on, silent, until the end
    observed: tuple[float, float] | None = None

    def watches(self, when: float) -> bool:
        return self.observed is None or self.observed[0] <= when <= self.observed[1]

    def sut_endpoints(self) -> set[Address]:
        return {a for a in (self.pc5, self.uu, self.cue) if a is not None}

    def addresses(self) -> set[str]:
        ends = [a for a in (self.pc5, self.uu, self.cue, self.peer) if a is not None]
        return {self.scms[0], *(a[0] for a in ends), *(c.endpoint[0] for c in self.clients)}

    def client_by_id(self, ue_id: str) -> Client | None:
        for c in self.clients:
            if c.ue_id == ue_id:
                return c
        return None

    def client_at(self, endpoint: Address) -> Client | None:
        for c in self.clients:
            if c.endpoint == endpoint:
                return c
        return None


@dataclass(frozen=True)
class RoleMap:
    source: str
    topologies: tuple[Topology, ...]

    def for_capture(self, capture: Path) -> list[Topology]:
        """The topologies of a capture: those naming it (or no capture); a capture that no topology
        names (a capture of a whole run by another tool) is judged with every topology."""
        named = [t for t in self.topologies if t.capture == capture.name]
        if not named and all(t.capture is not None for t in self.topologies):
            return list(self.topologies)
        return [t for t in self.topologies if t.capture is None or t.capture == capture.name]

    def addresses(self) -> set[str]:
        return {a for t in self.topologies for a in t.addresses()}


def _address(located: yamlsource.Located, path: list[str | int], value: str, problems: list[Problem]) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        problems.append(located.problem(path, f"expected an IPv4 or IPv6 address, found {value!r}"))
        return value


def _endpoint(
    located: yamlsource.Located, path: list[str | int], d: dict[str, Any], problems: list[Problem]
) -> Address:
    return (_address(located, [*path, "address"], d["address"], problems), int(d["port"]))


def load_roles(path: str | Path, limit: int = yamlsource.MAX_FILE_BYTES) -> RoleMap:
    """Load and validate a role map; :class:`DefinitionError` names file, line and field."""
    located = yamlsource.load_file(path, limit)
    if not isinstance(located.data, dict):
        raise DefinitionError([located.problem([], "a role map must be a mapping")])
    schemacheck.check(located, "roles.schema.json")
    problems: list[Problem] = []
    topologies = []
    for i, t in enumerate(located.data["topologies"]):
        at: list[str | int] = ["topologies", i]
        role = next(r for r in ("relay", "gateway", "constrained_ue") if r in t)  # the schema: exactly one
        sides = t.get(role, {})
        clients = []
        seen: set[str] = set()
        for j, c in enumerate(t.get("clients", [])):
            cpath = [*at, "clients", j]
            if c["ue_id"] in seen:
                problems.append(located.problem([*cpath, "ue_id"], f"UE id {c['ue_id']!r} named twice"))
            seen.add(c["ue_id"])
            links = None
            if "links" in c:
                spans = []
                for k, iv in enumerate(c["links"]):
                    end = iv.get("to")
                    if end is not None and end < iv["from"]:
                        problems.append(
                            located.problem(
                                [*cpath, "links", k, "to"], f"expected a time after {iv['from']}, found {end}"
                            )
                        )
                    spans.append((float(iv["from"]), None if end is None else float(end)))
                links = tuple(spans)
            clients.append(Client(c["name"], _endpoint(located, cpath, c, problems), c["ue_id"], links))
        two_sided = role != "constrained_ue"
        observed = None
        if "observed" in t:
            seen_from, seen_to = float(t["observed"]["from"]), float(t["observed"]["to"])
            if seen_to < seen_from:
                problems.append(
                    located.problem([*at, "observed", "to"], f"expected a time after {seen_from}, found {seen_to}")
                )
            observed = (seen_from, seen_to)
        topologies.append(
            Topology(
                name=t.get("name", f"topology {i + 1}"),
                capture=t.get("capture"),
                pc5=_endpoint(located, [*at, role, "pc5"], sides["pc5"], problems) if two_sided else None,
                uu=_endpoint(located, [*at, role, "uu"], sides["uu"], problems) if two_sided else None,
                scms=_endpoint(located, [*at, "scms"], t["scms"], problems),
                scms_recipient=t["scms"]["recipient"],
                clients=tuple(clients),
                role=role.replace("_", "-"),
                cue=None if two_sided else _endpoint(located, [*at, role], sides, problems),
                cue_id=None if two_sided else sides["ue_id"],
                peer=None if two_sided else _endpoint(located, [*at, role, "peer"], sides["peer"], problems),
                observed=observed,
            )
        )
    if problems:
        raise DefinitionError(problems)
    return RoleMap(located.file, tuple(topologies))
