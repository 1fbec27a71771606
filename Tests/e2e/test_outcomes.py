"""No outcome is lost: whatever makes the write of a command's outcome fail (the database
gone for a moment, two operations naming one Hostinger action, a VM Hostinger no longer
knows, a simulator reset under load), every operation ends settled from Hostinger's word,
its key completed and its request with exactly one final audit row."""

import json
import random
import threading
import time
import uuid

import pytest

from vpsgate_e2e import (SHORT_WINDOWS, operation_row, settle_and_reset_sim, sim_requests, sql,
                         wait_operation_row, wait_until_settled)

GRACE_MS, SETTLE_MS, DEADLINE_MS = (int(SHORT_WINDOWS[name]) for name in (
    "VPSGATE_RECONCILE_GRACE_MS", "VPSGATE_SETTLE_WINDOW_MS", "HOSTINGER_DEADLINE_MS"))


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory("out", extra_env=SHORT_WINDOWS)


@pytest.fixture(autouse=True)
def fresh(stack):
    settle_and_reset_sim(stack, keys_too=True)
    yield


def final_rows(stack, operation_id):
    """The final audit rows of the request that created the operation (replays have their own)."""
    return int(sql(stack, f"SELECT count(*) FROM audit_events WHERE operation_id = '{operation_id}' "
                          "AND kind = 'final' AND outcome NOT IN ('replayed', 'conflict')"))


def key_row(stack, operation_id):
    return json.loads(sql(stack, "SELECT row_to_json(k) FROM (SELECT state, response_status FROM idempotency_keys "
                                 f"WHERE operation_id = '{operation_id}') k"))


def stored_action_ids(stack):
    text = sql(stack, "SELECT coalesce(string_agg(hostinger_action_id::text, ','), '') FROM operations "
                      "WHERE hostinger_action_id IS NOT NULL")
    return {int(x) for x in text.split(",") if x}


def command(admin, method, path, body=None, key=None):
    key = key or str(uuid.uuid4())
    status, headers, raw = admin.request(method, path, body, key=key)
    return status, headers, raw, key


# MARK: - 1. Action ids are never reused


def test_action_ids_stay_unique_across_resets_and_restarts_of_the_simulator(stack, admin):
    status, _, raw, _ = command(admin, "POST", "/v1/vps/1002/start")
    assert status == 202, raw
    first = wait_operation_row(stack, json.loads(raw)["id"])
    assert first["state"] == "succeeded"

    stack.sim("POST", "/__sim/reset")
    before = stored_action_ids(stack)
    status, _, raw, _ = command(admin, "POST", "/v1/vps/1002/start")
    assert status == 202, raw
    after_reset = json.loads(raw)["hostinger_action"]["id"]
    assert after_reset not in before
    wait_operation_row(stack, json.loads(raw)["id"])

    # A restarted simulator starts from its fixtures, but not from an earlier run's ids.
    process = stack.processes["hostinger-sim"]
    process.terminate()
    process.wait(timeout=30)
    stack.sim_socket.unlink(missing_ok=True)
    stack.start_sim()
    before = stored_action_ids(stack)
    status, _, raw, _ = command(admin, "POST", "/v1/vps/1002/start")
    assert status == 202, raw
    after_restart = json.loads(raw)["hostinger_action"]["id"]
    assert after_restart not in before
    assert after_restart > max(before)
    assert wait_operation_row(stack, json.loads(raw)["id"])["state"] == "succeeded"


# MARK: - 2. An outcome whose write fails is recorded anyway


def test_an_outcome_answered_while_postgresql_is_down_is_recorded_once_it_is_back(stack, admin):
    # Hostinger takes 1.5 s to answer; PostgreSQL is stopped meanwhile and back 3 s later.
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1002/start$", "delay_ms": 1500})
    answer = {}

    def send():
        answer["status"], answer["headers"], answer["raw"], answer["key"] = command(admin, "POST", "/v1/vps/1002/start")

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not sim_requests(stack, "POST", "/1002/start"):
        time.sleep(0.02)
    assert sim_requests(stack, "POST", "/1002/start"), "the command never reached Hostinger"
    stack.postgres.stop()
    try:
        time.sleep(3)
    finally:
        stack.postgres.start()
    sender.join(timeout=60)

    assert answer["status"] == 202, answer
    operation = json.loads(answer["raw"])
    row = wait_operation_row(stack, operation["id"])
    assert row["state"] == "succeeded"
    assert row["hostinger_action_id"] == operation["hostinger_action"]["id"]
    assert key_row(stack, operation["id"]) == {"state": "completed", "response_status": 202}
    assert final_rows(stack, operation["id"]) == 1
    assert int(sql(stack, f"SELECT count(*) FROM audit_events WHERE operation_id = '{operation['id']}' "
                          "AND kind = 'final' AND outcome = 'accepted'")) == 1
    # The replay is the answer the client got, byte for byte, and Hostinger is not called again.
    status, headers, raw, _ = command(admin, "POST", "/v1/vps/1002/start", key=answer["key"])
    assert (status, raw) == (202, answer["raw"])
    assert headers.get("Idempotent-Replayed") == "true"
    assert len(sim_requests(stack, "POST", "/1002/start")) == 1


def test_an_action_hostinger_also_gave_an_earlier_operation_is_recorded_for_both_with_drift(stack, admin):
    status, _, raw, _ = command(admin, "POST", "/v1/vps/1002/start")
    assert status == 202
    earlier = json.loads(raw)
    assert wait_operation_row(stack, earlier["id"])["state"] == "succeeded"

    # Hostinger answers the next request with the action it already has.
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1002/restart$", "answer_with_last_action": True})
    status, _, raw, key = command(admin, "POST", "/v1/vps/1002/restart")
    assert status == 202, raw
    later = json.loads(raw)
    shared = earlier["hostinger_action"]["id"]
    assert later["hostinger_action"]["id"] == shared

    row = wait_operation_row(stack, later["id"])
    assert row["state"] == "succeeded" and row["hostinger_action_id"] == shared
    assert operation_row(stack, earlier["id"])["state"] == "succeeded"
    assert key_row(stack, later["id"]) == {"state": "completed", "response_status": 202}
    assert final_rows(stack, later["id"]) == 1
    drift = json.loads(sql(stack, "SELECT row_to_json(d) FROM (SELECT operation_id, vpsgate_view FROM drift_events "
                                  f"WHERE kind = 'action_shared' AND hostinger_action_id = {shared}) d"))
    assert drift == {"operation_id": later["id"], "vpsgate_view": {"also_claimed_by": earlier["id"]}}
    status, headers, replay, _ = command(admin, "POST", "/v1/vps/1002/restart", key=key)
    assert (status, replay, headers.get("Idempotent-Replayed")) == (202, raw, "true")


# MARK: - 3. A VM Hostinger no longer knows


def test_operations_on_a_vm_that_disappears_settle_failed_with_that_reason(stack, admin):
    for vm in (9101, 9102):
        assert stack.sim("POST", "/__sim/vms", {"id": vm, "state": "running"})[0] == 200
    # One operation follows its action; the other lost its answer (a 500 for a snapshot,
    # which is not repeat-safe, so it is unknown).
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 120_000})
    status, _, raw, following_key = command(admin, "POST", "/v1/vps/9101/restart")
    assert status == 202
    following = json.loads(raw)
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/9102/snapshot$", "status": 500, "apply": True})
    status, _, raw, lost_key = command(admin, "POST", "/v1/vps/9102/snapshot")
    assert status == 202
    lost = json.loads(raw)
    assert lost["state"] == "unknown"

    stack.sim("POST", "/__sim/reset")  # both VMs are gone
    started = time.monotonic()
    for operation in (following, lost):
        row = wait_operation_row(stack, operation["id"], timeout=(GRACE_MS + SETTLE_MS + DEADLINE_MS) / 1000 + 15)
        assert row["state"] == "failed"
        assert row["error"]["reason"] == "vps_not_found", row
        assert key_row(stack, operation["id"])["state"] == "completed"
        assert final_rows(stack, operation["id"]) == 1
    assert time.monotonic() - started < (DEADLINE_MS + SETTLE_MS) / 1000 + 15


# MARK: - Lost answers are settled, stale or not, and never on a guessed name


def test_a_stale_operation_is_still_settled_it_only_stops_blocking(stack, admin):
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1003/snapshot$", "status": 500, "apply": False})
    status, _, raw, _ = command(admin, "POST", "/v1/vps/1003/snapshot")
    assert status == 202
    lost = json.loads(raw)
    assert lost["state"] == "unknown"
    # As if the busy bound had passed: flagged stale.
    sql(stack, f"UPDATE operations SET stale = true WHERE id = '{lost['id']}'")
    row = wait_operation_row(stack, lost["id"], timeout=(DEADLINE_MS + SETTLE_MS) / 1000 + 15)
    assert row["state"] == "failed" and row["error"]["reason"] == "not_applied"
    assert key_row(stack, lost["id"])["state"] == "completed"


def test_a_lost_answer_whose_action_hostinger_named_unexpectedly_stays_unknown_with_the_candidate(stack, admin):
    # The reinstall happened, but Hostinger named its action in a way vpsgate does not expect.
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/1003/recreate$", "status": 500, "apply": True,
                                         "action_name": "os_reinstall_v2"})
    status, _, raw, key = command(admin, "POST", "/v1/vps/1003/recreate", {"template_id": 1130, "confirm": 1003})
    assert status == 202
    lost = json.loads(raw)
    assert lost["state"] == "unknown"
    deadline = time.monotonic() + (DEADLINE_MS + SETTLE_MS) / 1000 + 15
    row = operation_row(stack, lost["id"])
    while time.monotonic() < deadline and not (row["error"] or {}).get("candidates"):
        time.sleep(0.2)
        row = operation_row(stack, lost["id"])
    # Never 'failed/not_applied': that would invite a second reinstall.
    assert row["state"] == "unknown", row
    assert row["error"]["reason"] == "ambiguous"
    assert [c["name"] for c in row["error"]["candidates"]] == ["os_reinstall_v2"]
    assert key_row(stack, lost["id"]) == {"state": "completed", "response_status": 202}
    assert final_rows(stack, lost["id"]) == 1
    # It stops blocking only at the busy bound; a retry of the key gets the stored answer.
    status, headers, replay, _ = command(admin, "POST", "/v1/vps/1003/recreate", {"template_id": 1130, "confirm": 1003}, key=key)
    assert (status, headers.get("Idempotent-Replayed")) == (202, "true")
    assert len(sim_requests(stack, "POST", "/1003/recreate")) == 1
    # Leave nothing open for the next test.
    sql(stack, f"UPDATE operations SET state = 'failed', completed_at = now() WHERE id = '{lost['id']}'")


# MARK: - 4. A load with a reset in the middle leaves nothing open


def test_no_operation_or_key_stays_open_after_a_load_with_a_simulator_reset_in_the_middle(stack, admin):
    extra = list(range(9200, 9232))
    for vm in extra:
        assert stack.sim("POST", "/__sim/vms", {"id": vm, "state": "running"})[0] == 200
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 1500})
    # Some answers get lost (the mutation happens, the answer is a 500) and some are slow.
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/92[0-9][0-9]/snapshot$", "status": 500,
                                         "apply": True, "times": -1})
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/92[0-9]5/restart$", "delay_ms": 1500, "times": -1})
    targets = [1001, 1002, 1003] + extra
    paths = ["start", "stop", "restart", "snapshot"]
    stop_at = time.monotonic() + 30
    reset_at = time.monotonic() + 15
    counts = {"sent": 0, "accepted": 0}
    errors = []
    lock = threading.Lock()

    def load(seed):
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            try:
                status, _, _, _ = command(admin, "POST", f"/v1/vps/{rng.choice(targets)}/{rng.choice(paths)}")
            except Exception as error:  # noqa: BLE001 - any failure of the client is a finding
                with lock:
                    errors.append(repr(error))
                continue
            with lock:
                counts["sent"] += 1
                counts["accepted"] += status == 202

    threads = [threading.Thread(target=load, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    while time.monotonic() < reset_at:
        time.sleep(0.1)
    stack.sim("POST", "/__sim/reset")  # the extra VMs are gone; action ids keep counting
    for thread in threads:
        thread.join(timeout=120)
    stack.sim("DELETE", "/__sim/faults")
    print(f"load: {counts['sent']} commands, {counts['accepted']} accepted, {len(errors)} client errors")
    assert not errors, errors[:3]
    assert counts["accepted"] >= 20

    window = (GRACE_MS + SETTLE_MS + DEADLINE_MS) / 1000 + 30
    assert wait_until_settled(stack, timeout=window) == (0, 0)
    unanswered = sql(stack, """
        SELECT count(*) FROM operations o
        WHERE (SELECT count(*) FROM audit_events a
               WHERE a.operation_id = o.id AND a.kind = 'final' AND a.outcome NOT IN ('replayed', 'conflict')) <> 1
        """)
    assert int(unanswered) == 0
    critical = [line for index in (1, 2) for line in stack.log_path(f"vpsgate-{index}").read_text().splitlines()
                if '"critical"' in line]
    assert critical == []
