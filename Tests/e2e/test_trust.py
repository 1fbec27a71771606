"""Holes an outside review found on a running stack, each closed: a dry run that was not one,
a secret in an undeclared field stored for good, a NUL that left a request without its
audit row, a SECURITY DEFINER function any login could call, audit rows that read as the
database's own written by the serving role."""

import json
import uuid

import pytest

from vpsgate_e2e import admin_client, as_superuser, final_audit_rows, psql, sim_requests, sql

pytestmark = pytest.mark.usefixtures("no_open_operations")

SECRET = "Undeclared7Secret-Canary"


@pytest.fixture(scope="module")
def alice(stack):
    return admin_client(stack, "trusty")


def send(client, method, path, body=None, raw_body=None, key=True):
    correlation = f"trust-{uuid.uuid4().hex[:12]}"
    status, headers, raw = client.request(method, path, body=body, raw_body=raw_body, key=str(uuid.uuid4()) if key else None,
                                          headers={"X-Request-ID": correlation})
    return status, raw, correlation


@pytest.mark.parametrize("query", ["validate_only=1", "validate_only=yes", "validate_only", "validate_only=TRUE",
                                   "validate_only=false&validate_only=true", "validate_only=true&validate_only=true",
                                   "dry_run=true", "validate_only=true&x=1"])
def test_a_dry_run_in_any_other_spelling_is_refused_and_nothing_is_sent(stack, alice, query):
    status, raw, correlation = send(alice, "POST", f"/v1/vps/1001/stop?{query}")
    assert status == 400, raw
    assert json.loads(raw)["type"].endswith("#malformed-request")
    assert final_audit_rows(stack, correlation) == ["invalid|400"]
    assert sim_requests(stack, "POST") == []
    assert sql(stack, f"SELECT count(*) FROM operations WHERE correlation_id = '{correlation}'") == "0"


def test_validate_only_false_runs_the_command(stack, alice):
    status, raw, correlation = send(alice, "POST", "/v1/vps/1002/start?validate_only=false")
    assert status == 202, raw
    assert final_audit_rows(stack, correlation) == ["accepted|202"]
    assert len(sim_requests(stack, "POST", "/1002/start")) == 1


@pytest.mark.parametrize("body", [
    {"password": "Str0ngEnough-Pass", "new_password": SECRET},
    {"password": SECRET + "x", "passwd": SECRET},
    {"nested": {"password": SECRET}},
    [SECRET],
])
def test_the_value_of_an_undeclared_field_is_stored_nowhere(stack, alice, body):
    status, raw, correlation = send(alice, "PUT", "/v1/vps/1002/root-password", body=body)
    assert status in (400, 422), raw
    assert SECRET.encode() not in raw
    assert len(final_audit_rows(stack, correlation)) == 1
    everything = sql(stack, "SELECT coalesce(string_agg(t::text, ' '), '') FROM (SELECT * FROM audit_events) t") \
        + sql(stack, "SELECT coalesce(string_agg(t::text, ' '), '') FROM (SELECT * FROM idempotency_keys) t") \
        + sql(stack, "SELECT coalesce(string_agg(t::text, ' '), '') FROM (SELECT * FROM operations) t")
    assert SECRET not in everything
    logs = "".join(stack.log_path(f"vpsgate-{i}").read_text() for i in (1, 2))
    assert SECRET not in logs
    assert sim_requests(stack) == []


@pytest.mark.parametrize("raw_body", [
    b'{"hostname": "web\\u0000.example.com"}',
    b'{"hostname\\u0000": "web.example.com"}',
    b'{"hostname": "web.example.com", "x\\u0000": "\\u0000"}',
])
def test_a_nul_anywhere_in_the_body_still_leaves_exactly_one_final_audit_row(stack, alice, raw_body):
    status, raw, correlation = send(alice, "PUT", "/v1/vps/1002/hostname", raw_body=raw_body)
    assert status in (400, 422), raw
    assert final_audit_rows(stack, correlation) == [f"invalid|{status}"]
    assert sim_requests(stack) == []


# MARK: - One final audit row for requests that end before the pipeline


def test_a_body_over_the_limit_on_a_command_path_leaves_one_final_row_and_nothing_of_the_body(stack, alice):
    body = json.dumps({"hostname": "web.example.com", "padding": SECRET * 4000}).encode()
    status, raw, correlation = send(alice, "PUT", "/v1/vps/1002/hostname", raw_body=body)
    assert status == 413, raw
    assert final_audit_rows(stack, correlation) == ["invalid|413"]
    assert sql(stack, f"SELECT count(*) FROM audit_events WHERE correlation_id = '{correlation}' "
                      "AND request_params IS NOT NULL") == "0"
    assert sim_requests(stack) == []


@pytest.mark.parametrize("remote_user", [None, ""])
def test_a_command_without_a_principal_is_401_with_one_final_row(stack, remote_user):
    from fastcgi_client import fastcgi_request

    correlation = f"trust-{uuid.uuid4().hex[:12]}"
    params = {"REQUEST_ID": correlation, "HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4()), "REMOTE_ADDR": "127.0.0.1"}
    if remote_user is not None:
        params["REMOTE_USER"] = remote_user
    status, _ = fastcgi_request(stack.socket_path(1), "POST", "/v1/vps/1001/stop", params)
    assert status == 401
    assert final_audit_rows(stack, correlation) == ["denied|401"]
    assert sim_requests(stack) == []


# MARK: - Reads and throttling cannot trip the commands' breaker


def test_failing_reads_in_a_loop_do_not_open_the_breaker_for_commands(stack, alice):
    stack.sim("POST", "/__sim/faults", {"method": "GET", "path": "/virtual-machines$", "status": 503, "times": -1})
    try:
        statuses = [alice.request("GET", "/v1/vps")[0] for _ in range(16)]
        assert set(statuses) <= {502, 503} and 503 in statuses, statuses  # the reads' breaker opened
        status, _, raw = alice.request("POST", "/v1/vps/1002/start", key=str(uuid.uuid4()))
        assert status == 202, raw
    finally:
        stack.sim("DELETE", "/__sim/faults")


def test_hostinger_throttling_is_not_a_breaker_failure(stack, alice):
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1001/start$", "status": 429, "times": -1})
    try:
        for _ in range(8):  # 24 throttled attempts over both instances
            status, _, raw = alice.request("POST", "/v1/vps/1001/start", key=str(uuid.uuid4()))
            assert status in (502, 503), raw
        status, _, raw = alice.request("POST", "/v1/vps/1002/start", key=str(uuid.uuid4()))
        assert status == 202, raw
    finally:
        stack.sim("DELETE", "/__sim/faults")


# MARK: - SECURITY DEFINER functions: who may call them, where they look

# Every SECURITY DEFINER function in the database, and who besides its owner may execute it.
# Such a function runs as the schema owner: a new one, or a new grantee of one, fails this
# test until it is declared here. Trigger functions need no grantee (a trigger fires
# whatever the privileges of the role whose change fires it).
DEFINERS = {
    "approval_event()": set(),
    "audit_admin_change()": set(),
    "audit_seals_stay_keyed()": set(),
    "batch_event()": set(),
    "operation_event()": set(),
    # Appends the per-state counts the metrics lease holder folds (operation_state_counts).
    "operation_state_change()": set(),
    "redeliver_webhooks(bigint,bigint)": {"vpsgate_admin"},
    "vpsgate_emit(text,text,bigint,bigint,uuid,jsonb,boolean)": set(),
}


def definers(stack):
    """{signature: (grantees of EXECUTE but the owner, search_path)} from the catalog. A NULL
    proacl is the default, under which PUBLIC may execute (acldefault spells it out)."""
    rows = sql(stack, """
        SELECT p.oid::regprocedure::text,
               coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, ',')
                         FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                         WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner), ''),
               coalesce((SELECT substring(c FROM '^search_path=(.*)$') FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'), '')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        """)
    found = {}
    for line in rows.splitlines():
        signature, grantees, search_path = line.split("|")
        found[signature] = (set(filter(None, grantees.split(","))), search_path)
    return found


def test_every_security_definer_function_is_declared_with_its_grantees_and_searches_pg_temp_last(stack):
    schema = sql(stack, "SELECT relnamespace::regnamespace FROM pg_class WHERE oid = 'audit_events'::regclass")
    declared = {signature: (sorted(grantees), f"{schema}, pg_temp") for signature, grantees in DEFINERS.items()}
    assert {signature: (sorted(grantees), path) for signature, (grantees, path) in definers(stack).items()} == declared


def test_the_serving_role_cannot_write_events_itself(stack):
    """Events are written by the database's triggers only: a row there is a signed webhook
    delivery to every subscriber."""
    result = psql(stack, stack.postgres.url, "SELECT vpsgate_emit('operation.succeeded', 'vps', NULL, 1001, NULL, '{}', true)")
    assert result.returncode != 0 and "permission denied for function vpsgate_emit" in result.stderr, result.stderr


def test_a_temporary_table_does_not_stand_in_for_the_schemas_own_in_a_definer_function(stack):
    """pg_temp is searched last: a session's own `events` table, open to anyone, is not
    where the definer functions write the event of that session's change."""
    operation = str(uuid.uuid4())
    result = psql(stack, stack.postgres.url, "CREATE TEMP TABLE events (LIKE public.events INCLUDING ALL)",
                  "GRANT ALL ON pg_temp.events TO PUBLIC",
                  "INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, completed_at) "
                  f"VALUES ('{operation}', 999002, 'vps.stop', 'failed', 'trusty', 'temp-probe', 'temp-probe', now())",
                  "SELECT count(*) FROM pg_temp.events")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    assert sql(stack, f"SELECT count(*) FROM events WHERE operation_id = '{operation}'") == "1"


# MARK: - Audit rows only the database writes

@pytest.mark.parametrize("statement", [
    "INSERT INTO audit_events (kind, outcome, principal, auth_type, command) "
    "VALUES ('admin', 'applied', 'forger', 'database:vpsgate_admin', 'admin.grant.add')",
    "INSERT INTO audit_events (kind, outcome, principal, auth_type, command) VALUES ('admin', 'applied', 'forger', 'token', 'x')",
    "INSERT INTO audit_events (kind, outcome, principal, auth_type) VALUES ('final', 'accepted', 'forger', 'database:vpsgate')",
    "SELECT audit_request_row('admin', 'applied', NULL, NULL, NULL, 'forger', NULL, 'admin.grant.add', NULL, NULL, NULL, NULL, "
    "'{\"auth_type\": \"database:vpsgate_admin\"}')",
])
def test_no_role_but_the_databases_own_functions_writes_admin_rows(stack, alice, statement):
    for url in (stack.postgres.url, stack.postgres.admin_role_url, as_superuser(stack.postgres.url)):
        result = psql(stack, url, statement)
        assert result.returncode != 0, (url, statement)
        # The admin role may not insert audit rows at all; the others meet the trigger.
        assert "written by the database itself" in result.stderr or (
            url == stack.postgres.admin_role_url and "permission denied" in result.stderr), result.stderr
    assert sql(stack, "SELECT count(*) FROM audit_events WHERE principal = 'forger'") == "0"


def test_a_temporary_pg_class_does_not_make_the_serving_role_the_owner(stack):
    """The trigger asks the catalog who owns audit_events; a session's own pg_class naming
    its role is not the catalog."""
    result = psql(stack, stack.postgres.url, "CREATE TEMP TABLE pg_class (oid oid, relowner oid)",
                  "INSERT INTO pg_temp.pg_class SELECT 'audit_events'::regclass, oid FROM pg_roles WHERE rolname = current_user",
                  "INSERT INTO audit_events (kind, outcome, principal) VALUES ('admin', 'applied', 'forger')")
    assert result.returncode != 0 and "written by the database itself" in result.stderr, result.stderr
    assert sql(stack, "SELECT count(*) FROM audit_events WHERE principal = 'forger'") == "0"


def test_the_databases_own_admin_rows_are_still_written(stack, alice):
    stack.admin("grant", "add", "--principal", "trusty-2", "--vps", "1003", "--role", "viewer", "--actor", "ops:trust-test")
    result = psql(stack, stack.postgres.admin_role_url, "SELECT redeliver_webhooks(NULL, 999999)")
    assert result.returncode == 0 and result.stdout.strip() == "0", result.stderr
    rows = sql(stack, "SELECT command, principal, auth_type FROM audit_events WHERE kind = 'admin' ORDER BY id DESC LIMIT 2")
    assert rows.splitlines() == ["admin.webhook.redeliver|vpsgate_admin|database:vpsgate_admin",
                                 "admin.grant.add|ops:trust-test|database:vpsgate_admin"]
