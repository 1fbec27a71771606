-- Who approved, denied or cancelled what, and when.
CREATE OR REPLACE VIEW audit_approvals AS
SELECT a.id, a.occurred_at, a.principal AS decided_by, a.request_params ->> 'action' AS action, a.outcome,
       a.request_params ->> 'reason' AS reason, a.operation_id, o.command, o.vps_id, o.requested_by, o.state AS operation_state,
       a.correlation_id
FROM audit_events a LEFT JOIN operations o ON o.id = a.operation_id
WHERE a.kind = 'approval';

GRANT SELECT ON audit_approvals TO vpsgate_auditor;
