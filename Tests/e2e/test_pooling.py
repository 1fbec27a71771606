"""vpsgate through PgBouncer in transaction pool mode (VPSGATE_DATABASE_POOL_MODE=transaction):
a representative subset of the command, approval and push checks, on four instances of 64
workers each (256 client connections) sharing a pool of 40 server connections, the sizing
docs/failover.md describes, so that consecutive statements of one worker land on different
server sessions. LISTEN, migrations and the admin CLI go direct.

Before the pool mode existed, every connection through PgBouncer failed (the `options`
startup parameter is refused) and, past that, named prepared statements made on one server
session were missing or duplicated on the next."""

import json
import threading
import time

import pytest

from vpsgate_e2e import Client, final_audit_rows, new_key, sim_requests, sql, wait_operation_row

FIRST_VPS = 3301
POOL_SIZE = 40


@pytest.fixture(scope="module")
def stack(stack_factory):
    stack = stack_factory("pooling", start=False, pgbouncer=True, destroy_approvals=1, instances=4, workers=64)
    stack.pgbouncer.pool_size = POOL_SIZE
    stack.start()
    for vps in range(FIRST_VPS, FIRST_VPS + 10):
        stack.sim("POST", "/__sim/vms", {"id": vps})
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    return stack


@pytest.fixture(scope="module")
def people(stack):
    stack.grant("ana", "*", "admin")
    stack.grant("ben", "*", "approver")
    return {name: Client(stack, stack.create_token(name)) for name in ("ana", "ben")}


def test_the_instances_reach_postgresql_through_the_pooler_and_listen_direct(stack, people):
    env = stack.instance_env(1)
    assert env["VPSGATE_DATABASE_URL"] == stack.pgbouncer.url
    assert env["VPSGATE_DATABASE_POOL_MODE"] == "transaction"
    assert env["VPSGATE_LISTEN_DATABASE_URL"] == stack.postgres.url
    status, _, ready = stack.get("/readyz")
    assert status == 200, ready
    # The pooler saw the workers log in; PostgreSQL sees at most the pool's server
    # connections from it, and one direct listener per instance.
    assert "login attempt: db=vpsgate user=vpsgate_app" in (stack.pgbouncer.directory / "pgbouncer.log").read_text()
    listeners = stack.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'")
    assert int(listeners) == stack.instance_count


def test_concurrent_commands_through_the_pool_are_sent_once_with_one_final_audit_row_each(stack, people):
    token = people["ana"].token
    vps_list = list(range(FIRST_VPS, FIRST_VPS + 6))
    results = []
    lock = threading.Lock()

    def send(vps, copy):
        # Three identical requests per VPS (one key), on six VPS at once: 18 requests over
        # 256 workers and 40 server sessions.
        correlation = f"pool-{vps}-{copy}-{new_key()[:8]}"
        outcome = Client(stack, token).json("POST", f"/v1/vps/{vps}/restart", {}, key=keys[vps],
                                            headers={"X-Request-ID": correlation})
        with lock:
            results.append((vps, correlation, outcome))

    keys = {vps: new_key() for vps in vps_list}
    threads = [threading.Thread(target=send, args=(vps, copy)) for vps in vps_list for copy in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 18
    statuses = [outcome[0] for _, _, outcome in results]
    assert set(statuses) <= {202, 409}, [outcome for _, _, outcome in results if outcome[0] not in (202, 409)][:2]
    operations = {}
    for vps, correlation, (status, _, body) in results:
        if status == 202:
            operations.setdefault(vps, set()).add(body["id"])
        assert len(final_audit_rows(stack, correlation)) == 1, correlation
    assert sorted(operations) == vps_list and all(len(ids) == 1 for ids in operations.values())
    for vps, (operation_id,) in operations.items():
        assert wait_operation_row(stack, operation_id)["state"] == "succeeded"
        assert len(sim_requests(stack, "POST", f"/{vps}/restart")) == 1
    # The audit rows name the instance: application_name reaches the server session the
    # pooler lends, transaction by transaction.
    instances = sql(stack, "SELECT DISTINCT instance FROM audit_events WHERE kind = 'final' AND outcome = 'accepted'")
    assert set(instances.splitlines()) <= {f"vpsgate-{i}" for i in range(1, 5)} and instances
    # However many workers, PostgreSQL serves the pool's sessions and the direct listeners.
    sessions = stack.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'vpsgate_app' "
                                   "AND backend_type = 'client backend' AND query NOT ILIKE 'LISTEN%'")
    assert 0 < int(sessions) <= POOL_SIZE, sessions
    # One instance holds the metrics lease through the pool (a row, not a session lock),
    # and the operation counts it exports are the table's.
    from fastcgi_client import fastcgi_get
    held, operations = [], 0.0
    for index in range(1, stack.instance_count + 1):
        status, body = fastcgi_get(stack.socket_path(index), "/metrics")
        assert status == 200
        lines = body.decode().splitlines()
        held += [line for line in lines if line == "vpsgate_metrics_lease_held 1"]
        operations += sum(float(line.split()[-1]) for line in lines if line.startswith("vpsgate_operations{"))
    assert len(held) == 1
    assert operations == int(sql(stack, "SELECT count(*) FROM operations"))


def test_an_approval_through_the_pool_dispatches_once(stack, people):
    vps = FIRST_VPS + 7
    status, headers, operation = people["ana"].json(
        "POST", f"/v1/vps/{vps}/recreate", body={"template_id": 1130, "password": "Matrix7Password-Ok", "confirm": vps},
        key=new_key())
    assert status == 202 and operation["state"] == "awaiting_approval", operation
    status, _, approved = people["ben"].json("POST", f"{headers['Location']}/approve")
    assert status == 200, approved
    assert wait_operation_row(stack, operation["id"])["state"] == "succeeded"
    assert len(sim_requests(stack, "POST", f"/{vps}/recreate")) == 1


def test_a_waiting_read_and_the_feed_are_woken_by_the_direct_listener(stack, people):
    ana = people["ana"]
    status, _, page = ana.json("GET", "/v1/events?limit=500")
    assert status == 200
    cursor = page["next"]
    vps = FIRST_VPS + 8
    status, _, operation = ana.json("POST", f"/v1/vps/{vps}/restart", {}, key=new_key())
    assert status == 202, operation
    status, _, waited = ana.json("GET", f"/v1/operations/{operation['id']}?wait=20")
    answered = time.time()
    assert status == 200 and waited["state"] == "succeeded", waited
    completed = json.loads(sql(stack, f"SELECT to_json(extract(epoch FROM completed_at)) FROM operations WHERE id = '{operation['id']}'"))
    # Woken by NOTIFY, not by the 20 s deadline (a poll would answer within the wait's bound only).
    assert answered - float(completed) < 1.0
    status, _, page = ana.json("GET", f"/v1/events?after={cursor}&limit=500" if cursor else "/v1/events?limit=500")
    assert status == 200
    states = [e["data"]["operation"]["state"] for e in page["data"] if e["operation_id"] == operation["id"]]
    assert states[0] == "accepted" and states[-1] == "succeeded", states
