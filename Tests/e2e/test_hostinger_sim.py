"""hostinger-sim conformance: every simulated operation, success and each error it can give,
validated against Hostinger's OpenAPI document (openapi-schema-validator), plus behaviour."""

import json
import time
from pathlib import Path

import pytest

import openapi_check
from vpsgate_e2e import reset_sim

API = "/api/vps/v1"
VM = API + "/virtual-machines"
GOOD_PASSWORD = "Correct-Horse7Battery"

# (method, path, body) for every mutation vpsgate uses, on a VM each so they do not interfere.
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
]

READS = [
    ("GET", VM), ("GET", f"{VM}/1001"), ("GET", f"{VM}/1001/actions"), ("GET", f"{VM}/1001/actions?page=2"),
    ("GET", f"{VM}/1001/backups"), ("GET", f"{VM}/1001/public-keys"), ("GET", f"{API}/firewall"),
    ("GET", f"{API}/public-keys"), ("GET", f"{API}/templates"),
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
]


@pytest.fixture(autouse=True)
def reset(stack):
    reset_sim(stack, action_delay_ms=300)
    yield


def check(stack, method, path, body=None, **kwargs):
    status, headers, parsed = stack.sim(method, path, body, **kwargs)
    openapi_check.validate(method, path, status, headers.get("Content-Type", ""), parsed)
    return status, headers, parsed


def test_fixture_copy_matches_the_shared_document():
    shared = Path(__file__).resolve().parents[3] / "shared/hostinger/openapi-vps.json"
    if shared.exists():
        assert json.loads(shared.read_text()) == openapi_check.DOCUMENT


@pytest.mark.parametrize("method,path,body", MUTATIONS)
def test_every_mutation_answers_an_action_and_conforms(stack, method, path, body):
    if "snapshot/restore" in path or (method == "DELETE" and path.endswith("/snapshot")):
        check(stack, "POST", f"{VM}/1001/snapshot")
        time.sleep(0.4)
    if method == "DELETE" and path.endswith("/recovery"):
        check(stack, "POST", f"{VM}/1003/recovery", {"root_password": GOOD_PASSWORD})
        time.sleep(0.4)
    status, _, action = check(stack, method, path, body)
    assert status == 200
    assert action["state"] == "sent"
    time.sleep(0.4)
    vm_id = int([p for p in path.split("/") if p.isdigit() and len(p) == 4 and p.startswith("100")][0])
    status, _, later = check(stack, "GET", f"{VM}/{vm_id}/actions/{action['id']}")
    assert status == 200 and later["state"] == "success", later


@pytest.mark.parametrize("method,path", READS)
def test_every_read_conforms(stack, method, path):
    status, _, body = check(stack, method, path)
    assert status == 200


@pytest.mark.parametrize("method,path,body,field", INVALID_BODIES)
def test_invalid_bodies_are_laravel_422s(stack, method, path, body, field):
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
