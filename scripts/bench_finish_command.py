"""finish_command against an earlier version of itself, in one PostgreSQL under one load.

Usage: python3 scripts/bench_finish_command.py --binary .build/debug/vpsgate --before OLD.sql [--seconds 20]

OLD.sql is an earlier Database/functions/finish_command.sql (e.g. from `git show`); it is
installed beside the current one as finish_command_before. pgbench then runs two scripts
picked at random per transaction, each a command's second transaction on a fresh accepted
operation (the operation, its key and its received row made first, in the same
transaction): one calls the current function, the other the earlier one. Both see the same
machine load, so their pg_stat_statements means (track = all) compare. Prints the means of
the two functions and of every statement they run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vpsgate_stack import Stack, statement_means  # noqa: E402

SETUP = """\\set vps random(1, 256)
SELECT gen_random_uuid() AS id, nextval('bench_action_ids') AS action, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us \\gset
BEGIN;
INSERT INTO operations (id, vps_id, resource_type, command, state, requested_by, correlation_id, idempotency_key, dispatched_at)
VALUES (':id', :vps, 'vps', 'vps.start', 'accepted', 'bench', 'c-' || ':id', 'k-' || ':id', clock_timestamp());
INSERT INTO idempotency_keys (principal, key, fingerprint, state, operation_id) VALUES ('bench', 'k-' || ':id', 'f', 'in_flight', ':id');
"""
CALL = """SELECT {function}('bench', 'k-' || ':id', ':id', 'running', :action, 'start', 'sent', NULL, :now_us, true, 202,
       '/v1/operations/' || ':id', '\\x7b7d'::bytea,
       '{{"outcome": "accepted", "http_status": 202, "method": "POST", "path": "/v1/vps/1/start", "command": "vps.start"}}'::jsonb,
       NULL);
COMMIT;
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--before", required=True, help="an earlier finish_command.sql")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vpsgate-bench-"))
    root.chmod(0o755)
    stack = Stack(root, instances=0, binary=Path(args.binary))
    stack.postgres.settings["shared_preload_libraries"] = "pg_stat_statements"
    try:
        stack.start_database()
        result = stack.migrate()
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)
        owner = stack.postgres.owner_url
        before = Path(args.before).read_text()
        before = re.sub(r"\bfinish_command\(", "finish_command_before(", before)
        stack.postgres.psql(before, url=owner)
        stack.postgres.psql("CREATE SEQUENCE IF NOT EXISTS bench_action_ids START 1000000000", url=owner)
        admin = stack.postgres.admin_url.rsplit("/", 1)[0] + "/vpsgate"
        for statement in ("CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                          "ALTER SYSTEM SET pg_stat_statements.track = 'all'", "SELECT pg_reload_conf()"):
            stack.postgres.psql(statement, url=admin)
        scripts = Path(tempfile.mkdtemp())
        for name, function in (("after", "finish_command"), ("before", "finish_command_before")):
            (scripts / f"{name}.sql").write_text(SETUP + CALL.format(function=function))
        stack.postgres.psql("SELECT pg_stat_statements_reset()", url=admin)
        output = subprocess.run([str(stack.postgres.bindir / "pgbench"), "-n", "-c", str(args.clients), "-T", str(args.seconds),
                                 "-f", str(scripts / "after.sql"), "-f", str(scripts / "before.sql"), owner],
                                capture_output=True, text=True, timeout=args.seconds + 120)
        if output.returncode != 0:
            raise RuntimeError(output.stdout + output.stderr)
        for line in output.stdout.splitlines():
            if re.match(r"^(SQL script|  - (number of transactions|latency average))", line):
                print(line)
        print(statement_means(stack.postgres, "vpsgate", admin))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
