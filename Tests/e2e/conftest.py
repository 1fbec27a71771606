"""Fixtures for the end-to-end tests: real PostgreSQL, vpsgate instances and nginx on loopback."""

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from vpsgate_stack import Stack  # noqa: E402


def make_stack(tmp_root: Path, start: bool = True, **kwargs) -> Stack:
    """A stack with the tests' settings, started unless `start` is false (to configure it first)."""
    extra_env = {"VPSGATE_DEBUG_ROUTES": "1", "VPSGATE_SHUTDOWN_TIMEOUT": "10",
                 "HOSTINGER_BREAKER_FAILURES": "5", "HOSTINGER_BREAKER_COOLDOWN_MS": "10000"}
    extra_env.update(kwargs.pop("extra_env", {}))
    stack = Stack(tmp_root, extra_env=extra_env, **kwargs)
    if start:
        stack.start()
    return stack


@pytest.fixture(scope="module")
def stack():
    root = Path(tempfile.mkdtemp(prefix="vpsgate-e2e-"))
    root.chmod(0o755)
    stack = make_stack(root)
    try:
        yield stack
    finally:
        stack.stop()
