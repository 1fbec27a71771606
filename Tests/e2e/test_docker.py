"""Docker Manager projects (docs/design.md#resources-and-grants), each command end to end: the exact Hostinger
call and body, the operation following its action to the end, 403 without docker:write,
404 outside the grant, 422 on invalid input with nothing sent; the environment (secret)
never stored; the project list under docker:read."""

import json
import uuid

import pytest

from vpsgate_e2e import VM, Client, close_operations_and_reset_sim, sim_requests, sql, wait_operation

COMPOSE = "services:\n  web:\n    image: nginx:1.27\n    ports:\n      - \"8080:80\"\n"


@pytest.fixture(scope="module")
def users(stack):
    stack.grant("ada", "*", "admin")
    stack.grant("otto", "*", "operator")
    stack.grant("vera", "*", "viewer")
    stack.grant("olaf", "1003", "operator")  # another VPS only
    return {name: Client(stack, stack.create_token(name)) for name in ("ada", "otto", "vera", "olaf")}


@pytest.fixture(autouse=True)
def fresh(stack):
    close_operations_and_reset_sim(stack, action_delay_ms=150)
    yield


def project_exists(stack, name="web-app"):
    """Creates `name` on VM 1001 straight at the simulator (as if done outside vpsgate)."""
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    status, _, body = stack.sim("POST", f"{VM}/1001/docker", {"project_name": name, "content": COMPOSE})
    assert status == 200, body
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 150})
    stack.sim("DELETE", "/__sim/requests")


def projects(stack, vps=1001):
    return {p["name"]: p for p in stack.sim("GET", f"{VM}/{vps}/docker")[2]}


def last_action(stack, vps=1001):
    return stack.sim("GET", f"{VM}/{vps}/actions")[2]["data"][0]


# (name, method, path, body, Hostinger method, path, body, project needed first, check)
CASES = [
    ("vps.docker.create", "POST", "/v1/vps/1001/docker", {"project_name": "web-app", "content": COMPOSE},
     "POST", f"{VM}/1001/docker", {"project_name": "web-app", "content": COMPOSE}, False,
     lambda s: "web-app" in projects(s)),
    ("vps.docker.start", "POST", "/v1/vps/1001/docker/web-app/start", None, "POST", f"{VM}/1001/docker/web-app/start", None, True,
     lambda s: last_action(s)["name"] == "docker_project_start"),
    ("vps.docker.stop", "POST", "/v1/vps/1001/docker/web-app/stop", None, "POST", f"{VM}/1001/docker/web-app/stop", None, True,
     lambda s: last_action(s)["name"] == "docker_project_stop"),
    ("vps.docker.restart", "POST", "/v1/vps/1001/docker/web-app/restart", None,
     "POST", f"{VM}/1001/docker/web-app/restart", None, True, lambda s: last_action(s)["name"] == "docker_project_restart"),
    ("vps.docker.update", "POST", "/v1/vps/1001/docker/web-app/update", None,
     "POST", f"{VM}/1001/docker/web-app/update", None, True, lambda s: last_action(s)["name"] == "docker_project_update"),
    ("vps.docker.down", "DELETE", "/v1/vps/1001/docker/web-app/down", None,
     "DELETE", f"{VM}/1001/docker/web-app/down", None, True, lambda s: "web-app" not in projects(s)),
]
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_happy_path_sends_exactly_the_call_and_follows_its_action(stack, users, case):
    name, method, path, body, h_method, h_path, h_body, needs_project, check = case
    if needs_project:
        project_exists(stack)
    stack.sim("DELETE", "/__sim/requests")
    status, headers, operation = users["otto"].json(method, path, body=body, key=str(uuid.uuid4()))
    assert status == 202, operation
    assert operation["command"] == name
    calls = [c for c in sim_requests(stack) if c["method"] != "GET"]
    assert [(c["method"], c["path"]) for c in calls] == [(h_method, h_path)]
    assert calls[0]["body"] == h_body
    done = wait_operation(users["otto"], headers["Location"])
    assert done["state"] == "succeeded", done
    assert done["hostinger_action"]["name"] == last_action(stack)["name"]
    assert check(stack)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_viewer_is_forbidden_and_nothing_is_sent(stack, users, case):
    _, method, path, body, *_ = case
    status, _, problem = users["vera"].json(method, path, body=body, key=str(uuid.uuid4()))
    assert status == 403 and problem["type"].endswith("#forbidden"), problem
    assert [r for r in sim_requests(stack) if r["method"] != "GET"] == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_vps_outside_the_grant_is_not_found_and_nothing_is_sent(stack, users, case):
    _, method, path, body, *_ = case
    status, _, problem = users["olaf"].json(method, path, body=body, key=str(uuid.uuid4()))
    assert status == 404 and problem["type"].endswith("#not-found"), problem
    assert [r for r in sim_requests(stack) if r["method"] != "GET"] == []


INVALID = [
    ("POST", "/v1/vps/1001/docker", {"content": COMPOSE}, "project_name"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "ab", "content": COMPOSE}, "project_name"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "web app", "content": COMPOSE}, "project_name"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "x" * 65, "content": COMPOSE}, "project_name"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "web-app"}, "content"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "web-app", "content": ""}, "content"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "web-app", "content": "x" * 8193}, "content"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "web-app", "content": COMPOSE, "environment": 5}, "environment"),
    ("POST", "/v1/vps/1001/docker", {"project_name": "web-app", "content": COMPOSE, "volumes": []}, "volumes"),
    ("POST", "/v1/vps/1001/docker/web-app/start", {"x": 1}, "x"),
    ("POST", "/v1/vps/1001/docker/web-app/stop", {"x": 1}, "x"),
    ("POST", "/v1/vps/1001/docker/web-app/restart", {"x": 1}, "x"),
    ("POST", "/v1/vps/1001/docker/web-app/update", {"x": 1}, "x"),
    ("DELETE", "/v1/vps/1001/docker/web-app/down", {"x": 1}, "x"),
]


@pytest.mark.parametrize("method,path,body,field", INVALID)
def test_invalid_input_is_422_and_nothing_is_sent(stack, users, method, path, body, field):
    status, _, problem = users["otto"].json(method, path, body=body, key=str(uuid.uuid4()))
    assert status == 422 and field in problem["errors"], problem
    assert sim_requests(stack) == []


@pytest.mark.parametrize("name", ["ab", "a.b", "x" * 65, "web%20app"])
def test_a_project_name_that_is_not_one_is_not_a_route(stack, users, name):
    status, _, problem = users["otto"].json("POST", f"/v1/vps/1001/docker/{name}/start", key=str(uuid.uuid4()))
    assert status == 404, problem
    assert sim_requests(stack) == []


def test_every_command_has_a_validation_case():
    covered = {(m, p) for m, p, *_ in INVALID}
    for name, method, path, *_ in CASES:
        assert (method, path) in covered, name


def test_the_environment_is_sent_to_hostinger_but_never_stored_logged_or_answered(stack, users):
    canary = "DOCKER_TOKEN=canary" + uuid.uuid4().hex
    key = str(uuid.uuid4())
    body = {"project_name": "secret-app", "content": COMPOSE, "environment": canary}
    status, headers, raw = users["otto"].request("POST", "/v1/vps/1001/docker", body=body, key=key)
    assert status == 202 and canary.encode() not in raw
    assert any(canary in json.dumps(r["body"]) for r in sim_requests(stack)), "the canary never reached Hostinger"
    done = wait_operation(users["otto"], headers["Location"])
    assert done["state"] == "succeeded"
    status, _, replay = users["otto"].request("POST", "/v1/vps/1001/docker", body=body, key=key)
    assert status == 202 and canary.encode() not in replay
    for table in ("audit_events", "operations", "idempotency_keys", "events"):
        assert sql(stack, f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%{canary}%'") == "0", table
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE position('{canary}'::bytea in response_body) > 0") == "0"
    for log in stack.run_dir.glob("*.log"):
        if not log.name.startswith("hostinger-sim"):
            assert canary not in log.read_text(errors="replace"), log.name


def test_the_project_list_needs_docker_read_on_the_vps(stack, users):
    project_exists(stack)
    status, _, listed = users["vera"].json("GET", "/v1/vps/1001/docker")
    assert status == 200 and [p["name"] for p in listed] == ["web-app"]
    status, _, _ = users["olaf"].json("GET", "/v1/vps/1001/docker")
    assert status == 404
    stack.grant("nora", "1001", "approver")  # approver: read and approve, and docker:read
    status, _, _ = Client(stack, stack.create_token("nora")).json("GET", "/v1/vps/1001/docker")
    assert status == 200
