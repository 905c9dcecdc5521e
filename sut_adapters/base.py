"""The adapter protocol between the harness and a system under test (after httpx's transports).

An adapter starts and stops the SUT and opens it for one test case at a time
(:meth:`SutAdapter.open_case`): the SUT takes the role the case needs, with fresh state, and the
returned :class:`SutCase` says where its endpoints are and performs the case's upper-tester
operations. An operation the SUT does not offer raises :class:`NotSupported`, which the runner
turns into the verdict ``not-applicable`` with that reason.

An adapter that can run several cases at once, each on the addresses the harness gives it,
says so with ``instances`` > 1: the harness then lets a case's late window run while the next
case already runs. This module knows nothing of the engine: only plain data crosses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from msgin5g_conformance.errors import HarnessError, NotApplicable
from msgin5g_conformance.wire.endpoint import CoapTimers
from msgin5g_conformance.wire.numbers import code_to_str
from msgin5g_conformance.world.profile import Profile

Address = tuple[str, int]

# Upper-tester capabilities a test case may require (schema: $defs/capability).
LINK_CONTROL = "link-control"
TRIGGER_REQUEST = "trigger-request"
TRIGGER_BULK = "trigger-bulk"
READ_CONFIG = "read-config"


class NotSupported(NotApplicable):
    """The SUT does not offer this operation."""


class SutFault(HarnessError):
    """The SUT, not the harness, broke: it crashed, hung or broke the upper-tester protocol. The
    case could not be judged (verdict ``error``); the message, which names the SUT, is its reason."""


@dataclass(frozen=True)
class ClientInfo:
    """A constrained UE as the SUT knows it: node name, recipient address string, UDP endpoint."""

    node: str
    address: str
    endpoint: Address


@dataclass(frozen=True)
class SutEnvironment:
    """What the harness tells a SUT at start."""

    profile: Profile
    timers: CoapTimers  # the tester's CON parameters; a SUT may use them for its own CONs
    endpoints: Mapping[str, Address]  # where a SUT that keeps its addresses for the run listens
    # the same for each process of an SUT that runs several (``instances`` > 1): set i is the
    # i-th process's, all on the run's own range, none shared; set 0 is ``endpoints``
    instance_endpoints: tuple[Mapping[str, Address], ...] = ()


@dataclass(frozen=True)
class CaseWorld:
    """Where things are in one test case."""

    role: str
    endpoints: Mapping[str, Address]  # where the harness wants the SUT's endpoints in this case
    peers: Mapping[str, Address]  # tester nodes the SUT sends to on its own (scms, relay)
    client_lookup: Callable[[str], ClientInfo | None]  # a recipient address -> the tester client


@runtime_checkable
class SutCase(Protocol):
    """The SUT as it acts in one test case."""

    def endpoints(self) -> Mapping[str, Address]:
        """The SUT's endpoints in this case by node name (``sut.pc5``, ``sut.uu``, ``sut.cue``)."""

    async def establish_link(self, client: ClientInfo) -> None:
        """Establish a one-to-one ProSe link with ``client`` (or make the SUT believe it has)."""

    async def release_link(self, client: ClientInfo) -> None:
        """Release the one-to-one ProSe link with ``client``."""

    async def request_configuration(self) -> None:
        """Make the constrained UE send its configuration request now."""

    async def send_bulk_now(self) -> None:
        """Make the gateway send its cached requests now."""

    async def read_configuration(self) -> Any:
        """The configuration (or failure code) the constrained UE applied."""

    def log_text(self) -> str:
        """The SUT's log of this case (evidence in reports)."""

    async def close(self) -> None:
        """The case is over (its late window has passed): release what it holds."""


async def sut_died(case: Any) -> str | None:
    """Whether the SUT died during the case just run, and how (exit status, stderr tail); ``None``
    when it is alive or the adapter cannot tell. An adapter says so with an optional
    ``async def died(self) -> str | None`` on its case: the case it died in is then ``error``
    with that reason, and the next case starts with a restarted SUT."""
    died = getattr(case, "died", None)
    if died is None:
        return None
    reason: str | None = await died()
    return reason


@runtime_checkable
class SutAdapter(Protocol):
    """What every kind of SUT offers the runner."""

    name: str
    roles: frozenset[str]
    capabilities: frozenset[str]
    options: frozenset[str]  # the MAY behaviours it implements (PICS): spec/requirements.py OPTIONS
    instances: int  # how many cases may be open at once (each on its own addresses)

    async def start(self, env: SutEnvironment) -> None:
        """Bring the SUT up (bounded); raise HarnessError if it cannot start."""

    async def open_case(self, world: CaseWorld) -> SutCase:
        """The SUT, in ``world.role`` with fresh state (no links, no cached requests, nothing
        applied), for one test case."""

    async def stop(self) -> None:
        """Shut down; leave no socket, task or process behind."""

    def log_text(self) -> str:
        """The SUT's log since the last :meth:`open_case` began (the evidence when opening failed)."""


def profile_values(p: Profile) -> dict[str, Any]:
    """The run's profile in the terms of a SUT profile's ``protocol`` section."""
    return {
        "port": p.port,
        "port_match": p.port_match,
        "recipient_option": p.recipient_option,
        "content_format": p.content_format,
        "scm_s_address": p.scm_s_address,
        "client_address": p.client_address_template,
        "sut_ue_address": p.sut_ue_address,
        "val_service_id": p.val_service_id,
        "bulk_conf_flag": p.bulk_conf_flag,
        "single_path": p.single_path,
        "bulk_path": p.bulk_path,
        "list_encoding": p.list_encoding,
        "relayed_codes": sorted(code_to_str(c) for c in p.relayed_codes),
        "bulk_response_shape": p.bulk_response_shape,
        "query_names": {"ue_ids": p.query_ue_ids, "vendor": p.query_vendor, "type": p.query_type},
        "readings": dict(p.readings),
    }


def protocol_mismatches(declared: Mapping[str, Any], profile: Profile) -> list[str]:
    """Each value the implementation has built in that differs from the run's profile (a reading
    or a query name the SUT states is compared one by one)."""
    run = profile_values(profile)
    out = []
    for key, built_in in sorted(declared.items()):
        if isinstance(built_in, dict):
            for sub, value in sorted(built_in.items()):
                have = run[key].get(sub)
                if value != have:
                    out.append(f"{key}.{sub}: the SUT implements {value!r}, profile {profile.name!r} has {have!r}")
            continue
        want = sorted(built_in) if key == "relayed_codes" else built_in
        if want != run[key]:
            out.append(f"{key}: the SUT implements {built_in!r}, profile {profile.name!r} has {run[key]!r}")
    return out
