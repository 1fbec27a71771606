"""Fixtures for the end-to-end tests: real PostgreSQL, vpsgate instances and nginx on loopback."""

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from vpsgate_stack import Stack  # noqa: E402


# Deadlines and windows short enough that settling takes seconds, not minutes (the
# reconciler's and the outcome tests' stacks).
SHORT_WINDOWS = {
    "HOSTINGER_DEADLINE_MS": "4000", "HOSTINGER_ATTEMPT_TIMEOUT_MS": "2000", "VPSGATE_RECONCILE_GRACE_MS": "6000",
    "VPSGATE_SETTLE_WINDOW_MS": "3000", "VPSGATE_DRIFT_SCAN_INTERVAL_MS": "2000", "VPSGATE_RECONCILE_INTERVAL_MS": "200",
    "HOSTINGER_BREAKER_COOLDOWN_MS": "1000",
}


def close_operations_and_reset_sim(stack: Stack) -> None:
    """No VPS busy and a simulator back to its fixtures: operations a previous test left open
    are closed by hand (in stacks whose reconciler is not under test)."""
    stack.postgres.psql("UPDATE operations SET state = 'failed', completed_at = now() WHERE state NOT IN ('succeeded', 'failed')",
                        url=stack.postgres.owner_url)
    stack.sim("POST", "/__sim/reset")


def make_stack(tmp_root: Path, start: bool = True, **kwargs) -> Stack:
    """A stack with the tests' settings, started unless `start` is false (to configure it first)."""
    extra_env = {"VPSGATE_DEBUG_ROUTES": "1", "VPSGATE_SHUTDOWN_TIMEOUT": "10",
                 "HOSTINGER_BREAKER_FAILURES": "5", "HOSTINGER_BREAKER_COOLDOWN_MS": "10000"}
    extra_env.update(kwargs.pop("extra_env", {}))
    stack = Stack(tmp_root, extra_env=extra_env, **kwargs)
    if start:
        stack.start()
    return stack


def module_stack(prefix: str = "vpsgate-e2e-", **kwargs):
    """A started stack for one test module, stopped after it (`yield from` it in a
    module-scoped fixture); `kwargs` go to `make_stack`."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    stack = make_stack(root, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def stack():
    yield from module_stack()
