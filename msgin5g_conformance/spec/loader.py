"""Load test case YAML into :class:`~msgin5g_conformance.spec.model.TestCase`.

Two passes, both located (``file:line: field.path: expected ..., found ...``): the JSON Schema
shipped in ``schemas/testcase.schema.json``, then the meaning that a schema cannot express
(requirement ids exist, codes parse, option names are known, variables are defined before use,
senders and receivers are on the right side of the SUT).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from msgin5g_conformance import roles, schemacheck, yamlsource
from msgin5g_conformance.errors import DefinitionError, Problem
from msgin5g_conformance.spec import templates
from msgin5g_conformance.spec.model import (
    ExpectNothingStep,
    ExpectStep,
    ProbeStep,
    SendStep,
    Step,
    TestCase,
    UpperStep,
    WaitStep,
)
from msgin5g_conformance.spec.requirements import OPTIONS, catalogue
from msgin5g_conformance.spec.templates import VARIABLE, TemplateError, expand_range
from msgin5g_conformance.sweep.generators import PROBE_CLIENT, SENDERS
from msgin5g_conformance.wire.numbers import OPTION_NAMES, parse_code
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import DEFAULT_READINGS, Profile, condition_holds

SUT_NODES = {role: set(names) for role, names in nodes.SUT_ENDPOINTS.items()}
UPPER_OPS_NEEDING_CLIENT = {"establish_link", "release_link"}
# keys of an expect step that are about the step, not the message it expects
_EXPECT_STEP_KEYS = frozenset(
    {
        "at",
        "from",
        "timeout_ms",
        "grace_ms",
        "since_step",
        "capture",
        "requirement",
        "should",
        "needs",
        "answers",
        "sent_within_ms",
    }
)
ANY_ROLE = "any"  # a role-independent case: run once per role (see load_all)


def probe_nodes(role: str) -> tuple[str, ...]:
    """The tester nodes a liveness probe of ``role`` uses (the sweep's: the peer of each endpoint,
    the linked client of the exchange, the role's own peers)."""
    names = {*nodes.ROLE_NODES[role], *(SENDERS[e] for e in nodes.SUT_ENDPOINTS[role])}
    if role != "constrained-ue":
        names.add(PROBE_CLIENT)
    return tuple(sorted(names))


# What the probe's exchange needs of the SUT adapter, by role (the sweep's Sweep.check).
PROBE_CAPABILITIES = {"relay": ("link-control",), "gateway": (), "constrained-ue": ("trigger-request",)}


class _Checker:
    def __init__(self, located: yamlsource.Located, profile: Profile | None) -> None:
        self.located = located
        self.profile = profile
        self.problems: list[Problem] = []
        self.captured: set[str] = set()
        self.sent_payloads: list[Any] = []  # payload templates of the sends so far
        self.excluded = False  # the profile's values exclude the case (applicability)
        self.role: str = located.data.get("role", "relay")
        self.endpoint: str | None = None  # role: any, the endpoint the steps being checked run for
        self.sends: dict[str, SendStep] = {}  # index -> send step, for answers

    def add(self, path: Iterable[str | int], message: str) -> None:
        self.problems.append(self.located.problem(list(path), message))

    def variables(self, value: Any, path: tuple[str | int, ...]) -> None:
        """Check every variable of a parsed template (templates.check_variable: the one grammar)."""
        ctx = templates.CheckContext(self.profile, self.captured, self.excluded)
        for p, var in templates.variables(value, path):
            problem = templates.check_variable(var, ctx)
            if problem is not None:
                self.add(p, problem)

    def node(self, name: str, path: tuple[str | int, ...], side: str) -> None:
        if side == "tester" and not nodes.is_tester_node(name):
            self.add(
                path,
                f"expected a tester node (cue1..cue{nodes.MAX_CUE}, cue_nolink, scms, scms_alt, relay), found {name!r}",
            )
        if side == "sut":
            allowed = SUT_NODES.get(self.role, set())
            if name not in allowed:
                self.add(
                    path, f"expected a SUT endpoint of role {self.role} ({', '.join(sorted(allowed))}), found {name!r}"
                )

    def message(self, m: dict[str, Any], path: tuple[str | int, ...], sending: bool) -> None:
        if "code" in m and not (isinstance(m["code"], str) and VARIABLE.fullmatch(m["code"])):
            try:
                parse_code(m["code"])
            except ValueError as exc:
                self.add((*path, "code"), str(exc))
        allowed = m.get("options_allowed")
        for i, name in enumerate(allowed if isinstance(allowed, list) else []):
            if name != "recipient" and not name.isdigit() and name not in OPTION_NAMES:
                self.add(
                    (*path, "options_allowed", i),
                    f"expected an option name (recipient, {', '.join(sorted(OPTION_NAMES))}) or a number, "
                    f"found {name!r}",
                )
        for name in m.get("options", {}) or {}:
            if name != "recipient" and not name.isdigit() and name not in OPTION_NAMES:
                self.add(
                    (*path, "options", name),
                    f"expected an option name (recipient, {', '.join(sorted(OPTION_NAMES))}) or a number, "
                    f"found {name!r}",
                )
            if name.isdigit() and not 0 < int(name) <= 65535:
                self.add((*path, "options", name), f"expected an option number 1..65535, found {name}")
        payload = m.get("payload")
        if sending:
            if "raw" in m and any(k in m for k in ("type", "code", "token", "options", "payload")):
                self.add((*path, "raw"), "expected either raw bytes or message fields, found both")
            if "raw" not in m:
                for k in ("type", "code"):
                    if k not in m:
                        self.add(path, f"missing required key {k!r} (or give raw)")
            for name, value in (m.get("options") or {}).items():
                if value is None or (isinstance(value, dict) and ("present" in value or "set" in value)):
                    self.add(
                        (*path, "options", name), "expected a value to send, found an expectation (null/present/set)"
                    )
            if isinstance(payload, dict) and ("schema" in payload):
                self.add((*path, "payload", "schema"), "expected hex, text, json or same_as when sending, found schema")
        if isinstance(payload, dict) and len([k for k in payload if k != "schema"]) > 1:
            self.add(
                (*path, "payload"),
                f"expected one of hex, text, json, same_as (plus schema), found {', '.join(payload)}",
            )
        if isinstance(payload, dict) and "same_as" in payload and payload["same_as"] not in self.captured:
            self.add(
                (*path, "payload", "same_as"),
                f"expected a variable captured by an earlier step, found undefined {payload['same_as']!r}",
            )
        if isinstance(payload, dict) and isinstance(payload.get("schema"), str):
            ref = payload["schema"]
            if not VARIABLE.fullmatch(ref) and not _schema_exists(ref, Path(self.located.file).parent):
                self.add((*path, "payload", "schema"), f"expected a schema file, found no file {ref!r}")
        self.variables({k: v for k, v in m.items() if k != "capture"}, path)

    def expand_endpoints(
        self, raw_steps: list[dict[str, Any]], endpoints: tuple[str, ...]
    ) -> list[tuple[dict[str, Any], tuple[str | int, ...], str, str | None]]:
        """role: any: the steps once per endpoint, ``${endpoint}`` the endpoint and ``${peer}`` the
        tester node that plays its peer (the sweep's senders: a client for sut.pc5, the SCM-S for
        sut.uu, the relay for sut.cue); each step's index gets the endpoint (``0[sut.pc5]``)."""
        if not endpoints:
            return [(raw, path, index, None) for raw, path, index in self.expand(raw_steps)]
        out: list[tuple[dict[str, Any], tuple[str | int, ...], str, str | None]] = []
        for ep in endpoints:
            table = {"${endpoint}": ep, "${peer}": SENDERS[ep]}
            for raw, path, index in self.expand(_substitute(raw_steps, table)):
                out.append((raw, path, f"{index}[{ep}]", ep))
        return out

    def expand(self, raw_steps: list[dict[str, Any]]) -> list[tuple[dict[str, Any], tuple[str | int, ...], str]]:
        """Unroll ``foreach`` steps: ``${each}`` becomes each node name, ``${each_hex}`` its number."""
        out: list[tuple[dict[str, Any], tuple[str | int, ...], str]] = []
        for i, raw in enumerate(raw_steps):
            if "foreach" not in raw:
                out.append((raw, ("steps", i), str(i)))
                continue
            body = raw["foreach"]
            where = ("steps", i, "foreach", "nodes")
            nodes: list[str]
            if isinstance(body["nodes"], str):
                try:
                    nodes = expand_range(body["nodes"], self.profile)
                except TemplateError as exc:
                    if not self.excluded:
                        self.add(where, str(exc))
                    continue
            else:
                nodes = list(body["nodes"])
            for node in nodes:
                number = int(node[3:]) if node[3:].isdigit() else 0
                for j, inner in enumerate(body["steps"]):
                    step = _substitute(inner, {"${each}": node, "${each_hex}": f"{number:04x}"})
                    out.append((step, ("steps", i, "foreach", "steps", j), f"{i}[{node}].{j}"))
        return out

    def step(self, raw: dict[str, Any], path: tuple[str | int, ...], index: str, in_control: bool) -> Step:
        line = self.located.line_of(path)
        kind, body = next(iter(raw.items()))
        body = templates.parse(body)  # the one grammar, once: steps hold parsed templates
        bpath = (*path, kind)
        reqs = self.step_requirements(body, bpath) if isinstance(body, dict) else ()
        needs = self.step_needs(body, bpath, index) if isinstance(body, dict) else ()
        if kind == "send":
            self.node(body["from"], (*bpath, "from"), "tester")
            self.node(body["to"], (*bpath, "to"), "sut")
            msg = {k: v for k, v in body.items() if k not in ("from", "to")}
            self.message(msg, bpath, sending=True)
            if msg.get("type") in ("ACK", "RST") and "mid" not in msg:
                self.add((*bpath, "type"), f"expected a mid for an {msg['type']} (it answers a message), found none")
            if not in_control and msg.get("payload"):
                self.sent_payloads.append(msg["payload"])
            sent = SendStep(index, line, body["from"], body["to"], msg, requirements=reqs, needs=needs)
            if not in_control:
                self.sends[index] = sent
            return sent
        if kind == "probe":
            if "[" in index.split("[sut.")[0]:
                self.add(bpath, "expected a probe outside foreach steps, found one inside")
            return ProbeStep(index, line, requirements=reqs, needs=needs, nodes=probe_nodes(self.role))
        if kind == "expect":
            self.node(body["at"], (*bpath, "at"), "tester")
            if "from" in body:
                self.node(body["from"], (*bpath, "from"), "sut")
            msg = {k: v for k, v in body.items() if k not in _EXPECT_STEP_KEYS}
            since = body.get("since_step")
            top = int(index.split("[")[0].split(".")[0])
            if since is not None and (in_control or since >= top):
                self.add(
                    (*bpath, "since_step"), f"expected the index of an earlier top-level step (< {top}), found {since}"
                )
            for key in ("timeout_ms", "sent_within_ms"):
                if isinstance(body.get(key), str):
                    self.variables(body[key], (*bpath, key))
            self.message(msg, bpath, sending=False)
            should = body.get("should")
            if should is not None:
                self.message({k: v for k, v in should.items() if k != "why"}, (*bpath, "should"), sending=False)
            answers = self.answers(body, bpath, index)
            capture = dict(body.get("capture", {}))
            for name, what in capture.items():
                if what.startswith("option."):
                    opt = what.split(".", 1)[1]
                    if opt != "recipient" and not opt.isdigit() and opt not in OPTION_NAMES:
                        self.add((*bpath, "capture", name), f"expected option.NAME with a known option, found {what!r}")
            self.captured.update(capture)
            timeout = body.get("timeout_ms")
            grace = body.get("grace_ms", 0)
            return ExpectStep(
                index,
                line,
                body["at"],
                body.get("from"),
                timeout,
                msg,
                capture,
                grace,
                since,
                should,
                answers,
                body.get("sent_within_ms"),
                requirements=reqs,
                needs=needs,
            )
        if kind == "upper":
            if body["op"] in UPPER_OPS_NEEDING_CLIENT and "client" not in body:
                self.add(bpath, f"missing required key 'client' for op {body['op']}")
            if "client" in body:
                self.node(body["client"], (*bpath, "client"), "tester")
            self.variables(body.get("expect"), (*bpath, "expect"))
            return UpperStep(
                index,
                line,
                body["op"],
                body.get("client"),
                body.get("expect"),
                body.get("settle_ms", 0),
                requirements=reqs,
                needs=needs,
            )
        if kind == "wait":
            return WaitStep(index, line, body["ms"])
        assert kind == "expect_nothing"
        if in_control:
            self.add(bpath, "an absence check cannot be nested in a control")
        for i, n in enumerate(body["at"]):
            self.node(n, (*bpath, "at", i), "tester")
        control: list[SendStep | ExpectStep | UpperStep | ProbeStep] = []
        for i, c in enumerate(body["control"]):
            s = self.step(c, (*bpath, "control", i), f"{index}.control[{i}]", True)
            assert isinstance(s, SendStep | ExpectStep | UpperStep | ProbeStep)
            control.append(s)
        if not any(isinstance(c, ExpectStep | ProbeStep) for c in control):
            self.add((*bpath, "control"), "expected a positive control with at least one expect, found none")
        for i, c in enumerate(control):
            # The engine tells the discarded message from the control by payload (and a copy of
            # the control from the discarded message): they must differ.
            if isinstance(c, SendStep) and c.message.get("payload") and c.message["payload"] in self.sent_payloads:
                self.add(
                    (*bpath, "control", i, "send", "payload"),
                    "expected a control payload that differs from every payload sent before it, found one sent "
                    "earlier (the discarded message and the control must be told apart)",
                )
        return ExpectNothingStep(
            index, line, tuple(body["at"]), body.get("window_ms"), tuple(control), requirements=reqs, needs=needs
        )

    def answers(self, body: dict[str, Any], path: tuple[str | int, ...], index: str) -> str | None:
        """``answers: N``: the earlier top-level send step (of the same endpoint, in a role: any
        case) whose CON this ACK or RST answers."""
        n = body.get("answers")
        if n is None:
            return None
        suffix = f"[{self.endpoint}]" if self.endpoint else ""
        ref = f"{n}{suffix}"
        sent = self.sends.get(ref)
        if sent is None:
            self.add((*path, "answers"), f"expected the index of an earlier top-level send step, found {n}")
            return None
        if sent.message.get("type") not in (None, "CON") or (
            "raw" in sent.message and not _raw_is_con(sent.message["raw"])
        ):
            self.add((*path, "answers"), f"expected a send step of a CON, found step {n}, which sends no CON")
        return ref

    def step_needs(self, body: dict[str, Any], path: tuple[str | int, ...], index: str) -> tuple[int, ...]:
        """``needs``: earlier top-level steps (one index or a list) this step is judged only after."""
        given = body.get("needs")
        if given is None:
            return ()
        ids = [given] if isinstance(given, int) else list(given)
        top = int(index.split("[")[0].split(".")[0])
        for n in ids:
            if not 0 <= n < top:
                self.add((*path, "needs"), f"expected the index of an earlier top-level step (< {top}), found {n}")
        return tuple(ids)

    def step_requirements(self, body: dict[str, Any], path: tuple[str | int, ...]) -> tuple[str, ...]:
        """A step's own ``requirement`` (one id or a list): each must be one the case cites."""
        given = body.get("requirement")
        if given is None:
            return ()
        ids = [given] if isinstance(given, str) else list(given)
        cited = self.located.data.get("requirements") or []
        for i, req in enumerate(ids):
            where = (*path, "requirement") if isinstance(given, str) else (*path, "requirement", i)
            if req not in cited:
                self.add(where, f"expected one of the case's requirements ({', '.join(cited)}), found {req!r}")
        return tuple(ids)


# The profile's readings of what the clauses leave open (profile key readings.NAME).
READINGS = frozenset(DEFAULT_READINGS)

PROFILE_ITEMS = frozenset(
    {
        "port",
        "port_match",
        "recipient_option",
        "addresses",
        "content_format",
        "single_uri",
        "bulk_uri",
        "query",
        "relay",
        "bulk_policy",
        "config_schema",
        "bulk_response_schema",
        "scm_s",
    }
)


def _substitute(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in table.items():
            value = value.replace(k, v)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, table) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, table) for v in value]
    return value


def _raw_is_con(raw: str) -> bool:
    """Raw bytes whose header says Confirmable (type 0), whatever else is wrong with them."""
    try:
        data = bytes.fromhex(raw)
    except ValueError:
        return False
    return len(data) >= 4 and (data[0] >> 4) & 3 == 0


def _schema_exists(ref: str, base: Path) -> bool:
    from importlib import resources

    if (base / ref).is_file():
        return True
    return resources.files("msgin5g_conformance.schemas").joinpath(ref).is_file()


def load_located(located: yamlsource.Located, text: str, profile: Profile | None = None) -> TestCase:
    """Validate and build a test case from an already parsed document (for a role-independent
    case, its first role's run: :func:`load_all` gives every one)."""
    return load_all(located, text, profile)[0]


def load_all(located: yamlsource.Located, text: str, profile: Profile | None = None) -> list[TestCase]:
    """Validate and build every test case a document defines: one, or for ``role: any`` one per
    role that has an endpoint the case exercises (``COAP-VER-001[relay]``, ...), each running its
    steps once per such endpoint."""
    if not isinstance(located.data, dict):
        raise DefinitionError([located.problem([], f"expected a mapping, found {schemacheck.describe(located.data)}")])
    schemacheck.check(located, "testcase.schema.json")
    d = located.data
    if d["role"] != ANY_ROLE:
        problems: list[Problem] = []
        for key in ("endpoints",):
            if key in d:
                problems.append(located.problem([key], f"expected {key} only in a role: any case, found it"))
        if "role_profile" in d.get("applicability", {}):
            problems.append(
                located.problem(
                    ["applicability", "role_profile"], "expected role_profile only in a role: any case, found it"
                )
            )
        if problems:
            raise DefinitionError(problems)
        return [_load_one(located, text, profile, d["role"], ())]
    wanted = tuple(d.get("endpoints") or nodes.ALL_SUT_ENDPOINTS)
    out: list[TestCase] = []
    problems = []
    for role in nodes.ROLES:
        endpoints = tuple(e for e in nodes.SUT_ENDPOINTS[role] if e in wanted)
        if not endpoints:
            continue
        try:
            out.append(_load_one(located, text, profile, role, endpoints))
        except DefinitionError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        unique = {(p.line, p.path, p.message): p for p in problems}
        raise DefinitionError(sorted(unique.values(), key=lambda p: (p.line or 0, p.path)))
    return out


def _load_one(
    located: yamlsource.Located, text: str, profile: Profile | None, role: str, endpoints: tuple[str, ...]
) -> TestCase:
    """One role's test case of a document (``endpoints``: those a role: any case runs for)."""
    d = located.data
    app = d.get("applicability", {})
    ch = _Checker(located, profile)
    ch.role = role
    generic = d["role"] == ANY_ROLE
    conditions = dict(app.get("profile", {}))
    role_conditions = dict((app.get("role_profile") or {}).get(role, {}))
    conditions.update(role_conditions)
    known = catalogue()
    for i, req in enumerate(d["requirements"]):
        if req not in known:
            ch.add(["requirements", i], f"expected a requirement id of the catalogue, found unknown {req!r}")
    pre = d.get("preconditions", {})
    for i, n in enumerate(pre.get("links", [])):
        ch.node(n, ("preconditions", "links", i), "tester")
    for n in pre.get("configurations", {}):
        ch.node(n, ("preconditions", "configurations", n), "tester")
    for i, n in enumerate(pre.get("hold_ack", [])):
        ch.node(n, ("preconditions", "hold_ack", i), "tester")
    for key, want in conditions.items():
        at: list[str | int] = (
            ["applicability", "role_profile", role, key]
            if key in role_conditions
            else ["applicability", "profile", key]
        )
        if isinstance(want, dict) and (
            not want
            or not set(want) <= {"min", "max"}
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in want.values())
        ):
            ch.add(at, f"expected a value, a list or {{min: N, max: N}}, found {want!r}")
            continue
        if profile is None:
            continue
        try:
            have = profile.value(key)
        except KeyError:
            ch.add(at, f"expected a profile key, found unknown {key!r}")
            continue
        if not condition_holds(have, want):
            # The case does not apply under this profile: it will be not-applicable, so steps
            # that only make sense where it applies (e.g. a range up to min_batch) are not errors.
            ch.excluded = True
    built: list[Step] = []
    for raw, path, index, endpoint in ch.expand_endpoints(d["steps"], endpoints):
        ch.endpoint = endpoint
        if generic:
            body = next(iter(raw.values())) if isinstance(raw, dict) and raw else None
            for key in ("needs", "since_step"):
                if isinstance(body, dict) and key in body:
                    ch.add((*path, next(iter(raw)), key), f"expected no {key} in a role: any case, found one")
        built.append(ch.step(raw, path, index, False))
    steps = tuple(built)
    capabilities = list(app.get("capabilities", []))
    if any(isinstance(s, ProbeStep) or _has_probe(s) for s in steps):
        capabilities += [c for c in PROBE_CAPABILITIES[role] if c not in capabilities]
    readings = [d["reading"]] if isinstance(d.get("reading"), str) else list(d.get("reading", []))
    for i, key in enumerate(readings):
        where: list[str | int] = ["reading"] if isinstance(d.get("reading"), str) else ["reading", i]
        if key not in READINGS:
            ch.add(where, f"expected a profile reading ({', '.join(sorted(READINGS))}), found {key!r}")
    if d["strength"] == "may" and not d.get("option"):
        ch.add(["strength"], "expected an option (the PICS item the SUT declares) for a 'may' case, found none")
    if d.get("option") is not None and d["option"] not in OPTIONS:
        ch.add(["option"], f"expected an option of the suite ({', '.join(sorted(OPTIONS))}), found {d['option']!r}")
    unverified = [r for r in d["requirements"] if known.get(r) is not None and known[r].tag == "UNVERIFIED"]
    if unverified and not readings:
        ch.add(
            ["requirements"],
            f"expected a reading for {', '.join(unverified)} (tagged UNVERIFIED: the verdict rests on the "
            "profile's reading of an open point, which the case must name), found none",
        )
    for i, item in enumerate(d.get("depends_on", [])):
        if item not in PROFILE_ITEMS:
            ch.add(["depends_on", i], f"expected a profile item ({', '.join(sorted(PROFILE_ITEMS))}), found {item!r}")
    if ch.problems:
        # A mistake inside a foreach body is found once per node: report it once.
        unique = {(p.line, p.path, p.message): p for p in ch.problems}
        raise DefinitionError(sorted(unique.values(), key=lambda p: (p.line or 0, p.path)))
    return TestCase(
        id=f"{d['id']}[{role}]" if generic else d["id"],
        title=d["title"],
        purpose=d["purpose"].strip(),
        clause=d["clause"],
        requirements=tuple(d["requirements"]),
        strength=d["strength"],
        role=role,
        depends_on=tuple(d.get("depends_on", [])),
        capabilities=tuple(capabilities),
        profile_conditions=conditions,
        links=tuple(pre.get("links", [])),
        configurations=dict(pre.get("configurations", {})),
        steps=steps,
        scms_mode=pre.get("scms", roles.DEFAULT_SCMS_MODE[role]),
        hold_ack=tuple(pre.get("hold_ack", [])),
        option=d.get("option"),
        readings=tuple(readings),
        file=located.file,
        line=located.line_of(["id"]) or 1,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        base_id=d["id"] if generic else "",
        endpoints=endpoints,
    )


def _has_probe(step: Step) -> bool:
    return isinstance(step, ExpectNothingStep) and any(isinstance(c, ProbeStep) for c in step.control)


def load_testcase(path: str | Path, profile: Profile | None = None) -> TestCase:
    """Load one test case file; any mistake raises a located :class:`DefinitionError`. For a
    role-independent file this is its first role's case: :func:`load_testcases` gives them all."""
    return load_testcases(path, profile)[0]


def load_testcases(path: str | Path, profile: Profile | None = None) -> list[TestCase]:
    """Every test case one file defines: one, or one per role for a ``role: any`` file."""
    limit = profile.max_file_bytes if profile is not None else yamlsource.MAX_FILE_BYTES
    located = yamlsource.load_file(path, limit)
    return load_all(located, located.text, profile)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under the given files or folders, sorted; a file reached
    twice (through a link, or named twice) once, and a symlinked folder loop not followed."""
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        real = p.resolve()
        if real not in seen:
            seen.add(real)
            out.append(p)

    for p in map(Path, paths):
        if not p.is_dir():
            add(p)
            continue
        visited: set[Path] = set()
        for folder, dirs, files in os.walk(p, followlinks=True):
            real = Path(folder).resolve()
            if real in visited:  # a loop, or a folder reached again through a link
                dirs[:] = []
                continue
            visited.add(real)
            dirs.sort()
            for name in sorted(files):
                q = Path(folder) / name
                if q.suffix in (".yaml", ".yml") and q.is_file():
                    add(q)
    return out


def lint(paths: Iterable[str | Path], profile: Profile | None = None) -> tuple[int, list[Problem]]:
    """Check files without running them: (number of files checked, every problem found)."""
    files = discover(paths)
    problems: list[Problem] = []
    ids: dict[str, str] = {}
    for f in files:
        try:
            tc = load_testcase(f, profile)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        key = tc.base_id or tc.id  # a role-independent case's file id, not one role's run of it
        if key in ids:
            problems.append(
                Problem(
                    str(f),
                    tc.line,
                    "id",
                    f"expected a unique test case id, found {key!r} again (also in {ids[key]})",
                )
            )
        ids[key] = str(f)
    return len(files), problems
