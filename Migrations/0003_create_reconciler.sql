-- The reconciler (SPEC section 5): leases so that one instance works each operation at a
-- time, a schedule for the next look, the stale flag, drift records, and scan leases.

ALTER TABLE operations
    ADD COLUMN lease_owner   text,
    ADD COLUMN lease_until   timestamptz,
    ADD COLUMN next_check_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ADD COLUMN checks        integer NOT NULL DEFAULT 0,
    ADD COLUMN stale         boolean NOT NULL DEFAULT false;

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

-- The end of a command no longer overwrites what the reconciler already settled from
-- Hostinger (an instance that finishes after the reconciler gave up waiting for it).
CREATE OR REPLACE FUNCTION finish_command(
    p_principal text, p_key text, p_operation_id uuid, p_state text, p_action_id bigint, p_action_name text,
    p_action_state text, p_error jsonb, p_now_us bigint, p_store boolean, p_status integer, p_location text,
    p_body bytea, p_audit jsonb
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := 'epoch'::timestamptz + p_now_us * interval '1 microsecond';
BEGIN
    UPDATE operations SET
        state = p_state, hostinger_action_id = p_action_id, hostinger_action_name = p_action_name,
        hostinger_action_state = p_action_state, error = p_error, updated_at = now_ts, refreshed_at = now_ts,
        completed_at = CASE WHEN p_state IN ('succeeded', 'failed') THEN now_ts END,
        next_check_at = now_ts + interval '1 second'
    WHERE id = p_operation_id AND state = 'accepted';
    IF p_store THEN
        UPDATE idempotency_keys SET state = 'completed', response_status = p_status, response_location = p_location,
                                    response_body = p_body, completed_at = now()
        WHERE principal = p_principal AND key = p_key AND state = 'in_flight';
    ELSE
        DELETE FROM idempotency_keys WHERE principal = p_principal AND key = p_key AND state = 'in_flight';
    END IF;
    INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, instance, correlation_id, trace_id,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              outcome, http_status, problem_type, hostinger_status, hostinger_correlation_id,
                              hostinger_action_id, duration_ms)
    SELECT 'final', p_operation_id, p_principal, p_key, a.instance, a.correlation_id, a.trace_id, a.auth_type,
           a.client_address, a.user_agent, a.method, a.path, a.command, a.vps_id, a.request_params, a.outcome,
           a.http_status, a.problem_type, a.hostinger_status, a.hostinger_correlation_id, p_action_id, a.duration_ms
    FROM jsonb_to_record(p_audit) AS a(instance text, correlation_id text, trace_id text, auth_type text,
                                       client_address text, user_agent text, method text, path text, command text,
                                       vps_id bigint, request_params jsonb, outcome text, http_status integer,
                                       problem_type text, hostinger_status integer, hostinger_correlation_id text,
                                       duration_ms double precision);
END
$$;
