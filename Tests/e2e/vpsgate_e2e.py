"""What the end-to-end tests share, each defined once: the HTTP client, SQL and psql, the
simulator's request log, operations in the database, and how a stack is made. The fixtures
(`stack_factory`, `stack`) are in conftest.py; test modules import the plain functions and
classes from here, never from one another.

One HTTP helper, `http_request`, carries every HTTP request the tests send through nginx
(`Client` for the API, `load.Load` for background load, the production and skeleton tests).
Kept apart on purpose, because they do not speak HTTP to nginx:
- `fastcgi_client` (scripts/): FastCGI straight to one instance, without nginx (a peer
  outside the allowed networks, a request nginx would never forward, a host cut off).
- Raw TCP sockets in test_fastcgi_peers.py: connections that say nothing at all.
- The TLS handshake in test_production.py: protocol versions, ciphers and ALPN, no request.
- A unix-socket connect in test_security.py, run as another user in a subprocess.
- `Stack.sim` and `Stack.get` (scripts/vpsgate_stack.py, also used by scripts/run and
  scripts/bench.py): the simulator's control API is called through `Stack.sim`.
The hostile-input tests need no raw socket: every malformed body, query and header they send
goes through `Client` (`raw_body`, `headers`); a header the client library refuses to send
is itself an outcome those tests accept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import openapi_check  # noqa: E402
from vpsgate_stack import Stack  # noqa: E402

VM = "/api/vps/v1/virtual-machines"
TERMINAL = ("succeeded", "failed", "cancelled")

# Deadlines and windows short enough that settling takes seconds, not minutes (the
# reconciler's and the outcome tests' stacks).
SHORT_WINDOWS = {
    "HOSTINGER_DEADLINE_MS": "4000", "HOSTINGER_ATTEMPT_TIMEOUT_MS": "2000", "VPSGATE_RECONCILE_GRACE_MS": "6000",
    "VPSGATE_SETTLE_WINDOW_MS": "3000", "VPSGATE_DRIFT_SCAN_INTERVAL_MS": "2000", "VPSGATE_RECONCILE_INTERVAL_MS": "200",
    "HOSTINGER_BREAKER_COOLDOWN_MS": "1000",
}


# MARK: - Stacks

def make_stack(name: str, **settings) -> Stack:
    """A stack, not started yet, in a fresh runtime directory, with the tests' settings and
    `settings` (Stack's keyword arguments; `extra_env` adds to the tests' environment). Tests
    get theirs from the `stack_factory` fixture, which starts and stops it."""
    root = Path(tempfile.mkdtemp(prefix=f"vpsgate-e2e-{name}-"))
    root.chmod(0o755)
    extra_env = {"VPSGATE_DEBUG_ROUTES": "1", "VPSGATE_SHUTDOWN_TIMEOUT": "10",
                 "HOSTINGER_BREAKER_FAILURES": "5", "HOSTINGER_BREAKER_COOLDOWN_MS": "10000"}
    extra_env.update(settings.pop("extra_env", {}))
    # The pipeline's tests send destructive commands directly; the change-control tests
    # (test_change_control.py) pass destroy_approvals=None to run with the shipped default.
    settings.setdefault("destroy_approvals", 0)
    # VPSGATE_E2E_POOLED=1: every stack reaches PostgreSQL through PgBouncer in transaction
    # mode, as 4 instances x 64 workers over a pool of 40 server connections (docs/failover.md;
    # run by hand over the command, approval and push modules, not in scripts/test).
    pooled = os.environ.get("VPSGATE_E2E_POOLED") == "1" and not settings.get("production")
    if pooled:
        settings.update(pgbouncer=True, instances=max(settings.get("instances", 2), 4), workers=64)
    stack = Stack(root, extra_env=extra_env, **settings)
    if pooled:
        stack.pgbouncer.pool_size = 40
    return stack


# MARK: - HTTP

def http_request(stack: Stack, method: str, path: str, data: bytes | None = None, headers=None, *,
                 timeout: float = 10, context=None, url: str | None = None):
    """One request to `url` (the stack's nginx unless given) + `path`; verifies TLS against the
    stack's CA unless another `context` is given. Returns (status, headers, raw body) for
    every HTTP answer, error statuses included; no answer raises (OSError)."""
    base = url or stack.url
    if context is None and base.startswith("https"):
        context = stack.ssl_context()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class Client:
    """vpsgate's API as one principal (a bearer token, or none); every answer is checked
    against vpsgate's OpenAPI document."""

    def __init__(self, stack, token):
        self.stack = stack
        self.token = token

    def request(self, method, path, body=None, key=None, headers=None, raw_body=None):
        all_headers = {"Content-Type": "application/json"}
        if self.token is not None:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if key is not None:
            all_headers["Idempotency-Key"] = key
        all_headers.update(headers or {})
        data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
        if data is None and method in ("POST", "PUT"):
            data = b""
        status, head, raw = http_request(self.stack, method, path, data, all_headers, timeout=60)
        # Every answer must conform to vpsgate's OpenAPI document.
        content_type = head.get("Content-Type", "")
        body = raw.decode() if content_type.startswith("text/plain") else (json.loads(raw) if raw else None)
        openapi_check.VPSGATE.validate(method, path, status, content_type, body)
        return status, head, raw

    def json(self, *args, **kwargs):
        status, head, raw = self.request(*args, **kwargs)
        return status, head, (json.loads(raw) if raw else None)


def admin_client(stack, principal: str) -> Client:
    """A new principal with the admin role on every VPS, and its client."""
    stack.grant(principal, "*", "admin")
    return Client(stack, stack.create_token(principal))


def new_key() -> str:
    return str(uuid.uuid4())


PROBLEM_BASE = "https://vpsgate.dev/docs"  # VPSGATE_PROBLEM_BASE_URL's default


def problem_code(problem) -> str | None:
    """The code a problem's `type` names: the fragment of `<base>/problems#<code>`, or the
    last part of the older `urn:vpsgate:problem:<code>` (answers stored before replay it)."""
    kind = (problem or {}).get("type") or ""
    if "#" in kind:
        return kind.rsplit("#", 1)[1]
    return kind.removeprefix("urn:vpsgate:problem:") if kind.startswith("urn:vpsgate:problem:") else None


# MARK: - The database

def sql(stack, query):
    """One statement as the schema owner; its output (unaligned, tuples only)."""
    return stack.postgres.psql(query, url=stack.postgres.owner_url)


def psql(stack, url, *statements, check=False) -> subprocess.CompletedProcess:
    """Statements in one psql session as whoever `url` names; the finished process (the tests
    look at its return code and error output)."""
    args = [str(stack.postgres.bindir / "psql"), url, "-v", "ON_ERROR_STOP=1", "-qAtX"]
    for statement in statements:
        args += ["-c", statement]
    return subprocess.run(args, capture_output=True, text=True, check=check)


def as_superuser(url: str) -> str:
    """The same database as `url`, as the superuser."""
    return "postgresql://postgres@" + url.split("@", 1)[1]


def fresh_database(stack, migrate: bool = False) -> str:
    """A new empty database owned by the schema owner (migrated if asked); its owner URL."""
    name = f"vpsgate_fresh_{uuid.uuid4().hex[:10]}"
    stack.postgres.psql(f"CREATE DATABASE {name} OWNER vpsgate")
    url = stack.postgres.owner_url.rsplit("/", 1)[0] + "/" + name
    if migrate:
        result = stack.migrate(database_url=url)
        assert result.returncode == 0, result.stderr
    return url


def final_audit_rows(stack, correlation):
    """`outcome|http_status` of each final audit row of the request with this correlation id."""
    return sql(stack, f"SELECT outcome, http_status FROM audit_events WHERE correlation_id = '{correlation}' "
                      "AND kind = 'final'").splitlines()


# MARK: - Operations

def operation_row(stack, operation_id):
    return json.loads(sql(stack, f"SELECT row_to_json(o) FROM operations o WHERE id = '{operation_id}'"))


def open_operations(stack) -> int:
    return int(sql(stack, "SELECT count(*) FROM operations WHERE state NOT IN ('succeeded', 'failed', 'cancelled')"))


def keys_in_flight(stack) -> int:
    return int(sql(stack, "SELECT count(*) FROM idempotency_keys WHERE state = 'in_flight'"))


def wait_operation_row(stack, operation_id, states=TERMINAL, timeout=30):
    """The operation's row once its state is one of `states`, read from the database."""
    deadline = time.monotonic() + timeout
    row = operation_row(stack, operation_id)
    while row["state"] not in states and time.monotonic() < deadline:
        time.sleep(0.1)
        row = operation_row(stack, operation_id)
    assert row["state"] in states, f"operation stayed {row['state']}: {row}"
    return row


def wait_operation(client, location, states=TERMINAL, timeout=15):
    """The operation once its state is one of `states`, read through the API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, operation = client.json("GET", location)
        assert status == 200
        if operation["state"] in states:
            return operation
        time.sleep(0.2)
    raise AssertionError(f"operation never reached {states}: {operation}")


def wait_until_settled(stack, timeout, keys_too=True):
    """Waits until no operation is open (and, with `keys_too`, no key in flight); returns
    what is still open: (operations, keys in flight)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (open_operations(stack) or (keys_too and keys_in_flight(stack))):
        time.sleep(0.2)
    return open_operations(stack), keys_in_flight(stack)


# MARK: - The simulator

def sim_requests(stack, method=None, suffix=""):
    """The requests the simulator received since its last reset, by method and path suffix."""
    log = stack.sim("GET", "/__sim/requests")[2]
    return [r for r in log if (method is None or r["method"] == method) and r["path"].endswith(suffix)]


def reset_sim(stack, action_delay_ms=None) -> None:
    """The simulator back to its fixtures (and its actions taking `action_delay_ms`)."""
    stack.sim("POST", "/__sim/reset")
    if action_delay_ms is not None:
        stack.sim("POST", "/__sim/config", {"action_delay_ms": action_delay_ms})


def close_operations_and_reset_sim(stack, action_delay_ms=None) -> None:
    """No VPS busy and a simulator back to its fixtures: operations a previous test left open
    are closed by hand (in stacks whose reconciler is not under test)."""
    sql(stack, "UPDATE operations SET state = 'failed', completed_at = now() WHERE state NOT IN ('succeeded', 'failed', 'cancelled')")
    reset_sim(stack, action_delay_ms)


def reset_change_control(stack) -> None:
    """No freeze, the shipped policies, no operation or batch open, no fault, an empty
    simulator log (the change-control modules, before each test)."""
    sql(stack, "DELETE FROM freeze_windows")
    sql(stack, "DELETE FROM approval_policies WHERE subject <> 'vps:destroy' OR vps_id IS NOT NULL")
    sql(stack, "UPDATE operations SET state = 'cancelled', completed_at = now() WHERE state IN ('awaiting_approval', 'approved')")
    sql(stack, "UPDATE operations SET state = 'failed', completed_at = now() WHERE state NOT IN ('succeeded', 'failed', 'cancelled')")
    sql(stack, "UPDATE batches SET state = 'cancelled', completed_at = now() WHERE completed_at IS NULL")
    stack.sim("DELETE", "/__sim/faults")
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 200})
    stack.sim("DELETE", "/__sim/requests")


def settle_and_reset_sim(stack, keys_too=False) -> None:
    """No fault left, every operation settled by the reconcilers (and no key in flight, with
    `keys_too`), then a simulator back to its fixtures (in stacks whose reconciler is tested)."""
    stack.sim("DELETE", "/__sim/faults")
    wait_until_settled(stack, timeout=60, keys_too=keys_too)
    reset_sim(stack, action_delay_ms=300)
