-- Batches whose approval time ran out: expired, their pending children cancelled.
CREATE OR REPLACE FUNCTION expire_batches() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH gone AS (
        UPDATE batches SET state = 'expired', completed_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE state = 'awaiting_approval' AND approval_expires_at <= clock_timestamp() RETURNING id
    )
    UPDATE batch_children c SET state = 'cancelled' FROM gone WHERE c.batch_id = gone.id AND c.state = 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

GRANT EXECUTE ON FUNCTION expire_batches() TO vpsgate_app;
