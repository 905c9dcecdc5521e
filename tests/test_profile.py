"""Tests for the protocol profile: the shipped defaults, custom files and located errors."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from msgin5g_conformance.errors import DefinitionError
from msgin5g_conformance.spec.templates import Bindings, TemplateError
from msgin5g_conformance.world.profile import Profile, load_profile

DEFAULT_TEXT = resources.files("msgin5g_conformance.data").joinpath("default-profile.yaml").read_text("utf-8")
MAX_WAIT = f"max_wait_ms: {load_profile().max_wait_ms}"  # as written in the default file


def mutate(text: str, old: str, new: str) -> str:
    """Replace the single occurrence of ``old`` (the test is wrong if it is not there once)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def write(folder: Path, text: str, name: str = "lab-profile.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def profile_error(path: Path) -> str:
    """The message of the DefinitionError that loading the profile at ``path`` must raise."""
    with pytest.raises(DefinitionError) as info:
        load_profile(path)
    return str(info.value)


@pytest.fixture(scope="module")
def default() -> Profile:
    return load_profile()


def test_default_profile_network_values(default: Profile) -> None:
    """The default profile has port 65401 (both directions), alt port 5683 and option 65003."""
    assert default.name == "default"
    assert default.port == 65401
    assert default.port_match == "both"
    assert default.alt_port == 5683
    assert default.recipient_option == 65003
    assert default.content_format == 50


def test_default_relayed_codes_are_code_bytes(default: Profile) -> None:
    """Relayed codes 2.05, 4.03, 4.04 are parsed to the code bytes 0x45, 0x83, 0x84."""
    assert default.relayed_codes == frozenset({0x45, 0x83, 0x84})


def test_default_uri_paths_substitute_service_id_and_flag(default: Profile) -> None:
    """Single and bulk Uri-Path lists have {valServiceId} and {bulkConfFlag} filled in."""
    single = ["su-uc", "v1", "val-services", "msgin5g-svc", "ue-configurations"]
    assert default.single_path == single
    assert default.bulk_path == [*single, "bulk-conf"]


def test_default_addresses_timers_and_provisional_items(default: Profile) -> None:
    """Addresses, timers, query names and the provisional list come from the default file."""
    assert default.scm_s_address == "scm-s.msgin5g.example"
    assert default.client_address("cue3") == "cue3.msgin5g.example"
    assert default.address_of("scms") == default.address_of("scms_alt") == "scm-s.msgin5g.example"
    assert default.address_of("cue1") == "cue1.msgin5g.example"
    assert (default.timers.response_ms, default.timers.absence_window_ms) == (1000, 30)
    assert (default.timers.ack_timeout_ms, default.timers.max_retransmit) == (150, 2)
    query = (default.query_ue_ids, default.query_vendor, default.query_type)
    assert query == ("ue-uri", "ue-vendor", "ue-type")
    assert default.list_encoding == "repeat"
    assert (default.min_batch, default.max_wait_ms) == (50, 1500)
    assert default.provisional == {
        "recipient_option",
        "addresses",
        "port_match",
        "bulk_uri",
        "query",
        "config_schema",
        "bulk_response_schema",
        "bulk_policy",
        "readings",
    }


def test_default_sut_ue_address(default: Profile) -> None:
    """addresses.sut_ue is the Constrained UE under test: what ${addr.sut} and the node sut.cue stand for."""
    assert default.sut_ue_address == "ue-under-test.msgin5g.example"
    assert default.address_of("sut") == default.address_of("sut.cue") == "ue-under-test.msgin5g.example"
    assert Bindings(default, Path()).resolve("${addr.sut}") == "ue-under-test.msgin5g.example"


def test_default_bulk_policy_and_bulk_response_schema(default: Profile) -> None:
    """bulk_policy is min_batch 50 / max_wait_ms 1500; bulk_response_schema is the shipped stand-in schema."""
    assert default.value("bulk_policy") == {"min_batch": 50, "max_wait_ms": 1500}
    assert default.bulk_response_schema_path.name == "bulk-response.schema.json"
    assert default.bulk_response_schema_path.is_file()


def test_default_scm_s_answers(default: Profile) -> None:
    """scm_s: a document per node with {node} filled in, 4.03 for cue8, 4.04 for cue9, Block2 size 1024."""
    assert default.document_for("cue3") == {
        "MSGin5G-Server-address": "coap://msgin5g-server.example:65401",
        "MSGin5G-UE-Service-id": "svc-cue3",
        "Segment-size": 1024,
    }
    assert [default.scm_answer_for(n) for n in ("cue1", "cue8", "cue9")] == ["document", "forbidden", "unknown"]
    assert (default.scm_forbidden, default.scm_unknown) == ({"cue8"}, {"cue9"})
    assert default.block_size == 1024


def test_default_config_schema_is_the_shipped_one(default: Profile) -> None:
    """config_schema names the shipped ue-config schema, which loads and requires the two mandatory keys."""
    assert default.config_schema_path.name == "ue-config.schema.json"
    schema = default.config_schema()
    assert schema["required"] == ["MSGin5G-Server-address", "MSGin5G-UE-Service-id"]


def test_value_reads_dotted_keys(default: Profile) -> None:
    """Profile.value (used by ${profile.KEY}) reads nested keys and raises KeyError for unknown ones."""
    assert default.value("timers.response_ms") == 1000
    assert default.value("port_match") == "both"
    with pytest.raises(KeyError):
        default.value("timers.no_such_timer")
    with pytest.raises(KeyError):
        default.value("port.deeper")


def test_custom_profile_loads_and_changes_sha256(tmp_path: Path, default: Profile) -> None:
    """A profile file of one's own loads, is named in results by its name and has its own sha256."""
    text = mutate(DEFAULT_TEXT, "name: default", "name: lab")
    text = mutate(text, "port_match: both ", "port_match: source")
    path = write(tmp_path, text)
    lab = load_profile(path)
    assert lab.name == "lab"
    assert lab.source == str(path)
    assert lab.port_match == "source"
    assert lab.sha256 != default.sha256
    assert len(lab.sha256) == 64


def test_same_text_gives_same_sha256(tmp_path: Path, default: Profile) -> None:
    """A byte-identical copy of the default has the default's sha256 (the hash is of the text)."""
    assert load_profile(write(tmp_path, DEFAULT_TEXT)).sha256 == default.sha256


def test_custom_uri_template_and_client_address(tmp_path: Path) -> None:
    """root_path, valServiceId, bulkConfFlag and the client template all come from the file."""
    text = mutate(DEFAULT_TEXT, "root_path: []", "root_path: [api]")
    text = mutate(text, "val_service_id: msgin5g-svc", "val_service_id: svc9")
    text = mutate(text, "bulk_conf_flag: bulk-conf", "bulk_conf_flag: all")
    text = mutate(text, 'client: "{node}.msgin5g.example"', 'client: "urn:lab:{node}"')
    lab = load_profile(write(tmp_path, text))
    assert lab.single_path == ["api", "su-uc", "v1", "val-services", "svc9", "ue-configurations"]
    assert lab.bulk_path == ["api", "su-uc", "v1", "val-services", "svc9", "ue-configurations", "all"]
    assert lab.client_address("cue3") == "urn:lab:cue3"


def test_missing_timers_is_located(tmp_path: Path) -> None:
    """A profile without `timers` is refused with a located message naming `timers`."""
    head, _, _ = DEFAULT_TEXT.partition("timers:\n")
    path = write(tmp_path, head)
    first_key = line_of(head, "name: default")
    assert profile_error(path) == f"{path}:{first_key}: missing required key 'timers'"


def test_missing_nested_value_is_located(tmp_path: Path) -> None:
    """A missing key inside a section names the section (at its key's line) and the missing key."""
    text = mutate(DEFAULT_TEXT, "  max_retransmit: 2\n", "")
    path = write(tmp_path, text)
    where = f"{path}:{line_of(text, 'timers:')}"
    assert profile_error(path) == f"{where}: timers: missing required key 'max_retransmit'"


def test_wrong_type_is_located(tmp_path: Path) -> None:
    """A port given as text is refused at its line with expected and found."""
    text = mutate(DEFAULT_TEXT, "port: 65401 ", 'port: "65401"')
    path = write(tmp_path, text)
    where = f"{path}:{line_of(text, 'port: ')}"
    assert profile_error(path) == f"{where}: port: expected an integer, found '65401'"


def test_bad_enum_is_located(tmp_path: Path) -> None:
    """port_match outside source/destination/both is refused with the allowed values."""
    text = mutate(DEFAULT_TEXT, "port_match: both ", "port_match: either")
    path = write(tmp_path, text)
    assert profile_error(path) == (
        f"{path}:{line_of(text, 'port_match: either')}: port_match: "
        "expected one of source, destination, both, found 'either'"
    )


def test_relayed_code_2_5_is_located(tmp_path: Path) -> None:
    """A relayed code written "2.5" is refused at its line, and the message quotes 2.5."""
    text = mutate(DEFAULT_TEXT, '["2.05", "4.03", "4.04"]', '["2.05", "2.5"]')
    path = write(tmp_path, text)
    assert profile_error(path) == (
        f"{path}:{line_of(text, 'relayed_codes')}: relay.relayed_codes[1]: "
        "expected text matching ^[2-5]\\.[0-3][0-9]$, found '2.5'"
    )


def test_relayed_code_with_detail_over_31_is_located(tmp_path: Path) -> None:
    """Code "2.39" fits the schema pattern but is no CoAP code; the second pass locates it."""
    text = mutate(DEFAULT_TEXT, '["2.05", "4.03", "4.04"]', '["2.05", "2.39"]')
    path = write(tmp_path, text)
    assert profile_error(path) == (
        f"{path}:{line_of(text, 'relayed_codes')}: relay.relayed_codes[1]: "
        "'2.39' is not a CoAP code: the detail part is 00..31 (use c.dd such as 2.05, or a name such as GET)"
    )


def test_missing_config_schema_file_is_located(tmp_path: Path) -> None:
    """config_schema naming a file that exists neither beside the profile nor in the package is located."""
    text = mutate(DEFAULT_TEXT, "config_schema: ue-config.schema.json", "config_schema: nowhere.json")
    path = write(tmp_path, text)
    assert profile_error(path) == (
        f"{path}:{line_of(text, 'config_schema: nowhere')}: config_schema: "
        "expected a schema file, found no file 'nowhere.json'"
    )


def test_config_schema_beside_the_profile(tmp_path: Path) -> None:
    """config_schema is looked up first relative to the profile file."""
    (tmp_path / "my-config.schema.json").write_text('{"type": "object", "required": ["x"]}', encoding="utf-8")
    text = mutate(DEFAULT_TEXT, "config_schema: ue-config", "config_schema: my-config")
    lab = load_profile(write(tmp_path, text))
    assert lab.config_schema_path == tmp_path / "my-config.schema.json"
    assert lab.config_schema() == {"type": "object", "required": ["x"]}


def test_client_template_needs_node_placeholder(tmp_path: Path) -> None:
    """A client address template without {node} is refused, in the words of the schema's x-expected."""
    text = mutate(DEFAULT_TEXT, 'client: "{node}.msgin5g.example"', "client: cue.example")
    path = write(tmp_path, text)
    assert profile_error(path) == (
        f"{path}:{line_of(text, 'client: cue.example')}: addresses.client: "
        "expected a template containing {node}, found 'cue.example'"
    )


def test_unknown_key_is_located(tmp_path: Path) -> None:
    """A misspelt section is refused rather than ignored."""
    text = DEFAULT_TEXT + "timer:\n  response_ms: 5\n"
    path = write(tmp_path, text)
    message = profile_error(path)
    where = f"{path}:{line_of(text, 'timer:')}"
    assert message.startswith(f"{where}: timer: unknown key 'timer'; expected one of ")


def test_unknown_provisional_item_is_located(tmp_path: Path) -> None:
    """Only profile items can be listed as provisional."""
    text = mutate(DEFAULT_TEXT, "  - bulk_policy ", "  - bulk_polcy ")
    path = write(tmp_path, text)
    assert profile_error(path) == (
        f"{path}:{line_of(text, 'bulk_polcy')}: provisional[7]: expected one of port, port_match, "
        "recipient_option, addresses, content_format, single_uri, bulk_uri, query, relay, bulk_policy, "
        "config_schema, bulk_response_schema, scm_s, readings, found 'bulk_polcy'"
    )


def test_profile_that_is_not_a_mapping(tmp_path: Path) -> None:
    """A profile that is a list is refused at line 1."""
    path = write(tmp_path, "- port: 65401\n")
    assert profile_error(path) == f"{path}:1: a profile must be a mapping"


def test_missing_profile_file(tmp_path: Path) -> None:
    """A profile path that does not exist is a DefinitionError naming it, not an OSError."""
    path = tmp_path / "absent.yaml"
    assert profile_error(path).startswith(f"{path}: cannot read: ")


# --------------------------------------------------------------------------- #
# addresses.sut_ue, bulk_policy, bulk_response_schema, scm_s
# --------------------------------------------------------------------------- #


def test_scm_s_and_bulk_policy_of_a_custom_profile(tmp_path: Path) -> None:
    """A lab profile's own sut_ue, bulk_policy, document template, refused/unknown lists and block size are used."""
    text = mutate(DEFAULT_TEXT, "sut_ue: ue-under-test.msgin5g.example", "sut_ue: urn:lab:dut")
    text = mutate(text, "min_batch: 50 ", "min_batch: 10 ")
    text = mutate(text, MAX_WAIT, "max_wait_ms: 900")
    text = mutate(text, 'MSGin5G-UE-Service-id: "svc-{node}"', 'MSGin5G-UE-Service-id: "lab-{node}"')
    text = mutate(text, "forbidden: [cue8]", "forbidden: [cue2, cue3]")
    text = mutate(text, "unknown: [cue9]", "unknown: []")
    text = mutate(text, "block_size: 1024 ", "block_size: 64 ")
    lab = load_profile(write(tmp_path, text))
    assert lab.address_of("sut") == "urn:lab:dut"
    assert (lab.min_batch, lab.max_wait_ms) == (10, 900)
    assert lab.document_for("cue7")["MSGin5G-UE-Service-id"] == "lab-cue7"
    assert [lab.scm_answer_for(n) for n in ("cue2", "cue3", "cue8", "cue9")] == [
        "forbidden",
        "forbidden",
        "document",
        "document",
    ]
    assert lab.block_size == 64


def test_bulk_response_schema_beside_the_profile(tmp_path: Path) -> None:
    """bulk_response_schema, like config_schema, is looked up first relative to the profile file."""
    (tmp_path / "my-bulk.schema.json").write_text('{"type": "object"}', encoding="utf-8")
    text = mutate(DEFAULT_TEXT, "bulk_response_schema: bulk-response", "bulk_response_schema: my-bulk")
    lab = load_profile(write(tmp_path, text))
    assert lab.bulk_response_schema_path == tmp_path / "my-bulk.schema.json"


def test_config_variable_serves_the_profile_document(default: Profile) -> None:
    """${config.NODE} is scm_s.document for the node; a node the profile refuses or does not know has none."""
    bindings = Bindings(default, Path())
    assert bindings.resolve("${config.cue4}") == default.document_for("cue4")
    assert bindings.resolve({"json": "${config.cue4}"})["json"]["MSGin5G-UE-Service-id"] == "svc-cue4"
    for node, kind in (("cue8", "forbidden"), ("cue9", "unknown")):
        with pytest.raises(TemplateError) as info:
            bindings.resolve(f"${{config.{node}}}")
        assert str(info.value) == f"the SCM-S serves no document for {node!r} (it is {kind})"


def test_preconditions_configurations_override_the_profile(default: Profile) -> None:
    """A case's preconditions.configurations overrides scm_s: cue8 served a document, cue1 refused."""
    bindings = Bindings(default, Path(), configurations={"cue8": "document", "cue1": "forbidden"})
    assert bindings.resolve("${config.cue8}")["MSGin5G-UE-Service-id"] == "svc-cue8"
    with pytest.raises(TemplateError, match=r"^the SCM-S serves no document for 'cue1' \(it is forbidden\)$"):
        bindings.resolve("${config.cue1}")


DOCUMENT_BLOCK = DEFAULT_TEXT[DEFAULT_TEXT.index("  document:") : DEFAULT_TEXT.index("  forbidden:")]

# (test id, text to replace, replacement, text on the line the error must name, message after "file:line: ")
# fmt: off
NEW_KEYS_BROKEN = [
    ("missing-sut-ue", "  sut_ue: ue-under-test.msgin5g.example", "", "addresses:",
     "addresses: missing required key 'sut_ue'"),
    ("min-batch-zero", "min_batch: 50 ", "min_batch: 0 ", "min_batch:",
     "bulk_policy.min_batch: expected a number with minimum 1, found number 0"),
    ("max-wait-text", MAX_WAIT, "max_wait_ms: soon", "max_wait_ms:",
     "bulk_policy.max_wait_ms: expected an integer, found 'soon'"),
    ("bulk-policy-unknown-key", f"  {MAX_WAIT}", f"  {MAX_WAIT}\n  min_wait_ms: 10", "min_wait_ms",
     "bulk_policy.min_wait_ms: unknown key 'min_wait_ms'; expected one of max_wait_ms, min_batch"),
    ("missing-bulk-schema-file", "bulk_response_schema: bulk-response.schema.json",
     "bulk_response_schema: nowhere.json", "bulk_response_schema:",
     "bulk_response_schema: expected a schema file, found no file 'nowhere.json'"),
    ("block-size-100", "block_size: 1024 ", "block_size: 100 ", "block_size:",
     "scm_s.block_size: expected a Block2 size: 16, 32, ..., 1024 (RFC 7959), found number 100"),
    ("forbidden-not-a-node", "forbidden: [cue8]", "forbidden: [cue0]", "forbidden:",
     "scm_s.forbidden[0]: expected text matching ^cue[1-9][0-9]?$, found 'cue0'"),
    ("document-not-a-mapping", DOCUMENT_BLOCK, "  document: []\n", "document:",
     "scm_s.document: expected a mapping, found a list of 0"),
    ("missing-unknown", "  unknown: [cue9]", "", "scm_s:  ", "scm_s: missing required key 'unknown'"),
]
# fmt: on


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"), [b[1:] for b in NEW_KEYS_BROKEN], ids=[b[0] for b in NEW_KEYS_BROKEN]
)
def test_new_profile_keys_are_located(tmp_path: Path, old: str, new: str, needle: str, message: str) -> None:
    """A mistake in addresses.sut_ue, bulk_policy, bulk_response_schema or scm_s is one located message."""
    text = mutate(DEFAULT_TEXT, old, new)
    path = write(tmp_path, text)
    assert profile_error(path) == f"{path}:{line_of(text, needle)}: {message}"


def test_missing_scm_s_section_is_located(tmp_path: Path) -> None:
    """A profile written before scm_s existed is refused with the missing key named, not half-loaded."""
    head, _, tail = DEFAULT_TEXT.partition("\nscm_s:")
    text = head + "\ntimers:" + tail.partition("\ntimers:")[2]
    assert "block_size" not in text and "response_ms" in text
    path = write(tmp_path, text)
    assert profile_error(path) == f"{path}:{line_of(text, 'name: default')}: missing required key 'scm_s'"


def test_empty_sut_ue_is_located_in_house_style(tmp_path: Path) -> None:
    """An empty addresses.sut_ue is refused at its line as `expected ..., found ''`."""
    text = mutate(DEFAULT_TEXT, "sut_ue: ue-under-test.msgin5g.example", 'sut_ue: ""')
    path = write(tmp_path, text)
    message = profile_error(path)
    assert message.startswith(f"{path}:{line_of(text, 'sut_ue:')}: addresses.sut_ue: expected ")
    assert message.endswith(", found ''")


# --------------------------------------------------------------------------- #
# docs/profile.md tells the truth about the defaults
# --------------------------------------------------------------------------- #

PROFILE_DOC = (Path(__file__).resolve().parents[1] / "docs" / "profile.md").read_text(encoding="utf-8")
DOC_DEFAULTS = re.findall(r"^\| `([a-z_.]+)` \| `(.+?)` \|", PROFILE_DOC, flags=re.MULTILINE)


def test_profile_doc_tables_cover_every_key(default: Profile) -> None:
    """docs/profile.md has a row for every leaf key of the default profile (name, description, provisional aside)."""

    def leaves(node: object, prefix: str = "") -> set[str]:
        if isinstance(node, dict) and prefix != "scm_s.document.":  # the document is one value
            return {k for key, v in node.items() for k in leaves(v, f"{prefix}{key}.")}
        return {prefix[:-1]}

    documented = {key for key, _ in DOC_DEFAULTS}
    assert leaves(default.raw) - {"description", "provisional"} <= documented


@pytest.mark.parametrize(("key", "shown"), DOC_DEFAULTS, ids=[key for key, _ in DOC_DEFAULTS])
def test_profile_doc_default_is_the_shipped_value(default: Profile, key: str, shown: str) -> None:
    """Each default docs/profile.md shows in its key tables is the value of the shipped default profile."""
    assert yaml.safe_load(shown) == default.value(key)
