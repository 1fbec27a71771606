CREATE OR REPLACE FUNCTION decide_operation(
    p_operation_id uuid, p_principal text, p_action text, p_reason text, p_correlation_id text, p_audit jsonb, p_answers jsonb,
    p_mac text
) RETURNS TABLE (result text, state text, approvals integer, approvals_required integer)
LANGUAGE plpgsql AS $$
DECLARE
    op operations%ROWTYPE;
    bound text;
    counted integer := 0;
    outcome text;
    meaning jsonb;
BEGIN
    IF p_action NOT IN ('approve', 'deny', 'cancel') THEN
        RAISE EXCEPTION 'decide_operation: unknown action %', p_action;
    END IF;
    SELECT * INTO op FROM operations o WHERE o.id = p_operation_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text, NULL::integer, NULL::integer;
        RETURN;
    END IF;
    SELECT count(*) INTO counted FROM approvals a WHERE a.operation_id = op.id AND a.decision = 'approve';

    IF op.state = 'cancelled' AND op.error ->> 'reason' = 'expired' THEN
        -- The housekeeper expired it first: the same answer as a decision past the deadline.
        outcome := 'expired';
    ELSIF NOT (op.state = 'awaiting_approval' OR (p_action = 'cancel' AND op.state = 'approved')) THEN
        outcome := 'not_awaiting';
    ELSIF op.approval_expires_at <= clock_timestamp() THEN
        outcome := 'expired';
    ELSIF p_action <> 'cancel' AND p_principal = op.requested_by THEN
        outcome := 'self_approval';
    ELSIF p_action = 'cancel' THEN
        outcome := 'withdrawn';
    ELSE
        SELECT vpsgate_request_digest(r.sealed_body) INTO bound FROM operation_requests r WHERE r.operation_id = op.id;
        INSERT INTO approvals (operation_id, principal, decision, reason, fingerprint, mac)
        VALUES (op.id, p_principal, p_action, p_reason, coalesce(bound, '-'), p_mac)
        ON CONFLICT (operation_id, principal) DO UPDATE SET decision = EXCLUDED.decision, reason = EXCLUDED.reason,
            fingerprint = EXCLUDED.fingerprint, mac = EXCLUDED.mac
            WHERE p_action = 'deny';
        SELECT count(*) INTO counted FROM approvals a WHERE a.operation_id = op.id AND a.decision = 'approve';
        outcome := CASE WHEN p_action = 'deny' THEN 'denied'
                        WHEN counted >= op.approvals_required THEN 'approved'
                        ELSE 'recorded' END;
    END IF;

    IF outcome IN ('denied', 'withdrawn', 'expired') AND op.state <> 'cancelled' THEN
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = CASE WHEN outcome = 'expired' THEN jsonb_build_object('reason', 'expired')
                         ELSE jsonb_build_object('reason', outcome, 'by', p_principal, 'message', p_reason) END
        WHERE o.id = op.id;
        DELETE FROM operation_requests r WHERE r.operation_id = op.id;
        op.state := 'cancelled';
    ELSIF outcome = 'approved' THEN
        UPDATE operations o SET state = 'approved', approved_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE o.id = op.id;
        op.state := 'approved';
    END IF;

    meaning := p_answers -> outcome;
    PERFORM audit_request_row('approval', meaning ->> 'outcome', (meaning ->> 'http_status')::integer,
                              meaning ->> 'problem_type', op.id, p_principal, op.idempotency_key, op.command, op.vps_id,
                              p_correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', jsonb_build_object(
                                  'action', p_action, 'reason', p_reason, 'approvals', counted,
                                  'approvals_required', op.approvals_required, 'requested_by', op.requested_by)));
    RETURN QUERY SELECT outcome, op.state, counted, op.approvals_required;
END
$$;

GRANT EXECUTE ON FUNCTION decide_operation(uuid,text,text,text,text,jsonb,jsonb,text) TO vpsgate_app;
