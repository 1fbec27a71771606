-- begin_command writes the final audit row itself when it decides the answer (replay,
-- key in use or reused, VPS busy): one round trip and one commit instead of two.
-- p_audit now also carries started_us, the request's start, for the row's duration.

CREATE OR REPLACE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprint text, p_vps_id bigint, p_command text,
    p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_now_us bigint, p_audit jsonb
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision
) LANGUAGE plpgsql AS $$
DECLARE
    existing idempotency_keys%ROWTYPE;
    blocker record;
BEGIN
    -- Answers decided here (replay, key in use or reused, VPS busy) get their final audit
    -- row in this same transaction: one round trip and one commit for the whole request.
    INSERT INTO idempotency_keys (principal, key, fingerprint, state)
    VALUES (p_principal, p_key, p_fingerprint, 'in_flight')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        IF existing.fingerprint <> p_fingerprint THEN
        INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, instance, correlation_id, trace_id,
                                  principal, auth_type, client_address, user_agent, method, path, command, vps_id,
                                  request_params, idempotency_key, duration_ms)
        SELECT 'final', NULL::uuid, 'conflict', 422, 'urn:vpsgate:problem:idempotency-key-reused', a.instance, p_correlation_id, a.trace_id, p_principal, a.auth_type,
               a.client_address, a.user_agent, a.method, a.path, p_command, p_vps_id, a.request_params, p_key,
               extract(epoch FROM clock_timestamp() - ('epoch'::timestamptz + a.started_us * interval '1 microsecond')) * 1000
        FROM jsonb_to_record(p_audit) AS a(instance text, trace_id text, auth_type text, client_address text,
                                           user_agent text, method text, path text, request_params jsonb, started_us bigint);
            RETURN QUERY SELECT 'reused'::text, existing.operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid, NULL::double precision;
        ELSIF existing.state = 'in_flight' THEN
        INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, instance, correlation_id, trace_id,
                                  principal, auth_type, client_address, user_agent, method, path, command, vps_id,
                                  request_params, idempotency_key, duration_ms)
        SELECT 'final', existing.operation_id, 'conflict', 409, 'urn:vpsgate:problem:idempotency-key-in-use', a.instance, p_correlation_id, a.trace_id, p_principal, a.auth_type,
               a.client_address, a.user_agent, a.method, a.path, p_command, p_vps_id, a.request_params, p_key,
               extract(epoch FROM clock_timestamp() - ('epoch'::timestamptz + a.started_us * interval '1 microsecond')) * 1000
        FROM jsonb_to_record(p_audit) AS a(instance text, trace_id text, auth_type text, client_address text,
                                           user_agent text, method text, path text, request_params jsonb, started_us bigint);
            RETURN QUERY SELECT 'in_use'::text, existing.operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid, NULL::double precision;
        ELSE
        INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, instance, correlation_id, trace_id,
                                  principal, auth_type, client_address, user_agent, method, path, command, vps_id,
                                  request_params, idempotency_key, duration_ms)
        SELECT 'final', existing.operation_id, 'replayed', existing.response_status, NULL, a.instance, p_correlation_id, a.trace_id, p_principal, a.auth_type,
               a.client_address, a.user_agent, a.method, a.path, p_command, p_vps_id, a.request_params, p_key,
               extract(epoch FROM clock_timestamp() - ('epoch'::timestamptz + a.started_us * interval '1 microsecond')) * 1000
        FROM jsonb_to_record(p_audit) AS a(instance text, trace_id text, auth_type text, client_address text,
                                           user_agent text, method text, path text, request_params jsonb, started_us bigint);
            RETURN QUERY SELECT 'replay'::text, existing.operation_id, existing.response_status, existing.response_location,
                                existing.response_body, NULL::uuid, NULL::double precision;
        END IF;
        RETURN;
    END IF;

    -- One operation per VPS at a time, across instances: serialise on the VPS id.
    PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || p_vps_id, 0));
    SELECT o.id, extract(epoch FROM clock_timestamp() - o.created_at) AS age INTO blocker
    FROM operations o
    WHERE o.vps_id = p_vps_id AND o.state IN ('accepted', 'dispatched', 'running', 'unknown')
      AND o.created_at > clock_timestamp() - p_busy_bound
    ORDER BY o.created_at DESC LIMIT 1;
    IF FOUND THEN
        DELETE FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, instance, correlation_id, trace_id,
                                  principal, auth_type, client_address, user_agent, method, path, command, vps_id,
                                  request_params, idempotency_key, duration_ms)
        SELECT 'final', NULL::uuid, 'busy', 409, 'urn:vpsgate:problem:vps-busy', a.instance, p_correlation_id, a.trace_id, p_principal, a.auth_type,
               a.client_address, a.user_agent, a.method, a.path, p_command, p_vps_id, a.request_params, p_key,
               extract(epoch FROM clock_timestamp() - ('epoch'::timestamptz + a.started_us * interval '1 microsecond')) * 1000
        FROM jsonb_to_record(p_audit) AS a(instance text, trace_id text, auth_type text, client_address text,
                                           user_agent text, method text, path text, request_params jsonb, started_us bigint);
        RETURN QUERY SELECT 'busy'::text, NULL::uuid, NULL::integer, NULL::text, NULL::bytea, blocker.id, blocker.age::double precision;
        RETURN;
    END IF;

    -- Operation times come from the instance's clock, so that the body it answers with and
    -- stores for replay is built from the same values as the row.
    INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, created_at, updated_at)
    VALUES (p_operation_id, p_vps_id, p_command, 'accepted', p_principal, p_correlation_id, p_key,
            'epoch'::timestamptz + p_now_us * interval '1 microsecond', 'epoch'::timestamptz + p_now_us * interval '1 microsecond');
    UPDATE idempotency_keys k SET operation_id = p_operation_id WHERE k.principal = p_principal AND k.key = p_key;
    INSERT INTO audit_events (kind, operation_id, outcome, instance, correlation_id, trace_id, principal, auth_type,
                              client_address, user_agent, method, path, command, vps_id, request_params, idempotency_key)
    SELECT 'received', p_operation_id, 'received', a.instance, p_correlation_id, a.trace_id, p_principal, a.auth_type,
           a.client_address, a.user_agent, a.method, a.path, p_command, p_vps_id, a.request_params, p_key
    FROM jsonb_to_record(p_audit) AS a(instance text, trace_id text, auth_type text, client_address text,
                                       user_agent text, method text, path text, request_params jsonb);
    RETURN QUERY SELECT 'proceed'::text, p_operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid, NULL::double precision;
END
$$;
