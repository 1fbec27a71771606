"""Traces (docs/logs-and-metrics.md#traces): a command sent with a known `traceparent` is one
trace, exported over OTLP/HTTP protobuf to a collector (a tiny receiver here, decoding with
opentelemetry-proto), whose spans nest as the pipeline runs; Hostinger receives the
attempt's span id; the instance's log lines carry the trace id; no secret is exported."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from vpsgate_e2e import VM, admin_client, reset_sim, sim_requests, wait_operation


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


@pytest.fixture(scope="module")
def collector():
    receiver = Collector()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def stack(stack_factory, collector):
    return stack_factory("traces", extra_env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "vpsgate-e2e", "OTEL_BSP_SCHEDULE_DELAY": "100",
    })


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
