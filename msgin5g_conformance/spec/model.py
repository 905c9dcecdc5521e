"""Immutable model of a test case, built by :mod:`msgin5g_conformance.spec.loader` from YAML.

Field templates (message fields, options, payloads) stay as the plain data the schema admitted;
``${variables}`` in them are resolved by the runner against the profile, the topology and
earlier captures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Template = dict[str, Any]


@dataclass(frozen=True)
class StepBase:
    index: str  # "3" or "3.control[1]": how reports name the step
    line: int | None
    # the requirements this step's check decides (empty: the case's own)
    requirements: tuple[str, ...] = field(default=(), kw_only=True)
    # earlier top-level steps this check depends on: not judged unless they passed
    needs: tuple[int, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class SendStep(StepBase):
    sender: str
    to: str
    message: Template  # type, code, token, options, payload or raw


@dataclass(frozen=True)
class ExpectStep(StepBase):
    at: str
    sender: str | None
    timeout_ms: int | str | None  # milliseconds, or a ${profile...} variable
    message: Template  # type, code, token, options, payload
    capture: dict[str, str] = field(default_factory=dict)
    grace_ms: int = 0
    since_step: int | None = None  # timeout counted from the start of this top-level step
    should: Template | None = None  # fields that SHOULD hold: a mismatch is a recorded deviation
    # the index of the send step whose CON this ACK/RST answers (the step judges its acknowledgement)
    answers: str | None = None
    # milliseconds (or a ${profile...} variable): what the step demands needs the case's earlier
    # sends to leave within this span (e.g. all requests cached before a gateway's max wait ends)
    sent_within_ms: int | str | None = None


@dataclass(frozen=True)
class UpperStep(StepBase):
    op: str
    client: str | None
    expect: Template | None
    settle_ms: int = 0


@dataclass(frozen=True)
class WaitStep(StepBase):
    ms: int


@dataclass(frozen=True)
class ProbeStep(StepBase):
    """A liveness probe (the robustness sweep's): a ping to every endpoint of the role, then one
    valid exchange of the role, with the tester nodes it uses."""

    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectNothingStep(StepBase):
    at: tuple[str, ...]
    window_ms: int | None
    control: tuple[SendStep | ExpectStep | UpperStep | ProbeStep, ...]


Step = SendStep | ExpectStep | UpperStep | WaitStep | ExpectNothingStep | ProbeStep


@dataclass(frozen=True)
class TestCase:
    """One declarative test case (one YAML file)."""

    __test__ = False  # a harness model, not a pytest test class

    id: str
    title: str
    purpose: str
    clause: str
    requirements: tuple[str, ...]
    strength: str
    role: str
    depends_on: tuple[str, ...]
    capabilities: tuple[str, ...]
    profile_conditions: dict[str, Any]
    links: tuple[str, ...]
    configurations: dict[str, str]
    steps: tuple[Step, ...]
    scms_mode: str  # scripted | piggybacked | separate (roles/__init__.py)
    hold_ack: tuple[str, ...]  # tester nodes that leave acknowledging to the steps
    option: str | None  # the option (PICS) a "may" case exercises: not applicable unless declared
    readings: tuple[str, ...]  # profile readings the case's verdict rests on (named in results)
    file: str
    line: int
    sha256: str
    # a role-independent case (role: any) runs once per role: its file's id, and the endpoints its
    # steps ran for in this role ("" and () for a case of one role)
    base_id: str = ""
    endpoints: tuple[str, ...] = ()

    @property
    def generic(self) -> bool:
        """Whether this is one role's run of a role-independent case (``COAP-VER-001[relay]``)."""
        return bool(self.base_id)

    def nodes(self) -> set[str]:
        """Every node name the case uses."""
        names: set[str] = set(self.links) | set(self.configurations) | set(self.hold_ack)

        def visit(step: Step) -> None:
            if isinstance(step, SendStep):
                names.update((step.sender, step.to))
            elif isinstance(step, ExpectStep):
                names.add(step.at)
                if step.sender:
                    names.add(step.sender)
            elif isinstance(step, UpperStep) and step.client:
                names.add(step.client)
            elif isinstance(step, ProbeStep):
                names.update(step.nodes)
            elif isinstance(step, ExpectNothingStep):
                names.update(step.at)
                for c in step.control:
                    visit(c)

        for s in self.steps:
            visit(s)
        return names
