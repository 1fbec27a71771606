-- No outcome is lost. Each command request's answer is recorded exactly once, by the
-- instance that got it from Hostinger or, when that instance vanished, by the reconciler;
-- a retried write changes nothing. A Hostinger action claimed by two operations is kept
-- by both (Hostinger's word for each) with a drift row, instead of failing the write.

-- When the request's final answer was recorded (its 'final' audit row written).
ALTER TABLE operations ADD COLUMN answered_at timestamptz;
UPDATE operations o SET answered_at = o.updated_at
WHERE EXISTS (SELECT 1 FROM audit_events a
              WHERE a.operation_id = o.id AND a.kind = 'final' AND a.outcome NOT IN ('replayed', 'conflict'));

-- Hostinger may answer a repeated request with the action it already has: two operations
-- can then truthfully name one action. Adoption still takes an action at most once (the
-- reconciler excludes adopted actions under the VPS's lock).
DROP INDEX operations_hostinger_action;
CREATE INDEX operations_hostinger_action ON operations (hostinger_action_id) WHERE hostinger_action_id IS NOT NULL;

ALTER TABLE drift_events DROP CONSTRAINT drift_events_kind_check;
ALTER TABLE drift_events ADD CONSTRAINT drift_events_kind_check
    CHECK (kind IN ('action_unknown', 'state_mismatch', 'unclaimed_action', 'action_shared', 'vps_not_found'));
DROP INDEX drift_events_once;
CREATE UNIQUE INDEX drift_events_once ON drift_events (kind, hostinger_action_id, coalesce(operation_id, '00000000-0000-0000-0000-000000000000'::uuid))
    WHERE hostinger_action_id IS NOT NULL;

-- The end of a dispatched command, in one round trip: the operation's new state, the stored
-- answer for the key (or the key released when Hostinger provably never got the request)
-- and the final audit row. Safe to call again with the same arguments (a write retried
-- after a lost connection): the answer and its audit row are recorded once. It never
-- overwrites what the reconciler already settled, but a late answer still gives an
-- unsettled operation the action Hostinger named.
CREATE OR REPLACE FUNCTION finish_command(
    p_principal text, p_key text, p_operation_id uuid, p_state text, p_action_id bigint, p_action_name text,
    p_action_state text, p_error jsonb, p_now_us bigint, p_store boolean, p_status integer, p_location text,
    p_body bytea, p_audit jsonb
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := 'epoch'::timestamptz + p_now_us * interval '1 microsecond';
    first_answer boolean;
    sharer uuid;
BEGIN
    UPDATE operations SET answered_at = clock_timestamp() WHERE id = p_operation_id AND answered_at IS NULL;
    first_answer := FOUND;

    UPDATE operations SET
        state = p_state, hostinger_action_id = p_action_id, hostinger_action_name = p_action_name,
        hostinger_action_state = p_action_state, error = p_error, updated_at = now_ts, refreshed_at = now_ts,
        completed_at = CASE WHEN p_state IN ('succeeded', 'failed') THEN now_ts END,
        next_check_at = now_ts + interval '1 second'
    WHERE id = p_operation_id
      AND (state = 'accepted' OR (state = 'unknown' AND hostinger_action_id IS NULL AND p_action_id IS NOT NULL));
    IF FOUND AND p_action_id IS NOT NULL THEN
        SELECT o.id INTO sharer FROM operations o
        WHERE o.hostinger_action_id = p_action_id AND o.id <> p_operation_id ORDER BY o.created_at LIMIT 1;
        IF FOUND THEN
            INSERT INTO drift_events (instance, vps_id, operation_id, hostinger_action_id, kind, vpsgate_view, hostinger_view)
            SELECT p_audit ->> 'instance', o.vps_id, p_operation_id, p_action_id, 'action_shared',
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
    INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, instance, correlation_id, trace_id,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              outcome, http_status, problem_type, hostinger_status, hostinger_correlation_id,
                              hostinger_action_id, duration_ms)
    SELECT 'final', p_operation_id, p_principal, p_key, a.instance, a.correlation_id, a.trace_id, a.auth_type,
           a.client_address, a.user_agent, a.method, a.path, a.command, a.vps_id, a.request_params, a.outcome,
           a.http_status, a.problem_type, a.hostinger_status, a.hostinger_correlation_id, p_action_id, a.duration_ms
    FROM jsonb_to_record(p_audit) AS a(instance text, correlation_id text, trace_id text, auth_type text,
                                       client_address text, user_agent text, method text, path text, command text,
                                       vps_id bigint, request_params jsonb, outcome text, http_status integer,
                                       problem_type text, hostinger_status integer, hostinger_correlation_id text,
                                       duration_ms double precision);
END
$$;

-- The reconciler's settling of an operation whose instance never recorded the request's
-- answer (killed, or its database writes failed for good): the request's one final audit
-- row, copied from its 'received' row with the outcome 'unknown' (what the client was told
-- is not known). Returns whether it wrote one; a second call writes nothing.
CREATE FUNCTION answer_abandoned_request(p_operation_id uuid, p_instance text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE operations SET answered_at = clock_timestamp() WHERE id = p_operation_id AND answered_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, instance, correlation_id, trace_id,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              outcome, hostinger_action_id)
    SELECT 'final', r.operation_id, r.principal, r.idempotency_key, p_instance, r.correlation_id, r.trace_id, r.auth_type,
           r.client_address, r.user_agent, r.method, r.path, r.command, r.vps_id, r.request_params, 'unknown',
           o.hostinger_action_id
    FROM audit_events r JOIN operations o ON o.id = r.operation_id
    WHERE r.operation_id = p_operation_id AND r.kind = 'received'
    ORDER BY r.id LIMIT 1;
    RETURN true;
END
$$;

GRANT EXECUTE ON FUNCTION answer_abandoned_request(uuid, text) TO vpsgate_app;
