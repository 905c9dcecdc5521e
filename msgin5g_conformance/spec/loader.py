"""Load test case YAML into :class:`~msgin5g_conformance.spec.model.TestCase`.

Two passes, both located (``file:line: field.path: expected ..., found ...``): the JSON Schema
shipped in ``schemas/testcase.schema.json``, then the meaning that a schema cannot express
(requirement ids exist, codes parse, option names are known, variables are defined before use,
senders and receivers are on the right side of the SUT).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from msgin5g_conformance import roles, schemacheck, yamlsource
from msgin5g_conformance.errors import DefinitionError, Problem
from msgin5g_conformance.spec import templates
from msgin5g_conformance.spec.model import (
    ExpectNothingStep,
    ExpectStep,
    SendStep,
    Step,
    TestCase,
    UpperStep,
    WaitStep,
)
from msgin5g_conformance.spec.requirements import OPTIONS, catalogue
from msgin5g_conformance.spec.templates import VARIABLE, TemplateError, expand_range
from msgin5g_conformance.wire.numbers import OPTION_NAMES, parse_code
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import DEFAULT_READINGS, Profile, condition_holds

SUT_NODES = {role: set(names) for role, names in nodes.SUT_ENDPOINTS.items()}
UPPER_OPS_NEEDING_CLIENT = {"establish_link", "release_link"}
# keys of an expect step that are about the step, not the message it expects
_EXPECT_STEP_KEYS = frozenset(
    {"at", "from", "timeout_ms", "grace_ms", "since_step", "capture", "requirement", "should", "needs"}
)


class _Checker:
    def __init__(self, located: yamlsource.Located, profile: Profile | None) -> None:
        self.located = located
        self.profile = profile
        self.problems: list[Problem] = []
        self.captured: set[str] = set()
        self.sent_payloads: list[Any] = []  # payload templates of the sends so far
        self.excluded = False  # the profile's values exclude the case (applicability)
        self.role: str = located.data.get("role", "relay")

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
            return SendStep(index, line, body["from"], body["to"], msg, requirements=reqs, needs=needs)
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
            if isinstance(body.get("timeout_ms"), str):
                self.variables(body["timeout_ms"], (*bpath, "timeout_ms"))
            self.message(msg, bpath, sending=False)
            should = body.get("should")
            if should is not None:
                self.message({k: v for k, v in should.items() if k != "why"}, (*bpath, "should"), sending=False)
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
        control: list[SendStep | ExpectStep | UpperStep] = []
        for i, c in enumerate(body["control"]):
            s = self.step(c, (*bpath, "control", i), f"{index}.control[{i}]", True)
            assert isinstance(s, SendStep | ExpectStep | UpperStep)
            control.append(s)
        if not any(isinstance(c, ExpectStep) for c in control):
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


def _schema_exists(ref: str, base: Path) -> bool:
    from importlib import resources

    if (base / ref).is_file():
        return True
    return resources.files("msgin5g_conformance.schemas").joinpath(ref).is_file()


def load_located(located: yamlsource.Located, text: str, profile: Profile | None = None) -> TestCase:
    """Validate and build a test case from an already parsed document."""
    if not isinstance(located.data, dict):
        raise DefinitionError([located.problem([], f"expected a mapping, found {schemacheck.describe(located.data)}")])
    schemacheck.check(located, "testcase.schema.json")
    d = located.data
    app = d.get("applicability", {})
    ch = _Checker(located, profile)
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
    for key, want in app.get("profile", {}).items():
        if isinstance(want, dict) and (
            not want
            or not set(want) <= {"min", "max"}
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in want.values())
        ):
            ch.add(["applicability", "profile", key], f"expected a value, a list or {{min: N, max: N}}, found {want!r}")
            continue
        if profile is None:
            continue
        try:
            have = profile.value(key)
        except KeyError:
            ch.add(["applicability", "profile", key], f"expected a profile key, found unknown {key!r}")
            continue
        if not condition_holds(have, want):
            # The case does not apply under this profile: it will be not-applicable, so steps
            # that only make sense where it applies (e.g. a range up to min_batch) are not errors.
            ch.excluded = True
    steps = tuple(ch.step(raw, path, index, False) for raw, path, index in ch.expand(d["steps"]))
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
        id=d["id"],
        title=d["title"],
        purpose=d["purpose"].strip(),
        clause=d["clause"],
        requirements=tuple(d["requirements"]),
        strength=d["strength"],
        role=d["role"],
        depends_on=tuple(d.get("depends_on", [])),
        capabilities=tuple(app.get("capabilities", [])),
        profile_conditions=dict(app.get("profile", {})),
        links=tuple(pre.get("links", [])),
        configurations=dict(pre.get("configurations", {})),
        steps=steps,
        scms_mode=pre.get("scms", roles.DEFAULT_SCMS_MODE[d["role"]]),
        hold_ack=tuple(pre.get("hold_ack", [])),
        option=d.get("option"),
        readings=tuple(readings),
        file=located.file,
        line=located.line_of(["id"]) or 1,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def load_testcase(path: str | Path, profile: Profile | None = None) -> TestCase:
    """Load one test case file; any mistake raises a located :class:`DefinitionError`."""
    located = yamlsource.load_file(path)
    text = Path(path).read_text(encoding="utf-8")
    return load_located(located, text, profile)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under the given files or folders, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file()))
        else:
            out.append(p)
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
        if tc.id in ids:
            problems.append(
                Problem(
                    str(f),
                    tc.line,
                    "id",
                    f"expected a unique test case id, found {tc.id!r} again (also in {ids[tc.id]})",
                )
            )
        ids[tc.id] = str(f)
    return len(files), problems
