-- One home for each decision of the command path.
--
-- * audit_request_row: the one INSERT of a request's audit row, used by begin_command,
--   finish_command and vpsgate's own rows (requests that end before begin_command, reads
--   that see an action end, the reconciler). The database stamps time, ids and instance.
-- * begin_command takes p_answers: what each decision it answers itself means (the audit
--   outcome, HTTP status and problem type), declared once in vpsgate
--   (BeginDecision.Kind.auditAnswers) and passed with every call. The function decides
--   only which decision applies, atomically with the key's row and the VPS's busy slot.
-- * begin_command also checks the grant (p_permission on p_vps_id), first, before anything
--   is taken: one round trip less per command. No grant on the VPS answers not_found (its
--   existence is not revealed), a grant without the permission answers forbidden.
-- * finish_command writes its row through audit_request_row; its decisions are unchanged.

CREATE FUNCTION audit_request_row(
    p_kind text, p_outcome text, p_http_status integer, p_problem_type text, p_operation_id uuid, p_principal text,
    p_key text, p_command text, p_vps_id bigint, p_correlation_id text, p_hostinger_action_id bigint,
    p_duration_ms double precision, p_audit jsonb
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- plpgsql, not sql: its plan is kept for the session (a sql function called from the
    -- command functions would be planned again on every row).
    INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, correlation_id, trace_id, principal,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              idempotency_key, hostinger_status, hostinger_correlation_id, hostinger_action_id, duration_ms)
    SELECT p_kind, p_operation_id, p_outcome, p_http_status, p_problem_type, coalesce(p_correlation_id, a.correlation_id),
           a.trace_id, p_principal, a.auth_type, a.client_address, a.user_agent, a.method, a.path,
           coalesce(p_command, a.command), coalesce(p_vps_id, a.vps_id), a.request_params, p_key, a.hostinger_status,
           a.hostinger_correlation_id, p_hostinger_action_id, p_duration_ms
    FROM jsonb_to_record(p_audit) AS a(correlation_id text, trace_id text, auth_type text, client_address text,
                                       user_agent text, method text, path text, command text, vps_id bigint,
                                       request_params jsonb, hostinger_status integer, hostinger_correlation_id text);
END
$$;
GRANT EXECUTE ON FUNCTION audit_request_row(text, text, integer, text, uuid, text, text, text, bigint, text, bigint,
                                            double precision, jsonb) TO vpsgate_app;

CREATE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprints text[], p_vps_id bigint, p_command text,
    p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_audit jsonb, p_answers jsonb,
    p_permission text
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision, created_us bigint
) LANGUAGE plpgsql AS $$
DECLARE
    existing idempotency_keys%ROWTYPE;
    blocker record;
    answer text;
    meaning jsonb;
    created timestamptz;
    elapsed double precision := (p_audit ->> 'elapsed_ms')::double precision;
    held text[];
BEGIN
    -- The busy check below reads operations committed after this transaction started: only
    -- READ COMMITTED gives each statement a fresh snapshot after the lock is taken.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'begin_command needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;

    -- The grant, before anything is taken (p_permission NULL: checked by the caller).
    IF p_permission IS NOT NULL THEN
        SELECT array_agg(DISTINCT rp.permission) INTO held
        FROM grants g JOIN role_permissions rp ON rp.role = g.role
        WHERE g.principal = p_principal AND (g.vps_id IS NULL OR g.vps_id = p_vps_id)
          AND (g.expires_at IS NULL OR g.expires_at > now());
        answer := CASE WHEN held IS NULL THEN 'not_found' WHEN NOT p_permission = ANY (held) THEN 'forbidden' END;
        IF answer IS NOT NULL THEN
            meaning := p_answers -> answer;
            PERFORM audit_request_row('final', meaning ->> 'outcome', (meaning ->> 'http_status')::integer,
                                      meaning ->> 'problem_type', NULL, p_principal, p_key, p_command, p_vps_id,
                                      p_correlation_id, NULL, elapsed, p_audit);
            RETURN QUERY SELECT answer, NULL::uuid, NULL::integer, NULL::text, NULL::bytea, NULL::uuid,
                                NULL::double precision, NULL::bigint;
            RETURN;
        END IF;
    END IF;

    LOOP
        INSERT INTO idempotency_keys (principal, key, fingerprint, state)
        VALUES (p_principal, p_key, p_fingerprints[1], 'in_flight')
        ON CONFLICT DO NOTHING;
        EXIT WHEN FOUND;
        SELECT * INTO existing FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        -- Deleted in between (released by its request, or purged): take the key afresh.
        CONTINUE WHEN NOT FOUND;

        answer := CASE WHEN NOT existing.fingerprint = ANY (p_fingerprints) THEN 'reused'
                       WHEN existing.state = 'in_flight' THEN 'in_use'
                       ELSE 'replay' END;
        meaning := p_answers -> answer;
        PERFORM audit_request_row('final', meaning ->> 'outcome',
                                  coalesce((meaning ->> 'http_status')::integer, existing.response_status),
                                  meaning ->> 'problem_type', CASE WHEN answer = 'reused' THEN NULL ELSE existing.operation_id END,
                                  p_principal, p_key, p_command, p_vps_id, p_correlation_id, NULL, elapsed, p_audit);
        RETURN QUERY SELECT answer, existing.operation_id,
                            CASE WHEN answer = 'replay' THEN existing.response_status END,
                            CASE WHEN answer = 'replay' THEN existing.response_location END,
                            CASE WHEN answer = 'replay' THEN existing.response_body END,
                            NULL::uuid, NULL::double precision, NULL::bigint;
        RETURN;
    END LOOP;

    -- One operation per VPS at a time, across instances: serialise on the VPS id.
    PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || p_vps_id, 0));
    SELECT o.id, extract(epoch FROM clock_timestamp() - o.created_at) AS age INTO blocker
    FROM operations o
    WHERE o.vps_id = p_vps_id AND o.state IN ('accepted', 'dispatched', 'running', 'unknown')
      AND o.created_at > clock_timestamp() - p_busy_bound
    ORDER BY o.created_at DESC LIMIT 1;
    IF FOUND THEN
        DELETE FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        meaning := p_answers -> 'busy';
        PERFORM audit_request_row('final', meaning ->> 'outcome', (meaning ->> 'http_status')::integer,
                                  meaning ->> 'problem_type', NULL, p_principal, p_key, p_command, p_vps_id,
                                  p_correlation_id, NULL, elapsed, p_audit);
        RETURN QUERY SELECT 'busy'::text, NULL::uuid, NULL::integer, NULL::text, NULL::bytea, blocker.id,
                            blocker.age::double precision, NULL::bigint;
        RETURN;
    END IF;

    created := clock_timestamp();
    INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, created_at, updated_at)
    VALUES (p_operation_id, p_vps_id, p_command, 'accepted', p_principal, p_correlation_id, p_key, created, created);
    UPDATE idempotency_keys k SET operation_id = p_operation_id WHERE k.principal = p_principal AND k.key = p_key;
    PERFORM audit_request_row('received', 'received', NULL, NULL, p_operation_id, p_principal, p_key, p_command, p_vps_id,
                              p_correlation_id, NULL, NULL, p_audit);
    RETURN QUERY SELECT 'proceed'::text, p_operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid,
                        NULL::double precision, (extract(epoch FROM created) * 1000000)::bigint;
END
$$;
GRANT EXECUTE ON FUNCTION begin_command(text, text, text[], bigint, text, uuid, text, interval, jsonb, jsonb, text) TO vpsgate_app;

-- The previous version's begin_command, for instances still running it during a rolling
-- upgrade (expand, then contract): what that version answered for each decision, which it
-- did not pass, is spelled out here once for it; it checked grants itself.
CREATE OR REPLACE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprints text[], p_vps_id bigint, p_command text,
    p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_audit jsonb
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision, created_us bigint
) LANGUAGE sql AS $$
    SELECT * FROM begin_command(p_principal, p_key, p_fingerprints, p_vps_id, p_command, p_operation_id, p_correlation_id,
                                p_busy_bound, p_audit, '{
        "replay": {"outcome": "replayed"},
        "in_use": {"outcome": "conflict", "http_status": 409, "problem_type": "urn:vpsgate:problem:idempotency-key-in-use"},
        "reused": {"outcome": "conflict", "http_status": 422, "problem_type": "urn:vpsgate:problem:idempotency-key-reused"},
        "busy": {"outcome": "busy", "http_status": 409, "problem_type": "urn:vpsgate:problem:vps-busy"}}'::jsonb, NULL)
$$;

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
        next_check_at = clock_timestamp() + interval '1 second'
    WHERE id = p_operation_id
      AND (state = 'accepted' OR (state = 'unknown' AND hostinger_action_id IS NULL AND p_action_id IS NOT NULL));
    IF FOUND AND p_action_id IS NOT NULL THEN
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
