-- Sends again: one delivery (p_delivery_id), or every failed one of an endpoint
-- (p_endpoint_id), from now, with a new give-up window and the same webhook-id. Audited.
CREATE OR REPLACE FUNCTION redeliver_webhooks(p_delivery_id bigint, p_endpoint_id bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    moved integer;
    actor text := nullif(current_setting('vpsgate.actor', true), '');
BEGIN
    UPDATE webhook_deliveries d SET state = 'pending', next_attempt_at = clock_timestamp(), window_start = clock_timestamp(),
        lease_owner = NULL, lease_until = NULL, delivered_at = NULL
    WHERE (d.id = p_delivery_id OR (p_delivery_id IS NULL AND d.endpoint_id = p_endpoint_id AND d.state = 'failed'))
      AND d.state <> 'pending';
    GET DIAGNOSTICS moved = ROW_COUNT;
    INSERT INTO audit_events (kind, principal, auth_type, command, request_params, outcome)
    VALUES ('admin', coalesce(actor, session_user::text), 'database:' || session_user, 'admin.webhook.redeliver',
            jsonb_build_object('delivery_id', p_delivery_id, 'endpoint_id', p_endpoint_id, 'deliveries', moved,
                               'database_role', session_user::text, 'claimed_actor', actor), 'applied');
    RETURN moved;
END
$$;

REVOKE EXECUTE ON FUNCTION redeliver_webhooks(bigint,bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION redeliver_webhooks(bigint,bigint) TO vpsgate_admin;
