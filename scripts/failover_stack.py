"""A PostgreSQL pair that fails over by itself, on loopback, for trying vpsgate past one
database machine: pg_auto_failover's monitor and two data nodes (a primary and its
synchronous standby), each a `pg_autoctl run` process that supervises its postmaster.

    python3 scripts/failover_stack.py run [--dir DIR]    # start, print the URLs, Ctrl-C stops
    python3 scripts/failover_stack.py run --pgbouncer    # … and a PgBouncer in transaction mode

The end-to-end test Tests/e2e/test_failover.py puts a `FailoverCluster` in place of a
stack's single `Postgres` (same properties: url, owner_url, admin_role_url, admin_url,
psql, init, start, stop), so vpsgate reaches it through a libpq multi-host URL with
`target_session_attrs=read-write`. The timeouts are the short ones docs/failover.md
explains; the default pg_auto_failover timeouts fail over in about 50 s instead of 10.

Run as root, everything runs as the `postgres` user (PostgreSQL refuses root); no systemd:
processes are started here and stopped by their process group. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vpsgate_stack import IS_ROOT, PgBouncer, Postgres, free_port, log, pg_bindir, wait_until  # noqa: E402

# The monitor's health checks (milliseconds): a node is unhealthy after about 2 s of
# refused checks, and a primary that may still be alive behind a partition is given
# PRIMARY_DEMOTE_TIMEOUT_MS to demote itself before its standby is promoted. The keepers'
# network_partition_timeout (seconds) must stay well below it: that is how long a primary
# cut off from both the monitor and its standby keeps accepting writes before demoting
# itself (which synchronous replication turns into waiting, not loss).
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "2000",
    "pgautofailover.primary_demote_timeout": "6000",
}
NETWORK_PARTITION_TIMEOUT_S = "3"
# Server settings of both data nodes (the clone copies postgresql.conf).
NODE_SETTINGS = {"max_connections": "300", "wal_sender_timeout": "5s", "wal_receiver_timeout": "5s"}


class FailoverCluster:
    """A pg_auto_failover formation on 127.0.0.1: a monitor and two data nodes."""

    def __init__(self, root: Path, nodes: int = 2):
        self.root = root
        self.bindir = pg_bindir()
        self.os_user = Postgres(root, 0).os_user
        self.monitor_port = free_port()
        self.node_ports = [free_port() for _ in range(nodes)]
        self.port = self.node_ports[0]  # what a caller printing "PostgreSQL on port" shows
        self.processes: dict[str, subprocess.Popen] = {}
        self.started = False

    # URLs: every data node, the first one that accepts writes.
    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.node_ports)

    def _url(self, role: str, database: str) -> str:
        return f"postgresql://{role}@{self.hosts}/{database}?target_session_attrs=read-write&connect_timeout=2"

    @property
    def url(self) -> str:
        return self._url("vpsgate_app", "vpsgate")

    @property
    def owner_url(self) -> str:
        return self._url("vpsgate", "vpsgate")

    @property
    def admin_role_url(self) -> str:
        return self._url("vpsgate_admin", "vpsgate")

    @property
    def admin_url(self) -> str:
        return self._url("postgres", "postgres")

    @property
    def monitor_url(self) -> str:
        return f"postgresql://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=disable"

    def node_dir(self, index: int) -> Path:
        return self.root / f"node{index + 1}"

    # MARK: processes

    def _env(self) -> dict[str, str]:
        return dict(os.environ, XDG_CONFIG_HOME=str(self.root / "config"), XDG_DATA_HOME=str(self.root / "data"),
                    XDG_RUNTIME_DIR=str(self.root / "run"), PG_CONFIG=str(self.bindir / "pg_config"),
                    PATH=f"{self.bindir}:{os.environ.get('PATH', '')}")

    def _as_owner(self) -> dict:
        """Popen's arguments to run as the cluster's OS user: switched in the child itself (no
        runuser in between, whose own signal handling would delay a stop)."""
        owner = {"cwd": str(self.root), "env": self._env()}
        if IS_ROOT:
            entry = pwd.getpwnam(self.os_user)
            owner.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        return owner

    def _run(self, args: list[str], what: str, timeout: float = 120) -> None:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **self._as_owner())
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")

    def _spawn(self, name: str, pgdata: Path) -> None:
        logfile = open(self.root / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(["pg_autoctl", "run", "--pgdata", str(pgdata)], stdout=logfile,
                                                stderr=subprocess.STDOUT, start_new_session=True, **self._as_owner())
        logfile.close()

    def _initdb(self, pgdata: Path, settings: dict[str, str]) -> None:
        # initdb ourselves, once, without fsync (pg_autoctl's own initdb syncs), and copy the
        # result: initdb is seconds of CPU on a busy machine. The monitor never replicates
        # with the data nodes, so sharing a system identifier with them is harmless.
        template = self.root / "template"
        if not template.exists():
            self._run([str(self.bindir / "initdb"), "-N", "-D", str(template), "-U", "postgres", "--auth=trust",
                       "-E", "UTF8", "--no-locale"], f"initdb {template}")
        self._run(["cp", "-a", str(template), str(pgdata)], f"copy to {pgdata}")
        with open(pgdata / "postgresql.conf", "a") as conf:
            conf.write("".join(f"{name} = '{value}'\n" for name, value in settings.items()))

    # MARK: the formation

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for sub in ("config", "data", "run"):
            (self.root / sub).mkdir(exist_ok=True)
        if IS_ROOT:
            subprocess.run(["chown", "-R", f"{self.os_user}:", str(self.root)], check=True)

    def start(self) -> None:
        """Monitor, then the primary, then its standby (cloned from it); returns once the
        standby is the primary's synchronous standby."""
        common = ["--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl"]
        monitor = self.root / "monitor"
        self._initdb(monitor, {})
        self._run(["pg_autoctl", "create", "monitor", "--pgdata", str(monitor), "--pgport", str(self.monitor_port),
                   *common], "pg_autoctl create monitor")
        self._spawn("monitor", monitor)
        self.started = True
        wait_until(lambda: self._sql(self.monitor_port, "pg_auto_failover", "SELECT 1", check=False) == "1",
                   60, "the pg_auto_failover monitor")
        for name, value in MONITOR_SETTINGS.items():
            self._sql(self.monitor_port, "pg_auto_failover", f"ALTER SYSTEM SET {name} = '{value}'")
        self._sql(self.monitor_port, "pg_auto_failover", "SELECT pg_reload_conf()")
        for index, port in enumerate(self.node_ports):
            pgdata = self.node_dir(index)
            if index == 0:
                self._initdb(pgdata, NODE_SETTINGS)
            self._run(["pg_autoctl", "create", "postgres", "--pgdata", str(pgdata), "--pgport", str(port),
                       "--name", f"node{index + 1}", "--dbname", "vpsgate", "--monitor", self.monitor_url, *common],
                      f"pg_autoctl create postgres node{index + 1}", timeout=180)
            self._run(["pg_autoctl", "config", "set", "--pgdata", str(pgdata),
                       "timeout.network_partition_timeout", NETWORK_PARTITION_TIMEOUT_S], "pg_autoctl config set")
            self._spawn(f"node{index + 1}", pgdata)
            if index == 0:
                wait_until(lambda: self.states().get("node1") == "single", 60, "the first node to start")
        wait_until(lambda: sorted(self.states().values()) == ["primary"] + ["secondary"] * (len(self.node_ports) - 1),
                   90, "a primary and its synchronous standby")

    def states(self) -> dict[str, str]:
        """Each data node's state as its keeper last reported it to the monitor."""
        rows = self._sql(self.monitor_port, "pg_auto_failover",
                         "SELECT nodename, reportedstate FROM pgautofailover.node", check=False)
        return dict(line.split("|", 1) for line in rows.splitlines() if "|" in line)

    def primary(self) -> int:
        """The index of the node that is primary now, by the monitor's assignment as well as
        its keeper's report (a dead primary's last report still says primary); raises when
        none is."""
        rows = self._sql(self.monitor_port, "pg_auto_failover",
                         "SELECT nodename FROM pgautofailover.node WHERE reportedstate IN ('primary', 'wait_primary', 'single') "
                         "AND goalstate IN ('primary', 'wait_primary', 'single')")
        if len(rows.split()) != 1:
            raise RuntimeError(f"no single primary: {rows!r}")
        return int(rows.removeprefix("node")) - 1

    def postmaster_pid(self, index: int) -> int:
        return int((self.node_dir(index) / "postmaster.pid").read_text().split()[0])

    def kill_node(self, index: int) -> None:
        """The machine is gone: SIGKILL to the node's postmaster and its keeper, no goodbye."""
        os.kill(self.postmaster_pid(index), signal.SIGKILL)
        process = self.processes.get(f"node{index + 1}")
        if process and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def switchover(self) -> None:
        """A planned switch (the runbook's `pg_autoctl perform switchover`)."""
        self._run(["pg_autoctl", "perform", "switchover", "--pgdata", str(self.root / "monitor")],
                  "pg_autoctl perform switchover", timeout=120)

    # MARK: what Stack asks of its database

    def create_database(self) -> None:
        """The schema owner's role and the database pg_autoctl created, handed to it."""
        if not self.psql("SELECT 1 FROM pg_roles WHERE rolname = 'vpsgate'"):
            self.psql("CREATE ROLE vpsgate LOGIN CREATEROLE")
        self.psql("ALTER DATABASE vpsgate OWNER TO vpsgate")

    def psql(self, sql: str, url: str | None = None) -> str:
        result = subprocess.run([str(self.bindir / "psql"), url or self.admin_url, "-v", "ON_ERROR_STOP=1",
                                 "-qAtX", "-c", sql], check=True, capture_output=True, text=True)
        return result.stdout.strip()

    def _sql(self, port: int, database: str, sql: str, check: bool = True) -> str:
        result = subprocess.run([str(self.bindir / "psql"), f"postgresql://postgres@127.0.0.1:{port}/{database}?connect_timeout=2",
                                 "-qAtX", "-c", sql], capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise RuntimeError(f"{sql}: {result.stderr}")
        return result.stdout.strip()

    def stop(self) -> None:
        """Stops every process this object started (keepers stop their postmasters)."""
        if not self.started:
            return
        self.started = False
        # The monitor first: stopping a primary under a running monitor would fail over.
        for name in sorted(self.processes, key=lambda n: (n != "monitor", n), reverse=False):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes.clear()
        # A postmaster left without its keeper (a killed node's is dead already).
        for pgdata in [self.root / "monitor"] + [self.node_dir(i) for i in range(len(self.node_ports))]:
            if (pgdata / "postmaster.pid").exists():
                subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "-t", "20", "stop"],
                               capture_output=True, **self._as_owner())


def command_run(args) -> int:
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="vpsgate-failover-"))
    cluster = FailoverCluster(root)
    bouncer = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        log(f"starting a pg_auto_failover monitor and {len(cluster.node_ports)} data nodes under {root}")
        cluster.init()
        cluster.start()
        cluster.create_database()
        lines = [f"VPSGATE_DATABASE_URL='{cluster.url}'", f"VPSGATE_MIGRATION_DATABASE_URL='{cluster.owner_url}'",
                 f"VPSGATE_ADMIN_DATABASE_URL='{cluster.admin_role_url}'"]
        if args.pgbouncer:
            # One pooler in front of the first node, for trying the settings; production
            # runs one per application host, pointed at the primary (see docs/failover.md).
            fake = Postgres(cluster.node_dir(0), cluster.node_ports[0])
            bouncer = PgBouncer(root / "pgbouncer", fake)
            bouncer.start()
            lines[0] = f"VPSGATE_DATABASE_URL='{bouncer.url}'"
            lines += ["VPSGATE_DATABASE_POOL_MODE=transaction", f"VPSGATE_LISTEN_DATABASE_URL='{cluster.url}'"]
        print("\n".join(["", "The formation is up:", *(f"    export {line}" for line in lines), "",
                         f"State: pg_autoctl show state --pgdata {root}/monitor (as {cluster.os_user}, with",
                         f"    XDG_CONFIG_HOME={root}/config XDG_DATA_HOME={root}/data).",
                         "Press Ctrl-C to stop everything.", ""]), flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        log("stopping")
        if bouncer:
            bouncer.stop()
        cluster.stop()
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="start the formation in the foreground until Ctrl-C")
    run.add_argument("--dir", default=None, help="where the clusters live (default: a new temporary directory, removed at the end)")
    run.add_argument("--pgbouncer", action="store_true", help="also a PgBouncer in transaction mode")
    run.add_argument("--seconds", type=int, default=0, help="stop after this many seconds (0: at Ctrl-C)")
    run.set_defaults(handler=command_run)
    args = parser.parse_args()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
