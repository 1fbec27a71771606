"""Security: who may do what (every principal × every VPS × every command), identity that
cannot be forged, hostile inputs that change nothing, and secrets that never come out."""

import json
import os
import subprocess
import uuid

import pytest

import openapi_check
from vpsgate_e2e import Client, sim_requests, sql

VPS = (1001, 1002, 1003, 1004)
# principal ⇒ (VPS ⇒ role)
GRANTS = {
    "sec-admin": {"*": "admin"},
    "sec-operator": {"1001": "operator", "1003": "operator"},
    "sec-viewer": {"1002": "viewer"},
    "sec-nobody": {},
}
ROLE_PERMISSIONS = {
    "viewer": {"vps:read", "docker:read"},
    "operator": {"vps:read", "vps:power", "vps:configure", "vps:snapshot", "docker:read", "docker:write"},
    "admin": {"vps:read", "vps:power", "vps:configure", "vps:credentials", "vps:snapshot", "vps:destroy", "docker:read", "docker:write",
              "vps:setup"},
}


@pytest.fixture(scope="module")
def principals(stack):
    clients = {}
    for name, grants in GRANTS.items():
        for vps, role in grants.items():
            stack.grant(name, vps, role)
        clients[name] = Client(stack, stack.create_token(name))
    return clients


def commands():
    document = openapi_check.VPSGATE.document
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/vps/{id}/") and "Permission:" in operation.get("description", ""):
                permission = operation["description"].split("Permission: ")[1].split(" ")[0].rstrip(".")
                yield method.upper(), path, permission


def expected_status(principal, vps, permission):
    role = GRANTS[principal].get("*") or GRANTS[principal].get(str(vps))
    if role is None:
        return 404
    return 200 if permission in ROLE_PERMISSIONS[role] else 403


def test_the_idor_matrix(stack, principals):
    """Every principal × every VPS × every command (validate_only: nothing is sent)."""
    stack.sim("POST", "/__sim/reset")
    unexpected = []
    checked = 0
    for principal, client in principals.items():
        for vps in VPS:
            for method, template, permission in commands():
                path = template.replace("{id}", str(vps)).replace("{ipAddressId}", str(2000 + vps - 1000))
                path = path.replace("{firewallId}", "4001").replace("{backupId}", str(3000 + vps - 1000))
                path = path.replace("{projectName}", "web-app")
                body = {}
                if "hostname" in path and method == "PUT":
                    body = {"hostname": "matrix.example.com"}
                elif "nameservers" in path:
                    body = {"ns1": "9.9.9.9"}
                elif "/ptr/" in path and method == "POST":
                    body = {"domain": "matrix.example.com"}
                elif path.endswith("public-keys"):
                    body = {"ids": [5001]}
                elif "password" in path:
                    body = {"password": "Matrix7Password-Ok"}
                elif path.endswith("/recovery") and method == "POST":
                    body = {"root_password": "Matrix7Password-Ok"}
                elif path.endswith("restore"):
                    body = {"confirm": vps}
                elif path.endswith("recreate"):
                    body = {"template_id": 1130, "confirm": vps}
                elif path.endswith("/docker"):
                    body = {"project_name": "web-app", "content": "services:\n  web:\n    image: nginx:1.27\n"}
                elif path.endswith("/setup"):
                    body = {"template_id": 1130, "data_center_id": 19}
                status, _, answer = client.json(method, path + "?validate_only=true", body=body)
                expected = expected_status(principal, vps, permission)
                checked += 1
                if status != expected:
                    unexpected.append((principal, vps, method, template, status, expected, answer))
            for path in (f"/v1/vps/{vps}", f"/v1/vps/{vps}/actions"):
                status, _, _ = client.json("GET", path)
                expected = expected_status(principal, vps, "vps:read")
                checked += 1
                if status != expected:
                    unexpected.append((principal, vps, "GET", path, status, expected, None))
    assert checked == len(GRANTS) * len(VPS) * (30 + 2)
    assert unexpected == []
    assert [r for r in sim_requests(stack) if r["method"] != "GET"] == []


# The account's other resources (docs/design.md#resources-and-grants): principal ⇒ (resource ⇒ role).
RESOURCE_GRANTS = {
    "res-fw": {"firewall:4001": "operator"},
    "res-fwview": {"firewall:*": "viewer", "public_key:*": "viewer", "post_install_script:*": "viewer"},
    "res-keys": {"public_key:5001": "operator"},
    "res-scripts": {"post_install_script:6001": "admin"},
    "res-acct-op": {"account": "operator"},
    "res-acct-admin": {"account": "admin"},
    "sec-admin": {},  # admin on every VPS: nothing on these
}
RESOURCE_IDS = {"firewall": (4001, 4002), "public_key": (5001, 5002), "post_install_script": (6001, 6002)}
COLLECTIONS = {"/v1/firewalls": "firewall", "/v1/public-keys": "public_key", "/v1/post-install-scripts": "post_install_script"}
ROLE_PERMISSIONS_ON_RESOURCES = {
    "viewer": {"firewall:read", "public_key:read", "script:read"},
    "operator": {"firewall:read", "public_key:read", "script:read", "firewall:write", "public_key:write"},
    "admin": {"firewall:read", "public_key:read", "script:read", "firewall:write", "public_key:write", "script:write",
              "billing:purchase"},
}
RESOURCE_BODIES = {
    ("POST", "/v1/firewalls"): {"name": "matrix"},
    ("POST", "/v1/firewalls/{id}/rules"): {"protocol": "TCP", "port": "22", "source": "any", "source_detail": "any"},
    ("PUT", "/v1/firewalls/{id}/rules/{ruleId}"): {"protocol": "TCP", "port": "22", "source": "any", "source_detail": "any"},
    ("POST", "/v1/public-keys"): {"name": "matrix", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMatrixKeyOnly m"},
    ("POST", "/v1/post-install-scripts"): {"name": "matrix", "content": "#!/bin/sh\ntrue\n"},
    ("PUT", "/v1/post-install-scripts/{id}"): {"name": "matrix", "content": "#!/bin/sh\ntrue\n"},
    ("POST", "/v1/vps"): {"item_id": "hostingercom-vps-kvm2-usd-1m", "template_id": 1130, "data_center_id": 19},
}


def resource_commands():
    document = openapi_check.VPSGATE.document
    for path, item in document["paths"].items():
        for method, operation in item.items():
            description = operation.get("description", "")
            if not path.startswith("/v1/vps/{id}") and "Permission:" in description:
                permission = description.split("Permission: ")[1].split(" ")[0]
                yield method.upper(), path, permission


def test_the_idor_matrix_of_firewalls_keys_scripts_and_the_account(stack):
    """Every principal × every firewall, key and script (and the account) × every command on
    them, with validate_only: grants name a resource, and a permission counts only there."""
    clients = {}
    for name, grants in RESOURCE_GRANTS.items():
        for resource, role in grants.items():
            stack.grant_resource(name, resource, role)
        clients[name] = Client(stack, stack.create_token(name))
    stack.sim("DELETE", "/__sim/requests")
    unexpected, checked = [], 0
    for method, template, permission in resource_commands():
        kind = "account" if template == "/v1/vps" else COLLECTIONS.get(template) or next(k for k, p in (("firewall", "/v1/firewalls/"), ("public_key", "/v1/public-keys/"),
                                                               ("post_install_script", "/v1/post-install-scripts/"))
                                                if template.startswith(p))
        on_account = template in COLLECTIONS or template == "/v1/vps"
        for resource_id in ((None,) if on_account else RESOURCE_IDS[kind]):
            path = template.replace("{id}", str(resource_id)).replace("{ruleId}", "4101")
            for name, client in clients.items():
                grants = RESOURCE_GRANTS[name]
                if on_account:
                    role = grants.get("account")
                    expected = 200 if role and permission in ROLE_PERMISSIONS_ON_RESOURCES[role] else 403
                else:
                    role = grants.get(f"{kind}:{resource_id}") or grants.get(f"{kind}:*")
                    expected = 404 if role is None else (200 if permission in ROLE_PERMISSIONS_ON_RESOURCES[role] else 403)
                status, _, answer = client.json(method, path + "?validate_only=true", body=RESOURCE_BODIES.get((method, template), {}))
                checked += 1
                if status != expected:
                    unexpected.append((name, method, path, status, expected, answer))
    assert checked == len(RESOURCE_GRANTS) * (4 + 2 * (4 + 1 + 2))  # 4 on the account; 7 on one resource × 2 ids
    assert unexpected == []
    assert [r for r in sim_requests(stack) if r["method"] != "GET"] == []


def test_forged_identity_headers_never_reach_vpsgate_as_identity(stack, principals):
    viewer = principals["sec-viewer"]
    forged = {"Remote-User": "sec-admin", "X-Remote-User": "sec-admin", "X-Vpsgate-Principal": "sec-admin",
              "X-Forwarded-User": "sec-admin", "Auth-Type": "mtls", "Proxy": "http://evil.example:8080"}
    status, _, _ = viewer.json("POST", "/v1/vps/1002/start?validate_only=true", headers=forged)
    assert status == 403, "the viewer stays a viewer"
    status, _, _ = Client(stack, None).json("GET", "/v1/vps/1002", headers=forged)
    assert status == 401
    # What reached vpsgate: the audit row names the real principal and auth type.
    correlation = f"forged-{uuid.uuid4().hex[:8]}"
    viewer.json("POST", "/v1/vps/1002/start", key=str(uuid.uuid4()), headers=dict(forged, **{"X-Request-ID": correlation}))
    assert sql(stack, f"SELECT principal || '|' || auth_type FROM audit_events WHERE correlation_id = '{correlation}'") == "sec-viewer|token"


def test_the_fastcgi_socket_refuses_other_users(stack):
    path = stack.socket_path(1)
    mode = os.stat(path).st_mode & 0o777
    assert mode == 0o660
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    result = subprocess.run(["runuser", "-u", "nobody", "--", "python3", "-c",
                             f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({str(path)!r})"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Permission denied" in result.stderr


HOSTILE = [
    ("PUT", "/v1/vps/1001/hostname", b'{"hostname": ' + b'"' + b"a" * 70000 + b'"}', 413),
    ("PUT", "/v1/vps/1001/hostname", b"[" * 5000 + b"]" * 5000, 400),
    ("PUT", "/v1/vps/1001/hostname", b'{"hostname": {"nested": [1, 2, {"deep": true}]}}', 422),
    ("PUT", "/v1/vps/1001/hostname", b'{"hostname": "a\\u0000b.example.com"}', 422),
    ("PUT", "/v1/vps/1001/hostname", b'{"hostname": "\xff\xfe.example.com"}', 400),
    ("PUT", "/v1/vps/1001/hostname", b'{"hostname": "x.example.com\'; DROP TABLE operations; --"}', 422),
    ("PUT", "/v1/vps/1001/nameservers", b'{"ns1": "1.1.1.1\' OR \'1\'=\'1"}', 422),
    ("POST", "/v1/vps/1001/public-keys", b'{"ids": [1e400]}', 422),
    ("POST", "/v1/vps/1001/public-keys", b'{"ids": [9223372036854775808]}', 422),
    ("POST", "/v1/vps/1001/recreate", b'{"template_id": 1130, "confirm": 1001, "confirm": 1002}', 400),
    ("POST", "/v1/vps/1001%27%3B%20DROP%20TABLE%20grants/start", b"", 404),
    ("POST", "/v1/vps/1001;DROP/start", b"", 404),
    ("POST", "/v1/vps/01001/start", b"", 404),
    ("POST", "/v1/vps/99999999999999999999/start", b"", 404),
    ("POST", "/v1/vps/1001/ptr/2001%27%20OR%20%271%27%3D%271", b'{"domain": "a.example.com"}', 404),
    ("POST", "/v1/vps/../operations/start", b"", 404),
]


@pytest.mark.parametrize("method,path,body,expected", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_inputs_get_a_problem_and_change_nothing(stack, principals, method, path, body, expected):
    admin = principals["sec-admin"]
    operations = sql(stack, "SELECT count(*) FROM operations")
    sent = len(sim_requests(stack))
    status, headers, raw = admin.request(method, path, raw_body=body, key=str(uuid.uuid4()))
    assert status == expected, raw[:300]
    assert headers["Content-Type"].startswith("application/problem+json")
    problem = json.loads(raw)
    assert problem["status"] == expected and problem["correlation_id"]
    assert sql(stack, "SELECT count(*) FROM operations") == operations
    assert len(sim_requests(stack)) == sent
    for index in (1, 2):
        assert stack.processes[f"vpsgate-{index}"].poll() is None, "an instance crashed"


HOSTILE_HEADERS = [
    ("Idempotency-Key", "x" * 300), ("Idempotency-Key", "tab\there"), ("Idempotency-Key", '"unterminated'),
    ("Idempotency-Key", 'quote"inside'), ("X-Request-ID", "a" * 5000), ("X-Request-ID", "evil\r\nSet-Cookie: x=1"),
    ("traceparent", "00-zz-zz-01"), ("traceparent", "x" * 4000),
]


@pytest.mark.parametrize("name,value", HOSTILE_HEADERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(HOSTILE_HEADERS)])
def test_hostile_headers(stack, principals, name, value):
    admin = principals["sec-admin"]
    # Mutations only: a plan (validate_only) reads the VPS from Hostinger, and sends nothing.
    sent = len([r for r in sim_requests(stack) if r["method"] != "GET"])
    headers = {name: value}
    key = None if name == "Idempotency-Key" else str(uuid.uuid4())
    try:
        status, answer_headers, raw = admin.request("POST", "/v1/vps/1004/start?validate_only=true" if name != "Idempotency-Key" else "/v1/vps/1004/start",
                                                    key=key, headers=headers)
    except (ValueError, OSError):
        return  # the client library itself refuses to send it: nothing reached vpsgate
    assert status in (200, 400, 431), raw[:200]
    if status != 200:
        assert answer_headers.get("Content-Type", "").startswith("application/problem+json") or status == 431
    if name == "Idempotency-Key":
        assert status == 400
    assert "Set-Cookie" not in answer_headers
    assert len([r for r in sim_requests(stack) if r["method"] != "GET"]) == sent


def test_the_hostinger_token_never_comes_out(stack, principals):
    token = stack.sim_token
    admin = principals["sec-admin"]
    answers = [admin.request("GET", "/v1/vps/1001"), admin.request("GET", "/v1/vps"), admin.request("GET", "/metrics"),
               admin.request("GET", "/openapi.json"), admin.request("POST", "/v1/vps/1001/stop?validate_only=true")]
    stack.sim("POST", "/__sim/faults", {"path": "/1003/restart$", "status": 401})
    answers.append(admin.request("POST", "/v1/vps/1003/restart", key=str(uuid.uuid4())))
    for _, headers, raw in answers:
        assert token.encode() not in raw and token not in json.dumps(headers)
    for log in stack.run_dir.glob("vpsgate-*.log"):
        assert token not in log.read_text(errors="replace")
    for table in ("audit_events", "operations", "idempotency_keys", "drift_events"):
        assert sql(stack, f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%{token}%'") == "0"
