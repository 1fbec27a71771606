-- Approved operations wait as long as their approval lives (an outage included); past it,
-- as unapproved ones, they are cancelled with reason expired.
CREATE OR REPLACE FUNCTION expire_approvals() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    expired integer;
BEGIN
    WITH gone AS (
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = jsonb_build_object('reason', 'expired')
        WHERE o.state IN ('awaiting_approval', 'approved') AND o.approval_expires_at <= clock_timestamp()
        RETURNING o.id, o.requested_by, o.idempotency_key, o.command, o.vps_id, o.correlation_id, o.approvals_required
    ), dropped AS (
        DELETE FROM operation_requests r USING gone WHERE r.operation_id = gone.id
    ), audited AS (
        INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, command, vps_id, correlation_id, auth_type,
                                  outcome, request_params)
        SELECT 'approval', g.id, g.requested_by, g.idempotency_key, g.command, g.vps_id, g.correlation_id, 'housekeeper',
               'expired', jsonb_build_object('approvals_required', g.approvals_required)
        FROM gone g
        RETURNING 1
    )
    SELECT count(*) INTO expired FROM audited;
    RETURN expired;
END
$$;

GRANT EXECUTE ON FUNCTION expire_approvals() TO vpsgate_app;
