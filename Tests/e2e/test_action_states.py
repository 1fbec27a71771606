"""Action states beyond Hostinger's documented enum (docs/hostinger.md#actions):
an action that passes through `started`, and one that reports a state nobody documented,
are followed to their end; an unknown state means "still running", never a crash."""

import time
import uuid

import pytest

from vpsgate_e2e import Client, close_operations_and_reset_sim, operation_row, wait_operation


@pytest.fixture(scope="module")
def otto(stack):
    stack.grant("otto", "*", "operator")
    return Client(stack, stack.create_token("otto"))


@pytest.fixture(autouse=True)
def fresh(stack):
    close_operations_and_reset_sim(stack, action_delay_ms=150)
    yield
    stack.sim("DELETE", "/__sim/faults")
    stack.sim("POST", "/__sim/config", {"extra_states": False, "action_delay_ms": 150})


def states_seen(stack, operation_id, timeout=20):
    """The Hostinger action states the operation's row went through, until it was terminal."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = operation_row(stack, operation_id)
        if row["hostinger_action_state"] and (not seen or seen[-1] != row["hostinger_action_state"]):
            seen.append(row["hostinger_action_state"])
        if row["state"] in ("succeeded", "failed", "cancelled"):
            return seen, row
        time.sleep(0.05)
    raise AssertionError(f"operation {operation_id} never ended: {seen}")


def test_an_action_passing_through_started_is_followed_to_its_end(stack, otto):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 3000, "extra_states": True})
    status, headers, operation = otto.json("POST", "/v1/vps/1001/restart", {}, key=str(uuid.uuid4()))
    assert status == 202, operation
    seen, row = states_seen(stack, operation["id"])
    assert "started" in seen, seen
    assert row["state"] == "succeeded" and seen[-1] == "success", (seen, row)
    assert wait_operation(otto, headers["Location"])["hostinger_action"]["state"] == "success"


def test_an_action_in_an_undocumented_state_is_running_until_it_ends(stack, otto):
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 2500})
    stack.sim("POST", "/__sim/faults", {"path": "/restart$", "action_state": "queued"})
    status, headers, operation = otto.json("POST", "/v1/vps/1002/restart", {}, key=str(uuid.uuid4()))
    assert status == 202, operation
    assert operation["state"] == "running" and operation["hostinger_action"]["state"] == "queued"
    status, _, read = otto.json("GET", headers["Location"])
    assert status == 200 and read["state"] == "running"
    seen, row = states_seen(stack, operation["id"])
    assert seen[0] == "queued" and seen[-1] == "success", seen
    assert row["state"] == "succeeded"
    for index in (1, 2):
        assert stack.processes[f"vpsgate-{index}"].poll() is None, "an instance died"
