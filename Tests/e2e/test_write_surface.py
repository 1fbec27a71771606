"""The whole write surface (docs/design.md#resources-and-grants): every write operation of
Hostinger's VPS OpenAPI document has a row in docs/api.md's table, naming the vpsgate
command that makes it (one vpsgate really has: it is in vpsgate's own OpenAPI document and
makes exactly that Hostinger call) or a documented refusal."""

import json
import re
from pathlib import Path

from openapi_check import DOCUMENT_PATH

ROOT = Path(__file__).resolve().parents[2]
WRITES = ("post", "put", "patch", "delete")
ROW = re.compile(r"^\| `(POST|PUT|PATCH|DELETE) (/[^`]*)` \| `([A-Za-z0-9_]+)` \| (.+) \|$")


def hostinger_writes():
    document = json.loads(DOCUMENT_PATH.read_text())
    return {(method.upper(), path.removeprefix("/api/vps/v1"), operation["operationId"])
            for path, item in document["paths"].items() for method, operation in item.items() if method in WRITES}


def api_doc_rows():
    rows = {}
    for line in (ROOT / "docs/api.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[(match.group(1), match.group(2), match.group(3))] = match.group(4).strip()
    return rows


def vpsgate_commands():
    """Command names, from vpsgate's own OpenAPI document (operationId: the name with _ for .)."""
    document = json.loads((ROOT / "docs/openapi.json").read_text())
    return {operation["operationId"] for path, item in document["paths"].items() for method, operation in item.items()
            if method in WRITES and not path.startswith(("/v1/operations/", "/v1/batches"))}  # decisions and batches: not commands


def test_every_hostinger_write_is_mapped_to_a_command_or_a_documented_refusal():
    writes = hostinger_writes()
    assert len(writes) == 41
    rows = api_doc_rows()
    missing = sorted(w for w in writes if w not in rows)
    assert not missing, f"Hostinger writes with no row in docs/api.md: {missing}"
    stray = sorted(r for r in rows if r not in writes)
    assert not stray, f"docs/api.md rows for operations Hostinger's document does not have: {stray}"
    commands = vpsgate_commands()
    for write in writes:
        answer = rows[write]
        named = re.fullmatch(r"`([a-z_.]+)`", answer)
        if named:
            assert named.group(1).replace(".", "_") in commands, f"{write}: vpsgate has no command {named.group(1)}"
        else:
            assert answer.startswith("refused:") and len(answer) > len("refused: ") + 10, f"{write}: neither a command nor a refusal: {answer}"


def test_each_command_names_one_hostinger_write_and_every_command_is_in_the_table():
    rows = api_doc_rows()
    named = [re.fullmatch(r"`([a-z_.]+)`", answer).group(1) for answer in rows.values() if re.fullmatch(r"`([a-z_.]+)`", answer)]
    assert len(named) == len(set(named)), "a command is named for two Hostinger operations"
    assert {name.replace(".", "_") for name in named} == vpsgate_commands()


# MARK: - The whole read surface

READ_ROW = re.compile(r"^\| `GET (/[^`]*)` \| `([A-Za-z0-9_]+)` \| `GET (/v1/[^`]*)` \|$")
# Hostinger's names for the id a vpsgate path calls {id}.
HOSTINGER_IDS = re.compile(r"\{(virtualMachineId|firewallId|templateId|postInstallScriptId)\}")


def hostinger_reads():
    document = json.loads(DOCUMENT_PATH.read_text())
    return {(path.removeprefix("/api/vps/v1"), operation["operationId"])
            for path, item in document["paths"].items() for method, operation in item.items() if method == "get"}


def api_doc_read_rows():
    rows = {}
    for line in (ROOT / "docs/api.md").read_text().splitlines():
        match = READ_ROW.match(line)
        if match:
            rows[(match.group(1), match.group(2))] = match.group(3)
    return rows


def catalogue_reads():
    """vpsgate read ⇒ the Hostinger read it calls, from docs/catalogue.md (generated from the
    catalogue of reads, and kept current by test_commands.py)."""
    reads = {}
    for line in (ROOT / "docs/catalogue.md").read_text().split("## Reads", 1)[1].splitlines():
        match = re.match(r"^\| `GET (/v1/[^`]*)` \| [^|]+ \| `GET /api/vps/v1([^`?]*)(?:\?[^`]*)?` \|", line)
        if match:
            reads[match.group(1)] = match.group(2)
    return reads


def test_every_hostinger_read_is_served_by_the_vpsgate_read_that_calls_it():
    reads = hostinger_reads()
    assert len(reads) == 21
    rows = api_doc_read_rows()
    missing = sorted(r for r in reads if r not in rows)
    assert not missing, f"Hostinger reads with no row in docs/api.md: {missing}"
    stray = sorted(r for r in rows if r not in reads)
    assert not stray, f"docs/api.md rows for reads Hostinger's document does not have: {stray}"
    document = json.loads((ROOT / "docs/openapi.json").read_text())
    served = {path for path, item in document["paths"].items() if "get" in item}
    calls = catalogue_reads()
    for (path, operation_id), vpsgate in rows.items():
        assert vpsgate in served, f"{operation_id}: vpsgate serves no GET {vpsgate}"
        assert calls.get(vpsgate) == HOSTINGER_IDS.sub("{id}", path), f"{operation_id}: GET {vpsgate} calls {calls.get(vpsgate)}"
    assert len(set(rows.values())) == len(rows), "a vpsgate read is named for two Hostinger reads"
