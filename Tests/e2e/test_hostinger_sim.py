"""hostinger-sim conformance: every operation of Hostinger's VPS document (41 writes, 21
reads), success and each error it can give, validated against the document
(openapi-schema-validator), plus behaviour: the VMs' states, the account's resources, and
what Hostinger's users report (undocumented action states, `ct_` names, rule changes that
unsync VMs, the rate limit)."""

import time
from datetime import datetime

import jsonschema
import pytest

import openapi_check
from vpsgate_e2e import reset_sim

API = "/api/vps/v1"
VM = API + "/virtual-machines"
GOOD_PASSWORD = "Correct-Horse7Battery"
NEW_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKeyMadeByTheTests ci"
COMPOSE = """services:
  web:
    image: nginx:1.27
    ports:
      - "8080:80"
      - "8443:443/tcp"
  cache:
    image: redis:7
    command: redis-server --save ""
    ports:
      - 6379
"""
RULE = {"protocol": "TCP", "port": "443", "source": "any", "source_detail": "any"}
SETUP = {"template_id": 1130, "data_center_id": 21, "password": GOOD_PASSWORD, "hostname": "fresh.example.com",
         "install_monarx": True, "enable_backups": False, "ns1": "9.9.9.9", "public_key": {"name": "setup", "key": NEW_KEY}}
PURCHASE = {"item_id": "hostingercom-vps-kvm4-usd-1m", "payment_method_id": 1327362, "coupons": ["WELCOME"],
            "setup": {"template_id": 1130, "data_center_id": 29}}
METRICS = f"{VM}/1001/metrics?date_from=2025-05-01T00:00:00Z&date_to=2025-05-02T00:00:00Z"

# (method, path, body) for every write that answers an Action, on a VM each so they do not
# interfere: the 23 vpsgate's part 1 uses, then Docker Manager's (project "web" made first).
MUTATIONS = [
    ("POST", f"{VM}/1001/start", None),
    ("POST", f"{VM}/1002/stop", None),
    ("POST", f"{VM}/1003/restart", None),
    ("PUT", f"{VM}/1001/hostname", {"hostname": "web-1.example.com"}),
    ("DELETE", f"{VM}/1001/hostname", None),
    ("PUT", f"{VM}/1001/nameservers", {"ns1": "9.9.9.9", "ns2": "2606:4700:4700::1111"}),
    ("POST", f"{VM}/1001/ptr/2001", {"domain": "mail.example.com"}),
    ("DELETE", f"{VM}/1001/ptr/2001", None),
    ("POST", f"{API}/firewall/4001/activate/1001", None),
    ("POST", f"{API}/firewall/4001/deactivate/1001", None),
    ("POST", f"{API}/firewall/4001/sync/1001", None),
    ("POST", f"{API}/public-keys/attach/1001", {"ids": [5001, 5002]}),
    ("POST", f"{VM}/1001/monarx", None),
    ("DELETE", f"{VM}/1001/monarx", None),
    ("PUT", f"{VM}/1001/root-password", {"password": GOOD_PASSWORD}),
    ("PUT", f"{VM}/1001/panel-password", {"password": GOOD_PASSWORD}),
    ("POST", f"{VM}/1003/recovery", {"root_password": GOOD_PASSWORD}),
    ("DELETE", f"{VM}/1003/recovery", None),
    ("POST", f"{VM}/1001/snapshot", None),
    ("POST", f"{VM}/1001/snapshot/restore", None),
    ("DELETE", f"{VM}/1001/snapshot", None),
    ("POST", f"{VM}/1002/backups/3002/restore", None),
    ("POST", f"{VM}/1003/recreate", {"template_id": 1130, "password": GOOD_PASSWORD, "post_install_script_id": 7}),
    ("POST", f"{VM}/1001/docker", {"project_name": "shop", "content": COMPOSE, "environment": "MODE=test"}),
    ("POST", f"{VM}/1001/docker/web/start", None),
    ("POST", f"{VM}/1001/docker/web/stop", None),
    ("POST", f"{VM}/1001/docker/web/restart", None),
    ("POST", f"{VM}/1001/docker/web/update", None),
    ("DELETE", f"{VM}/1001/docker/web/down", None),
]

# (method, path, body, what the answer must show) for the writes Hostinger answers at once
# with a resource, a VM or `{"message"}`.
SYNC_MUTATIONS = [
    ("POST", f"{API}/firewall", {"name": "Web only"}, lambda r: r["name"] == "Web only" and r["rules"] == []),
    ("DELETE", f"{API}/firewall/4001", None, lambda r: r == {"message": "Request accepted"}),
    ("POST", f"{API}/firewall/4001/rules", RULE, lambda r: {k: r[k] for k in RULE} == RULE and r["action"] == "accept"),
    ("PUT", f"{API}/firewall/4001/rules/4101",
     {"protocol": "TCP", "port": "2200:2222", "source": "custom", "source_detail": "192.0.2.0/24"},
     lambda r: (r["id"], r["port"], r["source_detail"]) == (4101, "2200:2222", "192.0.2.0/24")),
    ("DELETE", f"{API}/firewall/4001/rules/4102", None, lambda r: r["message"] == "Request accepted"),
    ("POST", f"{API}/public-keys", {"name": "ci", "key": NEW_KEY}, lambda r: (r["name"], r["key"]) == ("ci", NEW_KEY)),
    ("DELETE", f"{API}/public-keys/5002", None, lambda r: r["message"] == "Request accepted"),
    ("POST", f"{API}/post-install-scripts", {"name": "hello", "content": "#!/bin/sh\necho hello\n"},
     lambda r: r["name"] == "hello" and r["content"].startswith("#!/bin/sh")),
    ("PUT", f"{API}/post-install-scripts/6001", {"name": "nginx", "content": "x" * (48 * 1024)},
     lambda r: r["id"] == 6001 and len(r["content"]) == 48 * 1024),
    ("DELETE", f"{API}/post-install-scripts/6001", None, lambda r: r["message"] == "Request accepted"),
    ("POST", f"{VM}/1004/setup", SETUP, lambda r: (r["id"], r["state"], r["actions_lock"]) == (1004, "creating", "locked")),
    ("POST", VM, PURCHASE, lambda r: r["order"]["status"] == "completed" and r["virtual_machine"]["state"] == "creating"
     and r["virtual_machine"]["plan"] == "KVM 4" and r["order"]["subscription_id"] == r["virtual_machine"]["subscription_id"]),
]

READS = [
    ("GET", VM), ("GET", f"{VM}/1001"), ("GET", f"{VM}/1001/actions"), ("GET", f"{VM}/1001/actions?page=2"),
    ("GET", f"{VM}/1001/backups"), ("GET", f"{VM}/1001/public-keys"), ("GET", f"{API}/firewall"),
    ("GET", f"{API}/public-keys"), ("GET", f"{API}/templates"),
    ("GET", f"{API}/firewall/4001"), ("GET", f"{API}/post-install-scripts"), ("GET", f"{API}/post-install-scripts/6001"),
    ("GET", f"{API}/templates/1130"), ("GET", f"{API}/data-centers"), ("GET", f"{VM}/1001/snapshot"),
    ("GET", f"{VM}/1001/monarx"), ("GET", METRICS), ("GET", f"{VM}/1004/metrics?date_from=2025-05-01T00:00:00Z&date_to=2025-05-01T03:00:00%2B02:00"),
    ("GET", f"{VM}/1001/docker"), ("GET", f"{VM}/1001/docker/web"), ("GET", f"{VM}/1001/docker/web/containers"),
    ("GET", f"{VM}/1001/docker/web/logs"),
]

INVALID_BODIES = [
    ("PUT", f"{VM}/1001/hostname", {}, "hostname"),
    ("PUT", f"{VM}/1001/hostname", {"hostname": "not a hostname"}, "hostname"),
    ("PUT", f"{VM}/1001/hostname", {"hostname": "x" * 64 + ".example.com"}, "hostname"),
    ("PUT", f"{VM}/1001/nameservers", {"ns1": "dns.google"}, "ns1"),
    ("PUT", f"{VM}/1001/nameservers", {"ns1": "1.1.1.1", "ns2": "300.1.1.1"}, "ns2"),
    ("POST", f"{VM}/1001/ptr/2001", {"domain": "-bad-.example"}, "domain"),
    ("PUT", f"{VM}/1001/root-password", {"password": "short1A"}, "password"),
    ("PUT", f"{VM}/1001/root-password", {"password": "alllowercase1234"}, "password"),
    ("PUT", f"{VM}/1001/root-password", {"password": "Password1234"}, "password"),
    ("PUT", f"{VM}/1001/panel-password", {}, "password"),
    ("POST", f"{VM}/1001/recovery", {"root_password": "NODIGITSHEREATALL"}, "root_password"),
    ("POST", f"{VM}/1001/recreate", {}, "template_id"),
    ("POST", f"{VM}/1001/recreate", {"template_id": "1130"}, "template_id"),
    ("POST", f"{VM}/1001/recreate", {"template_id": 999}, "template_id"),
    ("POST", f"{VM}/1001/recreate", {"template_id": 1130, "post_install_script_id": "x"}, "post_install_script_id"),
    ("POST", f"{API}/public-keys/attach/1001", {"ids": []}, "ids"),
    ("POST", f"{API}/public-keys/attach/1001", {"ids": ["a"]}, "ids"),
    ("POST", f"{API}/firewall", {}, "name"),
    ("POST", f"{API}/firewall", {"name": 5}, "name"),
    ("POST", f"{API}/firewall/4001/rules", dict(RULE, protocol="FTP"), "protocol"),
    ("POST", f"{API}/firewall/4001/rules", dict(RULE, port="70000"), "port"),
    ("POST", f"{API}/firewall/4001/rules", dict(RULE, port="2048:1024"), "port"),
    ("POST", f"{API}/firewall/4001/rules", dict(RULE, source="anywhere"), "source"),
    ("POST", f"{API}/firewall/4001/rules", dict(RULE, source="custom"), "source_detail"),
    ("POST", f"{API}/firewall/4001/rules", dict(RULE, source="custom", source_detail="10.0.0.0/33"), "source_detail"),
    ("PUT", f"{API}/firewall/4001/rules/4101", {"protocol": "TCP"}, "port"),
    ("POST", f"{API}/public-keys", {"name": "x"}, "key"),
    ("POST", f"{API}/public-keys", {"name": "x", "key": "not a key"}, "key"),
    ("POST", f"{API}/public-keys", {"key": NEW_KEY}, "name"),
    ("POST", f"{API}/post-install-scripts", {"name": "big", "content": "x" * (48 * 1024 + 1)}, "content"),
    ("POST", f"{API}/post-install-scripts", {"name": "empty"}, "content"),
    ("PUT", f"{API}/post-install-scripts/6001", {"content": "echo"}, "name"),
    ("POST", f"{VM}/1004/setup", {"template_id": 1130}, "data_center_id"),
    ("POST", f"{VM}/1004/setup", {"data_center_id": 21}, "template_id"),
    ("POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 99}, "data_center_id"),
    ("POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21, "password": "weak"}, "password"),
    ("POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21, "hostname": "no"}, "hostname"),
    ("POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21, "post_install_script_id": 9999},
     "post_install_script_id"),
    ("POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21, "install_monarx": "yes"}, "install_monarx"),
    ("POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21, "public_key": {"name": "k"}}, "public_key.key"),
    ("POST", VM, {"item_id": "hostingercom-vps-kvm2-usd-1m"}, "setup"),
    ("POST", VM, {"item_id": "hostingercom-vps-kvm99-usd-1m", "setup": SETUP}, "item_id"),
    ("POST", VM, {"item_id": "hostingercom-vps-kvm2-usd-1m", "setup": {"data_center_id": 21}}, "setup.template_id"),
    ("POST", VM, dict(PURCHASE, payment_method_id="card"), "payment_method_id"),
    ("POST", f"{VM}/1001/docker", {"project_name": "ab", "content": COMPOSE}, "project_name"),
    ("POST", f"{VM}/1001/docker", {"project_name": "bad name", "content": COMPOSE}, "project_name"),
    ("POST", f"{VM}/1001/docker", {"project_name": "web"}, "content"),
    ("POST", f"{VM}/1001/docker", {"project_name": "web", "content": "x" * 8193}, "content"),
    ("POST", f"{VM}/1001/docker", {"project_name": "web", "content": "version: '3'\n"}, "content"),
    ("POST", f"{VM}/1001/docker/no!/start", None, "project_name"),
    ("GET", f"{VM}/1001/metrics", None, "date_from"),
    ("GET", f"{VM}/1001/metrics?date_from=yesterday&date_to=2025-05-02T00:00:00Z", None, "date_from"),
    ("GET", f"{VM}/1001/metrics?date_from=2025-05-02T00:00:00Z&date_to=2025-05-01T00:00:00Z", None, "date_to"),
]

UNKNOWN_IDS = [
    ("POST", f"{VM}/9999/start", None),
    ("GET", f"{VM}/9999", None),
    ("GET", f"{VM}/1001/actions/1", None),
    ("POST", f"{VM}/1001/ptr/9999", {"domain": "mail.example.com"}),
    ("POST", f"{VM}/1001/backups/9999/restore", None),
    ("POST", f"{API}/firewall/9999/activate/1001", None),
    ("POST", f"{API}/public-keys/attach/1001", {"ids": [9999]}),
    ("GET", f"{VM}/1001/snapshot", None),
    ("GET", f"{API}/firewall/9999", None),
    ("DELETE", f"{API}/firewall/9999", None),
    ("POST", f"{API}/firewall/9999/rules", RULE),
    ("PUT", f"{API}/firewall/4001/rules/9999", RULE),
    ("DELETE", f"{API}/firewall/4001/rules/9999", None),
    ("POST", f"{API}/firewall/4001/sync/9999", None),
    ("DELETE", f"{API}/public-keys/9999", None),
    ("GET", f"{API}/post-install-scripts/9999", None),
    ("PUT", f"{API}/post-install-scripts/9999", {"name": "x", "content": "y"}),
    ("DELETE", f"{API}/post-install-scripts/9999", None),
    ("GET", f"{API}/templates/9999", None),
    ("POST", f"{VM}/9999/setup", SETUP),
    ("GET", f"{VM}/9999/docker", None),
    ("GET", f"{VM}/1001/docker/missing", None),
    ("GET", f"{VM}/1001/docker/missing/logs", None),
    ("POST", f"{VM}/1001/docker/missing/restart", None),
    ("DELETE", f"{VM}/1001/docker/missing/down", None),
    ("GET", f"{VM}/9999/metrics?date_from=2025-05-01T00:00:00Z&date_to=2025-05-02T00:00:00Z", None),
    ("GET", f"{API}/firewall/abc", None),
]


@pytest.fixture(autouse=True)
def reset(stack):
    reset_sim(stack, action_delay_ms=300)
    yield


def check(stack, method, path, body=None, **kwargs):
    status, headers, parsed = stack.sim(method, path, body, **kwargs)
    openapi_check.validate(method, path, status, headers.get("Content-Type", ""), parsed)
    return status, headers, parsed


def prepare(stack, method, path):
    """What a request needs in place first (a snapshot, recovery mode, Monarx, Docker project
    "web"), made with instant actions; the tests' action delay is put back after."""
    needs = []
    if "/snapshot" in path and (method != "POST" or path.endswith("/restore")):
        needs.append(("POST", f"{VM}/1001/snapshot", None))
    if method == "DELETE" and path.endswith("/recovery"):
        needs.append(("POST", f"{VM}/1003/recovery", {"root_password": GOOD_PASSWORD}))
    if method == "GET" and path.endswith("/monarx"):
        needs.append(("POST", f"{VM}/1001/monarx", None))
    if "/docker/web" in path:
        needs.append(("POST", f"{VM}/1001/docker", {"project_name": "web", "content": COMPOSE}))
    if not needs:
        return
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    for need in needs:
        assert stack.sim(*need)[0] == 200, need
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})


def template_of(method, path):
    return openapi_check.HOSTINGER.operation(method, path)[0]


def document_operations(methods):
    return {(method.upper(), template) for template, operations in openapi_check.DOCUMENT["paths"].items()
            for method in operations if method in methods}


def test_every_operation_of_the_document_is_exercised():
    writes = {(m, template_of(m, p)) for m, p, *_ in MUTATIONS + SYNC_MUTATIONS}
    assert writes == document_operations(("post", "put", "delete")) and len(writes) == 41
    # Every action is read back by its id in test_every_mutation_answers_an_action_and_conforms.
    reads = {(m, template_of(m, p)) for m, p in READS + [("GET", f"{VM}/1001/actions/1")]}
    assert reads == document_operations(("get",)) and len(reads) == 21


@pytest.mark.parametrize("method,path,body", MUTATIONS)
def test_every_mutation_answers_an_action_and_conforms(stack, method, path, body):
    prepare(stack, method, path)
    status, _, action = check(stack, method, path, body)
    assert status == 200
    assert action["state"] == "sent"
    time.sleep(0.4)
    vm_id = int([p for p in path.split("/") if p.isdigit() and len(p) == 4 and p.startswith("100")][0])
    status, _, later = check(stack, "GET", f"{VM}/{vm_id}/actions/{action['id']}")
    assert status == 200 and later["state"] == "success", later


@pytest.mark.parametrize("method,path,body,shows", SYNC_MUTATIONS)
def test_every_synchronous_write_answers_its_resource_and_conforms(stack, method, path, body, shows):
    status, _, answer = check(stack, method, path, body)
    assert status == 200
    assert shows(answer), answer


@pytest.mark.parametrize("method,path", READS)
def test_every_read_conforms(stack, method, path):
    prepare(stack, method, path)
    status, _, body = check(stack, method, path)
    assert status == 200, body


@pytest.mark.parametrize("method,path,body,field", INVALID_BODIES)
def test_invalid_bodies_are_laravel_422s(stack, method, path, body, field):
    prepare(stack, method, path)
    status, _, problem = check(stack, method, path, body)
    assert status == 422
    assert field in problem["errors"], problem


@pytest.mark.parametrize("method,path,body", UNKNOWN_IDS)
def test_unknown_ids_are_404_in_hostingers_shape(stack, method, path, body):
    status, _, error = check(stack, method, path, body)
    assert status == 404
    assert error["message"].startswith("[VPS:2002]")


@pytest.mark.parametrize("method,path,body", MUTATIONS[:3] + [(m, p, None) for m, p in READS[:2]])
def test_wrong_or_missing_token_is_401(stack, method, path, body):
    for token in ("wrong-token", ""):
        status, _, error = check(stack, method, path, body, token=token)
        assert status == 401
        assert error["message"] == "Unauthenticated"


def test_missing_user_agent_is_the_cdns_html_403(stack):
    status, headers, body = stack.sim("POST", f"{VM}/1001/start", headers={"User-Agent": ""})
    assert status == 403
    assert headers["Content-Type"].startswith("text/html")
    openapi_check.validate("POST", f"{VM}/1001/start", status, headers["Content-Type"], body)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_injected_faults_answer_in_hostingers_shape(stack, status):
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/start$", "status": status, "retry_after": 2})
    code, headers, body = check(stack, "POST", f"{VM}/1002/start")
    assert code == status
    assert headers["Retry-After"] == "2"
    # times defaults to 1: the next request is served normally, and nothing was applied.
    assert check(stack, "GET", f"{VM}/1002")[2]["state"] == "stopped"
    assert check(stack, "POST", f"{VM}/1002/start")[0] == 200


def test_html_fault_pages(stack):
    stack.sim("POST", "/__sim/faults", {"path": "/stop$", "status": 502, "html": True})
    status, headers, body = stack.sim("POST", f"{VM}/1001/stop")
    assert status == 502 and headers["Content-Type"].startswith("text/html")
    openapi_check.validate("POST", f"{VM}/1001/stop", status, headers["Content-Type"], body)


# MARK: - Behaviour

def wait_state(stack, vm_id, expected, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = stack.sim("GET", f"{VM}/{vm_id}")[2]["state"]
        if state == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"VM {vm_id} never reached {expected} (last {state})")


def test_stop_moves_through_stopping_to_stopped(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 600})
    _, _, action = stack.sim("POST", f"{VM}/1001/stop")
    vm = stack.sim("GET", f"{VM}/1001")[2]
    assert vm["state"] == "stopping" and vm["actions_lock"] == "locked"
    wait_state(stack, 1001, "stopped")
    assert stack.sim("GET", f"{VM}/1001")[2]["actions_lock"] == "unlocked"
    assert stack.sim("GET", f"{VM}/1001/actions/{action['id']}")[2]["state"] == "success"


def test_recreate_moves_through_recreating_and_drops_the_snapshot(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    stack.sim("POST", f"{VM}/1003/snapshot")
    assert stack.sim("GET", f"{VM}/1003/snapshot")[0] == 200
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 500})
    stack.sim("POST", f"{VM}/1003/recreate", {"template_id": 1130})
    assert stack.sim("GET", f"{VM}/1003")[2]["state"] == "recreating"
    wait_state(stack, 1003, "running")
    assert stack.sim("GET", f"{VM}/1003/snapshot")[0] == 404


def test_configuration_changes_show_in_later_reads(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    stack.sim("PUT", f"{VM}/1001/hostname", {"hostname": "db.example.org"})
    stack.sim("PUT", f"{VM}/1001/nameservers", {"ns1": "9.9.9.9", "ns2": "149.112.112.112"})
    stack.sim("POST", f"{VM}/1001/ptr/2001", {"domain": "mx.example.org"})
    stack.sim("POST", f"{API}/firewall/4001/activate/1001")
    stack.sim("POST", f"{API}/public-keys/attach/1001", {"ids": [5002]})
    vm = stack.sim("GET", f"{VM}/1001")[2]
    assert vm["hostname"] == "db.example.org"
    assert (vm["ns1"], vm["ns2"]) == ("9.9.9.9", "149.112.112.112")
    assert vm["ipv4"][0]["ptr"] == "mx.example.org"
    assert vm["firewall_group_id"] == 4001
    assert [k["id"] for k in stack.sim("GET", f"{VM}/1001/public-keys")[2]["data"]] == [5002]
    stack.sim("DELETE", f"{VM}/1001/hostname")
    vm = stack.sim("GET", f"{VM}/1001")[2]
    assert vm["hostname"] == "srv1001.hstgr.cloud" and vm["ipv4"][0]["ptr"] is None


def test_recovery_stop_outside_recovery_fails_as_an_action(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 100})
    status, _, action = stack.sim("DELETE", f"{VM}/1001/recovery")
    assert status == 200
    time.sleep(0.2)
    assert stack.sim("GET", f"{VM}/1001/actions/{action['id']}")[2]["state"] == "error"
    assert stack.sim("GET", f"{VM}/1001")[2]["state"] == "running"


def test_action_error_fault_fails_the_action_and_restores_the_state(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 200})
    stack.sim("POST", "/__sim/faults", {"path": "/stop$", "action_error": True})
    _, _, action = stack.sim("POST", f"{VM}/1001/stop")
    assert stack.sim("GET", f"{VM}/1001")[2]["state"] == "stopping"
    time.sleep(0.3)
    assert stack.sim("GET", f"{VM}/1001/actions/{action['id']}")[2]["state"] == "error"
    assert stack.sim("GET", f"{VM}/1001")[2]["state"] == "running"


def test_actions_are_listed_newest_first_and_paginated(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    ids = [stack.sim("POST", f"{VM}/1001/restart")[2]["id"] for _ in range(17)]
    first = stack.sim("GET", f"{VM}/1001/actions")[2]
    second = stack.sim("GET", f"{VM}/1001/actions?page=2")[2]
    assert [a["id"] for a in first["data"]] == list(reversed(ids))[:15]
    assert [a["id"] for a in second["data"]] == list(reversed(ids))[15:]
    assert first["meta"] == {"current_page": 1, "per_page": 15, "total": 17}


def test_apply_fault_performs_the_mutation_then_fails(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/recreate$", "status": 503, "apply": True})
    status, _, _ = stack.sim("POST", f"{VM}/1003/recreate", {"template_id": 1130})
    assert status == 503
    actions = stack.sim("GET", f"{VM}/1003/actions")[2]["data"]
    assert [a["name"] for a in actions] == ["recreate"]


def test_times_minus_one_affects_every_request_until_cleared(stack):
    stack.sim("POST", "/__sim/faults", {"path": "^/api/vps/v1/virtual-machines$", "status": 500, "times": -1})
    assert [stack.sim("GET", VM)[0] for _ in range(3)] == [500] * 3
    stack.sim("DELETE", "/__sim/faults")
    assert stack.sim("GET", VM)[0] == 200


def test_delay_fault_holds_the_answer(stack):
    stack.sim("POST", "/__sim/faults", {"path": "/1001$", "delay_ms": 700})
    started = time.monotonic()
    assert stack.sim("GET", f"{VM}/1001")[0] == 200
    assert time.monotonic() - started >= 0.7


def test_request_log_records_method_path_headers_and_body(stack):
    stack.sim("PUT", f"{VM}/1001/hostname", {"hostname": "log.example.com"}, headers={"X-Correlation-ID": "c-1"})
    log = stack.sim("GET", "/__sim/requests")[2]
    assert len(log) == 1
    entry = log[0]
    assert (entry["method"], entry["path"]) == ("PUT", f"{VM}/1001/hostname")
    assert entry["body"] == {"hostname": "log.example.com"}
    assert entry["headers"]["x-correlation-id"] == "c-1"
    assert entry["headers"]["authorization"] == f"Bearer {stack.sim_token}"
    assert entry["at"].endswith("Z")


def test_request_log_names_the_actions_each_request_created(stack):
    """A performed mutation names its action, also when a fault answered 500 after
    performing it; a refused one and a read name none."""
    status, _, action = stack.sim("POST", f"{VM}/1001/restart")
    assert status == 200
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1001/restart$", "status": 500, "apply": True})
    assert stack.sim("POST", f"{VM}/1001/restart")[0] == 500
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1001/restart$", "status": 503})
    assert stack.sim("POST", f"{VM}/1001/restart")[0] == 503
    actions = {a["id"] for a in stack.sim("GET", f"{VM}/1001/actions")[2]["data"]}
    log = [r for r in stack.sim("GET", "/__sim/requests")[2] if r["path"].startswith(VM)]
    created = [(r["method"], r["status"], r["applied"], r["action_ids"]) for r in log]
    assert created[0] == ("POST", 200, True, [action["id"]])
    assert created[1][:3] == ("POST", 500, True) and len(created[1][3]) == 1 and created[1][3][0] in actions
    assert created[1][3][0] != action["id"]
    assert created[2] == ("POST", 503, False, [])
    assert created[3][3] == []  # the read of the actions


def test_reset_restores_the_fixtures(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    stack.sim("POST", f"{VM}/1001/stop")
    stack.sim("POST", "/__sim/faults", {"path": ".", "status": 500})
    stack.sim("POST", "/__sim/reset")
    vms = {vm["id"]: vm["state"] for vm in stack.sim("GET", VM)[2]}
    assert vms == {1001: "running", 1002: "stopped", 1003: "running", 1004: "initial"}
    assert len(stack.sim("GET", "/__sim/requests")[2]) == 1  # only the GET just made


def test_more_fixtures_through_the_control_api(stack):
    status, _, vm = stack.sim("POST", "/__sim/vms", {"id": 1005, "state": "stopped"})
    assert status == 200 and vm["ipv4"][0]["id"] == 2005
    assert stack.sim("GET", f"{VM}/1005")[2]["state"] == "stopped"


# MARK: - Behaviour of the whole write surface

def firewall(stack, firewall_id=4001):
    return check(stack, "GET", f"{API}/firewall/{firewall_id}")[2]


def test_a_rule_change_unsyncs_the_firewall_until_every_vm_using_it_is_synced(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    assert firewall(stack)["is_synced"] is False  # applied nowhere yet
    for vm_id in (1001, 1003):
        check(stack, "POST", f"{API}/firewall/4001/activate/{vm_id}")
    assert firewall(stack)["is_synced"] is True
    rule = check(stack, "POST", f"{API}/firewall/4001/rules", RULE)[2]
    assert firewall(stack)["is_synced"] is False
    assert [f["is_synced"] for f in check(stack, "GET", f"{API}/firewall")[2]["data"]] == [False]
    check(stack, "POST", f"{API}/firewall/4001/sync/1001")
    assert firewall(stack)["is_synced"] is False  # 1003 still has the old rules
    check(stack, "POST", f"{API}/firewall/4001/sync/1003")
    assert firewall(stack)["is_synced"] is True
    for method, path, body in (("PUT", f"{API}/firewall/4001/rules/{rule['id']}", dict(RULE, port="8443")),
                               ("DELETE", f"{API}/firewall/4001/rules/{rule['id']}", None)):
        assert check(stack, method, path, body)[0] == 200
        assert firewall(stack)["is_synced"] is False
        check(stack, "POST", f"{API}/firewall/4001/sync/1001")
        check(stack, "POST", f"{API}/firewall/4001/sync/1003")
        assert firewall(stack)["is_synced"] is True
    assert [r["id"] for r in firewall(stack)["rules"]] == [4101, 4102]


def test_a_sync_is_an_action_and_the_firewall_is_synced_only_when_it_succeeds(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    check(stack, "POST", f"{API}/firewall/4001/activate/1001")
    check(stack, "PUT", f"{API}/firewall/4001/rules/4101", dict(RULE, port="22"))
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    _, _, action = check(stack, "POST", f"{API}/firewall/4001/sync/1001")
    assert action["name"] == "firewall_sync" and action["state"] == "sent"
    assert firewall(stack)["is_synced"] is False
    time.sleep(0.4)
    assert firewall(stack)["is_synced"] is True


def test_a_new_firewall_has_no_rules_and_deleting_one_deactivates_it(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    created = check(stack, "POST", f"{API}/firewall", {"name": "Mail"})[2]
    assert created["id"] not in (4001,) and created["is_synced"] is False
    check(stack, "POST", f"{API}/firewall/{created['id']}/activate/1002")
    assert check(stack, "GET", f"{VM}/1002")[2]["firewall_group_id"] == created["id"]
    # Activating another firewall replaces it: one active firewall per VM.
    check(stack, "POST", f"{API}/firewall/4001/activate/1002")
    assert check(stack, "GET", f"{VM}/1002")[2]["firewall_group_id"] == 4001
    assert check(stack, "DELETE", f"{API}/firewall/4001")[0] == 200
    assert check(stack, "GET", f"{VM}/1002")[2]["firewall_group_id"] is None
    assert [f["id"] for f in check(stack, "GET", f"{API}/firewall")[2]["data"]] == [created["id"]]
    assert check(stack, "GET", f"{API}/firewall/4001")[0] == 404


def test_keys_made_and_deleted_in_the_account_stay_on_the_vms_they_were_attached_to(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    key = check(stack, "POST", f"{API}/public-keys", {"name": "ci", "key": NEW_KEY})[2]
    assert [k["id"] for k in check(stack, "GET", f"{API}/public-keys")[2]["data"]] == [5001, 5002, key["id"]]
    check(stack, "POST", f"{API}/public-keys/attach/1001", {"ids": [key["id"]]})
    assert check(stack, "DELETE", f"{API}/public-keys/{key['id']}")[0] == 200
    assert [k["id"] for k in check(stack, "GET", f"{API}/public-keys")[2]["data"]] == [5001, 5002]
    assert check(stack, "GET", f"{VM}/1001/public-keys")[2]["data"] == [key]
    assert check(stack, "POST", f"{API}/public-keys/attach/1001", {"ids": [key["id"]]})[0] == 404


def test_post_install_scripts_are_created_read_updated_and_deleted(stack):
    created = check(stack, "POST", f"{API}/post-install-scripts", {"name": "a", "content": "echo a"})[2]
    assert check(stack, "GET", f"{API}/post-install-scripts/{created['id']}")[2] == created
    updated = check(stack, "PUT", f"{API}/post-install-scripts/{created['id']}", {"name": "b", "content": "echo b"})[2]
    assert (updated["name"], updated["content"], updated["created_at"]) == ("b", "echo b", created["created_at"])
    assert [s["id"] for s in check(stack, "GET", f"{API}/post-install-scripts")[2]["data"]] == [6001, created["id"]]
    check(stack, "DELETE", f"{API}/post-install-scripts/{created['id']}")
    assert check(stack, "GET", f"{API}/post-install-scripts/{created['id']}")[0] == 404


def test_the_script_limit_is_48_kibibytes_of_utf8(stack):
    at_limit = "é" * (24 * 1024)  # 2 bytes each
    assert check(stack, "POST", f"{API}/post-install-scripts", {"name": "max", "content": at_limit})[0] == 200
    status, _, problem = check(stack, "POST", f"{API}/post-install-scripts", {"name": "over", "content": at_limit + "x"})
    assert status == 422 and "content" in problem["errors"]


def test_setup_takes_an_initial_vm_through_creating_to_running(stack):
    _, _, vm = check(stack, "POST", f"{VM}/1004/setup", SETUP)
    assert vm["state"] == "creating" and vm["template"] is None
    _, _, actions = check(stack, "GET", f"{VM}/1004/actions")
    assert [(a["name"], a["state"]) for a in actions["data"]] == [("ct_create", "sent")]
    wait_state(stack, 1004, "running")
    vm = check(stack, "GET", f"{VM}/1004")[2]
    assert (vm["hostname"], vm["template"]["id"], vm["data_center_id"], vm["ns1"]) == ("fresh.example.com", 1130, 21, "9.9.9.9")
    keys = check(stack, "GET", f"{VM}/1004/public-keys")[2]["data"]
    assert [(k["name"], k["key"]) for k in keys] == [("setup", NEW_KEY)]
    assert keys[0] in check(stack, "GET", f"{API}/public-keys")[2]["data"]
    assert check(stack, "GET", f"{VM}/1004/monarx")[0] == 200  # install_monarx
    assert check(stack, "GET", f"{VM}/1004/actions/{actions['data'][0]['id']}")[2]["state"] == "success"


@pytest.mark.parametrize("vm_id", [1001, 1002])
def test_setup_of_a_vm_not_in_state_initial_is_a_422(stack, vm_id):
    status, _, problem = check(stack, "POST", f"{VM}/{vm_id}/setup", SETUP)
    assert status == 422
    assert problem["message"] == "The virtual machine must be in the initial state to be set up."
    assert list(problem["errors"]) == ["virtual_machine"]
    assert check(stack, "GET", f"{VM}/{vm_id}/actions")[2]["data"] == []


def test_a_setup_that_fails_leaves_the_vm_initial_for_another_setup(stack):
    stack.sim("POST", "/__sim/faults", {"path": "/setup$", "action_error": True})
    check(stack, "POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21})
    wait_state(stack, 1004, "initial")
    assert check(stack, "GET", f"{VM}/1004/actions")[2]["data"][0]["state"] == "error"
    assert check(stack, "GET", f"{VM}/1004")[2]["template"] is None
    assert check(stack, "POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21})[0] == 200
    wait_state(stack, 1004, "running")


def test_a_purchase_adds_a_vm_of_the_plan_that_its_setup_brings_up(stack):
    _, _, answer = check(stack, "POST", VM, PURCHASE)
    order, vm = answer["order"], answer["virtual_machine"]
    assert (order["currency"], order["subtotal"], order["total"]) == ("USD", 1299, 1572)
    assert (vm["plan"], vm["cpus"], vm["memory"], vm["data_center_id"]) == ("KVM 4", 4, 16384, 29)
    assert vm["id"] in [v["id"] for v in check(stack, "GET", VM)[2]]
    wait_state(stack, vm["id"], "running")
    assert check(stack, "GET", f"{VM}/{vm['id']}")[2]["template"]["id"] == 1130
    assert [a["name"] for a in check(stack, "GET", f"{VM}/{vm['id']}/actions")[2]["data"]] == ["ct_create"]
    again = check(stack, "POST", VM, PURCHASE)[2]
    assert again["virtual_machine"]["id"] > vm["id"] and again["order"]["id"] > order["id"]


def project(stack, name="web", vm_id=1001):
    projects = {p["name"]: p for p in check(stack, "GET", f"{VM}/{vm_id}/docker")[2]}
    return projects.get(name)


def test_a_docker_project_follows_its_actions(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    _, _, action = check(stack, "POST", f"{VM}/1001/docker", {"project_name": "web", "content": COMPOSE})
    assert action["name"] == "docker_project_create"
    created = project(stack)
    assert (created["state"], created["status"], created["path"]) == ("created", "created(2)", "/docker/web/docker-compose.yaml")
    time.sleep(0.4)
    running = project(stack)
    assert (running["state"], running["status"]) == ("running", "running(2)")
    web, cache = running["containers"]
    assert (web["name"], web["image"], cache["image"], cache["command"]) == ("web-web-1", "nginx:1.27", "redis:7", 'redis-server --save ""')
    assert [(p["type"], p["host_port"], p["container_port"]) for p in web["ports"]] == [("published", 8080, 80), ("published", 8443, 443)]
    assert [(p["type"], p["container_port"]) for p in cache["ports"]] == [("exposed", 6379)]
    assert "stats" not in web
    containers = check(stack, "GET", f"{VM}/1001/docker/web/containers")[2]
    assert all(c["state"] == "running" and c["stats"]["memory_total"] == 8192 * 1048576 for c in containers)
    assert check(stack, "GET", f"{VM}/1001/docker/web")[2] == {"content": COMPOSE, "environment": None}

    check(stack, "POST", f"{VM}/1001/docker/web/stop")
    assert {c["state"] for c in project(stack)["containers"]} == {"stopping"}
    time.sleep(0.4)
    assert project(stack)["state"] == "stopped"
    assert all(c["stats"] is None for c in check(stack, "GET", f"{VM}/1001/docker/web/containers")[2])
    logs = check(stack, "GET", f"{VM}/1001/docker/web/logs")[2]
    assert [entry["service"] for entry in logs] == ["web", "cache"]
    assert [e["line"] for e in logs[0]["entries"]] == ["Container web-web-1 Created", "Container web-web-1 Started",
                                                       "Container web-web-1 Stopped"]

    check(stack, "DELETE", f"{VM}/1001/docker/web/down")
    time.sleep(0.4)
    assert project(stack) is None


def test_a_failed_docker_action_puts_the_project_back(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    check(stack, "POST", f"{VM}/1001/docker", {"project_name": "web", "content": COMPOSE})
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    stack.sim("POST", "/__sim/faults", {"path": "/restart$", "action_error": True})
    check(stack, "POST", f"{VM}/1001/docker/web/restart")
    assert {c["state"] for c in project(stack)["containers"]} == {"restarting"}
    time.sleep(0.4)
    assert project(stack)["state"] == "running"
    # Replacing a project with a failed create puts the old one back too.
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/docker$", "action_error": True})
    check(stack, "POST", f"{VM}/1001/docker", {"project_name": "web", "content": "https://github.com/acme/blog"})
    assert [c["name"] for c in project(stack)["containers"]] == ["web-blog-1"]
    time.sleep(0.4)
    assert [c["name"] for c in project(stack)["containers"]] == ["web-web-1", "web-cache-1"]


def test_docker_projects_need_a_running_vm(stack):
    status, _, problem = check(stack, "POST", f"{VM}/1002/docker", {"project_name": "web", "content": COMPOSE})
    assert status == 422 and list(problem["errors"]) == ["virtual_machine"]
    assert check(stack, "GET", f"{VM}/1002/docker")[2] == []


def test_monarx_metrics_need_monarx(stack):
    status, _, problem = check(stack, "GET", f"{VM}/1001/monarx")
    assert status == 422 and "monarx" in problem["errors"]


def test_metrics_are_hourly_and_null_for_a_vm_never_set_up(stack):
    _, _, metrics = check(stack, "GET", METRICS)
    assert metrics["cpu_usage"]["unit"] == "%" and metrics["uptime"]["unit"] == "milliseconds"
    assert list(metrics["ram_usage"]["usage"])[:2] == ["1746057600", "1746061200"] and len(metrics["ram_usage"]["usage"]) == 25
    _, _, initial = check(stack, "GET", METRICS.replace("/1001/", "/1004/"))
    assert set(initial.values()) == {None}


# MARK: - Behaviour Hostinger's users report

def test_extra_states_pass_actions_through_started_which_the_document_does_not_list(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 800, "extra_states": True})
    _, _, action = check(stack, "POST", f"{VM}/1001/restart")
    assert action["state"] == "sent"
    path = f"{VM}/1001/actions/{action['id']}"
    time.sleep(0.5)
    status, headers, started = stack.sim("GET", path)
    assert started["state"] == "started"
    with pytest.raises(jsonschema.ValidationError):
        openapi_check.validate("GET", path, status, headers["Content-Type"], started)
    time.sleep(0.4)
    assert check(stack, "GET", path)[2]["state"] == "success"
    assert stack.sim("POST", "/__sim/config", {})[2]["extra_states"] is True


def test_an_action_state_fault_reports_an_undocumented_state_until_the_action_ends(stack):
    stack.sim("POST", "/__sim/faults", {"path": "/stop$", "action_state": "queued"})
    _, _, action = stack.sim("POST", f"{VM}/1001/stop")
    assert action["state"] == "queued"
    assert stack.sim("GET", f"{VM}/1001/actions/{action['id']}")[2]["state"] == "queued"
    time.sleep(0.4)
    assert check(stack, "GET", f"{VM}/1001/actions/{action['id']}")[2]["state"] == "success"
    assert check(stack, "POST", f"{VM}/1001/start")[2]["state"] == "sent"  # one request only


def test_power_and_setup_actions_carry_the_ct_prefix(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    names = [check(stack, "POST", f"{VM}/1001/{verb}")[2]["name"] for verb in ("stop", "start", "restart")]
    check(stack, "POST", f"{VM}/1004/setup", {"template_id": 1130, "data_center_id": 21})
    names.append(check(stack, "GET", f"{VM}/1004/actions")[2]["data"][0]["name"])
    assert names == ["ct_stop", "ct_start", "ct_restart", "ct_create"]


def windows(log, seconds=60):
    """Requests the limit let through, per window, read off the request log: a window opens
    with the first such request after the previous one closed and lasts `seconds`. Requests
    the CDN stopped (no User-Agent) never reached the limit."""
    counts, start = [], None
    for entry in log:
        if entry["rate_limited"] or not entry["headers"].get("user-agent"):
            continue
        at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        if start is None or (at - start).total_seconds() >= seconds:
            counts.append(0)
            start = at
        counts[-1] += 1
    return counts


def test_the_rate_limit_answers_429_with_retry_after_past_n_requests_a_window(stack):
    limit = 5
    assert stack.sim("POST", "/__sim/config", {"rate_limit_per_minute": limit})[2]["rate_limit_per_minute"] == limit
    answers = [check(stack, method, path) for method, path in
               [("GET", VM), ("POST", f"{VM}/1001/restart"), ("GET", f"{API}/firewall")] * 4]
    statuses = [status for status, _, _ in answers]
    assert statuses == [200] * limit + [429] * (len(answers) - limit)
    for status, headers, body in answers[limit:]:
        assert body["message"] == "Too Many Attempts." and body["correlation_id"]
        assert 1 <= int(headers["Retry-After"]) <= 60
    # The CDN answers a request without a User-Agent before the limit sees it.
    assert stack.sim("GET", VM, headers={"User-Agent": ""})[0] == 403
    log = stack.sim("GET", "/__sim/requests")[2]
    assert [e["status"] for e in log if e["rate_limited"]] == [429] * (len(answers) - limit)
    assert windows(log) == [limit]
    assert stack.sim("POST", "/__sim/config", {"rate_limit_per_minute": 0})[2]["rate_limit_per_minute"] == 0
    assert check(stack, "GET", VM)[0] == 200


def test_the_window_rolls_over_and_retry_after_is_long_enough(stack):
    limit = 3
    stack.sim("POST", "/__sim/config", {"rate_limit_per_minute": limit, "rate_limit_window_ms": 1500})
    statuses = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, headers, _ = check(stack, "GET", f"{VM}/1001")
        statuses.append(status)
        if status == 429:
            retry_after = int(headers["Retry-After"])
            assert 1 <= retry_after <= 2
            time.sleep(retry_after)  # honoured, the next request is let through
            assert check(stack, "GET", f"{VM}/1001")[0] == 200
            statuses.append(200)
        else:
            time.sleep(0.05)
    assert statuses.count(429) >= 2
    counts = windows(stack.sim("GET", "/__sim/requests")[2], seconds=1.5)
    assert len(counts) >= 3 and max(counts) == limit


def test_reset_puts_back_every_resource_and_setting(stack):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0, "extra_states": True, "rate_limit_per_minute": 1000,
                                        "rate_limit_window_ms": 1000})
    made = check(stack, "POST", f"{API}/firewall", {"name": "temp"})[2]
    check(stack, "POST", f"{API}/firewall/4001/rules", RULE)
    check(stack, "POST", f"{API}/public-keys", {"name": "ci", "key": NEW_KEY})
    check(stack, "POST", f"{API}/post-install-scripts", {"name": "x", "content": "y"})
    check(stack, "POST", f"{VM}/1001/docker", {"project_name": "web", "content": COMPOSE})
    check(stack, "POST", VM, PURCHASE)
    stack.sim("POST", "/__sim/reset")
    settings = stack.sim("POST", "/__sim/config", {})[2]
    assert (settings["extra_states"], settings["rate_limit_per_minute"], settings["rate_limit_window_ms"]) == (False, 0, 60000)
    assert [(f["id"], len(f["rules"])) for f in check(stack, "GET", f"{API}/firewall")[2]["data"]] == [(4001, 2)]
    assert [k["id"] for k in check(stack, "GET", f"{API}/public-keys")[2]["data"]] == [5001, 5002]
    assert [s["id"] for s in check(stack, "GET", f"{API}/post-install-scripts")[2]["data"]] == [6001]
    assert check(stack, "GET", f"{VM}/1001/docker")[2] == []
    assert [v["id"] for v in check(stack, "GET", VM)[2]] == [1001, 1002, 1003, 1004]
    # Ids keep counting across a reset, as Hostinger never hands one out twice.
    assert check(stack, "POST", f"{API}/firewall", {"name": "again"})[2]["id"] > made["id"]
