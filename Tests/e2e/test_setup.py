"""VM setup (docs/design.md#resources-and-grants): a command Hostinger answers synchronously with the VM. Its
operation is terminal at once with the VM in `result` (kept, replayed, in the event); the
exact call and body; 403 without vps:setup, 404 outside the grant, 422 with nothing sent;
a VM not in state initial is Hostinger's 422; the password never stored."""

import json
import uuid

import pytest

from vpsgate_e2e import VM, Client, close_operations_and_reset_sim, sim_requests, sql

PASSWORD = "Correct7Horse-Battery"


@pytest.fixture(scope="module")
def users(stack):
    stack.grant("ada", "*", "admin")
    stack.grant("otto", "*", "operator")
    stack.grant("olaf", "1003", "admin")
    return {name: Client(stack, stack.create_token(name)) for name in ("ada", "otto", "olaf")}


@pytest.fixture(autouse=True)
def fresh(stack):
    close_operations_and_reset_sim(stack, action_delay_ms=150)
    yield


def test_setup_ends_at_once_with_the_vm_in_result(stack, users):
    body = {"template_id": 1130, "data_center_id": 19, "password": PASSWORD, "hostname": "new.example.com", "enable_backups": False}
    key = str(uuid.uuid4())
    status, headers, operation = users["ada"].json("POST", "/v1/vps/1004/setup", body=body, key=key)
    assert status == 202, operation
    assert operation["state"] == "succeeded" and operation["command"] == "vps.setup"
    assert operation["result"]["id"] == 1004 and operation["result"]["state"] in ("creating", "running")
    calls = [c for c in sim_requests(stack) if c["method"] != "GET"]
    assert [(c["method"], c["path"]) for c in calls] == [("POST", f"{VM}/1004/setup")]
    assert calls[0]["body"] == body
    status, _, read = users["ada"].json("GET", headers["Location"])
    assert status == 200 and read["result"] == operation["result"] and read["state"] == "succeeded"
    # A retry with the key replays the answer; nothing is sent again.
    status, _, replay = users["ada"].json("POST", "/v1/vps/1004/setup", body=body, key=key)
    assert status == 202 and replay == operation
    assert len([c for c in sim_requests(stack) if c["method"] != "GET"]) == 1
    # The event of its end carries the result too.
    data = json.loads(sql(stack, f"SELECT data FROM events WHERE operation_id = '{operation['id']}' AND type = 'operation.succeeded'"))
    assert data["operation"]["result"]["id"] == 1004
    # The password went to Hostinger, and nowhere else.
    for table in ("audit_events", "operations", "events"):
        assert sql(stack, f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%{PASSWORD}%'") == "0", table
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE position('{PASSWORD}'::bytea in response_body) > 0") == "0"


def test_an_operator_cannot_set_up_and_outside_the_grant_it_is_not_found(stack, users):
    body = {"template_id": 1130, "data_center_id": 19}
    status, _, problem = users["otto"].json("POST", "/v1/vps/1004/setup", body=body, key=str(uuid.uuid4()))
    assert status == 403 and problem["type"].endswith("#forbidden")
    status, _, problem = users["olaf"].json("POST", "/v1/vps/1004/setup", body=body, key=str(uuid.uuid4()))
    assert status == 404 and problem["type"].endswith("#not-found")
    assert [c for c in sim_requests(stack) if c["method"] != "GET"] == []


@pytest.mark.parametrize("body,field", [
    ({"data_center_id": 19}, "template_id"),
    ({"template_id": 1130}, "data_center_id"),
    ({"template_id": 1130, "data_center_id": "19"}, "data_center_id"),
    ({"template_id": 1130, "data_center_id": 19, "install_monarx": "yes"}, "install_monarx"),
    ({"template_id": 1130, "data_center_id": 19, "password": "weak"}, "password"),
    ({"template_id": 1130, "data_center_id": 19, "hostname": "not a name"}, "hostname"),
    ({"template_id": 1130, "data_center_id": 19, "ns1": "dns.google"}, "ns1"),
    ({"template_id": 1130, "data_center_id": 19, "public_key": {"name": "k", "key": "ssh-ed25519 AAAA"}}, "public_key"),
])
def test_invalid_input_is_422_and_nothing_is_sent(stack, users, body, field):
    status, _, problem = users["ada"].json("POST", "/v1/vps/1004/setup", body=body, key=str(uuid.uuid4()))
    assert status == 422 and field in problem["errors"], problem
    assert sim_requests(stack) == []


def test_a_vm_that_is_not_initial_is_hostingers_422_and_the_operation_fails(stack, users):
    status, _, problem = users["ada"].json("POST", "/v1/vps/1001/setup", body={"template_id": 1130, "data_center_id": 19},
                                           key=str(uuid.uuid4()))
    assert status == 422 and problem["type"].endswith("#upstream-rejected"), problem
    row = sql(stack, "SELECT state || ' ' || coalesce(result::text, '-') FROM operations WHERE command = 'vps.setup' AND vps_id = 1001")
    assert row == "failed -"


def test_the_catalogue_reads_need_a_principal_and_no_grant(stack, users):
    stack.create_token("nobody")  # a principal with no grant at all
    nobody = Client(stack, stack.create_token("nobody"))
    status, _, templates = nobody.json("GET", "/v1/templates")
    assert status == 200 and any(t["id"] == 1130 for t in templates), templates
    status, _, template = nobody.json("GET", "/v1/templates/1130")
    assert status == 200 and template["id"] == 1130
    status, _, problem = nobody.json("GET", "/v1/templates/999999")
    assert status == 404 and problem["type"].endswith("#not-found")
    status, _, centers = nobody.json("GET", "/v1/data-centers")
    assert status == 200 and {19, 21} <= {c["id"] for c in centers}, centers
    for path in ("/v1/templates", "/v1/templates/1130", "/v1/data-centers"):
        status, _, _ = Client(stack, None).json("GET", path)
        assert status == 401, path
    assert [r for r in sim_requests(stack) if r["method"] != "GET"] == []
