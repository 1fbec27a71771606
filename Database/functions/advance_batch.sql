-- Moves the running batches on (leased by p_owner): starts children as approved operations,
-- halts a batch past its failures, ends it. Also:
-- * a child stopped with its batch (cancelled: withdrawn) is cancelled, not failed;
-- * the halt stops the children waiting for dispatch;
-- * children's keys live where no client key can: `batch <id> vps <vps>[ attempt <n>]`
--   (client keys have no space), one per batch id, whatever the batch's own key;
-- * a child's operation keeps the batch's `traceparent`: its dispatch links to the batch's request;
-- * a child's approval lives 24 hours: it waits that long through an outage;
-- * a child whose operation failed without reaching Hostinger (its error's reason one of
--   p_retry_reasons) starts again with a new key, up to p_max_attempts attempts in all. Both
--   are declared once, in Swift (DispatchCheck.maximumBatchAttempts, .batchRetryReasons), which
--   also refuses at dispatch a child past that bound, and passed with every call.
CREATE OR REPLACE FUNCTION advance_batch(p_owner text, p_lease interval, p_max_attempts integer, p_retry_reasons text[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    b batches%ROWTYPE;
    child record;
    failures integer;
    running integer;
    pending integer;
    op_id uuid;
    key text;
    now_ts timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO b FROM batches x
    WHERE (x.state = 'running' OR (x.state IN ('halted', 'cancelled') AND x.completed_at IS NULL))
      AND x.next_start_at <= now_ts AND (x.lease_until IS NULL OR x.lease_until < now_ts OR x.lease_owner = p_owner)
    ORDER BY x.next_start_at, x.id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE batches SET lease_owner = p_owner, lease_until = now_ts + p_lease WHERE id = b.id;

    -- 1. Children whose operation ended.
    UPDATE batch_children c SET state = CASE WHEN o.state = 'succeeded' THEN 'succeeded'
                                             WHEN o.state = 'cancelled' AND o.error ->> 'reason' = 'withdrawn' THEN 'cancelled'
                                             ELSE 'failed' END
    FROM operations o
    WHERE c.batch_id = b.id AND c.state = 'started' AND o.id = c.operation_id AND o.state IN ('succeeded', 'failed', 'cancelled')
      AND NOT (o.state = 'failed' AND o.error ->> 'reason' = ANY (p_retry_reasons) AND c.attempts < p_max_attempts - 1);
    UPDATE batch_children c SET state = 'pending', operation_id = NULL, attempts = c.attempts + 1
    FROM operations o
    WHERE c.batch_id = b.id AND c.state = 'started' AND o.id = c.operation_id AND o.state = 'failed'
      AND o.error ->> 'reason' = ANY (p_retry_reasons) AND c.attempts < p_max_attempts - 1;

    SELECT count(*) FILTER (WHERE c.state = 'failed'), count(*) FILTER (WHERE c.state = 'started'),
           count(*) FILTER (WHERE c.state = 'pending')
    INTO failures, running, pending FROM batch_children c WHERE c.batch_id = b.id;

    IF b.state <> 'running' THEN
        PERFORM cancel_waiting_children(b.id, 'withdrawn', 'vpsgate');
        UPDATE batches SET completed_at = CASE WHEN running = 0 THEN now_ts END, updated_at = now_ts,
            next_start_at = now_ts + interval '500 milliseconds', lease_owner = NULL, lease_until = NULL
        WHERE id = b.id;
        RETURN b.id;
    END IF;

    -- 2. The halt.
    IF failures - b.failure_base > b.max_failures THEN
        PERFORM cancel_waiting_children(b.id, 'withdrawn', 'vpsgate');
        UPDATE batch_children SET state = 'skipped' WHERE batch_id = b.id AND state = 'pending';
        UPDATE batches SET state = 'halted', halt_reason = format('%s failures, more than max_failures (%s)', failures - b.failure_base,
                                                                  b.max_failures),
            completed_at = CASE WHEN running = 0 THEN now_ts END, updated_at = now_ts, lease_owner = NULL, lease_until = NULL,
            next_start_at = now_ts + interval '500 milliseconds'
        WHERE id = b.id;
        RETURN b.id;
    END IF;

    -- 4. The end.
    IF pending = 0 AND running = 0 THEN
        UPDATE batches SET state = CASE WHEN failures = 0 THEN 'succeeded' ELSE 'completed_with_failures' END,
            completed_at = now_ts, updated_at = now_ts, lease_owner = NULL, lease_until = NULL
        WHERE id = b.id;
        RETURN b.id;
    END IF;

    -- 3. The next children.
    FOR child IN
        SELECT * FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'pending' ORDER BY c.position
        LIMIT greatest(b.max_in_flight - running, 0)
    LOOP
        IF vpsgate_grant_decision(b.principal, child.vps_id, b.permission) IS NOT NULL THEN
            UPDATE batch_children SET state = 'failed' WHERE batch_id = b.id AND position = child.position;
            PERFORM audit_request_row('final', 'denied', 403, 'urn:vpsgate:problem:forbidden', NULL, b.principal, b.idempotency_key,
                                      b.command, child.vps_id, b.correlation_id, NULL, NULL,
                                      jsonb_build_object('auth_type', 'batch', 'request_params', jsonb_build_object('batch_id', b.id)));
            CONTINUE;
        END IF;
        op_id := gen_random_uuid();
        key := 'batch ' || b.id || ' vps ' || child.vps_id || CASE WHEN child.attempts > 0 THEN ' attempt ' || child.attempts ELSE '' END;
        INSERT INTO operations (id, vps_id, resource_type, command, state, requested_by, correlation_id, idempotency_key,
                                created_at, updated_at, approved_at, approval_expires_at, traceparent)
        VALUES (op_id, child.vps_id, 'vps', b.command, 'approved', b.principal, b.correlation_id, key, clock_timestamp(),
                clock_timestamp(), clock_timestamp(), clock_timestamp() + interval '24 hours', b.traceparent);
        INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint)
        VALUES (op_id, child.name, child.method, child.path, child.repeat_safe, child.sealed_body, child.key_id, 'batch:' || b.id);
        UPDATE batch_children SET state = 'started', operation_id = op_id WHERE batch_id = b.id AND position = child.position;
        PERFORM audit_request_row('received', 'received', NULL, NULL, op_id, b.principal, key, b.command, child.vps_id,
                                  b.correlation_id, NULL, NULL,
                                  jsonb_build_object('auth_type', 'batch', 'request_params',
                                                     b.request -> 'body' || jsonb_build_object('batch_id', b.id)));
        EXIT WHEN b.pause_seconds > 0;
    END LOOP;
    UPDATE batches SET next_start_at = CASE WHEN b.pause_seconds > 0 THEN clock_timestamp() + make_interval(secs => b.pause_seconds)
                                            ELSE clock_timestamp() + interval '200 milliseconds' END,
        updated_at = clock_timestamp(), lease_owner = NULL, lease_until = NULL
    WHERE id = b.id;
    RETURN b.id;
END
$$;

GRANT EXECUTE ON FUNCTION advance_batch(text, interval, integer, text[]) TO vpsgate_app;
