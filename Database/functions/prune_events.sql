-- Deletes events older than p_keep (but those still owed to a webhook) and moves the
-- horizon past them. Returns how many it deleted.
CREATE OR REPLACE FUNCTION prune_events(p_keep interval) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    cut record;
    deleted integer;
BEGIN
    SELECT e.xid, e.id INTO cut FROM events e WHERE e.occurred_at < clock_timestamp() - p_keep
    ORDER BY e.occurred_at DESC, e.xid DESC, e.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE events_horizon h SET xid = cut.xid, id = cut.id WHERE (h.xid, h.id) < (cut.xid, cut.id);
    DELETE FROM events e WHERE (e.xid, e.id) <= (cut.xid, cut.id)
      AND NOT EXISTS (SELECT FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending');
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

GRANT EXECUTE ON FUNCTION prune_events(interval) TO vpsgate_app;
