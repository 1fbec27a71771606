-- The batch's children waiting for dispatch are cancelled with it (a stopped batch sends
-- nothing more).
CREATE OR REPLACE FUNCTION cancel_waiting_children(p_batch bigint, p_reason text, p_by text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = jsonb_build_object('reason', p_reason, 'by', p_by, 'message', 'the batch was stopped')
        FROM batch_children c
        WHERE c.batch_id = p_batch AND c.operation_id = o.id AND o.state = 'approved'
        RETURNING o.id
    ), dropped AS (
        DELETE FROM operation_requests r USING gone WHERE r.operation_id = gone.id
    )
    UPDATE batch_children c SET state = 'cancelled' FROM gone WHERE c.operation_id = gone.id;
END
$$;
