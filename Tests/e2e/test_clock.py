"""One clock (docs/design.md#trust-boundaries): every stored time and window is the database's. The database
here runs 20 minutes ahead of the vpsgate instances (libfaketime), as an instance whose
clock is 20 minutes slow would be: its operations must still block their VPS and not be
stale at birth."""

import glob
import json
import time
import uuid

import pytest

from vpsgate_e2e import admin_client, sql


@pytest.fixture(scope="module")
def stack(stack_factory):
    stack = stack_factory("clock", start=False)
    (library,) = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")  # scripts/test installs faketime
    stack.postgres.environment = {"LD_PRELOAD": library, "FAKETIME": "+20m", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    stack.start()
    return stack


def test_operations_of_an_instance_with_another_clock_block_their_vps_and_are_not_stale(stack):
    skew = float(sql(stack, "SELECT extract(epoch FROM now())")) - time.time()
    assert 1100 < skew < 1300, f"the database's clock is not ahead: {skew}"
    clara = admin_client(stack, "clara")
    stack.sim("POST", "/__sim/config", {"action_delay_ms": 60_000})
    status, _, raw = clara.request("POST", "/v1/vps/1003/restart", key=str(uuid.uuid4()))
    assert status == 202, raw
    operation = json.loads(raw)
    row = json.loads(sql(stack, "SELECT row_to_json(o) FROM (SELECT stale, extract(epoch FROM clock_timestamp() - created_at) AS age "
                                f"FROM operations WHERE id = '{operation['id']}') o"))
    assert 0 <= row["age"] < 30 and row["stale"] is False, row
    # The answer shows the database's times too.
    created = sql(stack, f"SELECT extract(epoch FROM created_at) FROM operations WHERE id = '{operation['id']}'")
    assert operation["created_at"].startswith(sql(stack, f"SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI') "
                                                         f"FROM operations WHERE id = '{operation['id']}'")), (operation, created)
    status, _, raw = clara.request("POST", "/v1/vps/1003/stop", key=str(uuid.uuid4()))
    assert status == 409 and json.loads(raw)["type"].endswith("#vps-busy"), raw
    time.sleep(2)  # a reconciler pass: still not stale
    assert sql(stack, f"SELECT stale FROM operations WHERE id = '{operation['id']}'") == "f"
