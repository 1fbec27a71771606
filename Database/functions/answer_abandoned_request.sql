-- The reconciler's settling of an operation whose instance never recorded the request's
-- answer (killed, or its database writes failed for good): the request's one final audit
-- row, copied from its 'received' row with the outcome 'unknown' (what the client was told
-- is not known). Returns whether it wrote one; a second call writes nothing.
CREATE OR REPLACE FUNCTION answer_abandoned_request(p_operation_id uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE operations SET answered_at = clock_timestamp() WHERE id = p_operation_id AND answered_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, correlation_id, trace_id,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              outcome, hostinger_action_id)
    SELECT 'final', r.operation_id, r.principal, r.idempotency_key, r.correlation_id, r.trace_id, r.auth_type,
           r.client_address, r.user_agent, r.method, r.path, r.command, r.vps_id, r.request_params, 'unknown',
           o.hostinger_action_id
    FROM audit_events r JOIN operations o ON o.id = r.operation_id
    WHERE r.operation_id = p_operation_id AND r.kind = 'received'
    ORDER BY r.id LIMIT 1;
    RETURN true;
END
$$;

GRANT EXECUTE ON FUNCTION answer_abandoned_request(uuid) TO vpsgate_app;
