"""The tester's SCM-S: answers per UE id, block-wise above one block, and refuses to serve
documents that break the profile's schemas (a harness set-up error, never a SUT verdict)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from msgin5g_conformance.engine.session import Session
from msgin5g_conformance.engine.verdict import Verdict
from msgin5g_conformance.roles.scms import ScmServer
from msgin5g_conformance.spec.loader import load_testcase
from msgin5g_conformance.wire.codec import CoapMessage
from msgin5g_conformance.wire.numbers import Code, MessageType, OptionNumber, decode_uint, encode_uint
from msgin5g_conformance.world.profile import load_profile
from sut_adapters.registry import make_adapter

from .conftest import DEFAULT_PROFILE, ROOT, TESTCASES

PROFILE = load_profile()


def node_for(ue_id: str) -> str | None:
    head = ue_id.split(".", 1)[0]
    return head if head.startswith("cue") else None


def bulk_get(ids: list[str], block: int | None = None) -> CoapMessage:
    options = [(OptionNumber.URI_PATH, s.encode()) for s in PROFILE.bulk_path]
    options += [(OptionNumber.URI_QUERY, f"ue-uri={i}".encode()) for i in ids]
    if block is not None:
        options.append((OptionNumber.BLOCK2, encode_uint(block)))
    return CoapMessage(MessageType.CON, Code.GET, 1, b"\x01", tuple(sorted(options, key=lambda o: o[0])))


def test_bulk_answer_has_one_entry_per_id_with_its_own_result() -> None:
    """cue1 gets its document, cue8 (profile: forbidden) 4.03, cue9 (unknown) 4.04, a stranger 4.04."""
    scm = ScmServer(PROFILE, node_for)
    answer = json.loads(scm.bulk_answer(["cue1.msgin5g.example", "cue8.msgin5g.example", "cue9.msgin5g.example",
                                         "someone.else"]))  # fmt: skip
    entries = answer["ue-configurations"]
    assert [e["result"] for e in entries] == ["2.05", "4.03", "4.04", "4.04"]
    assert entries[0]["configuration"] == PROFILE.document_for("cue1")
    assert all("configuration" not in e for e in entries[1:])


def test_large_answer_goes_block_wise_and_reassembles() -> None:
    """Fifty documents exceed one 1024-byte block: Block2 with Size2 first, M=0 on the last block."""
    scm = ScmServer(PROFILE, node_for)
    ids = [f"cue{i}.msgin5g.example" for i in range(1, 51)]
    whole = scm.bulk_answer(ids)
    received, num = b"", 0
    while True:
        options, chunk = scm._block(bulk_get(ids, None if num == 0 else (num << 4) | 6), [], whole)
        block = decode_uint(dict(options)[OptionNumber.BLOCK2])
        assert block >> 4 == num and block & 7 == 6
        if num == 0:
            assert decode_uint(dict(options)[OptionNumber.SIZE2]) == len(whole)
        received += chunk
        if not block & 8:
            break
        num += 1
    assert received == whole and num == (len(whole) - 1) // 1024


def test_invalid_document_is_a_setup_error_not_a_sut_failure(tmp_path: Path) -> None:
    """A profile whose served document lacks a required field gives verdict error, with the reason."""
    data = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    del data["scm_s"]["document"]["MSGin5G-UE-Service-id"]
    data["config_schema"] = str(ROOT / "msgin5g_conformance" / "schemas" / "ue-config.schema.json")
    data["bulk_response_schema"] = str(ROOT / "msgin5g_conformance" / "schemas" / "bulk-response.schema.json")
    path = tmp_path / "broken-documents.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    profile = load_profile(path)
    case = load_testcase(TESTCASES / "gateway" / "GW-BULK-004.yaml", profile)
    with Session(profile, make_adapter("reference"), pcap_dir=tmp_path) as session:
        result = session.run_case(case)
    assert result.verdict is Verdict.ERROR
    assert "invalid configuration document" in result.reason
    assert "MSGin5G-UE-Service-id" in result.reason
