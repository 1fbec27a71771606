"""Upkeep that does not depend on the reconciler: with VPSGATE_RECONCILER=0 on every
instance, audit rows are still sealed and expired idempotency keys still purged; a key
outlives its operation while that awaits approval."""

import subprocess
import time
import uuid

import pytest

from vpsgate_e2e import admin_client, sql, wait_operation

TTL_SECONDS = 3


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory("house", extra_env={"VPSGATE_RECONCILER": "0", "VPSGATE_SEAL_INTERVAL_MS": "300",
                                             "VPSGATE_SEAL_HORIZON_MS": "1000", "VPSGATE_IDEMPOTENCY_TTL": f"{TTL_SECONDS}s"})


def test_without_any_reconciler_rows_are_sealed_and_expired_keys_purged(stack):
    hana = admin_client(stack, "hana")
    key = str(uuid.uuid4())
    status, _, operation = hana.json("POST", "/v1/vps/1002/start", key=key)
    assert status == 202
    # A key lives while its operation is open; with no reconciler, reads see it end.
    wait_operation(hana, f"/v1/operations/{operation['id']}")
    for index in (1, 2):
        assert '"component":"reconciler"' not in stack.log_path(f"vpsgate-{index}").read_text()

    deadline = time.monotonic() + 30
    result = None
    while time.monotonic() < deadline:
        result = subprocess.run([str(stack.binary), "audit", "verify"], capture_output=True, text=True,
                                env=stack.instance_env(0, database_url=stack.postgres.owner_url))
        if result.returncode == 0 and "rows not sealed yet: 0" in result.stdout:
            break
        time.sleep(0.3)
    assert result.returncode == 0 and "rows not sealed yet: 0" in result.stdout, result.stdout + result.stderr
    assert int(result.stdout.split("sealed rows: ")[1].split()[0]) >= 2

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") != "0":
        time.sleep(0.3)
    assert sql(stack, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "0"


def key_row(stack, key):
    """`state|answer older than the TTL` of the key's row; empty when it is gone."""
    return sql(stack, f"SELECT state, completed_at < now() - interval '{TTL_SECONDS} seconds' FROM idempotency_keys "
                      f"WHERE key = '{key}'")


def test_a_key_outlives_its_operation_awaiting_approval_and_replays_it(stack):
    ines = admin_client(stack, "ines")
    stack.admin("policy", "set", "--subject", "vps.restart", "--vps", "1003", "--approvals", "1")
    try:
        key = str(uuid.uuid4())
        status, _, operation = ines.json("POST", "/v1/vps/1003/restart", key=key)
        assert status == 202 and operation["state"] == "awaiting_approval", operation
        # Several purges later (one every 1.5 s here), the key's answer is past the TTL and kept.
        time.sleep(TTL_SECONDS + 4)
        assert key_row(stack, key) == "completed|t"
        status, _, again = ines.json("POST", "/v1/vps/1003/restart", key=key)
        assert status == 202 and again["id"] == operation["id"], again
        assert sql(stack, f"SELECT count(*) FROM operations WHERE idempotency_key = '{key}'") == "1"
        # Cancelled, it is terminal: the key goes one TTL later.
        status, _, cancelled = ines.json("POST", f"/v1/operations/{operation['id']}/cancel")
        assert status == 200 and cancelled["state"] == "cancelled", cancelled
        assert key_row(stack, key) == "completed|t"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and key_row(stack, key):
            time.sleep(0.3)
        assert key_row(stack, key) == ""
    finally:
        stack.admin("policy", "remove", "--subject", "vps.restart", "--vps", "1003")
