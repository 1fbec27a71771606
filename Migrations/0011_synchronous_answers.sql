-- Commands Hostinger answers synchronously with a resource rather than an action (SPEC
-- section 14): their operation is terminal at once and keeps the resource in `result`.
-- First of them: VM setup, under the new permission vps:setup.

INSERT INTO permissions (name, description) VALUES
    ('vps:setup', 'set up a purchased VM still in state initial (its OS, password and hostname)');
INSERT INTO role_permissions (role, permission) VALUES ('admin', 'vps:setup');

ALTER TABLE operations ADD COLUMN result jsonb;

-- The operation as GET /v1/operations/{id} shows it, `result` included when there is one.
CREATE OR REPLACE FUNCTION operation_json(o operations) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    shown jsonb;
BEGIN
    shown := jsonb_build_object(
        'id', o.id, 'vps_id', o.vps_id, 'command', o.command, 'state', o.state,
        'hostinger_action', CASE WHEN o.hostinger_action_id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', o.hostinger_action_id, 'name', o.hostinger_action_name, 'state', o.hostinger_action_state) END,
        'error', o.error, 'requested_by', o.requested_by, 'correlation_id', o.correlation_id,
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

-- finish_command with the resource of a synchronous answer: kept first (an update of no
-- state, so no event), then the finish as before, whose state change writes the event with
-- the result in it. Only while the dispatcher may still write the operation.
CREATE FUNCTION finish_command(
    p_principal text, p_key text, p_operation_id uuid, p_state text, p_action_id bigint, p_action_name text,
    p_action_state text, p_error jsonb, p_now_us bigint, p_store boolean, p_status integer, p_location text,
    p_body bytea, p_audit jsonb, p_result jsonb
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_result IS NOT NULL THEN
        UPDATE operations SET result = p_result WHERE id = p_operation_id AND state = 'accepted' AND result IS NULL;
    END IF;
    PERFORM finish_command(p_principal, p_key, p_operation_id, p_state, p_action_id, p_action_name, p_action_state, p_error,
                           p_now_us, p_store, p_status, p_location, p_body, p_audit);
END
$$;
GRANT EXECUTE ON FUNCTION finish_command(text, text, uuid, text, bigint, text, text, jsonb, bigint, boolean, integer, text, bytea, jsonb,
                                         jsonb) TO vpsgate_app;
