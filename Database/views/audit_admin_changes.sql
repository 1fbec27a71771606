-- Changes to tokens and grants.
CREATE OR REPLACE VIEW audit_admin_changes AS
SELECT id, occurred_at, principal AS actor, command AS change, vps_id, request_params AS details
FROM audit_events
WHERE kind = 'admin';

GRANT SELECT ON audit_admin_changes TO vpsgate_auditor;
