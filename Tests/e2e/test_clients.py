"""Clients (docs/design.md#clients): `vpsgatectl` for people and scripts, and `vpsgatectl mcp`, an MCP
server that lets an AI agent use vpsgate with its own token, the approval rule and the audit
trail, never alone and never with Hostinger's token."""

import asyncio
import hashlib
import http.server
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import openapi_check
from vpsgate_e2e import VM, Client, close_operations_and_reset_sim, sim_requests, sql

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ctl(stack):
    binary = Path(stack.binary).parent / "vpsgatectl"
    assert binary.exists(), f"{binary} is not built"
    return binary


@pytest.fixture(scope="module")
def tokens(stack):
    stack.grant("cli-admin", "*", "admin")
    stack.grant("cli-op", "*", "operator")
    stack.grant("cli-viewer", "*", "viewer")
    stack.grant("cli-approver", "*", "approver")
    stack.grant("cli-owner", "*", "admin")  # admin on every VPS and on the account and its resources
    for resource in ("account", "firewall:*", "public_key:*", "post_install_script:*"):
        stack.grant_resource("cli-owner", resource, "admin")
    return {name: stack.create_token(name) for name in ("cli-admin", "cli-op", "cli-viewer", "cli-approver", "cli-owner")}


@pytest.fixture(autouse=True)
def fresh(stack):
    stack.sim("DELETE", "/__sim/faults")
    close_operations_and_reset_sim(stack, action_delay_ms=300)
    yield


@pytest.fixture()
def recreate_needs_approval(stack):
    stack.admin("policy", "set", "--subject", "vps.recreate", "--vps", "*", "--approvals", "1")
    yield
    stack.admin("policy", "remove", "--subject", "vps.recreate", "--vps", "*")


def env(stack, token, url=None):
    return dict(os.environ, VPSGATE_URL=url or stack.url, VPSGATE_TOKEN=token, VPSGATE_CA_FILE=str(stack.ca_file),
                VPSGATECTL_CONFIG="/nonexistent")


def run(ctl, stack, token, *args, url=None, timeout=120):
    return subprocess.run([str(ctl), *args], env=env(stack, token, url), capture_output=True, text=True, timeout=timeout)


def writes(stack):
    return [(r["method"], r["path"]) for r in sim_requests(stack) if r["method"] != "GET"]


# MARK: - 1. --wait, failure, --no-wait


def test_a_restart_with_wait_exits_0_once_it_succeeded(stack, ctl, tokens):
    done = run(ctl, stack, tokens["cli-op"], "vps", "restart", "1001", "--wait")
    assert done.returncode == 0, done.stderr
    operation = json.loads(done.stdout)
    assert operation["state"] == "succeeded" and operation["command"] == "vps.restart"
    assert "idempotency key" in done.stderr and "succeeded" in done.stderr
    assert writes(stack) == [("POST", f"{VM}/1001/restart")]


def test_a_failing_action_exits_1_with_the_problem(stack, ctl, tokens):
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1002/restart$", "action_error": True})
    failed = run(ctl, stack, tokens["cli-op"], "vps", "restart", "1002", "--wait")
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["state"] == "failed"
    assert "failed" in failed.stderr and "action_error" in failed.stderr


def test_no_wait_prints_the_operation_at_once(stack, ctl, tokens):
    started = run(ctl, stack, tokens["cli-op"], "vps", "restart", "1003", "--no-wait")
    assert started.returncode == 0, started.stderr
    operation = json.loads(started.stdout)
    assert operation["state"] in ("accepted", "dispatched", "running") and operation["id"]


def test_a_refusal_exits_1_and_names_the_fields_and_usage_errors_exit_64(stack, ctl, tokens):
    refused = run(ctl, stack, tokens["cli-op"], "vps", "hostname", "set", "1001", "--hostname", "not a name")
    assert refused.returncode == 1 and "422" in refused.stderr and "hostname" in refused.stderr
    # 401 and 403, from vpsgate or nginx: exit 6, apart from other refusals.
    forbidden = run(ctl, stack, tokens["cli-viewer"], "vps", "restart", "1001")
    assert forbidden.returncode == 6 and "403" in forbidden.stderr
    unknown = run(ctl, stack, "not-a-token", "vps", "list")
    assert unknown.returncode == 6 and "401" in unknown.stderr
    assert run(ctl, stack, tokens["cli-op"], "vps", "restart").returncode == 64
    assert run(ctl, stack, tokens["cli-op"], "vps", "restart", "1001", "--bogus").returncode == 64
    assert writes(stack) == []


@pytest.mark.usefixtures("recreate_needs_approval")
def test_a_command_needing_approval_exits_5_and_plans_show_the_decision(stack, ctl, tokens):
    plan = run(ctl, stack, tokens["cli-admin"], "vps", "recreate", "1004", "--template-id", "1130", "--confirm", "1004", "--plan")
    assert plan.returncode == 0 and json.loads(plan.stdout)["decision"] == "needs_approval"
    waiting = run(ctl, stack, tokens["cli-admin"], "vps", "recreate", "1004", "--template-id", "1130", "--confirm", "1004", "--yes")
    assert waiting.returncode == 5 and "awaits approval" in waiting.stderr
    assert writes(stack) == []


# MARK: - 2. Killed after sending, run again with the printed key


def test_killed_after_sending_and_run_again_with_the_key_makes_one_hostinger_call(stack, ctl, tokens):
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1003/snapshot$", "delay_ms": 3000, "times": 1})
    process = subprocess.Popen([str(ctl), "vps", "snapshot", "create", "1003", "--wait", "--yes"], env=env(stack, tokens["cli-op"]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not writes(stack):
        time.sleep(0.05)
    assert writes(stack) == [("POST", f"{VM}/1003/snapshot")], "the request never reached Hostinger"
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=10)
    key = re.search(r"--key (\S+)\)", stderr).group(1)
    again = run(ctl, stack, tokens["cli-op"], "vps", "snapshot", "create", "1003", "--wait", "--yes", "--key", key)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["state"] == "succeeded"
    assert writes(stack) == [("POST", f"{VM}/1003/snapshot")]


# MARK: - 3. Retries: 503 and 429 with Retry-After, never 422


class Scripted(http.server.BaseHTTPRequestHandler):
    """A stand-in for vpsgate answering a script of statuses, recording each request's key."""
    script: list = []
    seen: list = []
    requests: list = []

    def do_GET(self):
        Scripted.requests.append(("GET", self.path))
        # The older form of `type`, which answers stored before still carry: clients take its code too.
        data = json.dumps({"type": "urn:vpsgate:problem:not-found", "title": "scripted", "status": 404}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Scripted.requests.append(("POST", self.path))
        Scripted.seen.append(self.headers.get("Idempotency-Key"))
        status = Scripted.script.pop(0) if Scripted.script else 202
        if status == 202:
            body = {"id": str(uuid.uuid4()), "state": "succeeded", "command": "vps.restart"}
        else:
            code = {503: "upstream-budget", 429: "too-many-requests", 422: "validation-failed", 409: "idempotency-key-in-use"}[status]
            body = {"type": f"https://docs.example.com/vpsgate/problems#{code}", "title": "scripted", "status": status}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 202 else "application/problem+json")
        if status in (503, 429):
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve_scripted(address):
    server = http.server.ThreadingHTTPServer((address, 0), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Scripted.seen = []
    Scripted.requests = []
    return server


@pytest.fixture()
def scripted():
    server = serve_scripted("127.0.0.1")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_503s_and_429s_are_retried_with_the_same_key_after_retry_after(stack, ctl, scripted):
    # 409 idempotency-key-in-use is known by the fragment of its type URL, whatever the base.
    Scripted.script = [409, 503, 429, 202]
    started = time.monotonic()
    done = run(ctl, stack, "token", "vps", "restart", "1001", url=scripted)
    assert done.returncode == 0, done.stderr
    assert len(Scripted.seen) == 4 and len(set(Scripted.seen)) == 1 and Scripted.seen[0]
    assert time.monotonic() - started >= 3  # each Retry-After: 1 was honoured
    assert done.stderr.count("retrying") == 3


def test_a_422_is_never_retried(stack, ctl, scripted):
    Scripted.script = [422, 202]
    refused = run(ctl, stack, "token", "vps", "restart", "1001", url=scripted)
    assert refused.returncode == 1
    assert len(Scripted.seen) == 1


# MARK: - 6. Every command of the catalogue is reachable


def test_every_command_of_the_catalogue_is_reachable_from_vpsgatectl(stack, ctl, tokens):
    listed = run(ctl, stack, tokens["cli-op"], "commands")
    assert listed.returncode == 0
    names = [line.split("\t")[0] for line in listed.stdout.splitlines()]
    document = json.loads((ROOT / "docs/openapi.json").read_text())
    catalogue = {op["operationId"] for path, item in document["paths"].items() for method, op in item.items()
                 if method in ("post", "put", "delete") and "Permission:" in op.get("description", "")}
    assert sorted(name.replace(".", "_") for name in names) == sorted(catalogue)
    for line in listed.stdout.splitlines():
        name, usage = line.split("\t")
        words = usage.split(" <")[0].split()
        shown = run(ctl, stack, tokens["cli-op"], *words, "--help")
        assert shown.returncode == 0 and f"vpsgatectl {words[0]}" in shown.stdout, (name, shown.stdout, shown.stderr)


# MARK: - 4 and 5. The MCP server


def mcp(stack, ctl, token, body, *options):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    async def session():
        parameters = StdioServerParameters(command=str(ctl), args=["mcp", *options], env=env(stack, token))
        async with stdio_client(parameters) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                return await body(client)

    return asyncio.run(asyncio.wait_for(session(), timeout=120))


# The commands that cannot be undone (the catalogue's `irreversible`): deletes, restores and
# the reinstall, anything that overwrites data, a snapshot or a password, the setup and the purchase.
IRREVERSIBLE = {"vps_hostname_reset", "vps_ptr_delete", "vps_root_password_set", "vps_panel_password_set", "vps_recovery_start",
                "vps_snapshot_create", "vps_snapshot_delete", "vps_snapshot_restore", "vps_backup_restore", "vps_recreate", "vps_setup",
                "vps_docker_update", "vps_docker_down", "firewall_delete", "firewall_rule_delete", "public_key_delete",
                "post_install_script_update", "post_install_script_delete", "vps_purchase"}


def catalogue_annotations():
    """Per command tool of the catalogue (vpsgate's own document): whether it is irreversible."""
    document = json.loads((ROOT / "docs/openapi.json").read_text())
    return {op["operationId"]: op["operationId"] in IRREVERSIBLE for path, item in document["paths"].items()
            for method, op in item.items() if method in ("post", "put", "delete") and "Permission:" in op.get("description", "")}


def test_a_viewer_sees_only_read_tools_and_every_irreversible_command_is_destructive(stack, ctl, tokens):
    async def listing(client):
        return (await client.list_tools()).tools

    expected = catalogue_annotations()
    viewer = mcp(stack, ctl, tokens["cli-viewer"], listing)
    assert viewer and all(tool.annotations.read_only_hint for tool in viewer)
    assert not [t.name for t in viewer if t.name in expected]
    operator = mcp(stack, ctl, tokens["cli-op"], listing)
    names = {tool.name for tool in operator}
    assert "vps_restart" in names and "vps_recreate" not in names
    assert {t.name for t in operator if t.annotations.destructive_hint} == names & IRREVERSIBLE
    assert {"vps_snapshot_delete", "vps_ptr_delete", "vps_docker_down"} <= names & IRREVERSIBLE
    admin = mcp(stack, ctl, tokens["cli-admin"], listing)
    for tool in admin:
        if tool.name in expected:
            assert tool.annotations.read_only_hint is False
            assert tool.annotations.destructive_hint == expected[tool.name], tool.name
            assert tool.annotations.idempotent_hint is not None
        elif tool.name in ("batch_create", "batch_cancel"):  # batches change things; nothing they do is irreversible
            assert tool.annotations.read_only_hint is False and tool.annotations.destructive_hint is False
        else:
            assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
    assert {t.name for t in admin if t.annotations.destructive_hint} == {n for n in IRREVERSIBLE if n.startswith("vps_")} - {"vps_purchase"}
    # With the account and its resources too, every command is listed: destructive exactly when irreversible.
    owner = mcp(stack, ctl, tokens["cli-owner"], listing)
    assert set(expected) <= {t.name for t in owner}
    assert {t.name for t in owner if t.annotations.destructive_hint} == IRREVERSIBLE
    assert "cannot be undone" in next(t for t in owner if t.name == "post_install_script_delete").description
    # Input schemas come from the catalogue's fields.
    recreate = next(t for t in admin if t.name == "vps_recreate")
    assert set(recreate.input_schema["required"]) == {"id", "template_id", "confirm"}
    assert recreate.input_schema["properties"]["template_id"]["type"] == "integer"


def test_operations_list_pages_with_limit_and_cursor(stack, ctl, tokens):
    for _ in range(2):
        assert run(ctl, stack, tokens["cli-op"], "vps", "restart", "1001", "--wait").returncode == 0
    first = run(ctl, stack, tokens["cli-op"], "operations", "list", "--vps", "1001", "--limit", "1")
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    cursor = re.search(r"more: --cursor (\S+)", first.stderr).group(1)
    assert len(page["data"]) == 1 and cursor == page["next_before"] == page["data"][0]["id"]
    second = run(ctl, stack, tokens["cli-op"], "operations", "list", "--vps", "1001", "--limit", "1", "--cursor", cursor)
    older = json.loads(second.stdout)["data"]
    assert len(older) == 1 and older[0]["id"] != cursor and older[0]["created_at"] <= page["data"][0]["created_at"]
    refused = run(ctl, stack, tokens["cli-op"], "operations", "list", "--cursor", "../x")
    assert refused.returncode == 64 and writes(stack) == [("POST", f"{VM}/1001/restart")] * 2


def test_read_only_and_toolsets_narrow_the_stdio_servers_tools_and_refuse_calls_outside_them(stack, ctl, tokens):
    async def listing_and_restart(client):
        return (await client.list_tools()).tools, await client.call_tool("vps_restart", {"id": 1001})

    tools, restart = mcp(stack, ctl, tokens["cli-admin"], listing_and_restart, "--read-only", "--toolsets", "vps,operations")
    names = {tool.name for tool in tools}
    assert {"vps_get", "operation_get", "event_list", "plan"} <= names and all(tool.annotations.read_only_hint for tool in tools)
    assert not {name for name in names if name.startswith(("firewall_", "templates_"))}
    assert restart.is_error and "outside this session's tools" in restart.content[0].text
    assert writes(stack) == []
    for tool in tools:
        assert tool.title and tool.output_schema["type"] == "object", tool.name
    refused = run(ctl, stack, tokens["cli-admin"], "mcp", "--toolsets", "vps,dns")
    assert refused.returncode == 64 and "unknown toolset dns" in refused.stderr, refused.stderr


@pytest.mark.usefixtures("recreate_needs_approval")
def test_an_agent_recreating_a_vps_waits_for_a_human_and_a_retried_call_is_one_command(stack, ctl, tokens):
    async def recreate(client):
        arguments = {"id": 1004, "template_id": 1130, "confirm": 1004, "password": "Agent7-" + uuid.uuid4().hex[:12]}
        first = await client.call_tool("vps_recreate", arguments)
        again = await client.call_tool("vps_recreate", arguments)
        return first, again

    first, again = mcp(stack, ctl, tokens["cli-admin"], recreate)
    text = first.content[0].text
    assert not first.is_error and text.startswith("awaiting approval"), text
    assert again.content[1].text == first.content[1].text  # the same operation: the key came from the call
    operation = json.loads(first.content[1].text)
    assert sql(stack, f"SELECT count(*) FROM operations WHERE idempotency_key = '{operation['idempotency_key']}'") == "1"
    assert operation["idempotency_key"].startswith("mcp-")
    time.sleep(1)
    assert writes(stack) == [], "Hostinger was called before a human approved"
    approver = Client(stack, tokens["cli-approver"])
    status, _, approved = approver.json("POST", f"/v1/operations/{operation['id']}/approve")
    assert status == 200, approved
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not writes(stack):
        time.sleep(0.2)
    assert writes(stack) == [("POST", f"{VM}/1004/recreate")]
    # The MCP server never saw Hostinger's token: it has only the caller's.
    assert "HOSTINGER" not in " ".join(env(stack, tokens["cli-admin"]).get(k, "") for k in ("VPSGATE_URL", "VPSGATE_TOKEN"))


# MARK: - Configuration file, the feed, batches, completion


def test_the_config_file_is_read_and_the_environment_wins(stack, ctl, tokens, tmp_path):
    config = tmp_path / "config"
    config.write_text(f"# vpsgatectl\nVPSGATE_URL={stack.url}\nVPSGATE_TOKEN={tokens['cli-viewer']}\nVPSGATE_CA_FILE={stack.ca_file}\n")
    config.chmod(0o600)
    base = {k: v for k, v in os.environ.items() if not k.startswith("VPSGATE_")}
    me = subprocess.run([str(ctl), "me"], env=dict(base, VPSGATECTL_CONFIG=str(config)), capture_output=True, text=True, timeout=60)
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["principal"] == "cli-viewer"
    me = subprocess.run([str(ctl), "me"], env=dict(base, VPSGATECTL_CONFIG=str(config), VPSGATE_TOKEN=tokens["cli-op"]),
                        capture_output=True, text=True, timeout=60)
    assert json.loads(me.stdout)["principal"] == "cli-op"
    missing = subprocess.run([str(ctl), "me"], env=dict(base, VPSGATECTL_CONFIG="/nonexistent"), capture_output=True, text=True, timeout=60)
    assert missing.returncode == 64 and "VPSGATE_URL" in missing.stderr


def test_contexts_are_added_used_and_chosen_and_never_show_a_token(stack, ctl, tokens, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("VPSGATE")}
    home = dict(base, XDG_CONFIG_HOME=str(tmp_path / "xdg"), VIEWER_TOKEN=tokens["cli-viewer"])
    token_file = tmp_path / "op.token"
    token_file.write_text(tokens["cli-op"] + "\n")
    token_file.chmod(0o600)

    def ctl_run(*words):
        return subprocess.run([str(ctl), *words], env=home, capture_output=True, text=True, timeout=60)

    added = ctl_run("context", "add", "op", "--url", stack.url, "--token-file", str(token_file), "--ca", str(stack.ca_file))
    assert added.returncode == 0, added.stderr
    assert ctl_run("context", "add", "viewer", "--url", stack.url, "--token-env", "VIEWER_TOKEN", "--ca", str(stack.ca_file)).returncode == 0
    config = tmp_path / "xdg" / "vpsgate" / "config"
    assert config.stat().st_mode & 0o777 == 0o600
    assert tokens["cli-op"] not in config.read_text() and tokens["cli-viewer"] not in config.read_text()
    listed = ctl_run("context", "list")
    assert listed.stdout.splitlines()[1].split()[:2] == ["*", "op"], listed.stdout
    assert tokens["cli-op"] not in listed.stdout and tokens["cli-viewer"] not in listed.stdout
    me = ctl_run("me")
    assert me.returncode == 0 and json.loads(me.stdout)["principal"] == "cli-op" and "context: op" in me.stderr, me.stderr
    assert json.loads(ctl_run("--context", "viewer", "me").stdout)["principal"] == "cli-viewer"
    assert ctl_run("context", "use", "viewer").returncode == 0
    assert json.loads(ctl_run("me").stdout)["principal"] == "cli-viewer"
    unknown = ctl_run("--context", "nope", "me")
    assert unknown.returncode == 64 and "no context named nope" in unknown.stderr
    assert ctl_run("context", "remove", "viewer").returncode == 0
    assert ctl_run("context", "list", "--no-header", "--columns", "name").stdout.split() == ["op"]


def test_events_tail_and_batches_through_the_command_line(stack, ctl, tokens):
    batch = run(ctl, stack, tokens["cli-op"], "batches", "create", "vps.restart", "--vps", "1001,1002", "--max-in-flight", "2")
    assert batch.returncode == 0, batch.stderr
    created = json.loads(batch.stdout)
    assert created["command"] == "vps.restart" and created["counts"]["total"] == 2
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = json.loads(run(ctl, stack, tokens["cli-op"], "batches", "get", str(created["id"])).stdout)
        if got["state"] == "succeeded":
            break
        time.sleep(0.5)
    assert got["state"] == "succeeded", got
    tail = run(ctl, stack, tokens["cli-op"], "events", "tail", "--count", "3")
    assert tail.returncode == 0, tail.stderr
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(events) == 3 and all(e["id"].startswith("evt_") for e in events)


def test_completion_scripts_are_generated(stack, ctl, tokens):
    for shell in ("bash", "zsh", "fish"):
        script = run(ctl, stack, tokens["cli-op"], "completion", shell)
        assert script.returncode == 0 and "'vps hostname set'" in script.stdout and "--hostname" in script.stdout, shell


# MARK: - Keys no one can compute from a secret


def operation_of(result):
    """The operation a command tool answered (its first content, as JSON)."""
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def test_an_mcp_key_is_keyed_by_the_process_so_no_one_can_test_a_password_against_it(stack, ctl, tokens):
    arguments = {"id": 1001, "password": "Agent7-" + uuid.uuid4().hex[:12]}

    async def set_twice(client):
        return (await client.call_tool("vps_root_password_set", arguments), await client.call_tool("vps_root_password_set", arguments))

    first, again = mcp(stack, ctl, tokens["cli-admin"], set_twice)
    key = operation_of(first)["idempotency_key"]
    assert key.startswith("mcp-") and operation_of(again)["idempotency_key"] == key  # a retried call is still one command
    # Shown to every reader of the VPS: it must not be a hash of the call anyone could recompute.
    canonical = json.dumps(dict(sorted(arguments.items())), separators=(",", ":"), sort_keys=True)
    assert key != "mcp-" + hashlib.sha256(f"vps_root_password_set {canonical}".encode()).hexdigest()[:40]
    assert arguments["password"] not in json.dumps([c.text for c in first.content + again.content])

    async def set_once(client):
        return await client.call_tool("vps_root_password_set", arguments)

    # Another server process has another secret: the same call gets another key.
    assert operation_of(mcp(stack, ctl, tokens["cli-admin"], set_once))["idempotency_key"] != key


# MARK: - Path parameters are checked and encoded


def operation_count(stack):
    return int(sql(stack, "SELECT count(*) FROM operations"))


def test_an_mcp_path_parameter_that_is_not_its_kind_is_refused_and_nothing_is_sent(stack, ctl, tokens):
    before = operation_count(stack)

    async def escape(client):
        return [await client.call_tool("vps_docker_start", {"id": 1001, "projectName": "../restart#"}),
                await client.call_tool("vps_firewall_activate", {"id": 1001, "firewallId": "../restart#"}),
                await client.call_tool("vps_restart", {"id": -1}),
                await client.call_tool("vps_get", {"id": "1001/actions"})]

    results = mcp(stack, ctl, tokens["cli-admin"], escape)
    assert all(result.is_error for result in results), [r.content[0].text for r in results]
    assert "projectName" in results[0].content[0].text and "firewallId" in results[1].content[0].text
    assert writes(stack) == [], "a tool reached another route"
    assert operation_count(stack) == before


def test_a_command_line_path_parameter_that_is_not_its_kind_is_a_usage_error_and_nothing_is_sent(stack, ctl, scripted):
    for words in (["vps", "docker", "start", "1001", "--project-name", "../restart#"],
                  ["vps", "firewall", "activate", "1001", "--firewall-id", "../restart#"],
                  ["vps", "firewall", "activate", "1001", "--firewall-id=1%2F..%2Frestart"],
                  ["approvals", "decide", "approve", "../vps/1001/restart#"],
                  ["operations", "get", "../vps/1001"]):
        refused = run(ctl, stack, "token", *words, url=scripted)
        assert refused.returncode == 64, (words, refused.stdout, refused.stderr)
    assert Scripted.requests == []


# MARK: - Irreversible commands: confirmed on a terminal, --yes otherwise


def test_an_irreversible_command_without_a_terminal_needs_yes(stack, ctl, tokens):
    refused = run(ctl, stack, tokens["cli-op"], "vps", "snapshot", "create", "1001")
    assert refused.returncode == 64 and "--yes" in refused.stderr and "cannot be undone" in refused.stderr, refused.stderr
    batch = run(ctl, stack, tokens["cli-op"], "batches", "create", "vps.snapshot.delete", "--vps", "1001,1002")
    assert batch.returncode == 64 and "--yes" in batch.stderr, batch.stderr
    assert writes(stack) == []
    shown = run(ctl, stack, tokens["cli-op"], "vps", "snapshot", "create", "--help")
    assert "cannot be undone" in shown.stdout
    done = run(ctl, stack, tokens["cli-op"], "vps", "snapshot", "create", "1001", "--yes")
    assert done.returncode == 0, done.stderr
    assert writes(stack) == [("POST", f"{VM}/1001/snapshot")]
    # A reversible command never asks.
    assert run(ctl, stack, tokens["cli-op"], "vps", "restart", "1002").returncode == 0


def on_a_terminal(ctl, stack, token, answer, *words):
    """Runs vpsgatectl with a pseudo-terminal as its standard input and standard error (where
    the question is asked), answering `answer` once the question is on the terminal (or not
    at all when none comes); its exit code, standard output and what the terminal showed."""
    controller, terminal = pty.openpty()
    shown = b""
    try:
        process = subprocess.Popen([str(ctl), *words], env=env(stack, token), stdin=terminal, stdout=subprocess.PIPE,
                                   stderr=terminal, text=True)
        os.close(terminal)
        terminal = None
        deadline = time.monotonic() + 60
        asked = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the terminal's other side closed: the process ended
                    break
                if not chunk:
                    break
                shown += chunk
                if not asked and b"[y/N]" in shown:
                    os.write(controller, answer.encode())
                    asked = True
            elif process.poll() is not None:
                break
        out, _ = process.communicate(timeout=60)
    finally:
        if terminal is not None:
            os.close(terminal)
        os.close(controller)
    return process.returncode, out, shown.decode(errors="replace")


def test_on_a_terminal_an_irreversible_command_asks_and_only_yes_sends(stack, ctl, tokens):
    code, _, shown = on_a_terminal(ctl, stack, tokens["cli-op"], "ok\n", "vps", "snapshot", "create", "1001")
    assert "cannot be undone" in shown and "[y/N]" in shown, shown
    assert code == 1 and "nothing was sent" in shown, shown
    assert writes(stack) == []
    code, _, shown = on_a_terminal(ctl, stack, tokens["cli-op"], "y\n", "vps", "snapshot", "create", "1001")
    assert code == 0, shown
    assert writes(stack) == [("POST", f"{VM}/1001/snapshot")]
    # --yes on a terminal: no question, sent.
    code, _, shown = on_a_terminal(ctl, stack, tokens["cli-op"], "", "vps", "snapshot", "create", "1002", "--yes")
    assert code == 0 and "[y/N]" not in shown, shown
    assert writes(stack)[-1] == ("POST", f"{VM}/1002/snapshot")
    # stdin a terminal but stderr not: no one would see the question, so it is refused.
    controller, terminal = pty.openpty()
    try:
        half = subprocess.run([str(ctl), "vps", "snapshot", "create", "1003"], env=env(stack, tokens["cli-op"]), stdin=terminal,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert half.returncode == 64 and "--yes" in half.stderr, half.stderr
    assert ("POST", f"{VM}/1003/snapshot") not in writes(stack)


# MARK: - Replays are said


def test_a_replayed_mcp_call_says_so_and_when_it_was_first_made(stack, ctl, tokens):
    async def restart_twice(client):
        return (await client.call_tool("vps_restart", {"id": 1002, "wait_seconds": 0}),
                await client.call_tool("vps_restart", {"id": 1002, "wait_seconds": 0}))

    first, again = mcp(stack, ctl, tokens["cli-op"], restart_twice)
    operation = operation_of(first)
    assert not [c for c in first.content if "replay" in c.text.lower()]
    assert operation_of(again)["id"] == operation["id"]
    note = again.content[-1].text
    assert "replayed" in note and operation["created_at"] in note and "not run again" in note, note
    assert writes(stack) == [("POST", f"{VM}/1002/restart")]


def test_a_replayed_command_line_request_says_so_on_stderr(stack, ctl, tokens):
    key = "ctl-replay-" + uuid.uuid4().hex
    first = run(ctl, stack, tokens["cli-op"], "vps", "restart", "1003", "--key", key)
    assert first.returncode == 0 and "replayed" not in first.stderr, first.stderr
    again = run(ctl, stack, tokens["cli-op"], "vps", "restart", "1003", "--key", key)
    assert again.returncode == 0, again.stderr
    created = json.loads(first.stdout)["created_at"]
    assert "replayed" in again.stderr and created in again.stderr, again.stderr
    assert writes(stack) == [("POST", f"{VM}/1003/restart")]


# MARK: - The token goes over plain HTTP to loopback only; its files are private


def outward_address():
    """An address of this machine other than loopback (the source of its default route), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_plain_http_is_refused_to_anything_but_loopback_before_sending(stack, ctl):
    # An address of this machine, so that a client that did send would reach the scripted
    # server; on a machine with none, a documentation address (nothing could answer there,
    # and the refusal must come before any connection all the same).
    address = outward_address() or "192.0.2.1"
    server = serve_scripted("0.0.0.0")
    port = server.server_address[1]
    try:
        for url in (f"http://{address}:{port}", f"http://localhost@{address}:{port}", f"http://127.0.0.1.invalid:{port}"):
            refused = run(ctl, stack, "token", "vps", "restart", "1001", url=url, timeout=30)
            assert refused.returncode == 64 and "http://" in refused.stderr and "loopback" in refused.stderr, (url, refused.stderr)
        assert Scripted.requests == []
        for url in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            assert run(ctl, stack, "token", "vps", "restart", "1001", url=url).returncode == 0, url
        assert [r[0] for r in Scripted.requests] == ["POST", "POST"]
    finally:
        server.shutdown()


def test_token_and_config_files_others_can_read_are_refused(stack, ctl, tokens, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("VPSGATE_")}
    token = tmp_path / "token"
    token.write_text(tokens["cli-viewer"] + "\n")
    config = tmp_path / "config"
    config.write_text(f"VPSGATE_URL={stack.url}\nVPSGATE_TOKEN_FILE={token}\nVPSGATE_CA_FILE={stack.ca_file}\n")
    for mode in (0o644, 0o640, 0o604):
        config.chmod(mode)
        token.chmod(0o600)
        refused = subprocess.run([str(ctl), "me"], env=dict(base, VPSGATECTL_CONFIG=str(config)), capture_output=True, text=True, timeout=60)
        assert refused.returncode == 64 and str(config) in refused.stderr and "chmod 600" in refused.stderr, (mode, refused.stderr)
        config.chmod(0o600)
        token.chmod(mode)
        refused = subprocess.run([str(ctl), "me"], env=dict(base, VPSGATECTL_CONFIG=str(config)), capture_output=True, text=True, timeout=60)
        assert refused.returncode == 64 and str(token) in refused.stderr and "chmod 600" in refused.stderr, (mode, refused.stderr)
    token.chmod(0o600)
    me = subprocess.run([str(ctl), "me"], env=dict(base, VPSGATECTL_CONFIG=str(config)), capture_output=True, text=True, timeout=60)
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["principal"] == "cli-viewer"
