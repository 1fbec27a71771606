"""Every command of the catalogue end to end: happy path (202, the right Hostinger call and
body, the operation succeeds, the simulator's VM shows it), permission (403), validation
(422, nothing sent); destructive confirmation; secrets never stored, logged or answered."""

import json
import re
import subprocess
import uuid

import pytest

import openapi_check
from vpsgate_e2e import VM, Client, close_operations_and_reset_sim, sim_requests, sql, wait_operation

PASSWORD = "Correct7Horse-Battery"


@pytest.fixture(scope="module")
def users(stack):
    stack.grant("ada", "*", "admin")
    for resource in ("firewall:*", "public_key:*", "post_install_script:*", "account"):
        stack.grant_resource("ada", resource, "admin")
    stack.grant("otto", "*", "operator")
    stack.grant("vera", "*", "viewer")
    return {name: Client(stack, stack.create_token(name)) for name in ("ada", "otto", "vera")}


@pytest.fixture(autouse=True)
def fresh(stack):
    close_operations_and_reset_sim(stack, action_delay_ms=150)
    yield


def vm(stack, vps):
    return stack.sim("GET", f"{VM}/{vps}")[2]


def sim_direct(stack, method, path, body=None):
    """Sets up a precondition straight at the simulator (as if done outside vpsgate), and waits for it."""
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    status, _, _ = stack.sim(method, path, body)
    assert status == 200
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 150})


def last_action(stack, vps):
    return stack.sim("GET", f"{VM}/{vps}/actions")[2]["data"][0]


# (command, method, vpsgate path, body, Hostinger method and path, Hostinger body, precondition, check, role lacking it)
CASES = [
    ("vps.hostname.set", "PUT", "/v1/vps/1001/hostname", {"hostname": "web-7.example.com"},
     "PUT", f"{VM}/1001/hostname", {"hostname": "web-7.example.com"}, None,
     lambda s: vm(s, 1001)["hostname"] == "web-7.example.com", "vera"),
    ("vps.hostname.reset", "DELETE", "/v1/vps/1001/hostname", None, "DELETE", f"{VM}/1001/hostname", None,
     lambda s: sim_direct(s, "PUT", f"{VM}/1001/hostname", {"hostname": "old.example.com"}),
     lambda s: vm(s, 1001)["hostname"] == "srv1001.hstgr.cloud", "vera"),
    ("vps.nameservers.set", "PUT", "/v1/vps/1001/nameservers", {"ns1": "9.9.9.9", "ns2": "2620:fe::fe"},
     "PUT", f"{VM}/1001/nameservers", {"ns1": "9.9.9.9", "ns2": "2620:fe::fe"}, None,
     lambda s: (vm(s, 1001)["ns1"], vm(s, 1001)["ns2"]) == ("9.9.9.9", "2620:fe::fe"), "vera"),
    ("vps.ptr.create", "POST", "/v1/vps/1001/ptr/2001", {"domain": "mail.example.com"},
     "POST", f"{VM}/1001/ptr/2001", {"domain": "mail.example.com"}, None,
     lambda s: vm(s, 1001)["ipv4"][0]["ptr"] == "mail.example.com", "vera"),
    ("vps.ptr.delete", "DELETE", "/v1/vps/1001/ptr/2001", None, "DELETE", f"{VM}/1001/ptr/2001", None,
     lambda s: sim_direct(s, "POST", f"{VM}/1001/ptr/2001", {"domain": "x.example.com"}),
     lambda s: vm(s, 1001)["ipv4"][0]["ptr"] is None, "vera"),
    ("vps.firewall.activate", "POST", "/v1/vps/1001/firewalls/4001/activate", None,
     "POST", "/api/vps/v1/firewall/4001/activate/1001", None, None,
     lambda s: vm(s, 1001)["firewall_group_id"] == 4001, "vera"),
    ("vps.firewall.deactivate", "POST", "/v1/vps/1001/firewalls/4001/deactivate", None,
     "POST", "/api/vps/v1/firewall/4001/deactivate/1001", None,
     lambda s: sim_direct(s, "POST", "/api/vps/v1/firewall/4001/activate/1001"),
     lambda s: vm(s, 1001)["firewall_group_id"] is None, "vera"),
    ("vps.firewall.sync", "POST", "/v1/vps/1001/firewalls/4001/sync", None,
     "POST", "/api/vps/v1/firewall/4001/sync/1001", None, None,
     lambda s: s.sim("GET", "/api/vps/v1/firewall")[2]["data"][0]["is_synced"] is True, "vera"),
    ("vps.public_keys.attach", "POST", "/v1/vps/1001/public-keys", {"ids": [5001, 5002]},
     "POST", "/api/vps/v1/public-keys/attach/1001", {"ids": [5001, 5002]}, None,
     lambda s: [k["id"] for k in s.sim("GET", f"{VM}/1001/public-keys")[2]["data"]] == [5001, 5002], "vera"),
    ("vps.monarx.install", "POST", "/v1/vps/1001/monarx", None, "POST", f"{VM}/1001/monarx", None, None,
     lambda s: last_action(s, 1001)["name"] == "monarx_install" and last_action(s, 1001)["state"] == "success", "vera"),
    ("vps.monarx.uninstall", "DELETE", "/v1/vps/1001/monarx", None, "DELETE", f"{VM}/1001/monarx", None, None,
     lambda s: last_action(s, 1001)["name"] == "monarx_uninstall" and last_action(s, 1001)["state"] == "success", "vera"),
    ("vps.root_password.set", "PUT", "/v1/vps/1001/root-password", {"password": PASSWORD},
     "PUT", f"{VM}/1001/root-password", {"password": PASSWORD}, None,
     lambda s: last_action(s, 1001)["name"] == "change_root_password" and last_action(s, 1001)["state"] == "success", "otto"),
    ("vps.panel_password.set", "PUT", "/v1/vps/1001/panel-password", {"password": PASSWORD},
     "PUT", f"{VM}/1001/panel-password", {"password": PASSWORD}, None,
     lambda s: last_action(s, 1001)["name"] == "change_panel_password" and last_action(s, 1001)["state"] == "success", "otto"),
    ("vps.recovery.start", "POST", "/v1/vps/1003/recovery", {"root_password": PASSWORD},
     "POST", f"{VM}/1003/recovery", {"root_password": PASSWORD}, None,
     lambda s: vm(s, 1003)["state"] == "recovery", "otto"),
    ("vps.recovery.stop", "DELETE", "/v1/vps/1003/recovery", None, "DELETE", f"{VM}/1003/recovery", None,
     lambda s: sim_direct(s, "POST", f"{VM}/1003/recovery", {"root_password": PASSWORD}),
     lambda s: vm(s, 1003)["state"] == "running", "otto"),
    ("vps.snapshot.create", "POST", "/v1/vps/1001/snapshot", None, "POST", f"{VM}/1001/snapshot", None, None,
     lambda s: s.sim("GET", f"{VM}/1001/snapshot")[0] == 200, "vera"),
    ("vps.snapshot.delete", "DELETE", "/v1/vps/1001/snapshot", None, "DELETE", f"{VM}/1001/snapshot", None,
     lambda s: sim_direct(s, "POST", f"{VM}/1001/snapshot"),
     lambda s: s.sim("GET", f"{VM}/1001/snapshot")[0] == 404, "vera"),
    ("vps.snapshot.restore", "POST", "/v1/vps/1001/snapshot/restore", {"confirm": 1001},
     "POST", f"{VM}/1001/snapshot/restore", None, lambda s: sim_direct(s, "POST", f"{VM}/1001/snapshot"),
     lambda s: last_action(s, 1001)["name"] == "snapshot_restore" and vm(s, 1001)["state"] == "running", "otto"),
    ("vps.backup.restore", "POST", "/v1/vps/1002/backups/3002/restore", {"confirm": 1002},
     "POST", f"{VM}/1002/backups/3002/restore", None, None,
     lambda s: last_action(s, 1002)["name"] == "backup_restore" and vm(s, 1002)["state"] == "running", "otto"),
    ("vps.recreate", "POST", "/v1/vps/1003/recreate",
     {"template_id": 1130, "password": PASSWORD, "post_install_script_id": 12, "confirm": 1003},
     "POST", f"{VM}/1003/recreate", {"template_id": 1130, "password": PASSWORD, "post_install_script_id": 12},
     lambda s: sim_direct(s, "POST", f"{VM}/1003/snapshot"),
     lambda s: vm(s, 1003)["template"]["id"] == 1130 and s.sim("GET", f"{VM}/1003/snapshot")[0] == 404, "otto"),
]

IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_happy_path(stack, users, case):
    name, method, path, body, h_method, h_path, h_body, before, check, _ = case
    if before:
        before(stack)
    sent_before = len(sim_requests(stack))
    status, headers, operation = users["ada"].json(method, path, body=body, key=str(uuid.uuid4()))
    assert status == 202, operation
    assert operation["command"] == name
    # The command's one Hostinger call; reads made meanwhile by the background work (the
    # reconciler's action reads and VM refreshes of earlier operations) are not the command's.
    calls = [c for c in sim_requests(stack)[sent_before:] if c["method"] != "GET"]
    assert [(c["method"], c["path"]) for c in calls] == [(h_method, h_path)]
    assert calls[0]["body"] == h_body
    done = wait_operation(users["ada"], headers["Location"])
    assert done["state"] == "succeeded", done
    assert check(stack), vm(stack, done["vps_id"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_permission(stack, users, case):
    name, method, path, body, *_, lacking = case
    status, _, problem = users[lacking].json(method, path, body=body, key=str(uuid.uuid4()))
    assert status == 403, (lacking, problem)
    assert problem["type"].endswith("#forbidden")
    assert [r for r in sim_requests(stack) if r["method"] != "GET"] == []


INVALID = [
    ("PUT", "/v1/vps/1001/hostname", {}, "hostname"),
    ("PUT", "/v1/vps/1001/hostname", {"hostname": "not a name"}, "hostname"),
    ("PUT", "/v1/vps/1001/hostname", {"hostname": "a" * 64 + ".example.com"}, "hostname"),
    ("PUT", "/v1/vps/1001/hostname", {"hostname": 42}, "hostname"),
    ("PUT", "/v1/vps/1001/hostname", {"hostname": "ok.example.com", "extra": 1}, "extra"),
    ("DELETE", "/v1/vps/1001/hostname", {"hostname": "x.example.com"}, "hostname"),
    ("PUT", "/v1/vps/1001/nameservers", {"ns1": "dns.google"}, "ns1"),
    ("PUT", "/v1/vps/1001/nameservers", {"ns2": "1.1.1.1"}, "ns1"),
    ("PUT", "/v1/vps/1001/nameservers", {"ns1": "1.1.1.1", "ns3": "1.1.1.256"}, "ns3"),
    ("POST", "/v1/vps/1001/ptr/2001", {"domain": "-x-.example"}, "domain"),
    ("DELETE", "/v1/vps/1001/ptr/2001", {"domain": "x.example.com"}, "domain"),
    ("POST", "/v1/vps/1001/firewalls/4001/activate", {"force": True}, "force"),
    ("POST", "/v1/vps/1001/firewalls/4001/deactivate", [], "body"),
    ("POST", "/v1/vps/1001/firewalls/4001/sync", {"x": 1}, "x"),
    ("POST", "/v1/vps/1001/public-keys", {"ids": []}, "ids"),
    ("POST", "/v1/vps/1001/public-keys", {"ids": [5001, "5002"]}, "ids"),
    ("POST", "/v1/vps/1001/public-keys", {"ids": [0]}, "ids"),
    ("POST", "/v1/vps/1001/public-keys", {"ids": [5001, 5001]}, "ids"),
    ("POST", "/v1/vps/1001/monarx", {"x": 1}, "x"),
    ("DELETE", "/v1/vps/1001/monarx", {"x": 1}, "x"),
    ("PUT", "/v1/vps/1001/root-password", {"password": "Short1a"}, "password"),
    ("PUT", "/v1/vps/1001/root-password", {"password": "nouppercase1234"}, "password"),
    ("PUT", "/v1/vps/1001/root-password", {"password": "Password1234"}, "password"),
    ("PUT", "/v1/vps/1001/panel-password", {"password": "NoDigitsAtAllHere"}, "password"),
    ("POST", "/v1/vps/1001/recovery", {}, "root_password"),
    ("DELETE", "/v1/vps/1001/recovery", {"root_password": PASSWORD}, "root_password"),
    ("POST", "/v1/vps/1001/snapshot", {"x": 1}, "x"),
    ("DELETE", "/v1/vps/1001/snapshot", {"x": 1}, "x"),
    ("POST", "/v1/vps/1001/snapshot/restore", {}, "confirm"),
    ("POST", "/v1/vps/1001/backups/3001/restore", {"confirm": 1002}, "confirm"),
    ("POST", "/v1/vps/1001/recreate", {"confirm": 1001}, "template_id"),
    ("POST", "/v1/vps/1001/recreate", {"template_id": "1130", "confirm": 1001}, "template_id"),
    ("POST", "/v1/vps/1001/recreate", {"template_id": 1130, "post_install_script_id": -1, "confirm": 1001}, "post_install_script_id"),
    ("POST", "/v1/vps/1001/recreate", {"template_id": 1130, "panel_password": "weak", "confirm": 1001}, "panel_password"),
]


@pytest.mark.parametrize("method,path,body,field", INVALID)
def test_validation(stack, users, method, path, body, field):
    status, _, problem = users["ada"].json(method, path, body=body, key=str(uuid.uuid4()))
    assert status == 422, problem
    assert field in problem["errors"], problem
    assert sim_requests(stack) == []


def test_every_command_has_a_validation_case():
    covered = {(m, re.sub(r"/\d+", "/N", p)) for m, p, *_ in INVALID}
    for name, method, path, *_ in CASES:
        assert (method, re.sub(r"/\d+", "/N", path)) in covered, name


def test_malformed_json_is_400(stack, users):
    status, _, problem = users["ada"].json("PUT", "/v1/vps/1001/hostname", raw_body=b'{"hostname": ', key=str(uuid.uuid4()))
    assert status == 400 and problem["type"].endswith("#malformed-request")
    assert sim_requests(stack) == []


@pytest.mark.parametrize("path,body", [
    ("/v1/vps/1001/recreate", {"template_id": 1130}),
    ("/v1/vps/1001/snapshot/restore", None),
    ("/v1/vps/1001/backups/3001/restore", {}),
])
def test_destructive_commands_need_the_vps_id_as_confirmation(stack, users, path, body):
    if "snapshot" in path:
        sim_direct(stack, "POST", f"{VM}/1001/snapshot")
    sent = len(sim_requests(stack))
    for confirm in (None, 1002, "1001", 0, True):
        attempt = dict(body or {})
        if confirm is not None:
            attempt["confirm"] = confirm
        status, _, problem = users["ada"].json("POST", path, body=attempt or body, key=str(uuid.uuid4()))
        assert status == 422, (confirm, problem)
        assert problem["type"].endswith("#confirmation-required")
        assert "confirm" in problem["errors"]
    assert len(sim_requests(stack)) == sent
    status, _, _ = users["ada"].json("POST", path, body=dict(body or {}, confirm=1001), key=str(uuid.uuid4()))
    assert status == 202


def test_secrets_never_reach_audit_logs_or_answers(stack, users):
    canary = "Canary7Secret" + uuid.uuid4().hex[:10]
    ada = users["ada"]
    answers = []
    requests = [
        ("PUT", "/v1/vps/1001/root-password", {"password": canary}),
        ("PUT", "/v1/vps/1002/panel-password", {"password": canary}),
        ("POST", "/v1/vps/1003/recovery", {"root_password": canary}),
    ]
    for method, path, body in requests:
        key = str(uuid.uuid4())
        answers.append(ada.request(method, path + "?validate_only=true", body=body))
        answers.append(ada.request(method, path, body=body, key=key))
        answers.append(ada.request(method, path, body=body, key=key))  # a replay
    for status, _, raw in answers[1::3]:
        assert status == 202
        wait_operation(ada, f"/v1/operations/{json.loads(raw)['id']}")
    recreate = {"template_id": 1130, "password": canary, "panel_password": canary, "confirm": 1001}
    key = str(uuid.uuid4())
    answers.append(ada.request("POST", "/v1/vps/1001/recreate", body=recreate, key=key))
    answers.append(ada.request("POST", "/v1/vps/1001/recreate", body=recreate, key=key))
    # Invalid and rejected requests carrying the secret, too.
    answers.append(ada.request("POST", "/v1/vps/1002/recreate", body=dict(recreate, confirm=1), key=str(uuid.uuid4())))
    stack.sim("POST", "/__sim/faults", {"path": "/root-password$", "status": 422})
    answers.append(ada.request("PUT", "/v1/vps/1003/root-password", body={"password": canary}, key=str(uuid.uuid4())))
    # The simulator (Hostinger) did receive it: the canary is real.
    assert any(canary in json.dumps(r["body"]) for r in sim_requests(stack))

    for status, headers, raw in answers:
        assert canary.encode() not in raw, status
        assert canary not in json.dumps(headers)
    assert b"[REDACTED]" in answers[0][2]  # validate_only shows what would be sent, redacted
    audit = sql(stack, f"SELECT count(*) FROM audit_events a WHERE a::text LIKE '%{canary}%'")
    assert audit == "0"
    assert sql(stack, "SELECT count(*) FROM audit_events WHERE request_params::text LIKE '%[REDACTED]%'") != "0"
    for table in ("operations", "idempotency_keys"):
        assert sql(stack, f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%{canary}%'") == "0"
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE position('{canary}'::bytea in response_body) > 0") == "0"
    for log in stack.run_dir.glob("*.log"):
        if log.name.startswith("hostinger-sim"):
            continue
        assert canary not in log.read_text(errors="replace"), log.name


def test_the_catalogue_tables_are_current(stack):
    """docs/catalogue.md is generated from the catalogue of commands and reads, as docs/openapi.json is."""
    tables = subprocess.run([str(stack.binary), "openapi", "--markdown"], capture_output=True, text=True, check=True).stdout
    assert tables == (openapi_check.ROOT / "docs/catalogue.md").read_text(), \
        "docs/catalogue.md is stale: vpsgate openapi --markdown > docs/catalogue.md"


def test_the_document_lists_exactly_the_served_routes(stack, users):
    served, _, document = users["ada"].json("GET", "/openapi.json")
    assert served == 200
    assert document == openapi_check.VPSGATE.document, "docs/openapi.json is stale: vpsgate openapi | python3 -m json.tool > docs/openapi.json"
    from openapi_spec_validator import validate
    validate(document)
    operations = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert len(operations) == 83  # 41 commands, 34 reads (every one of Hostinger's 21, events, an operation's timeline, freezes, batches, me among them), approve, deny, cancel, a batch and its 4 decisions
    for method, template in sorted(operations):
        ids = {"/v1/templates/": "1130", "/v1/firewalls/": "4001", "/v1/public-keys/": "5001", "/v1/post-install-scripts/": "6001"}
        path = template.replace("{id}", next((i for prefix, i in ids.items() if template.startswith(prefix)), "1001"))
        path = path.replace("{operationId}", str(uuid.uuid4()))
        path = re.sub(r"\{ruleId\}", "4101", path)
        path = re.sub(r"\{[A-Za-z]+\}", "4001", path)
        if template == "/metrics":
            status, _, _ = users["ada"].request(method, path)
            assert status == 200
        elif method == "GET":
            if template == "/v1/vps/{id}/metrics":
                path += "?date_from=2025-05-01T00:00:00Z&date_to=2025-05-02T00:00:00Z"
            status, _, _ = users["ada"].json(method, path)
            if template == "/v1/vps/{id}/monarx":
                assert status in (200, 422), (method, template, status)  # 422: Monarx not installed, Hostinger says
                continue
            assert status in (200, 404), (method, template, status)
            if status == 404:
                # A random operation id, a batch, a project or an action that does not exist, no snapshot yet:
                # known route, unknown resource.
                assert "{operationId}" in template or template in ("/v1/batches/{id}", "/v1/vps/{id}/snapshot") \
                    or "{projectName}" in template or "{actionId}" in template, template
        elif "{operationId}" in template or template.startswith("/v1/batches/{id}/"):  # decisions on an unknown operation or batch
            status, _, body = users["ada"].json(method, path, body={})
            assert status in (404, 422), (method, template, body)
        else:
            status, _, body = users["ada"].json(method, path + "?validate_only=true", body={})
            assert status in (200, 422), (method, template, body)
    for method, path in (("GET", "/v1/anything"), ("POST", "/v1/vps/1001/reboot"), ("PATCH", "/v1/vps/1001/hostname"),
                         ("GET", "/v1/vps/1001/passthrough/virtual-machines")):
        status, _, problem = users["ada"].json(method, path, key=str(uuid.uuid4()))
        assert status == 404, (method, path)
