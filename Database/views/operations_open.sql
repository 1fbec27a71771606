-- MARK: Views
CREATE OR REPLACE VIEW operations_open AS
SELECT id, vps_id, command, state, stale, requested_by, correlation_id, hostinger_action_id, created_at,
       clock_timestamp() - created_at AS age, resource_type, resource_id
FROM operations
WHERE state = ANY(vpsgate_in_flight_states() || ARRAY['awaiting_approval', 'approved']);

GRANT SELECT ON operations_open TO vpsgate_auditor;
