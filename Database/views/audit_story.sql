-- Everything recorded under one correlation id, in order: the request, its Hostinger
-- call (status, correlation id, action), the reconciler's transitions.
CREATE OR REPLACE VIEW audit_story AS
SELECT correlation_id, occurred_at, kind, instance, principal, command, vps_id, outcome, http_status, problem_type,
       hostinger_status, hostinger_correlation_id, hostinger_action_id, operation_id, duration_ms, id
FROM audit_events;

GRANT SELECT ON audit_story TO vpsgate_auditor;
