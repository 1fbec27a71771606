"""Traces (docs/logs-and-metrics.md#traces): a command sent with a known `traceparent` is one
trace, exported over OTLP/HTTP protobuf to a collector (a tiny receiver here, decoding with
opentelemetry-proto), whose spans nest as the pipeline runs; Hostinger receives the
attempt's span id; the instance's log lines carry the trace id; no secret is exported. The
background work on an operation (the reconciler's looks, the dispatch of an approved one,
webhook deliveries) is traced apart, each trace linked to the request's span. With export
off, log lines still carry the trace id Hostinger was sent."""

from __future__ import annotations

import http.server
import json
import secrets
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from vpsgate_e2e import VM, admin_client, new_key, reset_sim, sim_requests, sql, wait_operation, wait_operation_row


class Collector:
    """An OTLP/HTTP receiver on loopback: keeps every export's raw body and its spans."""

    def __init__(self):
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []
        self.spans: list = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    collector.bodies.append(body)
                    collector.content_types.append(f"{self.path} {self.headers.get('Content-Type')}")
                    for resource_spans in request.resource_spans:
                        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                        for scope_spans in resource_spans.scope_spans:
                            collector.spans += [(resource, span) for span in scope_spans.spans]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def trace(self, trace_id: str, until, timeout: float = 10):
        """The spans of `trace_id` (resource, span) once `until(spans)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                spans = [(r, s) for r, s in self.spans if s.trace_id.hex() == trace_id]
            if until([s for _, s in spans]) or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)

    def linked(self, trace_id: str, name: str, timeout: float = 15, until=bool):
        """The root spans named `name` (their own traces) linked to a span of `trace_id`, once
        `until(roots)` holds (some by default)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                roots = [s for _, s in self.spans if s.name == name and any(l.trace_id.hex() == trace_id for l in s.links)]
            if until(roots) or time.monotonic() > deadline:
                return roots
            time.sleep(0.05)

    def of_trace(self, trace_id: str) -> list:
        with self.lock:
            return [s for _, s in self.spans if s.trace_id.hex() == trace_id]


@pytest.fixture(scope="module")
def collector():
    receiver = Collector()
    yield receiver
    receiver.server.shutdown()


class WebhookReceiver:
    """An HTTPS receiver on 127.0.0.1 (the stack's certificate) answering 200; counts posts."""

    def __init__(self, stack):
        self.posts = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(stack.tls_dir / "server.crt", stack.tls_dir / "server.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture(scope="module")
def stack(stack_factory, collector):
    stack = stack_factory("traces", start=False, extra_env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "vpsgate-e2e", "OTEL_BSP_SCHEDULE_DELAY": "100",
        "VPSGATE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
    })
    stack.extra_env["VPSGATE_WEBHOOK_CA_FILE"] = str(stack.ca_file)
    stack.start()
    return stack


@pytest.fixture(scope="module")
def webhooks(stack):
    receiver = WebhookReceiver(stack)
    yield receiver
    receiver.server.shutdown()


def attributes(span) -> dict:
    values = {}
    for attribute in span.attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind)
    return values


def test_a_command_is_one_trace_continuing_the_callers(stack, collector):
    reset_sim(stack)
    client = admin_client(stack, "tracy")
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    canary = "Canary7Trace" + uuid.uuid4().hex[:10]
    status, _, operation = client.json("PUT", "/v1/vps/1001/root-password", {"password": canary}, key=str(uuid.uuid4()),
                                       headers={"traceparent": f"00-{trace_id}-{caller_span}-01"})
    assert status == 202, operation
    wait_operation(client, f"/v1/operations/{operation['id']}")

    spans = collector.trace(trace_id, lambda spans: any(s.kind == s.SPAN_KIND_SERVER for s in spans)
                            and any(s.name == "finish" for s in spans))
    by_name = {}
    for _, span in spans:
        by_name.setdefault(span.name, []).append(span)
    resources = [resource for resource, _ in spans]
    assert all(r["service.name"] == "vpsgate-e2e" for r in resources), resources
    assert set(collector.content_types) == {"/v1/traces application/x-protobuf"}

    # The server span continues the caller's; the stages are its children, each statement
    # and Hostinger attempt a child of its stage.
    # nginx's token check is a request to vpsgate of its own, in the same trace.
    servers = {attributes(s)["http.route"]: s for _, s in spans if s.kind == s.SPAN_KIND_SERVER}
    assert sorted(servers) == ["token-check", "vps.root_password.set"], [s.name for _, s in spans]
    server = servers["vps.root_password.set"]
    assert server.name == "PUT vps.root_password.set"
    assert servers["token-check"].parent_span_id.hex() == server.parent_span_id.hex() == caller_span
    assert attributes(server)["http.response.status_code"] == 202
    for stage in ("validate", "begin", "hostinger", "finish"):
        assert [s.parent_span_id for s in by_name[stage]] == [server.span_id], stage
    [begin_command] = by_name["begin_command"]
    assert begin_command.parent_span_id == by_name["begin"][0].span_id
    assert begin_command.kind == begin_command.SPAN_KIND_CLIENT
    assert attributes(begin_command)["db.system.name"] == "postgresql"
    [finish_command] = by_name["finish_command"]
    assert finish_command.parent_span_id == by_name["finish"][0].span_id
    [attempt] = by_name[f"PUT {VM}/{{id}}/root-password"]
    assert attempt.parent_span_id == by_name["hostinger"][0].span_id
    assert attributes(attempt) == {
        "http.request.method": "PUT", "url.template": f"{VM}/{{id}}/root-password",
        "vpsgate.hostinger.operation": "set_root_password", "http.response.status_code": 200,
    }
    for _, span in spans:
        assert span.start_time_unix_nano <= span.end_time_unix_nano
        if span.parent_span_id == server.span_id:
            assert server.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano <= server.end_time_unix_nano

    # Hostinger received the attempt's span as its parent.
    [received] = sim_requests(stack, "PUT", "/root-password")
    headers = {name.lower(): value for name, value in received["headers"].items()}
    assert headers["traceparent"] == f"00-{trace_id}-{attempt.span_id.hex()}-01"

    # The instance's log lines about the request carry the trace id and a span of it.
    lines = [json.loads(line) for index in (1, 2)
             for line in stack.log_path(f"vpsgate-{index}").read_text().splitlines() if trace_id in line]
    assert any(line["message"] == "command" for line in lines), lines
    span_ids = {s.span_id.hex() for _, s in spans}
    assert lines and all(line["trace_id"] == trace_id and line.get("span_id") in span_ids for line in lines), lines

    # No secret in any export: not the password, not the token, not the simulator's token.
    exported = b"".join(collector.bodies)
    for secret in (canary, client.token, stack.sim_token):
        assert secret.encode() not in exported


def test_a_request_without_traceparent_starts_a_trace_and_tells_its_id(stack, collector):
    client = admin_client(stack, "tess")
    status, headers, _ = client.request("GET", "/v1/vps/1001")
    assert status == 200
    correlation = headers["X-Request-ID"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with collector.lock:
            servers = [s for _, s in collector.spans
                       if s.kind == s.SPAN_KIND_SERVER and attributes(s).get("vpsgate.correlation_id") == correlation
                       and attributes(s)["http.route"] != "token-check"]
        if servers:
            break
        time.sleep(0.05)
    assert len(servers) == 1 and not servers[0].parent_span_id


# MARK: - Background work: traces of its own, linked to the request's

def traced_command(client, method, path, body, **kwargs):
    """Sends a command with a known traceparent; (trace id, caller's span, answer)."""
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    status, _, operation = client.json(method, path, body, key=new_key(),
                                       headers={"traceparent": f"00-{trace_id}-{caller_span}-01"}, **kwargs)
    assert status == 202, operation
    return trace_id, caller_span, operation


def server_span(collector, trace_id, route):
    spans = collector.trace(trace_id, lambda spans: any(s.kind == s.SPAN_KIND_SERVER and attributes(s)["http.route"] == route
                                                        for s in spans))
    [server] = [s for _, s in spans if s.kind == s.SPAN_KIND_SERVER and attributes(s)["http.route"] == route]
    return server


def assert_linked_root(root, server, trace_id):
    """`root` begins a trace of its own whose one link is the request's server span."""
    assert not root.parent_span_id and root.trace_id.hex() != trace_id
    [link] = root.links
    assert link.trace_id.hex() == trace_id and link.span_id == server.span_id
    assert link.flags & 0x301 == 0x301  # the linked span is remote (another time, maybe another instance), sampled


def test_the_reconciler_and_webhook_deliveries_trace_apart_linked_to_the_command(stack, collector, webhooks):
    reset_sim(stack, action_delay_ms=1500)
    client = admin_client(stack, "rhea")
    stack.grant("hook-reader", "1003", "viewer")
    stack.admin("webhook", "add", "--principal", "hook-reader", "--url", webhooks.url, "--events", "operation.*")
    trace_id, _, operation = traced_command(client, "POST", "/v1/vps/1003/restart", {})
    wait_operation_row(stack, operation["id"])
    server = server_span(collector, trace_id, "vps.restart")
    stored = sql(stack, f"SELECT traceparent FROM operations WHERE id = '{operation['id']}'")
    assert stored == f"00-{trace_id}-{server.span_id.hex()}-01"

    # The reconciler followed the action: each look its own trace, linked to the command's.
    looks = collector.linked(trace_id, "reconcile")
    assert looks, [s.name for _, s in collector.spans]
    for look in looks:
        assert_linked_root(look, server, trace_id)
        assert attributes(look)["vpsgate.operation.id"] == operation["id"]
    # Its Hostinger reads are children of the look, and Hostinger was told the read's span.
    reads = [span for look in looks for span in collector.of_trace(look.trace_id.hex()) if span.name.startswith("GET ")]
    assert reads and all(span.parent_span_id in {look.span_id for look in looks} for span in reads), reads
    received = set()
    for request in sim_requests(stack, "GET"):
        headers = {name.lower(): value for name, value in request["headers"].items()}
        received.add(headers.get("traceparent"))
    assert {f"00-{span.trace_id.hex()}-{span.span_id.hex()}-01" for span in reads} <= received

    # Each delivery of the operation's events is a trace linked to the command as well.
    deliveries = collector.linked(trace_id, "webhook delivery")
    assert deliveries and webhooks.posts
    for delivery in deliveries:
        assert_linked_root(delivery, server, trace_id)
        assert attributes(delivery)["vpsgate.operation.id"] == operation["id"]
        [post] = [s for s in collector.trace(delivery.trace_id.hex(), lambda spans: any(s.name == "POST" for s in spans))
                  if s[1].name == "POST"]
        assert post[1].parent_span_id == delivery.span_id and attributes(post[1])["http.response.status_code"] == 200
        assert not any("url" in key for key in attributes(post[1]))
    sql(stack, "UPDATE webhook_endpoints SET state = 'disabled'")


def test_an_approved_command_is_dispatched_in_a_trace_linked_to_the_request(stack, collector):
    reset_sim(stack)
    requester, approver = admin_client(stack, "ria"), admin_client(stack, "ava")
    stack.admin("policy", "set", "--subject", "vps.restart", "--vps", "1001", "--approvals", "1", "--actor", "test")
    try:
        trace_id, _, operation = traced_command(requester, "POST", "/v1/vps/1001/restart", {})
        assert operation["state"] == "awaiting_approval"
        status, _, _ = approver.json("POST", f"/v1/operations/{operation['id']}/approve",
                                     headers={"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"})
        assert status == 200
        wait_operation_row(stack, operation["id"])
    finally:
        sql(stack, "DELETE FROM approval_policies WHERE subject = 'vps.restart' AND vps_id = 1001")
    server = server_span(collector, trace_id, "vps.restart")
    [dispatch] = collector.linked(trace_id, "dispatch")
    assert_linked_root(dispatch, server, trace_id)
    assert attributes(dispatch) == {"vpsgate.operation.id": operation["id"], "vpsgate.command": "vps.restart"}
    # The restart Hostinger received was sent from the dispatch's trace, by a child span of it.
    spans = collector.trace(dispatch.trace_id.hex(), lambda spans: any(s.name.startswith("POST ") for s in spans))
    [attempt] = [s for _, s in spans if s.name == f"POST {VM}/{{id}}/restart"]
    assert attempt.parent_span_id == dispatch.span_id
    [sent] = sim_requests(stack, "POST", "/restart")
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert headers["traceparent"] == f"00-{dispatch.trace_id.hex()}-{attempt.span_id.hex()}-01"
    assert any(s.name == "dispatch_context" for _, s in spans), [s.name for _, s in spans]


def test_a_batchs_children_are_dispatched_in_traces_linked_to_the_batchs_request(stack, collector):
    reset_sim(stack)
    client = admin_client(stack, "bea")
    trace_id = secrets.token_hex(16)
    status, _, batch = client.json("POST", "/v1/batches", {"command": "vps.restart", "vps": [1001, 1003], "max_in_flight": 2},
                                   key=new_key(), headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert status == 202, batch
    spans = collector.trace(trace_id, lambda spans: any(s.kind == s.SPAN_KIND_SERVER and attributes(s)["http.route"] != "token-check"
                                                        for s in spans))
    [server] = [s for _, s in spans if s.kind == s.SPAN_KIND_SERVER and attributes(s)["http.route"] != "token-check"]
    assert sql(stack, f"SELECT traceparent FROM batches WHERE id = {batch['id']}") == f"00-{trace_id}-{server.span_id.hex()}-01"
    dispatches = collector.linked(trace_id, "dispatch", until=lambda roots: len(roots) == 2)
    assert len(dispatches) == 2, dispatches
    for dispatch in dispatches:
        assert_linked_root(dispatch, server, trace_id)
    children = sql(stack, f"SELECT o.id, o.traceparent FROM batch_children c JOIN operations o ON o.id = c.operation_id "
                          f"WHERE c.batch_id = {batch['id']}").splitlines()
    assert [child.split("|")[1] for child in children] == [f"00-{trace_id}-{server.span_id.hex()}-01"] * 2
    for child in children:
        wait_operation_row(stack, child.split("|")[0])  # the VPS free again for the next test


# MARK: - Metrics that sum over instances

def scrapes(stack):
    from fastcgi_client import fastcgi_get
    from prometheus_client.parser import text_string_to_metric_families
    bodies, samples = [], []
    for index in (1, 2):
        status, body = fastcgi_get(stack.socket_path(index), "/metrics")
        assert status == 200
        bodies.append(body)
        samples.append([s for family in text_string_to_metric_families(body.decode()) for s in family.samples])
    return bodies, samples


def test_database_wide_gauges_come_from_one_instance_and_sum_to_the_table(stack):
    import subprocess

    from vpsgate_e2e import sql
    deadline = time.monotonic() + 10
    while True:
        bodies, samples = scrapes(stack)
        held = [sum(s.value for s in instance if s.name == "vpsgate_metrics_lease_held") for instance in samples]
        if sorted(held) == [0, 1] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(held) == [0, 1], held
    operations = sum(s.value for instance in samples for s in instance if s.name == "vpsgate_operations")
    assert operations == int(sql(stack, "SELECT count(*) FROM operations")) > 0
    for name in ("vpsgate_operations", "vpsgate_audit_rows_unsealed", "vpsgate_event_feed_lag_seconds"):
        assert [any(s.name == name for s in instance) for instance in samples] == [h == 1 for h in held], name
    # Every instance says whether it reaches the database, and which build it runs.
    assert [sum(s.value for s in instance if s.name == "vpsgate_database_up") for instance in samples] == [1, 1]
    for instance in samples:
        [build] = [s for s in instance if s.name == "vpsgate_build_info"]
        assert build.value == 1 and build.labels["version"] and build.labels["commit"]
    for body in bodies:
        checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
        assert checked.returncode == 0 and not checked.stdout and not checked.stderr, checked.stdout + checked.stderr


# MARK: - Export off (last: it restarts the instances)

def test_with_export_off_log_lines_carry_the_trace_id_hostinger_was_sent(stack, collector):
    for index in (1, 2):
        stack.stop_instance(index)
        stack.instance_env_overrides[index] = {"OTEL_SDK_DISABLED": "true"}
        stack.start_instance(index)
    reset_sim(stack)
    exported = len(collector.spans)
    client = admin_client(stack, "otis")
    trace_id, caller_span, operation = traced_command(client, "POST", "/v1/vps/1001/restart", {})
    wait_operation(client, f"/v1/operations/{operation['id']}")

    # Hostinger was sent the request's trace, from vpsgate's hop (not the caller's span).
    [sent] = sim_requests(stack, "POST", "/restart")
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    version, sent_trace, sent_span, _ = headers["traceparent"].split("-")
    assert (version, sent_trace) == ("00", trace_id) and sent_span != caller_span
    # The request's lines and the Hostinger client's carry that trace and that span.
    lines = [json.loads(line) for index in (1, 2)
             for line in stack.log_path(f"vpsgate-{index}").read_text().splitlines() if trace_id in line]
    assert lines and all(line["trace_id"] == trace_id and len(line["span_id"]) == 16 for line in lines), lines
    by_message = {line["message"]: line for line in lines}
    assert {"command", "hostinger attempt"} <= set(by_message), lines
    for message in ("command", "hostinger attempt"):
        assert by_message[message]["span_id"] == sent_span, by_message[message]
    assert by_message["hostinger attempt"]["correlation_id"] == by_message["command"]["correlation_id"]
    time.sleep(0.3)  # two schedule delays: anything exported would have arrived
    assert len(collector.spans) == exported
