-- A claimed operation dispatch refused without sending it: cancelled with p_reason
-- (grant_revoked, batch_stopped, unsealed, integrity), an audit row (kind dispatch,
-- outcome refused) and, when a row was forged or altered (p_drift), a drift row.
CREATE OR REPLACE FUNCTION refuse_dispatch(p_operation_id uuid, p_reason text, p_message text, p_drift boolean, p_audit jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    op operations%ROWTYPE;
BEGIN
    UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
        error = jsonb_build_object('reason', p_reason, 'message', p_message)
    WHERE o.id = p_operation_id AND o.state = 'accepted'
    RETURNING * INTO op;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_drift THEN
        INSERT INTO drift_events (instance, vps_id, operation_id, kind, vpsgate_view)
        VALUES (vpsgate_session_instance(), op.vps_id, op.id, 'request_refused',
                jsonb_build_object('reason', p_reason, 'message', p_message, 'command', op.command,
                                   'resource', op.resource_type || coalesce(':' || coalesce(op.vps_id, op.resource_id), '')));
    END IF;
    PERFORM audit_request_row('dispatch', 'refused', NULL, NULL, op.id, op.requested_by, op.idempotency_key, op.command, op.vps_id,
                              op.correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', jsonb_build_object('reason', p_reason, 'message', p_message)));
    RETURN true;
END
$$;

GRANT EXECUTE ON FUNCTION refuse_dispatch(uuid,text,text,boolean,jsonb) TO vpsgate_app;
