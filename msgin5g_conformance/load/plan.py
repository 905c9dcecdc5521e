"""What a load run does, and its bounds: every run is bounded in rate, time, UEs and count."""

from __future__ import annotations

import math
from dataclasses import dataclass

from msgin5g_conformance.errors import UsageError

LIMITS = {
    "rate": 20_000,  # relay: exchanges per second offered; gateway: rounds per second
    "duration_s": 600.0,  # the whole run (every step)
    "exchanges": 1_000_000,  # exchanges the run sends in all (gateway: rounds x UEs)
    "ues": 1_000,  # constrained UEs per gateway round
    "clients": 1_000,  # linked tester clients of a relay run
    "steps": 20,
    "timeout_s": 10.0,  # how long one exchange may take before it counts as lost
}
ROLES = ("relay", "gateway")
DEFAULT_CLIENTS = 50
DEFAULT_UNLINKED = 5
DEFAULT_TIMEOUT_S = {"relay": 1.0, "gateway": 2.0}  # gateway: above the default profile's max_wait (1.5 s)
UNLINKED_EVERY = 10  # one exchange in ten comes from a client without a link


@dataclass(frozen=True)
class LoadPlan:
    """A validated load run."""

    role: str
    steps: tuple[float, ...]  # offered rate of each step (per second)
    step_s: float  # each step's duration
    ues: int  # gateway: UEs per round
    clients: int  # relay: linked clients (plus ``unlinked`` without a link)
    unlinked: int
    timeout_s: float

    @property
    def duration_s(self) -> float:
        return self.step_s * len(self.steps)

    @property
    def exchanges(self) -> int:
        """Exchanges the plan sends at most (gateway: one per UE per round)."""
        per = self.ues if self.role == "gateway" else 1
        return sum(math.ceil(r * self.step_s) for r in self.steps) * per


def _number(flag: str, text: str | float, low: float, high: float, whole: bool = False) -> float:
    try:
        value = int(text) if whole else float(text)
    except (TypeError, ValueError):
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"{flag} expects {kind}, found {text!r}") from None
    if not math.isfinite(value) or value <= 0 or value < low:
        raise UsageError(f"{flag} {text}: must be at least {low:g}")
    if value > high:
        raise UsageError(f"{flag} {text} is over the bound of {high:,g}; refusing to run")
    return value


def make_plan(
    role: str,
    rate: str | float | None,
    duration: str | float,
    steps: str | None = None,
    ues: str | int = 10,
    clients: str | int = DEFAULT_CLIENTS,
    timeout: str | float | None = None,
) -> LoadPlan:
    """The plan from the command line's words; a UsageError (one line) for anything out of bounds."""
    if role not in ROLES:
        raise UsageError(
            f"--role {role!r}: expected one of {', '.join(ROLES)} (the load mode drives a Relay UE or a Gateway UE)"
        )
    if steps:
        parts = [s.strip() for s in steps.split(",")]
        if len(parts) > LIMITS["steps"]:
            raise UsageError(f"--steps has {len(parts)} steps, over the bound of {LIMITS['steps']}")
        rates = tuple(_number("--steps", p, 0.1, LIMITS["rate"]) for p in parts)
    elif rate is None:
        raise UsageError("--rate or --steps is required")
    else:
        rates = (_number("--rate", rate, 0.1, LIMITS["rate"]),)
    step_s = _number("--duration", duration, 0.05, LIMITS["duration_s"])
    if step_s * len(rates) > LIMITS["duration_s"]:
        raise UsageError(
            f"--duration {duration} x {len(rates)} steps is {step_s * len(rates):g} s, over the bound of "
            f"{LIMITS['duration_s']:g} s; refusing to run"
        )
    n_ues = int(_number("--ues", ues, 1, LIMITS["ues"], whole=True))
    n_clients = int(_number("--clients", clients, 1, LIMITS["clients"], whole=True))
    limit = _number("--timeout", DEFAULT_TIMEOUT_S[role] if timeout is None else timeout, 0.05, LIMITS["timeout_s"])
    plan = LoadPlan(role, rates, step_s, n_ues, n_clients, DEFAULT_UNLINKED, limit)
    if plan.exchanges > LIMITS["exchanges"]:
        raise UsageError(
            f"the run would send {plan.exchanges:,} exchanges, over the bound of {LIMITS['exchanges']:,}; "
            "lower the rate, the duration or the UEs"
        )
    return plan
