"""Fixtures for the end-to-end tests: real PostgreSQL, vpsgate instances and nginx on loopback.
The helpers they share (client, SQL, simulator, operations) are in vpsgate_e2e.py."""

import pytest

from vpsgate_e2e import Stack, admin_client, close_operations_and_reset_sim, make_stack


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes of load, chaos or network namespaces (still run by default; "
                                       "-m 'not slow' leaves them out)")
    config.addinivalue_line("markers", "scratch_build: builds a copy of vpsgate from scratch (many minutes); runs only with "
                                       "VPSGATE_SCRATCH_BUILD_TESTS=1")


def pytest_collection_modifyitems(config, items):
    """A scratch build costs more than the rest of the suite's time budget on a fresh clone,
    so those tests run when asked for (VPSGATE_SCRATCH_BUILD_TESTS=1), not in every run."""
    import os
    if os.environ.get("VPSGATE_SCRATCH_BUILD_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="builds vpsgate from scratch: set VPSGATE_SCRATCH_BUILD_TESTS=1 to run it")
    for item in items:
        if "scratch_build" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def stack_factory():
    """`stack_factory(name, start=True, **settings) -> Stack`: a stack of the module's own
    (settings as `make_stack` takes them), started unless `start` is false (to configure it
    first, then `stack.start()`); every stack it made is stopped when the module ends."""
    made: list[Stack] = []

    def factory(name: str, start: bool = True, **settings) -> Stack:
        stack = make_stack(name, **settings)
        made.append(stack)
        if start:
            stack.start()
        return stack

    try:
        yield factory
    finally:
        failures = []
        for stack in reversed(made):
            try:
                stack.stop()
            except Exception as error:  # noqa: BLE001 - the other stacks are stopped all the same
                failures.append(error)
        if failures:
            raise failures[0]


@pytest.fixture(scope="module")
def stack(stack_factory):
    """A stack with the default settings for each module (a module with settings of its own
    overrides this fixture with a call of `stack_factory`)."""
    return stack_factory("default")


@pytest.fixture(scope="module")
def admin(stack):
    """A client of `root`, admin on every VPS of the module's stack."""
    return admin_client(stack, "root")


@pytest.fixture()
def no_open_operations(stack):
    """Before each test of a module that asks for it (`pytest.mark.usefixtures`): no VPS busy
    and the simulator back to its fixtures."""
    close_operations_and_reset_sim(stack)
