"""vpsgate on several hosts: two instances, each in its own network namespace (a test host
made with `ip netns`, joined to this one by a veth pair), reached by one nginx over TCP
FastCGI and reaching PostgreSQL and hostinger-sim over TCP. Commands work, idempotency
holds across the hosts, and cutting one host's link under load loses no accepted operation.

Needs root (CAP_NET_ADMIN), as CI runs; the namespaces and links are removed afterwards."""

import concurrent.futures
import json
import os
import subprocess
import time
import uuid

import pytest

from fastcgi_client import fastcgi_request
from load import KEY_IN_USE, Load, wait_for_operations
from vpsgate_e2e import VM, Client, problem_code, sim_requests, sql
from vpsgate_stack import wait_until

pytestmark = pytest.mark.slow

HOSTS = (1, 2)
SUBNET = "10.231"  # 10.231.N.1 is this side of host N's link, 10.231.N.2 the host


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class NetnsHost:
    """A network namespace with one veth link to the root namespace."""

    def __init__(self, number: int):
        tag = f"{os.getpid() % 100000}{number}"
        self.namespace = f"vpsgate-{tag}"
        self.outside, self.inside = f"vgo{tag}", f"vgi{tag}"
        self.gateway, self.address = f"{SUBNET}.{number}.1", f"{SUBNET}.{number}.2"

    def create(self) -> None:
        ip("netns", "add", self.namespace)
        ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
        ip("link", "set", self.inside, "netns", self.namespace)
        ip("addr", "add", f"{self.gateway}/24", "dev", self.outside)
        ip("link", "set", self.outside, "up")
        inside = ["netns", "exec", self.namespace, "ip"]
        ip(*inside, "addr", "add", f"{self.address}/24", "dev", self.inside)
        ip(*inside, "link", "set", self.inside, "up")
        ip(*inside, "link", "set", "lo", "up")

    def cut(self) -> None:
        """Link down: packets to and from the host vanish (the blackhole route), as in a
        network partition; nothing is refused."""
        ip("link", "set", self.outside, "down")

    def destroy(self) -> None:
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True)


@pytest.fixture(scope="module")
def hosts():
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root (CI runs as root)")
    in_use = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    assert f" {SUBNET}." not in in_use, f"{SUBNET}.0.0/16 is already in use on this machine"
    made = [NetnsHost(number) for number in HOSTS]
    # Whatever is not a live link to a test host is dropped here: a cut host's address must
    # not fall through to the default route (and leave the machine).
    ip("route", "add", "blackhole", f"{SUBNET}.0.0/16")
    try:
        for host in made:
            host.create()
        yield made
    finally:
        for host in made:
            host.destroy()
        subprocess.run(["ip", "route", "del", "blackhole", f"{SUBNET}.0.0/16"], capture_output=True)


@pytest.fixture(scope="module")
def spread(hosts, stack_factory):
    # Short Hostinger deadlines so that a cut host's unanswered calls settle within the test.
    stack = stack_factory("netns", start=False, production=True, instances=len(hosts), extra_env={
        "HOSTINGER_ATTEMPT_TIMEOUT_MS": "3000", "HOSTINGER_DEADLINE_MS": "6000"})
    stack.postgres.listen_addresses += [host.gateway for host in hosts]
    stack.postgres.hba_lines = [f"host all all {SUBNET}.0.0/16 trust"]
    # A vanished client must not hold locks for long: keepalives, a bound on unacknowledged
    # data and on idle transactions (docs/deployment.md recommends the same).
    stack.postgres.settings = {"tcp_keepalives_idle": "2", "tcp_keepalives_interval": "1",
                               "tcp_keepalives_count": "3", "tcp_user_timeout": "5000",
                               "idle_in_transaction_session_timeout": "5s"}
    stack.sim_extra_listen = [host.gateway for host in hosts]
    stack.tls_extra_ips = tuple(host.gateway for host in hosts)
    for number, host in zip(HOSTS, hosts):
        stack.instance_addresses[number] = f"{host.address}:9000"
        stack.instance_command_prefix[number] = ["ip", "netns", "exec", host.namespace]
        stack.instance_env_overrides[number] = {
            "HOSTINGER_API_URL": f"https://{host.gateway}:{stack.sim_port}",
            "VPSGATE_DATABASE_URL": f"postgresql://vpsgate_app@{host.gateway}:{stack.postgres.port}/vpsgate",
            "VPSGATE_ALLOWED_PEERS": host.gateway,  # nginx, on the other end of the link
        }
    stack.start()
    stack.grant("spread-admin", "*", "admin")
    stack.spread_token = stack.create_token("spread-admin")
    return stack


def served_by(stack, correlation_prefix: str) -> set[str]:
    """The upstream addresses nginx used for requests whose id starts with the prefix."""
    lines = (stack.run_dir / "vpsgate-access.log").read_text().splitlines()
    return {line.split("upstream=")[1].split()[0] for line in lines if f"id={correlation_prefix}" in line}


def test_instances_run_inside_their_hosts_and_commands_work(spread, hosts):
    for number, host in zip(HOSTS, hosts):
        pid = spread.processes[f"vpsgate-{number}"].pid
        namespace = os.readlink(f"/proc/{pid}/ns/net")
        assert namespace != os.readlink("/proc/self/ns/net"), "the instance runs in its own namespace"
        connections = subprocess.run(["ip", "netns", "exec", host.namespace, "ss", "-tnH"],
                                     capture_output=True, text=True).stdout
        assert f"{host.gateway}:{spread.postgres.port}" in connections, "PostgreSQL over TCP across the link"
    client = Client(spread, spread.spread_token)
    status, _, operation = client.json("PUT", "/v1/vps/1001/hostname", {"hostname": "spread-1.example.com"},
                                       key=str(uuid.uuid4()), headers={"X-Request-ID": "spread-cmd-1"})
    assert status == 202, operation
    states = wait_for_operations(spread, {operation["id"]}, timeout=30)
    assert states == {operation["id"]: "succeeded"}
    assert spread.sim("GET", f"{VM}/1001")[2]["hostname"] == "spread-1.example.com"
    # Reads reach both hosts.
    for index in range(6):
        assert client.json("GET", "/v1/vps/1001", headers={"X-Request-ID": f"spread-read-{index}"})[0] == 200
    assert served_by(spread, "spread-read-") == {f"{host.address}:9000" for host in hosts}


def test_concurrent_duplicates_across_hosts_make_one_hostinger_call(spread, hosts):
    client = Client(spread, spread.spread_token)
    key, body = str(uuid.uuid4()), {"hostname": "spread-dup.example.com"}
    before = len(sim_requests(spread, "PUT", "/1002/hostname"))

    def send(index):
        return client.json("PUT", "/v1/vps/1002/hostname", body, key=key, headers={"X-Request-ID": f"spread-dup-{index}"})

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(send, range(10)))
    ids = {operation["id"] for status, _, operation in answers if status in (200, 202)}
    statuses = sorted(status for status, _, _ in answers)
    assert len(ids) == 1 and set(statuses) <= {200, 202, 409}, statuses
    assert served_by(spread, "spread-dup-") == {f"{host.address}:9000" for host in hosts}, "both hosts answered"
    wait_for_operations(spread, ids, timeout=30)
    assert len(sim_requests(spread, "PUT", "/1002/hostname")) == before + 1


def test_cutting_a_host_off_under_load_loses_no_accepted_operation(spread, hosts):
    """Under load, a command reaches Hostinger through host 1, which is then cut off before
    it can answer. Its client retries the key through nginx: the other host settles the
    operation from Hostinger's records and answers with it. Nothing is lost or sent twice."""
    tokens = []
    for index in range(4):
        spread.grant(f"spread-load-{index}", "*", "operator")
        tokens.append(spread.create_token(f"spread-load-{index}"))
    # Hostinger takes 2 s to answer a hostname change: commands are in flight most of the time.
    spread.sim("POST", "/__sim/faults", {"method": "PUT", "path": "/hostname$", "delay_ms": 2000, "times": -1})
    key, body = str(uuid.uuid4()), {"hostname": "cut-1002.example.com"}
    client = Client(spread, spread.spread_token)
    try:
        with Load(spread, tokens, [1001, 1003], retry=True, timeout=15) as load:
            time.sleep(5)
            before_cut = len(load.results.operations)
            # The command, straight to host 1 as nginx would send it; it will get no answer.
            direct = concurrent.futures.ThreadPoolExecutor(1).submit(
                fastcgi_request, f"{hosts[0].address}:9000", "PUT", "/v1/vps/1002/hostname",
                {"REMOTE_USER": "spread-admin", "AUTH_TYPE": "token", "HTTP_IDEMPOTENCY_KEY": key,
                 "CONTENT_TYPE": "application/json", "REQUEST_ID": "spread-cut-direct"},
                json.dumps(body).encode(), 30)
            wait_until(lambda: any(r["body"]["hostname"] == body["hostname"]
                                   for r in sim_requests(spread, "PUT", "/1002/hostname")), 10, "the command at Hostinger")
            hosts[0].cut()
            # Its client retries with the same key through nginx until it gets the operation.
            deadline, answers = time.monotonic() + 90, []
            while time.monotonic() < deadline:
                status, _, answer = client.json("PUT", "/v1/vps/1002/hostname", body, key=key)
                answers.append(status)
                if status in (200, 202):
                    break
                # Key still held by host 1's request, or (while nginx still tries host 1)
                # no instance answered in time: both mean "later", as Retry-After says.
                assert (status, problem_code(answer)) in ((409, KEY_IN_USE), (503, "unavailable")), \
                    (status, answer)
                time.sleep(1)
            assert status in (200, 202), answers
            time.sleep(5)
        with pytest.raises(OSError):
            direct.result(timeout=60)  # host 1 never answered it
    finally:
        spread.sim("DELETE", "/__sim/faults")
    # The operation host 1 accepted is the one the retry got, and it succeeded, once.
    assert answer["id"] == sql(spread, f"SELECT id FROM operations WHERE idempotency_key = '{key}'")
    assert wait_for_operations(spread, {answer["id"]}, timeout=60) == {answer["id"]: "succeeded"}
    assert [r["body"]["hostname"] for r in sim_requests(spread, "PUT", "/1002/hostname")].count(body["hostname"]) == 1
    assert spread.sim("GET", f"{VM}/1002")[2]["hostname"] == body["hostname"]

    results = load.results
    print(f"\nhost cut: the cut command answered after {len(answers)} tries {answers}; load: "
          f"{len(results.answers)} requests, {len(results.operations)} operations accepted, "
          f"{sum(1 for a in results.answers if a.status is None or a.status >= 500)} without an answer")
    assert before_cut >= 2 and len(results.operations) > before_cut, "commands were accepted before and after the cut"
    # Every operation any instance created for the load (answered or not) ends settled, and
    # every one a client was told about succeeded.
    created = set(sql(spread, "SELECT id FROM operations WHERE requested_by LIKE 'spread-load-%'").split())
    assert results.operations <= created
    states = wait_for_operations(spread, created, timeout=120)
    assert len(states) == len(created), "an operation vanished"
    assert all(states[i] == "succeeded" for i in results.operations), \
        {i: states[i] for i in results.operations if states[i] != "succeeded"}
    assert all(state in ("succeeded", "failed") for state in states.values()), states
    # Each command (one hostname per key) reached Hostinger at most once, and every
    # succeeded operation did reach it.
    calls = [r["body"]["hostname"] for r in sim_requests(spread, "PUT", "/hostname")
             if r["body"]["hostname"].startswith("load-")]
    assert len(calls) == len(set(calls)), "a mutation was sent to Hostinger twice"
    assert len(calls) >= sum(1 for state in states.values() if state == "succeeded")
    # The load's clients: each command ended with a definitive answer once retried with its key.
    last = {}
    for item in results.answers:
        if item.kind == "command":
            last[item.key] = item
    undecided = [a for a in last.values() if a.status not in (200, 202, 409) or KEY_IN_USE in a.detail]
    assert not undecided, undecided[:5]
    # Reads and polls may fail only for want of an answer (a request caught on the cut
    # host), never with a wrong one.
    assert all(a.status is None or a.status >= 500 for a in results.unexpected() if a.kind != "command")
