-- Audit for SQL users (SPEC section 9): documented views, a read-only auditor role,
-- indexes for the documented queries, and the tamper-evident seal chain.

CREATE INDEX audit_events_time ON audit_events (occurred_at);
CREATE INDEX audit_events_command_time ON audit_events (command, occurred_at);
CREATE INDEX operations_command_created ON operations (command, created_at);

-- Every command request's outcome: who did what to which VPS, when, and how it ended.
CREATE VIEW audit_mutations AS
SELECT a.id, a.occurred_at, a.principal, a.auth_type, a.client_address, a.command, a.vps_id, a.outcome,
       a.http_status, a.problem_type, a.operation_id, o.state AS operation_state, a.correlation_id,
       a.idempotency_key, a.request_params, a.hostinger_status, a.hostinger_action_id, a.duration_ms, a.instance
FROM audit_events a LEFT JOIN operations o ON o.id = a.operation_id
WHERE a.kind = 'final';

-- Attempts that were refused before reaching Hostinger.
CREATE VIEW audit_denials AS
SELECT id, occurred_at, principal, auth_type, client_address, method, path, command, vps_id, outcome, http_status,
       problem_type, correlation_id
FROM audit_events
WHERE kind = 'final' AND outcome IN ('denied', 'not_found', 'invalid', 'conflict', 'busy');

-- Commands that destroy data (vps:destroy).
CREATE VIEW audit_destructive AS
SELECT * FROM audit_mutations
WHERE command IN ('vps.recreate', 'vps.snapshot.restore', 'vps.backup.restore');

-- Per command and day: operations, how many failed, and the 95th percentile of their duration.
CREATE VIEW command_daily_stats AS
SELECT date_trunc('day', created_at) AS day, command,
       count(*) AS operations,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       round(count(*) FILTER (WHERE state = 'failed')::numeric / count(*), 4) AS failure_rate,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)) AS p95_seconds
FROM operations
WHERE state IN ('succeeded', 'failed')
GROUP BY 1, 2;

-- Operations not terminal yet, oldest first, with their age.
CREATE VIEW operations_open AS
SELECT id, vps_id, command, state, stale, requested_by, correlation_id, hostinger_action_id, created_at,
       clock_timestamp() - created_at AS age
FROM operations
WHERE state IN ('accepted', 'dispatched', 'running', 'unknown');

-- Everything recorded under one correlation id, in order: the request, its Hostinger
-- call (status, correlation id, action), the reconciler's transitions.
CREATE VIEW audit_story AS
SELECT correlation_id, occurred_at, kind, instance, principal, command, vps_id, outcome, http_status, problem_type,
       hostinger_status, hostinger_correlation_id, hostinger_action_id, operation_id, duration_ms, id
FROM audit_events;

-- Changes to tokens and grants.
CREATE VIEW audit_admin_changes AS
SELECT id, occurred_at, principal AS actor, command AS change, vps_id, request_params AS details
FROM audit_events
WHERE kind = 'admin';

CREATE VIEW audit_drift AS
SELECT id, detected_at, vps_id, operation_id, hostinger_action_id, kind, vpsgate_view, hostinger_view, instance
FROM drift_events;

-- The auditor reads the views and nothing else (no login until a DBA grants one).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vpsgate_auditor') THEN
        CREATE ROLE vpsgate_auditor NOLOGIN;
    END IF;
END
$$;
GRANT SELECT ON audit_mutations, audit_denials, audit_destructive, command_daily_stats, operations_open,
                audit_story, audit_admin_changes, audit_drift TO vpsgate_auditor;

-- The seal chain: seal(n) = SHA-256(seal(n-1) || canonical(row)), in sealing order.
CREATE TABLE audit_seals (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    audit_id  bigint NOT NULL UNIQUE,
    seal      text NOT NULL CHECK (seal ~ '^[0-9a-f]{64}$'),
    sealed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER audit_seals_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- A row's canonical content: every column, times as integer microseconds, JSON normalised.
CREATE FUNCTION audit_canonical(a audit_events) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_array(
        a.id, a.event_id, (extract(epoch FROM a.occurred_at) * 1000000)::bigint, a.kind, a.instance, a.correlation_id,
        a.trace_id, a.principal, a.auth_type, a.client_address, a.user_agent, a.method, a.path, a.command, a.vps_id,
        a.request_params, a.idempotency_key, a.operation_id, a.outcome, a.http_status, a.problem_type,
        a.hostinger_status, a.hostinger_correlation_id, a.hostinger_action_id, a.duration_ms)::text
$$;

GRANT SELECT, INSERT ON audit_seals TO vpsgate_app;
GRANT EXECUTE ON FUNCTION audit_canonical(audit_events) TO vpsgate_app;
