-- A 429's pause capped, and lifted by an operator; freezes that hold a firewall change
-- reaching a frozen VPS. (The event feed's lag needs nothing here: vpsgate reads it from
-- `events` and `pg_current_snapshot()` at scrape time.)
--
-- Decisions, each in one function: pause_budget (now capped: at most p_max, never more than
-- an hour, whoever writes it), vpsgate_resource_command_decision (a freeze on any VPS the
-- command reaches holds it), begin_command (reads what the call reaches from its request).

-- MARK: The pause of a 429, capped

-- A Retry-After of a day paused every instance for a day. Now each pause is capped at
-- p_max (VPSGATE_BUDGET_MAX_PAUSE, 15 minutes by default) and, whatever an instance asks,
-- at an hour. A longer pause still never shortens one already there.
CREATE FUNCTION pause_budget(p_name text, p_until timestamptz, p_max interval) RETURNS void LANGUAGE sql AS $$
    INSERT INTO upstream_budgets AS b (name, next_at, paused_until, paused)
    VALUES (p_name, clock_timestamp() - interval '1 hour',
            least(p_until, clock_timestamp() + least(coalesce(p_max, interval '15 minutes'), interval '1 hour')), 1)
    ON CONFLICT (name) DO UPDATE SET paused_until = greatest(b.paused_until, EXCLUDED.paused_until), paused = b.paused + 1
$$;
GRANT EXECUTE ON FUNCTION pause_budget(text, timestamptz, interval) TO vpsgate_app;

-- 0013's form, for an instance of the previous version during a rolling upgrade: the default cap.
CREATE OR REPLACE FUNCTION pause_budget(p_name text, p_until timestamptz) RETURNS void LANGUAGE sql AS $$
    SELECT pause_budget(p_name, p_until, interval '15 minutes')
$$;

-- A pause written before the cap holds no longer than the default.
UPDATE upstream_budgets SET paused_until = clock_timestamp() + interval '15 minutes'
WHERE paused_until > clock_timestamp() + interval '15 minutes';

-- `vpsgate budget show` and `vpsgate budget resume` (as vpsgate_admin): read the budgets,
-- lift a pause. Shortening or lifting a pause is an admin change only (pause_budget never
-- shortens one), audited by the trigger every admin change has.
GRANT SELECT ON upstream_budgets TO vpsgate_admin;
GRANT UPDATE (paused_until) ON upstream_budgets TO vpsgate_admin;
CREATE TRIGGER upstream_budgets_resumed AFTER UPDATE OF paused_until ON upstream_budgets
    FOR EACH ROW WHEN (OLD.paused_until IS NOT NULL AND (NEW.paused_until IS NULL OR NEW.paused_until < OLD.paused_until))
    EXECUTE FUNCTION audit_admin_change();

-- MARK: A freeze holds what reaches a frozen VPS

-- The freeze covering now any VPS of p_vps_ids (NULL: any VPS at all), the one ending last;
-- a freeze over every VPS covers any list, the empty one included.
CREATE FUNCTION vpsgate_active_freeze_on_any(p_vps_ids bigint[])
RETURNS TABLE (id bigint, ends_at timestamptz, reason text) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT f.id, f.ends_at, f.reason FROM freeze_windows f
    WHERE (f.vps_id IS NULL OR p_vps_ids IS NULL OR f.vps_id = ANY (p_vps_ids))
      AND f.starts_at <= clock_timestamp() AND f.ends_at > clock_timestamp()
    ORDER BY f.ends_at DESC LIMIT 1;
END
$$;

-- 0012's decision, and p_reaches: the VPS the command changes besides p_vps_id (a firewall
-- change reaches every VPS that has the firewall active: a delete deactivates it there, a
-- rule change leaves them out of sync), as the caller read them from Hostinger; NULL when
-- they could not be read, and then a freeze on any VPS holds the command. A freeze on one
-- of them holds the command as a freeze on its own VPS would (an emergency override needs
-- an approval).
CREATE FUNCTION vpsgate_resource_command_decision(
    p_principal text, p_resource_type text, p_resource_id bigint, p_vps_id bigint, p_command text, p_permission text,
    p_busy_bound interval, p_emergency boolean, p_min_approvals integer, p_grant_checked boolean, p_reaches bigint[]
) RETURNS TABLE (
    decision text, blocking_operation uuid, blocking_age_seconds double precision, freeze_id bigint, frozen_until timestamptz,
    freeze_reason text, policy_id bigint, policy_subject text, policy_vps_id bigint, approvals_required integer,
    approval_ttl interval
) LANGUAGE plpgsql STABLE AS $$
DECLARE
    refusal text := CASE WHEN p_grant_checked THEN NULL
                         ELSE vpsgate_resource_decision(p_principal, p_resource_type, coalesce(p_vps_id, p_resource_id), p_permission) END;
    frozen record;
    policy record;
    blocker record;
    required integer;
BEGIN
    IF refusal IS NOT NULL THEN
        RETURN QUERY SELECT refusal, NULL::uuid, NULL::double precision, NULL::bigint, NULL::timestamptz, NULL::text,
                            NULL::bigint, NULL::text, NULL::bigint, NULL::integer, NULL::interval;
        RETURN;
    END IF;

    SELECT * INTO frozen FROM vpsgate_active_freeze_on_any(
        CASE WHEN p_reaches IS NULL THEN NULL ELSE array_remove(p_reaches || p_vps_id, NULL) END);
    SELECT * INTO policy FROM vpsgate_policy(p_command, p_permission, p_vps_id);
    required := greatest(coalesce(policy.approvals, 0), coalesce(p_min_approvals, 0));
    IF frozen.id IS NOT NULL AND NOT p_emergency THEN
        RETURN QUERY SELECT 'frozen'::text, NULL::uuid, NULL::double precision, frozen.id, frozen.ends_at, frozen.reason,
                            policy.id, policy.subject, policy.vps_id, required, policy.ttl;
        RETURN;
    END IF;
    IF p_emergency THEN
        required := greatest(required, 1);
    END IF;
    IF required > 0 THEN
        RETURN QUERY SELECT 'needs_approval'::text, NULL::uuid, NULL::double precision, frozen.id, frozen.ends_at, frozen.reason,
                            policy.id, policy.subject, policy.vps_id, required, coalesce(policy.ttl, interval '24 hours');
        RETURN;
    END IF;
    IF p_vps_id IS NOT NULL THEN
        SELECT * INTO blocker FROM vpsgate_blocking_operation(p_vps_id, p_busy_bound);
        IF blocker.id IS NOT NULL THEN
            RETURN QUERY SELECT 'busy'::text, blocker.id, blocker.age_seconds, NULL::bigint, NULL::timestamptz, NULL::text,
                                policy.id, policy.subject, policy.vps_id, required, policy.ttl;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT 'proceed'::text, NULL::uuid, NULL::double precision, NULL::bigint, NULL::timestamptz, NULL::text,
                        policy.id, policy.subject, policy.vps_id, required, policy.ttl;
END
$$;
GRANT EXECUTE ON FUNCTION vpsgate_resource_command_decision(text, text, bigint, bigint, text, text, interval, boolean, integer, boolean,
                                                            bigint[]) TO vpsgate_app;

-- 0012's form, for its callers: a command that reaches no other VPS.
CREATE OR REPLACE FUNCTION vpsgate_resource_command_decision(
    p_principal text, p_resource_type text, p_resource_id bigint, p_vps_id bigint, p_command text, p_permission text,
    p_busy_bound interval, p_emergency boolean, p_min_approvals integer, p_grant_checked boolean
) RETURNS TABLE (
    decision text, blocking_operation uuid, blocking_age_seconds double precision, freeze_id bigint, frozen_until timestamptz,
    freeze_reason text, policy_id bigint, policy_subject text, policy_vps_id bigint, approvals_required integer,
    approval_ttl interval
) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM vpsgate_resource_command_decision(p_principal, p_resource_type, p_resource_id, p_vps_id, p_command,
                                                                 p_permission, p_busy_bound, p_emergency, p_min_approvals,
                                                                 p_grant_checked, '{}'::bigint[]);
END
$$;

-- 0012's begin_command, and: p_request's `reaches_vps` (absent: none; null: not known; an
-- array: these VPS) is what the call reaches besides p_vps_id, for the freeze decision.
CREATE OR REPLACE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprints text[], p_resource_type text, p_resource_id bigint, p_vps_id bigint,
    p_command text, p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_audit jsonb, p_answers jsonb,
    p_permission text, p_emergency_reason text, p_request jsonb, p_sealed_body bytea, p_key_id text, p_min_approvals integer
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision, created_us bigint,
    frozen_until_us bigint, approvals_required integer
) LANGUAGE plpgsql AS $$
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
        INSERT INTO idempotency_keys (principal, key, fingerprint, state)
        VALUES (p_principal, p_key, p_fingerprints[1], 'in_flight')
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
                                idempotency_key, created_at, updated_at, approvals_required, approval_expires_at, emergency_reason)
        VALUES (p_operation_id, p_vps_id, p_resource_type, own_id, p_command, 'awaiting_approval', p_principal, p_correlation_id,
                p_key, created, created, verdict.approvals_required, created + verdict.approval_ttl, p_emergency_reason);
        INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint)
        VALUES (p_operation_id, p_request ->> 'name', p_request ->> 'method', p_request ->> 'path',
                (p_request ->> 'repeat_safe')::boolean, p_sealed_body, p_key_id, p_fingerprints[1]);
    ELSE
        INSERT INTO operations (id, vps_id, resource_type, resource_id, command, state, requested_by, correlation_id,
                                idempotency_key, created_at, updated_at, dispatched_at)
        VALUES (p_operation_id, p_vps_id, p_resource_type, own_id, p_command, 'accepted', p_principal, p_correlation_id, p_key,
                created, created, created);
    END IF;
    UPDATE idempotency_keys k SET operation_id = p_operation_id WHERE k.principal = p_principal AND k.key = p_key;
    PERFORM audit_request_row('received', 'received', NULL, NULL, p_operation_id, p_principal, p_key, p_command, p_vps_id,
                              p_correlation_id, NULL, NULL, p_audit);
    RETURN QUERY SELECT CASE WHEN verdict.decision = 'needs_approval' THEN 'awaiting_approval' ELSE 'proceed' END,
                        p_operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid, NULL::double precision,
                        (extract(epoch FROM created) * 1000000)::bigint, NULL::bigint, verdict.approvals_required;
END
$$;
