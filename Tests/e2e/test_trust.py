"""Holes an outside review found on a running stack, each closed: a dry run that was not one,
a secret in an undeclared field stored for good, a NUL that left a request without its
audit row."""

import json
import uuid

import pytest

from vpsgate_e2e import admin_client, final_audit_rows, sim_requests, sql

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
    assert json.loads(raw)["type"].endswith(":malformed-request")
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
