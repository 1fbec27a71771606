"""Upkeep that does not depend on the reconciler: with VPSGATE_RECONCILER=0 on every
instance, audit rows are still sealed and expired idempotency keys still purged."""

import subprocess
import time
import uuid

import pytest

from vpsgate_e2e import admin_client, sql


@pytest.fixture(scope="module")
def stack(stack_factory):
    return stack_factory("house", extra_env={"VPSGATE_RECONCILER": "0", "VPSGATE_SEAL_INTERVAL_MS": "300",
                                             "VPSGATE_SEAL_HORIZON_MS": "1000", "VPSGATE_IDEMPOTENCY_TTL": "3s"})


def test_without_any_reconciler_rows_are_sealed_and_expired_keys_purged(stack):
    hana = admin_client(stack, "hana")
    key = str(uuid.uuid4())
    status, _, _ = hana.json("POST", "/v1/vps/1002/start", key=key)
    assert status == 202
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
