-- A slot for one call. p_interval: the spacing (the period over the limit; 0: no limit,
-- only pauses). p_priority: 'command' (and the reconciler's reads that settle commands)
-- may take the next slot however far ahead, up to p_max_wait. 'read' takes a slot free now
-- when the budget has been idle for two more slots; when it is busy, a read may take the
-- next slot (one slot's wait at most) if no read had one in the last ten: commands waiting
-- lose one slot in ten at most to reads, and readers still see Hostinger now and then.
-- Returns whether it is granted and the milliseconds to wait: before sending when
-- granted, before asking again when not.
CREATE OR REPLACE FUNCTION take_budget(p_name text, p_interval interval, p_priority text, p_max_wait interval)
RETURNS TABLE (granted boolean, wait_ms integer) LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz;
    budget upstream_budgets%ROWTYPE;
    slot timestamptz;
BEGIN
    -- A budget never used is idle.
    INSERT INTO upstream_budgets (name, next_at) VALUES (p_name, clock_timestamp() - interval '1 hour') ON CONFLICT (name) DO NOTHING;
    SELECT * INTO budget FROM upstream_budgets b WHERE b.name = p_name FOR UPDATE;
    -- The time is read once the row is ours: a call that waited for another's lock would
    -- otherwise compare that call's next_at with a time from before the wait.
    now_ts := clock_timestamp();
    slot := greatest(now_ts, budget.next_at, coalesce(budget.paused_until, now_ts));
    IF p_priority = 'read' THEN
        IF NOT ((slot = now_ts AND budget.next_at <= now_ts - 2 * p_interval)
                OR (slot - now_ts <= p_interval AND coalesce(budget.paused_until, now_ts) <= now_ts
                    AND coalesce(budget.last_read_at, '-infinity') < now_ts - 10 * p_interval)) THEN
            UPDATE upstream_budgets b SET refused = b.refused + 1 WHERE b.name = p_name;
            RETURN QUERY SELECT false, greatest(ceil(extract(epoch FROM slot - now_ts) * 1000), 1)::integer;
            RETURN;
        END IF;
    ELSIF slot - now_ts > p_max_wait THEN
        UPDATE upstream_budgets b SET refused = b.refused + 1 WHERE b.name = p_name;
        RETURN QUERY SELECT false, greatest(ceil(extract(epoch FROM slot - now_ts) * 1000), 1)::integer;
        RETURN;
    END IF;
    UPDATE upstream_budgets b SET next_at = slot + p_interval, granted = b.granted + 1,
        last_read_at = CASE WHEN p_priority = 'read' THEN slot ELSE b.last_read_at END
    WHERE b.name = p_name;
    RETURN QUERY SELECT true, ceil(extract(epoch FROM slot - now_ts) * 1000)::integer;
END
$$;

GRANT EXECUTE ON FUNCTION take_budget(text,interval,text,interval) TO vpsgate_app;
