"""One schema however it was reached: a database migrated from scratch and one that applied the
previous release's migrations 0001..0016 (with data in it) and was then upgraded end with the
same schema, and the functions either holds are exactly those the Database/ files define."""

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fastcgi_client import fastcgi_get  # talks to one instance without nginx
from vpsgate_e2e import as_superuser, fresh_database, psql
from vpsgate_stack import wait_until

ROOT = Path(__file__).resolve().parents[2]
# The previous release's migrations, as it shipped them; never loaded by vpsgate itself.
OLD_MIGRATIONS = ROOT / "Tests" / "fixtures" / "migrations-0016"
DATABASE = ROOT / "Database"


def migrate_as_the_previous_release(stack, url: str) -> None:
    """What `vpsgate migrate` of the previous release did: each file in its own transaction
    with its schema_migrations row (the same checksum: SHA-256 of the file's text)."""
    run = lambda text: subprocess.run([str(stack.postgres.bindir / "psql"), url, "-v", "ON_ERROR_STOP=1", "-qAtX"],
                                      input=text, capture_output=True, text=True)
    created = run("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, file_name text NOT NULL, "
                  "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    assert created.returncode == 0, created.stderr
    for path in sorted(OLD_MIGRATIONS.glob("*.sql")):
        sql = path.read_text()
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        result = run(f"BEGIN;\n{sql}\n;INSERT INTO schema_migrations (version, file_name, checksum) "
                     f"VALUES ({int(path.name[:4])}, '{path.name}', '{checksum}');\nCOMMIT;\n")
        assert result.returncode == 0, (path.name, result.stderr)


def some_data(stack, url: str) -> None:
    """Rows of the kinds a running deployment has: principals, grants, tokens, a policy, operations."""
    psql(stack, url, "INSERT INTO principals (name) VALUES ('alice'), ('bob')",
         "INSERT INTO grants (principal, resource_id, role, created_by) VALUES ('alice', 1001, 'operator', 'test')",
         "INSERT INTO api_tokens (principal, token_hash, hint, created_by) VALUES ('bob', repeat('ab', 32), 'vg_ab', 'test')",
         "INSERT INTO approval_policies (subject, vps_id, approvals, created_by) VALUES ('vps.stop', 1001, 1, 'test')",
         "INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, completed_at) "
         "VALUES ('6a0cbd3e-37b4-4e8e-9a57-1e1f5c9b7a10', 1001, 'vps.stop', 'succeeded', 'alice', 'c-1', 'k-1', now())",
         check=True)


def schema(stack, url: str) -> str:
    """`pg_dump --schema-only`, without comments, SET lines and the order of its blocks."""
    dump = subprocess.run([str(stack.postgres.bindir / "pg_dump"), "--schema-only", as_superuser(url)],
                          capture_output=True, text=True, check=True).stdout
    blocks, block = [], []
    for line in dump.splitlines():
        if line.startswith("--"):
            blocks.append("\n".join(block).strip())
            block = []
        elif not (line.startswith("SET ") or line.startswith("SELECT pg_catalog.set_config") or line.startswith("\\")):
            block.append(line)
    blocks.append("\n".join(block).strip())
    return "\n\n".join(sorted(b for b in blocks if b))


def defined_functions() -> dict[str, int]:
    """{name: how many definitions} over the Database/ files."""
    counts: dict[str, int] = {}
    for path in DATABASE.rglob("*.sql"):
        for name in re.findall(r"^CREATE OR REPLACE FUNCTION (\w+)\(", path.read_text(), re.M):
            counts[name] = counts.get(name, 0) + 1
    return counts


def live_functions(stack, url: str) -> dict[str, int]:
    """{name: overloads} of the functions in the schema, those of extensions left out."""
    rows = psql(stack, as_superuser(url), """
        SELECT p.proname, count(*) FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
        GROUP BY p.proname""", check=True).stdout
    return {name: int(n) for name, n in (line.split("|") for line in rows.splitlines())}


@pytest.fixture(scope="module")
def databases(stack):
    """(fresh, upgraded, the upgrade's output): one database migrated from scratch, one migrated
    by the previous release, given data, then migrated by this one."""
    fresh = fresh_database(stack, migrate=True)
    upgraded = fresh_database(stack)
    migrate_as_the_previous_release(stack, upgraded)
    some_data(stack, upgraded)
    result = stack.migrate(database_url=upgraded)
    assert result.returncode == 0, result.stdout + result.stderr
    return fresh, upgraded, result.stdout


def test_a_fresh_database_and_one_upgraded_from_0016_have_the_same_schema(stack, databases):
    fresh, upgraded, output = databases
    assert "recorded 0017_baseline.sql (replaces 1-16, all applied before)" in output
    assert "dropped function begin_command(text,text,text[],bigint,text,uuid,text,interval,jsonb)" in output
    assert schema(stack, fresh) == schema(stack, upgraded)
    # The data is still there, and a second run finds nothing to do.
    assert psql(stack, upgraded, "SELECT string_agg(name, ',' ORDER BY name) FROM principals").stdout.strip() == "alice,bob"
    again = stack.migrate(database_url=upgraded)
    assert again.returncode == 0 and again.stdout.startswith("schema is current"), again.stdout + again.stderr


@pytest.mark.parametrize("which", ["fresh", "upgraded"])
def test_the_live_functions_are_exactly_those_the_database_files_define(stack, databases, which):
    url = databases[0] if which == "fresh" else databases[1]
    assert live_functions(stack, url) == defined_functions()


def test_an_instance_serves_only_once_its_database_files_were_applied(stack, tmp_path):
    """A database the previous release migrated: an instance of this one answers /readyz 503
    until `vpsgate migrate` applied the migrations and the Database/ files. When the release
    after it changes a file and migrates, this instance (the previous release by then) still
    serves: its files were applied once."""
    url = fresh_database(stack)
    migrate_as_the_previous_release(stack, url)
    env = dict(stack.instance_env(9, database_url=url))
    env["VPSGATE_DATABASE_URL"] = url.replace("//vpsgate@", "//vpsgate_app@")  # an instance never serves as the owner
    process = subprocess.Popen([str(stack.binary), "serve"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: stack.socket_path(9).exists(), 10, "instance 9")
        status, body = fastcgi_get(stack.socket_path(9), "/readyz")
        assert status == 503 and "vpsgate migrate" in json.loads(body)["detail"]
        assert stack.migrate(database_url=url).returncode == 0
        assert fastcgi_get(stack.socket_path(9), "/readyz")[0] == 200
        newer = tmp_path / "Database"
        shutil.copytree(DATABASE, newer)
        view = newer / "views" / "audit_story.sql"
        view.write_text(view.read_text() + "\n-- the next release's edit\n")
        result = stack.migrate(database_url=url, database_dir=newer)
        assert result.returncode == 0 and "applied Database/views/audit_story.sql (new or changed)" in result.stdout, result.stdout
        assert fastcgi_get(stack.socket_path(9), "/readyz")[0] == 200
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_the_state_counts_and_events_follow_every_insert_update_and_delete_of_operations(stack):
    """operation_state_counts plus the appended changes equal the table by state after
    statements of several rows, an update that leaves some states as they were, and deletes;
    one event per insert and per change of state, none for an update that changes none."""
    url = fresh_database(stack, migrate=True)
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 7)]
    rows = ", ".join(f"('{id_}', {1000 + i}, 'vps.start', '{'accepted' if i < 4 else 'running'}', 'alice', 'c', 'k-{i}')"
                     for i, id_ in enumerate(ids))
    psql(stack, url,
         f"INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key) VALUES {rows}",
         f"UPDATE operations SET state = CASE WHEN id IN ('{ids[0]}', '{ids[4]}') THEN 'succeeded' ELSE state END",
         f"UPDATE operations SET next_check_at = now() WHERE id = '{ids[1]}'",
         f"UPDATE operations SET state = 'failed' WHERE id IN ('{ids[1]}', '{ids[2]}')",
         f"DELETE FROM operations WHERE id IN ('{ids[0]}', '{ids[3]}')", check=True)
    counted = psql(stack, url, """
        SELECT string_agg(state || '=' || n, ',' ORDER BY state) FROM (
            SELECT state, sum(n) AS n FROM (SELECT state, n FROM operation_state_counts
                                            UNION ALL SELECT state, delta FROM operation_state_changes) c
            GROUP BY state HAVING sum(n) <> 0) s""", check=True).stdout.strip()
    actual = psql(stack, url, "SELECT string_agg(state || '=' || n, ',' ORDER BY state) FROM "
                              "(SELECT state, count(*) AS n FROM operations GROUP BY state) s", check=True).stdout.strip()
    assert counted == actual == "failed=2,running=1,succeeded=1"
    events = psql(stack, url, "SELECT string_agg(type || ':' || (data -> 'operation' ->> 'id') || ':' "
                              "|| coalesce(data ->> 'previous_state', '-'), ',' ORDER BY id) FROM events", check=True).stdout.strip()
    assert sorted(events.split(",")) == sorted(
        [f"operation.{'accepted' if i < 4 else 'running'}:{id_}:-" for i, id_ in enumerate(ids)]
        + [f"operation.succeeded:{ids[0]}:accepted", f"operation.succeeded:{ids[4]}:running"]
        + [f"operation.failed:{ids[1]}:accepted", f"operation.failed:{ids[2]}:accepted"])
