-- Records one attempt's end. p_outcome: 'delivered' (2xx), 'retry' (anything else; retried
-- after p_retry_in unless that passes the give-up time, then 'failed'), 'gone' (410: the
-- endpoint is disabled, its pending deliveries failed), 'dropped' (the principal may no
-- longer read the event). A late answer from an instance whose lease was taken over
-- changes nothing but a success. Returns the delivery's state after it.
CREATE OR REPLACE FUNCTION complete_delivery(p_id bigint, p_owner text, p_outcome text, p_status integer, p_error text,
                                  p_retry_in interval, p_give_up interval)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d webhook_deliveries%ROWTYPE;
    next_state text;
BEGIN
    SELECT * INTO d FROM webhook_deliveries w WHERE w.id = p_id FOR UPDATE;
    IF NOT FOUND OR d.state <> 'pending' OR (d.lease_owner IS DISTINCT FROM p_owner AND p_outcome <> 'delivered') THEN
        RETURN coalesce(d.state, 'missing');
    END IF;
    next_state := CASE
        WHEN p_outcome = 'delivered' THEN 'delivered'
        WHEN p_outcome = 'dropped' THEN 'dropped'
        WHEN p_outcome = 'gone' THEN 'failed'
        WHEN clock_timestamp() + p_retry_in > d.window_start + p_give_up THEN 'failed'
        ELSE 'pending' END;
    UPDATE webhook_deliveries w SET state = next_state, lease_owner = NULL, lease_until = NULL, last_status = p_status,
        last_error = left(p_error, 500),
        next_attempt_at = CASE WHEN next_state = 'pending' THEN clock_timestamp() + p_retry_in ELSE w.next_attempt_at END,
        delivered_at = CASE WHEN next_state = 'delivered' THEN clock_timestamp() END
    WHERE w.id = p_id;
    IF p_outcome = 'gone' THEN
        UPDATE webhook_endpoints e SET state = 'disabled', disabled_at = now(),
            disabled_reason = 'the receiver answered 410 Gone'
        WHERE e.id = d.endpoint_id AND e.state = 'active';
        UPDATE webhook_deliveries w SET state = 'failed', last_error = 'endpoint disabled', lease_owner = NULL, lease_until = NULL
        WHERE w.endpoint_id = d.endpoint_id AND w.state = 'pending';
    END IF;
    RETURN next_state;
END
$$;

GRANT EXECUTE ON FUNCTION complete_delivery(bigint,text,text,integer,text,interval,interval) TO vpsgate_app;
