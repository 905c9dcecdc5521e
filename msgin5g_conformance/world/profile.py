"""The protocol profile (PIXIT): every value TS 24.538 6.2.2 leaves open, in one validated file.

The default ships in ``data/default-profile.yaml``; ``--profile PATH`` selects another. Each
result names the profile used, and checks relying on an item listed under ``provisional`` are
marked provisional.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from msgin5g_conformance import schemacheck, yamlsource
from msgin5g_conformance.errors import DefinitionError, Problem
from msgin5g_conformance.wire.numbers import parse_code

if TYPE_CHECKING:  # the endpoint module brings asyncio and sockets: not imported by offline analysis
    from msgin5g_conformance.wire.endpoint import CoapTimers

DEFAULT_PROFILE = "default-profile.yaml"

# The readings of what the clauses leave open, with the value a profile without them gets.
DEFAULT_READINGS: dict[str, str] = {
    "seed_revision": "001",  # the clean text of the CR (000 still shows replaced wording)
    "relay_model": "terminating",  # the relay ends CoAP and sends its own messages (or: forwarding)
    "unsolicited_token": "free",  # a response no client asked for may carry any token
    "other_client_responses": "ignore",  # REQ-CUE-RSP-2: a response for another client is not handled
    "bulk_errors": "per-ue",  # REQ-GW-BULK-3: each UE gets the result the bulk answer has for it
    "uplink_other_requests": "open",  # REQ-RELAY-UL-2: a GET failing the seed's conditions (or: discard)
    "other_response_codes": "open",  # REQ-RELAY-DL-3: a response other than 2.05/4.03/4.04 (or: discard)
    "gateway_config_client": "collocated",  # the gateway's own SCM-C is on the wire (or: seal-c, it is not)
}
BULK_RESPONSE_SHAPES = ("entries", "by-id")


# A gateway case's requests must all be sent within this share of bulk_policy.max_wait_ms for it to
# demand one bulk GET of them (sent_within_ms): a request that arrives later may still wait in the
# gateway's receive queue when its timer fires, and go with the next bulk GET.
SENT_WITHIN_SHARE = 0.8


@dataclass(frozen=True)
class Timers:
    response_ms: int  # how long an expectation waits
    absence_window_ms: int  # quiet time of an absence check before its positive control
    ack_timeout_ms: int  # the tester's CON ACK_TIMEOUT (RFC 7252 4.8)
    max_retransmit: int  # the tester's CON MAX_RETRANSMIT (RFC 7252 4.8)
    late_window_ms: int = 300  # listeners stay up this long after a case's last step
    ack_bound_ms: int = 1050  # the SUT acknowledges or resets a tester CON within this (RFC 7252 4.2)
    sut_max_retransmit: int = 4  # RFC 7252 4.8 default MAX_RETRANSMIT of the SUT

    @property
    def coap(self) -> CoapTimers:
        from msgin5g_conformance.wire.endpoint import CoapTimers

        return CoapTimers(self.ack_timeout_ms / 1000, self.max_retransmit)


@dataclass(frozen=True)
class Profile:
    """A validated protocol profile."""

    name: str
    source: str
    sha256: str
    provisional: frozenset[str]
    port: int
    port_match: str
    alt_port: int
    recipient_option: int
    scm_s_address: str
    client_address_template: str
    content_format: int
    root_path: tuple[str, ...]
    val_service_id: str
    single_path_template: tuple[str, ...]
    bulk_conf_flag: str
    bulk_path_template: tuple[str, ...]
    query_ue_ids: str
    query_vendor: str
    query_type: str
    list_encoding: str
    relayed_codes: frozenset[int]
    min_batch: int
    max_wait_ms: int
    config_schema_path: Path
    bulk_response_schema_path: Path
    sut_ue_address: str
    scm_document_template: dict[str, Any]
    scm_forbidden: frozenset[str]
    scm_unknown: frozenset[str]
    block_size: int
    timers: Timers
    raw: dict[str, Any]
    readings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_READINGS))
    bulk_response_shape: str = "entries"
    max_file_bytes: int = yamlsource.MAX_FILE_BYTES  # limits.max_file_bytes: the files a run reads

    def reading(self, name: str) -> str:
        """The profile's reading of an open point of the clauses (``readings`` in the profile)."""
        return self.readings[name]

    def client_address(self, node: str) -> str:
        """The recipient address string of a client node (e.g. cue1)."""
        return self.client_address_template.replace("{node}", node)

    def address_of(self, node: str) -> str:
        if node in ("scms", "scms_alt"):
            return self.scm_s_address
        if node in ("sut", "sut.cue"):
            return self.sut_ue_address
        return self.client_address(node)

    def document_for(self, node: str) -> dict[str, Any]:
        """The configuration document the tester's SCM-S serves for a client node."""

        def fill(v: Any) -> Any:
            if isinstance(v, str):
                return v.replace("{node}", node)
            if isinstance(v, dict):
                return {k: fill(x) for k, x in v.items()}
            if isinstance(v, list):
                return [fill(x) for x in v]
            return v

        doc: dict[str, Any] = fill(self.scm_document_template)
        return doc

    def scm_answer_for(self, node: str) -> str:
        """'document', 'forbidden' (4.03) or 'unknown' (4.04) for a client node."""
        if node in self.scm_forbidden:
            return "forbidden"
        if node in self.scm_unknown:
            return "unknown"
        return "document"

    def _path(self, template: tuple[str, ...]) -> list[str]:
        subst = {"{valServiceId}": self.val_service_id, "{bulkConfFlag}": self.bulk_conf_flag}
        return [*self.root_path, *(subst.get(seg, seg) for seg in template)]

    @property
    def single_path(self) -> list[str]:
        return self._path(self.single_path_template)

    @property
    def bulk_path(self) -> list[str]:
        return self._path(self.bulk_path_template)

    def value(self, key: str) -> Any:
        """A raw profile value by dotted key (``timers.response_ms``); KeyError if absent. A reading
        the profile leaves out has its default (``readings.X``)."""
        if key.startswith("readings.") and key.removeprefix("readings.") in self.readings:
            return self.readings[key.removeprefix("readings.")]
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(key)
            node = node[part]
        return node

    def config_schema(self) -> dict[str, Any]:
        try:
            schema: dict[str, Any] = json.loads(self.config_schema_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DefinitionError(
                [Problem(self.source, None, "config_schema", f"cannot load {self.config_schema_path}: {exc}")]
            ) from None
        return schema


def _resolve_schema_path(value: str, profile_dir: Path | None) -> Path | None:
    candidates = []
    if profile_dir is not None:
        candidates.append(profile_dir / value)
    candidates.append(Path(str(resources.files("msgin5g_conformance.schemas").joinpath(value))))
    for c in candidates:
        if c.is_file():
            return c
    return None


def _schema_file_problem(path: Path) -> str | None:
    """Why a schema file cannot be used (not JSON, not a JSON Schema), or None."""
    try:
        schemacheck.file_validator(str(path))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"expected a JSON Schema file, found {path.name} that is not JSON ({exc})"
    except jsonschema.SchemaError as exc:
        return f"expected a JSON Schema file, found {path.name} that is not a valid schema ({exc.message})"
    return None


def _shape_problem(bulk_schema: Path, shape: str, d: dict[str, Any]) -> str | None:
    """The bulk answer schema must describe answers of the shape the SCM-S serves: a sample (one
    2.05 with the profile's document, one 4.04) of that shape must be valid."""
    doc = json.loads(json.dumps(d["scm_s"]["document"]).replace("{node}", "cue1"))
    results = {"cue1.example": {"result": "2.05", "configuration": doc}, "cue9.example": {"result": "4.04"}}
    sample: Any = (
        results if shape == "by-id" else {"ue-configurations": [{"ue-uri": k, **v} for k, v in results.items()]}
    )
    errors = list(schemacheck.file_validator(str(bulk_schema)).iter_errors(sample))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.absolute_path)) or "(document)"
        return (
            f"expected a schema of bulk answers of shape {shape} (bulk_response_shape), found {bulk_schema.name} "
            f"rejecting one ({where}: {e.message})"
        )
    return None


def load_profile(path: str | Path | None = None) -> Profile:
    """Load and validate a profile; ``None`` gives the shipped default."""
    if path is None:
        ref = resources.files("msgin5g_conformance.data").joinpath(DEFAULT_PROFILE)
        text = ref.read_text(encoding="utf-8")
        located = yamlsource.load_text(text, f"<default profile {DEFAULT_PROFILE}>")
        profile_dir = None
    else:
        p = Path(path)
        located = yamlsource.load_file(p)
        text = located.text
        profile_dir = p.parent
    if not isinstance(located.data, dict):
        raise DefinitionError([located.problem([], "a profile must be a mapping")])
    schemacheck.check(located, "profile.schema.json")
    d: dict[str, Any] = located.data
    problems: list[Problem] = []
    codes: set[int] = set()
    for i, c in enumerate(d["relay"]["relayed_codes"]):
        try:
            codes.add(parse_code(c))
        except ValueError as exc:
            problems.append(located.problem(["relay", "relayed_codes", i], str(exc)))
    schema_path = _resolve_schema_path(d["config_schema"], profile_dir)
    if schema_path is None:
        problems.append(
            located.problem(["config_schema"], f"expected a schema file, found no file {d['config_schema']!r}")
        )
    bulk_path = _resolve_schema_path(d["bulk_response_schema"], profile_dir)
    if bulk_path is None:
        problems.append(
            located.problem(
                ["bulk_response_schema"], f"expected a schema file, found no file {d['bulk_response_schema']!r}"
            )
        )
    shape = d.get("bulk_response_shape", "entries")
    for key, path in (("config_schema", schema_path), ("bulk_response_schema", bulk_path)):
        problem = _schema_file_problem(path) if path is not None else None
        if problem is not None:
            problems.append(located.problem([key], problem))
    if not problems and bulk_path is not None and schema_path is not None:
        problem = _shape_problem(bulk_path, shape, d)
        if problem is not None:
            problems.append(located.problem(["bulk_response_schema"], problem))
    if problems:
        raise DefinitionError(problems)
    assert schema_path is not None and bulk_path is not None
    t = d["timers"]
    return Profile(
        name=d["name"],
        source=located.file,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        provisional=frozenset(d.get("provisional", [])),
        port=d["port"],
        port_match=d["port_match"],
        alt_port=d["alt_port"],
        recipient_option=d["recipient_option"]["number"],
        scm_s_address=d["addresses"]["scm_s"],
        client_address_template=d["addresses"]["client"],
        content_format=d["content_format"],
        root_path=tuple(d["api"]["root_path"]),
        val_service_id=d["api"]["val_service_id"],
        single_path_template=tuple(d["api"]["single_path"]),
        bulk_conf_flag=d["api"]["bulk_conf_flag"],
        bulk_path_template=tuple(d["api"]["bulk_path"]),
        query_ue_ids=d["query"]["ue_ids"],
        query_vendor=d["query"]["vendor"],
        query_type=d["query"]["type"],
        list_encoding=d["query"]["list_encoding"],
        relayed_codes=frozenset(codes),
        min_batch=d["bulk_policy"]["min_batch"],
        max_wait_ms=d["bulk_policy"]["max_wait_ms"],
        config_schema_path=schema_path,
        bulk_response_schema_path=bulk_path,
        sut_ue_address=d["addresses"]["sut_ue"],
        scm_document_template=d["scm_s"]["document"],
        scm_forbidden=frozenset(d["scm_s"]["forbidden"]),
        scm_unknown=frozenset(d["scm_s"]["unknown"]),
        block_size=d["scm_s"]["block_size"],
        timers=Timers(
            t["response_ms"],
            t["absence_window_ms"],
            t["ack_timeout_ms"],
            t["max_retransmit"],
            late_window_ms=t.get("late_window_ms", 300),
            # RFC 7252 4.8.2 MAX_TRANSMIT_WAIT with ACK_RANDOM_FACTOR 1, unless the profile says
            ack_bound_ms=t.get("ack_bound_ms", t["ack_timeout_ms"] * (2 ** (t["max_retransmit"] + 1) - 1)),
            sut_max_retransmit=t.get("sut_max_retransmit", 4),
        ),
        raw=d,
        readings={**DEFAULT_READINGS, **d.get("readings", {})},
        bulk_response_shape=d.get("bulk_response_shape", "entries"),
        max_file_bytes=d.get("limits", {}).get("max_file_bytes", yamlsource.MAX_FILE_BYTES),
    )


def condition_holds(have: Any, want: Any) -> bool:
    """An applicability condition on a profile value: a value, a list of allowed values, or
    ``{min: N}`` / ``{max: N}`` (numbers; the loader refuses anything else)."""
    if isinstance(want, list):
        return have in want
    if isinstance(want, dict) and want and set(want) <= {"min", "max"}:
        if isinstance(have, bool) or not isinstance(have, int | float):
            return False
        return ("min" not in want or have >= want["min"]) and ("max" not in want or have <= want["max"])
    return bool(have == want)
