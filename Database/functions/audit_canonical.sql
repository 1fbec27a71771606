-- A row's canonical content: every column, times as integer microseconds, JSON normalised.
-- `reason` (migration 0019) is the array's last member when the row has one, and absent
-- otherwise: a row sealed before the column existed keeps the content it was sealed with.
CREATE OR REPLACE FUNCTION audit_canonical(a audit_events) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.reason IS NULL THEN c.text ELSE left(c.text, -1) || ', ' || to_json(a.reason)::text || ']' END
    FROM (SELECT json_build_array(
        a.id, a.event_id, (extract(epoch FROM a.occurred_at) * 1000000)::bigint, a.kind, a.instance, a.correlation_id,
        a.trace_id, a.principal, a.auth_type, a.client_address, a.user_agent, a.method, a.path, a.command, a.vps_id,
        a.request_params, a.idempotency_key, a.operation_id, a.outcome, a.http_status, a.problem_type,
        a.hostinger_status, a.hostinger_correlation_id, a.hostinger_action_id, a.duration_ms)::text) AS c(text)
$$;

GRANT EXECUTE ON FUNCTION audit_canonical(audit_events) TO vpsgate_app;
