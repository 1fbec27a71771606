"""A command's two transactions (begin_command, finish_command) against two versions of the
Database/ files, side by side in one PostgreSQL under one load.

Usage: python3 scripts/bench_command_sql.py --binary .build/debug/vpsgate --before DIR [--after DIR]
       [--seconds 20] [--rows 20000] [--connect | --clients N --rate R]

Two databases of one cluster are migrated, one with each Database/ directory (--after:
the repository's), and filled alike with --rows earlier commands (operations, their keys,
audit rows and events, as the command path leaves them). Then two pgbench clients run at
once, one per database, each the same script: a command's begin_command (as vpsgate calls
it for POST /v1/vps/{id}/start, on one of 256 VPS) and its finish_command (succeeded, with
an action), each its own transaction, as vpsgate_app. Both see the same machine load, so
their pg_stat_statements means (track = all) compare. --connect makes each transaction a
new connection (pgbench -C): every function is compiled and every statement planned again,
as on a worker's first command. --clients 64 --rate 25 spreads the commands over 64
connections, a few each, as scripts/bench's c=1 run spreads them over its instances'
workers: PostgreSQL plans a PL/pgSQL statement with parameters afresh on each of its first
five runs in a session (custom plans). Prints each database's transactions and its statements'
means; run it more than once and with the sides swapped before trusting a difference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vpsgate_stack import ROOT, Stack, statement_means  # noqa: E402

AUDIT_BEGIN = ('{"correlation_id": "c", "trace_id": "0af7651916cd43dd8448eb211c80319c", "auth_type": "token", '
               '"client_address": "127.0.0.1", "user_agent": "bench", "method": "POST", "path": "/v1/vps/1/start", '
               '"command": "vps.start", "vps_id": 1, "request_params": {}, "elapsed_ms": 0.2}')
AUDIT_FINISH = ('{"correlation_id": "c", "trace_id": "0af7651916cd43dd8448eb211c80319c", "auth_type": "token", '
                '"client_address": "127.0.0.1", "user_agent": "bench", "method": "POST", "path": "/v1/vps/1/start", '
                '"command": "vps.start", "vps_id": 1, "request_params": {}, "hostinger_status": 200, '
                '"outcome": "accepted", "http_status": 202, "problem_type": null, "duration_ms": 3.5}')
ANSWERS = ('{"forbidden": {"outcome": "denied", "http_status": 403, "problem_type": "x"}, '
           '"replay": {"outcome": "replayed"}, "reused": {"outcome": "conflict", "http_status": 422, "problem_type": "x"}, '
           '"busy": {"outcome": "conflict", "http_status": 409, "problem_type": "x"}, '
           '"frozen": {"outcome": "denied", "http_status": 423, "problem_type": "x"}, '
           '"not_found": {"outcome": "denied", "http_status": 404, "problem_type": "x"}, '
           '"in_use": {"outcome": "conflict", "http_status": 409, "problem_type": "x"}, '
           '"reason_required": {"outcome": "denied", "http_status": 428, "problem_type": "x"}}')
REQUEST = '{"name": "start", "method": "POST", "path": "/api/vps/v1/virtual-machines/1/start", "repeat_safe": true}'

SCRIPT = f"""\\set vps random(1, 256)
SELECT gen_random_uuid() AS id \\gset
SELECT decision FROM begin_command('bench', 'k-' || ':id', ARRAY['f-' || ':id'], 'vps', NULL, :vps, 'vps.start', ':id',
    'c-' || ':id', make_interval(secs => 300), '{AUDIT_BEGIN}'::jsonb, '{ANSWERS}'::jsonb, 'vps:power', NULL,
    '{REQUEST}'::jsonb, NULL, NULL, 0);
SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us, nextval('bench_action_ids') AS action \\gset
SELECT finish_command('bench', 'k-' || ':id', ':id', 'succeeded', :action, 'start', 'success', NULL, :now_us, true, 202,
    '/v1/operations/' || ':id', '\\x7b7d'::bytea, '{AUDIT_FINISH}'::jsonb, NULL);
"""


def session_command() -> str:
    """SCRIPT for psql: one command with a fresh id and a random VPS, then a line `done`."""
    import random
    text = SCRIPT.split("\n", 2)[2].replace(":vps", str(random.randint(1, 256))).replace(":id", str(uuid.uuid4()))
    begin, finish = text.split("SELECT (extract", 1)
    finish = finish.split("\\gset\n", 1)[1].replace(":now_us", "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
    return begin + finish.replace(":action", "nextval('bench_action_ids')") + "\\echo done\n"


def fill(stack: Stack, url: str, rows: int) -> None:
    """The bench principal, and `rows` earlier commands made the way the command path makes
    them (through begin_command and finish_command), so the tables and indexes are not empty."""
    stack.postgres.psql(
        "INSERT INTO principals (name) VALUES ('bench') ON CONFLICT DO NOTHING; "
        "INSERT INTO grants (principal, resource_type, role, created_by) VALUES ('bench', 'vps', 'admin', 'bench'); "
        "CREATE SEQUENCE IF NOT EXISTS bench_action_ids START 1000000000; "
        "GRANT USAGE ON SEQUENCE bench_action_ids TO vpsgate_app", url=url)
    stack.postgres.psql(f"""
        DO $$
        DECLARE id uuid;
        BEGIN
            FOR i IN 1..{rows} LOOP
                id := gen_random_uuid();
                PERFORM begin_command('bench', 'k-' || id, ARRAY['f-' || id], 'vps', NULL, 1 + i % 256, 'vps.start', id,
                    'c-' || id, make_interval(secs => 300), '{AUDIT_BEGIN}'::jsonb, '{ANSWERS}'::jsonb, 'vps:power', NULL,
                    '{REQUEST}'::jsonb, NULL, NULL, 0);
                PERFORM finish_command('bench', 'k-' || id, id, 'succeeded', nextval('bench_action_ids'), 'start', 'success',
                    NULL, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, true, 202, '/v1/operations/' || id,
                    '\\x7b7d'::bytea, '{AUDIT_FINISH}'::jsonb, NULL);
            END LOOP;
        END
        $$""", url=url)
    stack.postgres.psql("VACUUM ANALYZE", url=url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--before", required=True, help="a Database/ directory")
    parser.add_argument("--after", default=str(ROOT / "Database"), help="a Database/ directory (default: the repository's)")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--connect", action="store_true", help="a new connection per transaction (pgbench -C)")
    parser.add_argument("--clients", type=int, default=1, help="connections per side (with --rate: few commands each)")
    parser.add_argument("--rate", type=int, help="commands per second per side (pgbench -R)")
    parser.add_argument("--sessions", type=int,
                        help="instead of pgbench: this many sessions per side, each warmed by --warm commands first, "
                             "then one command at a time taken by each session in turn (as vpsgate's workers take them)")
    parser.add_argument("--warm", type=int, default=8, help="--sessions: commands per session before the measurement")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vpsgate-bench-"))
    root.chmod(0o755)
    stack = Stack(root, instances=0, binary=Path(args.binary))
    stack.postgres.settings["shared_preload_libraries"] = "pg_stat_statements"
    sides = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    try:
        stack.start_database()
        port = stack.postgres.port
        urls = {}
        for name, directory in sides.items():
            database = f"vpsgate_{name}"
            stack.postgres.create_database(database)
            urls[name] = f"postgresql://vpsgate@127.0.0.1:{port}/{database}"
            result = stack.migrate(database_url=urls[name], database_dir=directory)
            if result.returncode != 0:
                raise RuntimeError(result.stdout + result.stderr)
            fill(stack, urls[name], args.rows)
        admin = stack.postgres.admin_url.rsplit("/", 1)[0] + "/vpsgate"
        for statement in ("CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                          "ALTER SYSTEM SET pg_stat_statements.track = 'all'", "SELECT pg_reload_conf()",
                          "SELECT pg_stat_statements_reset()"):
            stack.postgres.psql(statement, url=admin)
        script = Path(tempfile.mkdtemp()) / "command.sql"
        script.write_text(SCRIPT)
        outputs = {}
        counts = {}

        def run(name: str) -> None:
            app = f"postgresql://vpsgate_app@127.0.0.1:{port}/vpsgate_{name}"
            outputs[name] = subprocess.run([str(stack.postgres.bindir / "pgbench"), "-n", "-c", str(args.clients), "-T", str(args.seconds),
                                            *(["-C"] if args.connect else []), *(["-R", str(args.rate)] if args.rate else []),
                                            "-f", str(script), app],
                                           capture_output=True, text=True, timeout=args.seconds + 120)

        def rotate(name: str, phase: str) -> None:
            """One command at a time, each session in turn: --warm rounds, or --seconds of them."""
            sessions = pools[name]
            done = 0
            deadline = time.monotonic() + args.seconds
            while (done < args.warm * len(sessions)) if phase == "warm" else (time.monotonic() < deadline):
                session = sessions[done % len(sessions)]
                session.stdin.write(session_command())
                session.stdin.flush()
                while session.stdout.readline().strip() != "done":
                    pass
                done += 1
            counts[name] = done

        if args.sessions:
            pools = {}
            for name in sides:
                app = f"postgresql://vpsgate_app@127.0.0.1:{port}/vpsgate_{name}"
                pools[name] = [subprocess.Popen([str(stack.postgres.bindir / "psql"), app, "-qAtX", "-v", "ON_ERROR_STOP=1"],
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                               for _ in range(args.sessions)]
            for phase in ("warm", "measure"):
                if phase == "measure":
                    stack.postgres.psql("SELECT pg_stat_statements_reset()", url=admin)
                threads = [threading.Thread(target=rotate, args=(name, phase)) for name in sides]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            for sessions in pools.values():
                for session in sessions:
                    session.stdin.close()
                    session.wait(timeout=30)
            for name in sides:
                outputs[name] = subprocess.CompletedProcess([], 0, f"number of transactions actually processed: {counts[name]}\n", "")
        else:
            threads = [threading.Thread(target=run, args=(name,)) for name in sides]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for name in sides:
            output = outputs[name]
            if output.returncode != 0:
                raise RuntimeError(output.stdout + output.stderr)
            commands = next((line.split(":")[1].strip() for line in output.stdout.splitlines()
                             if "number of transactions actually processed" in line), "?")
            print(f"== {name} ({sides[name]}): {commands} commands")
            print(statement_means(stack.postgres, f"vpsgate_{name}", admin, width=90, top=22))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
