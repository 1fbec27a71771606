CREATE OR REPLACE FUNCTION decide_batch(p_batch bigint, p_principal text, p_action text, p_reason text, p_correlation_id text, p_audit jsonb,
                             p_mac text)
RETURNS TABLE (result text, state text) LANGUAGE plpgsql AS $$
DECLARE
    b batches%ROWTYPE;
    outcome text;
    counted integer;
BEGIN
    SELECT * INTO b FROM batches WHERE id = p_batch FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text;
        RETURN;
    END IF;
    IF p_action IN ('approve', 'deny') THEN
        IF b.state <> 'awaiting_approval' THEN
            outcome := 'not_allowed';
        ELSIF b.approval_expires_at <= clock_timestamp() THEN
            outcome := 'not_allowed';
        ELSIF p_principal = b.principal THEN
            outcome := 'self_approval';
        ELSE
            INSERT INTO batch_approvals (batch_id, round, principal, decision, reason, mac)
            VALUES (b.id, b.round, p_principal, p_action, p_reason, p_mac)
            ON CONFLICT (batch_id, round, principal) DO UPDATE SET decision = EXCLUDED.decision, reason = EXCLUDED.reason,
                mac = EXCLUDED.mac
                WHERE p_action = 'deny';
            SELECT count(*) INTO counted FROM batch_approvals a WHERE a.batch_id = b.id AND a.round = b.round AND a.decision = 'approve';
            IF p_action = 'deny' THEN
                outcome := 'denied';
                UPDATE batches SET state = 'denied', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
                    halt_reason = 'denied by ' || p_principal WHERE id = b.id;
                UPDATE batch_children SET state = 'cancelled' WHERE batch_id = b.id AND batch_children.state = 'pending';
            ELSIF counted >= b.approvals_required THEN
                outcome := 'approved';
                UPDATE batches SET state = 'running', next_start_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = b.id;
            ELSE
                outcome := 'recorded';
            END IF;
        END IF;
    ELSIF p_action = 'cancel' THEN
        IF b.state NOT IN ('awaiting_approval', 'running', 'halted') THEN
            outcome := 'not_allowed';
        ELSE
            outcome := 'cancelled';
            PERFORM cancel_waiting_children(b.id, 'withdrawn', p_principal);
            UPDATE batches SET state = 'cancelled', updated_at = clock_timestamp(), cancelled_by = p_principal,
                completed_at = CASE WHEN NOT EXISTS (SELECT FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'started')
                                    THEN clock_timestamp() END,
                halt_reason = coalesce(p_reason, 'cancelled by ' || p_principal) WHERE id = b.id;
            UPDATE batch_children SET state = 'cancelled' WHERE batch_id = b.id AND batch_children.state IN ('pending', 'skipped');
        END IF;
    ELSIF p_action = 'resume' THEN
        IF b.state NOT IN ('halted', 'cancelled') OR b.approvals_required > (
               SELECT count(*) FROM batch_approvals a WHERE a.batch_id = b.id AND a.round = b.round AND a.decision = 'approve') THEN
            outcome := 'not_allowed';
        ELSIF b.state = 'cancelled' AND b.cancelled_by IS DISTINCT FROM b.principal AND p_principal = b.principal THEN
            -- The requester alone cannot undo an approver's cancel: a new round, a new approval.
            outcome := 'awaiting_approval';
            UPDATE batch_children SET state = 'pending' WHERE batch_id = b.id AND batch_children.state IN ('skipped', 'cancelled');
            UPDATE batches SET state = 'awaiting_approval', round = b.round + 1, approvals_required = greatest(b.approvals_required, 1),
                approval_expires_at = clock_timestamp() + interval '24 hours', completed_at = NULL, halt_reason = NULL,
                cancelled_by = NULL, updated_at = clock_timestamp(),
                failure_base = (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'failed')
            WHERE id = b.id;
        ELSE
            outcome := 'resumed';
            UPDATE batch_children SET state = 'pending' WHERE batch_id = b.id AND batch_children.state IN ('skipped', 'cancelled');
            UPDATE batches SET state = 'running', completed_at = NULL, halt_reason = NULL, next_start_at = clock_timestamp(),
                cancelled_by = NULL, updated_at = clock_timestamp(),
                failure_base = (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'failed')
            WHERE id = b.id;
        END IF;
    ELSE
        RAISE EXCEPTION 'decide_batch: unknown action %', p_action;
    END IF;
    PERFORM audit_request_row('approval', outcome, NULL, NULL, NULL, p_principal, b.idempotency_key, 'batch.' || p_action, NULL,
                              p_correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', jsonb_build_object(
                                  'batch_id', b.id, 'action', p_action, 'reason', p_reason, 'command', b.command)));
    RETURN QUERY SELECT outcome, (SELECT x.state FROM batches x WHERE x.id = b.id);
END
$$;

GRANT EXECUTE ON FUNCTION decide_batch(bigint,text,text,text,text,jsonb,text) TO vpsgate_app;
