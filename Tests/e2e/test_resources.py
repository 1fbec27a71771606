"""Account-level resources (docs/design.md#resources-and-grants): firewalls and their rules, SSH keys,
post-install scripts and the purchase of a VM, each an explicit command on a resource that
grants name (`firewall:4001`, `public_key:*`, `account`).

Per command: the exact Hostinger call and body, the operation terminal at once with
Hostinger's answer in `result`, 403 without the permission, 404 outside the grant, 422 on
invalid input with nothing sent. Then: a grant on one firewall allows its rules and nothing
else; creating needs a grant on the account; rule changes name the VPS left out of sync;
script content is kept only as its hash; a purchase always waits for an approval; a delete
whose answer was lost is settled from what Hostinger shows."""

import hashlib
import json
import time
import uuid

import pytest

from vpsgate_e2e import (SHORT_WINDOWS, problem_code, VM, Client, close_operations_and_reset_sim, sim_requests, sql, wait_operation,
                         wait_operation_row)

API = "/api/vps/v1"
SCRIPT = "#!/bin/bash\necho 'resource-canary-7f3a'\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKeyForResourceTests new"
RULE = {"protocol": "TCP", "port": "8443", "source": "custom", "source_detail": "203.0.113.0/24"}


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory("resources", extra_env=SHORT_WINDOWS)


@pytest.fixture(scope="module")
def users(stack):
    """fay: operator on firewall 4001 only; acct: admin on the account; opa: operator on the
    account; vic: viewer on every firewall, key and script and on VPS 1001; nog: operator on
    every VPS and nothing else; keyo: operator on key 5001; scripty: admin on script 6001;
    ana: admin on every VPS and every firewall; appr: approver on the account."""
    stack.grant_resource("fay", "firewall:4001", "operator")
    stack.grant_resource("acct", "account", "admin")
    stack.grant_resource("opa", "account", "operator")
    for resource in ("firewall:*", "public_key:*", "post_install_script:*", "vps:1001"):
        stack.grant_resource("vic", resource, "viewer")
    stack.grant("nog", "*", "operator")
    stack.grant_resource("keyo", "public_key:5001", "operator")
    stack.grant_resource("scripty", "post_install_script:6001", "admin")
    stack.grant("ana", "*", "admin")
    stack.grant_resource("ana", "firewall:*", "admin")
    stack.grant_resource("appr", "account", "approver")
    names = ("fay", "acct", "opa", "vic", "nog", "keyo", "scripty", "ana", "appr")
    return {name: Client(stack, stack.create_token(name)) for name in names}


@pytest.fixture(autouse=True)
def fresh(stack):
    stack.sim("DELETE", "/__sim/faults")
    close_operations_and_reset_sim(stack, action_delay_ms=100)
    yield


def writes(stack):
    return [(c["method"], c["path"], c.get("body")) for c in sim_requests(stack) if c["method"] != "GET"]


def command(client, method, path, body=None, key=None):
    return client.json(method, path, body=body, key=key or str(uuid.uuid4()))


# MARK: - Per command: the exact call, 202 terminal at once with the answer in result

HAPPY = [
    ("acct", "POST", "/v1/firewalls", {"name": "edge"}, "firewall.create", "POST", f"{API}/firewall", {"name": "edge"}),
    ("fay", "DELETE", "/v1/firewalls/4001", None, "firewall.delete", "DELETE", f"{API}/firewall/4001", None),
    ("fay", "POST", "/v1/firewalls/4001/rules", RULE, "firewall.rule.create", "POST", f"{API}/firewall/4001/rules", RULE),
    ("fay", "PUT", "/v1/firewalls/4001/rules/4101", RULE, "firewall.rule.update", "PUT", f"{API}/firewall/4001/rules/4101", RULE),
    ("fay", "DELETE", "/v1/firewalls/4001/rules/4102", None, "firewall.rule.delete", "DELETE", f"{API}/firewall/4001/rules/4102", None),
    ("acct", "POST", "/v1/public-keys", {"name": "ci", "key": KEY}, "public_key.create", "POST", f"{API}/public-keys",
     {"name": "ci", "key": KEY}),
    ("keyo", "DELETE", "/v1/public-keys/5001", None, "public_key.delete", "DELETE", f"{API}/public-keys/5001", None),
    ("acct", "POST", "/v1/post-install-scripts", {"name": "hello", "content": SCRIPT}, "post_install_script.create", "POST",
     f"{API}/post-install-scripts", {"name": "hello", "content": SCRIPT}),
    ("scripty", "PUT", "/v1/post-install-scripts/6001", {"name": "hello", "content": SCRIPT}, "post_install_script.update", "PUT",
     f"{API}/post-install-scripts/6001", {"name": "hello", "content": SCRIPT}),
    ("scripty", "DELETE", "/v1/post-install-scripts/6001", None, "post_install_script.delete", "DELETE",
     f"{API}/post-install-scripts/6001", None),
]


@pytest.mark.parametrize("who,method,path,body,name,sent_method,sent_path,sent_body", HAPPY, ids=[h[4] for h in HAPPY])
def test_each_command_makes_its_exact_call_and_ends_at_once_with_the_answer(stack, users, who, method, path, body, name,
                                                                           sent_method, sent_path, sent_body):
    key = str(uuid.uuid4())
    status, headers, operation = command(users[who], method, path, body, key)
    assert status == 202, operation
    assert operation["command"] == name and operation["state"] == "succeeded", operation
    assert operation["vps_id"] is None and operation["hostinger_action"] is None
    assert operation["resource"]["type"] in ("firewall", "public_key", "post_install_script", "account")
    assert "result" in operation
    assert writes(stack) == [(sent_method, sent_path, sent_body)]
    # Kept under the key: a retry replays it, nothing is sent again.
    status, replayed_headers, replay = command(users[who], method, path, body, key)
    assert status == 202 and replay == operation and replayed_headers.get("Idempotent-Replayed") == "true"
    assert len(writes(stack)) == 1
    # Read back by whoever acted.
    status, _, read = users[who].json("GET", headers["Location"])
    assert status == 200 and read == operation
    # Audited: a received row and a final one, both naming the command.
    rows = sql(stack, f"SELECT kind || ':' || outcome FROM audit_events WHERE operation_id = '{operation['id']}' ORDER BY id").split("\n")
    assert rows[0] == "received:received" and any(row.startswith("final:") for row in rows), rows
    # The audit view names the resource as grants do.
    resource = operation["resource"]
    expected = "account" if resource["type"] == "account" else f"{resource['type']}:{resource['id']}"
    assert sql(stack, f"SELECT resource FROM audit_mutations WHERE operation_id = '{operation['id']}' LIMIT 1") == expected


def test_creating_answers_the_new_resource_and_the_caller_may_then_use_it_by_its_grant(stack, users):
    status, _, operation = command(users["acct"], "POST", "/v1/firewalls", {"name": "edge"})
    assert status == 202 and operation["resource"] == {"type": "account", "id": None}
    created = operation["result"]
    assert created["name"] == "edge" and created["rules"] == [] and isinstance(created["id"], int)
    # The account's admin holds no grant on the new firewall itself: one is given explicitly.
    status, _, _ = command(users["acct"], "POST", f"/v1/firewalls/{created['id']}/rules", RULE)
    assert status == 404
    stack.grant_resource("acct", f"firewall:{created['id']}", "admin")
    status, _, rule = command(users["acct"], "POST", f"/v1/firewalls/{created['id']}/rules", RULE)
    assert status == 202 and rule["state"] == "succeeded" and rule["resource"] == {"type": "firewall", "id": created["id"]}


FORBIDDEN = [
    ("vic", "POST", "/v1/firewalls", {"name": "edge"}),            # a viewer on every firewall: no account grant
    ("nog", "POST", "/v1/firewalls", {"name": "edge"}),            # operator on every VPS: no account grant
    ("vic", "DELETE", "/v1/firewalls/4001", None),                 # firewall:read only
    ("vic", "POST", "/v1/firewalls/4001/rules", RULE),
    ("vic", "PUT", "/v1/firewalls/4001/rules/4101", RULE),
    ("vic", "DELETE", "/v1/firewalls/4001/rules/4102", None),
    ("vic", "POST", "/v1/public-keys", {"name": "ci", "key": KEY}),
    ("vic", "DELETE", "/v1/public-keys/5001", None),
    ("opa", "POST", "/v1/post-install-scripts", {"name": "hello", "content": SCRIPT}),  # operators do not write scripts
    ("vic", "PUT", "/v1/post-install-scripts/6001", {"name": "hello", "content": SCRIPT}),
    ("vic", "DELETE", "/v1/post-install-scripts/6001", None),
    ("opa", "POST", "/v1/vps", {"item_id": "hostingercom-vps-kvm2-usd-1m", "template_id": 1130, "data_center_id": 19}),
]


@pytest.mark.parametrize("who,method,path,body", FORBIDDEN, ids=[f"{f[0]}-{f[1]}-{f[2]}" for f in FORBIDDEN])
def test_without_the_permission_it_is_403_and_nothing_is_sent(stack, users, who, method, path, body):
    status, _, problem = command(users[who], method, path, body)
    assert status == 403 and problem["type"].endswith("#forbidden"), problem
    assert writes(stack) == []
    denied = sql(stack, f"SELECT resource FROM audit_denials WHERE correlation_id = '{problem['correlation_id']}'")
    assert denied == ("account" if path in ("/v1/firewalls", "/v1/public-keys", "/v1/post-install-scripts", "/v1/vps")
                      else path.split("/")[2].replace("firewalls", "firewall").replace("public-keys", "public_key")
                      .replace("post-install-scripts", "post_install_script") + ":" + path.split("/")[3]), denied


NOT_FOUND = [
    ("nog", "DELETE", "/v1/firewalls/4001", None),
    ("nog", "POST", "/v1/firewalls/4001/rules", RULE),
    ("fay", "PUT", "/v1/firewalls/4002/rules/4101", RULE),        # another firewall than fay's
    ("fay", "DELETE", "/v1/firewalls/4002/rules/4102", None),
    ("keyo", "DELETE", "/v1/public-keys/5002", None),             # another key than keyo's
    ("nog", "DELETE", "/v1/public-keys/5001", None),
    ("fay", "PUT", "/v1/post-install-scripts/6001", {"name": "hello", "content": SCRIPT}),
    ("keyo", "DELETE", "/v1/post-install-scripts/6001", None),
]


@pytest.mark.parametrize("who,method,path,body", NOT_FOUND, ids=[f"{f[0]}-{f[1]}-{f[2]}" for f in NOT_FOUND])
def test_outside_the_grant_it_is_404_and_nothing_is_sent(stack, users, who, method, path, body):
    status, _, problem = command(users[who], method, path, body)
    assert status == 404 and problem["type"].endswith("#not-found"), problem
    assert writes(stack) == []


INVALID = [
    ("acct", "POST", "/v1/firewalls", {}, "name"),
    ("acct", "POST", "/v1/firewalls", {"name": "x" * 256}, "name"),
    ("acct", "POST", "/v1/firewalls", {"name": "edge", "rules": []}, "rules"),
    ("fay", "DELETE", "/v1/firewalls/4001", {"force": True}, "force"),
    ("fay", "POST", "/v1/firewalls/4001/rules", dict(RULE, port="70000"), "port"),
    ("fay", "POST", "/v1/firewalls/4001/rules", dict(RULE, port="2048:1024"), "port"),
    ("fay", "POST", "/v1/firewalls/4001/rules", dict(RULE, protocol="QUIC"), "protocol"),
    ("fay", "POST", "/v1/firewalls/4001/rules", dict(RULE, source="any"), "source_detail"),
    ("fay", "POST", "/v1/firewalls/4001/rules", dict(RULE, source_detail="10.0.0.0/33"), "source_detail"),
    ("fay", "PUT", "/v1/firewalls/4001/rules/4101", {"protocol": "TCP"}, "port"),
    ("fay", "DELETE", "/v1/firewalls/4001/rules/4102", {"x": 1}, "x"),
    ("acct", "POST", "/v1/public-keys", {"name": "ci", "key": "not a key"}, "key"),
    ("acct", "POST", "/v1/public-keys", {"name": "ci", "key": KEY + "\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ x"}, "key"),
    ("acct", "POST", "/v1/public-keys", {"key": KEY}, "name"),
    ("keyo", "DELETE", "/v1/public-keys/5001", {"x": 1}, "x"),
    ("acct", "POST", "/v1/post-install-scripts", {"name": "big", "content": "#" * (48 * 1024 + 1)}, "content"),
    ("acct", "POST", "/v1/post-install-scripts", {"name": "empty", "content": ""}, "content"),
    ("scripty", "PUT", "/v1/post-install-scripts/6001", {"name": "only a name"}, "content"),
    ("scripty", "DELETE", "/v1/post-install-scripts/6001", {"x": 1}, "x"),
    ("acct", "POST", "/v1/vps", {"item_id": "kvm2; DROP", "template_id": 1130, "data_center_id": 19}, "item_id"),
    ("acct", "POST", "/v1/vps", {"item_id": "hostingercom-vps-kvm2-usd-1m", "data_center_id": 19}, "template_id"),
    ("acct", "POST", "/v1/vps", {"item_id": "hostingercom-vps-kvm2-usd-1m", "template_id": 1130, "data_center_id": 19,
                                 "coupons": ["A", "A"]}, "coupons"),
    ("acct", "POST", "/v1/vps", {"item_id": "hostingercom-vps-kvm2-usd-1m", "template_id": 1130, "data_center_id": 19,
                                 "password": "weak"}, "password"),
]


@pytest.mark.parametrize("who,method,path,body,field", INVALID, ids=[f"{i[2]}-{i[4]}" for i in INVALID])
def test_invalid_input_is_422_naming_the_field_and_nothing_is_sent(stack, users, who, method, path, body, field):
    status, _, problem = command(users[who], method, path, body)
    assert status == 422 and field in problem["errors"], problem
    assert writes(stack) == []


# MARK: - Grants on one firewall; the account for creating


def test_a_grant_on_one_firewall_changes_its_rules_and_nothing_else(stack, users):
    fay = users["fay"]
    status, _, rule = command(fay, "POST", "/v1/firewalls/4001/rules", RULE)
    assert status == 202 and rule["state"] == "succeeded"
    assert command(fay, "POST", "/v1/firewalls", {"name": "mine"})[0] == 403        # creating needs the account
    assert command(fay, "POST", "/v1/public-keys", {"name": "k", "key": KEY})[0] == 403
    assert command(fay, "DELETE", "/v1/public-keys/5001")[0] == 404
    assert command(fay, "POST", "/v1/vps/1001/restart")[0] == 404                 # no VPS
    assert command(fay, "POST", "/v1/vps/1001/firewalls/4001/sync")[0] == 404     # syncing is a VPS's configuration
    status, _, vms = fay.json("GET", "/v1/vps")
    assert status == 200 and vms == []
    status, _, firewalls = fay.json("GET", "/v1/firewalls")
    assert status == 200 and [f["id"] for f in firewalls["data"]] == [4001] and "total" not in firewalls["meta"]
    assert fay.json("GET", "/v1/firewalls/4001")[0] == 200
    assert fay.json("GET", "/v1/public-keys")[2]["data"] == []
    # Only the firewall's own rule change was sent.
    assert [(m, p) for m, p, _ in writes(stack)] == [("POST", f"{API}/firewall/4001/rules")]


def test_creating_a_firewall_key_or_script_needs_a_grant_on_the_account(stack, users):
    # ana administers every VPS and every firewall, but not the account.
    assert command(users["ana"], "POST", "/v1/firewalls", {"name": "edge"})[0] == 403
    assert command(users["ana"], "POST", "/v1/public-keys", {"name": "k", "key": KEY})[0] == 403
    assert command(users["ana"], "POST", "/v1/post-install-scripts", {"name": "s", "content": SCRIPT})[0] == 403
    assert writes(stack) == []
    # An operator on the account creates firewalls and keys (not scripts: shown above).
    assert command(users["opa"], "POST", "/v1/firewalls", {"name": "edge"})[0] == 202
    assert command(users["opa"], "POST", "/v1/public-keys", {"name": "k", "key": KEY})[0] == 202


# MARK: - Rule changes name the VPS left out of sync


def test_a_rule_change_names_the_vps_it_left_out_of_sync(stack, users):
    for vps in (1001, 1002):
        status, headers, _ = command(users["ana"], "POST", f"/v1/vps/{vps}/firewalls/4001/activate")
        assert status == 202
        assert wait_operation(users["ana"], headers["Location"])["state"] == "succeeded"
    status, _, changed = command(users["ana"], "POST", "/v1/firewalls/4001/rules", RULE)
    assert status == 202
    assert changed["result"]["answer"]["port"] == "8443"
    assert changed["result"]["out_of_sync_vps"] == [1001, 1002] and changed["result"]["out_of_sync_other_vps"] == 0
    status, _, firewall = users["ana"].json("GET", "/v1/firewalls/4001")
    assert status == 200 and firewall["is_synced"] is False
    # fay may read no VPS: she is told how many, not which.
    status, _, changed = command(users["fay"], "DELETE", f"/v1/firewalls/4001/rules/{changed['result']['answer']['id']}")
    assert status == 202
    assert changed["result"]["out_of_sync_vps"] == [] and changed["result"]["out_of_sync_other_vps"] == 2
    # Syncing it to a VPS brings that one back.
    status, headers, _ = command(users["ana"], "POST", "/v1/vps/1001/firewalls/4001/sync")
    assert wait_operation(users["ana"], headers["Location"])["state"] == "succeeded"


# MARK: - A freeze on a VPS holds changes to the firewall active on it

FIREWALL_CHANGES = [("POST", "/v1/firewalls/4001/rules", RULE), ("PUT", "/v1/firewalls/4001/rules/4101", RULE),
                    ("DELETE", "/v1/firewalls/4001/rules/4102", None), ("DELETE", "/v1/firewalls/4001", None)]


def test_a_freeze_on_a_vps_holds_changes_to_a_firewall_active_on_it(stack, users):
    """Deleting a firewall deactivates it on every VPS that has it active, and a rule change
    leaves those VPS out of sync: while one of them is frozen, each is 423 change-frozen (the
    plan says frozen), also when Hostinger's VM list cannot be read; an emergency needs an
    approval. A firewall active on no frozen VPS is not held."""
    status, headers, _ = command(users["ana"], "POST", "/v1/vps/1002/firewalls/4001/activate")
    assert status == 202 and wait_operation(users["ana"], headers["Location"])["state"] == "succeeded"
    status, _, other = command(users["acct"], "POST", "/v1/firewalls", {"name": "spare"})
    assert status == 202
    spare = other["result"]["id"]
    freeze = stack.admin("freeze", "add", "--vps", "1002", "--for", "1h", "--reason", "db migration", "--actor", "test").stdout
    freeze_id = int(freeze.split()[1])
    stack.sim("DELETE", "/__sim/requests")
    try:
        for method, path, body in FIREWALL_CHANGES:
            status, _, problem = command(users["fay"], method, path, body)
            assert status == 423 and problem_code(problem) == "change-frozen" and problem["frozen_until"], (path, problem)
            status, _, plan = users["fay"].json(method, path + "?validate_only=true", body=body)
            assert status == 200 and plan["decision"] == "frozen" and plan["freeze"]["reason"] == "db migration", (path, plan)
        assert sim_requests(stack, "GET", "/virtual-machines"), "the firewall's VPS were not looked up"
        # Hostinger's list unreadable: which VPS it reaches is not known, so the freeze holds it.
        stack.sim("POST", "/__sim/faults", {"method": "GET", "path": "/virtual-machines$", "status": 500, "times": -1})
        status, _, problem = command(users["fay"], "POST", "/v1/firewalls/4001/rules", RULE)
        assert status == 423, problem
        stack.sim("DELETE", "/__sim/faults")
        # An emergency waits for an approval.
        status, _, operation = command(users["ana"], "POST", "/v1/firewalls/4001/rules?emergency=true&reason=INC-9", RULE)
        assert status == 202 and operation["state"] == "awaiting_approval", operation
        assert writes(stack) == []
        # A firewall active on no frozen VPS changes as usual.
        status, _, changed = command(users["ana"], "POST", f"/v1/firewalls/{spare}/rules", RULE)
        assert status == 202 and changed["state"] == "succeeded", changed
        assert [(m, p) for m, p, _ in writes(stack)] == [("POST", f"{API}/firewall/{spare}/rules")]
    finally:
        stack.sim("DELETE", "/__sim/faults")
        stack.admin("freeze", "remove", str(freeze_id), "--actor", "test")
    status, _, _ = command(users["fay"], "POST", "/v1/firewalls/4001/rules", RULE)
    assert status == 202


# MARK: - Script content is kept only as its hash


def test_script_content_is_sent_to_hostinger_and_kept_only_as_its_sha256(stack, users):
    digest = "sha256:" + hashlib.sha256(SCRIPT.encode()).hexdigest()
    status, _, operation = command(users["acct"], "POST", "/v1/post-install-scripts", {"name": "hello", "content": SCRIPT})
    assert status == 202 and operation["result"]["content"] == digest and operation["result"]["name"] == "hello"
    assert writes(stack)[0][2]["content"] == SCRIPT
    params = json.loads(sql(stack, f"SELECT request_params FROM audit_events WHERE operation_id = '{operation['id']}' "
                                   "AND kind = 'received'"))
    assert params == {"name": "hello", "content": digest}
    canary = "resource-canary-7f3a"
    for table in ("audit_events", "operations", "events"):
        assert sql(stack, f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%{canary}%'") == "0", table
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE position('{canary}'::bytea in response_body) > 0") == "0"
    # The plan shows the hash too, and the script as Hostinger has it now.
    status, _, plan = users["scripty"].json("PUT", "/v1/post-install-scripts/6001?validate_only=true",
                                            body={"name": "hello", "content": SCRIPT})
    assert status == 200 and plan["would_send"]["body"]["content"] == digest
    assert plan["current"]["id"] == 6001 and plan["current"]["content"].startswith("sha256:")
    # Reading the script itself, with script:read, shows its content: it is the caller's script.
    status, _, script = users["vic"].json("GET", f"/v1/post-install-scripts/{operation['result']['id']}")
    assert status == 200 and script["content"] == SCRIPT


# MARK: - The purchase always waits for an approval


PURCHASE = {"item_id": "hostingercom-vps-kvm2-usd-1m", "template_id": 1130, "data_center_id": 19,
            "hostname": "bought.example.com", "password": "Correct7Horse-Battery", "coupons": ["WELCOME"]}


def test_a_purchase_waits_for_an_approval_whatever_the_policy_and_is_sent_once_approved(stack, users):
    # A policy of no approval for billing:purchase changes nothing: one is always needed.
    stack.admin("policy", "set", "--subject", "billing:purchase", "--vps", "*", "--approvals", "0")
    try:
        status, headers, operation = command(users["acct"], "POST", "/v1/vps", PURCHASE)
        assert status == 202 and operation["state"] == "awaiting_approval" and operation["approval"]["required"] == 1
        assert writes(stack) == []
        # The requester cannot approve it; a viewer of the account's VPS cannot either.
        assert users["acct"].json("POST", f"{headers['Location']}/approve")[0] == 403
        assert users["nog"].json("POST", f"{headers['Location']}/approve")[0] == 404
        status, _, listed = users["appr"].json("GET", "/v1/approvals")
        assert status == 200 and operation["id"] in [o["id"] for o in listed["data"]]
        status, _, approved = users["appr"].json("POST", f"{headers['Location']}/approve")
        assert status == 200 and approved["state"] in ("approved", "accepted", "succeeded")
        done = wait_operation(users["acct"], headers["Location"])
        assert done["state"] == "succeeded", done
        assert done["result"]["virtual_machine"]["state"] in ("initial", "creating", "running")
        sent = writes(stack)
        assert len(sent) == 1 and sent[0][0] == "POST" and sent[0][1] == VM
        assert sent[0][2] == {"item_id": PURCHASE["item_id"], "setup": {
            "template_id": 1130, "data_center_id": 19, "password": PURCHASE["password"], "hostname": "bought.example.com"},
            "coupons": ["WELCOME"]}
        # The password went to Hostinger and nowhere else.
        for table in ("audit_events", "operations", "events", "operation_requests"):
            assert sql(stack, f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%{PURCHASE['password']}%'") == "0", table
    finally:
        stack.admin("policy", "remove", "--subject", "billing:purchase", "--vps", "*")


# MARK: - Who sees what happened


def test_operations_and_events_of_a_resource_are_shown_to_its_readers_only(stack, users):
    status, headers, operation = command(users["fay"], "POST", "/v1/firewalls/4001/rules", RULE)
    assert status == 202
    assert users["vic"].json("GET", headers["Location"])[0] == 200       # firewall:read on every firewall
    assert users["nog"].json("GET", headers["Location"])[0] == 404       # VPS only
    assert users["keyo"].json("GET", headers["Location"])[0] == 404
    listed = users["nog"].json("GET", "/v1/operations?limit=200")[2]["data"]
    assert operation["id"] not in [o["id"] for o in listed]
    listed = users["fay"].json("GET", "/v1/operations?limit=200")[2]["data"]
    assert operation["id"] in [o["id"] for o in listed]
    ids = {"fay": [], "nog": []}
    for who in ids:
        after = None
        for _ in range(50):
            page = users[who].json("GET", "/v1/events?limit=500" + (f"&after={after}" if after else ""))[2]
            ids[who] += [e["operation_id"] for e in page["data"]]
            if not page["data"]:
                break
            after = page["next"]
    assert operation["id"] in ids["fay"] and operation["id"] not in ids["nog"]


# MARK: - A lost answer is settled from what Hostinger shows


@pytest.mark.parametrize("applied,state", [(True, "succeeded"), (False, "failed")])
def test_a_delete_whose_answer_was_lost_is_settled_from_the_resource(stack, users, applied, state):
    stack.sim("POST", "/__sim/faults", {"method": "DELETE", "path": "/firewall/4001$", "status": 500, "apply": applied})
    status, _, operation = command(users["fay"], "DELETE", "/v1/firewalls/4001")
    assert status == 202 and operation["state"] == "unknown", operation
    stack.sim("DELETE", "/__sim/faults")
    row = wait_operation_row(stack, operation["id"], timeout=40)
    assert row["state"] == state, row
    if not applied:
        assert row["error"]["reason"] == "not_applied"
    assert len(writes(stack)) == 1  # never sent twice


def test_a_creation_whose_answer_was_lost_stays_unknown_with_what_to_check(stack, users):
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/firewall$", "status": 500, "apply": True})
    status, _, operation = command(users["acct"], "POST", "/v1/firewalls", {"name": "lost"})
    assert status == 202 and operation["state"] == "unknown", operation
    stack.sim("DELETE", "/__sim/faults")
    deadline = time.monotonic() + 40
    row = wait_operation_row(stack, operation["id"], states=("unknown",))
    while (row["error"] or {}).get("reason") != "answer_lost" and time.monotonic() < deadline:
        time.sleep(0.2)
        row = wait_operation_row(stack, operation["id"], states=("unknown",))
    assert row["error"]["reason"] == "answer_lost" and "account" in row["error"]["detail"], row
    assert len(writes(stack)) == 1
