"""Audit for SQL users: the documented views and their indexes, the auditor role, the seal
chain and `vpsgate audit verify`, and idempotency-key retention."""

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from vpsgate_e2e import Client, as_superuser, fresh_database, psql, sql


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory("audit", extra_env={"VPSGATE_SEAL_INTERVAL_MS": "300", "VPSGATE_SEAL_HORIZON_MS": "1000",
                                             "VPSGATE_IDEMPOTENCY_TTL": "3s"})


@pytest.fixture(scope="module")
def story(stack):
    """A small history: accepted, denied, not found, invalid, destructive, failed, admin changes."""
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 100})
    stack.grant("amy", "*", "admin")
    stack.grant("vic", "1001", "viewer")
    amy, vic = Client(stack, stack.create_token("amy")), Client(stack, stack.create_token("vic"))
    ids = {}
    ids["accepted"] = amy.json("POST", "/v1/vps/1002/start", key=str(uuid.uuid4()), headers={"X-Request-ID": "story-accepted"})[2]["id"]
    vic.json("POST", "/v1/vps/1001/stop", key=str(uuid.uuid4()), headers={"X-Request-ID": "story-denied"})
    vic.json("POST", "/v1/vps/1003/stop", key=str(uuid.uuid4()), headers={"X-Request-ID": "story-not-found"})
    vic.json("PUT", "/v1/vps/1001/hostname", body={"hostname": "bad name"}, key=str(uuid.uuid4()), headers={"X-Request-ID": "story-invalid"})
    ids["destructive"] = amy.json("POST", "/v1/vps/1003/recreate", body={"template_id": 1130, "password": "Secret7Canary-Zz", "confirm": 1003},
                                  key=str(uuid.uuid4()), headers={"X-Request-ID": "story-recreate"})[2]["id"]
    stack.sim("POST", "/__sim/faults", {"path": "/1001/restart$", "action_error": True})
    ids["failed"] = amy.json("POST", "/v1/vps/1001/restart", key=str(uuid.uuid4()), headers={"X-Request-ID": "story-failed"})[2]["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sql(stack, "SELECT count(*) FROM operations_open") != "0":
        time.sleep(0.2)
    return {"amy": amy, "vic": vic, "ids": ids}


def q(stack, query):
    return [line.split("|") for line in sql(stack, query).splitlines()]


def test_every_mutation_on_a_vps_in_a_time_range(stack, story):
    rows = q(stack, """SELECT principal, command, outcome, operation_state FROM audit_mutations
                       WHERE vps_id = 1002 AND occurred_at > now() - interval '1 hour' ORDER BY occurred_at""")
    assert ["amy", "vps.start", "accepted", "succeeded"] in rows


def test_denied_or_invalid_attempts_by_a_principal(stack, story):
    rows = q(stack, "SELECT correlation_id, outcome, http_status FROM audit_denials WHERE principal = 'vic' ORDER BY occurred_at")
    assert rows == [["story-denied", "denied", "403"], ["story-not-found", "not_found", "404"], ["story-invalid", "invalid", "422"]]


def test_destructive_commands_in_the_last_30_days(stack, story):
    rows = q(stack, "SELECT principal, command, vps_id, request_params->>'password' FROM audit_destructive WHERE occurred_at > now() - interval '30 days'")
    assert rows == [["amy", "vps.recreate", "1003", "[REDACTED]"]]


def test_failure_rate_and_p95_per_command_per_day(stack, story):
    rows = {r[0]: r for r in q(stack, "SELECT command, operations, failed, failure_rate, p95_seconds FROM command_daily_stats WHERE day = date_trunc('day', now())")}
    assert rows["vps.restart"][1:4] == ["1", "1", "1.0000"]
    assert rows["vps.start"][1:4] == ["1", "0", "0.0000"]
    assert float(rows["vps.start"][4]) > 0


def test_operations_still_not_terminal(stack, story):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 60000})
    status, _, operation = story["amy"].json("POST", "/v1/vps/1004/restart", key=str(uuid.uuid4()))
    assert status == 202
    rows = q(stack, "SELECT id, state, stale FROM operations_open ORDER BY created_at")
    assert [operation["id"], "running", "f"] in rows
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 100})


def test_the_full_story_of_one_correlation_id(stack, story):
    rows = q(stack, "SELECT kind, outcome, hostinger_status FROM audit_story WHERE correlation_id = 'story-failed' ORDER BY occurred_at, id")
    assert rows == [["received", "received", ""], ["final", "accepted", "200"], ["reconciler", "failed", ""]] or \
           rows == [["received", "received", ""], ["final", "accepted", "200"], ["completion", "failed", ""]]


def test_admin_changes_to_grants_and_tokens(stack, story):
    rows = q(stack, "SELECT change, details->>'principal' FROM audit_admin_changes ORDER BY occurred_at")
    assert ["admin.grant.add", "vic"] in rows and ["admin.token.create", "amy"] in rows


def test_the_auditor_reads_the_views_and_nothing_else(stack, story):
    admin = stack.postgres.admin_url.rsplit("/", 1)[0] + "/vpsgate"

    def as_auditor(statement):
        return psql(stack, admin, "SET ROLE vpsgate_auditor", statement)

    for view in ("audit_mutations", "audit_denials", "audit_destructive", "command_daily_stats", "operations_open",
                 "audit_story", "audit_admin_changes", "audit_drift", "operations_on_resources"):
        assert as_auditor(f"SELECT count(*) FROM {view}").returncode == 0, view
    for statement in ("SELECT * FROM api_tokens", "SELECT * FROM audit_events", "SELECT * FROM idempotency_keys",
                      "INSERT INTO principals (name) VALUES ('mallory')", "UPDATE grants SET role = 'admin'",
                      "DELETE FROM audit_events"):
        result = as_auditor(statement)
        assert result.returncode != 0 and "permission denied" in result.stderr, statement
    everything = as_auditor("SELECT string_agg(t::text, ' ') FROM audit_mutations t").stdout
    assert "Secret7Canary-Zz" not in everything and "[REDACTED]" in everything
    assert sql(stack, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'vpsgate_auditor'") == "f"


def test_the_documented_queries_use_indexes_on_a_large_table(stack, story):
    owner = fresh_database(stack, migrate=True)

    def as_owner(statement):
        return psql(stack, owner, statement, check=True).stdout

    as_owner("""INSERT INTO audit_events (kind, instance, principal, command, vps_id, outcome, occurred_at)
            SELECT CASE WHEN g % 3 = 0 THEN 'received' ELSE 'final' END, 'gen', 'user' || (g % 500), 'vps.start', 1000 + g % 2000,
                   CASE WHEN g % 7 = 0 THEN 'denied' ELSE 'accepted' END, now() - (g || ' seconds')::interval
            FROM generate_series(1, 100000) AS g""")
    as_owner("ANALYZE audit_events")
    per_vps = as_owner("EXPLAIN SELECT * FROM audit_mutations WHERE vps_id = 1234 AND occurred_at > now() - interval '1 day'")
    per_principal = as_owner("EXPLAIN SELECT * FROM audit_denials WHERE principal = 'user42' AND occurred_at > now() - interval '1 day'")
    assert "audit_events_vps_time" in per_vps, per_vps
    assert "audit_events_principal_time" in per_principal, per_principal
    # Every index on the table earns its upkeep on each audit row: one of the documented
    # queries (docs/audit.md), the timeline of an operation or the sealer's uses it.
    plans = [per_vps, per_principal] + [as_owner("EXPLAIN " + query) for query in (
        "SELECT * FROM audit_destructive WHERE occurred_at > now() - interval '30 days'",
        "SELECT * FROM audit_story WHERE correlation_id = 'c42' ORDER BY occurred_at, id",
        "SELECT * FROM audit_events WHERE operation_id = '00000000-0000-0000-0000-000000000042' ORDER BY id",
        "SELECT id FROM audit_events WHERE id > 99000 ORDER BY id LIMIT 500",
    )]
    indexes = set(as_owner("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_events'").split())
    # event_id's unique constraint is a guarantee (one id per row, what exports deduplicate by).
    unused = {name for name in indexes - {"audit_events_event_id_key"} if not any(name in plan for plan in plans)}
    assert unused == set(), unused


def audit_cli(stack, url, *args):
    env = dict(stack.instance_env(0, database_url=url))
    return subprocess.run([str(stack.binary), "audit", *args], env=env, capture_output=True, text=True)


def test_the_chain_holds_on_the_live_database(stack, story):
    deadline = time.monotonic() + 20
    result = None
    while time.monotonic() < deadline:
        result = audit_cli(stack, stack.postgres.owner_url, "verify")
        if result.returncode == 0 and "rows not sealed yet: 0" in result.stdout:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chain intact" in result.stdout
    assert int(result.stdout.split("sealed rows: ")[1].split()[0]) >= 10


def superuser(stack, url, *statements):
    return psql(stack, as_superuser(url), *statements, check=True).stdout


@pytest.mark.parametrize("tamper,expected", [
    ("UPDATE audit_events SET outcome = 'denied' WHERE id = (SELECT min(id) + 2 FROM audit_events)", "does not match its seal"),
    ("DELETE FROM audit_events WHERE id = (SELECT min(id) + 3 FROM audit_events)", "was deleted"),
    ("INSERT INTO audit_events (id, kind, instance, outcome) OVERRIDING SYSTEM VALUE VALUES (0, 'final', 'forged', 'accepted')", "was inserted"),
])
def test_verify_names_the_row_a_superuser_tampered_with(stack, tamper, expected):
    url = fresh_database(stack, migrate=True)
    # Migrations that change role_permissions leave their own admin rows (the trigger records
    # every change of what a role may do): they are sealed with the 8 rows made here.
    migrated = int(superuser(stack, url, "SELECT count(*) FROM audit_events"))
    superuser(stack, url, """INSERT INTO audit_events (kind, instance, principal, command, vps_id, outcome)
                             SELECT 'final', 'test', 'p' || g, 'vps.stop', 1001, 'accepted' FROM generate_series(1, 8) g""")
    assert f"sealed {migrated + 8} rows" in audit_cli(stack, url, "seal", "--horizon", "0").stdout
    clean = audit_cli(stack, url, "verify")
    assert clean.returncode == 0 and f"sealed rows: {migrated + 8}" in clean.stdout
    first = int(superuser(stack, url, "SELECT min(id) FROM audit_events"))
    superuser(stack, url, "ALTER TABLE audit_events DISABLE TRIGGER USER", tamper, "ALTER TABLE audit_events ENABLE TRIGGER USER")
    result = audit_cli(stack, url, "verify")
    assert result.returncode == 1
    assert expected in result.stdout
    row = {"does not match its seal": first + 2, "was deleted": first + 3, "was inserted": 0}[expected]
    assert f"audit row {row} " in result.stdout


def test_expired_idempotency_keys_are_purged_and_the_key_starts_afresh(stack, story):
    amy = story["amy"]
    key = str(uuid.uuid4())
    status, _, first = amy.json("POST", "/v1/vps/1002/stop", key=key)
    assert status == 202
    status, headers, _ = amy.json("POST", "/v1/vps/1002/stop", key=key)
    assert headers.get("Idempotent-Replayed") == "true"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") != "0":
        time.sleep(0.3)
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "0"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, headers, second = amy.json("POST", "/v1/vps/1002/stop", key=key)
        if status != 409:
            break
        time.sleep(0.3)  # the first stop may still hold the VPS
    assert status == 202 and "Idempotent-Replayed" not in headers
    assert second["id"] != first["id"]


# MARK: - Observability

def scrape(stack):
    """Sums /metrics over both instances (each counts its own), read straight from their sockets."""
    from prometheus_client.parser import text_string_to_metric_families
    from fastcgi_client import fastcgi_get
    totals = {}
    for index in (1, 2):
        status, body = fastcgi_get(stack.socket_path(index), "/metrics")
        assert status == 200
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                totals[key] = totals.get(key, 0) + sample.value
    return totals


def value(totals, name, **labels):
    return sum(v for (n, l), v in totals.items() if n == name and all(dict(l).get(k) == w for k, w in labels.items()))


def test_metrics_parse_and_move(stack, story):
    amy = story["amy"]
    before = scrape(stack)
    status, _, operation = amy.json("POST", "/v1/vps/1001/start", key=(key := str(uuid.uuid4())))
    assert status == 202
    amy.json("POST", "/v1/vps/1001/start", key=key)  # a replay
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 5000})
    amy.json("POST", "/v1/vps/1003/stop", key=str(uuid.uuid4()))
    busy = amy.json("POST", "/v1/vps/1003/start", key=str(uuid.uuid4()))
    assert busy[0] == 409
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 100})
    after = scrape(stack)
    delta = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)
    assert delta("vpsgate_requests_total", route="vps.start", status="202") == 2
    assert delta("vpsgate_command_outcomes_total", command="vps.start", outcome="replayed") == 1
    assert delta("vpsgate_idempotent_replays_total") == 1
    assert delta("vpsgate_busy_rejections_total") == 1
    assert delta("vpsgate_hostinger_calls_total", operation="start", result="200") >= 1
    assert delta("vpsgate_request_duration_seconds_count", route="vps.start") == 3  # the busy one too
    assert delta("vpsgate_database_duration_seconds_count", statement="begin_command") >= 3
    assert value(after, "vpsgate_operations", state="running") >= 1
    assert value(after, "vpsgate_hostinger_breaker_open") == 0
    assert value(after, "vpsgate_database_up") == 2
    assert ("vpsgate_audit_rows_unsealed", ()) in after
    assert ("vpsgate_reconciler_oldest_open_operation_seconds", ()) in after


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def shipped_queries() -> str:
    """Every PromQL expression the deployment ships: the alert rules and the dashboard."""
    dashboard = json.loads((DEPLOY / "grafana/vpsgate-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return (DEPLOY / "prometheus/vpsgate-alerts.yml").read_text() + "\n".join(exprs)


def test_shipped_alert_rules_are_valid_and_fire_as_their_unit_tests_say():
    rules = DEPLOY / "prometheus"
    checked = subprocess.run(["promtool", "check", "rules", "vpsgate-alerts.yml"], cwd=rules, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", "vpsgate-alerts.test.yml"], cwd=rules, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_metrics_pass_promtool_and_every_shipped_query_names_a_metric_vpsgate_exports(stack, story):
    from fastcgi_client import fastcgi_get
    exported = set()
    # Both instances: the database-wide gauges come from the metrics lease's holder alone.
    for index in (1, 2):
        status, body = fastcgi_get(stack.socket_path(index), "/metrics")
        assert status == 200
        checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
        assert checked.returncode == 0 and not checked.stdout and not checked.stderr, checked.stdout + checked.stderr
        exported |= set(re.findall(r"^# TYPE (vpsgate_[a-z0-9_]+) ", body.decode(), re.MULTILINE))
    named = {re.sub(r"_(bucket|sum|count)$", "", name) for name in re.findall(r"\bvpsgate_[a-z0-9_]+", shipped_queries())}
    assert named and named <= exported, sorted(named - exported)


def test_logs_are_json_lines_with_correlation_ids_and_no_secrets(stack, story):
    canary = "Canary7Log" + uuid.uuid4().hex[:8]
    deadline = time.monotonic() + 15
    while True:  # VPS 1001 may still be busy with an earlier test's operation
        correlation = f"log-{uuid.uuid4().hex[:10]}"
        status, _, _ = story["amy"].json("PUT", "/v1/vps/1001/root-password", body={"password": canary}, key=str(uuid.uuid4()),
                                         headers={"X-Request-ID": correlation})
        if status != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status == 202
    time.sleep(0.5)
    mine = []
    for index in (1, 2):
        for line in stack.log_path(f"vpsgate-{index}").read_text().splitlines():
            record = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "message"} <= set(record)
            assert canary not in line
            if correlation in line:
                mine.append(record)
    assert mine, "the command's log lines carry its correlation id"
    assert all(r["correlation_id"] == correlation for r in mine)
    command = [r for r in mine if r["message"] == "command"]
    assert len(command) == 1
    assert {"instance", "principal", "command", "vps_id", "operation_id", "duration_ms"} <= set(command[0])
    assert command[0]["command"] == "vps.root_password.set" and command[0]["principal"] == "amy"
    assert any(r["message"] == "hostinger attempt" for r in mine)


def test_log_lines_carry_the_callers_trace_id_with_no_traces_exported(stack, story):
    """Traces are off on this stack (no OTEL_EXPORTER_OTLP_ENDPOINT): the trace id is still
    in the request's log lines, so that logs join the caller's trace, with a span id of vpsgate's
    own (the request's span, or the Hostinger attempt's: never the caller's parent span)."""
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    status, _, _ = story["amy"].json("POST", "/v1/vps/1001/start", key=str(uuid.uuid4()),
                                     headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert status in (202, 409)  # started, or busy with the story's operation: logged either way
    lines = [json.loads(line) for index in (1, 2)
             for line in stack.log_path(f"vpsgate-{index}").read_text().splitlines() if trace_id in line]
    assert any(line["message"] == "command" for line in lines), lines
    assert all(line["trace_id"] == trace_id and re.fullmatch(r"[0-9a-f]{16}", line["span_id"]) and line["span_id"] != parent
               for line in lines), lines
