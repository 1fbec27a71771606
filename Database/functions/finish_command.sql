-- A command's second round trip: the operation as Hostinger answered (its state, action,
-- error; p_result: the resource of a synchronous answer), a drift row when another
-- operation claims the same action, and, for the request's first answer only, the key's
-- stored answer (p_store) or its release, and the final audit row.
-- plan_cache_mode = force_generic_plan: each statement it runs (the triggers and functions
-- it calls included) is planned once per session, not on each of its first five runs (the
-- custom plans PostgreSQL tries first, before it keeps the generic plan unless that one
-- looks costlier). These are single-row statements on keys; a vpsgate worker's connection
-- runs few commands at low load, so those first runs were most of them.
CREATE OR REPLACE FUNCTION finish_command(
    p_principal text, p_key text, p_operation_id uuid, p_state text, p_action_id bigint, p_action_name text,
    p_action_state text, p_error jsonb, p_now_us bigint, p_store boolean, p_status integer, p_location text,
    p_body bytea, p_audit jsonb, p_result jsonb
) RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    now_ts timestamptz := 'epoch'::timestamptz + p_now_us * interval '1 microsecond';
    first_answer boolean := true;  -- until the usual UPDATE misses
    moved boolean;
    again boolean := false;
    sharer uuid;
BEGIN
    -- One UPDATE in the usual case, the request's first answer moving the operation (only
    -- while the dispatcher may still write it, or when an unknown outcome learns its
    -- action): its state, the answer's time and a synchronous answer's resource (kept only
    -- while accepted, with none yet), one row version, so the state triggers see one
    -- transition. Otherwise (an answer already recorded, an operation the reconciler moved
    -- first) the answer's time alone, once, then the same UPDATE without that condition.
    LOOP
        UPDATE operations SET
        result = CASE WHEN state = 'accepted' AND result IS NULL THEN p_result ELSE result END,
        answered_at = coalesce(answered_at, clock_timestamp()),
        state = p_state, hostinger_action_id = p_action_id, hostinger_action_name = p_action_name,
        hostinger_action_state = p_action_state, error = p_error, updated_at = now_ts, refreshed_at = now_ts,
        completed_at = CASE WHEN p_state IN ('succeeded', 'failed') THEN now_ts END,
        next_check_at = clock_timestamp() + interval '250 milliseconds'
        WHERE id = p_operation_id
          AND (state = 'accepted' OR (state = 'unknown' AND hostinger_action_id IS NULL AND p_action_id IS NOT NULL))
          AND (answered_at IS NULL OR again);
        moved := FOUND;
        EXIT WHEN moved OR again;
        UPDATE operations SET answered_at = clock_timestamp() WHERE id = p_operation_id AND answered_at IS NULL;
        first_answer := FOUND;
        again := true;
    END LOOP;

    IF moved AND p_action_id IS NOT NULL THEN
        SELECT o.id INTO sharer FROM operations o
        WHERE o.hostinger_action_id = p_action_id AND o.id <> p_operation_id ORDER BY o.created_at LIMIT 1;
        IF FOUND THEN
            INSERT INTO drift_events (instance, vps_id, operation_id, hostinger_action_id, kind, vpsgate_view, hostinger_view)
            SELECT vpsgate_session_instance(), o.vps_id, p_operation_id, p_action_id, 'action_shared',
                   jsonb_build_object('also_claimed_by', sharer),
                   jsonb_build_object('id', p_action_id, 'name', p_action_name, 'state', p_action_state)
            FROM operations o WHERE o.id = p_operation_id
            ON CONFLICT DO NOTHING;
        END IF;
    END IF;

    IF NOT first_answer THEN
        RETURN;
    END IF;
    IF p_store THEN
        UPDATE idempotency_keys SET state = 'completed', response_status = p_status, response_location = p_location,
                                    response_body = p_body, completed_at = now()
        WHERE principal = p_principal AND key = p_key AND state = 'in_flight';
    ELSE
        DELETE FROM idempotency_keys WHERE principal = p_principal AND key = p_key AND state = 'in_flight';
    END IF;
    PERFORM audit_request_row('final', p_audit ->> 'outcome', (p_audit ->> 'http_status')::integer, p_audit ->> 'problem_type',
                              p_operation_id, p_principal, p_key, NULL, NULL, NULL, p_action_id,
                              (p_audit ->> 'duration_ms')::double precision, p_audit);
END
$$;

GRANT EXECUTE ON FUNCTION finish_command(text,text,uuid,text,bigint,text,text,jsonb,bigint,boolean,integer,text,bytea,jsonb,jsonb) TO vpsgate_app;
