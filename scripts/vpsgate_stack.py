"""Start and stop vpsgate's local stack: PostgreSQL, vpsgate instances and nginx.

One implementation serves `scripts/run` (the whole stack in the foreground), `scripts/test`
(a throwaway database for `swift test`) and the end-to-end tests (which start, stop and
kill pieces of it). Standard library only.

Run as root, PostgreSQL runs as the `postgres` user and nginx's workers as `www-data`;
run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import json
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0


def log(message: str) -> None:
    print(f"[vpsgate] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def statement_means(postgres, database: str, url: str, width: int = 100, top: int = 25) -> str:
    """pg_stat_statements of `database` (loaded and tracking), costliest first: level,
    calls, mean ms and the statement's start; for the scripts that compare SQL."""
    return postgres.psql(
        "SELECT CASE WHEN toplevel THEN 'top' ELSE 'nested' END, calls, round(mean_exec_time::numeric, 4) AS mean_ms, "
        f"left(regexp_replace(query, '\\s+', ' ', 'g'), {width}) FROM pg_stat_statements "
        f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{database}') "
        f"AND query !~* 'pg_stat_statements|pg_reload_conf' AND calls > 10 ORDER BY total_exec_time DESC LIMIT {top}", url=url)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def can_traverse(user: str, path: Path) -> bool:
    """Whether `user` can reach `path` (execute permission on it and every parent)."""
    if not IS_ROOT:
        return True
    result = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)],
                            capture_output=True)
    return result.returncode == 0


def runtime_dir(preferred: Path) -> Path:
    """`preferred` (normally .run/) when the service users can reach it, else a private /tmp dir."""
    preferred.mkdir(parents=True, exist_ok=True)
    if not IS_ROOT or (can_traverse("postgres", preferred) and can_traverse("www-data", preferred)):
        return preferred
    fallback = Path(tempfile.mkdtemp(prefix="vpsgate-run-"))
    fallback.chmod(0o755)
    log(f"{preferred} is not reachable by postgres/www-data; runtime files go to {fallback}")
    return fallback


# MARK: - PostgreSQL

def pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return Path(candidates[-1]).parent


# VPSGATE_PROBLEM_BASE_URL's default (Configuration.defaultProblemBaseURL).
DEFAULT_PROBLEM_BASE = "https://vpsgate.dev/docs"


class Postgres:
    """A local cluster on 127.0.0.1:port with trust authentication, for development and tests only."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir = data_dir
        self.port = port
        self.bindir = pg_bindir()
        self.os_user = "postgres" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
        self.started = False
        # More addresses to listen on, pg_hba.conf lines for them, and server settings.
        self.listen_addresses = ["127.0.0.1"]
        self.hba_lines: list[str] = []
        self.settings: dict[str, str] = {}
        # Extra environment for the server (a test runs it under a fake clock).
        self.environment: dict[str, str] = {}

    @property
    def url(self) -> str:
        """The application's role (vpsgate_app, created by the migrations): what serve uses."""
        return f"postgresql://vpsgate_app@127.0.0.1:{self.port}/vpsgate"

    @property
    def owner_url(self) -> str:
        """The schema owner's role: what migrate uses."""
        return f"postgresql://vpsgate@127.0.0.1:{self.port}/vpsgate"

    @property
    def admin_role_url(self) -> str:
        """The admin CLI's role (vpsgate_admin, created by the migrations): what grant and token use."""
        return f"postgresql://vpsgate_admin@127.0.0.1:{self.port}/vpsgate"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if IS_ROOT:
            args = ["runuser", "-u", self.os_user, "--"] + args
        return subprocess.run(args, check=True, **kwargs)

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if IS_ROOT:
            shutil.chown(self.data_dir, self.os_user, self.os_user)
        self._as_owner([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-locale"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        args = [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "status"]
        if IS_ROOT:
            args = ["runuser", "-u", self.os_user, "--"] + args
        return subprocess.run(args, capture_output=True).returncode == 0

    def start(self) -> None:
        if self.is_running():
            raise RuntimeError(f"a PostgreSQL server already runs on {self.data_dir}: is another "
                               "vpsgate stack running from this directory? Stop it first.")
        if self.hba_lines:
            hba = self.data_dir / "pg_hba.conf"
            lines = [line for line in self.hba_lines if line not in self._as_owner(
                ["cat", str(hba)], capture_output=True, text=True).stdout]
            if lines:
                self._as_owner(["sh", "-c", f"printf '%s\\n' \"$@\" >> {hba}", "sh", *lines])
        settings = "".join(f" -c {name}={value}" for name, value in self.settings.items())
        options = (f"-c listen_addresses={','.join(self.listen_addresses)} -c port={self.port} "
                   f"-c unix_socket_directories='' -c max_connections=300{settings}")
        self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l",
                        str(self.data_dir / "server.log"), "-o", options, "-w", "-t", "60", "start"],
                       stdout=subprocess.DEVNULL, env=dict(os.environ, **self.environment))
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        """Stops the server if this object started it (never someone else's)."""
        if not self.started or not (self.data_dir / "postmaster.pid").exists():
            return
        self.started = False
        self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode,
                        "-w", "-t", "60", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, sql: str, url: str | None = None) -> str:
        result = subprocess.run([str(self.bindir / "psql"), url or self.admin_url, "-v", "ON_ERROR_STOP=1",
                                 "-qAtX", "-c", sql], check=True, capture_output=True, text=True)
        return result.stdout.strip()

    def create_database(self, name: str = "vpsgate", owner: str = "vpsgate") -> None:
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{owner}'")
        if not exists:
            self.psql(f"CREATE ROLE {owner} LOGIN CREATEROLE")
        else:
            self.psql(f"ALTER ROLE {owner} CREATEROLE")  # clusters made before the app role existed
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
            self.psql(f"CREATE DATABASE {name} OWNER {owner}")

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class PgBouncer:
    """PgBouncer in transaction pool mode on 127.0.0.1:port in front of `postgres`, trust
    authentication, for tests only (run as the cluster's OS user: PgBouncer refuses root)."""

    def __init__(self, directory: Path, postgres: Postgres, port: int | None = None, pool_size: int = 20):
        self.directory = directory
        self.postgres = postgres
        self.port = port or free_port()
        self.pool_size = pool_size
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """vpsgate_app through the pooler: what serve uses with VPSGATE_DATABASE_POOL_MODE=transaction."""
        return f"postgresql://vpsgate_app@127.0.0.1:{self.port}/vpsgate"

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "userlist.txt").write_text("".join(
            f'"{role}" ""\n' for role in ("vpsgate_app", "vpsgate", "vpsgate_admin", "postgres")))
        (self.directory / "pgbouncer.ini").write_text(f"""[databases]
vpsgate = host=127.0.0.1 port={self.postgres.port} dbname=vpsgate

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.directory}/userlist.txt
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 1000
server_check_delay = 0
query_wait_timeout = 10
logfile = {self.directory}/pgbouncer.log
pidfile = {self.directory}/pgbouncer.pid
""")
        if IS_ROOT:
            subprocess.run(["chown", "-R", f"{self.postgres.os_user}:", str(self.directory)], check=True)
        # The user is switched in the child itself, so that SIGTERM reaches PgBouncer at once.
        owner = {}
        if IS_ROOT:
            entry = pwd.getpwnam(self.postgres.os_user)
            owner = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "cwd": str(self.directory)}
        self.process = subprocess.Popen([binary, str(self.directory / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True, **owner)
        wait_until(lambda: Stack._port_open(self.port) or self.process.poll() is not None, 30, "pgbouncer to listen")
        if self.process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {(self.directory / 'pgbouncer.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# MARK: - TLS

def ensure_tls(tls_dir: Path, extra_ips: tuple[str, ...] = ()) -> None:
    """A local CA and a server certificate for 127.0.0.1, localhost and `extra_ips`, made once."""
    if (tls_dir / "server.crt").exists() and (tls_dir / "ca.crt").exists():
        return
    tls_dir.mkdir(parents=True, exist_ok=True)
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "3650", "-subj", "/CN=vpsgate local CA", "-keyout", str(tls_dir / "ca.key"),
        "-out", str(tls_dir / "ca.crt"),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=localhost", "-keyout", str(tls_dir / "server.key"), "-out", str(tls_dir / "server.csr"))
    (tls_dir / "server.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:localhost{''.join(',IP:' + ip for ip in extra_ips)}\n"
        "extendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n")
    run("x509", "-req", "-in", str(tls_dir / "server.csr"), "-CA", str(tls_dir / "ca.crt"),
        "-CAkey", str(tls_dir / "ca.key"), "-CAcreateserial", "-days", "825",
        "-extfile", str(tls_dir / "server.ext"), "-out", str(tls_dir / "server.crt"))
    for key in ("ca.key", "server.key"):
        (tls_dir / key).chmod(0o600)


def issue_client_certificate(tls_dir: Path, name: str, subject: str, ca: str = "client-ca") -> tuple[Path, Path]:
    """A client certificate for `subject` (openssl -subj form) signed by CA `ca`, made on
    first use (the CA too); returns (certificate, key)."""
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_cert, ca_key = tls_dir / f"{ca}.crt", tls_dir / f"{ca}.key"
    tls_dir.mkdir(parents=True, exist_ok=True)
    if not ca_cert.exists():
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "3650", "-subj", f"/CN=vpsgate {ca}", "-keyout", str(ca_key), "-out", str(ca_cert),
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ca_key.chmod(0o600)
    cert, key, csr = tls_dir / f"{name}.crt", tls_dir / f"{name}.key", tls_dir / f"{name}.csr"
    if not cert.exists():
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", subject, "-keyout", str(key), "-out", str(csr))
        ext = tls_dir / f"{name}.ext"
        ext.write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n"
                       "basicConstraints=critical,CA:FALSE\n")
        run("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "30", "-extfile", str(ext), "-out", str(cert))
        key.chmod(0o600)
    return cert, key


# MARK: - The stack

class Stack:
    """PostgreSQL, N vpsgate instances and nginx, all on loopback under one runtime directory."""

    def __init__(self, run_dir: Path, *, https_port: int | None = None, pg_port: int | None = None,
                 instances: int = 2, workers: int = 16, keep_conn: bool = False,
                 binary: Path | None = None, extra_env: dict[str, str] | None = None,
                 read_timeout: str = "60s", production: bool = False, auth: str = "token",
                 token_cache: bool = False, oidc_url: str | None = None, tcp: bool = False,
                 destroy_approvals: int | None = None, pgbouncer: bool = False, serve_docs: bool = False):
        self.run_dir = runtime_dir(run_dir)
        # Approvals vps:destroy commands need (None: the shipped default policy, 1).
        self.destroy_approvals = destroy_approvals
        self.https_port = https_port or free_port()
        self.instance_count = instances
        self.workers = workers
        self.keep_conn = keep_conn
        self.read_timeout = read_timeout
        self.binary = Path(binary or os.environ.get("VPSGATE_BIN") or ROOT / ".build/debug/vpsgate")
        self.extra_env = dict(extra_env or {})
        self.postgres = Postgres(self.run_dir / "pg", pg_port or free_port())
        # Instances through PgBouncer in transaction mode (their LISTEN, migrations and the
        # admin CLI still direct), with VPSGATE_DATABASE_POOL_MODE=transaction.
        self.pgbouncer = PgBouncer(self.run_dir / "pgbouncer", self.postgres) if pgbouncer else None
        self.tls_dir = self.run_dir / "tls"
        self.sock_dir = self.run_dir / "sock"
        self.processes: dict[str, subprocess.Popen] = {}
        self.nginx_conf = self.run_dir / ("nginx-prod/nginx.conf" if production else "nginx.conf")
        self.sim_binary = self.binary.parent / "hostinger-sim"
        self.sim_port = free_port()
        self.sim_token = secrets.token_urlsafe(24)
        self.sim_action_delay_ms = 1000
        self.demo_token: str | None = None
        # The walkthrough's two people (docs/getting-started.md): one asks, the other approves.
        self.requester_token: str | None = None
        self.approver_token: str | None = None
        self.audit_url = ""
        # scripts/run: nginx serves docs/ at /docs/, and problem types point there (their
        # sections dereference on the local stack); otherwise VPSGATE_PROBLEM_BASE_URL's default.
        self.serve_docs = serve_docs
        # nginx/vpsgate.conf (the production configuration) instead of nginx/local.conf.in
        self.production = production
        self.auth = auth
        self.token_cache = token_cache
        self.oidc_url = oidc_url
        self.internal_port = free_port()
        # Instances on TCP (127.0.0.1, a port each) instead of unix sockets; a test may
        # place them elsewhere (network namespaces) with `instance_addresses` and
        # `instance_command_prefix`, and the simulator on more addresses with `sim_extra_listen`.
        self.tcp = tcp
        self.instance_addresses: dict[int, str] = {}
        self.instance_command_prefix: dict[int, list[str]] = {}
        self.sim_extra_listen: list[str] = []
        self.tls_extra_ips: tuple[str, ...] = ()
        self.instance_env_overrides: dict[int, dict[str, str]] = {}

    @property
    def secret_key_file(self) -> Path:
        """vpsgate's secret keys (VPSGATE_SECRET_KEY_FILE), made once per runtime directory."""
        path = self.run_dir / "secret-keys"
        if not path.exists():
            path.write_text(f"k1 {secrets.token_hex(32)}\n")
            path.chmod(0o600)
        return path

    # URLs and files a client needs
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def sim_url(self) -> str:
        return f"https://127.0.0.1:{self.sim_port}"

    @property
    def sim_socket(self) -> Path:
        return self.sock_dir / "hostinger-sim.sock"

    def socket_path(self, index: int) -> Path:
        return self.sock_dir / f"vpsgate-{index}.sock"

    def instance_address(self, index: int) -> str:
        """Where instance `index` listens, as nginx's upstream names it (unix:/path or host:port)."""
        if index not in self.instance_addresses:
            self.instance_addresses[index] = f"127.0.0.1:{free_port()}" if self.tcp else f"unix:{self.socket_path(index)}"
        return self.instance_addresses[index]

    def instance_listening(self, index: int) -> bool:
        address = self.instance_address(index)
        if address.startswith("unix:"):
            return Path(address[5:]).exists()
        host, port = address.rsplit(":", 1)
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex((host, int(port))) == 0

    def log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    # MARK: database

    def start_database(self) -> None:
        self.postgres.init()
        self.postgres.start()
        self.postgres.create_database()
        if self.pgbouncer:
            self.pgbouncer.start()

    def migrate(self, migrations_dir: Path | None = None, database_url: str | None = None,
                database_dir: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.binary), "migrate"], env=self.instance_env(
            0, migrations_dir=migrations_dir, database_url=database_url, database_dir=database_dir),
            capture_output=True, text=True)

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs an admin command (`token …`, `grant …`) against the stack's database."""
        result = subprocess.run([str(self.binary), *args], env=self.instance_env(0), capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"vpsgate {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    def create_token(self, principal: str, expires: str | None = None) -> str:
        args = ["token", "create", "--principal", principal] + (["--expires", expires] if expires else [])
        return self.admin(*args).stdout.strip()

    def grant(self, principal: str, vps: str, role: str, expires: str | None = None) -> None:
        self.admin("grant", "add", "--principal", principal, "--vps", vps, "--role", role,
                   *(["--expires", expires] if expires else []))

    def add_walkthrough_principals(self) -> None:
        """`requester` (operator on every VPS, admin on VM 1001) and `approver` (approver on every
        VPS), each with a token: a command that needs an approval, and the person who gives it."""
        self.grant("requester", "*", "operator")
        self.grant("requester", "1001", "admin")
        self.requester_token = self.create_token("requester")
        self.grant("approver", "*", "approver")
        self.approver_token = self.create_token("approver")
        # `auditor`: a database login in vpsgate_auditor, as a DBA would give one, for the
        # documented audit queries (VPSGATE_AUDIT_DATABASE_URL in the env file).
        self.postgres.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditor') THEN "
                           "CREATE ROLE auditor LOGIN IN ROLE vpsgate_auditor; END IF; END $$")
        self.audit_url = f"postgresql://auditor@127.0.0.1:{self.postgres.port}/vpsgate"

    def grant_resource(self, principal: str, resource: str, role: str) -> None:
        """A grant on `firewall:4001`, `public_key:*`, `post_install_script:6001` or `account`."""
        self.admin("grant", "add", "--principal", principal, "--resource", resource, "--role", role)

    # MARK: vpsgate instances

    def instance_env(self, index: int, *, migrations_dir: Path | None = None,
                     database_url: str | None = None, database_dir: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VPSGATE_")}
        env.update({
            "VPSGATE_LISTEN": self.instance_address(index) if index else f"unix:{self.socket_path(index)}",
            "VPSGATE_DATABASE_URL": database_url or self.postgres.url,
            "VPSGATE_MIGRATION_DATABASE_URL": database_url or self.postgres.owner_url,
            "VPSGATE_ADMIN_DATABASE_URL": self.postgres.admin_role_url,
            "VPSGATE_SECRET_KEY_FILE": str(self.secret_key_file),
            "VPSGATE_MIGRATIONS_DIR": str(migrations_dir or ROOT / "Migrations"),
            "VPSGATE_DATABASE_DIR": str(database_dir or ROOT / "Database"),
            "VPSGATE_INSTANCE": f"vpsgate-{index}",
            "VPSGATE_WORKERS": str(self.workers),
            "HOSTINGER_API_URL": self.sim_url,
            "HOSTINGER_API_TOKEN": self.sim_token,
            "HOSTINGER_CA_FILE": str(self.ca_file),
        })
        if self.pgbouncer and not database_url:
            env.update({"VPSGATE_DATABASE_URL": self.pgbouncer.url, "VPSGATE_DATABASE_POOL_MODE": "transaction",
                        "VPSGATE_LISTEN_DATABASE_URL": self.postgres.url})
        if self.serve_docs:
            env["VPSGATE_PROBLEM_BASE_URL"] = self.problem_base
        if IS_ROOT:
            env["VPSGATE_SOCKET_GROUP"] = "www-data"
        if not env["VPSGATE_LISTEN"].startswith("unix:"):
            env["VPSGATE_ALLOWED_PEERS"] = "127.0.0.1"  # nginx on this host
        env.update(self.extra_env)
        env.update(self.instance_env_overrides.get(index, {}))
        return env

    def start_instance(self, index: int, wait: bool = True) -> subprocess.Popen:
        self.sock_dir.mkdir(parents=True, exist_ok=True)
        self.sock_dir.chmod(0o755)
        name = f"vpsgate-{index}"
        logfile = open(self.log_path(name), "ab")
        command = self.instance_command_prefix.get(index, []) + [str(self.binary), "serve"]
        process = subprocess.Popen(command, env=self.instance_env(index),
                                   stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
        logfile.close()
        self.processes[name] = process
        if wait:
            wait_until(lambda: self.instance_listening(index) or process.poll() is not None,
                       30, f"{name} to listen")
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: "
                                   f"{self.log_path(name).read_text()[-2000:]}")
        return process

    def stop_instance(self, index: int, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        process = self.processes.pop(f"vpsgate-{index}", None)
        if process is None or process.poll() is not None:
            return process.returncode if process else 0
        process.send_signal(sig)
        return process.wait(timeout=timeout)

    # MARK: hostinger-sim

    def start_sim(self) -> subprocess.Popen:
        self.sock_dir.mkdir(parents=True, exist_ok=True)
        self.sock_dir.chmod(0o755)
        env = dict(os.environ, HOSTINGER_SIM_TOKEN=self.sim_token)
        if IS_ROOT:
            env["HOSTINGER_SIM_SOCKET_GROUP"] = "www-data"
        logfile = open(self.log_path("hostinger-sim"), "ab")
        process = subprocess.Popen([str(self.sim_binary), "--listen", f"unix:{self.sim_socket}",
                                    "--action-delay-ms", str(self.sim_action_delay_ms)],
                                   env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
        logfile.close()
        self.processes["hostinger-sim"] = process
        wait_until(lambda: self.sim_socket.exists() or process.poll() is not None, 30, "hostinger-sim to listen")
        if process.poll() is not None:
            raise RuntimeError(f"hostinger-sim exited: {self.log_path('hostinger-sim').read_text()[-2000:]}")
        return process

    def sim(self, method: str, path: str, body=None, token: str | None = None, headers=None):
        """Calls the simulator over HTTPS; returns (status, headers, parsed JSON or raw bytes)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        all_headers = {"User-Agent": "vpsgate-tests/1", "Accept": "application/json",
                       "Authorization": f"Bearer {self.sim_token if token is None else token}"}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        all_headers = {k: v for k, v in all_headers.items() if v is not None}
        request = urllib.request.Request(self.sim_url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, context=self.ssl_context(), timeout=30) as response:
                status, head, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, head, raw = error.code, dict(error.headers), error.read()
        try:
            return status, head, json.loads(raw)
        except ValueError:
            return status, head, raw

    # MARK: nginx

    def render_nginx(self) -> None:
        if self.production:
            return self.render_production_nginx()
        servers = "\n".join(f"        server {self.instance_address(i)} max_fails=0;"
                            for i in range(1, self.instance_count + 1))
        if not servers:
            servers = "        server 127.0.0.1:9 down;"
        sim_server = self.sim_server_block()
        keepalive = f"        keepalive {self.workers};" if self.keep_conn else ""
        keep_conn = "fastcgi_keep_conn on;" if self.keep_conn else ""
        text = (ROOT / "nginx/local.conf.in").read_text()
        rendered_dir = self.run_dir / "vpsgate"
        replacements = {
            "@RUN_DIR@": str(self.run_dir), "@TLS_DIR@": str(self.tls_dir),
            "/var/cache/nginx/": f"{self.run_dir}/nginx-cache/",
            "@LISTEN@": f"127.0.0.1:{self.https_port}", "@UPSTREAM_SERVERS@": servers,
            "@UPSTREAM_KEEPALIVE@": keepalive, "@KEEP_CONN@": keep_conn,
            "@USER_DIRECTIVE@": "user www-data;" if IS_ROOT else "", "@READ_TIMEOUT@": self.read_timeout,
            "@CONSOLE_ROOT@": str(self.install_console()),
            "@PROBLEM_BASE@": self.problem_base, "@DOCS_ROOT@": str(self.install_docs()),
        }
        text = text.replace("@SIM_SERVER@", sim_server)
        def render(template: str) -> str:
            for key, value in replacements.items():
                template = template.replace(key, value)
            return template
        # The includes are rendered beside the configuration, with the same placeholders.
        for source in (ROOT / "nginx").rglob("*"):
            if source.is_file() and source.suffix != ".in":
                target = rendered_dir / source.relative_to(ROOT / "nginx")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(render(source.read_text()))
        self.nginx_conf.write_text(render(text))

    @property
    def problem_base(self) -> str:
        """The base of problem `type` URLs: this stack's /docs with `serve_docs`, else the default."""
        return f"{self.url}/docs" if self.serve_docs else DEFAULT_PROBLEM_BASE

    def install_docs(self) -> Path:
        """docs/*.md copied under the runtime directory (which nginx's workers may read)."""
        root = self.run_dir / "docs-root"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir()
        for page in (ROOT / "docs").glob("*.md"):
            shutil.copy(page, root / page.name)
        if IS_ROOT:
            subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
        return root

    def install_console(self) -> Path:
        """console/ copied under the runtime directory (which nginx's workers may read) as
        <root>/console/, as it is installed to /usr/share/vpsgate/console/; returns <root>."""
        root = self.run_dir / "console-root"
        if root.exists():
            shutil.rmtree(root)
        shutil.copytree(ROOT / "console", root / "console")
        if IS_ROOT:
            subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
        return root

    def sim_server_block(self) -> str:
        """hostinger-sim's server block, when the simulator runs."""
        if "hostinger-sim" not in self.processes:
            return ""
        listens = [f"127.0.0.1:{self.sim_port}"] + [f"{ip}:{self.sim_port}" for ip in self.sim_extra_listen]
        return ((ROOT / "nginx/hostinger-sim.conf.in").read_text()
                .replace("@SIM_LISTEN@", " ssl;\n        listen              ".join(listens))
                .replace("@SIM_SOCKET@", str(self.sim_socket)).replace("@TLS_DIR@", str(self.tls_dir))
                .replace("@RUN_DIR@", str(self.run_dir)))

    def render_production_nginx(self) -> None:
        """nginx/vpsgate.conf as shipped, installed under a test prefix: the files of nginx/ go
        to <prefix>/vpsgate/ as they would to /etc/nginx/vpsgate/, the site-specific lines
        (listen addresses, log and cache paths, the authentication variant, the OIDC endpoint)
        are replaced, each of which must be found, and upstream.conf names this stack's instances."""
        prefix = self.run_dir / "nginx-prod"
        target = prefix / "vpsgate"
        if target.exists():
            shutil.rmtree(target)
        for source in (ROOT / "nginx").rglob("*"):
            if source.is_file() and source.suffix != ".in":
                destination = target / source.relative_to(ROOT / "nginx")
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)

        def edit(relative: str, *pairs: tuple[str, str]) -> None:
            path = target / relative
            text = path.read_text()
            for old, new in pairs:
                if old not in text:
                    raise RuntimeError(f"nginx/{relative} no longer contains {old!r}: update the test renderer")
                text = text.replace(old, new)
            path.write_text(text)

        edit("vpsgate.conf",
             ("listen               443 ssl http2;", f"listen               127.0.0.1:{self.https_port} ssl http2;"),
             ("listen       10.0.0.10:9180;", f"listen       127.0.0.1:{self.internal_port};"),
             ("/var/log/nginx/", f"{self.run_dir}/"),
             ("root       /usr/share/vpsgate;", f"root       {self.install_console()};"),
             *([("auth/token/", f"auth/{self.auth}/")] if self.auth != "token" else []))
        edit("auth/token/http.conf", ("/var/cache/nginx/", f"{self.run_dir}/nginx-cache/"))
        if self.token_cache:
            edit("auth/token/server.conf", ("cache-off.conf", "cache-on.conf"))
        if self.oidc_url:
            edit("auth/oidc/server.conf", ("https://idp.example.com/oauth2/auth", self.oidc_url))
        (target / "tls").mkdir(exist_ok=True)
        if self.auth == "mtls":
            issue_client_certificate(self.tls_dir, "client-example", "/CN=client-example")  # makes the client CA
        for name in ("server.crt", "server.key", "client-ca.crt"):
            if (self.tls_dir / name).exists():
                shutil.copyfile(self.tls_dir / name, target / "tls" / name)
        servers = "\n".join(f"    server {self.instance_address(i)} max_fails=2 fail_timeout=5s;"
                            for i in range(1, self.instance_count + 1)) or "    server 127.0.0.1:9 down;"
        names = "\n".join(f"    vpsgate-{i}  {self.instance_address(i)};" for i in range(1, self.instance_count + 1))
        (target / "upstream.conf").write_text(
            f"upstream vpsgate {{\n{servers}\n}}\nupstream vpsgate_token_check {{\n{servers}\n}}\n"
            f"map $vpsgate_instance $vpsgate_instance_address {{\n{names}\n    default \"\";\n}}\n")
        temp = "\n".join(f"    {kind}_temp_path {self.run_dir}/nginx-{kind};"
                         for kind in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"))
        self.nginx_conf.write_text(f"""# The test's stand-in for /etc/nginx/nginx.conf around the shipped vpsgate.conf.
worker_processes 1;
pid {self.run_dir}/nginx.pid;
error_log {self.log_path("nginx-error")} warn;
{"user www-data;" if IS_ROOT else ""}
events {{ worker_connections 1024; }}
http {{
{temp}
    include vpsgate/vpsgate.conf;
{self.sim_server_block()}
}}
""")
        if IS_ROOT:
            subprocess.run(["chmod", "-R", "a+rX", str(prefix)], check=True)
            (target / "tls" / "server.key").chmod(0o600)

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal_port}"

    def start_nginx(self) -> None:
        ensure_tls(self.tls_dir, self.tls_extra_ips)
        (self.run_dir / "nginx-cache").mkdir(mode=0o755, exist_ok=True)  # /var/cache/nginx's stand-in
        self.render_nginx()
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        test = subprocess.run([nginx, "-t", "-q", "-c", str(self.nginx_conf), "-e", str(self.log_path("nginx-error"))],
                              capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {test.stderr}")
        logfile = open(self.log_path("nginx"), "ab")
        process = subprocess.Popen([nginx, "-c", str(self.nginx_conf), "-e", str(self.log_path("nginx-error")),
                                    "-g", "daemon off;"], stdout=logfile, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        logfile.close()
        self.processes["nginx"] = process
        wait_until(lambda: self._port_open(self.https_port) or process.poll() is not None, 30, "nginx to listen")
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {self.log_path('nginx-error').read_text()[-2000:]}")

    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    # MARK: whole stack

    def start(self) -> None:
        if self._port_open(self.https_port):
            raise RuntimeError(f"127.0.0.1:{self.https_port} is already in use: is another stack running?")
        self.start_database()
        self.start_sim()
        result = self.migrate()
        if result.returncode != 0:
            raise RuntimeError(f"vpsgate migrate failed: {result.stdout}{result.stderr}")
        if self.destroy_approvals is not None:
            self.admin("policy", "set", "--subject", "vps:destroy", "--vps", "*", "--approvals", str(self.destroy_approvals))
        for index in range(1, self.instance_count + 1):
            self.start_instance(index)
        self.start_nginx()

    def stop(self) -> None:
        """Stops every process this stack started; none is left behind."""
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                process.terminate()
        for name, process in list(self.processes.items()):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.pgbouncer:
            self.pgbouncer.stop()
        self.postgres.stop()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 10):
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, context=self.ssl_context(), timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def write_env(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = {
            "VPSGATE_URL": self.url,
            "VPSGATE_CA_FILE": str(self.ca_file),
            "VPSGATE_DATABASE_URL": self.postgres.url,
            "VPSGATE_ADMIN_DATABASE_URL": self.postgres.admin_role_url,
            "VPSGATE_SECRET_KEY_FILE": str(self.secret_key_file),
            "VPSGATE_BIN": str(self.binary),
            "HOSTINGER_SIM_URL": self.sim_url,
            "HOSTINGER_SIM_TOKEN": self.sim_token,
            "VPSGATE_DEMO_TOKEN": self.demo_token or "",
            "VPSGATE_REQUESTER_TOKEN": self.requester_token or "",
            "VPSGATE_APPROVER_TOKEN": self.approver_token or "",
            "VPSGATE_AUDIT_DATABASE_URL": self.audit_url,
        }
        path.write_text("".join(f"export {k}='{v}'\n" for k, v in lines.items()))


# MARK: - Commands

def command_run(args) -> int:
    stack = Stack(ROOT / ".run", https_port=args.port, pg_port=args.pg_port, instances=args.instances,
                  binary=Path(args.binary) if args.binary else None, keep_conn=args.keep_conn,
                  workers=args.workers, serve_docs=True)
    stopping = False

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    # Set explicitly: a shell starting this in the background would leave SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        log("starting PostgreSQL, migrating, starting vpsgate instances and nginx")
        stack.start()
        stack.grant("demo", "*", "admin")
        stack.demo_token = stack.create_token("demo")
        stack.add_walkthrough_principals()
        stack.write_env(ROOT / ".run/env")
        status, _, body = stack.get("/readyz")
        log(f"/readyz: {status} {body.decode()}")
        print(f"""
vpsgate is running at {stack.url} ({args.instances} instances, PostgreSQL on 127.0.0.1:{stack.postgres.port}),
with hostinger-sim at {stack.sim_url} as its Hostinger.
Settings for your shell are in .run/env:

    . .run/env
    curl --cacert "$VPSGATE_CA_FILE" "$VPSGATE_URL/readyz"

Stop VM 1001 as the demo principal (admin on every VPS), then follow the operation:

    curl --cacert "$VPSGATE_CA_FILE" -X POST "$VPSGATE_URL/v1/vps/1001/stop" \\
         -H "Authorization: Bearer $VPSGATE_DEMO_TOKEN" -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" -i
    curl --cacert "$VPSGATE_CA_FILE" -H "Authorization: Bearer $VPSGATE_DEMO_TOKEN" "$VPSGATE_URL/v1/operations/<id>"

Logs: {stack.run_dir}/*.log. Press Ctrl-C to stop everything.
""", flush=True)
        while True:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    log(f"{name} exited with {process.returncode}; see {stack.log_path(name)}")
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        stopping = True
    finally:
        log("stopping")
        stack.stop()
        log("stopped")
    return 0 if stopping else 1


def command_with_services(args) -> int:
    """Starts a throwaway PostgreSQL and hostinger-sim behind nginx (HTTPS), runs a command
    with their addresses in the environment, and stops them."""
    root = Path(tempfile.mkdtemp(prefix="vpsgate-services-"))
    root.chmod(0o755)
    stack = Stack(root, instances=0, binary=Path(args.binary) if args.binary else None)
    try:
        stack.start_database()
        stack.start_sim()
        stack.start_nginx()
        # The roles the migrations create are the cluster's: made once here, so that test
        # suites migrating their own databases at the same moment never race to create them.
        migrated = stack.migrate()
        if migrated.returncode != 0:
            raise RuntimeError(f"vpsgate migrate failed: {migrated.stdout}{migrated.stderr}")
        env = dict(os.environ,
                   VPSGATE_TEST_DATABASE_URL=stack.postgres.owner_url,
                   VPSGATE_TEST_ADMIN_DATABASE_URL=stack.postgres.admin_url,
                   HOSTINGER_SIM_URL=stack.sim_url, HOSTINGER_SIM_TOKEN=stack.sim_token,
                   HOSTINGER_SIM_CA_FILE=str(stack.ca_file))
        return subprocess.run(args.command, env=env).returncode
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="run the whole stack in the foreground until Ctrl-C")
    run.add_argument("--port", type=int, default=8443)
    run.add_argument("--pg-port", type=int, default=55432)
    run.add_argument("--instances", type=int, default=2)
    run.add_argument("--binary", default=None)
    run.add_argument("--keep-conn", action="store_true", help="fastcgi_keep_conn on (see docs/nginx.md)")
    run.add_argument("--workers", type=int, default=16, help="worker threads per instance")
    run.set_defaults(handler=command_run)
    with_services = sub.add_parser("with-services",
                                   help="run a command against a throwaway PostgreSQL and hostinger-sim")
    with_services.add_argument("--binary", default=None, help="the vpsgate binary (hostinger-sim is beside it)")
    with_services.add_argument("command", nargs=argparse.REMAINDER)
    with_services.set_defaults(handler=command_with_services)
    args = parser.parse_args()
    if getattr(args, "command", None) and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
