-- A command's first round trip: the grant, the idempotency key (replay, in use, reused), the
-- decision (vpsgate_resource_command_decision) and, when it proceeds or awaits approval,
-- the operation and its audit rows, all in one transaction. p_answers says what each of its
-- own answers means (BeginDecision.Kind.auditAnswers). p_request's `reaches_vps` (absent:
-- none; null: not known; an array: these VPS) is what the call reaches besides p_vps_id,
-- for the freeze decision. p_audit's `reason` (the Vpsgate-Reason header, checked by vpsgate)
-- is kept on the operation, and so is its `traceparent` (the request's span, which background
-- work on the operation links to); a policy with require_reason refuses a command without one
-- (reason_required), before the frozen and busy answers and before an operation is taken.
-- plan_cache_mode = force_generic_plan: each statement it runs (the triggers and functions
-- it calls included) is planned once per session, not on each of its first five runs (the
-- custom plans PostgreSQL tries first, before it keeps the generic plan unless that one
-- looks costlier). These are single-row statements on keys; a vpsgate worker's connection
-- runs few commands at low load, so those first runs were most of them.
CREATE OR REPLACE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprints text[], p_resource_type text, p_resource_id bigint, p_vps_id bigint,
    p_command text, p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_audit jsonb, p_answers jsonb,
    p_permission text, p_emergency_reason text, p_request jsonb, p_sealed_body bytea, p_key_id text, p_min_approvals integer
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision, created_us bigint,
    frozen_until_us bigint, approvals_required integer
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    existing idempotency_keys%ROWTYPE;
    verdict record;
    answer text;
    meaning jsonb;
    created timestamptz;
    elapsed double precision := (p_audit ->> 'elapsed_ms')::double precision;
    own_id bigint := CASE WHEN p_resource_type IN ('vps', 'account') THEN NULL ELSE p_resource_id END;
    reaches bigint[] := CASE WHEN NOT coalesce(p_request ? 'reaches_vps', false) THEN '{}'::bigint[]
                             WHEN jsonb_typeof(p_request -> 'reaches_vps') = 'array'
                                 THEN ARRAY(SELECT jsonb_array_elements_text(p_request -> 'reaches_vps')::bigint) END;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'begin_command needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    IF (p_resource_type = 'vps') <> (p_vps_id IS NOT NULL) THEN
        RAISE EXCEPTION 'begin_command: a vps command names its VPS, no other does';
    END IF;

    -- The grant, before anything is taken.
    answer := vpsgate_resource_decision(p_principal, p_resource_type, coalesce(p_vps_id, p_resource_id), p_permission);
    IF answer IS NOT NULL THEN
        meaning := p_answers -> answer;
        PERFORM audit_request_row('final', meaning ->> 'outcome', (meaning ->> 'http_status')::integer,
                                  meaning ->> 'problem_type', NULL, p_principal, p_key, p_command, p_vps_id,
                                  p_correlation_id, NULL, elapsed, p_audit);
        RETURN QUERY SELECT answer, NULL::uuid, NULL::integer, NULL::text, NULL::bytea, NULL::uuid,
                            NULL::double precision, NULL::bigint, NULL::bigint, NULL::integer;
        RETURN;
    END IF;

    LOOP
        -- The operation's id with the key (its row follows in this transaction: the
        -- reference is checked at commit, Migrations/0023); a refusal below deletes the key.
        INSERT INTO idempotency_keys (principal, key, fingerprint, state, operation_id)
        VALUES (p_principal, p_key, p_fingerprints[1], 'in_flight', p_operation_id)
        ON CONFLICT DO NOTHING;
        EXIT WHEN FOUND;
        SELECT * INTO existing FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
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
                            NULL::uuid, NULL::double precision, NULL::bigint, NULL::bigint, NULL::integer;
        RETURN;
    END LOOP;

    -- One operation per VPS at a time, across instances: serialise on the VPS id.
    IF p_vps_id IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || p_vps_id, 0));
    END IF;
    SELECT * INTO verdict FROM vpsgate_resource_command_decision(p_principal, p_resource_type, p_resource_id, p_vps_id, p_command,
                                                                 p_permission, p_busy_bound, p_emergency_reason IS NOT NULL,
                                                                 p_min_approvals, true, reaches);
    -- The policy the decision applied (looked up once, there) may require a reason: that
    -- answer comes before frozen or busy, and before an operation is taken.
    IF p_audit ->> 'reason' IS NULL AND verdict.policy_id IS NOT NULL
       AND coalesce((SELECT a.require_reason FROM approval_policies a WHERE a.id = verdict.policy_id), false) THEN
        DELETE FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        meaning := p_answers -> 'reason_required';
        PERFORM audit_request_row('final', meaning ->> 'outcome', (meaning ->> 'http_status')::integer,
                                  meaning ->> 'problem_type', NULL, p_principal, p_key, p_command, p_vps_id,
                                  p_correlation_id, NULL, elapsed, p_audit);
        RETURN QUERY SELECT 'reason_required'::text, NULL::uuid, NULL::integer, NULL::text, NULL::bytea, NULL::uuid,
                            NULL::double precision, NULL::bigint, NULL::bigint, NULL::integer;
        RETURN;
    END IF;
    IF verdict.decision IN ('not_found', 'forbidden', 'frozen', 'busy') THEN
        DELETE FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        meaning := p_answers -> verdict.decision;
        PERFORM audit_request_row('final', meaning ->> 'outcome', (meaning ->> 'http_status')::integer,
                                  meaning ->> 'problem_type', NULL, p_principal, p_key, p_command, p_vps_id,
                                  p_correlation_id, NULL, elapsed, p_audit);
        RETURN QUERY SELECT verdict.decision, NULL::uuid, NULL::integer, NULL::text, NULL::bytea, verdict.blocking_operation,
                            verdict.blocking_age_seconds, NULL::bigint,
                            (extract(epoch FROM verdict.frozen_until) * 1000000)::bigint, NULL::integer;
        RETURN;
    END IF;

    created := clock_timestamp();
    IF verdict.decision = 'needs_approval' THEN
        INSERT INTO operations (id, vps_id, resource_type, resource_id, command, state, requested_by, correlation_id,
                                idempotency_key, created_at, updated_at, approvals_required, approval_expires_at, emergency_reason,
                                reason, traceparent)
        VALUES (p_operation_id, p_vps_id, p_resource_type, own_id, p_command, 'awaiting_approval', p_principal, p_correlation_id,
                p_key, created, created, verdict.approvals_required, created + verdict.approval_ttl, p_emergency_reason,
                p_audit ->> 'reason', p_audit ->> 'traceparent');
        INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint)
        VALUES (p_operation_id, p_request ->> 'name', p_request ->> 'method', p_request ->> 'path',
                (p_request ->> 'repeat_safe')::boolean, p_sealed_body, p_key_id, p_fingerprints[1]);
    ELSE
        INSERT INTO operations (id, vps_id, resource_type, resource_id, command, state, requested_by, correlation_id,
                                idempotency_key, created_at, updated_at, dispatched_at, reason, traceparent)
        VALUES (p_operation_id, p_vps_id, p_resource_type, own_id, p_command, 'accepted', p_principal, p_correlation_id, p_key,
                created, created, created, p_audit ->> 'reason', p_audit ->> 'traceparent');
    END IF;
    PERFORM audit_request_row('received', 'received', NULL, NULL, p_operation_id, p_principal, p_key, p_command, p_vps_id,
                              p_correlation_id, NULL, NULL, p_audit);
    RETURN QUERY SELECT CASE WHEN verdict.decision = 'needs_approval' THEN 'awaiting_approval' ELSE 'proceed' END,
                        p_operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid, NULL::double precision,
                        (extract(epoch FROM created) * 1000000)::bigint, NULL::bigint, verdict.approvals_required;
END
$$;

GRANT EXECUTE ON FUNCTION begin_command(text,text,text[],text,bigint,bigint,text,uuid,text,interval,jsonb,jsonb,text,text,jsonb,bytea,text,integer) TO vpsgate_app;
