-- Operations that ran during a freeze, by emergency override, with who approved them.
CREATE OR REPLACE VIEW audit_freeze_overrides AS
SELECT o.id AS operation_id, o.command, o.vps_id, o.requested_by, o.emergency_reason, o.created_at, o.dispatched_at, o.state,
       (SELECT array_agg(p.principal ORDER BY p.decided_at) FROM approvals p
        WHERE p.operation_id = o.id AND p.decision = 'approve') AS approved_by
FROM operations o
WHERE o.emergency_reason IS NOT NULL;

GRANT SELECT ON audit_freeze_overrides TO vpsgate_auditor;
