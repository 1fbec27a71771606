"""Nothing leads to a Hostinger call without the secret key.

The serving role's own database login (what a stolen instance configuration gives),
without the key file, tries every way in: forged requests, forged approvals, state changes,
moved and replayed requests, batch child edits. Dispatch refuses each (cancelled, an audit
row of kind dispatch, a drift row) and the simulator receives nothing. Then the holes a
person could fall through: a revoked requester, an outage, a cancelled batch, an emergency
behind a frozen operation, a decision after the deadline, batch child keys."""

import json
import time
import uuid

import pytest

from vpsgate_e2e import (SHORT_WINDOWS, Client, as_superuser, new_key, operation_row, psql, reset_change_control, sim_requests,
                         sql, wait_operation_row)

FIRST_VPS = 1301


@pytest.fixture(scope="module")
def stack(stack_factory):
    # Sealing is due on every housekeeping pass (the expiry test makes it fail).
    stack = stack_factory("sealed", destroy_approvals=None,
                          extra_env={**SHORT_WINDOWS, "VPSGATE_SEAL_INTERVAL_MS": "100", "VPSGATE_SEAL_HORIZON_MS": "0"})
    for vps in range(FIRST_VPS, FIRST_VPS + 30):
        stack.sim("POST", "/__sim/vms", {"id": vps})
    return stack


@pytest.fixture(scope="module")
def people(stack):
    """rita and ana: admins (rita requests); ben and cleo: approvers."""
    for name, role in (("rita", "admin"), ("ana", "admin"), ("ben", "approver"), ("cleo", "approver")):
        stack.grant(name, "*", role)
    return {name: Client(stack, stack.create_token(name)) for name in ("rita", "ana", "ben", "cleo")}


@pytest.fixture(autouse=True)
def clean(stack):
    """No freeze, the shipped policies, nothing open, an empty simulator log."""
    reset_change_control(stack)
    yield


# MARK: - Helpers

def mutations(stack, suffix=""):
    return [r for r in sim_requests(stack) if r["method"] != "GET" and r["path"].endswith(suffix)]


def as_serving_role(stack, *statements):
    """Statements as vpsgate_app, the serving instances' login, which holds no key."""
    result = psql(stack, stack.postgres.url, *statements)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def recreate(client, vps):
    status, headers, operation = client.json("POST", f"/v1/vps/{vps}/recreate", {"template_id": 1130, "confirm": vps}, key=new_key())
    assert status == 202 and operation["state"] == "awaiting_approval", operation
    return operation


def refused(stack, operation_id, reason, drift=True, timeout=20):
    """The operation ended cancelled with `reason`, with one refusal audit row (and a drift row)."""
    row = wait_operation_row(stack, operation_id, states=("cancelled", "succeeded", "failed"), timeout=timeout)
    assert row["state"] == "cancelled" and row["error"]["reason"] == reason, row
    audited = sql(stack, f"SELECT count(*) FROM audit_events WHERE operation_id = '{operation_id}' AND kind = 'dispatch' "
                         "AND outcome = 'refused'")
    assert audited == "1"
    drifts = sql(stack, f"SELECT count(*) FROM drift_events WHERE operation_id = '{operation_id}' AND kind = 'request_refused'")
    assert drifts == ("1" if drift else "0")
    return row


def insert_approved(stack, vps, command="vps.snapshot.delete", sealed_body="NULL", key_id="NULL"):
    """An approved operation and its kept request, written by the serving role."""
    operation_id = str(uuid.uuid4())
    as_serving_role(
        stack,
        "INSERT INTO operations (id, vps_id, resource_type, command, state, requested_by, correlation_id, idempotency_key, "
        f"approvals_required, approved_at, approval_expires_at) VALUES ('{operation_id}', {vps}, 'vps', '{command}', 'approved', "
        "'rita', 'forged', 'forged-key-0001', 1, now(), now() + interval '1 hour')",
        "INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint) "
        f"VALUES ('{operation_id}', 'delete_snapshot', 'DELETE', '@127.0.0.1:1/api/vps/v1/virtual-machines/{vps}/snapshot', false, "
        f"{sealed_body}, {key_id}, 'x')")
    return operation_id


# MARK: - The serving role, every way in

def test_a_forged_approved_operation_is_refused_and_nothing_is_sent(stack, people):
    unsealed = insert_approved(stack, FIRST_VPS)
    key_id = stack.secret_key_file.read_text().split()[0]
    garbage = "'\\x" + "VGK2".encode().hex() + "00" * 60 + "'::bytea"
    forged = insert_approved(stack, FIRST_VPS + 1, sealed_body=garbage, key_id=f"'{key_id}'")
    refused(stack, unsealed, "unsealed")
    refused(stack, forged, "integrity")
    assert mutations(stack) == []


def test_an_approval_written_into_the_database_counts_for_nothing(stack, people):
    operation = recreate(people["rita"], FIRST_VPS + 2)
    as_serving_role(
        stack,
        f"INSERT INTO approvals (operation_id, principal, decision, fingerprint) VALUES ('{operation['id']}', 'ben', 'approve', 'x')",
        f"UPDATE operations SET state = 'approved', approved_at = now() WHERE id = '{operation['id']}'")
    refused(stack, operation["id"], "integrity")
    # Nor does a genuine approval's row copied to another operation.
    other = recreate(people["rita"], FIRST_VPS + 3)
    donor = recreate(people["rita"], FIRST_VPS + 4)
    sql(stack, "INSERT INTO freeze_windows (vps_id, starts_at, ends_at, reason, created_by) "
               f"VALUES ({FIRST_VPS + 4}, now(), now() + interval '1 hour', 'hold the donor', 'test')")
    assert people["ben"].json("POST", f"/v1/operations/{donor['id']}/approve")[0] == 200
    as_serving_role(
        stack,
        "INSERT INTO approvals (operation_id, principal, decision, fingerprint, mac) SELECT "
        f"'{other['id']}', principal, decision, fingerprint, mac FROM approvals WHERE operation_id = '{donor['id']}'",
        f"UPDATE operations SET state = 'approved', approved_at = now() WHERE id = '{other['id']}'")
    refused(stack, other["id"], "integrity")
    assert mutations(stack) == []


def test_a_kept_request_moved_to_another_operation_does_not_open(stack, people):
    first = recreate(people["rita"], FIRST_VPS + 5)
    second = recreate(people["rita"], FIRST_VPS + 6)
    # The serving role may not update kept requests; it deletes and inserts instead.
    as_serving_role(
        stack,
        "CREATE TEMP TABLE moved AS SELECT * FROM operation_requests "
        f"WHERE operation_id = '{second['id']}'",
        "UPDATE moved SET (sealed_body, key_id) = (SELECT sealed_body, key_id FROM operation_requests "
        f"WHERE operation_id = '{first['id']}')",
        f"DELETE FROM operation_requests WHERE operation_id = '{second['id']}'",
        "INSERT INTO operation_requests SELECT * FROM moved")
    assert people["ben"].json("POST", f"/v1/operations/{second['id']}/approve")[0] == 200
    refused(stack, second["id"], "integrity")
    assert mutations(stack) == []


def test_the_emergency_flag_or_the_approvals_required_changed_by_hand_are_refused(stack, people):
    frozen_vps = FIRST_VPS + 7
    waiting = recreate(people["rita"], frozen_vps)
    sql(stack, "INSERT INTO freeze_windows (vps_id, starts_at, ends_at, reason, created_by) "
               f"VALUES ({frozen_vps}, now(), now() + interval '1 hour', 'release', 'test')")
    assert people["ben"].json("POST", f"/v1/operations/{waiting['id']}/approve")[0] == 200
    time.sleep(1)
    assert operation_row(stack, waiting["id"])["state"] == "approved", "held by the freeze"
    as_serving_role(stack, f"UPDATE operations SET emergency_reason = 'not really' WHERE id = '{waiting['id']}'")
    refused(stack, waiting["id"], "integrity")

    stack.admin("policy", "set", "--subject", "vps.recreate", "--vps", str(FIRST_VPS + 8), "--approvals", "2", "--actor", "test")
    two = recreate(people["rita"], FIRST_VPS + 8)
    assert people["ben"].json("POST", f"/v1/operations/{two['id']}/approve")[0] == 200
    as_serving_role(stack, f"UPDATE operations SET approvals_required = 1, state = 'approved', approved_at = now() WHERE id = '{two['id']}'")
    refused(stack, two["id"], "integrity")
    assert mutations(stack) == []


def test_a_request_sent_once_is_never_sent_again_by_rewriting_its_rows(stack, people):
    vps = FIRST_VPS + 9
    operation = recreate(people["rita"], vps)
    kept = as_serving_role(stack, "SELECT row_to_json(r) FROM operation_requests r "
                                  f"WHERE operation_id = '{operation['id']}'")
    assert people["ben"].json("POST", f"/v1/operations/{operation['id']}/approve")[0] == 200
    assert wait_operation_row(stack, operation["id"])["state"] == "succeeded"
    assert len(mutations(stack, f"/{vps}/recreate")) == 1
    as_serving_role(
        stack,
        "INSERT INTO operation_requests SELECT * FROM json_populate_record(NULL::operation_requests, "
        f"'{kept.replace(chr(39), chr(39) * 2)}')",
        f"UPDATE operations SET state = 'approved', completed_at = NULL WHERE id = '{operation['id']}'")
    refused(stack, operation["id"], "integrity")
    assert len(mutations(stack, f"/{vps}/recreate")) == 1


def test_batch_children_edited_by_hand_are_never_sent(stack, people):
    stack.admin("policy", "set", "--subject", "vps.restart", "--vps", "*", "--approvals", "1", "--actor", "test")
    try:
        status, _, batch = people["rita"].json("POST", "/v1/batches", {
            "command": "vps.restart", "vps": [FIRST_VPS + 10, FIRST_VPS + 11], "max_in_flight": 2}, key=new_key())
        assert status == 202 and batch["state"] == "awaiting_approval", batch
        # Skip the approval, and point a child at another VPS.
        as_serving_role(
            stack,
            f"UPDATE batch_children SET vps_id = {FIRST_VPS + 12} WHERE batch_id = {batch['id']} AND position = 2",
            f"UPDATE batches SET state = 'running', next_start_at = now() WHERE id = {batch['id']}")
        deadline = time.monotonic() + 20
        children = []
        while time.monotonic() < deadline:
            children = sql(stack, f"SELECT o.state || ':' || coalesce(o.error ->> 'reason', '') FROM batch_children c "
                                  f"JOIN operations o ON o.id = c.operation_id WHERE c.batch_id = {batch['id']}").split()
            if len(children) == 2 and all(c.startswith("cancelled") for c in children):
                break
            time.sleep(0.2)
        assert sorted(children) == ["cancelled:integrity", "cancelled:integrity"], children
        assert mutations(stack) == []
    finally:
        stack.admin("policy", "remove", "--subject", "vps.restart", "--vps", "*", "--actor", "test")


# MARK: - The holes

def test_a_requester_who_lost_the_grant_is_not_sent_for(stack, people):
    """The requester's grant revoked, then approved by another: cancelled, grant_revoked."""
    stack.grant("rhea", "*", "admin")
    rhea = Client(stack, stack.create_token("rhea"))
    operation = recreate(rhea, FIRST_VPS + 13)
    stack.admin("grant", "revoke", "--principal", "rhea", "--vps", "*", "--role", "admin")
    assert people["ben"].json("POST", f"/v1/operations/{operation['id']}/approve")[0] == 200
    refused(stack, operation["id"], "grant_revoked", drift=False)
    events = sql(stack, f"SELECT type FROM events WHERE operation_id = '{operation['id']}' ORDER BY id").split()
    assert events[-1] == "operation.cancelled"
    assert mutations(stack) == []


def test_an_approver_who_lost_the_grant_does_not_count(stack, people):
    vps = FIRST_VPS + 14
    stack.grant("abe", "*", "approver")
    abe = Client(stack, stack.create_token("abe"))
    operation = recreate(people["rita"], vps)
    freeze_id = int(stack.admin("freeze", "add", "--vps", str(vps), "--for", "1h", "--reason", "hold",
                                "--actor", "test").stdout.split()[1])
    assert abe.json("POST", f"/v1/operations/{operation['id']}/approve")[0] == 200
    stack.admin("grant", "revoke", "--principal", "abe", "--vps", "*", "--role", "approver")
    stack.admin("freeze", "remove", str(freeze_id), "--actor", "test")
    refused(stack, operation["id"], "grant_revoked", drift=False)
    assert mutations(stack) == []


def test_an_emergency_does_not_wait_behind_an_operation_the_freeze_holds(stack, people):
    vps = FIRST_VPS + 15
    ordinary = recreate(people["rita"], vps)
    stack.admin("freeze", "add", "--vps", str(vps), "--for", "1h", "--reason", "release", "--actor", "test")
    assert people["ben"].json("POST", f"/v1/operations/{ordinary['id']}/approve")[0] == 200
    status, headers, emergency = people["rita"].json("POST", f"/v1/vps/{vps}/start?emergency=true&reason=INC-9", key=new_key())
    assert status == 202
    assert people["ben"].json("POST", f"{headers['Location']}/approve")[0] == 200
    assert wait_operation_row(stack, emergency["id"], timeout=15)["state"] == "succeeded"
    assert len(mutations(stack, f"/{vps}/start")) == 1
    assert operation_row(stack, ordinary["id"])["state"] == "approved", "the ordinary one still waits for the window"
    assert mutations(stack, f"/{vps}/recreate") == []


def test_a_decision_after_the_deadline_is_409_whatever_the_housekeeper_did(stack, people):
    operation = recreate(people["rita"], FIRST_VPS + 16)
    # Past its deadline, and the housekeeper has not seen it yet.
    sql(stack, f"UPDATE operations SET approval_expires_at = now() - interval '1 second' WHERE id = '{operation['id']}'")
    status, _, problem = people["ben"].json("POST", f"/v1/operations/{operation['id']}/approve")
    assert status == 409 and problem["title"] == "Approval expired", problem
    row = operation_row(stack, operation["id"])
    assert row["state"] == "cancelled" and row["error"]["reason"] == "expired"
    time.sleep(1)
    assert mutations(stack) == []


def test_expiry_runs_even_when_sealing_fails(stack, people):
    """Each housekeeping task on its own: sealing failing on every pass holds no deadline back."""
    superuser = as_superuser(stack.postgres.url)
    assert psql(stack, superuser, "REVOKE INSERT ON audit_seals FROM vpsgate_app").returncode == 0
    try:
        operation = recreate(people["rita"], FIRST_VPS + 25)
        sql(stack, f"UPDATE operations SET approval_expires_at = now() - interval '1 second' WHERE id = '{operation['id']}'")
        row = wait_operation_row(stack, operation["id"], states=("cancelled",), timeout=15)
        assert row["error"]["reason"] == "expired"
    finally:
        assert psql(stack, superuser, "GRANT INSERT (audit_id, seal, key_id) ON audit_seals TO vpsgate_app").returncode == 0


def test_a_cancelled_batch_sends_nothing_more_even_its_started_children(stack, people):
    """Created during a freeze and cancelled: nothing is sent when the freeze ends."""
    first = FIRST_VPS + 17
    freeze_id = int(stack.admin("freeze", "add", "--vps", "*", "--for", "1h", "--reason", "hold", "--actor", "test").stdout.split()[1])
    status, headers, batch = people["rita"].json("POST", "/v1/batches", {
        "command": "vps.restart", "vps": [first, first + 1, first + 2], "max_in_flight": 3}, key=new_key())
    assert status == 202 and batch["state"] == "running", batch
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sql(stack, f"SELECT count(*) FROM batch_children WHERE batch_id = {batch['id']} "
                                                     "AND state = 'started'") != "3":
        time.sleep(0.1)
    assert people["rita"].json("POST", f"/v1/batches/{batch['id']}/cancel")[0] == 200
    stack.admin("freeze", "remove", str(freeze_id), "--actor", "test")
    time.sleep(3)
    assert mutations(stack) == []
    states = sql(stack, f"SELECT DISTINCT o.state FROM batch_children c JOIN operations o ON o.id = c.operation_id "
                        f"WHERE c.batch_id = {batch['id']}")
    assert states == "cancelled"


def test_the_requester_cannot_undo_an_approvers_cancel(stack, people):
    first = FIRST_VPS + 20
    freeze_id = int(stack.admin("freeze", "add", "--vps", "*", "--for", "1h", "--reason", "hold", "--actor", "test").stdout.split()[1])
    _, _, batch = people["rita"].json("POST", "/v1/batches", {"command": "vps.restart", "vps": [first, first + 1]}, key=new_key())
    assert people["ben"].json("POST", f"/v1/batches/{batch['id']}/cancel", {"reason": "not today"})[0] == 200
    status, _, resumed = people["rita"].json("POST", f"/v1/batches/{batch['id']}/resume")
    assert status == 200 and resumed["state"] == "awaiting_approval", resumed
    stack.admin("freeze", "remove", str(freeze_id), "--actor", "test")
    time.sleep(2)
    assert mutations(stack) == [], "nothing until an approver approves again"
    assert people["cleo"].json("POST", f"/v1/batches/{batch['id']}/approve")[0] == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(mutations(stack, "/restart")) < 2:
        time.sleep(0.2)
    assert len(mutations(stack, "/restart")) == 2


def test_batch_children_keys_are_no_client_keys(stack, people):
    """A client's own key `K#<vps>` is not a child's: the child's answer never lands there."""
    vps = FIRST_VPS + 23
    key = "batch-key-" + uuid.uuid4().hex
    status, _, own = people["rita"].json("POST", f"/v1/vps/{vps}/stop", key=f"{key}#{vps}")
    assert status == 202
    assert wait_operation_row(stack, own["id"])["state"] == "succeeded"
    status, _, batch = people["rita"].json("POST", "/v1/batches", {"command": "vps.start", "vps": [vps]}, key=key)
    assert status == 202
    deadline = time.monotonic() + 20
    child = ""
    while time.monotonic() < deadline and not child:
        child = sql(stack, f"SELECT operation_id FROM batch_children WHERE batch_id = {batch['id']} AND state = 'succeeded'")
        time.sleep(0.2)
    assert child
    assert operation_row(stack, child)["idempotency_key"] == f"batch {batch['id']} vps {vps}"
    # The client's key still answers with its own stop.
    status, headers, replay = people["rita"].json("POST", f"/v1/vps/{vps}/stop", key=f"{key}#{vps}")
    assert status == 202 and replay["id"] == own["id"] and headers.get("Idempotent-Replayed") == "true"


# MARK: - An outage

@pytest.fixture(scope="module")
def lone(stack_factory):
    """One instance (one breaker) whose breaker opens after two failures and stays open 6 s."""
    lone = stack_factory("sealed-lone", instances=1, destroy_approvals=None,
                         extra_env={**SHORT_WINDOWS, "HOSTINGER_BREAKER_FAILURES": "2", "HOSTINGER_BREAKER_COOLDOWN_MS": "6000"})
    lone.sim("POST", "/__sim/vms", {"id": 1401})
    lone.sim("POST", "/__sim/vms", {"id": 1402})
    for name, role in (("rita", "admin"), ("ben", "approver")):
        lone.grant(name, "*", role)
    return lone


def test_an_approved_operation_waits_out_an_open_breaker_and_is_sent_once(lone):
    rita, ben = Client(lone, lone.create_token("rita")), Client(lone, lone.create_token("ben"))
    operation = recreate(rita, 1401)
    # Hostinger fails: the commands' breaker opens.
    lone.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1402/restart$", "status": 503, "times": -1})
    for _ in range(2):
        rita.json("POST", "/v1/vps/1402/restart", key=new_key())
    lone.sim("DELETE", "/__sim/faults")
    assert ben.json("POST", f"/v1/operations/{operation['id']}/approve")[0] == 200
    time.sleep(2)
    row = operation_row(lone, operation["id"])
    assert row["state"] == "approved", f"it waits for Hostinger, not failed: {row}"
    assert [r for r in sim_requests(lone) if r["path"].endswith("/recreate")] == []
    row = wait_operation_row(lone, operation["id"], timeout=30)
    assert row["state"] == "succeeded", row
    assert len([r for r in sim_requests(lone) if r["path"].endswith("/1401/recreate")]) == 1
    releases = sql(lone, f"SELECT count(*) FROM dispatch_ledger WHERE operation_id = '{operation['id']}' AND kind = 'released'")
    assert int(releases) >= 1
