"""A hostile-input corpus against every command path (from vpsgate's own OpenAPI document):
oversized bodies, NULs, deep nesting, unknown and misspelled fields carrying secrets, bad
query values and bad headers. Each request must leave exactly one final audit row, create
no operation, reach Hostinger never, and leave the secret nowhere: not in the database,
not in a log, not in the answer."""

import json
import re
import uuid
from pathlib import Path

import pytest

from vpsgate_e2e import admin_client, close_operations_and_reset_sim, final_audit_rows, sim_requests, sql

SECRET = "Hostile9Canary-Secret"
ROOT = Path(__file__).resolve().parents[2]
IDS = {"id": "1001", "ipAddressId": "2001", "firewallId": "4001", "backupId": "3001", "projectName": "web-app"}


def command_paths():
    document = json.loads((ROOT / "docs/openapi.json").read_text())
    for template, operations in document["paths"].items():
        for method in operations:
            if method in ("post", "put", "delete") and template.startswith("/v1/vps/{id}/"):
                path = re.sub(r"\{(\w+)\}", lambda m: IDS[m.group(1)], template)
                yield method.upper(), path


COMMANDS = sorted(set(command_paths()))

# (name, query, headers, raw body): each one invalid for every command.
CORPUS = [
    ("oversized", "", {}, json.dumps({"hostname": "a.example.com", "password": SECRET, "pad": "x" * 70_000}).encode()),
    ("nul in a value", "", {}, b'{"hostname": "web\\u0000.example.com", "password": "' + SECRET.encode() + b'\\u0000", "confirm": 1001}'),
    ("nul in a name", "", {}, b'{"pass\\u0000word": "' + SECRET.encode() + b'"}'),
    ("deep nesting", "", {}, (b'{"a":' * 200) + b'"' + SECRET.encode() + b'"' + (b"}" * 200)),
    ("unknown field", "", {}, json.dumps({"new_password": SECRET}).encode()),
    ("misspelled field", "", {}, json.dumps({"pasword": SECRET, "hostnme": SECRET, "confirm": 1001}).encode()),
    ("not an object", "", {}, json.dumps([SECRET, {"password": SECRET}]).encode()),
    ("not json", "", {}, b"password=" + SECRET.encode()),
    ("invalid utf-8", "", {}, b'{"hostname": "\xff\xfe' + SECRET.encode() + b'"}'),
    ("dry run misspelled", "validate_only=1", {}, json.dumps({"x": SECRET}).encode()),
    ("unknown query", "debug=1", {}, json.dumps({"q": SECRET}).encode()),
    ("repeated query", "validate_only=false&validate_only=true", {}, json.dumps({"y": SECRET}).encode()),
    ("short key", "", {"Idempotency-Key": "short"}, json.dumps({"z": SECRET}).encode()),
    ("quoted key", "", {"Idempotency-Key": '"abc"defghij"'}, json.dumps({"z": SECRET}).encode()),
    ("key with spaces", "", {"Idempotency-Key": "a key with spaces"}, json.dumps({"z": SECRET}).encode()),
]


@pytest.fixture(scope="module")
def hostile(stack):
    return admin_client(stack, "hostile")


@pytest.fixture(scope="module", autouse=True)
def clean_simulator(stack):
    close_operations_and_reset_sim(stack)
    yield
    # Nothing of the whole corpus reached Hostinger, and its secret is nowhere.
    assert sim_requests(stack) == []
    everything = sql(stack, """SELECT coalesce(string_agg(t::text, ' '), '') FROM (
        SELECT a::text AS t FROM audit_events a UNION ALL SELECT k::text FROM idempotency_keys k
        UNION ALL SELECT o::text FROM operations o UNION ALL SELECT d::text FROM drift_events d) x""")
    assert SECRET not in everything
    logs = "".join(path.read_text(errors="replace") for path in stack.run_dir.glob("*.log"))
    assert SECRET not in logs


@pytest.mark.parametrize("method,path", COMMANDS)
def test_every_hostile_request_is_refused_with_one_final_row_and_nothing_spent(stack, hostile, method, path):
    for name, query, headers, body in CORPUS:
        correlation = f"hostile-{uuid.uuid4().hex[:12]}"
        all_headers = {"Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": correlation} | headers
        url = path + (f"?{query}" if query else "")
        status, _, raw = hostile.request(method, url, raw_body=body, headers=all_headers)
        assert status in (400, 413, 422), (name, method, path, status, raw)
        assert SECRET.encode() not in raw, (name, path)
        rows = final_audit_rows(stack, correlation)
        assert rows == [f"invalid|{status}"], (name, method, path, rows)
        assert sql(stack, f"SELECT count(*) FROM operations WHERE correlation_id = '{correlation}'") == "0", (name, path)
        assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{all_headers['Idempotency-Key']}'") == "0"
