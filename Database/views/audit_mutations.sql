CREATE OR REPLACE VIEW audit_mutations AS
SELECT a.id, a.occurred_at, a.principal, a.auth_type, a.client_address, a.command, a.vps_id, a.outcome,
       a.http_status, a.problem_type, a.operation_id, o.state AS operation_state, a.correlation_id,
       a.idempotency_key, a.request_params, a.hostinger_status, a.hostinger_action_id, a.duration_ms, a.instance,
       a.path, vpsgate_path_resource(a.path) AS resource, a.reason
FROM audit_events a LEFT JOIN operations o ON o.id = a.operation_id
WHERE a.kind = 'final';

GRANT SELECT ON audit_mutations TO vpsgate_auditor;
