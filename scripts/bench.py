"""vpsgate's benchmark: every scenario against its baseline in the same run, reported as ratios.

Writes results/bench-<time>/results.json, results.md and latency.svg, and prints the goals
of the performance work with met / not met. Bounded: each wrk run lasts --seconds (default
5); the whole run takes about 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vpsgate_stack import ROOT, Stack, wait_until  # noqa: E402

WRK = ROOT / "scripts/wrk"
CONCURRENCY = (1, 16, 64)
# Server connections PgBouncer lends in the pooled scenario.
POOL_SIZE = 40


def parse_wrk(output: str) -> dict:
    def latency(label):
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            return None
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    errors = re.search(r"non-2xx or socket errors: (\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50_ms": latency("50"), "p99_ms": latency("99"),
        "errors": int(errors.group(1)) if errors else (int(non2xx.group(1)) if non2xx else 0),
    }


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def cpu_seconds(pids) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total / ticks


def context_switches(pids) -> int:
    """Voluntary and involuntary context switches of every thread of `pids` so far (a thread
    that ended takes its count with it; vpsgate's workers live as long as the process)."""
    total = 0
    for pid in pids:
        for status in Path(f"/proc/{pid}/task").glob("*/status"):
            try:
                for line in status.read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total


def peak_rss_mb(pid) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    def __init__(self, stack: Stack, seconds: int):
        self.stack = stack
        self.seconds = seconds

    def vpsgate_pids(self):
        return [p.pid for name, p in self.stack.processes.items() if name.startswith("vpsgate-")]

    def wrk(self, url: str, concurrency: int, script: str | None = None, env: dict | None = None) -> dict:
        threads = 1 if concurrency == 1 else 2
        args = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{self.seconds}s", "--latency", "--timeout", "10s"]
        if script:
            args += ["-s", str(WRK / script)]
        before = cpu_seconds(self.vpsgate_pids())
        switches_before = context_switches(self.vpsgate_pids())
        busy_before = machine_busy()
        output = subprocess.run(args + [url], capture_output=True, text=True, timeout=self.seconds + 60,
                                env=dict(os.environ, **(env or {}), VPSGATE_BENCH_THREADS=str(threads))).stdout
        used = cpu_seconds(self.vpsgate_pids()) - before
        switches = context_switches(self.vpsgate_pids()) - switches_before
        busy_after = machine_busy()
        result = parse_wrk(output)
        result["machine_cpu_busy"] = round((busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1), 3)
        result["vpsgate_cpu_ms_per_request"] = round(used * 1000 / result["requests"], 4) if result["requests"] else None
        # Threads parked and woken: each blocking read, lock or hand-off between threads.
        result["vpsgate_switches_per_request"] = round(switches / result["requests"], 2) if result["requests"] else None
        return result


def pgbench(stack: Stack, concurrency: int, seconds: int, notify: bool = False) -> dict:
    """A durable single-row insert per transaction; with `notify`, the same transaction also
    sends a NOTIFY (what an event that wakes a waiting read costs the commit)."""
    script = Path(tempfile.mkdtemp()) / "insert.sql"
    script.write_text("WITH i AS (INSERT INTO bench_floor DEFAULT VALUES RETURNING 1) SELECT pg_notify('vpsgate_bench', 'x') FROM i;\n"
                      if notify else "INSERT INTO bench_floor DEFAULT VALUES;\n")
    output = subprocess.run([str(stack.postgres.bindir / "pgbench"), "-n", "-c", str(concurrency), "-j", str(min(concurrency, 2)),
                             "-T", str(seconds), "-f", str(script), "-r", stack.postgres.owner_url],
                            capture_output=True, text=True, timeout=seconds + 60).stdout
    tps = re.search(r"tps = ([\d.]+)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    return {"rps": float(tps.group(1)) if tps else 0.0, "p50_ms": float(latency.group(1)) if latency else None,
            "p99_ms": None, "errors": 0, "note": "pgbench, average latency"}


def readyz_after_start(stack: Stack, index: int) -> float:
    """Milliseconds from spawning an instance to its first 200 on /readyz (through its socket)."""
    from fastcgi_client import fastcgi_get
    started = time.monotonic()
    stack.start_instance(index, wait=False)
    def ready():
        if not stack.socket_path(index).exists():
            return False
        try:
            return fastcgi_get(stack.socket_path(index), "/readyz")[0] == 200
        except OSError:
            return False
    wait_until(ready, 10, "readyz", interval=0.002)
    return (time.monotonic() - started) * 1000


def instrumentation(stack: Stack) -> dict:
    """Sums and counts of vpsgate's own histograms over its instances (from /metrics)."""
    from fastcgi_client import fastcgi_get
    totals: dict = {}
    for name in stack.processes:
        if not name.startswith("vpsgate-"):
            continue
        index = int(name.split("-")[1])
        _, body = fastcgi_get(stack.socket_path(index), "/metrics")
        for line in body.decode().splitlines():
            match = re.match(r'^(vpsgate_\w+_(?:sum|count))\{([^}]*)\} ([\d.e+-]+)$', line)
            if match and ('route="vps.start"' in match.group(2) or 'operation="start"' in match.group(2)
                          or "statement=" in match.group(2)):
                key = match.group(1) + "{" + match.group(2) + "}"
                totals[key] = totals.get(key, 0) + float(match.group(3))
    return totals


def track_statements(stack: Stack, on: bool) -> None:
    """pg_stat_statements (loaded at start) tracks every statement, nested ones inside the
    PL/pgSQL functions included, only while `on`: the other scenarios run untracked."""
    admin = stack.postgres.admin_url.rsplit("/", 1)[0] + "/vpsgate"
    if on:
        stack.postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", url=admin)
    stack.postgres.psql(f"ALTER SYSTEM SET pg_stat_statements.track = '{'all' if on else 'none'}'", url=admin)
    stack.postgres.psql("ALTER SYSTEM SET pg_stat_statements.track_utility = off", url=admin)
    stack.postgres.psql("SELECT pg_reload_conf()", url=admin)
    if on:
        time.sleep(0.5)  # every backend has read the new setting before the run starts
        stack.postgres.psql("SELECT pg_stat_statements_reset()", url=admin)


def statements(stack: Stack, top: int = 25) -> list:
    """Each statement's share of a command at c=1, from pg_stat_statements: calls and
    milliseconds per command (commands counted by begin_command's calls), mean ms per call,
    and whether it ran inside a function (nested) or was sent by vpsgate (top level)."""
    admin = stack.postgres.admin_url.rsplit("/", 1)[0] + "/vpsgate"
    rows = stack.postgres.psql(
        "WITH s AS (SELECT * FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'vpsgate')), "
        "n AS (SELECT greatest(sum(calls), 1) AS commands FROM s WHERE toplevel AND query ~ 'begin_command\\(') "
        "SELECT CASE WHEN toplevel THEN 'top' ELSE 'nested' END, round((calls / n.commands)::numeric, 2), "
        "round(mean_exec_time::numeric, 3), round((total_exec_time / n.commands)::numeric, 3), "
        "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) "
        f"FROM s, n WHERE query !~* 'pg_stat_statements|pg_reload_conf' ORDER BY total_exec_time DESC LIMIT {top}", url=admin)
    return [dict(zip(("level", "calls_per_command", "mean_ms", "ms_per_command", "statement"), line.split("|", 4)))
            for line in rows.splitlines()]


def profile(before: dict, after: dict) -> dict:
    """Where a command's time goes at c=1: mean milliseconds per part, from the histograms."""
    def mean(family, label):
        s = after.get(f"{family}_sum{{{label}}}", 0) - before.get(f"{family}_sum{{{label}}}", 0)
        c = after.get(f"{family}_count{{{label}}}", 0) - before.get(f"{family}_count{{{label}}}", 0)
        return round(s / c * 1000, 3) if c else None
    return {
        "vpsgate_total_ms": mean("vpsgate_request_duration_seconds", 'route="vps.start"'),
        "begin_command_ms": mean("vpsgate_database_duration_seconds", 'statement="begin_command"'),
        "hostinger_call_ms": mean("vpsgate_hostinger_call_duration_seconds", 'operation="start"'),
        "finish_command_ms": mean("vpsgate_database_duration_seconds", 'statement="finish_command"'),
    }


def prepare(stack: Stack, vps_count: int) -> dict:
    stack.postgres.psql("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())",
                        url=stack.postgres.owner_url)
    stack.postgres.psql("GRANT INSERT ON bench_floor TO vpsgate_app; GRANT USAGE ON SEQUENCE bench_floor_id_seq TO vpsgate_app",
                        url=stack.postgres.owner_url)
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    for vps in range(1005, 1005 + vps_count):
        stack.sim("POST", "/__sim/vms", {"id": vps})
    stack.grant("bench", "*", "admin")
    token = stack.create_token("bench")
    return {"VPSGATE_DEMO_TOKEN": token, "HOSTINGER_SIM_TOKEN": stack.sim_token,
            "VPSGATE_BENCH_VPS_FIRST": "1005", "VPSGATE_BENCH_VPS_COUNT": str(vps_count)}


def command_variant(args, binary: Path, env_extra: dict, what: str, pgbouncer: bool = False) -> dict:
    """The command scenario at each concurrency on a stack of its own, set up as the command
    scenario's (two instances, the same workers) but for `env_extra` and `pgbouncer`; the
    ratios compare it with the command scenario of the same run."""
    root = Path(tempfile.mkdtemp(prefix="vpsgate-bench-"))
    root.chmod(0o755)
    stack = Stack(root, instances=2, workers=args.workers, binary=binary, extra_env=env_extra, pgbouncer=pgbouncer)
    if stack.pgbouncer:
        stack.pgbouncer.pool_size = POOL_SIZE
    runs = {}
    try:
        stack.start()
        env = prepare(stack, 256)
        for concurrency in CONCURRENCY:
            print(f"[bench] command {what} c={concurrency}", file=sys.stderr, flush=True)
            runs[str(concurrency)] = Bench(stack, args.seconds).wrk(stack.url, concurrency, "command.lua", env)
    finally:
        stack.stop()
    return runs


def otlp_sink():
    """An OTLP/HTTP receiver on a free loopback port that reads every export and answers 200;
    returns the server (serving on a thread) and its byte count."""
    import http.server
    import threading
    received = {"bytes": 0, "requests": 0}

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received["bytes"] += len(body)
            received["requests"] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def tracing_pair(args, binary: Path, env_extra: dict, rounds: int = 2) -> tuple[dict, dict, int]:
    """The command scenario with tracing off and on, side by side: two stacks set up alike
    (but for the OTLP endpoint of the second, a receiver in this process that reads and
    drops every export), both up at once, their wrk runs interleaved at each concurrency
    (off, on, then on, off, … `rounds` times each), so that a machine whose load drifts (other
    builds) weighs on both alike. Returns (off, on, OTLP bytes received): per concurrency the
    mean of the rounds' req/s and latencies, errors summed, and the rounds' req/s."""
    receiver, received = otlp_sink()
    stacks, envs = [], []
    try:
        for extra in ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}"}):
            root = Path(tempfile.mkdtemp(prefix="vpsgate-bench-"))
            root.chmod(0o755)
            stack = Stack(root, instances=2, workers=args.workers, binary=binary, extra_env=dict(env_extra, **extra))
            stack.sim_action_delay_ms = 0
            stacks.append(stack)
            stack.start()
            envs.append(prepare(stack, 256))
        runs: list[dict] = [{}, {}]
        for concurrency in CONCURRENCY:
            for round_ in range(rounds):
                for which in ((0, 1) if round_ % 2 == 0 else (1, 0)):
                    print(f"[bench] command tracing {'on' if which else 'off'} c={concurrency} round {round_ + 1}",
                          file=sys.stderr, flush=True)
                    before = instrumentation(stacks[which]) if concurrency == 1 else None
                    result = Bench(stacks[which], args.seconds).wrk(stacks[which].url, concurrency, "command.lua", envs[which])
                    if before is not None:
                        # Where a command's time goes inside vpsgate at c=1 (its histograms).
                        result["profile"] = profile(before, instrumentation(stacks[which]))
                    runs[which].setdefault(str(concurrency), []).append(result)
    finally:
        for stack in stacks:
            stack.stop()
        receiver.shutdown()

    def mean(results: list[dict], field: str):
        values = [r[field] for r in results if r.get(field) is not None]
        return round(sum(values) / len(values), 3) if values else None

    merged = [{c: {"rps": mean(rs, "rps"), "requests": sum(r["requests"] for r in rs), "p50_ms": mean(rs, "p50_ms"),
                   "p99_ms": mean(rs, "p99_ms"), "errors": sum(r["errors"] for r in rs),
                   "vpsgate_cpu_ms_per_request": mean(rs, "vpsgate_cpu_ms_per_request"),
                   "machine_cpu_busy": mean(rs, "machine_cpu_busy"), "rounds_rps": [r["rps"] for r in rs],
                   **({"profile_rounds": [r["profile"] for r in rs]} if "profile" in rs[0] else {})}
               for c, rs in variant.items()} for variant in runs]
    return merged[0], merged[1], received["bytes"]


def run_tracing_only(args) -> Path:
    """`--only tracing`: the tracing pair alone (about 2 minutes), its ratio and goal."""
    out = ROOT / "results" / time.strftime("bench-%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    env_extra = {"VPSGATE_DEBUG_ROUTES": "1", "VPSGATE_WORKERS": str(args.workers), "VPSGATE_LOG_LEVEL": "warning"}
    off, on, sent = tracing_pair(args, Path(args.binary), env_extra)
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "seconds_per_run": args.seconds,
               "scenarios": {"command_untraced": off, "command_traced": on}, "otlp_bytes_received": sent}
    results["ratios"] = {f"traced_command_over_untraced_c{c}": quotient(on[str(c)]["rps"], off[str(c)]["rps"]) for c in CONCURRENCY}
    ratio = results["ratios"]["traced_command_over_untraced_c64"]
    results["targets"] = {"command with tracing on >= 0.95 of off at c=64": ratio is not None and ratio >= 0.95}
    lines = [f"Run {results['date']} on {results['machine']}; {args.seconds} s per run, interleaved off/on.", "",
             "| scenario | c | req/s (mean) | rounds' req/s | p50 ms | p99 ms | vpsgate CPU ms/req | machine CPU busy | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, variant in results["scenarios"].items():
        for c, m in variant.items():
            lines.append(f"| {name} | {c} | {m['rps']} | {', '.join(str(v) for v in m['rounds_rps'])} | {m['p50_ms']} | "
                         f"{m['p99_ms']} | {m['vpsgate_cpu_ms_per_request']} | {m['machine_cpu_busy']} | {m['errors']} |")
    lines += ["", "Inside vpsgate at c=1 (mean ms per command, its histograms, each round):", "",
              "| scenario | vpsgate total | begin_command | Hostinger call | finish_command |", "|---|---|---|---|---|"]
    for name, variant in results["scenarios"].items():
        for p in variant["1"].get("profile_rounds", []):
            lines.append(f"| {name} | {p['vpsgate_total_ms']} | {p['begin_command_ms']} | {p['hostinger_call_ms']} | "
                         f"{p['finish_command_ms']} |")
    lines += ["", "| ratio | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in results["ratios"].items()]
    lines += ["", f"OTLP bytes received: {sent}", "", "| goal | met |", "|---|---|"]
    lines += [f"| {k} | {'met' if v else 'not met'} |" for k, v in results["targets"].items()]
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"[bench] written to {out}", file=sys.stderr)
    return out


def profiled_stack(args, binary: Path, env_extra: dict) -> "Stack":
    """The command scenarios' stack: two instances, actions that end at once, and
    pg_stat_statements loaded, tracking off until a statement profile turns it on (a -c
    setting here would override the ALTER SYSTEM that does)."""
    root = Path(tempfile.mkdtemp(prefix="vpsgate-bench-"))
    root.chmod(0o755)
    stack = Stack(root, instances=2, workers=args.workers, binary=binary, extra_env=env_extra)
    stack.sim_action_delay_ms = 0
    stack.postgres.settings["shared_preload_libraries"] = "pg_stat_statements"
    return stack


def quick(args) -> Path:
    """--quick: the c=1 part of a command's cost only (about a minute): the durable commit,
    the direct call, the command with vpsgate's histograms and pg_stat_statements (track =
    all), and the TLS handshakes of hostinger-sim's server, full against resumed
    (`openssl s_time`). For comparing code, not for the goals."""
    binary = Path(args.binary)
    out = ROOT / "results" / time.strftime("bench-quick-%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "seconds_per_run": args.seconds,
                     "scenarios": {}}
    env_extra = {"VPSGATE_DEBUG_ROUTES": "1", "VPSGATE_WORKERS": str(args.workers), "VPSGATE_LOG_LEVEL": "warning"}
    if args.database_dir:
        env_extra["VPSGATE_DATABASE_DIR"] = args.database_dir
    stack = profiled_stack(args, binary, env_extra)
    try:
        stack.start()
        track_statements(stack, False)
        env = prepare(stack, 256)
        bench = Bench(stack, args.seconds)
        print("[bench] pg_commit c=1", file=sys.stderr, flush=True)
        results["scenarios"]["pg_commit"] = {"1": pgbench(stack, 1, args.seconds)}
        print("[bench] direct c=1", file=sys.stderr, flush=True)
        results["scenarios"]["direct"] = {"1": bench.wrk(stack.sim_url, 1, "direct.lua", env)}
        print("[bench] command c=1", file=sys.stderr, flush=True)
        before = instrumentation(stack)
        sim_log = stack.run_dir / "hostinger-sim-access.log"
        log_start = sim_log.stat().st_size if sim_log.exists() else 0
        results["scenarios"]["command"] = {"1": bench.wrk(stack.url, 1, "command.lua", env)}
        results["profile_command_c1"] = profile(before, instrumentation(stack))
        results["sim_connections_command_c1"] = sim_connections(sim_log, log_start)
        print("[bench] statements of a command (c=1, pg_stat_statements)", file=sys.stderr, flush=True)
        track_statements(stack, True)
        bench.wrk(stack.url, 1, "command.lua", env)
        results["statements_command_c1"] = statements(stack, top=40)
        track_statements(stack, False)
        results["tls_handshakes"] = tls_handshakes(stack, args.seconds)
    finally:
        stack.stop()
    p = results["profile_command_c1"]
    direct = results["scenarios"]["direct"]["1"]["p50_ms"]
    results["ratios"] = {
        "durable_commit_ms_c1": results["scenarios"]["pg_commit"]["1"]["p50_ms"],
        "command_minus_direct_p50_ms_c1": difference(results["scenarios"]["command"]["1"]["p50_ms"], direct),
        "hostinger_call_mean_minus_direct_p50_ms_c1": difference(p["hostinger_call_ms"], direct),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    text = json.dumps({k: results[k] for k in ("profile_command_c1", "sim_connections_command_c1", "tls_handshakes", "ratios")},
                      indent=2)
    rows = ["| level | calls/command | mean ms | ms/command | statement |", "|---|---|---|---|---|"]
    rows += [f"| {row['level']} | {row['calls_per_command']} | {row['mean_ms']} | {row['ms_per_command']} | "
             f"`{row['statement'].replace('|', '/')}` |" for row in results["statements_command_c1"]]
    scen = "\n".join(f"| {n} | 1 | {m['1']['rps']:,.0f} | {m['1']['p50_ms']} | {m['1']['p99_ms']} |"
                     for n, m in results["scenarios"].items())
    (out / "results.md").write_text(f"Run {results['date']} on {results['machine']}\n\n| scenario | c | req/s | p50 ms | p99 ms |\n"
                                    f"|---|---|---|---|---|\n{scen}\n\n" + "\n".join(rows) + "\n\n```\n" + text + "\n```\n")
    print((out / "results.md").read_text())
    print(f"[bench] written to {out}", file=sys.stderr)
    return out


def sim_connections(log: Path, start: int) -> dict:
    """hostinger-sim's nginx log since `start`: requests, connections, and how many of the
    connections resumed a TLS session (nginx/hostinger-sim.conf.in)."""
    if not log.exists():
        return {}
    with log.open("rb") as f:
        f.seek(start)
        lines = f.read().decode(errors="replace").splitlines()
    first = [l for l in lines if " requests=1 " in l]
    return {"requests": len(lines), "connections": len(first),
            "resumed": sum(1 for l in first if "reused=r" in l)}


def tls_handshakes(stack: Stack, seconds: int) -> dict:
    """Connections per second to hostinger-sim's TLS server, each a full handshake (-new)
    and each resuming the first one's session (-reuse), from `openssl s_time` (TLS 1.3, the
    version vpsgate's libcurl negotiates with it)."""
    rates = {}
    for mode in ("new", "reuse"):
        output = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{stack.sim_port}", f"-{mode}", "-www", "/healthz", "-time",
                                 str(seconds), "-CAfile", str(stack.ca_file)], capture_output=True, text=True,
                                timeout=seconds * 3 + 30).stdout
        match = re.findall(r"([\d.]+) connections/user sec", output)
        real = re.findall(r"(\d+) connections in (\d+) real seconds", output)
        rates[mode] = {"connections_per_cpu_second": float(match[-1]) if match else None,
                       "ms_per_connection_wall": round(int(real[-1][1]) * 1000 / int(real[-1][0]), 3) if real and int(real[-1][0]) else None}
    # libcurl's own handshake time (appconnect - connect) on 41 new connections of one curl:
    # the first a full handshake, the others resuming its session.
    url = f"https://127.0.0.1:{stack.sim_port}/healthz"
    output = subprocess.run(["curl", "-s", "--cacert", str(stack.ca_file), "-H", "Connection: close",
                             "-w", "%{time_connect} %{time_appconnect}\\n"] + ["-o", "/dev/null", url] * 41, capture_output=True, text=True,
                            timeout=120).stdout.split()
    handshakes = [(float(b) - float(a)) * 1000 for a, b in zip(output[::2], output[1::2])]
    if handshakes:
        rest = sorted(handshakes[1:])
        rates["curl_handshake_ms"] = {"full": round(handshakes[0], 3),
                                      "resumed_p50": round(rest[len(rest) // 2], 3) if rest else None}
    return rates


def run(args) -> Path:
    if args.only == "tracing":
        return run_tracing_only(args)
    binary = Path(args.binary)
    out = ROOT / "results" / time.strftime("bench-%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "seconds_per_run": args.seconds,
                     "scenarios": {}, "scale": {}, "instances": {}}
    env_extra = {"VPSGATE_DEBUG_ROUTES": "1", "VPSGATE_WORKERS": str(args.workers), "VPSGATE_LOG_LEVEL": "warning"}

    stack = profiled_stack(args, binary, env_extra)
    try:
        stack.start()
        track_statements(stack, False)
        env = prepare(stack, 256)
        bench = Bench(stack, args.seconds)
        url = stack.url
        key = str(uuid.uuid4())
        first = subprocess.run(["curl", "-sS", "--cacert", str(stack.ca_file), "-X", "POST", f"{url}/v1/vps/1001/start",
                                "-H", f"Authorization: Bearer {env['VPSGATE_DEMO_TOKEN']}", "-H", f"Idempotency-Key: {key}"],
                               capture_output=True, text=True).stdout
        operation = json.loads(first)["id"]
        scenarios = {
            "nginx": (f"{url}/__nginx_floor", None, {}),
            "healthz": (f"{url}/healthz", None, {}),
            "insert": (f"{url}/__debug/insert", None, {}),
            "direct": (stack.sim_url, "direct.lua", {}),
            "command": (url, "command.lua", {}),
            "replay": (url, "replay.lua", {"VPSGATE_BENCH_KEY": key, "VPSGATE_BENCH_PATH": "/v1/vps/1001/start"}),
            "read": (url, "get.lua", {"VPSGATE_BENCH_PATH": f"/v1/operations/{operation}"}),
        }
        for name, (target, script, extra) in scenarios.items():
            results["scenarios"][name] = {}
            for concurrency in CONCURRENCY:
                print(f"[bench] {name} c={concurrency}", file=sys.stderr, flush=True)
                if name == "command" and concurrency == 1:
                    before = instrumentation(stack)
                results["scenarios"][name][str(concurrency)] = bench.wrk(target, concurrency, script, dict(env, **extra))
                if name == "command" and concurrency == 1:
                    results["profile_command_c1"] = profile(before, instrumentation(stack))
                    # The same load again with every statement tracked, nested ones included.
                    print("[bench] statements of a command (c=1, pg_stat_statements)", file=sys.stderr, flush=True)
                    track_statements(stack, True)
                    bench.wrk(target, 1, script, dict(env, **extra))
                    results["statements_command_c1"] = statements(stack)
                    track_statements(stack, False)
        # Where vpsgate's CPU goes under the command load: a perf profile of its instances.
        print("[bench] cpu profile (command, c=16)", file=sys.stderr, flush=True)
        results["cpu_profile_command"] = cpu_profile(bench, url, "command.lua", env)
        results["scenarios"]["pg_commit"] = {}
        for concurrency in CONCURRENCY:
            print(f"[bench] pg_commit c={concurrency}", file=sys.stderr, flush=True)
            results["scenarios"]["pg_commit"][str(concurrency)] = pgbench(stack, concurrency, args.seconds)
        results["scenarios"]["pg_commit_notify"] = {}
        for concurrency in CONCURRENCY:
            print(f"[bench] pg_commit_notify c={concurrency}", file=sys.stderr, flush=True)
            results["scenarios"]["pg_commit_notify"][str(concurrency)] = pgbench(stack, concurrency, args.seconds, notify=True)
        for name, process in stack.processes.items():
            if name.startswith("vpsgate-"):
                results["instances"][name] = {"peak_rss_mb": round(peak_rss_mb(process.pid), 1), "workers": args.workers}
        # Start-up: a third instance, timed to its first ready answer.
        results["readyz_after_start_ms"] = round(readyz_after_start(stack, 3), 1)
        stack.stop_instance(3)
    finally:
        stack.stop()

    # Scale: command throughput at c=64 with 1, 2 and 4 instances sharing the same total of
    # workers (on one machine nothing can grow; it must not shrink).
    for count in (1, 2, 4):
        root = Path(tempfile.mkdtemp(prefix="vpsgate-bench-"))
        root.chmod(0o755)
        workers = max(args.workers // count, 1)
        stack = Stack(root, instances=count, workers=workers, binary=binary,
                      extra_env=dict(env_extra, VPSGATE_WORKERS=str(workers)))
        try:
            stack.start()
            env = prepare(stack, 256)
            print(f"[bench] scale instances={count}", file=sys.stderr, flush=True)
            result = Bench(stack, args.seconds).wrk(stack.url, 64, "command.lua", env)
            result["workers_per_instance"] = workers
            results["scale"][str(count)] = result
        finally:
            stack.stop()

    # Through PgBouncer in transaction mode (VPSGATE_DATABASE_POOL_MODE=transaction), over a
    # pool of 40 server connections (docs/failover.md's sizing).
    results["scenarios"]["command_pgbouncer"] = command_variant(args, binary, env_extra, "through pgbouncer",
                                                                pgbouncer=True)
    # Tracing on (every request's spans exported over OTLP/HTTP to a receiver in this
    # process) against off, interleaved on two stacks alike.
    (results["scenarios"]["command_untraced"], results["scenarios"]["command_traced"],
     results["otlp_bytes_received"]) = tracing_pair(args, binary, env_extra)

    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown(results))
    (out / "latency.svg").write_text(svg(results))
    print(markdown(results))
    print(f"[bench] written to {out}", file=sys.stderr)
    return out


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {memory} GiB, {platform.system()} {platform.release()}"


def quotient(a, b):
    """a / b to three places; None when a run measured nothing (a short run under load can
    finish no request at c=64)."""
    return round(a / b, 3) if a is not None and b else None


def difference(a, b):
    return round(a - b, 3) if a is not None and b is not None else None


def ratios(r: dict) -> dict:
    s = r["scenarios"]
    get = lambda name, c, field="rps": s[name][str(c)].get(field)
    # The composed floor of a command: nginx's auth subrequest (about /healthz), two durable
    # single-row commits (about 2 x insert) and one HTTPS call to the simulator (direct).
    parts = [get("healthz", 64), get("insert", 64), get("direct", 64)]
    floor = 1 / (1 / parts[0] + 2 / parts[1] + 1 / parts[2]) if all(parts) else None
    return {
        "composed_floor_rps_c64": round(floor, 1) if floor else None,
        "command_over_composed_floor_c64": quotient(get("command", 64), floor),
        "command_cpu_over_insert_cpu_c64": quotient(get("command", 64, "vpsgate_cpu_ms_per_request"),
                                                    get("insert", 64, "vpsgate_cpu_ms_per_request")),
        "command_switches_over_insert_switches_c64": quotient(get("command", 64, "vpsgate_switches_per_request"),
                                                              get("insert", 64, "vpsgate_switches_per_request")),
        "replay_over_insert_c64": quotient(get("replay", 64), get("insert", 64)),
        "command_minus_direct_p50_ms_c1": difference(get("command", 1, "p50_ms"), get("direct", 1, "p50_ms")),
        # vpsgate's mean Hostinger call (histogram) over wrk's p50 of the same call on a kept-alive connection.
        "hostinger_call_mean_minus_direct_p50_ms_c1": difference((r.get("profile_command_c1") or {}).get("hostinger_call_ms"),
                                                                get("direct", 1, "p50_ms")),
        "durable_commit_ms_c1": s["pg_commit"]["1"]["p50_ms"],
        # The two round trips in durable commits at c=1: PostgreSQL's own mean
        # (pg_stat_statements, top level) and vpsgate's (its histogram: the round trip too).
        "begin_command_statement_in_commits_c1": in_commits(statement_mean(r, "begin_command"), s),
        "begin_command_histogram_in_commits_c1": in_commits((r.get("profile_command_c1") or {}).get("begin_command_ms"), s),
        "finish_command_statement_in_commits_c1": in_commits(statement_mean(r, "finish_command"), s),
        "finish_command_histogram_in_commits_c1": in_commits((r.get("profile_command_c1") or {}).get("finish_command_ms"), s),
        # Notifying commits are serialized by PostgreSQL's notify lock (completion push).
        "notify_commit_over_commit_c16": quotient(get("pg_commit_notify", 16), get("pg_commit", 16)),
        "notify_commit_over_commit_c64": quotient(get("pg_commit_notify", 64), get("pg_commit", 64)),
        "pgbouncer_command_over_direct_c64": quotient(get("command_pgbouncer", 64), get("command", 64)),
        "pgbouncer_command_minus_direct_p50_ms_c1": difference(get("command_pgbouncer", 1, "p50_ms"), get("command", 1, "p50_ms")),
        "traced_command_over_command_c64": quotient(get("command_traced", 64), get("command_untraced", 64)),
        "scale_2_over_1": quotient(r["scale"]["2"]["rps"], r["scale"]["1"]["rps"]),
        "scale_4_over_1": quotient(r["scale"]["4"]["rps"], r["scale"]["1"]["rps"]),
    }


def statement_mean(r: dict, function: str):
    """The mean ms of the top-level call of `function` in the pg_stat_statements table, or None."""
    for row in r.get("statements_command_c1") or []:
        if row["level"].strip() == "top" and f"{function}(" in row["statement"]:
            return float(row["mean_ms"])
    return None


def in_commits(ms, s: dict):
    """`ms` in durable commits (pg_commit's p50 at c=1), or None."""
    commit = s["pg_commit"]["1"]["p50_ms"]
    return round(ms / commit, 2) if ms is not None and commit else None


def targets(r: dict) -> dict:
    """The goals of the performance issue, each met or not, from this run alone (a ratio the
    run could not measure is not met)."""
    q = r["ratios"]
    at_least = lambda name, bound: q[name] is not None and q[name] >= bound
    at_most = lambda name, bound: q[name] is not None and q[name] <= bound
    rss = max(i["peak_rss_mb"] for i in r["instances"].values())
    return {
        "command >= 0.8 of the composed floor at c=64": at_least("command_over_composed_floor_c64", 0.8),
        "vpsgate CPU per command <= 2x the insert scenario's": at_most("command_cpu_over_insert_cpu_c64", 2.0),
        "replay >= 0.7 of the insert floor at c=64": at_least("replay_over_insert_c64", 0.7),
        "command with tracing on >= 0.95 of off at c=64": at_least("traced_command_over_command_c64", 0.95),
        "Hostinger call (vpsgate's mean) - direct p50 at c=1 <= 0.5 ms":
            at_most("hostinger_call_mean_minus_direct_p50_ms_c1", 0.5),
        "command p50 - direct p50 at c=1 <= two durable commits + 1.5 ms":
            at_most("command_minus_direct_p50_ms_c1", 2 * (q["durable_commit_ms_c1"] or 0) + 1.5),
        "begin_command <= 4 durable commits at c=1 (pg_stat_statements' mean)": at_most("begin_command_statement_in_commits_c1", 4),
        "finish_command <= 3 durable commits at c=1 (pg_stat_statements' mean)": at_most("finish_command_statement_in_commits_c1", 3),
        "2 instances (same total workers) >= 0.9 of 1": at_least("scale_2_over_1", 0.9),
        "4 instances (same total workers) >= 0.9 of 1": at_least("scale_4_over_1", 0.9),
        "<= 64 MB RSS per instance with 64 workers": rss <= 64 and r["instances"][next(iter(r["instances"]))]["workers"] >= 64,
        "/readyz 200 within 300 ms of start": r["readyz_after_start_ms"] <= 300,
    }


def cpu_profile(bench: "Bench", url: str, script: str, env: dict, top: int = 15) -> list:
    """The functions where vpsgate's instances spend their CPU under `script` at c=16 (perf,
    self time, Swift names demangled); empty when perf cannot sample here."""
    pids = ",".join(str(pid) for pid in bench.vpsgate_pids())
    data = Path(tempfile.mkdtemp()) / "perf.data"
    try:
        recorder = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(data), "-p", pids, "--", "sleep",
                                     str(bench.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        return []
    bench.wrk(url, 16, script, env)
    recorder.wait(timeout=bench.seconds + 60)
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "symbol",
                             "--percent-limit", "0.5"], capture_output=True, text=True, timeout=120).stdout
    rows = []
    for line in report.splitlines():
        match = re.match(r"^\s+([\d.]+)%\s+\[[.k]\]\s+(.+)$", line)
        if match:
            rows.append((float(match.group(1)), match.group(2).strip()))
    names = [name for _, name in rows[:top]]
    demangled = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names), capture_output=True,
                               text=True).stdout.splitlines() if names else []
    return [{"percent": percent, "function": (demangled[i] if i < len(demangled) else name).strip()[:160]}
            for i, (percent, name) in enumerate(rows[:top])]


def markdown(r: dict) -> str:
    lines = [f"Run {r['date']} on {r['machine']}; {r['seconds_per_run']} s per run.", "",
             "| scenario | c | req/s | p50 ms | p99 ms | vpsgate CPU ms/req | vpsgate context switches/req | machine CPU busy | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in r["scenarios"].items():
        for c, m in runs.items():
            fmt = lambda v: "-" if v is None else (f"{v:,.0f}" if isinstance(v, float) and v > 100 else f"{v}")
            lines.append(f"| {name} | {c} | {fmt(m['rps'])} | {fmt(m['p50_ms'])} | {fmt(m['p99_ms'])} | "
                         f"{fmt(m.get('vpsgate_cpu_ms_per_request'))} | {fmt(m.get('vpsgate_switches_per_request'))} | "
                         f"{m.get('machine_cpu_busy', '-')} | {m['errors']} |")
    lines += ["", "| instances | workers each | command req/s at c=64 | p50 ms | p99 ms | machine CPU busy |", "|---|---|---|---|---|---|"]
    for count, m in r["scale"].items():
        lines.append(f"| {count} | {m.get('workers_per_instance')} | {m['rps']:,.0f} | {m['p50_ms']} | {m['p99_ms']} | {m.get('machine_cpu_busy')} |")
    if r.get("cpu_profile_command"):
        lines += ["", "vpsgate's CPU under the command load (c=16), perf self time, top functions:", "",
                  "| % | function |", "|---|---|"]
        lines += [f"| {row['percent']} | `{row['function']}` |" for row in r["cpu_profile_command"]]
    if r.get("profile_command_c1"):
        lines += ["", "Where a command's time goes at c=1 (mean ms, vpsgate's own histograms; the rest of the "
                  "client's latency is nginx, TLS and the token check):", "", "| part | ms |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in r["profile_command_c1"].items()]
    if r.get("statements_command_c1"):
        lines += ["", "Each statement's share of a command at c=1 (pg_stat_statements with track = all: nested "
                  "statements are those PL/pgSQL functions run; per command = over begin_command's calls):", "",
                  "| level | calls/command | mean ms | ms/command | statement |", "|---|---|---|---|---|"]
        lines += [f"| {row['level']} | {row['calls_per_command']} | {row['mean_ms']} | {row['ms_per_command']} | "
                  f"`{row['statement'].replace('|', '/')}` |" for row in r["statements_command_c1"]]
    lines += ["", "| ratio | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in r["ratios"].items()]
    lines += ["", f"Peak RSS per instance: " + ", ".join(f"{k} {v['peak_rss_mb']} MB ({v['workers']} workers)" for k, v in r["instances"].items()),
              f"/readyz 200 after start: {r['readyz_after_start_ms']} ms", "",
              "| goal | met |", "|---|---|"] + [f"| {k} | {'met' if v else 'not met'} |" for k, v in r["targets"].items()]
    return "\n".join(lines) + "\n"


def svg(r: dict) -> str:
    """p50 latency against concurrency, one line per scenario, log-scaled latency."""
    import math
    width, height, left, bottom = 640, 400, 60, 40
    series = {name: [(int(c), m["p50_ms"]) for c, m in runs.items() if m.get("p50_ms")] for name, runs in r["scenarios"].items()}
    values = [v for points in series.values() for _, v in points if v and v > 0]
    low, high = math.log10(min(values)), math.log10(max(values))
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    x = lambda c: left + (CONCURRENCY.index(c)) * (width - left - 120) / (len(CONCURRENCY) - 1)
    y = lambda v: height - bottom - (math.log10(v) - low) / max(high - low, 1e-9) * (height - bottom - 20)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="14">p50 latency (ms, log scale) against concurrency</text>',
             f'<line x1="{left}" y1="{height-bottom}" x2="{width-120}" y2="{height-bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="20" x2="{left}" y2="{height-bottom}" stroke="black"/>']
    for c in CONCURRENCY:
        parts.append(f'<text x="{x(c)-6}" y="{height-bottom+15}">c={c}</text>')
    for exponent in range(math.floor(low), math.ceil(high) + 1):
        value = 10 ** exponent
        if low <= exponent <= high:
            parts.append(f'<text x="5" y="{y(value)+4}">{value:g}</text>')
    for index, (name, points) in enumerate(series.items()):
        color = colors[index % len(colors)]
        path = " ".join(f"{x(c):.1f},{y(v):.1f}" for c, v in points)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        if points:
            parts.append(f'<text x="{width-115}" y="{30 + index*14}" fill="{color}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--only", choices=["tracing"],
                        help="run only these scenarios: tracing = the command with tracing off and on, interleaved "
                             "(about 2 minutes)")
    parser.add_argument("--quick", action="store_true", help="only the c=1 cost of a command (see quick())")
    parser.add_argument("--database-dir", help="--quick: the instances' Database/ files (to compare SQL)")
    args = parser.parse_args()
    quick(args) if args.quick else run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
