"""The database's trust boundaries (docs/design.md#trust-boundaries): what the application's credentials,
the admin's and the owner's can and cannot do, keyed fingerprints and seals, one clock."""

import hashlib
import hmac
import json
import subprocess
import time
import uuid

import pytest

from vpsgate_e2e import admin_client, as_superuser, psql, sql

pytestmark = pytest.mark.usefixtures("no_open_operations")

CANARY = "Guessable7Password"


def superuser_url(stack):
    """The vpsgate database as the superuser."""
    return as_superuser(stack.postgres.url)


@pytest.fixture(scope="module")
def rita(stack):
    return admin_client(stack, "rita")


# MARK: - The application's credentials


@pytest.mark.parametrize("statement", [
    "INSERT INTO principals (name) VALUES ('mallory')",
    "INSERT INTO grants (principal, resource_id, role, created_by) VALUES ('rita', NULL, 'admin', 'mallory')",
    "UPDATE grants SET role = 'admin'",
    "DELETE FROM grants",
    "UPDATE api_tokens SET expires_at = NULL",
    "INSERT INTO api_tokens (principal, token_hash, hint, created_by) VALUES ('rita', repeat('a', 64), 'x', 'm')",
    "INSERT INTO role_permissions (role, permission) VALUES ('viewer', 'vps:destroy')",
    # Audit rows with a chosen id or time, and seals: the database sets those.
    "INSERT INTO audit_events (id, kind, outcome) OVERRIDING SYSTEM VALUE VALUES (9000000000000000000, 'final', 'accepted')",
    "INSERT INTO audit_events (kind, outcome, occurred_at) VALUES ('final', 'accepted', now() - interval '1 year')",
    "INSERT INTO audit_events (kind, outcome, event_id) VALUES ('final', 'accepted', gen_random_uuid())",
    "INSERT INTO audit_seals (seq, audit_id, seal) OVERRIDING SYSTEM VALUE VALUES (9000000000000000000, 1, repeat('0', 64))",
    "INSERT INTO audit_seals (audit_id, seal, sealed_at) VALUES (1, repeat('0', 64), now())",
])
def test_the_application_role_cannot_grant_itself_anything_or_forge_audit_times_and_ids(stack, rita, statement):
    result = psql(stack, stack.postgres.url, statement)
    assert result.returncode != 0 and "permission denied" in result.stderr, (statement, result.stderr)


def test_an_audit_row_the_application_adds_gets_the_databases_time_ids_and_instance(stack, rita):
    # A named instance is overwritten by the session's (the previous version names one).
    result = psql(stack, stack.postgres.url, "SET application_name = 'vpsgate vpsgate-7'",
                  "INSERT INTO audit_events (kind, outcome, principal, instance) VALUES ('final', 'accepted', 'probe-row', 'forged')")
    assert result.returncode == 0, result.stderr
    row = json.loads(sql(stack, "SELECT row_to_json(a) FROM (SELECT instance, extract(epoch FROM clock_timestamp() - occurred_at) AS age "
                                "FROM audit_events WHERE principal = 'probe-row') a"))
    assert row["instance"] == "vpsgate-7" and 0 <= row["age"] < 60


def test_a_serving_instance_refuses_the_owners_or_the_admins_credentials(stack, rita):
    for url, role in ((stack.postgres.owner_url, "owns the schema"), (stack.postgres.admin_role_url, "can change grants"),
                      (superuser_url(stack), "a superuser")):
        env = dict(stack.instance_env(8), VPSGATE_DATABASE_URL=url)
        result = subprocess.run([str(stack.binary), "serve"], env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode != 0, url
        assert role in result.stderr + result.stdout, result.stderr


# MARK: - Admin changes are audited by the database, whoever makes them


def test_admin_changes_are_written_to_the_audit_trail_by_the_database_even_behind_the_clis_back(stack, rita):
    before = int(sql(stack, "SELECT count(*) FROM audit_events WHERE kind = 'admin'"))
    stack.admin("grant", "add", "--principal", "ines", "--vps", "1003", "--role", "viewer", "--actor", "ops:ines-manager")
    row = json.loads(sql(stack, "SELECT row_to_json(a) FROM (SELECT principal, auth_type, command, request_params FROM audit_events "
                                "WHERE kind = 'admin' ORDER BY id DESC LIMIT 1) a"))
    assert row["command"] == "admin.grant.add" and row["principal"] == "ops:ines-manager"
    assert row["auth_type"] == "database:vpsgate_admin"
    assert row["request_params"]["database_role"] == "vpsgate_admin"
    assert row["request_params"]["claimed_actor"] == "ops:ines-manager"
    # A superuser changing a grant by hand, without the CLI: still a row, naming who did it.
    result = psql(stack, superuser_url(stack),
                  "UPDATE grants SET role = 'admin' WHERE principal = 'ines'")
    assert result.returncode == 0, result.stderr
    row = json.loads(sql(stack, "SELECT row_to_json(a) FROM (SELECT principal, command, request_params FROM audit_events "
                                "WHERE kind = 'admin' ORDER BY id DESC LIMIT 1) a"))
    assert row["principal"] == "postgres" and row["command"] == "admin.grant.add"
    assert row["request_params"]["role"] == "admin" and row["request_params"]["before"]["role"] == "viewer"
    assert int(sql(stack, "SELECT count(*) FROM audit_events WHERE kind = 'admin'")) == before + 2


def test_the_admin_cli_needs_the_admin_role(stack, rita):
    env = dict(stack.instance_env(0), VPSGATE_ADMIN_DATABASE_URL=stack.postgres.url)
    result = subprocess.run([str(stack.binary), "grant", "add", "--principal", "rita", "--vps", "*", "--role", "admin"],
                            env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "permission denied" in result.stderr
    env.pop("VPSGATE_ADMIN_DATABASE_URL")
    result = subprocess.run([str(stack.binary), "grant", "list"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "VPSGATE_ADMIN_DATABASE_URL" in result.stderr


# MARK: - The secret key


def test_a_stored_fingerprint_cannot_be_tested_against_guessed_passwords(stack, rita):
    body = {"password": CANARY}
    key = str(uuid.uuid4())
    status, _, raw = rita.request("PUT", "/v1/vps/1002/root-password", body=body, key=key)
    assert status == 202, raw
    stored = sql(stack, f"SELECT fingerprint FROM idempotency_keys WHERE key = '{key}'")
    # What a stolen dump would let anyone compute offline, for each guess:
    canonical = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    guess = hashlib.sha256(b"PUT\0/v1/vps/1002/root-password\0" + canonical).hexdigest()
    assert guess not in stored
    key_id = stack.secret_key_file.read_text().split()[0]
    assert stored.startswith(f"{key_id}:") and len(stored.split(":")[1]) == 64


def test_an_audit_trail_resealed_without_the_key_fails_verification(stack, rita):
    url = superuser_url(stack)
    env = dict(stack.instance_env(0), VPSGATE_DATABASE_URL=stack.postgres.owner_url)
    sealed = subprocess.run([str(stack.binary), "audit", "seal", "--horizon", "0"], env=env, capture_output=True, text=True)
    assert sealed.returncode == 0, sealed.stderr
    assert subprocess.run([str(stack.binary), "audit", "verify"], env=env, capture_output=True, text=True).returncode == 0
    # Someone with write access but not the key slips in a row and seals it as the chain did
    # before it was keyed (SHA-256 of the previous seal and the row): refused outright.
    psql(stack, url, "INSERT INTO audit_events (kind, outcome, principal) VALUES ('final', 'accepted', 'slipped-in')")
    last = psql(stack, url, "SELECT seal FROM audit_seals ORDER BY seq DESC LIMIT 1").stdout.strip()
    row_id, canonical = psql(stack, url, "SELECT id, audit_canonical(a) FROM audit_events a WHERE principal = 'slipped-in'") \
        .stdout.strip().split("|", 1)
    unkeyed = hashlib.sha256(last.encode() + b"\n" + canonical.encode()).hexdigest()
    result = psql(stack, stack.postgres.url, f"INSERT INTO audit_seals (audit_id, seal) VALUES ({row_id}, '{unkeyed}')")
    assert result.returncode != 0 and "keyed" in result.stderr, result.stderr
    # Naming the real key's id does not help without the key itself.
    key_id = stack.secret_key_file.read_text().split()[0]
    guessed = hmac.new(b"\0" * 32, last.encode() + b"\0" + canonical.encode() + b"\0", hashlib.sha256).hexdigest()
    result = psql(stack, stack.postgres.url, f"INSERT INTO audit_seals (audit_id, seal, key_id) VALUES ({row_id}, '{guessed}', '{key_id}')")
    assert result.returncode == 0, result.stderr
    result = subprocess.run([str(stack.binary), "audit", "verify"], env=env, capture_output=True, text=True)
    assert result.returncode == 1 and f"audit row {row_id} does not match its seal" in result.stdout, result.stdout


# MARK: - Isolation

# What each of begin_command's own answers means, as vpsgate passes it (BeginDecision.Kind.auditAnswers).
ANSWERS = ('\'{"replay": {"outcome": "replayed"}, "in_use": {"outcome": "conflict", "http_status": 409}, '
           '"reused": {"outcome": "conflict", "http_status": 422}, "busy": {"outcome": "busy", "http_status": 409}}\'::jsonb')


def begin_command(key: str, vps: int, correlation: str) -> str:
    """A call of begin_command (the signature vpsgate calls) as rita, stopping `vps`."""
    return (f"begin_command('rita', '{key}', ARRAY['fp'], 'vps', {vps}, {vps}, 'vps.stop', gen_random_uuid(), "
            f"'{correlation}', interval '15 minutes', '{{}}'::jsonb, {ANSWERS}, 'vps:power', NULL, '{{}}'::jsonb, NULL, NULL, 0)")


def test_begin_command_refuses_to_decide_under_another_isolation_level(stack, rita):
    result = psql(stack, stack.postgres.url, "BEGIN ISOLATION LEVEL REPEATABLE READ",
                  f"SELECT decision FROM {begin_command('isolation-probe', 1001, 'c')}")
    assert result.returncode != 0 and "READ COMMITTED" in result.stderr


def test_commands_work_when_the_roles_default_isolation_is_stricter(stack, rita):
    """vpsgate pins READ COMMITTED on its connections, whatever the role's default."""
    admin = superuser_url(stack)
    assert psql(stack, admin, "ALTER ROLE vpsgate_app SET default_transaction_isolation = 'serializable'").returncode == 0
    try:
        for index in (1, 2):  # new connections pick the role's settings up
            stack.stop_instance(index)
            stack.start_instance(index)
        status, _, raw = rita.request("POST", "/v1/vps/1002/start", key=str(uuid.uuid4()))
        assert status == 202, raw
    finally:
        psql(stack, admin, "ALTER ROLE vpsgate_app RESET default_transaction_isolation")


# MARK: - A key row deleted under begin_command


def test_begin_command_takes_a_key_afresh_when_its_row_is_deleted_between_its_insert_and_its_read(stack, rita):
    """The window is made wide on purpose: a statement trigger (test-only, dropped after)
    holds begin_command for 1.5 s right after its INSERT … ON CONFLICT DO NOTHING found the
    key taken, while another session deletes the key row."""
    import threading

    admin = superuser_url(stack)
    key = f"race-{uuid.uuid4().hex[:12]}"
    call = f"SELECT decision, coalesce(response_status::text, '-') FROM {begin_command(key, 999001, 'race')}"
    assert psql(stack, stack.postgres.url, call).stdout.strip() == "proceed|-"
    setup = psql(stack, admin, "CREATE TABLE race_pause (armed boolean NOT NULL)", "INSERT INTO race_pause VALUES (true)",
                 "GRANT SELECT, UPDATE ON race_pause TO vpsgate_app",
                 """CREATE FUNCTION race_pause() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF (SELECT armed FROM race_pause) THEN
                            UPDATE race_pause SET armed = false;
                            PERFORM pg_sleep(1.5);
                        END IF;
                        RETURN NULL;
                    END $$""",
                 "CREATE TRIGGER race_pause AFTER INSERT ON idempotency_keys FOR EACH STATEMENT EXECUTE FUNCTION race_pause()")
    assert setup.returncode == 0, setup.stderr
    try:
        answer = {}
        caller = threading.Thread(target=lambda: answer.update(result=psql(stack, stack.postgres.url, call)))
        caller.start()
        time.sleep(0.5)  # begin_command now sits between its insert and its read
        deleted = psql(stack, admin, f"DELETE FROM idempotency_keys WHERE key = '{key}'")
        assert deleted.returncode == 0, deleted.stderr
        caller.join(timeout=30)
        result = answer["result"]
        assert result.returncode == 0, result.stderr
        # Not a 'replay' of nothing: the key is taken afresh.
        assert result.stdout.strip() in ("proceed|-", "busy|-"), result.stdout
        assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") in ("0", "1")
    finally:
        psql(stack, admin, "DROP TRIGGER IF EXISTS race_pause ON idempotency_keys", "DROP FUNCTION IF EXISTS race_pause()",
             "DROP TABLE IF EXISTS race_pause")
        sql(stack, "UPDATE operations SET state = 'failed', completed_at = now() WHERE vps_id = 999001 AND state = 'accepted'")
