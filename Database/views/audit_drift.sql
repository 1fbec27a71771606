CREATE OR REPLACE VIEW audit_drift AS
SELECT id, detected_at, vps_id, operation_id, hostinger_action_id, kind, vpsgate_view, hostinger_view, instance
FROM drift_events;

GRANT SELECT ON audit_drift TO vpsgate_auditor;
