"""The production nginx configuration (nginx/vpsgate.conf) as shipped, in front of two
instances on TCP: each authentication variant, rate limits, the internal listener, TLS,
the token-check cache, and what reaches vpsgate when a client forges identity."""

import concurrent.futures
import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vpsgate_e2e import PROBLEM_BASE, http_request, problem_code
from vpsgate_stack import issue_client_certificate, wait_until

# The stand-in OAuth2/OIDC endpoint's tokens: bearer ⇒ (status, subject header or None).
OIDC_TOKENS = {
    "oidc-good-token-1": (202, "oidc-carol"),
    "oidc-bad-subject": (200, "carol smith"),  # active, but no usable principal: fail closed
}


class Introspection(BaseHTTPRequestHandler):
    """auth_request's contract: 2xx and X-Auth-Request-User for an active token, else 401."""
    seen: list[dict[str, str]] = []

    def do_GET(self):
        Introspection.seen.append({k.lower(): v for k, v in self.headers.items()})
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        status, subject = OIDC_TOKENS.get(token, (401, None))
        self.send_response(status)
        if subject:
            self.send_header("X-Auth-Request-User", subject)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def introspection():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Introspection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/oauth2/auth"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def prod(introspection, stack_factory):
    stack = stack_factory("prod", production=True, tcp=True, oidc_url=introspection)
    stack.grant("prod-alice", "*", "admin")
    stack.grant("prod-bob", "*", "viewer")
    stack.grant("oidc-carol", "1001", "viewer")
    stack.grant("CN=mtls-dave,O=vpsgate-clients", "1001", "viewer")
    stack.tokens = {name: stack.create_token(name) for name in ("prod-alice", "prod-bob")}
    return stack


def use_variant(stack, auth: str, token_cache: bool = False, force: bool = False) -> None:
    """Re-renders nginx for another variant and restarts it; vpsgate and PostgreSQL stay."""
    if (stack.auth, stack.token_cache) == (auth, token_cache) and not force:
        return
    process = stack.processes.pop("nginx")
    process.terminate()
    process.wait(timeout=30)
    stack.auth, stack.token_cache = auth, token_cache
    stack.start_nginx()


def call(stack, path, headers=None, context=None, url=None):
    """A GET through the production nginx (or its internal listener, `url`)."""
    return http_request(stack, "GET", path, headers=headers, context=context, url=url, timeout=30)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def is_problem(status, headers, body, expected):
    assert status == expected, body
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == expected and problem["correlation_id"] == headers["X-Request-ID"]
    return problem


# MARK: - nginx -t for every variant

@pytest.mark.parametrize("auth,token_cache", [("token", False), ("token", True), ("mtls", False), ("oidc", False)])
def test_nginx_accepts_every_variant(prod, auth, token_cache):
    use_variant(prod, auth, token_cache)
    result = subprocess.run(["nginx", "-t", "-c", str(prod.nginx_conf), "-e", str(prod.log_path("nginx-error"))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    rendered = (prod.nginx_conf.parent / "vpsgate/vpsgate.conf").read_text()
    marked = [line for line in rendered.splitlines() if line.rstrip().endswith("# AUTH")]
    assert len(marked) == 4 and all(f"vpsgate/auth/{auth}/" in line for line in marked), marked


# MARK: - built-in tokens

def test_token_variant_authenticates_a_good_token_and_rejects_a_bad_one(prod):
    use_variant(prod, "token")
    status, headers, body = call(prod, "/v1/vps/1001", bearer(prod.tokens["prod-alice"]))
    assert status == 200 and json.loads(body)["id"] == 1001
    assert headers["Strict-Transport-Security"] == "max-age=63072000"
    for credentials in ({}, bearer("vpsg_" + "A" * 43), {"Authorization": "Basic cHJvZDphbGljZQ=="}):
        problem = is_problem(*call(prod, "/v1/vps/1001", credentials), 401)
        assert problem["type"] == f"{PROBLEM_BASE}/problems#unauthenticated", problem  # built by nginx from $vpsgate_problem_base


def test_a_forged_identity_reaches_vpsgate_without_it(prod):
    """Dumps the parameters vpsgate received (debug route) for a request full of forgeries."""
    use_variant(prod, "token")
    forged = {"Remote-User": "root", "X-Remote-User": "root", "X-Forwarded-User": "root",
              "X-Auth-Request-User": "root", "X-Vpsgate-Principal": "root", "Auth-Type": "mtls",
              "X-Auth-Type": "mtls", "X-Ssl-Client-S-Dn": "CN=root", "REMOTE_USER": "root",
              "Proxy": "http://evil.example:8080", "X-Innocent": "kept"}
    status, _, body = call(prod, "/v1/__debug/params", dict(forged, **bearer(prod.tokens["prod-bob"])))
    assert status == 200, body
    received = json.loads(body)
    assert received["REMOTE_USER"] == "prod-bob" and received["AUTH_TYPE"] == "token"
    for name in ("HTTP_REMOTE_USER", "HTTP_X_REMOTE_USER", "HTTP_X_FORWARDED_USER", "HTTP_X_AUTH_REQUEST_USER",
                 "HTTP_X_VPSGATE_PRINCIPAL", "HTTP_AUTH_TYPE", "HTTP_X_AUTH_TYPE", "HTTP_X_SSL_CLIENT_S_DN",
                 "HTTP_AUTHORIZATION"):
        assert name not in received, f"{name} reached vpsgate"
    assert received.get("HTTP_PROXY", "") == "", "httpoxy: the Proxy header never becomes HTTP_PROXY"
    assert received["HTTP_X_INNOCENT"] == "kept", "other headers pass: the dump is real"
    assert "root" not in json.dumps(received)
    # Without a credential the same forgeries are stopped by nginx.
    is_problem(*call(prod, "/v1/__debug/params", forged), 401)


def test_a_burst_from_one_principal_is_limited_while_another_is_not(prod):
    use_variant(prod, "token")
    time.sleep(2.5)  # refill both buckets after the earlier tests
    alice = bearer(prod.tokens["prod-alice"])
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: call(prod, "/v1/operations?limit=1", alice), range(100)))
    elapsed = time.monotonic() - started
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 429}, statuses
    # burst=20 at 10 r/s: at most 20 + 10 × elapsed pass, at least 20 do.
    assert 20 <= statuses.count(200) <= 20 + 10 * elapsed + 2, (statuses.count(200), elapsed)
    assert statuses.count(429) >= 30, statuses
    status, headers, body = next(answer for answer in answers if answer[0] == 429)
    problem = is_problem(status, headers, body, 429)
    assert problem_code(problem) == "rate-limited"
    assert headers["Retry-After"] == "1"
    # The other principal, from the same address, right away: unaffected.
    for _ in range(10):
        status, _, body = call(prod, "/v1/operations?limit=1", bearer(prod.tokens["prod-bob"]))
        assert status == 200, body
    # And alice again once the bucket refilled.
    time.sleep(2.5)
    assert call(prod, "/v1/operations?limit=1", alice)[0] == 200


def test_readiness_and_metrics_are_internal_only(prod):
    use_variant(prod, "token")
    for path in ("/metrics", "/readyz", "/__debug/sleep?ms=1", "/instances/vpsgate-1/metrics"):
        is_problem(*call(prod, path), 404)
    status, _, body = call(prod, "/readyz", url=prod.internal_url)
    assert status == 200 and json.loads(body)["status"] == "ready"
    for index in (1, 2):
        status, headers, body = call(prod, f"/instances/vpsgate-{index}/metrics", url=prod.internal_url)
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert b"vpsgate_requests_total" in body
    assert call(prod, "/instances/vpsgate-9/metrics", url=prod.internal_url)[0] == 404
    assert call(prod, "/v1/vps", url=prod.internal_url)[0] == 404


def test_tls_is_modern_and_speaks_http2(prod):
    use_variant(prod, "token")

    def handshake(context):
        with socket.create_connection(("127.0.0.1", prod.https_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version(), tls.selected_alpn_protocol()

    modern = prod.ssl_context()
    modern.set_alpn_protocols(["h2", "http/1.1"])
    assert handshake(modern)[1] == "h2"
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = prod.ssl_context()
        context.minimum_version = context.maximum_version = version
        assert handshake(context)[0] == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    weak = prod.ssl_context()
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-SHA:AES256-SHA:AES128-GCM-SHA256")  # no forward secrecy
    with pytest.raises(ssl.SSLError):
        handshake(weak)


# MARK: - the token-check cache

def test_cached_token_checks_keep_a_revoked_token_alive_for_the_documented_delay(prod):
    use_variant(prod, "token", token_cache=True)
    prod.grant("prod-erin", "1001", "viewer")
    token = prod.create_token("prod-erin")
    status, _, body = call(prod, "/v1/__debug/params", bearer(token))
    assert status == 200 and json.loads(body)["REMOTE_USER"] == "prod-erin"
    cached_at = time.monotonic()
    token_id = prod.postgres.psql("SELECT id FROM api_tokens WHERE principal = 'prod-erin'", url=prod.postgres.owner_url)
    prod.admin("token", "revoke", token_id)
    # Within the cache's 10 s the revoked token still works, as the same principal.
    status, _, body = call(prod, "/v1/__debug/params", bearer(token))
    assert time.monotonic() - cached_at < 10, "too slow to observe the cache"
    assert status == 200 and json.loads(body)["REMOTE_USER"] == "prod-erin"
    # A new token works at once (negative answers are not cached), other tokens are not confused.
    assert call(prod, "/v1/__debug/params", bearer(prod.tokens["prod-bob"]))[0] == 200
    assert call(prod, "/v1/__debug/params", bearer(token + "x"))[0] == 401
    # After the delay, the revocation holds.
    wait_until(lambda: call(prod, "/v1/__debug/params", bearer(token))[0] == 401, 20, "the cached answer to expire",
               interval=0.5)
    assert time.monotonic() - cached_at >= 9, "the answer was cached for its 10 s"


# MARK: - mutual TLS

def test_mtls_variant_authenticates_a_good_certificate_and_rejects_bad_ones(prod):
    good = issue_client_certificate(prod.tls_dir, "dave", "/O=vpsgate-clients/CN=mtls-dave")
    rogue = issue_client_certificate(prod.tls_dir, "rogue-dave", "/O=vpsgate-clients/CN=mtls-dave", ca="rogue-ca")
    spaced = issue_client_certificate(prod.tls_dir, "spaced", "/O=vpsgate clients/CN=dave smith")
    use_variant(prod, "mtls")

    def with_certificate(pair):
        context = prod.ssl_context()
        if pair:
            context.load_cert_chain(*pair)
        return context

    status, _, body = call(prod, "/v1/__debug/params", context=with_certificate(good))
    assert status == 200, body
    received = json.loads(body)
    assert (received["REMOTE_USER"], received["AUTH_TYPE"]) == ("CN=mtls-dave,O=vpsgate-clients", "mtls")
    assert call(prod, "/v1/vps/1001", context=with_certificate(good))[0] == 200
    assert call(prod, "/v1/vps/1002", context=with_certificate(good))[0] == 404, "grants still apply"
    for pair in (None, rogue, spaced):
        is_problem(*call(prod, "/v1/vps/1001", context=with_certificate(pair)), 401)
    # A bearer token means nothing to this variant.
    is_problem(*call(prod, "/v1/vps/1001", bearer(prod.tokens["prod-alice"])), 401)
    assert call(prod, "/healthz")[0] == 200, "no certificate is needed outside the API"


def test_mtls_rate_limit_is_keyed_by_the_certificate_not_by_headers_beside_it(prod):
    good = issue_client_certificate(prod.tls_dir, "dave", "/O=vpsgate-clients/CN=mtls-dave")
    use_variant(prod, "mtls")
    time.sleep(2.5)  # refill the buckets after the earlier tests
    context = prod.ssl_context()
    context.load_cert_chain(*good)
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda i: call(prod, "/v1/vps/1001", {"Authorization": f"Bearer junk-{i}"}, context=context),
                                range(60)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 429}, statuses
    # One bucket for the certificate (burst 20 at 10 r/s), whatever Authorization says.
    assert statuses.count(429) >= 20, statuses


# MARK: - OAuth2/OIDC introspection

def test_oidc_variant_authenticates_an_active_token_and_rejects_others(prod):
    use_variant(prod, "oidc")
    Introspection.seen.clear()
    status, _, body = call(prod, "/v1/__debug/params", dict(bearer("oidc-good-token-1"), Cookie="session=secret"))
    assert status == 200, body
    received = json.loads(body)
    assert (received["REMOTE_USER"], received["AUTH_TYPE"]) == ("oidc-carol", "oidc")
    assert "HTTP_AUTHORIZATION" not in received
    asked = Introspection.seen[-1]
    assert asked["authorization"] == "Bearer oidc-good-token-1" and "cookie" not in asked, \
        "the endpoint gets the bearer token and nothing else of the client's"
    assert asked["x-original-uri"] == "/v1/__debug/params"
    assert call(prod, "/v1/vps/1001", bearer("oidc-good-token-1"))[0] == 200
    for credentials in ({}, bearer("oidc-unknown-token"), bearer("oidc-bad-subject"),
                        bearer(prod.tokens["prod-alice"])):
        is_problem(*call(prod, "/v1/vps/1001", credentials), 401)


def test_oidc_endpoint_down_is_503_not_an_open_door(prod):
    use_variant(prod, "oidc")
    saved = prod.oidc_url
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        prod.oidc_url = f"http://127.0.0.1:{unused.getsockname()[1]}/oauth2/auth"  # nobody listens
        use_variant(prod, "oidc", force=True)
        try:
            problem = is_problem(*call(prod, "/v1/vps/1001", bearer("oidc-good-token-1")), 503)
            assert problem_code(problem) == "unavailable"
        finally:
            prod.oidc_url = saved
            use_variant(prod, "token")


# MARK: - MCP over HTTP, under each variant

def mcp_list(prod, headers=None, context=None):
    """`tools/list` at /mcp through the production nginx: (status, headers, raw body)."""
    message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    return http_request(prod, "POST", "/mcp", message, {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                                                         **(headers or {})}, context=context, timeout=30)


def test_mcp_takes_the_same_authentication_as_the_api_in_every_variant(prod):
    good = issue_client_certificate(prod.tls_dir, "dave", "/O=vpsgate-clients/CN=mtls-dave")
    mtls = prod.ssl_context()
    mtls.load_cert_chain(*good)
    for auth, headers, context in (("token", bearer(prod.tokens["prod-bob"]), None), ("mtls", {}, mtls),
                                   ("oidc", bearer("oidc-good-token-1"), None)):
        use_variant(prod, auth)
        status, _, body = mcp_list(prod, headers, context)
        assert status == 200, (auth, body)
        names = {tool["name"] for tool in json.loads(body)["result"]["tools"]}
        assert "vps_get" in names and "vps_restart" not in names, (auth, names)  # viewers: reads only
        problem = is_problem(*mcp_list(prod), 401)
        assert problem["type"] == f"{PROBLEM_BASE}/problems#unauthenticated", auth
    use_variant(prod, "token")
