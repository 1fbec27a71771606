"""The rest of Hostinger's read surface (docs/api.md#hostingers-read-operations): one action, a
Docker project's contents, containers and logs, the attached SSH keys, backups, the Monarx
scan, metrics and the snapshot. Each read end to end: the exact Hostinger call (path and
query), 404 outside the caller's grant with nothing sent, a storm of identical reads made
into one call per instance (the shared cache), bad path parameters and metric times refused
with a 422 naming them and nothing sent, Hostinger's 404 and 422 passed on, and each read
through vpsgatectl and the MCP server. One stack for the module; the simulator is set up once."""

import asyncio
import concurrent.futures
import json
import os
import subprocess
from pathlib import Path

import pytest

import openapi_check
from vpsgate_e2e import VM, Client, problem_code, sim_requests

COMPOSE = "services:\n  web:\n    image: nginx:1.27\n    ports:\n      - \"8080:80\"\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReadsMoreTestKey reads"
FROM, TO = "2025-05-01T00:00:00Z", "2025-05-02T00:00:00Z"


class Case:
    """One read: its vpsgate path, the Hostinger call it makes, a string its answer holds, and
    its vpsgatectl words and MCP tool (`{vps}` and `{action}` filled in per VPS)."""

    def __init__(self, name, path, hostinger, query, marker, words, tool, arguments):
        self.name, self._path, self._hostinger, self.query = name, path, hostinger, query
        self.marker, self._words, self.tool, self._arguments = marker, words, tool, arguments

    def path(self, world, vps=1001):
        return self._path.format(vps=vps, action=world["actions"][vps])

    def hostinger(self, world, vps=1001):
        return VM + self._hostinger.format(vps=vps, action=world["actions"][vps])

    def words(self, world, vps=1001):
        return [w.format(vps=vps, action=world["actions"][vps]) for w in self._words]

    def arguments(self, world, vps=1001):
        return {"id": vps, **{k: (int(v.format(action=world["actions"][vps])) if v == "{action}" else v)
                              for k, v in self._arguments.items()}}


CASES = [
    Case("action", "/v1/vps/{vps}/actions/{action}", "/{vps}/actions/{action}", "", "ct_restart",
         ["vps", "action", "{vps}", "{action}"], "vps_action_get", {"actionId": "{action}"}),
    Case("docker-project", "/v1/vps/{vps}/docker/web-app", "/{vps}/docker/web-app", "", "nginx:1.27",
         ["vps", "docker-project", "{vps}", "web-app"], "vps_docker_project_get", {"projectName": "web-app"}),
    Case("docker-containers", "/v1/vps/{vps}/docker/web-app/containers", "/{vps}/docker/web-app/containers", "", "web-app-web-1",
         ["vps", "docker-containers", "{vps}", "web-app"], "vps_docker_containers", {"projectName": "web-app"}),
    Case("docker-logs", "/v1/vps/{vps}/docker/web-app/logs", "/{vps}/docker/web-app/logs", "", "entries",
         ["vps", "docker-logs", "{vps}", "web-app"], "vps_docker_logs", {"projectName": "web-app"}),
    Case("public-keys", "/v1/vps/{vps}/public-keys", "/{vps}/public-keys", "page=1", "reads-more-key",
         ["vps", "public-keys", "{vps}"], "vps_public_keys", {}),
    Case("backups", "/v1/vps/{vps}/backups", "/{vps}/backups", "page=1", "nl-srv-nodebackups",
         ["vps", "backups", "{vps}"], "vps_backups", {}),
    Case("monarx", "/v1/vps/{vps}/monarx", "/{vps}/monarx", "", "scanned_files", ["vps", "monarx", "{vps}"], "vps_monarx", {}),
    Case("metrics", f"/v1/vps/{{vps}}/metrics?date_from={FROM}&date_to={TO}", "/{vps}/metrics", f"date_from={FROM}&date_to={TO}",
         "cpu_usage", ["vps", "metrics", "{vps}", "--date-from", FROM, "--date-to", TO], "vps_metrics", {"date_from": FROM, "date_to": TO}),
    Case("snapshot", "/v1/vps/{vps}/snapshot", "/{vps}/snapshot", "", "expires_at", ["vps", "snapshot", "{vps}"], "vps_snapshot", {}),
]
IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def world(stack):
    """VMs 1001 and 1003 (running) with a Docker project, Monarx, a snapshot, an attached key
    and a recent action, made straight at the simulator; 1002 keeps only its backup."""
    stack.sim("POST", "/__sim/reset")
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    actions = {}
    for vps in (1001, 1003):
        for method, path, body in (("POST", f"{VM}/{vps}/docker", {"project_name": "web-app", "content": COMPOSE}),
                                   ("POST", f"{VM}/{vps}/monarx", None), ("POST", f"{VM}/{vps}/snapshot", None)):
            status, _, answer = stack.sim(method, path, body)
            assert status == 200, answer
        status, _, key = stack.sim("POST", "/api/vps/v1/public-keys", {"name": "reads-more-key", "key": KEY})
        assert status == 200, key
        assert stack.sim("POST", f"/api/vps/v1/public-keys/attach/{vps}", {"ids": [key["id"]]})[0] == 200
        status, _, action = stack.sim("POST", f"{VM}/{vps}/restart")
        assert status == 200, action
        actions[vps] = action["id"]
        for path in ("monarx", "snapshot"):  # the actions are done: each answers on its own
            assert stack.sim("GET", f"{VM}/{vps}/{path}")[0] == 200, path
    actions[1002] = 1
    stack.grant("reads-admin", "*", "admin")
    stack.grant("reads-viewer", "*", "viewer")
    stack.grant("reads-solo", "1001", "viewer")  # VPS 1001 only
    tokens = {name: stack.create_token(name) for name in ("reads-admin", "reads-viewer", "reads-solo")}
    return {"actions": actions, "tokens": tokens, "clients": {name: Client(stack, token) for name, token in tokens.items()}}


def calls(stack, vps=None):
    """The simulator's log since its last clearing: (method, path, query), for one VPS's paths."""
    return [(r["method"], r["path"], r["query"]) for r in sim_requests(stack)
            if vps is None or r["path"].startswith(f"{VM}/{vps}/")]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_read_makes_exactly_its_hostinger_call_and_answers_hostingers_shape(stack, world, case):
    stack.sim("DELETE", "/__sim/requests")
    status, headers, body = world["clients"]["reads-viewer"].json("GET", case.path(world))
    assert status == 200, body
    assert case.marker in json.dumps(body)
    assert calls(stack, 1001) == [("GET", case.hostinger(world), case.query)]
    # What was passed on is Hostinger's document's shape, unchanged.
    direct_status, direct_headers, direct = stack.sim("GET", case.hostinger(world) + ("?" + case.query if case.query else ""))
    openapi_check.validate("GET", case.hostinger(world), direct_status, direct_headers.get("Content-Type", ""), direct)
    assert body.keys() == direct.keys() if isinstance(body, dict) else len(body) == len(direct)


def test_the_answers_hold_what_the_writes_need(stack, world):
    """A backup id that vps.backup.restore takes, and the snapshot the VPS has."""
    client = world["clients"]["reads-viewer"]
    backups = client.json("GET", "/v1/vps/1001/backups")[2]
    assert [b["id"] for b in backups["data"]] == [3001] and backups["meta"]["current_page"] == 1
    status, _, plan = world["clients"]["reads-admin"].json(
        "POST", "/v1/vps/1001/backups/3001/restore?validate_only=true", body={"confirm": 1001})
    assert status == 200 and plan["would_send"]["path"] == f"{VM}/1001/backups/3001/restore", plan
    snapshot = client.json("GET", "/v1/vps/1001/snapshot")[2]
    assert snapshot["id"] == stack.sim("GET", f"{VM}/1001/snapshot")[2]["id"]
    action = client.json("GET", f"/v1/vps/1001/actions/{world['actions'][1001]}")[2]
    assert (action["id"], action["name"]) == (world["actions"][1001], "ct_restart")


def test_the_page_and_the_metric_times_are_passed_on_as_given(stack, world):
    client = world["clients"]["reads-viewer"]
    stack.sim("DELETE", "/__sim/requests")
    assert client.json("GET", "/v1/vps/1001/backups?page=2")[0] == 200
    assert client.json("GET", "/v1/vps/1001/public-keys?page=3")[0] == 200
    # An offset, raw or percent-encoded, reaches Hostinger as the same time with its + encoded.
    assert client.json("GET", "/v1/vps/1001/metrics?date_from=2025-05-01T02:00:00+02:00&date_to=2025-05-01T12:00:00.5Z")[0] == 200
    assert client.json("GET", "/v1/vps/1001/metrics?date_from=2025-05-03T02:00:00%2B02:00&date_to=2025-05-03T12%3A00%3A00Z")[0] == 200
    assert calls(stack, 1001) == [
        ("GET", f"{VM}/1001/backups", "page=2"), ("GET", f"{VM}/1001/public-keys", "page=3"),
        ("GET", f"{VM}/1001/metrics", "date_from=2025-05-01T02:00:00%2B02:00&date_to=2025-05-01T12:00:00.5Z"),
        ("GET", f"{VM}/1001/metrics", "date_from=2025-05-03T02:00:00%2B02:00&date_to=2025-05-03T12:00:00Z"),
    ]


def test_a_vps_outside_the_grant_is_not_found_and_nothing_is_sent(stack, world):
    solo = world["clients"]["reads-solo"]
    stack.sim("DELETE", "/__sim/requests")
    for case in CASES:
        status, _, problem = solo.json("GET", case.path(world, 1002))
        assert status == 404 and problem_code(problem) == "not-found", (case.name, problem)
    assert calls(stack) == []
    assert solo.json("GET", "/v1/vps/1001/backups")[0] == 200  # its own VPS answers


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_storm_of_identical_reads_makes_at_most_one_call_per_instance(stack, world, case):
    client = world["clients"]["reads-admin"]
    path = case.path(world, 1003)
    stack.sim("DELETE", "/__sim/requests")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: client.json("GET", path), range(20)))
    assert [status for status, _, _ in answers] == [200] * 20, answers[0]
    assert all(body == answers[0][2] for _, _, body in answers)
    made = calls(stack, 1003)
    assert 1 <= len(made) <= stack.instance_count, made  # one per instance at most: 2
    assert set(made) == {("GET", case.hostinger(world, 1003), case.query)}


BAD = [
    ("/v1/vps/1001/docker/ab", "projectName"),
    ("/v1/vps/1001/docker/a.b/containers", "projectName"),
    ("/v1/vps/1001/docker/" + "x" * 65 + "/logs", "projectName"),
    ("/v1/vps/1001/docker/web%20app", "projectName"),
    ("/v1/vps/1001/actions/abc", "actionId"),
    ("/v1/vps/1001/actions/0", "actionId"),
    ("/v1/vps/1001/actions/-5", "actionId"),
    ("/v1/vps/1001/actions/1.5", "actionId"),
    ("/v1/vps/1001/metrics", "date_from"),
    ("/v1/vps/1001/metrics", "date_to"),
    (f"/v1/vps/1001/metrics?date_to={TO}", "date_from"),
    (f"/v1/vps/1001/metrics?date_from={FROM}&date_to=", "date_to"),
    (f"/v1/vps/1001/metrics?date_from=yesterday&date_to={TO}", "date_from"),
    (f"/v1/vps/1001/metrics?date_from=2025-05-01&date_to={TO}", "date_from"),
    (f"/v1/vps/1001/metrics?date_from={FROM}&date_to=2025-02-30T00:00:00Z", "date_to"),
    (f"/v1/vps/1001/metrics?date_from={TO}&date_to={FROM}", "date_to"),
    (f"/v1/vps/1001/metrics?date_from={FROM}&date_to={FROM}", "date_to"),
]


@pytest.mark.parametrize("path,field", BAD)
def test_a_bad_path_parameter_or_metric_time_is_422_naming_it_and_nothing_is_sent(stack, world, path, field):
    stack.sim("DELETE", "/__sim/requests")
    status, _, problem = world["clients"]["reads-viewer"].json("GET", path)
    assert status == 422 and problem_code(problem) == "validation-failed" and field in problem["errors"], problem
    assert calls(stack) == []


def test_what_hostinger_does_not_have_is_passed_on(stack, world):
    client = world["clients"]["reads-admin"]
    for path in ("/v1/vps/1002/snapshot", "/v1/vps/1001/docker/no-such-project", "/v1/vps/1001/docker/no-such-project/logs",
                 "/v1/vps/1001/actions/987654321"):
        status, _, problem = client.json("GET", path)
        assert status == 404 and problem_code(problem) == "not-found", (path, problem)
    status, _, problem = client.json("GET", "/v1/vps/1002/monarx")  # not installed: Hostinger's 422
    assert status == 422 and problem_code(problem) == "upstream-rejected", problem
    assert "Monarx" in problem["upstream"]["message"]


# MARK: - vpsgatectl and the MCP server


@pytest.fixture(scope="module")
def ctl(stack):
    binary = Path(stack.binary).parent / "vpsgatectl"
    assert binary.exists(), f"{binary} is not built"
    return binary


def env(stack, token):
    return dict(os.environ, VPSGATE_URL=stack.url, VPSGATE_TOKEN=token, VPSGATE_CA_FILE=str(stack.ca_file),
                VPSGATECTL_CONFIG="/nonexistent")


def run(ctl, stack, token, *args):
    return subprocess.run([str(ctl), *args], env=env(stack, token), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_read_through_vpsgatectl(stack, world, ctl, case):
    shown = run(ctl, stack, world["tokens"]["reads-viewer"], *case.words(world))
    assert shown.returncode == 0, (shown.stdout, shown.stderr)
    assert case.marker in shown.stdout, shown.stdout


def test_vpsgatectl_names_the_reads_and_refuses_bad_input_before_sending(stack, world, ctl):
    token = world["tokens"]["reads-viewer"]
    shown = run(ctl, stack, token, "vps", "--help")
    assert "docker-logs <id> <projectName>" in shown.stdout and "metrics <id> --date-from <date_from> --date-to <date_to>" in shown.stdout
    stack.sim("DELETE", "/__sim/requests")
    for words in (["vps", "docker-logs", "1001", "../restart#"], ["vps", "action", "1001", "abc"], ["vps", "metrics", "1001"],
                  ["vps", "metrics", "1001", "--date-from", FROM]):
        refused = run(ctl, stack, token, *words)
        assert refused.returncode == 64, (words, refused.stdout, refused.stderr)
    assert calls(stack) == []


def mcp(stack, ctl, token, body):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    async def session():
        parameters = StdioServerParameters(command=str(ctl), args=["mcp"], env=env(stack, token))
        async with stdio_client(parameters) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                return await body(client)

    return asyncio.run(asyncio.wait_for(session(), timeout=60))


def test_each_read_through_its_mcp_tool(stack, world, ctl):
    async def use(client):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        results = {case.name: await client.call_tool(case.tool, case.arguments(world)) for case in CASES}
        escape = await client.call_tool("vps_docker_logs", {"id": 1001, "projectName": "../restart#"})
        return tools, results, escape

    tools, results, escape = mcp(stack, ctl, world["tokens"]["reads-viewer"], use)
    for case in CASES:
        tool = tools[case.tool]
        assert tool.annotations.read_only_hint is True, case.tool
        assert set(tool.input_schema["required"]) == {"id", *case._arguments}, (case.tool, tool.input_schema)
        result = results[case.name]
        assert not result.is_error and case.marker in result.content[0].text, (case.name, result.content[0].text[:300])
    assert tools["vps_metrics"].input_schema["properties"]["date_from"]["format"] == "date-time"
    assert tools["vps_docker_logs"].input_schema["properties"]["projectName"]["pattern"] == "^[A-Za-z0-9_-]{3,64}$"
    assert escape.is_error


def test_mcp_lists_only_the_reads_the_grant_allows(stack, world, ctl):
    stack.grant_resource("reads-firewalls", "firewall:*", "viewer")  # no grant on any VPS
    token = stack.create_token("reads-firewalls")

    async def listing(client):
        return {tool.name for tool in (await client.list_tools()).tools}

    names = mcp(stack, ctl, token, listing)
    assert "firewall_list" in names and not {case.tool for case in CASES} & names
