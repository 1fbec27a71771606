"""MCP over Streamable HTTP at /mcp (docs/clients.md#mcp-over-http), through nginx with the
caller's own token, driven by the official Python MCP client: the tools a caller sees are its
grants' (narrowed by read_only and toolsets), a tool call is the API request of the caller,
and nothing a caller may not do reaches Hostinger."""

import asyncio
import json
import time
import uuid

import pytest

from vpsgate_e2e import VM, close_operations_and_reset_sim, http_request, sim_requests, sql


@pytest.fixture(scope="module")
def tokens(stack):
    stack.grant("mcp-viewer", "*", "viewer")
    stack.grant("mcp-op", "*", "operator")
    stack.grant("mcp-admin", "*", "admin")
    return {name: stack.create_token(name) for name in ("mcp-viewer", "mcp-op", "mcp-admin")}


@pytest.fixture(autouse=True)
def fresh(stack):
    close_operations_and_reset_sim(stack, action_delay_ms=300)


def writes(stack):
    return [(r["method"], r["path"]) for r in sim_requests(stack) if r["method"] != "GET"]


def agent(stack, token, body, query=""):
    """Runs `body(session)` in an initialized MCP client session at /mcp`query` as `token`."""
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def session():
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, verify=stack.ssl_context(),
                                    timeout=httpx2.Timeout(30, read=90))
        async with client, streamable_http_client(stack.url + "/mcp" + query, http_client=client) as (read, write):
            async with ClientSession(read, write) as mcp:
                await mcp.initialize()
                return await body(mcp)

    return asyncio.run(asyncio.wait_for(session(), timeout=120))


async def listing(mcp):
    return (await mcp.list_tools()).tools


def post(stack, message, token=None, query="", headers=None):
    """One raw POST to /mcp: (status, headers, parsed body or None)."""
    all_headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    status, answered, raw = http_request(stack, "POST", "/mcp" + query, json.dumps(message).encode(), all_headers, timeout=30)
    return status, answered, json.loads(raw) if raw else None


def text(result):
    return "\n".join(item.text for item in result.content)


# MARK: - Who sees what


def test_a_viewers_token_sees_only_read_tools_each_with_a_title_and_an_output_schema(stack, tokens):
    viewer = agent(stack, tokens["mcp-viewer"], listing)
    names = {tool.name for tool in viewer}
    assert {"vps_list", "vps_get", "operation_get", "event_list", "batch_get"} <= names
    assert all(tool.annotations.read_only_hint for tool in viewer), [t.name for t in viewer if not t.annotations.read_only_hint]
    assert not names & {"vps_restart", "plan", "batch_create", "batch_cancel"}
    for tool in viewer:
        assert tool.title and tool.output_schema["type"] == "object", tool.name
    # The same tools as vpsgatectl mcp: one catalogue for both transports.
    operator = agent(stack, tokens["mcp-op"], listing)
    by_name = {tool.name: tool for tool in operator}
    assert {"vps_restart", "plan", "batch_create", "batch_cancel"} <= set(by_name)
    assert by_name["vps_restart"].title == "VPS: restart" and by_name["vps_restart"].output_schema["properties"]["state"]["enum"]
    assert "call plan first" in by_name["vps_snapshot_delete"].description
    assert "call plan first" not in by_name["vps_restart"].description


def test_an_unauthenticated_client_gets_401_and_nothing_else_is_served(stack, tokens):
    status, headers, problem = post(stack, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert status == 401 and problem["type"].endswith("/problems#unauthenticated"), problem
    assert headers["Content-Type"] == "application/problem+json"
    status, _, _ = post(stack, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, token="vpsg_" + "A" * 43)
    assert status == 401
    with pytest.raises(Exception):
        agent(stack, "vpsg_" + "B" * 43, listing)
    # No SSE stream and no sessions: GET and DELETE are 405, as the transport allows.
    status, headers, _ = http_request(stack, "GET", "/mcp", headers={"Authorization": f"Bearer {tokens['mcp-viewer']}",
                                                                      "Accept": "text/event-stream"})
    assert status == 405 and headers["Allow"] == "POST"


def test_the_transport_answers_notifications_202_and_refuses_an_unknown_protocol_version(stack, tokens):
    token = tokens["mcp-viewer"]
    status, _, body = post(stack, {"jsonrpc": "2.0", "method": "notifications/initialized"}, token)
    assert (status, body) == (202, None)
    status, headers, answer = post(stack, {"jsonrpc": "2.0", "id": 7, "method": "initialize",
                                           "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                      "clientInfo": {"name": "t", "version": "1"}}}, token)
    assert status == 200 and headers["Content-Type"] == "application/json" and "Mcp-Session-Id" not in headers
    assert answer["id"] == 7 and answer["result"]["protocolVersion"] == "2025-06-18"
    status, _, problem = post(stack, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, token, headers={"MCP-Protocol-Version": "1999-01-01"})
    assert status == 400 and "1999-01-01" in problem["detail"]
    status, _, answer = post(stack, {"jsonrpc": "2.0", "id": 2, "method": "no/such"}, token)
    assert status == 200 and answer["error"]["code"] == -32601
    # Not for browsers: an Origin is refused, and only application/json (which needs a CORS
    # preflight cross-site) is taken, so no web page can drive it with a credential the browser adds.
    status, _, problem = post(stack, {"jsonrpc": "2.0", "id": 3, "method": "ping"}, token, headers={"Origin": "https://evil.example"})
    assert status == 403, problem
    status, _, _ = post(stack, {"jsonrpc": "2.0", "id": 4, "method": "ping"}, token, headers={"Content-Type": "text/plain"})
    assert status == 415


# MARK: - An agent at work


def test_an_operators_agent_restarts_a_vps_and_follows_it_to_succeeded(stack, tokens):
    async def restart(mcp):
        started = await mcp.call_tool("vps_restart", {"id": 1001, "wait_seconds": 0, "reason": "agent check"})
        assert not started.is_error, text(started)
        operation = started.structured_content
        deadline = time.monotonic() + 60
        while operation["state"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
            followed = await mcp.call_tool("operation_get", {"operation_id": operation["id"], "wait_seconds": 10})
            assert not followed.is_error, text(followed)
            operation = followed.structured_content
        return started, operation

    started, operation = agent(stack, tokens["mcp-op"], restart)
    assert operation["state"] == "succeeded", operation
    assert operation["requested_by"] == "mcp-op" and operation["reason"] == "agent check"
    assert operation["idempotency_key"].startswith("mcp-")
    assert json.loads(started.content[0].text)["id"] == operation["id"]
    assert writes(stack) == [("POST", f"{VM}/1001/restart")]
    # The API request ran as the caller, with a correlation id tied to the /mcp request's.
    audited = sql(stack, f"SELECT principal || ' ' || auth_type || ' ' || correlation_id FROM audit_events "
                         f"WHERE operation_id = '{operation['id']}' AND kind = 'final'")
    principal, auth_type, correlation = audited.split()
    assert (principal, auth_type) == ("mcp-op", "token") and correlation.endswith(".1"), audited


def test_read_only_and_toolsets_narrow_the_list_and_calls_outside_them_send_nothing(stack, tokens):
    admin = tokens["mcp-admin"]
    everything = {tool.name for tool in agent(stack, admin, listing)}
    read_only = agent(stack, admin, listing, "?read_only=1")
    assert read_only and all(tool.annotations.read_only_hint for tool in read_only)
    assert "plan" in {tool.name for tool in read_only} and "vps_restart" not in {tool.name for tool in read_only}
    operations = {tool.name for tool in agent(stack, admin, listing, "?toolsets=operations")}
    # plan plans only the commands of the toolsets named: with none of them, there is no plan.
    assert operations == {name for name in everything if name.startswith(("operation_", "event_", "batch_"))}, operations
    both = {tool.name for tool in agent(stack, admin, listing, "?toolsets=vps,operations&read_only=true")}
    assert {"vps_get", "operation_get", "plan"} <= both and "vps_restart" not in both and len(both) < len(everything)

    async def outside(mcp):
        return await mcp.call_tool("vps_restart", {"id": 1001}), await mcp.call_tool("batch_create", {"command": "vps.restart", "vps": [1001]})

    for refused in agent(stack, admin, outside, "?read_only=1"):
        assert refused.is_error and "outside this session's tools" in text(refused) and "nothing was sent" in text(refused)
    status, _, problem = post(stack, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, admin, "?toolsets=vps,dns")
    assert status == 400 and "unknown toolset dns" in problem["detail"]
    assert writes(stack) == [] and sql(stack, "SELECT count(*) FROM operations WHERE requested_by = 'mcp-admin'") == "0"


def test_a_tool_outside_the_callers_permissions_is_refused_and_nothing_reaches_the_simulator(stack, tokens):
    async def overreach(mcp):
        return (await mcp.call_tool("vps_restart", {"id": 1001}),
                await mcp.call_tool("vps_recreate", {"id": 1001, "template_id": 1130, "confirm": 1001}),
                await mcp.call_tool("batch_create", {"command": "vps.stop", "vps": [1001, 1002]}))

    for refused in agent(stack, tokens["mcp-viewer"], overreach):
        assert refused.is_error, text(refused)
        assert json.loads(refused.content[0].text)["type"].endswith("/problems#forbidden"), text(refused)
    assert writes(stack) == []
    assert sql(stack, "SELECT count(*) FROM operations WHERE requested_by = 'mcp-viewer'") == "0"


def test_a_password_given_to_a_tool_never_echoes_back(stack, tokens):
    password = "Agent7-" + uuid.uuid4().hex[:12]

    async def set_password(mcp):
        arguments = {"id": 1002, "password": password}
        planned = await mcp.call_tool("plan", {"tool": "vps_root_password_set", "arguments": arguments})
        done = await mcp.call_tool("vps_root_password_set", dict(arguments, wait_seconds=20))
        return planned, done

    planned, done = agent(stack, tokens["mcp-admin"], set_password)
    assert not planned.is_error and planned.structured_content["decision"] == "proceed", text(planned)
    assert planned.structured_content["would_send"]["path"].endswith("/1002/root-password")
    assert not done.is_error and done.structured_content["state"] == "succeeded", text(done)
    for result in (planned, done):
        assert password not in text(result) and password not in json.dumps(result.structured_content)
    assert password not in sql(stack, "SELECT coalesce(string_agg(row_to_json(a)::text, ''), '') FROM audit_events a")
    assert writes(stack) == [("PUT", f"{VM}/1002/root-password")]


def test_batches_and_the_event_feed_as_tools(stack, tokens):
    async def batch(mcp):
        first = await mcp.call_tool("event_list", {"limit": 500})
        cursor = first.structured_content["next"]
        created = await mcp.call_tool("batch_create", {"command": "vps_start", "vps": [1001, 1003], "max_in_flight": 1})
        assert not created.is_error, text(created)
        again = await mcp.call_tool("batch_create", {"command": "vps_start", "vps": [1001, 1003], "max_in_flight": 1})
        batch_id = created.structured_content["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = await mcp.call_tool("batch_get", {"id": batch_id})
            if got.structured_content["state"] not in ("pending", "running"):
                break
            await asyncio.sleep(0.5)
        events = await mcp.call_tool("event_list", {"after": cursor, "wait": 5} if cursor else {"wait": 5})
        return created, again, got, events

    created, again, got, events = agent(stack, tokens["mcp-op"], batch)
    assert again.structured_content["id"] == created.structured_content["id"], "a retried call is one batch"
    assert got.structured_content["state"] == "succeeded", got.structured_content
    assert sorted(writes(stack)) == [("POST", f"{VM}/1001/start"), ("POST", f"{VM}/1003/start")]
    assert not events.is_error and events.structured_content["data"], text(events)
    # The feed after the cursor: this batch's operations (and the batch's own events, on no VPS).
    assert {event["vps_id"] for event in events.structured_content["data"]} - {None} == {1001, 1003}


def test_every_read_tools_answer_conforms_to_its_output_schema(stack, tokens):
    """The client checks structured content against the tool's outputSchema and raises when
    it does not conform: every read a caller can make without more than an id answers."""
    async def read_everything(mcp):
        answered = {}
        for tool in (await mcp.list_tools()).tools:
            required = set(tool.input_schema.get("required", []))
            if not tool.annotations.read_only_hint or tool.name == "plan" or not required <= {"id"}:
                continue
            result = await mcp.call_tool(tool.name, {"id": 1001} if required else {})
            answered[tool.name] = result
        return answered

    answered = agent(stack, tokens["mcp-admin"], read_everything)
    good = {name for name, result in answered.items() if not result.is_error}
    assert {"vps_list", "vps_get", "vps_actions", "vps_backups", "operation_list", "event_list", "batch_list",
            "templates_list", "data_centers_list"} <= good, {name: text(r)[:200] for name, r in answered.items() if r.is_error}
    assert isinstance(answered["vps_list"].structured_content["items"], list)  # a list is wrapped: structured content is an object
