-- Leases webhook deliveries that are due to p_owner, with the read check of any resource.
CREATE OR REPLACE FUNCTION lease_deliveries(p_owner text, p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, attempts integer, endpoint_id bigint, url text, principal text, sealed_secret bytea, key_id text,
               event_id bigint, type text, occurred_at_us bigint, vps_id bigint, operation_id uuid, data jsonb, readable boolean)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
        WHERE d.state = 'pending' AND d.next_attempt_at <= clock_timestamp() AND w.state = 'active'
          AND (d.lease_until IS NULL OR d.lease_until < clock_timestamp())
        ORDER BY d.next_attempt_at, d.id LIMIT p_limit
        FOR UPDATE OF d SKIP LOCKED
    ), leased AS (
        UPDATE webhook_deliveries d SET lease_owner = p_owner, lease_until = clock_timestamp() + p_lease,
            attempts = d.attempts + 1, last_attempt_at = clock_timestamp()
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.attempts, d.endpoint_id, d.event_id
    )
    SELECT l.id, l.attempts, w.id, w.url, w.principal, w.sealed_secret, w.key_id, e.id, e.type,
           (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.vps_id, e.operation_id, e.data,
           -- The principal's grants are checked again when sending: a revoked grant stops deliveries.
           (w.vps_id IS NULL OR w.vps_id = e.vps_id) AND vpsgate_may_read(w.principal, e.resource_type, coalesce(e.vps_id, e.resource_id))
    FROM leased l JOIN webhook_endpoints w ON w.id = l.endpoint_id JOIN events e ON e.id = l.event_id;
END
$$;

GRANT EXECUTE ON FUNCTION lease_deliveries(text,integer,interval) TO vpsgate_app;
