"""Chaos: commands with random keys, duplicates and concurrent replays over two instances,
while the simulator fails in every way, instances are killed with SIGKILL and restarted, and
PostgreSQL restarts. Afterwards the invariants are checked and printed as figures.

CI mode runs for VPSGATE_CHAOS_SECONDS (default 45); the long mode is
`VPSGATE_CHAOS_SECONDS=600 VPSGATE_FUZZ_EXAMPLES=400 python3 -m pytest Tests/e2e/test_chaos.py -s`.
"""

import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import openapi_check
from vpsgate_e2e import SHORT_WINDOWS, VM, Client, open_operations, sim_requests, sql

pytestmark = pytest.mark.slow

SECONDS = int(os.environ.get("VPSGATE_CHAOS_SECONDS", "45"))
FUZZ_EXAMPLES = os.environ.get("VPSGATE_FUZZ_EXAMPLES", "30")
DOCUMENTED = {200, 202, 400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503}


@pytest.fixture(scope="module")
def stack(stack_factory):
    # The short windows, with the default drift scan.
    return stack_factory("chaos", extra_env={name: value for name, value in SHORT_WINDOWS.items()
                                             if name != "VPSGATE_DRIFT_SCAN_INTERVAL_MS"})


class Chaos:
    def __init__(self, stack, token):
        self.stack = stack
        self.token = token
        self.lock = threading.Lock()
        self.answers = []          # (status, content type, body) of every answer
        self.keys = []             # keys that were answered 202
        self.stop = threading.Event()
        self.rng = random.Random(11)

    def record(self, status, headers, raw):
        with self.lock:
            self.answers.append((status, headers.get("Content-Type", ""), raw))

    def client_loop(self, seed):
        rng = random.Random(seed)
        client = Client(self.stack, self.token)
        recent = []
        while not self.stop.is_set():
            vps = rng.randint(1001, 1040)
            verb, body = rng.choice([("start", None), ("stop", None), ("restart", None), ("snapshot", None),
                                     ("recreate", {"template_id": 1130, "confirm": vps})])
            if recent and rng.random() < 0.3:
                key, vps, verb, body = rng.choice(recent)  # a duplicate or replay
            else:
                key = str(uuid.uuid4())
                recent = (recent + [(key, vps, verb, body)])[-20:]
            try:
                status, headers, raw = client.request("POST", f"/v1/vps/{vps}/{verb}", body=body, key=key)
            except OSError:
                continue  # the connection broke while an instance died: the client retries later
            self.record(status, headers, raw)
            if status == 202:
                with self.lock:
                    self.keys.append(key)
            time.sleep(0.02)

    def fault_loop(self):
        kinds = [{"status": 503, "apply": True}, {"status": 503}, {"status": 500, "apply": True}, {"status": 429, "retry_after": 1},
                 {"delay_ms": 2500, "apply": True}, {"status": 502, "delay_ms": 2500}, {"action_error": True}, {"status": 504, "apply": True}]
        while not self.stop.wait(0.5):
            # Mutations only: a rule matching the reconcilers' reads would be used up by them.
            fault = dict(self.rng.choice(kinds), method="POST", path=f"/10{self.rng.randint(0, 4)}{self.rng.randint(0, 9)}/", times=3)
            self.stack.sim("POST", "/__sim/faults", fault)

    def kill_loop(self, events):
        while not self.stop.wait(SECONDS / 4):
            index = self.rng.choice([1, 2])
            process = self.stack.processes.pop(f"vpsgate-{index}", None)
            if process:
                process.send_signal(signal.SIGKILL)
                process.wait()
                events.append(f"killed vpsgate-{index}")
                time.sleep(1)
                self.stack.start_instance(index)
                events.append(f"restarted vpsgate-{index}")


def test_chaos_invariants(stack):
    stack.grant("chaos", "*", "admin")
    token = stack.create_token("chaos")
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 400})
    for vps in range(1005, 1041):
        stack.sim("POST", "/__sim/vms", {"id": vps, "state": "running"})
    chaos = Chaos(stack, token)
    events = []
    threads = [threading.Thread(target=chaos.client_loop, args=(seed,)) for seed in range(6)]
    threads += [threading.Thread(target=chaos.fault_loop), threading.Thread(target=chaos.kill_loop, args=(events,))]
    for thread in threads:
        thread.start()
    time.sleep(SECONDS / 2)
    stack.postgres.stop()
    events.append("PostgreSQL stopped")
    time.sleep(2)
    stack.postgres.start()
    events.append("PostgreSQL started")
    time.sleep(SECONDS / 2)
    chaos.stop.set()
    for thread in threads:
        thread.join(timeout=60)
    stack.sim("DELETE", "/__sim/faults")
    faults_stopped = time.monotonic()

    # Every operation terminal within 2 minutes of the faults stopping.
    open_count = None
    while time.monotonic() - faults_stopped < 120:
        open_count = open_operations(stack)
        if open_count == 0:
            break
        time.sleep(0.5)
    settle_seconds = round(time.monotonic() - faults_stopped, 1)

    log = sim_requests(stack)
    mutations = [r for r in log if r["method"] != "GET"]
    performed = [r for r in mutations if r["applied"]]
    received = dict(line.split("|") for line in sql(stack, "SELECT correlation_id, idempotency_key FROM audit_events WHERE kind = 'received'").splitlines())
    operations_by_correlation = set(sql(stack, "SELECT correlation_id FROM operations").split())

    # 1. Per idempotency key: a mutation that is not repeat-safe was performed at most once;
    #    a repeat-safe one at most three times (docs/design.md#calling-hostinger-safely: retried after a 502/503/504,
    #    which may hide a performed mutation; repeating it is harmless by definition).
    per_key = {}
    for request in performed:
        key = (received.get(request["headers"].get("x-correlation-id")), request["path"].endswith(("/recreate", "/snapshot")))
        per_key[key] = per_key.get(key, 0) + 1
    duplicated = {k: n for k, n in per_key.items() if n > 1 and k[1]}
    repeated_safe = {k: n for k, n in per_key.items() if n > 1 and not k[1]}
    assert all(n <= 3 for n in repeated_safe.values())
    # 2. Every mutation Hostinger saw has a durable `received` row and an operation.
    orphans = [r for r in mutations if r["headers"].get("x-correlation-id") not in received
               or r["headers"].get("x-correlation-id") not in operations_by_correlation]
    # 3. Operations agree with Hostinger's actions.
    disagreements = []
    for line in sql(stack, "SELECT vps_id, hostinger_action_id, state FROM operations WHERE hostinger_action_id IS NOT NULL").splitlines():
        vps, action_id, state = line.split("|")
        status, _, action = stack.sim("GET", f"{VM}/{vps}/actions/{action_id}")
        if status == 200 and {"success": "succeeded", "error": "failed"}.get(action["state"]) != state:
            disagreements.append((line, action))
    # 4. Only documented statuses; every error has a problem body.
    undocumented = [a for a in chaos.answers if a[0] not in DOCUMENTED]
    bare_errors = [a for a in chaos.answers if a[0] >= 400 and not a[1].startswith("application/problem+json")]

    statuses = {}
    for status, _, _ in chaos.answers:
        statuses[status] = statuses.get(status, 0) + 1
    figures = {
        "seconds": SECONDS, "events": events, "requests": len(chaos.answers), "statuses": dict(sorted(statuses.items())),
        "operations": int(sql(stack, "SELECT count(*) FROM operations")),
        "operation_states": dict(line.split("|") for line in sql(stack, "SELECT state, count(*) FROM operations GROUP BY 1").splitlines()),
        "hostinger_mutations_received": len(mutations), "hostinger_mutations_performed": len(performed),
        "hostinger_answers": {str(k): v for k, v in sorted(
            {s: sum(1 for r in mutations if r["status"] == s) for s in {r["status"] for r in mutations}}.items())},
        "keys_performing_a_non_repeat_safe_mutation_twice": len(duplicated),
        "keys_performing_a_repeat_safe_mutation_again_after_a_5xx": len(repeated_safe),
        "mutations_without_received_row_or_operation": len(orphans),
        "operations_not_terminal_after_faults": open_count, "seconds_to_settle": settle_seconds,
        "stray_attempts_recorded": int(sql(stack, "SELECT count(*) FROM operation_stray_attempts")),
        "stray_actions_tied": int(sql(stack, "SELECT count(hostinger_action_id) FROM operation_stray_attempts")),
        "operations_disagreeing_with_hostinger": len(disagreements),
        "undocumented_statuses": len(undocumented), "errors_without_problem_body": len(bare_errors),
    }
    print("\nchaos figures: " + json.dumps(figures, indent=2))
    assert len(chaos.answers) >= 50
    assert duplicated == {}
    assert orphans == []
    assert open_count == 0, sql(stack, "SELECT id, command, state, coalesce(error::text, '') FROM operations "
                                       "WHERE state NOT IN ('succeeded', 'failed', 'cancelled')")
    assert disagreements == []
    assert undocumented == [] and bare_errors == []


def test_schemathesis_finds_no_server_error_and_no_schema_violation(stack):
    stack.grant("fuzz", "*", "admin")
    token = stack.create_token("fuzz")
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 0})
    report = Path(tempfile.mkdtemp()) / "report.json"
    result = subprocess.run(
        ["st", "run", str(openapi_check.ROOT / "docs/openapi.json"), "--url", stack.url, "--tls-verify", str(stack.ca_file),
         "-H", f"Authorization: Bearer {token}", "--max-examples", FUZZ_EXAMPLES, "--seed", "1",
         "-c", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"],
        capture_output=True, text=True, timeout=1800)
    summary = [line for line in result.stdout.splitlines() if "generated" in line or "passed" in line or "failure" in line.lower()]
    print("\nschemathesis: " + " | ".join(summary[-4:]))
    assert result.returncode == 0, result.stdout[-4000:]
    for index in (1, 2):
        assert stack.processes[f"vpsgate-{index}"].poll() is None
