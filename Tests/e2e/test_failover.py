"""PostgreSQL changes primary under load: two vpsgate instances on a pg_auto_failover pair (a
primary and its synchronous standby, scripts/failover_stack.py), reached through a libpq
multi-host URL with target_session_attrs=read-write. Eight clients send restarts over 30 VPS
while the primary is switched over as planned (`pg_autoctl perform switchover`), then while
the new primary's machine dies (SIGKILL to its postmaster and its keeper). After each:
every accepted operation settles with one final audit row and its state changes in the
event feed, no restart reached Hostinger twice, none Hostinger performed is recorded as not
applied, the only errors clients saw were 503 with Retry-After, and the first success after
the switch came within the goal.

The switchover runs first: it needs both nodes, and a killed node stays dead."""

import collections
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from vpsgate_e2e import SHORT_WINDOWS, Client, new_key, sim_requests, sql, wait_until_settled

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from failover_stack import FailoverCluster  # noqa: E402

FIRST_VPS = 3401
CLIENTS = 8
VPS_COUNT = 30
# The goal for the first successful command after the primary's death; asserted with room
# for a machine busy with other builds (the measurement is printed).
GOAL_SECONDS = 15
BOUND_SECONDS = 25


@pytest.fixture(scope="module")
def stack(stack_factory):
    stack = stack_factory("failover", start=False, extra_env=SHORT_WINDOWS)
    stack.postgres = FailoverCluster(Path(tempfile.mkdtemp(prefix="vpsgate-e2e-pgaf-")))
    stack.start()
    for vps in range(FIRST_VPS, FIRST_VPS + VPS_COUNT):
        stack.sim("POST", "/__sim/vms", {"id": vps})
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    return stack


class LoadClient(threading.Thread):
    """Restarts its VPS one after another, each with a key of its own, retried with the same
    key after a 503 as a client should; waits for each operation to end before the next."""

    def __init__(self, stack, token, vps_list, stop, deadline):
        super().__init__(daemon=True)
        self.client = Client(stack, token)
        self.vps_list = vps_list
        self.stop = stop
        self.deadline = deadline
        self.answers = []  # (sent, answered, method, status, has Retry-After)
        self.accepted = []  # (vps, operation id)

    def call(self, method, path, key=None, body=None):
        sent = time.monotonic()
        try:
            status, headers, answer = self.client.json(method, path, body, key=key,
                                                       headers={"X-Request-ID": f"fo-{uuid.uuid4().hex[:12]}"})
        except Exception as error:  # noqa: BLE001 - no answer, or one outside the API's contract
            status, headers, answer = f"{type(error).__name__}: {error}", {}, None
        self.answers.append((sent, time.monotonic(), method, status, "Retry-After" in headers))
        return status, answer

    def run(self):
        turn = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            vps = self.vps_list[turn % len(self.vps_list)]
            turn += 1
            key = new_key()
            while time.monotonic() < self.deadline:
                status, operation = self.call("POST", f"/v1/vps/{vps}/restart", key=key, body={})
                if status == 202:
                    self.accepted.append((vps, operation["id"]))
                    break
                if status != 503:
                    return
                time.sleep(0.25)
            else:
                return
            while time.monotonic() < self.deadline:
                status, current = self.call("GET", f"/v1/operations/{operation['id']}?wait=5")
                if status == 200 and current["state"] in ("succeeded", "failed", "cancelled"):
                    break
                if status not in (200, 503):
                    return
                if status == 503:
                    time.sleep(0.25)


VPS = list(range(FIRST_VPS, FIRST_VPS + VPS_COUNT))


@pytest.fixture(scope="module")
def load_token(stack):
    stack.grant("load", "*", "operator")
    return stack.create_token("load")


def feed_end(client):
    """The feed's cursor after everything written so far."""
    cursor = None
    while True:
        status, _, page = client.json("GET", "/v1/events?limit=500" + (f"&after={cursor}" if cursor else ""))
        assert status == 200, page
        if not page["data"]:
            return cursor
        cursor = page["next"] or cursor


def feed_since(client, cursor):
    """Every event after `cursor`, in the feed's order."""
    events = []
    while True:
        status, _, page = client.json("GET", "/v1/events?limit=500" + (f"&after={cursor}" if cursor else ""))
        assert status == 200, page
        if not page["data"]:
            return events
        events.extend(page["data"])
        cursor = page["next"] or cursor


def under_load(stack, token, switch):
    """Runs the clients, calls `switch()` five seconds in, and keeps the load on until five
    seconds after the first success since the switch (or the bound). Returns the clients,
    when the switch began, and the index of the first simulator request of the run."""
    first_request = len(sim_requests(stack))
    stop = threading.Event()
    deadline = time.monotonic() + 120
    clients = [LoadClient(stack, token, VPS[i::CLIENTS], stop, deadline) for i in range(CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(5)
    switched_at = time.monotonic()
    switch()
    while time.monotonic() < switched_at + BOUND_SECONDS + 5:
        successes = [answered for c in clients for sent, answered, _, status, _ in list(c.answers)
                     if sent > switched_at and status in (200, 202)]
        if successes and time.monotonic() > min(successes) + 5:
            break
        time.sleep(0.2)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    assert not any(client.is_alive() for client in clients)
    return clients, switched_at, first_request


def check_answers(clients, switched_at, what):
    """Only 503 with Retry-After while the database switched; returns the time to the first
    success after the switch began."""
    answers = [answer for client in clients for answer in client.answers]
    after = sorted(answered for sent, answered, _, status, _ in answers if sent > switched_at and status in (200, 202))
    assert after, f"no command succeeded after the {what}"
    recovery = after[0] - switched_at
    statuses = collections.Counter(status for _, _, _, status, _ in answers)
    print(f"{what}: first success {recovery:.1f} s after it began (goal {GOAL_SECONDS} s); answers {dict(statuses)}")
    assert set(statuses) <= {200, 202, 503}, statuses
    assert all(retry_after for _, _, _, status, retry_after in answers if status == 503)
    assert recovery <= BOUND_SECONDS
    return statuses


def check_nothing_lost(stack, clients, first_request, feed_reader, cursor):
    """Every accepted operation settles with one final audit row of its acceptance and each
    of its state changes once in the feed; no restart reached Hostinger twice; an operation
    Hostinger performed is recorded as succeeded, and none it never received is."""
    open_operations, keys = wait_until_settled(stack, 60)
    assert (open_operations, keys) == (0, 0)
    accepted = {operation_id for client in clients for _, operation_id in client.accepted}
    assert len(accepted) >= CLIENTS
    ids = ", ".join(f"'{i}'" for i in accepted)
    rows = sql(stack, "SELECT o.id, o.state, o.correlation_id, (SELECT count(*) FROM audit_events a WHERE a.operation_id = o.id "
                      "AND a.kind = 'final' AND a.outcome = 'accepted') FROM operations o "
                      f"WHERE o.id IN ({ids})")
    operations = {row[0]: row[1:] for row in (line.split("|") for line in rows.splitlines())}
    assert set(operations) == accepted, "an operation a client was told about is missing"
    assert all(final == "1" for _, _, final in operations.values()), operations
    calls = [request for request in sim_requests(stack)[first_request:]
             if request["method"] == "POST" and request["path"].endswith("/restart")]
    by_correlation = collections.Counter(request["headers"].get("x-correlation-id") for request in calls)
    assert all(count == 1 for count in by_correlation.values()), by_correlation.most_common(3)
    correlations = {correlation: (operation_id, state) for operation_id, (state, correlation, _) in operations.items()}
    assert set(by_correlation) <= set(correlations), "a restart nobody was told about reached Hostinger"
    for correlation, (operation_id, state) in correlations.items():
        assert (state == "succeeded") == (correlation in by_correlation), (operation_id, state)
    states = collections.defaultdict(list)
    for event in feed_since(feed_reader, cursor):
        if event.get("operation_id") in accepted:
            states[event["operation_id"]].append(event["data"]["operation"]["state"])
    for operation_id, (state, _, _) in operations.items():
        seen = states[operation_id]
        assert seen and seen[0] == "accepted" and seen[-1] == state and len(seen) == len(set(seen)), (operation_id, seen)


def switch_under_load(stack, token, switch, what):
    """Runs the load while `switch(old primary)` changes the primary, then checks the answers
    and that nothing was lost; returns the answers by status."""
    cluster = stack.postgres
    reader = Client(stack, token)
    cursor = feed_end(reader)
    old_primary = cluster.primary()
    clients, switched_at, first_request = under_load(stack, token, lambda: switch(old_primary))
    statuses = check_answers(clients, switched_at, what)
    assert cluster.primary() != old_primary
    check_nothing_lost(stack, clients, first_request, reader, cursor)
    return statuses


@pytest.mark.slow
def test_a_planned_switchover_under_load_loses_nothing_and_answers_only_503(stack, load_token):
    switch_under_load(stack, load_token, lambda old_primary: stack.postgres.switchover(), "switchover")


@pytest.mark.slow
def test_killing_the_primary_under_load_loses_nothing_and_answers_only_503_meanwhile(stack, load_token):
    statuses = switch_under_load(stack, load_token, stack.postgres.kill_node, "failover")
    assert statuses[503] > 0, "the switch was not seen at all: did the kill happen?"
