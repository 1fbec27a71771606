"""Shutdown, database outages, migrations and configuration errors, with real processes."""

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fastcgi_client import fastcgi_get  # talks to one instance without nginx
from vpsgate_e2e import fresh_database, http_request
from vpsgate_stack import wait_until


def instance_serving(stack, correlation_id: str, timeout: float = 5) -> int:
    """Which instance logged this correlation id (each instance logs to its own file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index in (1, 2):
            if correlation_id in stack.log_path(f"vpsgate-{index}").read_text(errors="replace"):
                return index
        time.sleep(0.05)
    raise AssertionError(f"no instance logged {correlation_id}")


def test_sigterm_lets_the_slow_request_finish_while_the_other_instance_serves(stack):
    result = {}

    def slow():
        result["answer"] = http_request(stack, "GET", "/__debug/sleep?ms=3000", headers={"X-Request-ID": "slow-sigterm-1"}, timeout=30)

    thread = threading.Thread(target=slow)
    thread.start()
    index = instance_serving(stack, "slow-sigterm-1")
    process = stack.processes[f"vpsgate-{index}"]
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)

    # Meanwhile every request is served by the other instance.
    statuses = [http_request(stack, "GET", "/healthz")[0] for _ in range(30)]
    assert statuses == [200] * 30

    exit_code = process.wait(timeout=15)
    elapsed = time.monotonic() - started
    thread.join(timeout=15)
    status, _, body = result["answer"]
    assert status == 200, body
    assert json.loads(body) == {"slept_ms": 3000}
    assert exit_code == 0
    assert elapsed < 10, f"shutdown took {elapsed:.1f}s, the bound is 10s"
    assert not stack.socket_path(index).exists()

    stack.processes.pop(f"vpsgate-{index}")
    stack.start_instance(index)
    assert http_request(stack, "GET", "/readyz")[0] == 200


def test_shutdown_bound_abandons_requests_that_run_too_long(stack):
    """A request longer than VPSGATE_SHUTDOWN_TIMEOUT (10s here) does not hold the process forever."""
    def slow():
        # nginx may retry this GET on the other instance once the first one gives up on it;
        # the answer does not matter here, only the shutdown bound does.
        try:
            http_request(stack, "GET", "/__debug/sleep?ms=20000", headers={"X-Request-ID": "slow-bound-1"}, timeout=30)
        except OSError:
            pass

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    index = instance_serving(stack, "slow-bound-1")
    process = stack.processes.pop(f"vpsgate-{index}")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=20)
    elapsed = time.monotonic() - started
    assert exit_code == 1  # it says so: requests were abandoned
    assert 9.5 <= elapsed < 13, elapsed
    stack.start_instance(index)


def connected_sockets(path: Path) -> int:
    """Server-side connections on a unix socket: entries in state 03 (connected) with its path."""
    count = 0
    with open("/proc/net/unix") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(path) and fields[5] == "03":
                count += 1
    return count


def test_sigterm_wakes_workers_idle_on_kept_alive_connections(stack_factory):
    stack = stack_factory("keep", keep_conn=True, workers=4)
    for _ in range(40):
        assert http_request(stack, "GET", "/healthz")[0] == 200
    assert connected_sockets(stack.socket_path(1)) > 0, "nginx holds no kept-alive connection"
    process = stack.processes.pop("vpsgate-1")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert time.monotonic() - started < 3, "idle workers were not woken"
    assert [http_request(stack, "GET", "/healthz")[0] for _ in range(10)] == [200] * 10


def test_readyz_follows_postgresql_without_restarting_vpsgate(stack):
    pids = {name: p.pid for name, p in stack.processes.items()}
    assert http_request(stack, "GET", "/readyz")[0] == 200
    stack.postgres.stop()
    try:
        answers = [http_request(stack, "GET", "/readyz") for _ in range(6)]
        assert [a[0] for a in answers] == [503] * 6
        problem = json.loads(answers[0][2])
        assert problem["type"].endswith("#not-ready")
        assert answers[0][1]["Retry-After"] == "5"
        assert http_request(stack, "GET", "/healthz")[0] == 200  # alive, just not ready
    finally:
        stack.postgres.start()
    deadline = time.monotonic() + 20
    statuses = []
    while time.monotonic() < deadline:
        statuses = [http_request(stack, "GET", "/readyz")[0] for _ in range(4)]
        if statuses == [200] * 4:
            break
        time.sleep(0.25)
    assert statuses == [200] * 4
    assert {name: p.pid for name, p in stack.processes.items()} == pids
    assert all(p.poll() is None for p in stack.processes.values())


def test_concurrent_migrate_applies_every_migration_exactly_once(stack):
    url = fresh_database(stack)
    env = stack.instance_env(0, database_url=url)
    processes = [subprocess.Popen([str(stack.binary), "migrate"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    files = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "Migrations").glob("*.sql"))
    applied_lines = [line for out in outputs for line in out.splitlines()
                     if line.startswith("applied ") and not line.startswith("applied Database/")
                     and not line.startswith("applied all ")]
    assert sorted(line.split()[1] for line in applied_lines) == files
    rows = stack.postgres.psql("SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version",
                               url=url.replace("vpsgate@", "postgres@"))
    assert rows.splitlines() == [f"{int(name[:4])}|1" for name in files]


def test_an_edited_applied_migration_is_refused(stack, tmp_path):
    url = fresh_database(stack)
    migrations = tmp_path / "Migrations"
    shutil.copytree(Path(__file__).resolve().parents[2] / "Migrations", migrations)
    assert stack.migrate(migrations, url).returncode == 0
    first = sorted(migrations.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an afterthought\n")
    result = stack.migrate(migrations, url)
    assert result.returncode != 0
    assert "was edited after it was applied" in result.stdout + result.stderr
    assert first.name in result.stdout + result.stderr


def test_readyz_is_503_until_the_schema_is_migrated(stack):
    url = fresh_database(stack)
    env = dict(stack.instance_env(9, database_url=url))
    process = subprocess.Popen([str(stack.binary), "serve"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: stack.socket_path(9).exists(), 10, "instance 9")
        status, body = fastcgi_get(stack.socket_path(9), "/readyz")
        assert status == 503
        assert "vpsgate migrate" in json.loads(body)["detail"]
        assert stack.migrate(database_url=url).returncode == 0
        status, body = fastcgi_get(stack.socket_path(9), "/readyz")
        assert status == 200
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


@pytest.mark.parametrize("variable,value,expected", [
    ("VPSGATE_DATABASE_URL", "mysql://root@db/x", "VPSGATE_DATABASE_URL"),
    ("VPSGATE_DATABASE_URL", "postgresql://%zz@h/db", "VPSGATE_DATABASE_URL"),
    ("VPSGATE_LISTEN", ":9000", "VPSGATE_LISTEN"),
    ("VPSGATE_WORKERS", "lots", "VPSGATE_WORKERS"),
])
def test_bad_configuration_stops_startup_with_a_message(stack, variable, value, expected):
    env = dict(stack.instance_env(8), **{variable: value})
    result = subprocess.run([str(stack.binary), "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert expected in result.stderr
    assert not stack.socket_path(8).exists()

