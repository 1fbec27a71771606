"""The command pipeline end to end: nginx with token authentication, two vpsgate instances,
PostgreSQL and hostinger-sim; asserting on responses, the simulator's request log and the
database (issue: authentication, grants, idempotency, operations and audit)."""

import json
import subprocess
import threading
import time
import uuid

import pytest

from vpsgate_e2e import (VM, problem_code, Client, close_operations_and_reset_sim, final_audit_rows, new_key, psql, sim_requests, sql,
                         wait_operation)


@pytest.fixture(scope="module")
def people(stack):
    """Principals: admin (admin on *), viewer (viewer on 1001), expired (admin on 1001, expired)."""
    stack.grant("alice", "*", "admin")
    stack.grant("victor", "1001", "viewer")
    stack.grant("olga", "1001", "operator")
    stack.grant("olga", "1003", "operator")
    stack.grant("eve", "1001", "admin", expires="1s")
    tokens = {name: stack.create_token(name) for name in ("alice", "victor", "olga", "eve")}
    time.sleep(1.2)  # eve's grant has expired
    return {name: Client(stack, token) for name, token in tokens.items()} | {"tokens": tokens}


@pytest.fixture(autouse=True)
def fresh_sim(stack):
    # Each test starts with no VPS busy: operations a previous test left running are closed
    # here (settling them from Hostinger is the reconciler's work, a later issue).
    close_operations_and_reset_sim(stack, action_delay_ms=300)
    yield


def audit_count(stack):
    return int(sql(stack, "SELECT count(*) FROM audit_events WHERE kind IN ('received', 'final')"))


# MARK: - 1. Authentication

def test_no_wrong_revoked_or_expired_token_is_401_and_leaves_no_audit(stack, people):
    before = audit_count(stack)
    revoked = stack.create_token("rita")
    stack.grant("rita", "*", "admin")
    token_id = sql(stack, "SELECT max(id) FROM api_tokens WHERE principal = 'rita'")
    stack.admin("token", "revoke", token_id)
    expiring = stack.create_token("alice", expires="1s")
    time.sleep(1.2)
    for token in (None, "vpsg_wrong", revoked, expiring):
        status, headers, body = Client(stack, token).json("POST", "/v1/vps/1002/start", key=new_key())
        assert status == 401, token
        assert problem_code(body) == "unauthenticated"
        assert "Bearer" in headers["WWW-Authenticate"]
    assert audit_count(stack) == before
    assert sim_requests(stack) == []


def test_identity_headers_from_the_client_change_nothing(stack, people):
    for header in ("Remote-User", "X-Remote-User", "X-Vpsgate-Principal"):
        status, _, _ = Client(stack, None).json("GET", "/v1/vps/1001", headers={header: "alice"})
        assert status == 401
        # With victor's token, claiming to be alice does not give alice's rights.
        status, _, _ = people["victor"].json("POST", "/v1/vps/1001/start", key=new_key(), headers={header: "alice"})
        assert status == 403
    assert sim_requests(stack, "POST") == []


# MARK: - 2. Grants

def test_viewer_reads_but_cannot_act_and_other_vps_do_not_exist_for_them(stack, people):
    victor = people["victor"]
    status, _, vm = victor.json("GET", "/v1/vps/1001")
    assert status == 200 and vm["id"] == 1001
    status, _, problem = victor.json("POST", "/v1/vps/1001/start", key=new_key())
    assert status == 403 and problem["type"].endswith("#forbidden")
    for method, path in (("GET", "/v1/vps/1002"), ("GET", "/v1/vps/1002/actions"), ("POST", "/v1/vps/1002/start"),
                         ("POST", "/v1/vps/1002/stop"), ("POST", "/v1/vps/1002/restart")):
        status, _, problem = victor.json(method, path, key=new_key())
        assert status == 404, (method, path)
        assert problem["type"].endswith("#not-found")
    status, _, vms = victor.json("GET", "/v1/vps")
    assert [vm["id"] for vm in vms] == [1001]
    assert [r["path"] for r in sim_requests(stack, "POST")] == []


def test_expired_grant_is_no_grant(stack, people):
    for method, path in (("GET", "/v1/vps/1001"), ("POST", "/v1/vps/1001/start")):
        status, _, _ = people["eve"].json(method, path, key=new_key())
        assert status == 404
    assert sim_requests(stack, "POST") == []


# MARK: - 3. A command end to end

def test_start_is_accepted_sent_once_with_the_correlation_id_and_succeeds(stack, people):
    alice = people["alice"]
    key = new_key()
    status, headers, operation = alice.json("POST", "/v1/vps/1002/start", key=key, headers={"X-Request-ID": "corr-start-1"})
    assert status == 202, operation
    assert headers["Location"] == f"/v1/operations/{operation['id']}"
    assert operation["vps_id"] == 1002 and operation["command"] == "vps.start"
    assert operation["state"] == "running"
    assert operation["hostinger_action"]["state"] == "sent"
    assert operation["requested_by"] == "alice" and operation["idempotency_key"] == key
    assert operation["correlation_id"] == "corr-start-1"
    starts = sim_requests(stack, "POST", "/1002/start")
    assert len(starts) == 1
    assert starts[0]["headers"]["x-correlation-id"] == "corr-start-1"

    done = wait_operation(alice, headers["Location"])
    assert done["state"] == "succeeded" and done["completed_at"] is not None
    assert stack.sim("GET", f"{VM}/1002")[2]["state"] == "running"

    rows = sql(stack, f"""SELECT kind, outcome, extract(epoch FROM occurred_at)
                          FROM audit_events WHERE operation_id = '{operation['id']}' ORDER BY id""").splitlines()
    kinds = [row.split("|")[:2] for row in rows]
    # The completion is recorded by whoever sees it first: a status read or the reconciler.
    assert kinds[:2] == [["received", "received"], ["final", "accepted"]]
    assert kinds[2:] in ([["completion", "succeeded"]], [["reconciler", "succeeded"]])
    received_at = float(rows[0].split("|")[2])
    sim_at = time.mktime(time.strptime(starts[0]["at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + float("0." + starts[0]["at"][20:26])
    assert received_at <= sim_at, "the received row must be committed before Hostinger is called"


def test_each_mutation_goes_once_on_a_new_connection_that_resumes_a_tls_session(stack, people):
    """A mutation that is not repeat-safe (a snapshot) is never sent on a kept-alive
    connection (libcurl would send it again if that connection died under it), and yet costs
    no full TLS handshake: every thread's client resumes the sessions of its instance's
    shared cache. hostinger-sim's nginx logs each request's connection and whether its
    session was resumed (reused=r)."""
    alice = people["alice"]
    vps_ids = range(2101, 2107)
    for vps in vps_ids:
        stack.sim("POST", "/__sim/vms", {"id": vps, "state": "running"})
    log = stack.run_dir / "hostinger-sim-access.log"
    start = log.stat().st_size
    for vps in vps_ids:
        status, _, operation = alice.json("POST", f"/v1/vps/{vps}/snapshot", key=new_key())
        assert status == 202, operation

    def posts():
        with log.open() as f:
            f.seek(start)
            return [line for line in f.read().splitlines() if line.startswith("POST ") and "/snapshot HTTP" in line]
    deadline = time.monotonic() + 5
    while len(posts()) < len(vps_ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = posts()
    assert sorted(int(line.split("/snapshot")[0].rsplit("/", 1)[1]) for line in lines) == list(vps_ids), lines
    assert all(" requests=1 " in line for line in lines), lines
    # At most one full handshake per instance (a share per process), whichever of its 16
    # workers took each command; before this share each worker made its own.
    assert sum("reused=r" not in line for line in lines) <= 2, lines


# MARK: - 4. Idempotency

def test_idempotency_key_rules(stack, people):
    alice = people["alice"]
    status, _, problem = alice.json("POST", "/v1/vps/1003/restart")
    assert status == 400 and problem["type"].endswith("#idempotency-key-missing")
    for bad in ("short", "x" * 256, "has space in it", "ünïcödé-key-123"):
        status, _, problem = alice.json("POST", "/v1/vps/1003/restart", key=bad)
        assert status == 400 and problem["type"].endswith("#idempotency-key-invalid"), bad

    key = new_key()
    first = alice.request("POST", "/v1/vps/1003/restart", key=f'"{key}"')
    assert first[0] == 202
    replay = alice.request("POST", "/v1/vps/1003/restart", key=key)
    assert replay[0] == 202
    assert replay[2] == first[2]
    assert replay[1]["Location"] == first[1]["Location"]
    assert replay[1]["Idempotent-Replayed"] == "true"
    assert len(sim_requests(stack, "POST", "/1003/restart")) == 1

    # Same key, another path or body: 422. Another principal: a different key.
    status, _, problem = alice.json("POST", "/v1/vps/1003/stop", key=key)
    assert status == 422 and problem["type"].endswith("#idempotency-key-reused")
    status, _, problem = alice.json("POST", "/v1/vps/1003/restart", key=key, body={"x": 1})
    assert status in (422,) and problem["type"].endswith(("#idempotency-key-reused", "#validation-failed"))
    wait_operation(alice, first[1]["Location"])
    status, _, operation = people["olga"].json("POST", "/v1/vps/1003/restart", key=key)
    assert status == 202 and operation["requested_by"] == "olga"
    assert len(sim_requests(stack, "POST", "/1003/restart")) == 2


def test_canonical_body_makes_the_same_fingerprint(stack, people):
    # A bodiless command takes {} and no body alike: whitespace and key order do not matter.
    alice = people["alice"]
    key = new_key()
    first = alice.request("POST", "/v1/vps/1001/restart", key=key, raw_body=b"{ }")
    assert first[0] == 202
    again = alice.request("POST", "/v1/vps/1001/restart", key=key, raw_body=b"{}")
    assert again[0] == 202 and again[1]["Idempotent-Replayed"] == "true"


# MARK: - 5. Concurrency

def test_fifty_concurrent_identical_requests_make_one_hostinger_call(stack, people):
    stack.sim("POST", "/__sim/faults", {"path": "/1001/stop$", "delay_ms": 800})
    token = people["tokens"]["alice"]
    key = new_key()
    results = []
    lock = threading.Lock()

    def send(index):
        outcome = Client(stack, token).json("POST", "/v1/vps/1001/stop", key=key, headers={"X-Request-ID": f"conc-{key}-{index}"})
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(r[0] for r in results)
    assert len(results) == 50
    assert set(statuses) <= {202, 409}, [r for r in results if r[0] not in (202, 409)][:2]
    assert statuses.count(202) >= 1
    for status, _, body in results:
        if status == 409:
            assert body["type"].endswith("#idempotency-key-in-use")
    accepted = {json.dumps(body, sort_keys=True) for status, _, body in results if status == 202}
    assert len(accepted) == 1, "every 202 is the same operation"
    assert len(sim_requests(stack, "POST", "/1001/stop")) == 1
    for _ in range(3):
        status, headers, _ = Client(stack, token).json("POST", "/v1/vps/1001/stop", key=key)
        assert status == 202 and headers["Idempotent-Replayed"] == "true"
    # They were spread over both instances (nginx logs which one served each).
    lines = [l for l in stack.log_path("nginx-access").read_text().splitlines() if f"id=conc-{key}-" in l]
    assert len(lines) == 50
    upstreams = {l.split("upstream=")[1].split()[0].split(",")[-1].strip() for l in lines}
    assert {str(stack.socket_path(1)), str(stack.socket_path(2))} <= {u.removeprefix("unix:") for u in upstreams}


# MARK: - 6. One operation per VPS

def test_a_running_operation_makes_its_vps_busy_from_either_instance(stack, people):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 4000})
    alice = people["alice"]
    status, headers, operation = alice.json("POST", "/v1/vps/1001/restart", key=new_key())
    assert status == 202
    busy = [alice.json("POST", f"/v1/vps/1001/{verb}", key=new_key()) for verb in ("stop", "start", "restart", "stop")]
    for status, headers_, problem in busy:
        assert status == 409
        assert problem["type"].endswith("#vps-busy")
        assert problem["operation_id"] == operation["id"]
        assert "Retry-After" in headers_
    status, _, other = alice.json("POST", "/v1/vps/1003/stop", key=new_key())
    assert status == 202
    assert len(sim_requests(stack, "POST", "/1001/restart")) == 1
    assert sim_requests(stack, "POST", "/1001/stop") == [] and sim_requests(stack, "POST", "/1001/start") == []
    wait_operation(alice, f"/v1/operations/{operation['id']}")
    status, _, _ = alice.json("POST", "/v1/vps/1001/stop", key=new_key())
    assert status == 202


# MARK: - 7. validate_only

def test_validate_only_calls_nothing_and_stores_nothing(stack, people):
    alice = people["alice"]
    keys_before = sql(stack, "SELECT count(*) FROM idempotency_keys")
    status, _, body = alice.json("POST", "/v1/vps/1002/start?validate_only=true")
    assert status == 200
    would_send = {"method": "POST", "path": f"{VM}/1002/start", "body": None}
    assert {k: body[k] for k in ("validate_only", "command", "vps_id", "decision", "would_send", "hostinger")} == {
        "validate_only": True, "command": "vps.start", "vps_id": 1002, "decision": "proceed",
        "would_send": would_send, "hostinger": would_send}
    assert body["vps"]["id"] == 1002 and body["policy"] is None and body["approvals_required"] == 0
    status, _, _ = people["victor"].json("POST", "/v1/vps/1001/start?validate_only=true")
    assert status == 403
    assert [r for r in sim_requests(stack) if r["method"] != "GET"] == []  # the plan reads the VPS, sends nothing
    assert sql(stack, "SELECT count(*) FROM idempotency_keys") == keys_before


# MARK: - 8. Failures

def test_hostinger_failures_follow_the_retry_rules(stack, people):
    alice = people["alice"]
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1002/start$", "status": 503, "times": 1})
    status, _, operation = alice.json("POST", "/v1/vps/1002/start", key=new_key())
    assert status == 202 and operation["state"] == "running"
    assert len(sim_requests(stack, "POST", "/1002/start")) == 2
    wait_operation(alice, f"/v1/operations/{operation['id']}")

    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1002/stop$", "status": 503, "times": -1})
    key = new_key()
    status, _, problem = alice.json("POST", "/v1/vps/1002/stop", key=key)
    assert status == 502 and problem["type"].endswith("#upstream-error")
    assert problem["upstream"]["correlation_id"]
    assert len(sim_requests(stack, "POST", "/1002/stop")) == 3
    state = sql(stack, f"SELECT state FROM operations WHERE idempotency_key = '{key}'")
    assert state == "failed"
    stack.sim("DELETE", "/__sim/faults")


def test_an_open_breaker_answers_503_and_keeps_no_key(stack, people):
    """Hostinger asks for 30 s: 503 with Retry-After; the key is not stored, so the same key
    works later. The 429 pauses every instance (docs/design.md#the-shared-budget): until the pause ends, the
    same key answers 503 upstream-budget, still keeping nothing."""
    alice = people["alice"]
    stack.sim("POST", "/__sim/faults", {"path": "/1003/start$", "status": 429, "retry_after": 30, "times": 1})
    key = new_key()
    status, headers, problem = alice.json("POST", "/v1/vps/1003/start", key=key)
    assert status == 503 and problem["type"].endswith("#unavailable")
    assert int(headers["Retry-After"]) >= 1
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "0"
    try:
        time.sleep(1.2)  # the other instance reads the pause within a second
        for _ in range(2):  # whichever instance answers
            status, headers, problem = alice.json("POST", "/v1/vps/1003/start", key=key)
            assert status == 503 and problem["type"].endswith("#upstream-budget") and int(headers["Retry-After"]) >= 20, problem
        assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "0"
        assert len(sim_requests(stack, "POST", "/1003/start")) == 1
    finally:
        # The pause over (lifted in the database; each instance reads it within a second).
        sql(stack, "UPDATE upstream_budgets SET paused_until = NULL")
        time.sleep(1.5)
    status, _, _ = alice.json("POST", "/v1/vps/1003/start", key=key)
    assert status == 202


def test_a_day_long_retry_after_pauses_for_the_cap_and_budget_resume_lifts_it(stack, people):
    """A 429 with `Retry-After: 86400` pauses every instance for VPSGATE_BUDGET_MAX_PAUSE
    (15 minutes by default), not a day; `vpsgate budget resume` lifts the pause, as an
    audited admin change, and commands go out again within a second or so."""
    alice = people["alice"]
    stack.sim("POST", "/__sim/faults", {"path": "/1003/start$", "status": 429, "retry_after": 86400, "times": 1})
    status, _, problem = alice.json("POST", "/v1/vps/1003/start", key=new_key())
    assert status == 503, problem
    try:
        paused = float(sql(stack, "SELECT extract(epoch FROM max(paused_until) - clock_timestamp()) FROM upstream_budgets"))
        assert 800 < paused <= 900, paused
        shown = stack.admin("budget", "show").stdout
        assert "PAUSED-UNTIL" in shown and len(shown.splitlines()) == 2, shown
        time.sleep(1.2)  # the other instance reads the pause within a second
        for _ in range(2):  # whichever instance answers
            status, _, problem = alice.json("POST", "/v1/vps/1003/start", key=new_key())
            assert status == 503 and problem["type"].endswith("#upstream-budget"), problem
        out = stack.admin("budget", "resume", "--actor", "oncall-7").stdout
        assert out.startswith("resumed 1 budget"), out
        assert sql(stack, "SELECT count(*) FROM upstream_budgets WHERE paused_until > clock_timestamp()") == "0"
        audit = sql(stack, "SELECT principal, auth_type, request_params ->> 'claimed_actor', request_params -> 'before' ->> 'paused_until' "
                           "IS NOT NULL FROM audit_events WHERE kind = 'admin' AND command = 'admin.upstream_budgets.update' "
                           "ORDER BY id DESC LIMIT 1")
        assert audit == "oncall-7|database:vpsgate_admin|oncall-7|t", audit
        time.sleep(1.5)  # each instance reads the lifted pause within a second
        status, _, _ = alice.json("POST", "/v1/vps/1003/start", key=new_key())
        assert status == 202
        assert stack.admin("budget", "resume").stdout.strip() == "no budget is paused"
    finally:
        sql(stack, "UPDATE upstream_budgets SET paused_until = NULL")
        time.sleep(1.5)


def test_database_unavailable_is_503_and_nothing_reaches_hostinger(stack, people):
    alice = people["alice"]
    stack.postgres.stop()
    try:
        status, headers, problem = alice.json("POST", "/v1/vps/1002/restart", key=new_key())
        assert status == 503
        assert "Retry-After" in headers
        assert problem["type"].endswith("#unavailable")
    finally:
        stack.postgres.start()
    assert sim_requests(stack, "POST") == []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alice.json("GET", "/v1/operations?limit=1")[0] != 200:
        time.sleep(0.2)


def test_hostinger_validation_errors_are_422_with_upstream_details(stack, people):
    # The simulator refuses a restart of VM 1002 with a 422 (as Hostinger does for bad input).
    stack.sim("POST", "/__sim/faults", {"path": "/1002/restart$", "status": 422})
    status, _, problem = people["alice"].json("POST", "/v1/vps/1002/restart", key=new_key())
    assert status == 422 and problem["type"].endswith("#upstream-rejected")
    assert problem["upstream"]["message"] and problem["upstream"]["correlation_id"]


# MARK: - 9. Audit

AUDIT_FIELDS = ["event_id", "occurred_at", "instance", "correlation_id", "trace_id", "principal", "auth_type",
                "client_address", "user_agent", "method", "path", "command", "vps_id", "request_params",
                "idempotency_key", "operation_id", "outcome", "http_status", "problem_type", "hostinger_status",
                "hostinger_correlation_id", "hostinger_action_id", "duration_ms"]


def test_every_command_request_leaves_exactly_one_final_audit_row(stack, people):
    alice, victor = people["alice"], people["victor"]
    requests = [
        (alice, "POST", "/v1/vps/1002/start", new_key(), None, "accepted"),
        (victor, "POST", "/v1/vps/1001/start", new_key(), None, "denied"),
        (victor, "POST", "/v1/vps/1002/start", new_key(), None, "not_found"),
        (alice, "POST", "/v1/vps/1003/start", None, None, "invalid"),
        (alice, "POST", "/v1/vps/1003/start", new_key(), {"unexpected": 1}, "invalid"),
        (alice, "POST", "/v1/vps/1003/start?validate_only=true", None, None, "validated"),
    ]
    for client, method, path, key, body, expected in requests:
        correlation = f"audit-{uuid.uuid4().hex[:12]}"
        status, _, _ = client.json(method, path, key=key, body=body, headers={"X-Request-ID": correlation})
        rows = final_audit_rows(stack, correlation)
        assert rows == [f"{expected}|{status}"], (path, expected, rows)
    # Answers decided in the database (replay, reused key, busy VPS) get exactly one row too.
    key = new_key()
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 3000})
    first = alice.json("POST", "/v1/vps/1001/restart", key=key)
    assert first[0] == 202
    for method, path, body, expected, status in (
        ("POST", "/v1/vps/1001/restart", None, "replayed", 202),
        ("POST", "/v1/vps/1001/stop", None, "conflict", 422),
    ):
        correlation = f"audit-{uuid.uuid4().hex[:12]}"
        assert alice.json(method, path, key=key, body=body, headers={"X-Request-ID": correlation})[0] == status
        rows = sql(stack, f"SELECT outcome, http_status, duration_ms > 0 FROM audit_events WHERE correlation_id = '{correlation}' AND kind = 'final'")
        assert rows.splitlines() == [f"{expected}|{status}|t"], rows
    correlation = f"audit-{uuid.uuid4().hex[:12]}"
    assert alice.json("POST", "/v1/vps/1001/stop", key=new_key(), headers={"X-Request-ID": correlation})[0] == 409
    rows = sql(stack, f"SELECT outcome, http_status, problem_type FROM audit_events WHERE correlation_id = '{correlation}' AND kind = 'final'")
    assert rows.splitlines() == ["busy|409|urn:vpsgate:problem:vps-busy"], rows
    row = sql(stack, "SELECT row_to_json(a) FROM audit_events a WHERE kind = 'final' AND outcome = 'accepted' ORDER BY id DESC LIMIT 1")
    record = json.loads(row)
    for field in AUDIT_FIELDS:
        assert field in record, field
    assert record["principal"] == "alice" and record["auth_type"] == "token"
    assert record["hostinger_status"] == 200 and record["hostinger_action_id"] is not None
    assert record["client_address"] == "127.0.0.1" and record["instance"].startswith("vpsgate-")


def test_the_application_role_cannot_change_the_audit_trail(stack, people):
    for statement in ("UPDATE audit_events SET outcome = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"):
        result = psql(stack, stack.postgres.url, statement)
        assert result.returncode != 0, statement
    # Not even the owner can, through the trigger.
    with pytest.raises(subprocess.CalledProcessError):
        sql(stack, "DELETE FROM audit_events WHERE id = (SELECT min(id) FROM audit_events)")


# MARK: - Reads

def test_operations_are_listed_for_what_the_caller_may_see(stack, people):
    alice, victor = people["alice"], people["victor"]
    alice.json("POST", "/v1/vps/1002/restart", key=new_key())
    status, _, page = alice.json("GET", "/v1/operations?limit=5")
    assert status == 200 and 1 <= len(page["data"]) <= 5
    status, _, page = victor.json("GET", "/v1/operations")
    assert status == 200 and all(op["vps_id"] == 1001 for op in page["data"])
    status, _, page = alice.json("GET", "/v1/operations?vps=1002&limit=200")
    assert all(op["vps_id"] == 1002 for op in page["data"])
    status, _, problem = alice.json("GET", "/v1/operations?state=bogus")
    assert status == 422
    some_1002 = page["data"][0]["id"]
    assert victor.json("GET", f"/v1/operations/{some_1002}")[0] == 404


def test_vps_actions_come_from_hostinger(stack, people):
    alice = people["alice"]
    alice.json("POST", "/v1/vps/1003/restart", key=new_key())
    status, _, actions = alice.json("GET", "/v1/vps/1003/actions")
    assert status == 200 and actions["data"][0]["name"] == "ct_restart"


def test_admin_changes_are_audited(stack, people):
    before = int(sql(stack, "SELECT count(*) FROM audit_events WHERE kind = 'admin'"))
    stack.grant("audrey", "1003", "viewer")
    token = stack.create_token("audrey", expires="1h")
    stack.admin("grant", "revoke", "--principal", "audrey", "--vps", "1003", "--role", "viewer")
    rows = sql(stack, "SELECT command, request_params::text FROM audit_events WHERE kind = 'admin' ORDER BY id").splitlines()
    assert len(rows) == before + 3
    assert [r.split("|")[0] for r in rows[-3:]] == ["admin.grant.add", "admin.token.create", "admin.grant.revoke"]
    assert token not in "\n".join(rows)
    assert token not in sql(stack, "SELECT string_agg(token_hash || hint, ' ') FROM api_tokens")
    bad = stack.admin("grant", "add", "--principal", "audrey", "--vps", "1003", "--role", "emperor", check=False)
    assert bad.returncode != 0 and "unknown role emperor" in bad.stderr
    bad = stack.admin("grant", "add", "--principal", "audrey", "--vps", "-4", "--role", "viewer", check=False)
    assert bad.returncode != 0


def test_an_open_breaker_fails_fast_with_503_and_keeps_no_key(stack, people):
    """Runs last in this file: it trips both instances' breakers (5 failures, 10 s cool-down,
    long enough that neither half-opens while the test looks).
    Every Hostinger call fails, the reconcilers' reads included (a success would close it)."""
    alice = people["alice"]
    stack.sim("POST", "/__sim/faults", {"path": ".", "status": 503, "times": -1})
    # Until both instances answer 503 in a row (round robin: one each). An instance's
    # reconciler may have tripped its breaker before any request reached it.
    statuses = []
    for _ in range(12):
        status, _, _ = alice.json("POST", "/v1/vps/1003/start", key=new_key())
        statuses.append(status)
        if statuses[-2:] == [503, 503]:
            break
    assert statuses[-2:] == [503, 503] and set(statuses) <= {502, 503}, statuses
    # Commands and reads have breakers of their own: the reconcilers' reads may still be
    # tripping theirs, so only mutations are counted.
    sent = len(sim_requests(stack, "POST"))
    keys = []
    for _ in range(2):  # one on each instance (round robin): both breakers are open
        keys.append(new_key())
        status, headers, problem = alice.json("POST", "/v1/vps/1003/start", key=keys[-1])
        assert status == 503 and problem["type"].endswith("#unavailable") and int(headers["Retry-After"]) >= 1
    assert len(sim_requests(stack, "POST")) == sent, "no connection while the breaker is open"
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key IN ('{keys[0]}', '{keys[1]}')") == "0"
    stack.sim("DELETE", "/__sim/faults")
    time.sleep(10.2)
    status, _, _ = alice.json("POST", "/v1/vps/1003/start", key=keys[0])
    assert status == 202
