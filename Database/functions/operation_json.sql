-- An operation as GET /v1/operations/{id} shows it (OperationRecord.write), for event data.
-- One SQL expression, STABLE like what it calls: PostgreSQL inlines it (and vpsgate_time,
-- vpsgate_resource_json) into the calling trigger's expression, whose plan PL/pgSQL keeps
-- for the session. (A PL/pgSQL body, or a SQL function that cannot be inlined, costs a call
-- each time, and a SQL one a new plan each transaction.) `result` and `approval` are there
-- only when the operation has them.
CREATE OR REPLACE FUNCTION operation_json(o operations) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', o.id, 'vps_id', o.vps_id, 'resource', vpsgate_resource_json(o.resource_type, coalesce(o.vps_id, o.resource_id)),
        'command', o.command, 'state', o.state,
        'hostinger_action', CASE WHEN o.hostinger_action_id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', o.hostinger_action_id, 'name', o.hostinger_action_name, 'state', o.hostinger_action_state) END,
        'error', o.error, 'requested_by', o.requested_by, 'reason', o.reason, 'correlation_id', o.correlation_id,
        'idempotency_key', o.idempotency_key, 'created_at', vpsgate_time(o.created_at),
        'updated_at', vpsgate_time(o.updated_at), 'completed_at', vpsgate_time(o.completed_at))
        || CASE WHEN o.result IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('result', o.result) END
        || CASE WHEN o.approvals_required > 0 THEN jsonb_build_object('approval', jsonb_build_object(
               'required', o.approvals_required, 'expires_at', vpsgate_time(o.approval_expires_at),
               'dispatched_at', vpsgate_time(o.dispatched_at))) ELSE '{}'::jsonb END
$$;
