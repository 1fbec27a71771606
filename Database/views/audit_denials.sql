CREATE OR REPLACE VIEW audit_denials AS
SELECT id, occurred_at, principal, auth_type, client_address, method, path, command, vps_id, outcome, http_status,
       problem_type, correlation_id, vpsgate_path_resource(path) AS resource
FROM audit_events
WHERE kind = 'final' AND outcome IN ('denied', 'not_found', 'invalid', 'conflict', 'busy');

GRANT SELECT ON audit_denials TO vpsgate_auditor;
