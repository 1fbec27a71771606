"""A rolling restart under load, through the production nginx configuration: two instances
on TCP, steady commands and reads for VPSGATE_ROLLING_SECONDS (60 by default), each
instance stopped with SIGTERM and started again in turn. No client request may fail and no
accepted operation may be lost or sent to Hostinger twice."""

import concurrent.futures
import os
import signal
import time

import pytest

from fastcgi_client import fastcgi_request
from load import Load, wait_for_operations
from vpsgate_e2e import sim_requests

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("VPSGATE_ROLLING_SECONDS", "60"))
VPS = [1001, 1002, 1003]  # restart works from running (1001, 1003) and stopped (1002)


def test_rolling_restart_under_load_fails_no_request_and_loses_no_operation(stack_factory):
    # Two workers per instance and a Hostinger that takes a second to answer a restart:
    # requests often wait in the listen queue, where a SIGTERM finds them. Restarts are
    # POSTs, which nginx never resends once written: a dropped one would fail its client.
    stack = stack_factory("rolling", production=True, tcp=True, workers=2)
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 500})
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": "/restart$", "delay_ms": 1000, "times": -1})
    tokens = []
    for index in range(len(VPS) + 2):
        stack.grant(f"roll-{index}", "*", "operator")
        tokens.append(stack.create_token(f"roll-{index}"))
    started = time.monotonic()
    with Load(stack, tokens, VPS, command="restart") as load:
        restarts = []
        for index in (1, 2):
            time.sleep(SECONDS / 5)
            before = len(load.results.answers)
            assert stack.stop_instance(index) == 0, f"vpsgate-{index} did not drain cleanly"
            stack.start_instance(index)
            restarts.append(before)
        time.sleep(max(0.0, SECONDS - (time.monotonic() - started)))
    results = load.results

    kinds = {kind: sum(1 for a in results.answers if a.kind == kind) for kind in ("command", "replay", "poll", "read")}
    print(f"\nrolling restart: {len(results.answers)} requests {kinds}, {len(results.unexpected())} failed, "
          f"{len(results.operations)} operations accepted")
    assert not results.unexpected(), results.unexpected()[:10]
    assert kinds["command"] >= 20 and kinds["read"] >= 50, kinds
    assert all(len(results.answers) > before for before in restarts), "load ran across both restarts"
    # Every accepted operation finished, each with exactly one Hostinger call.
    states = wait_for_operations(stack, results.operations)
    assert len(states) == len(results.operations)
    assert set(states.values()) == {"succeeded"}, states
    calls = sim_requests(stack, "POST", "/restart")
    assert len(calls) == len(results.operations), (len(calls), len(results.operations))
    # Both instances served before and after their restart.
    log = (stack.run_dir / "vpsgate-access.log").read_text()
    for index in (1, 2):
        assert stack.instance_address(index) in log


def test_tcp_connections_queued_at_sigterm_are_served_and_new_ones_refused(stack_factory):
    """A TCP listener's queue holds connections nginx has already written requests to; a
    draining instance serves them (it stops taking new ones first) instead of resetting them."""
    stack = stack_factory("queue", tcp=True, instances=1, workers=1)
    address = stack.instance_address(1)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        slow = pool.submit(fastcgi_request, address, "GET", "/__debug/sleep?ms=1500")
        time.sleep(0.3)  # the only worker is busy
        queued = [pool.submit(fastcgi_request, address, "GET", "/healthz") for _ in range(4)]
        time.sleep(0.3)  # those four wait in the listen queue
        stack.processes["vpsgate-1"].send_signal(signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(OSError):  # refused, reset or timed out: not accepted any more
            fastcgi_request(address, "GET", "/healthz", timeout=3)
        assert slow.result(timeout=30)[0] == 200
        assert [future.result(timeout=30)[0] for future in queued] == [200] * 4
    assert stack.stop_instance(1) == 0
