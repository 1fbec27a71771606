CREATE OR REPLACE FUNCTION operation_json(o operations) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    shown jsonb;
BEGIN
    shown := jsonb_build_object(
        'id', o.id, 'vps_id', o.vps_id, 'resource', vpsgate_resource_json(o.resource_type, coalesce(o.vps_id, o.resource_id)),
        'command', o.command, 'state', o.state,
        'hostinger_action', CASE WHEN o.hostinger_action_id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', o.hostinger_action_id, 'name', o.hostinger_action_name, 'state', o.hostinger_action_state) END,
        'error', o.error, 'requested_by', o.requested_by, 'reason', o.reason, 'correlation_id', o.correlation_id,
        'idempotency_key', o.idempotency_key, 'created_at', vpsgate_time(o.created_at),
        'updated_at', vpsgate_time(o.updated_at), 'completed_at', vpsgate_time(o.completed_at));
    IF o.result IS NOT NULL THEN
        shown := shown || jsonb_build_object('result', o.result);
    END IF;
    IF o.approvals_required > 0 THEN
        shown := shown || jsonb_build_object('approval', jsonb_build_object(
            'required', o.approvals_required, 'expires_at', vpsgate_time(o.approval_expires_at),
            'dispatched_at', vpsgate_time(o.dispatched_at)));
    END IF;
    RETURN shown;
END
$$;
