-- The batch as GET /v1/batches/{id} shows it (children with p_children).
CREATE OR REPLACE FUNCTION batch_json(b batches, p_children boolean) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    counts jsonb;
    children jsonb;
BEGIN
    SELECT jsonb_build_object(
        'total', count(*), 'pending', count(*) FILTER (WHERE c.state = 'pending'),
        'started', count(*) FILTER (WHERE c.state = 'started'), 'succeeded', count(*) FILTER (WHERE c.state = 'succeeded'),
        'failed', count(*) FILTER (WHERE c.state = 'failed'), 'skipped', count(*) FILTER (WHERE c.state = 'skipped'),
        'cancelled', count(*) FILTER (WHERE c.state = 'cancelled'))
    INTO counts FROM batch_children c WHERE c.batch_id = b.id;
    IF p_children THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'vps_id', c.vps_id, 'state', c.state, 'operation_id', c.operation_id,
            'operation', CASE WHEN c.operation_id IS NULL THEN NULL ELSE '/v1/operations/' || c.operation_id END,
            'attempts', c.attempts) ORDER BY c.position), '[]'::jsonb)
        INTO children FROM batch_children c WHERE c.batch_id = b.id;
    END IF;
    RETURN jsonb_build_object(
        'id', b.id, 'command', b.command, 'state', b.state, 'requested_by', b.principal, 'reason', b.reason,
        'request', b.request,
        'max_in_flight', b.max_in_flight, 'max_failures', b.max_failures, 'pause_seconds', b.pause_seconds,
        'counts', counts, 'halt_reason', b.halt_reason, 'idempotency_key', b.idempotency_key, 'correlation_id', b.correlation_id,
        'approval', CASE WHEN b.approvals_required > 0 THEN jsonb_build_object(
            'required', b.approvals_required, 'expires_at', vpsgate_time(b.approval_expires_at),
            'approvals', (SELECT count(*) FROM batch_approvals a WHERE a.batch_id = b.id AND a.decision = 'approve')) END,
        'created_at', vpsgate_time(b.created_at), 'updated_at', vpsgate_time(b.updated_at),
        'completed_at', vpsgate_time(b.completed_at))
        || CASE WHEN p_children THEN jsonb_build_object('children', children) ELSE '{}'::jsonb END;
END
$$;
