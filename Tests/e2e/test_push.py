"""Completion push (docs/design.md#completion-push): waiting reads woken by LISTEN/NOTIFY, the event feed
(every state change once, in order, filtered by grants, 410 past retention) and webhooks
per Standard Webhooks, verified with the `standardwebhooks` package from PyPI (a verifier
vpsgate's authors did not write), retried, disabled on 410, delivered at least once across
instance kills, never to an address that is not allowed."""

import http.server
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import standardwebhooks

from fastcgi_client import fastcgi_get
from vpsgate_e2e import Client, new_key, sql, wait_operation_row

FIRST_VPS = 2101
VPS_COUNT = 40  # the feed test's VPS
OTHER = FIRST_VPS + VPS_COUNT  # the other tests' VPS
TEST_HOST = "rebind.vpsgate.test"
CONSOLE = "https://gate.example.com/console"  # VPSGATE_CONSOLE_URL: webhooks link each operation's page


@pytest.fixture(scope="module")
def stack(stack_factory):
    # Waiting places: 2 per instance (of 16 workers), so the bound is easy to reach. Webhooks
    # may reach loopback's 127.0.0.1 only (the rebinding test points a name at 127.0.0.2).
    stack = stack_factory("push", start=False, extra_env={
        "VPSGATE_MAX_WAITERS": "2",
        "VPSGATE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
        "VPSGATE_WEBHOOK_RETRY_SCHEDULE": "300ms,600ms,900ms",
        "VPSGATE_WEBHOOK_TIMEOUT_MS": "3000",
        "VPSGATE_CONSOLE_URL": CONSOLE,
    })
    stack.extra_env["VPSGATE_WEBHOOK_CA_FILE"] = str(stack.ca_file)
    stack.start()
    for vps in range(FIRST_VPS, OTHER + 20):
        stack.sim("POST", "/__sim/vms", {"id": vps})
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    return stack


@pytest.fixture(scope="module")
def ops(stack):
    """An operator on every VPS."""
    stack.grant("otto", "*", "operator")
    return Client(stack, stack.create_token("otto"))


@pytest.fixture(autouse=True)
def quiet(stack):
    stack.sim("DELETE", "/__sim/faults")
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 300})
    yield


def restart(client, vps):
    status, _, body = client.json("POST", f"/v1/vps/{vps}/restart", {}, key=new_key())
    assert status == 202, body
    return body


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# MARK: - Wait

def test_a_waiting_read_answers_within_300_ms_of_the_operation_becoming_terminal(stack, ops):
    lags = []
    for n in range(20):
        vps = FIRST_VPS + n
        operation = restart(ops, vps)
        started = time.monotonic()
        status, _, waited = ops.json("GET", f"/v1/operations/{operation['id']}?wait=30")
        answered = time.time()
        assert status == 200 and waited["state"] == "succeeded", waited
        assert time.monotonic() - started < 30
        row = wait_operation_row(stack, operation["id"])
        lags.append(answered - parse_time(row["completed_at"]))
    lags.sort()
    print(f"wait: answered after the operation became terminal: p50 {statistics.median(lags) * 1000:.0f} ms, "
          f"max {lags[-1] * 1000:.0f} ms over {len(lags)} operations")
    assert lags[-1] < 0.3, lags


def test_a_wait_answers_after_its_seconds_with_the_state_then(stack, ops):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 20_000})
    operation = restart(ops, OTHER + 1)
    started = time.monotonic()
    status, _, waited = ops.json("GET", f"/v1/operations/{operation['id']}?wait=2")
    took = time.monotonic() - started
    assert status == 200 and waited["state"] not in ("succeeded", "failed", "cancelled")
    assert 1.9 <= took < 4, took


def test_past_the_waiting_places_a_wait_answers_at_once_and_other_routes_keep_answering(stack, ops):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 30_000})
    operation = restart(ops, OTHER + 2)
    path = f"/v1/operations/{operation['id']}?wait=10"
    # Both instances' places (2 each) taken by waiting readers.
    holders = [threading.Thread(target=ops.json, args=("GET", path)) for _ in range(4 * 2)]
    for thread in holders:
        thread.start()
    time.sleep(1.5)
    try:
        refused = 0
        for _ in range(4):
            started = time.monotonic()
            status, head, body = ops.json("GET", path)
            assert status == 200 and body["id"] == operation["id"]
            if head.get("Retry-After"):
                refused += 1
                assert time.monotonic() - started < 1.0
        assert refused >= 1, "no wait was refused past VPSGATE_MAX_WAITERS"
        started = time.monotonic()
        status, _, _ = ops.json("GET", "/v1/operations?limit=5")
        assert status == 200 and time.monotonic() - started < 1.0
        status, _, _ = ops.json("GET", f"/v1/vps/{FIRST_VPS}")
        assert status == 200
    finally:
        for thread in holders:
            thread.join(timeout=15)
    status, metrics = fastcgi_get(stack.socket_path(1), "/metrics")
    assert status == 200 and "vpsgate_waiting_requests " in metrics.decode()


def test_wait_takes_0_to_50_seconds(stack, ops):
    operation = restart(ops, OTHER + 3)
    for bad in ("51", "-1", "abc", "1.5", "999"):
        status, _, problem = ops.json("GET", f"/v1/operations/{operation['id']}?wait={bad}")
        assert status == 422 and "wait" in problem["errors"], (bad, problem)


# MARK: - Feed

def read_feed(client, cursor=None, limit=37, wait=0):
    query = [f"limit={limit}"] + ([f"after={cursor}"] if cursor else []) + ([f"wait={wait}"] if wait else [])
    status, _, page = client.json("GET", "/v1/events?" + "&".join(query))
    assert status == 200, page
    return page


def test_the_feed_holds_every_state_change_of_200_operations_once_in_order_for_readable_vps(stack, ops):
    readable = list(range(FIRST_VPS, FIRST_VPS + 20))
    for vps in readable:
        stack.grant("rita", str(vps), "viewer")
    rita = Client(stack, stack.create_token("rita"))
    # Start from the end of what is there now.
    cursor = None
    while True:
        page = read_feed(rita, cursor, limit=500)
        cursor = page["next"] or cursor
        if not page["data"]:
            break
    start = cursor
    seen = []
    done = threading.Event()

    def reader():
        nonlocal cursor
        while not done.is_set():
            page = read_feed(rita, cursor, wait=1)
            seen.extend(page["data"])
            cursor = page["next"] or cursor

    thread = threading.Thread(target=reader)
    thread.start()
    operations = []
    try:
        # 200 operations over 40 VPS, 20 of them readable by rita; the reader pages while
        # they are written.
        for round_ in range(5):
            for vps in range(FIRST_VPS, FIRST_VPS + VPS_COUNT):
                status, _, body = ops.json("POST", f"/v1/vps/{vps}/restart", {}, key=new_key())
                if status == 409 and round_:  # the previous round's restart still running
                    wait_operation_row(stack, operations[-VPS_COUNT]["id"])
                    status, _, body = ops.json("POST", f"/v1/vps/{vps}/restart", {}, key=new_key())
                assert status == 202, body
                operations.append(body)
        for operation in operations:
            wait_operation_row(stack, operation["id"])
        time.sleep(2)
    finally:
        done.set()
        thread.join(timeout=30)
    # Drain what is left.
    while True:
        page = read_feed(rita, cursor, limit=500)
        seen.extend(page["data"])
        cursor = page["next"] or cursor
        if not page["data"]:
            break

    assert len(operations) == 200
    ids = [event["id"] for event in seen]
    assert len(ids) == len(set(ids)), "an event was returned twice"
    assert all(event["vps_id"] in readable for event in seen), "an event on a VPS rita cannot read"
    # Exactly the database's events for those VPS since the start cursor, in the feed's order.
    xid, last = (int(part, 16) for part in start.split(".")[1:]) if start else (0, 0)
    expected = sql(stack, f"""SELECT string_agg('evt_' || id, ',' ORDER BY xid, id) FROM events
                              WHERE (xid, id) > ('{xid}'::xid8, {last}) AND vps_id BETWEEN {readable[0]} AND {readable[-1]}""").split(",")
    assert ids == expected
    # Per operation: created, then each state change, ending terminal.
    mine = [o for o in operations if o["vps_id"] in readable]
    assert len(mine) == 100
    by_operation = {}
    for event in seen:
        by_operation.setdefault(event["operation_id"], []).append(event)
    for operation in mine:
        events = by_operation[operation["id"]]
        states = [e["data"]["operation"]["state"] for e in events]
        assert [e["type"] for e in events] == [f"operation.{s}" for s in states]
        assert states[0] == "accepted" and states[-1] == "succeeded", states
        assert all(e["data"]["previous_state"] == p for e, p in zip(events[1:], states)), states


def test_the_feed_refuses_a_cursor_it_did_not_give(stack, ops):
    for bad in ("abc", "c1.zz.1", "c2.1.1", "c1.1", "c1.-1.1", "c1." + "f" * 17 + ".1"):
        status, _, problem = ops.json("GET", f"/v1/events?after={bad}")
        assert status == 422 and "after" in problem["errors"], (bad, problem)
    for bad in ("0", "501", "x"):
        status, _, problem = ops.json("GET", f"/v1/events?limit={bad}")
        assert status == 422 and "limit" in problem["errors"]


def test_an_empty_feed_waits_for_the_next_event(stack, ops):
    vps = OTHER + 5
    stack.grant("wendy", str(vps), "viewer")
    wendy = Client(stack, stack.create_token("wendy"))
    cursor = None
    while True:
        page = read_feed(wendy, cursor, limit=500)
        cursor = page["next"] or cursor
        if not page["data"]:
            break
    started = time.monotonic()
    timer = threading.Timer(0.5, restart, args=(ops, vps))
    timer.start()
    page = read_feed(wendy, cursor, wait=10)
    took = time.monotonic() - started
    timer.join()
    assert page["data"] and page["data"][0]["type"] == "operation.accepted" and page["data"][0]["vps_id"] == vps
    assert 0.4 <= took < 3, took


def feed_lag(stack):
    """vpsgate_event_feed_lag_seconds as the instance that exports the database-wide gauges
    (the metrics lease's holder) shows it."""
    lines = []
    for index in (1, 2):
        status, metrics = fastcgi_get(stack.socket_path(index), "/metrics")
        assert status == 200
        lines += [line for line in metrics.decode().splitlines() if line.startswith("vpsgate_event_feed_lag_seconds ")]
    assert len(lines) == 1, lines
    return float(lines[0].split()[-1])


def read_events_calls(stack):
    """Calls of read_events the server has counted (track_functions), every instance's."""
    return int(stack.postgres.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'read_events'",
                                   url=stack.postgres.owner_url))


def test_a_transaction_left_open_shows_as_feed_lag_and_waiting_readers_back_off(stack, ops):
    """A session idle in a transaction (psql, here) holds the whole feed back: the events
    written after it started are not shown until it ends. The lag metric says so, a reader
    waiting meanwhile reads the database a handful of times, not every 20 ms, and sees the
    events within about a second of the transaction's end."""
    vps = OTHER + 17
    cursor = None
    while True:
        page = read_feed(ops, cursor, limit=500)
        cursor = page["next"] or cursor
        if not page["data"]:
            break
    stack.postgres.psql("ALTER SYSTEM SET track_functions = 'pl'")
    stack.postgres.psql("SELECT pg_reload_conf()")
    holder = subprocess.Popen([str(stack.postgres.bindir / "psql"), stack.postgres.owner_url, "-qAtX"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                              env=dict(os.environ, PGAPPNAME="feed-holder"))
    try:
        holder.stdin.write("BEGIN;\nSELECT pg_current_xact_id();\n")
        holder.stdin.flush()
        # Idle in a transaction that holds a transaction id: what pg_stat_activity shows of it.
        wait_for(lambda: sql(stack, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'feed-holder' "
                                    "AND state = 'idle in transaction' AND backend_xid IS NOT NULL") == "1", 10, "no holder")
        operation = restart(ops, vps)
        wait_operation_row(stack, operation["id"])  # committed, and still not in the feed
        time.sleep(1)
        assert feed_lag(stack) >= 1
        calls = read_events_calls(stack)
        started = time.monotonic()
        assert read_feed(ops, cursor, wait=6)["data"] == []
        assert time.monotonic() - started >= 5.5
        answer = {}

        def waiting():
            answer["page"] = read_feed(ops, cursor, wait=20)
            answer["at"] = time.monotonic()

        reader = threading.Thread(target=waiting)
        reader.start()
        time.sleep(4)
        assert "page" not in answer
        holder.stdin.write("ROLLBACK;\n")
        holder.stdin.flush()
        released = time.monotonic()
        reader.join(timeout=20)
        assert answer["page"]["data"] and answer["page"]["data"][0]["vps_id"] == vps
        assert answer["at"] - released < 2, answer["at"] - released
        assert feed_lag(stack) < 1
        # Ten seconds of waiting: every 20 ms would be ~500 reads; backing off to a second, ~20.
        time.sleep(11)  # idle backends report their counts within 10 s
        reads = read_events_calls(stack) - calls
        print(f"reads of the feed in 10 s of waiting while held back: {reads}")
        assert reads <= 60, f"{reads} reads of the feed in 10 s of waiting"
    finally:
        if holder.poll() is None:
            holder.stdin.close()
            holder.wait(timeout=10)
        stack.postgres.psql("ALTER SYSTEM RESET track_functions")
        stack.postgres.psql("SELECT pg_reload_conf()")


def test_an_expired_cursor_answers_410(stack_factory):
    short = stack_factory("push-retention", extra_env={"VPSGATE_EVENT_RETENTION": "3s"})
    short.sim("POST", "/__sim/config", {"action_delay_ms": 100})
    short.grant("otto", "*", "operator")
    client = Client(short, short.create_token("otto"))
    operation = restart(client, 1001)
    wait_operation_row(short, operation["id"])
    page = read_feed(client, limit=1)
    cursor = page["next"]
    assert page["data"] and cursor
    deadline = time.monotonic() + 20
    while int(sql(short, "SELECT count(*) FROM events")) and time.monotonic() < deadline:
        time.sleep(0.5)
    status, _, problem = client.json("GET", f"/v1/events?after={cursor}")
    assert status == 410 and problem["type"].endswith("#cursor-expired"), problem
    # Without a cursor the feed starts again, from what is kept.
    status, _, page = client.json("GET", "/v1/events")
    assert status == 200 and page["data"] == []


# MARK: - Webhooks

class Receiver:
    """An HTTPS receiver on 127.0.0.1 (the stack's certificate): records every request; per
    path, answers 200 (`/ok`), 500 three times per webhook-id then 200 (`/flaky`), or 410
    (`/gone`)."""

    def __init__(self, stack, host="127.0.0.1"):
        self.requests = []
        self.failures = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((self.path, dict(self.headers), body, self.client_address[0]))
                    status = 200
                    if self.path.startswith("/flaky"):
                        seen = receiver.failures.get(self.headers["webhook-id"], 0)
                        if seen < 3:
                            receiver.failures[self.headers["webhook-id"]] = seen + 1
                            status = 500
                    elif self.path.startswith("/gone"):
                        status = 410
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(stack.tls_dir / "server.crt", stack.tls_dir / "server.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path, host="127.0.0.1"):
        return f"https://{host}:{self.port}{path}"

    def received(self, prefix):
        with self.lock:
            return [r for r in self.requests if r[0].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver(stack):
    receiver = Receiver(stack)
    yield receiver
    receiver.close()


def add_webhook(stack, principal, url, *extra):
    result = stack.admin("webhook", "add", "--principal", principal, "--url", url, *extra)
    lines = result.stdout.splitlines()
    endpoint = int(lines[0].split()[1])
    secret = lines[1].split()[-1]
    assert secret.startswith("whsec_")
    return endpoint, secret


def verify(secret, request):
    """The body as the reference verifier checked it (raises when the signature is wrong)."""
    _, headers, body, _ = request
    lower = {k.lower(): v for k, v in headers.items()}
    return standardwebhooks.Webhook(secret).verify(body, lower)


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


def test_webhooks_are_signed_per_standard_webhooks_and_carry_only_what_the_principal_may_read(stack, ops, receiver):
    mine, other = OTHER + 11, OTHER + 12
    stack.grant("hook-ok", str(mine), "viewer")
    endpoint, secret = add_webhook(stack, "hook-ok", receiver.url("/ok"), "--events", "operation.*")
    first = restart(ops, mine)
    second = restart(ops, other)
    wait_operation_row(stack, first["id"])
    wait_operation_row(stack, second["id"])
    wait_for(lambda: any(json.loads(r[2])["type"] == "operation.succeeded" for r in receiver.received("/ok")), 10,
             "the succeeded event was not delivered")
    received = receiver.received("/ok")
    payloads = [verify(secret, r) for r in received]
    assert all(p["vps_id"] == mine for p in payloads), "a delivery about a VPS the principal cannot read"
    assert [p["data"]["operation"]["state"] for p in payloads] == ["accepted", "running", "succeeded"] or \
        {p["data"]["operation"]["state"] for p in payloads} >= {"accepted", "succeeded"}
    for _, headers, body, _ in received:
        assert headers["webhook-id"] == json.loads(body)["id"]
    assert all(p["console_url"] == f"{CONSOLE}/operations/{p['operation_id']}" for p in payloads), payloads
    # A wrong secret does not verify: the check above can fail.
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + "A" * 43 + "=").verify(received[0][2], {k.lower(): v for k, v in received[0][1].items()})
    # The secret is stored sealed, never in clear, and kept out of the audit trail.
    raw = secret.removeprefix("whsec_")
    assert raw not in sql(stack, f"SELECT encode(sealed_secret, 'base64') FROM webhook_endpoints WHERE id = {endpoint}")
    assert raw not in sql(stack, "SELECT string_agg(request_params::text, ' ') FROM audit_events WHERE command LIKE 'admin.webhook%'")
    assert sql(stack, f"SELECT count(*) FROM audit_events WHERE command = 'admin.webhook.add' AND request_params ->> 'id' = '{endpoint}'") == "1"
    stack.admin("webhook", "remove", str(endpoint))


def test_a_receiver_failing_three_times_gets_the_event_again_with_the_same_webhook_id(stack, ops, receiver):
    vps = OTHER + 13
    stack.grant("hook-flaky", str(vps), "viewer")
    endpoint, secret = add_webhook(stack, "hook-flaky", receiver.url("/flaky"), "--events", "operation.succeeded")
    operation = restart(ops, vps)
    wait_operation_row(stack, operation["id"])
    wait_for(lambda: len(receiver.received("/flaky")) >= 4, 20, "the flaky receiver was not retried until it answered 200")
    attempts = receiver.received("/flaky")
    assert len(attempts) == 4
    assert len({r[1]["webhook-id"] for r in attempts}) == 1
    assert all(verify(secret, r)["operation_id"] == operation["id"] for r in attempts)
    row = sql(stack, f"SELECT state || ' ' || attempts FROM webhook_deliveries WHERE endpoint_id = {endpoint}")
    assert row == "delivered 4"
    stack.admin("webhook", "remove", str(endpoint))


def test_a_receiver_answering_410_disables_its_endpoint(stack, ops, receiver):
    vps = OTHER + 14
    stack.grant("hook-gone", str(vps), "viewer")
    endpoint, _ = add_webhook(stack, "hook-gone", receiver.url("/gone"), "--events", "operation.accepted")
    operation = restart(ops, vps)
    wait_operation_row(stack, operation["id"])
    wait_for(lambda: sql(stack, f"SELECT state FROM webhook_endpoints WHERE id = {endpoint}") == "disabled", 10,
             "a 410 did not disable the endpoint")
    sent = len(receiver.received("/gone"))
    assert sent == 1
    later = restart(ops, vps)
    wait_operation_row(stack, later["id"])
    time.sleep(1.5)
    assert len(receiver.received("/gone")) == sent, "a disabled endpoint was sent to"
    assert "disabled" in stack.admin("webhook", "list").stdout
    assert sql(stack, f"SELECT count(*) FROM audit_events WHERE command = 'admin.webhook.disable' AND request_params ->> 'id' = '{endpoint}'") == "1"


def test_redelivery_sends_again_with_the_same_webhook_id(stack, ops, receiver):
    vps = OTHER + 15
    stack.grant("hook-again", str(vps), "viewer")
    endpoint, secret = add_webhook(stack, "hook-again", receiver.url("/again"), "--events", "operation.succeeded")
    operation = restart(ops, vps)
    wait_operation_row(stack, operation["id"])
    wait_for(lambda: len(receiver.received("/again")) == 1, 10, "not delivered")
    delivery = sql(stack, f"SELECT id FROM webhook_deliveries WHERE endpoint_id = {endpoint}")
    assert "scheduled again" in stack.admin("webhook", "redeliver", delivery).stdout
    wait_for(lambda: len(receiver.received("/again")) == 2, 10, "not delivered again")
    first, second = receiver.received("/again")
    assert first[1]["webhook-id"] == second[1]["webhook-id"]
    verify(secret, second)
    listing = stack.admin("webhook", "deliveries", "--endpoint", str(endpoint)).stdout
    assert "delivered" in listing and "evt_" in listing
    stack.admin("webhook", "remove", str(endpoint))
    # Deliveries by outcome and their lag, summed over the instances (each counts its own).
    delivered = lag = 0.0
    for index in range(1, stack.instance_count + 1):
        status, metrics = fastcgi_get(stack.socket_path(index), "/metrics")
        assert status == 200
        for line in metrics.decode().splitlines():
            if line.startswith('vpsgate_webhook_deliveries_total{outcome="delivered"}'):
                delivered += float(line.split()[-1])
            if line.startswith("vpsgate_webhook_delivery_lag_seconds_count"):
                lag += float(line.split()[-1])
    assert delivered >= 2 and lag == delivered


@pytest.mark.slow
def test_every_event_is_delivered_at_least_once_across_20_instance_kills(stack, ops, receiver):
    stack.grant("hook-all", "*", "viewer")
    endpoint, secret = add_webhook(stack, "hook-all", receiver.url("/all"))
    start_event = int(sql(stack, "SELECT coalesce(max(id), 0) FROM events"))
    stop = threading.Event()
    errors = []

    def load():
        vps_cycle = list(range(FIRST_VPS, FIRST_VPS + 30))
        index = 0
        while not stop.is_set():
            vps = vps_cycle[index % len(vps_cycle)]
            index += 1
            try:
                ops.request("POST", f"/v1/vps/{vps}/restart", {}, key=new_key())
            except Exception as error:  # noqa: BLE001 - an instance being killed may drop a connection
                errors.append(error)
            time.sleep(0.02)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        for kill in range(20):
            index = 1 + kill % stack.instance_count
            time.sleep(0.7)
            stack.stop_instance(index, sig=signal.SIGKILL)
            stack.start_instance(index)
    finally:
        stop.set()
        loader.join(timeout=30)
    # Every operation settles, then every event owed to the endpoint is delivered.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and int(sql(stack, "SELECT count(*) FROM operations WHERE state NOT IN ('succeeded', 'failed', 'cancelled')")):
        time.sleep(0.5)
    expected = set(sql(stack, f"SELECT string_agg('evt_' || id, ',') FROM events WHERE id > {start_event}").split(","))
    assert len(expected) > 50
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = {r[1]["webhook-id"] for r in receiver.received("/all")}
        if expected <= got:
            break
        time.sleep(0.5)
    received = receiver.received("/all")
    got = {}
    for request in received:
        body = verify(secret, request)
        assert body["id"] == request[1]["webhook-id"]
        got.setdefault(body["id"], set()).add(json.dumps(body, sort_keys=True))
    missing = expected - set(got)
    assert not missing, f"{len(missing)} events never delivered, e.g. {sorted(missing)[:5]}"
    # A duplicate is the same message: the same webhook-id carries the same body.
    assert all(len(bodies) == 1 for bodies in got.values())
    duplicates = len(received) - len(got)
    print(f"webhooks across 20 kills: {len(expected)} events, {len(received)} deliveries, {duplicates} duplicates")
    assert sql(stack, f"SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = {endpoint} AND state <> 'delivered'") == "0"
    stack.admin("webhook", "remove", str(endpoint))


# MARK: - Where webhooks may go

@pytest.mark.parametrize("url,reason", [
    ("http://127.0.0.1:8443/x", "https://"),
    ("https://10.0.0.5/x", "private"),
    ("https://192.168.1.1/x", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://127.0.0.2/x", "loopback"),
    ("https://[::1]/x", "loopback"),
    ("https://[fd00::1]/x", "unique local"),
    ("https://[::ffff:10.0.0.1]/x", "IPv4-mapped"),
    ("https://user:pw@example.com/x", "credentials"),
    ("https://0.0.0.0/x", "unspecified"),
    ("https://[fe80::1]/x", "link-local"),
    # IPv6 forms carrying a loopback IPv4 address (127.0.0.1 is allow-listed here, but only
    # as itself or IPv4-mapped: these go through a relay or translator).
    ("https://[2002:7f00:1::1]/x", "6to4"),
    ("https://[::127.0.0.1]/x", "IPv4-compatible"),
    ("https://[64:ff9b:1::7f00:1]/x", "local-use NAT64"),
    ("https://[64:ff9b::7f00:1]/x", "NAT64"),
    ("https://[2001:0:808:808::80ff:fffe]/x", "Teredo"),
])
def test_a_url_that_is_not_https_to_a_public_address_is_refused_at_add(stack, url, reason):
    stack.grant("hook-bad", "*", "viewer")
    result = stack.admin("webhook", "add", "--principal", "hook-bad", "--url", url, check=False)
    assert result.returncode != 0 and reason in result.stderr, result.stderr
    assert sql(stack, f"SELECT count(*) FROM webhook_endpoints WHERE url = '{url}'") == "0"


def test_a_name_rebound_to_a_private_address_is_refused_at_delivery(stack, ops):
    """The name resolves to 127.0.0.1 (allowed) at `webhook add`, then to 127.0.0.2 (not
    allowed): the delivery is refused before any connection, and no request reaches the
    receiver listening there."""
    hosts = Path("/etc/hosts")
    original = hosts.read_text()
    there = Receiver(stack, host="127.0.0.2")
    try:
        hosts.write_text(original + f"\n127.0.0.1 {TEST_HOST}\n")
        vps = OTHER + 16
        stack.grant("hook-rebind", str(vps), "viewer")
        endpoint, _ = add_webhook(stack, "hook-rebind", there.url("/rebind", host=TEST_HOST), "--events", "operation.accepted")
        hosts.write_text(original + f"\n127.0.0.2 {TEST_HOST}\n")
        operation = restart(ops, vps)
        wait_for(lambda: sql(stack, f"SELECT coalesce(last_error, '') FROM webhook_deliveries WHERE endpoint_id = {endpoint}") != "", 10,
                 "no delivery attempt")
        error = sql(stack, f"SELECT last_error FROM webhook_deliveries WHERE endpoint_id = {endpoint}")
        assert "refused" in error and "127.0.0.2" in error, error
        time.sleep(1)
        assert there.received("/") == [], "the rebound address was connected to"
        wait_operation_row(stack, operation["id"])
        stack.admin("webhook", "remove", str(endpoint))
    finally:
        hosts.write_text(original)
        there.close()
