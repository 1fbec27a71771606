"""Change control (docs/design.md#change-control): the plan equals reality, the two-person rule, approved
operations dispatched exactly once and in order, deny / cancel / expiry, secrets sealed
while they wait, freeze windows and the emergency override, and a dispatcher killed mid-call.

This module's stack runs with the shipped default policy: every vps:destroy command needs
one approval."""

import json
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import openapi_check
from vpsgate_e2e import (SHORT_WINDOWS, problem_code, Client, as_superuser, http_request, new_key, operation_row, reset_change_control, sim_requests, sql,
                         wait_operation_row)

FIRST_VPS = 1101


@pytest.fixture(scope="module")
def stack(stack_factory):
    stack = stack_factory("change", destroy_approvals=None, extra_env=SHORT_WINDOWS)
    for vps in range(FIRST_VPS, FIRST_VPS + 40):
        stack.sim("POST", "/__sim/vms", {"id": vps})
    return stack


@pytest.fixture(scope="module")
def people(stack):
    """ana: admin on every VPS (destroy and approve); ben and cleo: approvers; vera: viewer;
    olga: operator on the first VPS only."""
    stack.grant("ana", "*", "admin")
    stack.grant("ben", "*", "approver")
    stack.grant("cleo", "*", "approver")
    stack.grant("vera", "*", "viewer")
    stack.grant("olga", str(FIRST_VPS), "operator")
    return {name: Client(stack, stack.create_token(name)) for name in ("ana", "ben", "cleo", "vera", "olga")}


@pytest.fixture(autouse=True)
def clean(stack):
    """No freeze, the shipped policies, nothing open, an empty simulator log."""
    reset_change_control(stack)
    yield


def posts(stack, suffix=""):
    """The mutations the simulator received (reads are the plans' VPS lookups)."""
    return [r for r in sim_requests(stack) if r["method"] != "GET" and r["path"].endswith(suffix)]


def body_for(method, template, vps):
    """A valid body for the command at `template` (None: it takes none)."""
    return {
        ("PUT", "/hostname"): {"hostname": "web.example.com"}, ("PUT", "/nameservers"): {"ns1": "1.1.1.1"},
        ("POST", "/ptr/{ipAddressId}"): {"domain": "web.example.com"}, ("POST", "/public-keys"): {"ids": [1]},
        ("PUT", "/root-password"): {"password": "Matrix7Password-Ok"}, ("PUT", "/panel-password"): {"password": "Matrix7Password-Ok"},
        ("POST", "/recovery"): {"root_password": "Matrix7Password-Ok"}, ("POST", "/snapshot/restore"): {"confirm": vps},
        ("POST", "/backups/{backupId}/restore"): {"confirm": vps}, ("POST", "/recreate"): {"template_id": 1130, "confirm": vps},
        ("POST", "/docker"): {"project_name": "web-app", "content": "services:\n  web:\n    image: nginx:1.27\n"},
        ("POST", "/setup"): {"template_id": 1130, "data_center_id": 19},
    }.get((method, template.removeprefix("/v1/vps/{id}")))


def commands(stack):
    """Every command of the served document: (name, method, path template, destructive)."""
    document = openapi_check.VPSGATE.document
    found = []
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if template.startswith("/v1/vps/{id}/") and "Idempotency-Key" in json.dumps(operation):
                found.append((operation["operationId"].replace("_", "."), method.upper(), template,
                              "vps:destroy" in operation["description"]))
    assert len(found) == 30
    return found


def path_of(template, vps):
    index = vps - 1000
    return (template.replace("{id}", str(vps)).replace("{ipAddressId}", str(2000 + index))
            .replace("{backupId}", str(3000 + index)).replace("{firewallId}", "4001").replace("{projectName}", "web-app"))


def freeze(stack, vps="*", duration="1h", reason="release freeze"):
    out = stack.admin("freeze", "add", "--vps", vps, "--for", duration, "--reason", reason, "--actor", "test").stdout
    return int(out.split()[1])


# MARK: - 1. The plan equals reality

def test_the_plan_equals_what_the_command_then_does_for_every_command_and_decision(stack, people):
    ana, vera, olga = people["ana"], people["vera"], people["olga"]
    mismatches = []
    for offset, (name, method, template, destructive) in enumerate(commands(stack)):
        vps = FIRST_VPS + 1 + offset
        path, body = path_of(template, vps), body_for(method, template, vps)
        # proceed / needs_approval on a free VPS; then busy (an operation in flight), then
        # frozen; 403 (a viewer), 404 (outside the grants), 422 (a body that is not valid).
        cases = ["free", "busy", "frozen", "forbidden", "not_found", "invalid"]
        for case in cases:
            client = {"forbidden": vera, "not_found": olga}.get(case, ana)
            send_body = {"unknown_field": 1} if case == "invalid" else body
            blocker = freeze_id = None
            if case == "busy":
                blocker = str(uuid.uuid4())
                sql(stack, f"INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, "
                           f"dispatched_at) VALUES ('{blocker}', {vps}, 'vps.restart', 'running', 'ana', 'c', 'k', now())")
            if case == "frozen":
                freeze_id = freeze(stack, str(vps))
            before = len(posts(stack))
            plan_status, _, plan = client.json(method, path + "?validate_only=true", body=send_body)
            if len(posts(stack)) != before:
                mismatches.append((name, case, "the plan sent a mutation"))
            status, _, answer = client.json(method, path, body=send_body, key=new_key())
            sent = len(posts(stack)) - before
            if plan_status == 200:
                decision = plan["decision"]
                # Proceeding means Hostinger was called once (whatever it answered).
                reality = "proceed" if sent == 1 else {
                    202: "needs_approval" if answer.get("state") == "awaiting_approval" else "accepted without a call",
                    409: "busy", 423: "frozen"}.get(status, f"status {status}")
                if decision != reality:
                    mismatches.append((name, case, decision, reality, answer))
            elif plan_status != status or plan["type"] != answer["type"]:
                mismatches.append((name, case, plan_status, status, plan, answer))
            expected = {"free": "needs_approval" if destructive else "proceed", "busy": "needs_approval" if destructive else "busy",
                        "frozen": "frozen", "forbidden": 403, "not_found": 404, "invalid": 422}[case]
            got = plan["decision"] if plan_status == 200 else plan_status
            if got != expected:
                mismatches.append((name, case, "expected", expected, "got", got))
            # Leave the VPS free for the next case.
            if blocker:
                sql(stack, f"UPDATE operations SET state = 'succeeded', completed_at = now() WHERE id = '{blocker}'")
            if freeze_id:
                stack.admin("freeze", "remove", str(freeze_id), "--actor", "test")
            sql(stack, f"UPDATE operations SET state = 'cancelled', completed_at = now() WHERE vps_id = {vps} "
                       "AND state IN ('awaiting_approval', 'approved')")
            deadline = time.monotonic() + 20
            while sql(stack, f"SELECT count(*) FROM operations WHERE vps_id = {vps} AND state IN "
                             "('accepted', 'dispatched', 'running', 'unknown')") != "0" and time.monotonic() < deadline:
                time.sleep(0.1)
    assert mismatches == [], "\n".join(map(str, mismatches))


def test_a_plan_shows_the_policy_the_vps_and_the_documented_effects(stack, people):
    status, _, plan = people["ana"].json("POST", f"/v1/vps/{FIRST_VPS}/recreate?validate_only=true",
                                         body={"template_id": 1130, "password": "Matrix7Password-Ok", "confirm": FIRST_VPS})
    assert status == 200
    assert plan["decision"] == "needs_approval" and plan["approvals_required"] == 1
    assert plan["policy"] == {"subject": "vps:destroy", "vps_id": "*", "ttl_seconds": 86400}
    assert plan["vps"]["id"] == FIRST_VPS
    assert plan["would_send"]["body"]["password"] == "[REDACTED]"
    assert any("snapshots" in effect for effect in plan["effects"])


# MARK: - 2. The two-person rule

def recreate(client, vps, key=None, password="Matrix7Password-Ok"):
    return client.json("POST", f"/v1/vps/{vps}/recreate", body={"template_id": 1130, "password": password, "confirm": vps},
                       key=key or new_key())


def test_a_recreate_needs_another_principal_and_is_sent_once_after_the_approval(stack, people):
    vps = FIRST_VPS
    status, headers, operation = recreate(people["ana"], vps)
    assert status == 202 and operation["state"] == "awaiting_approval" and operation["approval"]["required"] == 1
    location = headers["Location"]
    status, _, problem = people["ana"].json("POST", f"{location}/approve")
    assert status == 403 and problem_code(problem) == "self-approval"
    time.sleep(1)
    assert posts(stack, "/recreate") == [], "nothing is sent before the approval"
    status, _, approved = people["ben"].json("POST", f"{location}/approve")
    assert status == 200 and approved["state"] in ("approved", "accepted", "running", "succeeded")
    row = wait_operation_row(stack, operation["id"])
    assert row["state"] == "succeeded"
    assert len(posts(stack, f"/{vps}/recreate")) == 1
    time.sleep(1)
    assert len(posts(stack, f"/{vps}/recreate")) == 1
    approvers = sql(stack, f"SELECT decided_by, outcome FROM audit_approvals WHERE operation_id = '{operation['id']}' ORDER BY id")
    assert approvers.splitlines() == ["ana|self_approval", "ben|approved"]


def test_with_two_approvals_the_same_approver_counts_once(stack, people):
    stack.admin("policy", "set", "--subject", "vps.recreate", "--vps", "*", "--approvals", "2", "--actor", "test")
    vps = FIRST_VPS + 1
    _, headers, operation = recreate(people["ana"], vps)
    location = headers["Location"]
    for _ in range(2):
        status, _, state = people["ben"].json("POST", f"{location}/approve")
        assert status == 200 and state["state"] == "awaiting_approval"
    time.sleep(1)
    assert posts(stack, "/recreate") == []
    status, _, state = people["cleo"].json("POST", f"{location}/approve")
    assert status == 200
    assert wait_operation_row(stack, operation["id"])["state"] == "succeeded"
    assert len(posts(stack, f"/{vps}/recreate")) == 1


def test_the_approvals_list_shows_what_the_caller_may_approve(stack, people):
    _, _, operation = recreate(people["ana"], FIRST_VPS + 2)
    status, _, page = people["ben"].json("GET", "/v1/approvals")
    assert status == 200 and operation["id"] in [o["id"] for o in page["data"]]
    status, _, page = people["ana"].json("GET", "/v1/approvals")
    assert operation["id"] not in [o["id"] for o in page["data"]], "not one's own"
    status, _, page = people["vera"].json("GET", "/v1/approvals")
    assert page["data"] == [], "a viewer may approve nothing"


# MARK: - 3. Exactly once, in order

def test_two_approvers_at_the_same_moment_through_two_instances_send_it_once(stack, people):
    vps = FIRST_VPS + 3
    _, headers, operation = recreate(people["ana"], vps)
    location = headers["Location"]
    results = []
    barrier = threading.Barrier(2)

    def approve(client):
        barrier.wait()
        results.append(client.json("POST", f"{location}/approve")[0])
    threads = [threading.Thread(target=approve, args=(people[name],)) for name in ("ben", "cleo")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) in ([200, 200], [200, 409]), results
    assert wait_operation_row(stack, operation["id"])["state"] == "succeeded"
    time.sleep(1)
    assert len(posts(stack, f"/{vps}/recreate")) == 1
    instances = sql(stack, f"SELECT DISTINCT instance FROM audit_events WHERE operation_id = '{operation['id']}' AND kind = 'approval'")
    assert instances  # the approvals were recorded (by whichever instances nginx chose)


def test_twenty_approved_operations_on_one_vps_run_one_at_a_time_in_order(stack, people):
    vps = FIRST_VPS + 4
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    ids = []
    for _ in range(20):
        status, headers, operation = recreate(people["ana"], vps)
        assert status == 202 and operation["state"] == "awaiting_approval"
        ids.append(operation["id"])
    for operation_id in ids:
        assert people["ben"].json("POST", f"/v1/operations/{operation_id}/approve")[0] == 200
    for operation_id in ids:
        assert wait_operation_row(stack, operation_id, timeout=90)["state"] == "succeeded"
    rows = [operation_row(stack, operation_id) for operation_id in ids]
    dispatched = sorted(rows, key=lambda r: r["dispatched_at"])
    assert [r["id"] for r in dispatched] == ids, "dispatched in approval order"
    for earlier, later in zip(dispatched, dispatched[1:]):
        assert later["dispatched_at"] >= earlier["completed_at"], "one at a time"
    assert len(posts(stack, f"/{vps}/recreate")) == 20


# MARK: - 4. Deny, cancel, expiry

@pytest.mark.parametrize("how", ["deny", "cancel", "expire"])
def test_deny_cancel_and_expiry_end_cancelled_with_no_call(stack, people, how):
    vps = FIRST_VPS + 5
    _, headers, operation = recreate(people["ana"], vps)
    location = headers["Location"]
    if how == "deny":
        status, _, problem = people["ben"].json("POST", f"{location}/deny", body={})
        assert status == 422 and "reason" in problem["errors"]
        status, _, ended = people["ben"].json("POST", f"{location}/deny", body={"reason": "not during the sale"})
        assert status == 200
        reason = "denied"
    elif how == "cancel":
        status, _, ended = people["ana"].json("POST", f"{location}/cancel")
        assert status == 200
        reason = "withdrawn"
    else:
        ttl = sql(stack, f"SELECT extract(epoch FROM approval_expires_at - created_at)::int FROM operations WHERE id = '{operation['id']}'")
        assert ttl == "86400", "the policy's time to live"
        sql(stack, f"UPDATE operations SET approval_expires_at = now() - interval '1 second' WHERE id = '{operation['id']}'")
        ended = {"state": wait_operation_row(stack, operation["id"], timeout=10)["state"]}
        reason = "expired"
    row = wait_operation_row(stack, operation["id"], timeout=10)
    assert row["state"] == "cancelled" and row["error"]["reason"] == reason, row
    assert ended["state"] == "cancelled"
    status, _, problem = people["cleo"].json("POST", f"{location}/approve")
    assert status == 409 and problem_code(problem) == "not-awaiting-approval"
    assert sql(stack, f"SELECT count(*) FROM operation_requests WHERE operation_id = '{operation['id']}'") == "0"
    time.sleep(1)
    assert posts(stack, "/recreate") == []
    outcome = {"deny": "denied", "cancel": "withdrawn", "expire": "expired"}[how]
    assert outcome in sql(stack, f"SELECT outcome FROM audit_approvals WHERE operation_id = '{operation['id']}'").splitlines()


# MARK: - 5. Secrets sealed while they wait

def test_a_password_awaiting_approval_is_never_stored_in_clear_and_is_gone_after_dispatch(stack, people):
    canary = "Canary7Sealed" + uuid.uuid4().hex[:10]
    vps = FIRST_VPS + 6
    status, headers, operation = recreate(people["ana"], vps, password=canary)
    assert status == 202
    stack.postgres.psql("CHECKPOINT", url=as_superuser(stack.postgres.owner_url))
    dump = subprocess.run([str(stack.postgres.bindir / "pg_dump"), "--data-only", stack.postgres.owner_url],
                          capture_output=True, text=True, check=True).stdout
    assert canary not in dump, "no table holds it in clear"
    assert "operation_requests" in dump and operation["id"] in dump, "the request is kept (sealed)"
    wal = Path(stack.postgres.data_dir) / "pg_wal"
    for segment in wal.iterdir():
        if segment.is_file():
            assert canary.encode() not in segment.read_bytes(), f"in clear in {segment.name}"
    people["ben"].json("POST", f"{headers['Location']}/approve")
    assert wait_operation_row(stack, operation["id"])["state"] == "succeeded"
    sent = posts(stack, f"/{vps}/recreate")
    assert len(sent) == 1 and sent[0]["body"]["password"] == canary, "Hostinger got the real password"
    assert sql(stack, f"SELECT count(*) FROM operation_requests WHERE operation_id = '{operation['id']}'") == "0"


# MARK: - 6. Freeze windows

def test_a_freeze_refuses_commands_and_plans_say_frozen(stack, people):
    freeze(stack)
    status, _, problem = people["ana"].json("POST", f"/v1/vps/{FIRST_VPS + 7}/restart", key=new_key())
    assert status == 423 and problem_code(problem) == "change-frozen" and problem["frozen_until"]
    status, _, plan = people["ana"].json("POST", f"/v1/vps/{FIRST_VPS + 7}/restart?validate_only=true")
    assert status == 200 and plan["decision"] == "frozen" and plan["freeze"]["reason"] == "release freeze"
    assert posts(stack) == []


def test_the_freezes_in_force_and_coming_are_listed_to_those_who_may_read_their_vps(stack, people):
    everywhere = freeze(stack, reason="<b>release</b> & freeze")
    mine = freeze(stack, vps=str(FIRST_VPS), duration="2h", reason="olga's VPS")
    other = freeze(stack, vps=str(FIRST_VPS + 1), duration="2h", reason="not olga's")
    coming = int(stack.admin("freeze", "add", "--vps", "*", "--starts", "3h", "--for", "1h", "--reason", "next week",
                             "--actor", "test").stdout.split()[1])
    sql(stack, "INSERT INTO freeze_windows (vps_id, starts_at, ends_at, reason, created_by) "
               "VALUES (NULL, now() - interval '2 hours', now() - interval '1 hour', 'over', 'test')")
    status, _, seen = people["vera"].json("GET", "/v1/freezes")  # a viewer of every VPS
    assert status == 200, seen
    assert [w["id"] for w in seen["data"]] == [everywhere, mine, other, coming], seen
    first = seen["data"][0]
    assert first == {"id": everywhere, "vps_id": None, "state": "active", "starts_at": first["starts_at"],
                     "ends_at": first["ends_at"], "reason": "<b>release</b> & freeze"}
    assert seen["data"][3]["state"] == "upcoming" and seen["data"][1]["vps_id"] == FIRST_VPS
    status, _, olgas = people["olga"].json("GET", "/v1/freezes")  # an operator of FIRST_VPS only
    assert status == 200 and [w["id"] for w in olgas["data"]] == [everywhere, mine, coming], olgas
    openapi_check.VPSGATE.validate("GET", "/v1/freezes", status, "application/json", olgas)
    assert http_request(stack, "GET", "/v1/freezes")[0] == 401
    # vpsgatectl freezes: the same list, as olga may see it.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(stack.run_dir), "VPSGATE_URL": stack.url,
           "VPSGATE_TOKEN": people["olga"].token, "VPSGATE_CA_FILE": str(stack.ca_file)}
    listed = subprocess.run([str(Path(stack.binary).parent / "vpsgatectl"), "freezes", "-o", "json"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert [w["id"] for w in json.loads(listed.stdout)["data"]] == [everywhere, mine, coming], listed.stdout


def test_an_approved_operation_waits_for_the_window_to_end(stack, people):
    vps = FIRST_VPS + 8
    _, headers, operation = recreate(people["ana"], vps)
    freeze(stack, duration="6s")
    assert people["ben"].json("POST", f"{headers['Location']}/approve")[0] == 200
    time.sleep(3)
    assert operation_row(stack, operation["id"])["state"] == "approved"
    assert posts(stack, "/recreate") == []
    assert wait_operation_row(stack, operation["id"], timeout=30)["state"] == "succeeded"
    assert len(posts(stack, f"/{vps}/recreate")) == 1


def test_the_emergency_override_needs_an_approver(stack, people):
    vps = FIRST_VPS + 9
    freeze(stack)
    status, headers, operation = people["ana"].json(
        "POST", f"/v1/vps/{vps}/restart?emergency=true&reason=outage%20INC-7", key=new_key())
    assert status == 202 and operation["state"] == "awaiting_approval" and operation["approval"]["required"] == 1
    time.sleep(1)
    assert posts(stack) == []
    assert people["ben"].json("POST", f"{headers['Location']}/approve")[0] == 200
    assert wait_operation_row(stack, operation["id"])["state"] == "succeeded"
    assert len(posts(stack, f"/{vps}/restart")) == 1
    overrides = sql(stack, f"SELECT emergency_reason, approved_by FROM audit_freeze_overrides WHERE operation_id = '{operation['id']}'")
    assert overrides == "outage INC-7|{ben}"
    status, _, _ = people["ana"].json("POST", f"/v1/vps/{vps}/restart?emergency=true", key=new_key())
    assert status == 400, "an emergency needs a reason"


# MARK: - 7. Reasons (docs/change-control.md#reasons)

HOSTILE_REASON = "<img src=x onerror=alert(1)>"


def test_a_reason_is_kept_and_shown_to_approvers_in_audit_and_events(stack, people):
    vps = FIRST_VPS + 20
    key = new_key()
    body = {"template_id": 1130, "password": "Matrix7Password-Ok", "confirm": vps}
    status, headers, operation = people["ana"].json("POST", f"/v1/vps/{vps}/recreate", body=body, key=key,
                                                     headers={"Vpsgate-Reason": f"  {HOSTILE_REASON} "})
    assert status == 202 and operation["state"] == "awaiting_approval" and operation["reason"] == HOSTILE_REASON, operation
    assert people["ana"].json("GET", headers["Location"])[2]["reason"] == HOSTILE_REASON
    listed = people["ana"].json("GET", f"/v1/operations?vps={vps}")[2]["data"]
    assert [o["reason"] for o in listed if o["id"] == operation["id"]] == [HOSTILE_REASON]
    approvals = people["ben"].json("GET", "/v1/approvals")[2]["data"]
    assert [o["reason"] for o in approvals if o["id"] == operation["id"]] == [HOSTILE_REASON], "the approvers see why"
    assert sql(stack, f"SELECT kind, reason FROM audit_events WHERE operation_id = '{operation['id']}' ORDER BY id").splitlines() \
        == [f"received|{HOSTILE_REASON}", f"final|{HOSTILE_REASON}"]
    assert sql(stack, f"SELECT reason FROM audit_mutations WHERE operation_id = '{operation['id']}'") == HOSTILE_REASON
    event = sql(stack, f"SELECT data -> 'operation' ->> 'reason' FROM events WHERE operation_id = '{operation['id']}' "
                       "AND type = 'operation.awaiting_approval'")
    assert event == HOSTILE_REASON
    # Not part of the fingerprint: another reason under the same key replays the first answer.
    status, headers, replayed = people["ana"].json("POST", f"/v1/vps/{vps}/recreate", body=body, key=key,
                                                    headers={"Vpsgate-Reason": "another"})
    assert status == 202 and headers.get("Idempotent-Replayed") == "true" and replayed["reason"] == HOSTILE_REASON
    # A command without a header has none.
    status, _, plain = people["ana"].json("POST", f"/v1/vps/{vps + 1}/restart", key=new_key())
    assert status == 202 and plain["reason"] is None


@pytest.mark.parametrize("reason", ["   ", "x" * 501, "a\tb", "a\x1b[31mb"])
def test_an_unusable_reason_is_refused_and_changes_nothing(stack, people, reason):
    vps = FIRST_VPS + 22
    key = new_key()
    correlation = "reason-" + uuid.uuid4().hex
    status, _, problem = people["ana"].json("POST", f"/v1/vps/{vps}/restart", key=key,
                                            headers={"Vpsgate-Reason": reason, "X-Request-ID": correlation})
    assert status == 422 and problem_code(problem) == "validation-failed", problem
    assert "Vpsgate-Reason" in problem["errors"]
    assert sql(stack, f"SELECT count(*) FROM operations WHERE idempotency_key = '{key}'") == "0"
    assert sql(stack, f"SELECT kind, outcome, http_status, reason IS NULL FROM audit_events WHERE correlation_id = '{correlation}'") \
        == "final|invalid|422|t"
    time.sleep(0.3)
    assert posts(stack, "/restart") == []


def test_a_policy_that_requires_a_reason_refuses_a_command_without_one_before_anything_is_spent(stack, people):
    vps = FIRST_VPS + 23
    stack.admin("policy", "set", "--subject", "vps.restart", "--vps", str(vps), "--approvals", "0", "--require-reason", "--actor", "test")
    key = new_key()
    status, _, problem = people["ana"].json("POST", f"/v1/vps/{vps}/restart", key=key)
    assert status == 422 and problem_code(problem) == "reason-required", problem
    assert sql(stack, f"SELECT count(*) FROM operations WHERE idempotency_key = '{key}'") == "0"
    assert sql(stack, f"SELECT outcome, http_status, problem_type FROM audit_events WHERE idempotency_key = '{key}'") \
        == "invalid|422|urn:vpsgate:problem:reason-required"
    status, _, batch = people["ana"].json("POST", "/v1/batches", body={"command": "vps.restart", "vps": [vps]}, key=new_key())
    assert status == 422 and problem_code(batch) == "reason-required", batch
    time.sleep(0.3)
    assert posts(stack, "/restart") == [], "nothing was sent"
    # The same key with a reason: the key was left free, the command runs.
    status, _, operation = people["ana"].json("POST", f"/v1/vps/{vps}/restart", key=key, headers={"Vpsgate-Reason": "ticket OPS-42"})
    assert status == 202 and operation["reason"] == "ticket OPS-42"
    assert wait_operation_row(stack, operation["id"])["state"] == "succeeded"
    status, _, batch = people["ana"].json("POST", "/v1/batches", body={"command": "vps.restart", "vps": [vps]}, key=new_key(),
                                          headers={"Vpsgate-Reason": "rolling restart"})
    assert status == 202 and batch["reason"] == "rolling restart", batch
    # Another VPS, which the policy row does not cover, needs none.
    assert people["ana"].json("POST", f"/v1/vps/{vps + 1}/restart", key=new_key())[0] == 202


# MARK: - 8. A dispatcher killed mid-call

def test_killing_the_dispatcher_mid_call_never_sends_twice(stack, people):
    vps = FIRST_VPS + 10
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": f"/{vps}/recreate$", "delay_ms": 3000, "apply": True})
    _, headers, operation = recreate(people["ana"], vps)
    assert people["ben"].json("POST", f"{headers['Location']}/approve")[0] == 200
    deadline = time.monotonic() + 15
    while not posts(stack, f"/{vps}/recreate") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(posts(stack, f"/{vps}/recreate")) == 1
    # Whichever instance is dispatching (both run the background work), kill them all.
    indexes = [int(name.split("-")[1]) for name in list(stack.processes) if name.startswith("vpsgate-")]
    for index in indexes:
        stack.processes.pop(f"vpsgate-{index}").send_signal(signal.SIGKILL)
    assert operation_row(stack, operation["id"])["state"] == "accepted"
    for index in indexes:
        stack.start_instance(index)
    row = wait_operation_row(stack, operation["id"], timeout=60)
    assert row["state"] == "succeeded" and row["hostinger_action_id"] is not None, row
    time.sleep(2)
    assert len(posts(stack, f"/{vps}/recreate")) == 1
