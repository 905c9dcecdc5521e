"""Field templates: the one ``${variable}`` grammar, building messages to send, judging messages received.

A template is the plain data of a ``send`` or ``expect`` step. The loader parses it once
(:func:`parse`: every string holding a variable becomes a :class:`Text` of literal parts and
:class:`Var` s) and checks every variable with :func:`check_variable`; at run time a
:class:`Bindings` object resolves the parsed parts, and records which provisional profile items a
check relied on. Both sides of a variable, its check and its value, are defined here only.
Judging compares a strictly parsed message with the template field by field and returns every
:class:`~msgin5g_conformance.engine.verdict.Finding`, so a report can show expected and found values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from msgin5g_conformance.engine.verdict import Finding
from msgin5g_conformance.errors import HarnessError
from msgin5g_conformance.schemacheck import file_validator
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import (
    OPTION_FORMATS,
    OPTION_LENGTHS,
    OPTION_NAMES,
    MessageType,
    OptionFormat,
    OptionNumber,
    code_name,
    code_to_str,
    decode_uint,
    encode_uint,
    option_name,
    parse_code,
)
from msgin5g_conformance.world import nodes
from msgin5g_conformance.world.profile import Profile

VARIABLE = re.compile(r"\$\{([A-Za-z_](?:[A-Za-z0-9_.-]|\{min_batch\})*)\}")


class TemplateError(HarnessError):
    """A template could not be resolved at run time (an error of the test definition)."""


# -- the grammar: ${variables} in strings, parsed once ----------------------------------------


class Var(NamedTuple):
    """One ``${name}`` of a template."""

    name: str

    @property
    def head(self) -> str:
        return self.name.partition(".")[0]

    @property
    def rest(self) -> str:
        return self.name.partition(".")[2]


class Text(str):
    """A template string holding ``${variables}``: the string as written, with its parts parsed
    (literal text and :class:`Var`). It is the string for display and comparison; resolving it
    never scans the text again."""

    parts: tuple[str | Var, ...]

    def __new__(cls, source: str, parts: tuple[str | Var, ...]) -> Text:
        self = super().__new__(cls, source)
        self.parts = parts
        return self

    @property
    def single(self) -> Var | None:
        """The variable when the string is exactly one (its value then keeps its type)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Var):
            return self.parts[0]
        return None

    def variables(self) -> list[Var]:
        return [p for p in self.parts if isinstance(p, Var)]


@cache
def parse_text(source: str) -> str:
    """A string as a :class:`Text` when it holds a variable, else unchanged."""
    if "${" not in source:
        return source
    parts: list[str | Var] = []
    pos = 0
    for m in VARIABLE.finditer(source):
        if m.start() > pos:
            parts.append(source[pos : m.start()])
        parts.append(Var(m.group(1)))
        pos = m.end()
    if pos < len(source):
        parts.append(source[pos:])
    return Text(source, tuple(parts)) if any(isinstance(p, Var) for p in parts) else source


def parse(value: Any) -> Any:
    """A template (the plain data of a step) with every string parsed: done once, at load."""
    if isinstance(value, str):
        return parse_text(value)
    if isinstance(value, dict):
        return {k: parse(v) for k, v in value.items()}
    if isinstance(value, list):
        return [parse(v) for v in value]
    return value


def variables(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Var]]:
    """Every variable of a parsed template, with the field path where it stands."""
    if isinstance(value, Text):
        for var in value.variables():
            yield path, var
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from variables(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from variables(v, (*path, i))


@dataclass
class CheckContext:
    """What the loader knows when it checks a variable: the profile, and what earlier steps capture."""

    profile: Profile | None
    captured: set[str] = field(default_factory=set)
    excluded: bool = False  # the profile's values exclude the case: ranges it makes impossible are fine


def _node_arg(head: str, allow_sut: bool) -> Callable[[str, CheckContext], str | None]:
    def check(rest: str, ctx: CheckContext) -> str | None:
        if nodes.is_tester_node(rest) or (allow_sut and rest == "sut"):
            return None
        return f"expected ${{{head}.NODE}} with a tester node name, found ${{{head}.{rest}}}"

    return check


def _check_uri(rest: str, ctx: CheckContext) -> str | None:
    return None if rest in ("single", "bulk") else f"expected ${{uri.single}} or ${{uri.bulk}}, found ${{uri.{rest}}}"


def _check_range(rest: str, ctx: CheckContext) -> str | None:
    try:
        expand_range(rest, ctx.profile)
    except TemplateError as exc:
        return None if ctx.excluded else f"${{ue_uri.{rest}}}: {exc}"
    return None


def _check_profile(rest: str, ctx: CheckContext) -> str | None:
    if ctx.profile is None:
        return None
    try:
        ctx.profile.value(rest)
    except KeyError:
        return f"expected a profile key, found unknown ${{profile.{rest}}}"
    return None


# The variable kinds: how the loader checks each, and how a case resolves it (Bindings.lookup).
_CHECKS: dict[str, Callable[[str, CheckContext], str | None]] = {
    "addr": _node_arg("addr", allow_sut=True),
    "config": _node_arg("config", allow_sut=False),
    "uri": _check_uri,
    "ue_uri": _check_range,
    "ids": _check_range,
    "profile": _check_profile,
}


def check_variable(var: Var, ctx: CheckContext) -> str | None:
    """Why a variable cannot be resolved in a test case (None when it can): the loader's one check."""
    if var.name in ("each", "each_hex"):
        return f"expected ${{{var.name}}} only inside foreach steps, found it outside"
    check = _CHECKS.get(var.head)
    if check is not None:
        return check(var.rest, ctx)
    if var.name in ctx.captured:
        return None
    return f"expected a variable captured by an earlier step, found undefined ${{{var.name}}}"


# -- resolution -----------------------------------------------------------------------------------


@dataclass
class Bindings:
    """Everything a ``${variable}`` can name during one test case."""

    profile: Profile
    case_dir: Path
    configurations: dict[str, str] = field(default_factory=dict)  # node -> document|forbidden|unknown
    captures: dict[str, Any] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    readings_used: set[str] = field(default_factory=set)

    def _mark(self, item: str) -> None:
        if item in self.profile.provisional:
            self.used.add(item)

    def lookup(self, name: str | Var) -> Any:
        var = name if isinstance(name, Var) else Var(name)
        head, rest = var.head, var.rest
        if head == "addr":
            self._mark("addresses")
            return self.profile.address_of("sut" if rest == "sut" else rest)
        if head == "uri":
            self._mark("single_uri" if rest == "single" else "bulk_uri")
            return self.profile.single_path if rest == "single" else self.profile.bulk_path
        if head == "config":
            self._mark("scm_s")
            kind = self.configurations.get(rest) or self.profile.scm_answer_for(rest)
            if kind != "document":
                raise TemplateError(f"the SCM-S serves no document for {rest!r} (it is {kind})")
            return self.profile.document_for(rest)
        if head == "ids":
            self._mark("addresses")
            return [self.profile.client_address(n) for n in expand_range(rest, self.profile)]
        if head == "ue_uri":
            self._mark("query")
            ids = [self.profile.client_address(n) for n in expand_range(rest, self.profile)]
            key = self.profile.query_ue_ids
            if self.profile.list_encoding == "csv":
                return [f"{key}={','.join(ids)}"]
            return [f"{key}={i}" for i in ids]
        if head == "profile" and rest:
            self._mark(rest.split(".")[0])
            try:
                return self.profile.value(rest)
            except KeyError:
                raise TemplateError(f"unknown profile key {rest!r}") from None
        if var.name in self.captures:
            return self.captures[var.name]
        raise TemplateError(f"undefined variable ${{{var.name}}}")

    def resolve(self, value: Any) -> Any:
        """Substitute variables; a string that is exactly one variable keeps the value's type."""
        if isinstance(value, str):
            text = value if isinstance(value, Text) else parse_text(value)
            if not isinstance(text, Text):
                return value
            single = text.single
            if single is not None:
                return self.lookup(single)
            return "".join(self._as_text(p) for p in text.parts)
        if isinstance(value, list):
            out: list[Any] = []
            for v in value:
                r = self.resolve(v)
                # a variable holding a list inside a list splices in (e.g. [${uri.single}, extra])
                parsed = parse_text(v) if isinstance(v, str) else None
                if isinstance(parsed, Text) and parsed.single is not None and isinstance(r, list):
                    out.extend(r)
                else:
                    out.append(r)
            return out
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def _as_text(self, part: str | Var) -> str:
        if isinstance(part, str):
            return part
        v = self.lookup(part)
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

    def reading(self, name: str) -> str:
        """The profile's reading of an open point (marks it used: results name it)."""
        self._mark("readings")
        self.readings_used.add(name)
        return self.profile.reading(name)

    def option_number(self, name: str) -> int:
        if name == "recipient":
            self._mark("recipient_option")
            return self.profile.recipient_option
        if name == "content-format":
            self._mark("content_format")
        if name.isdigit():
            return int(name)
        return OPTION_NAMES[name]

    def schema_path(self, ref: str) -> str:
        ref = str(self.resolve(ref))
        if ref == self.profile.raw.get("config_schema") or Path(ref) == self.profile.config_schema_path:
            self._mark("config_schema")
            return str(self.profile.config_schema_path)
        for cand in (self.case_dir / ref, self.profile.config_schema_path.parent / ref):
            if cand.is_file():
                return str(cand)
        from importlib import resources

        p = resources.files("msgin5g_conformance.schemas").joinpath(ref)
        if p.is_file():
            return str(p)
        raise TemplateError(f"no schema file {ref!r}")


RANGE = re.compile(r"^cue([1-9][0-9]{0,3})\.\.cue([1-9][0-9]{0,3}|\{min_batch\})$")


def expand_range(text: str, profile: Profile | None) -> list[str]:
    """``cue1..cue50`` (or ``cue1..cue{min_batch}``, the profile's minimum batch) as node names."""
    m = RANGE.match(text)
    if not m:
        raise TemplateError(f"expected a node range such as cue1..cue50, found {text!r}")
    first = int(m.group(1))
    if m.group(2) == "{min_batch}":
        if profile is None:
            raise TemplateError("cue{min_batch} needs a profile")
        last = profile.min_batch
    else:
        last = int(m.group(2))
    if not 1 <= first <= last <= nodes.MAX_CUE:
        raise TemplateError(f"expected a range within cue1..cue{nodes.MAX_CUE}, found {text!r} ({first}..{last})")
    return [f"cue{i}" for i in range(first, last + 1)]


def _fmt(number: int, bindings: Bindings) -> OptionFormat | None:
    if number == bindings.profile.recipient_option:
        return OptionFormat.STRING
    return OPTION_FORMATS.get(number)


def encode_option_value(number: int, value: Any, bindings: Bindings) -> bytes:
    fmt = _fmt(number, bindings)
    if isinstance(value, dict) and "hex" in value:
        return bytes.fromhex(value["hex"])
    if isinstance(value, bool):
        raise TemplateError(f"{option_name(number)}: expected a value, found boolean")
    if isinstance(value, int):
        return encode_uint(value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        if fmt is OptionFormat.UINT:
            if value.isdigit():
                return encode_uint(int(value))
            raise TemplateError(f"{option_name(number)}: expected an unsigned integer, found {value!r}")
        return value.encode("utf-8")
    raise TemplateError(f"{option_name(number)}: cannot encode {value!r}")


def encode_payload(spec: Any, bindings: Bindings) -> bytes:
    if spec is None:
        return b""
    spec = bindings.resolve(spec)
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "text" in spec:
        return str(spec["text"]).encode("utf-8")
    if "json" in spec:
        return json.dumps(spec["json"], separators=(",", ":"), sort_keys=False).encode("utf-8")
    if "same_as" in spec:
        v = bindings.lookup(spec["same_as"]) if isinstance(spec["same_as"], str) else spec["same_as"]
        return v if isinstance(v, bytes) else str(v).encode("utf-8")
    raise TemplateError(f"cannot send payload {spec!r}")


def build_message(template: dict[str, Any], bindings: Bindings) -> CoapMessage:
    """The message a ``send`` step puts on the wire (Message ID filled in by the node)."""
    t = template
    options: list[tuple[int, bytes]] = []
    for name, value in (t.get("options") or {}).items():
        number = bindings.option_number(name)
        resolved = bindings.resolve(value)
        values = resolved if isinstance(resolved, list) else [resolved]
        options.extend((number, encode_option_value(number, v, bindings)) for v in values)
    if "query" in t:
        options.extend((OptionNumber.URI_QUERY, q.encode("utf-8")) for q in query_values(t["query"], bindings))
    options.sort(key=lambda o: o[0])
    token = bindings.resolve(t.get("token", ""))
    mid = bindings.resolve(t["mid"]) if "mid" in t else 0
    return CoapMessage(
        mtype=MessageType[t["type"]],
        code=parse_code(bindings.resolve(t["code"])),
        mid=int(mid),
        token=bytes.fromhex(str(token)),
        options=tuple(options),
        payload=encode_payload(t.get("payload"), bindings),
    )


def _decode(number: int, raw: bytes, bindings: Bindings) -> Any:
    fmt = _fmt(number, bindings)
    if fmt is OptionFormat.UINT:
        return decode_uint(raw)
    if fmt is OptionFormat.STRING:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"hex": raw.hex(), "invalid": "not UTF-8"}
    return {"hex": raw.hex()}


def _show(v: Any) -> str:
    if isinstance(v, bytes):
        try:
            return repr(v.decode("utf-8"))
        except UnicodeDecodeError:
            return "0x" + v.hex()
    if isinstance(v, str):
        return repr(v)
    return json.dumps(v) if isinstance(v, dict | list) else str(v)


def judge(message: CoapMessage, template: dict[str, Any], bindings: Bindings) -> list[Finding]:
    """Compare a received message with an expectation; one finding per checked field."""
    out: list[Finding] = []
    t = template
    if "type" in t:
        types = t["type"] if isinstance(t["type"], list) else [t["type"]]
        found = MessageType(message.mtype).name
        out.append(Finding("type", " or ".join(types), found, found in types))
    if "code" in t:
        want = parse_code(bindings.resolve(t["code"]))
        out.append(Finding("code", code_name(want), code_name(message.code), want == message.code))
    if "token" in t:
        out.append(_judge_token(message, t["token"], bindings))
    for name, spec in (t.get("options") or {}).items():
        number = bindings.option_number(name)
        label = f"options.{name}" if name != "recipient" else f"options.recipient ({option_name(number)})"
        found_vals = [_decode(number, v, bindings) for v in message.option_values(number)]
        shown = ", ".join(_show(v) for v in found_vals) if found_vals else "absent"
        if spec is None:
            out.append(Finding(label, "absent", shown, not found_vals))
            continue
        if isinstance(spec, dict) and spec.get("present") is True:
            out.append(Finding(label, "present", shown, bool(found_vals)))
            continue
        unordered = isinstance(spec, dict) and "set" in spec
        resolved = bindings.resolve(spec["set"] if unordered else spec)
        want_vals = resolved if isinstance(resolved, list) else [resolved]
        fmt = _fmt(number, bindings)
        norm: list[Any] = []
        for w in want_vals:
            if isinstance(w, dict) and "hex" in w:
                norm.append({"hex": w["hex"].lower()})
            elif fmt is OptionFormat.UINT and isinstance(w, str) and w.isdigit():
                norm.append(int(w))
            elif fmt in (OptionFormat.OPAQUE, OptionFormat.EMPTY, None) and isinstance(w, str):
                norm.append({"hex": w.encode("utf-8").hex()})
            elif fmt in (OptionFormat.OPAQUE, OptionFormat.EMPTY, None) and isinstance(w, int):
                norm.append({"hex": encode_uint(w).hex()})
            else:
                norm.append(w)
        if unordered:
            ok = sorted(map(_show, norm)) == sorted(map(_show, found_vals))
            want_text = "in any order: " + (", ".join(_show(v) for v in norm) or "none")
            out.append(Finding(label, want_text, shown, ok))
        else:
            out.append(Finding(label, ", ".join(_show(v) for v in norm) or "absent", shown, norm == found_vals))
    if "query" in t:
        out.extend(judge_query(message, t["query"], bindings))
    if "payload" in t:
        out.append(_judge_payload(message.payload, t["payload"], bindings))
    return out


def judge_other_options(message: CoapMessage, template: dict[str, Any], bindings: Bindings) -> list[Finding]:
    """Strict options: every option of the message is judged, not only those the template names.

    An option the template neither names (``options``, or Uri-Query through ``query``) nor allows
    (``options_allowed``) fails; so does any option value whose length is outside its range (RFC
    7252 5.10, 5.4.3: such a value is treated like an unrecognised option, so the receiver loses
    it, or rejects the message when the option is critical). Only failures are reported.
    ``options_allowed: all`` turns both off (a step that only collects a token for later steps)."""
    if template.get("options_allowed") == "all":
        return []
    named = {bindings.option_number(n) for n in template.get("options") or {}}
    if "query" in template:
        named.add(OptionNumber.URI_QUERY)
    allowed = {bindings.option_number(n) for n in template.get("options_allowed") or []}
    out: list[Finding] = []
    others = [(n, v) for n, v in message.options if n not in named | allowed]
    if others:
        shown = ", ".join(f"{option_name(n)}={_show(_decode(n, v, bindings))}" for n, v in others)
        names = ", ".join(sorted({option_name(n) for n in allowed}))
        out.append(
            Finding("options (others)", "no option but those named" + (f" and {names}" if names else ""), shown, False)
        )
    for n, v in message.options:
        limits = OPTION_LENGTHS.get(n) if n != bindings.profile.recipient_option else None
        if limits is not None and not limits[0] <= len(v) <= limits[1]:
            span = f"{limits[0]}" if limits[0] == limits[1] else f"{limits[0]}-{limits[1]}"
            out.append(
                Finding(
                    f"options.{option_name(n)} length",
                    f"{span} byte(s) (RFC 7252 5.10; 5.4.3: otherwise treated as unrecognised)",
                    f"{len(v)} byte(s): 0x{v.hex()}" if len(v) <= 16 else f"{len(v)} byte(s)",
                    False,
                )
            )
    return out


def _judge_token(message: CoapMessage, spec: Any, bindings: Bindings) -> Finding:
    """``token: HEX`` must be that token (RFC 7252 5.3.2 ties a token to its request, so a response
    to the client's own request carries the client's token); ``token: {unsolicited: HEX}`` is the
    token of a response no client asked for, judged only under the reading ``unsolicited_token:
    transparent`` (the seed says nothing of it)."""
    found = message.token.hex() or "(empty)"
    if isinstance(spec, dict):
        want = str(bindings.resolve(spec["unsolicited"])).lower()
        reading = bindings.reading("unsolicited_token")
        if reading != "transparent":
            return Finding(
                "token", f"any (reading unsolicited_token: {reading}; sent {want or '(empty)'})", found, True
            )
        return Finding(
            "token", f"{want or '(empty)'} (reading unsolicited_token: transparent)", found, want == message.token.hex()
        )
    want_tok = str(bindings.resolve(spec)).lower()
    return Finding("token", want_tok or "(empty)", found, want_tok == message.token.hex())


QUERY_KEYS = ("ue_ids", "vendor", "type")


def query_name(key: str, profile: Profile) -> str:
    """The Uri-Query parameter name of a query key: ``ue_ids``, ``vendor`` and ``type`` are the
    profile's names (seed: ue-uri, ue-vendor, ue-type), any other key is itself."""
    return {"ue_ids": profile.query_ue_ids, "vendor": profile.query_vendor, "type": profile.query_type}.get(key, key)


def query_values(spec: dict[str, Any], bindings: Bindings) -> list[str]:
    """The Uri-Query values a ``send`` step's ``query`` builds, in the profile's names and list
    encoding (ue_ids as one comma-separated value under ``list_encoding: csv``)."""
    p = bindings.profile
    bindings._mark("query")
    out: list[str] = []
    for key, value in spec.items():
        name = query_name(key, p)
        resolved = bindings.resolve(value)
        values = [str(v) for v in (resolved if isinstance(resolved, list) else [resolved])]
        if key == "ue_ids" and p.list_encoding == "csv":
            out.append(f"{name}={','.join(values)}")
        else:
            out.extend(f"{name}={v}" for v in values)
    return out


def _query_params(message: CoapMessage) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for raw in message.option_values(OptionNumber.URI_QUERY):
        text = raw.decode("utf-8", "replace")
        name, _, value = text.partition("=")
        params.setdefault(name, []).append(value)
    return params


def judge_query(message: CoapMessage, spec: dict[str, Any], bindings: Bindings) -> list[Finding]:
    """One finding per query parameter the expectation names (TS 24.546 C.3.1 query, seed 6.2.2.x):

    * a list: exactly these values in this order; ``{set: [...]}``: these values in any order,
      each exactly as often as listed; ``{each: [...]}``: every listed value at least once and no
      other value (repetitions allowed: "the ue-vendor and/or the ue-type parameter are set to the
      MSGin5G UE information ... if included" says nothing of how often);
    * ``null``: absent; ``{present: true}``: present.

    ``ue_ids`` values are read in the profile's list encoding: under ``csv`` the parameter must
    appear once, its value split at commas."""
    p = bindings.profile
    bindings._mark("query")
    params = _query_params(message)
    out: list[Finding] = []
    for key, want_spec in spec.items():
        name = query_name(key, p)
        label = f"query.{key}" + (f" ({name})" if name != key else "")
        found = params.get(name, [])
        if key == "ue_ids" and p.list_encoding == "csv" and found:
            if len(found) > 1:
                out.append(
                    Finding(label, "one comma-separated value (list_encoding: csv)", f"{len(found)} values", False)
                )
                continue
            found = found[0].split(",")
        shown = ", ".join(repr(v) for v in found) if found else "absent"
        if want_spec is None:
            out.append(Finding(label, "absent", shown, not found))
            continue
        if isinstance(want_spec, dict) and want_spec.get("present") is True:
            out.append(Finding(label, "present", shown, bool(found)))
            continue
        mode = next((m for m in ("set", "each") if isinstance(want_spec, dict) and m in want_spec), "list")
        resolved = bindings.resolve(want_spec[mode] if mode != "list" else want_spec)
        want = [str(v) for v in (resolved if isinstance(resolved, list) else [resolved])]
        if mode == "set":
            ok = sorted(want) == sorted(found)
            expected = "in any order, each once: " + (", ".join(repr(v) for v in want) or "none")
        elif mode == "each":
            ok = set(want) == set(found)
            expected = "each at least once, nothing else: " + (", ".join(repr(v) for v in sorted(set(want))) or "none")
        else:
            ok = want == found
            expected = ", ".join(repr(v) for v in want) or "absent"
        out.append(Finding(label, expected, shown, ok))
    return out


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r} (RFC 8259 4: names SHOULD be unique; I-JSON, RFC 7493 2.3: MUST)")
        seen[key] = value
    return seen


def load_json(payload: bytes) -> Any:
    """A payload as JSON, refusing what a lenient parse would hide: invalid UTF-8 and repeated keys
    (a receiver keeps one of them, nobody knows which)."""
    return json.loads(payload.decode("utf-8"), object_pairs_hook=_unique_keys)


def json_same(a: Any, b: Any) -> bool:
    """JSON equality by type: 1024 is not 1024.0 and true is not 1 (Python's == says both are)."""
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, int | float) or isinstance(b, int | float):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _judge_payload(payload: bytes, spec: dict[str, Any], bindings: Bindings) -> Finding:
    if "schema" in spec and len(spec) > 1:
        first = _judge_payload(payload, {"schema": spec["schema"]}, bindings)
        rest = _judge_payload(payload, {k: v for k, v in spec.items() if k != "schema"}, bindings)
        if not first.ok:
            return first
        return Finding("payload", f"{rest.expected} and {first.expected}", rest.found, rest.ok)
    if "schema" in spec:
        path = bindings.schema_path(spec["schema"])
        try:
            doc = load_json(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            return Finding("payload", f"JSON valid against {Path(path).name}", f"not JSON ({exc})", False)
        errors = sorted(file_validator(path).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            e = errors[0]
            where = "/".join(map(str, e.absolute_path)) or "(document)"
            return Finding("payload", f"JSON valid against {Path(path).name}", f"{where}: {e.message}", False)
        return Finding("payload", f"JSON valid against {Path(path).name}", "valid", True)
    resolved = bindings.resolve(spec)
    if "json" in resolved:
        want = resolved["json"]
        try:
            doc = load_json(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            return Finding("payload", f"JSON {json.dumps(want)}", f"not JSON ({exc}): {_show(payload)}", False)
        return Finding("payload", f"JSON {json.dumps(want)}", json.dumps(doc), json_same(doc, want))
    if "same_as" in spec:
        want_b = bindings.lookup(spec["same_as"])
        want_b = want_b if isinstance(want_b, bytes) else str(want_b).encode("utf-8")
    elif "hex" in resolved:
        want_b = bytes.fromhex(resolved["hex"])
    else:
        want_b = str(resolved["text"]).encode("utf-8")
    return Finding("payload", _show(want_b), _show(payload), want_b == payload)


def capture_fields(message: CoapMessage, capture: dict[str, str], bindings: Bindings) -> dict[str, Any]:
    """Values named by an ``expect`` step's ``capture`` mapping."""
    out: dict[str, Any] = {}
    for name, what in capture.items():
        if what == "token":
            out[name] = message.token.hex()
        elif what == "mid":
            out[name] = message.mid
        elif what == "code":
            out[name] = code_to_str(message.code)
        elif what == "type":
            out[name] = MessageType(message.mtype).name
        elif what == "payload":
            out[name] = message.payload
        else:
            number = bindings.option_number(what.split(".", 1)[1])
            vals = [_decode(number, v, bindings) for v in message.option_values(number)]
            out[name] = vals[0] if len(vals) == 1 else vals
    return out


def describe_template(template: dict[str, Any], bindings: Bindings) -> str:
    """An expectation in one line, for reports of a message that never came."""
    parts: list[str] = []
    if "type" in template:
        t = template["type"]
        parts.append("/".join(t) if isinstance(t, list) else str(t))
    if "code" in template:
        try:
            parts.append(code_name(parse_code(bindings.resolve(template["code"]))))
        except (ValueError, TemplateError):
            parts.append(str(template["code"]))
    if "token" in template:
        token = template["token"]
        token = token["unsolicited"] if isinstance(token, dict) else token
        try:
            parts.append(f"token={bindings.resolve(token)}")
        except TemplateError:
            parts.append(f"token={token}")
    for key, spec in (template.get("query") or {}).items():
        try:
            value = bindings.resolve(spec)
        except TemplateError:
            value = spec
        parts.append(f"query.{key}={_show(value)}")
    for name, spec in (template.get("options") or {}).items():
        try:
            value = bindings.resolve(spec)
        except TemplateError:
            value = spec
        parts.append(f"{name}={_show(value)}")
    if "payload" in template:
        parts.append(f"payload {next(iter(template['payload']))}")
    return " ".join(parts) or "any message"
