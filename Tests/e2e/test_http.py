"""The HTTP surface of the skeleton, through nginx with TLS and two vpsgate instances."""

import json
import os
import re
import ssl
import stat
import urllib.error

import pytest

from vpsgate_e2e import http_request

PROBLEM_TYPE = re.compile(r"^https://vpsgate\.dev/docs/problems#[a-z-]+$")  # the default VPSGATE_PROBLEM_BASE_URL


def test_healthz_and_readyz_answer_over_verified_tls(stack):
    for path, expected in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
        status, headers, body = http_request(stack, "GET", path)
        assert status == 200, body
        assert headers["Content-Type"] == "application/json"
        answer = json.loads(body)
        assert {k: v for k, v in answer.items() if k != "version"} == expected
        assert path != "/healthz" or answer["version"], "liveness names the version (docs/getting-started.md#versions)"


def test_tls_certificate_is_checked_against_the_generated_ca(stack):
    untrusting = ssl.create_default_context()  # the system store does not hold the local CA
    with pytest.raises(urllib.error.URLError) as failure:
        http_request(stack, "GET", "/healthz", context=untrusting, timeout=5)
    assert isinstance(failure.value.reason, ssl.SSLCertVerificationError)


@pytest.mark.parametrize("request_id", ["abc", "trace-1.2_3:4", "X" * 128])
def test_valid_request_id_is_echoed_unchanged(stack, request_id):
    status, headers, _ = http_request(stack, "GET", "/healthz", headers={"X-Request-ID": request_id})
    assert status == 200
    assert headers["X-Request-ID"] == request_id


@pytest.mark.parametrize("request_id", ["X" * 129, "has space", "semi;colon", "slash/", "quote\"", "ümlaut".encode().decode("latin-1")])
def test_invalid_request_id_is_replaced_by_a_generated_one(stack, request_id):
    status, headers, _ = http_request(stack, "GET", "/healthz", headers={"X-Request-ID": request_id})
    assert status == 200
    assert headers["X-Request-ID"] != request_id
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])


def test_absent_request_id_is_generated_and_unique(stack):
    ids = {http_request(stack, "GET", "/healthz")[1]["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_unknown_path_is_a_problem_with_the_correlation_id(stack):
    status, headers, body = http_request(stack, "GET", "/nothing/here", headers={"X-Request-ID": "corr-404"})
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert PROBLEM_TYPE.match(problem["type"])
    assert problem["type"].endswith("#not-found")
    assert problem["status"] == 404
    assert problem["correlation_id"] == "corr-404" == headers["X-Request-ID"]
    assert problem["instance"] == "/nothing/here"


def test_body_over_vpsgate_limit_is_413_problem(stack):
    status, headers, body = http_request(stack, "POST", "/anything", b"x" * (64 * 1024 + 1),
                                 {"Content-Type": "application/json", "X-Request-ID": "big-1"})
    assert status == 413
    problem = json.loads(body)
    assert problem["type"].endswith("#payload-too-large")
    assert problem["correlation_id"] == "big-1"
    # A body at the limit is read and routed normally (here: to a 404).
    status, _, _ = http_request(stack, "POST", "/anything", b"x" * (64 * 1024), {"Content-Type": "application/json"})
    assert status == 404


def test_body_over_nginx_limit_is_413_problem_too(stack):
    status, headers, body = http_request(stack, "POST", "/anything", b"x" * (2 * 1024 * 1024), {"X-Request-ID": "huge-1"})
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"].endswith("#payload-too-large")
    assert problem["correlation_id"] == "huge-1"


def test_wrong_method_on_health_is_405(stack):
    status, headers, body = http_request(stack, "POST", "/healthz", b"")
    assert status == 405
    assert json.loads(body)["type"].endswith("#method-not-allowed")
    assert headers["Allow"] == "GET, HEAD"


def test_fastcgi_sockets_are_closed_to_other_users(stack):
    for index in (1, 2):
        mode = os.stat(stack.socket_path(index)).st_mode
        assert stat.S_ISSOCK(mode)
        assert mode & 0o007 == 0, oct(mode)
        assert mode & 0o777 == 0o660
