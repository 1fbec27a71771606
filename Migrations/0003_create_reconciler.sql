-- The reconciler (SPEC section 5): its index, one adopted action per operation, drift
-- records, and scan leases. (Its lease and schedule columns are in 0002.)

CREATE INDEX operations_reconcile ON operations (next_check_at)
    WHERE state IN ('accepted', 'dispatched', 'running', 'unknown');
-- A Hostinger action belongs to at most one operation (adoption cannot take it twice).
CREATE UNIQUE INDEX operations_hostinger_action ON operations (hostinger_action_id)
    WHERE hostinger_action_id IS NOT NULL;

ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check
    CHECK (kind IN ('received', 'final', 'completion', 'admin', 'reconciler'));

-- Every disagreement between vpsgate's records and Hostinger's; Hostinger's answer wins.
CREATE TABLE drift_events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    detected_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    instance            text NOT NULL,
    vps_id              bigint NOT NULL,
    operation_id        uuid,
    hostinger_action_id bigint,
    kind                text NOT NULL CHECK (kind IN ('action_unknown', 'state_mismatch', 'unclaimed_action')),
    vpsgate_view        jsonb,
    hostinger_view      jsonb
);
CREATE UNIQUE INDEX drift_events_once ON drift_events (kind, hostinger_action_id) WHERE hostinger_action_id IS NOT NULL;
CREATE INDEX drift_events_vps_time ON drift_events (vps_id, detected_at);

-- Periodic scans done by one instance at a time.
CREATE TABLE reconciler_scans (
    name        text PRIMARY KEY,
    lease_owner text,
    lease_until timestamptz,
    watermark   timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO reconciler_scans (name) VALUES ('unclaimed_actions');

GRANT SELECT, INSERT ON drift_events TO vpsgate_app;
GRANT SELECT, UPDATE ON reconciler_scans TO vpsgate_app;

