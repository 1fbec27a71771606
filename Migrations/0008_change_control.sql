-- Change control (SPEC section 12): approval policies and the two-person rule, freeze
-- windows, the plan, and approved operations dispatched exactly once by the instances'
-- background work.
--
-- Decisions made here, each in one function that both the plan and the command use:
-- vpsgate_command_decision (not_found, forbidden, frozen, needs_approval, busy, proceed),
-- decide_operation (approve, deny, cancel), claim_approved (which approved operation
-- runs next on which VPS), expire_approvals.

-- MARK: Permissions, roles, states

INSERT INTO permissions (name, description) VALUES
    ('vps:approve', 'approve or deny another principal''s command that needs approval, cancel it');
INSERT INTO roles (name, description) VALUES ('approver', 'read and approve');
INSERT INTO role_permissions (role, permission) VALUES
    ('approver', 'vps:read'), ('approver', 'vps:approve'), ('admin', 'vps:approve');

ALTER TABLE operations DROP CONSTRAINT operations_state_check;
ALTER TABLE operations ADD CONSTRAINT operations_state_check CHECK (state IN (
    'awaiting_approval', 'approved', 'accepted', 'dispatched', 'running', 'succeeded', 'failed', 'unknown', 'cancelled'));
ALTER TABLE operations
    ADD COLUMN approvals_required  integer NOT NULL DEFAULT 0,
    ADD COLUMN approval_expires_at timestamptz,
    ADD COLUMN approved_at         timestamptz,
    -- When the request left for Hostinger: the creation time for direct commands, the
    -- dispatch time for approved ones. The busy bound, the grace period and the
    -- lost-answer window count from here.
    ADD COLUMN dispatched_at       timestamptz,
    -- Set for an emergency override of a freeze (always through an approval).
    ADD COLUMN emergency_reason    text;
UPDATE operations SET dispatched_at = created_at WHERE dispatched_at IS NULL;
CREATE INDEX operations_approved ON operations (vps_id, created_at) WHERE state = 'approved';
CREATE INDEX operations_awaiting ON operations (approval_expires_at) WHERE state = 'awaiting_approval';

ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check
    CHECK (kind IN ('received', 'final', 'completion', 'admin', 'reconciler', 'approval', 'dispatch'));

-- MARK: Policies and freezes (changed by the admin CLI, audited by the database)

-- subject: a permission (vps:destroy) or a command name (vps.recreate); vps_id NULL: every
-- VPS. The most specific row applies: a command's own over its permission's, a VPS's own
-- over every VPS's.
CREATE TABLE approval_policies (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text NOT NULL CHECK (subject ~ '^(vps:[a-z]+|vps\.[a-z_.]+)$'),
    vps_id     bigint CHECK (vps_id > 0),
    approvals  integer NOT NULL CHECK (approvals BETWEEN 0 AND 5),
    ttl        interval NOT NULL DEFAULT interval '24 hours' CHECK (ttl > interval '0' AND ttl <= interval '30 days'),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX approval_policies_subject_vps ON approval_policies (subject, coalesce(vps_id, 0));
INSERT INTO approval_policies (subject, vps_id, approvals, ttl, created_by)
VALUES ('vps:destroy', NULL, 1, interval '24 hours', 'vpsgate (shipped default)');

CREATE TABLE freeze_windows (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vps_id     bigint CHECK (vps_id > 0),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason     text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX freeze_windows_time ON freeze_windows (ends_at, starts_at);

CREATE TRIGGER approval_policies_audited AFTER INSERT OR UPDATE OR DELETE ON approval_policies
    FOR EACH ROW EXECUTE FUNCTION audit_admin_change();
CREATE TRIGGER freeze_windows_audited AFTER INSERT OR UPDATE OR DELETE ON freeze_windows
    FOR EACH ROW EXECUTE FUNCTION audit_admin_change();

-- MARK: What an approval binds, and the approvals

-- The Hostinger request of an operation awaiting approval, as it will be sent: its body
-- sealed (AES-GCM under the secret key named by key_id; nonce, ciphertext and tag) so that
-- no secret is stored in clear. The row is deleted when the operation is dispatched,
-- denied, cancelled or expires.
CREATE TABLE operation_requests (
    operation_id uuid PRIMARY KEY REFERENCES operations (id) ON DELETE CASCADE,
    name         text NOT NULL,
    method       text NOT NULL,
    path         text NOT NULL,
    repeat_safe  boolean NOT NULL,
    sealed_body  bytea,
    key_id       text,
    fingerprint  text NOT NULL
);

-- One row per principal and operation: approving twice counts once.
CREATE TABLE approvals (
    operation_id uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    principal    text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason       text,
    -- The request approved, exactly as stored.
    fingerprint  text NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (operation_id, principal)
);

GRANT SELECT ON approval_policies, freeze_windows TO vpsgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON approval_policies, freeze_windows TO vpsgate_admin;
GRANT SELECT, INSERT, DELETE ON operation_requests TO vpsgate_app;
GRANT SELECT, INSERT, UPDATE ON approvals TO vpsgate_app;

-- MARK: The decision a command (or its plan) meets

-- The operation blocking p_vps_id: one sent and not settled (younger than the busy bound),
-- or an approved one waiting for its turn.
-- (These helpers are plpgsql, not sql: a plpgsql function keeps its statements' plans for
-- the session, a sql function called from plpgsql is planned again on every call.)
CREATE FUNCTION vpsgate_blocking_operation(p_vps_id bigint, p_busy_bound interval)
RETURNS TABLE (id uuid, age_seconds double precision) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT o.id, extract(epoch FROM clock_timestamp() - o.created_at)::double precision
    FROM operations o
    WHERE o.vps_id = p_vps_id
      AND ((o.state IN ('accepted', 'dispatched', 'running', 'unknown')
            AND coalesce(o.dispatched_at, o.created_at) > clock_timestamp() - p_busy_bound)
           OR o.state = 'approved')
    ORDER BY o.created_at DESC LIMIT 1;
END
$$;

-- The freeze covering p_vps_id now (the one ending last), if any.
CREATE FUNCTION vpsgate_active_freeze(p_vps_id bigint)
RETURNS TABLE (id bigint, ends_at timestamptz, reason text) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT f.id, f.ends_at, f.reason FROM freeze_windows f
    WHERE (f.vps_id IS NULL OR f.vps_id = p_vps_id) AND f.starts_at <= clock_timestamp() AND f.ends_at > clock_timestamp()
    ORDER BY f.ends_at DESC LIMIT 1;
END
$$;

-- The policy that applies to a command on a VPS (none: no approval needed).
CREATE FUNCTION vpsgate_policy(p_command text, p_permission text, p_vps_id bigint)
RETURNS TABLE (id bigint, subject text, vps_id bigint, approvals integer, ttl interval) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT p.id, p.subject, p.vps_id, p.approvals, p.ttl FROM approval_policies p
    WHERE p.subject IN (p_command, p_permission) AND (p.vps_id IS NULL OR p.vps_id = p_vps_id)
    ORDER BY (p.subject = p_command) DESC, (p.vps_id IS NOT NULL) DESC LIMIT 1;
END
$$;

-- The grant: not_found (no grant on the VPS: its existence is not revealed), forbidden (a
-- grant without the permission), or NULL (allowed; also when p_permission is NULL: the
-- previous versions' callers checked it themselves).
CREATE FUNCTION vpsgate_grant_decision(p_principal text, p_vps_id bigint, p_permission text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    held text[];
BEGIN
    IF p_permission IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(DISTINCT rp.permission) INTO held
    FROM grants g JOIN role_permissions rp ON rp.role = g.role
    WHERE g.principal = p_principal AND (g.vps_id IS NULL OR g.vps_id = p_vps_id)
      AND (g.expires_at IS NULL OR g.expires_at > now());
    RETURN CASE WHEN held IS NULL THEN 'not_found' WHEN NOT p_permission = ANY (held) THEN 'forbidden' END;
END
$$;

-- What a command meets now, in this order: the grant (not_found, forbidden), a freeze
-- (frozen; an emergency override instead needs an approval), the approval policy
-- (needs_approval: approvals > 0), a busy VPS (busy), else proceed. begin_command decides
-- with it, and the plan shows it, so the plan's decision is the command's.
CREATE FUNCTION vpsgate_command_decision(
    p_principal text, p_vps_id bigint, p_command text, p_permission text, p_busy_bound interval, p_emergency boolean,
    p_grant_checked boolean DEFAULT false
) RETURNS TABLE (
    decision text, blocking_operation uuid, blocking_age_seconds double precision, freeze_id bigint, frozen_until timestamptz,
    freeze_reason text, policy_id bigint, policy_subject text, policy_vps_id bigint, approvals_required integer,
    approval_ttl interval
) LANGUAGE plpgsql STABLE AS $$
DECLARE
    refusal text := CASE WHEN p_grant_checked THEN NULL ELSE vpsgate_grant_decision(p_principal, p_vps_id, p_permission) END;
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

    SELECT * INTO frozen FROM vpsgate_active_freeze(p_vps_id);
    SELECT * INTO policy FROM vpsgate_policy(p_command, p_permission, p_vps_id);
    required := coalesce(policy.approvals, 0);
    IF frozen.id IS NOT NULL AND NOT p_emergency THEN
        RETURN QUERY SELECT 'frozen'::text, NULL::uuid, NULL::double precision, frozen.id, frozen.ends_at, frozen.reason,
                            policy.id, policy.subject, policy.vps_id, required, policy.ttl;
        RETURN;
    END IF;
    -- An emergency override is allowed only through an approval, whatever the policy says.
    IF p_emergency THEN
        required := greatest(required, 1);
    END IF;
    IF required > 0 THEN
        RETURN QUERY SELECT 'needs_approval'::text, NULL::uuid, NULL::double precision, frozen.id, frozen.ends_at, frozen.reason,
                            policy.id, policy.subject, policy.vps_id, required, coalesce(policy.ttl, interval '24 hours');
        RETURN;
    END IF;
    SELECT * INTO blocker FROM vpsgate_blocking_operation(p_vps_id, p_busy_bound);
    IF blocker.id IS NOT NULL THEN
        RETURN QUERY SELECT 'busy'::text, blocker.id, blocker.age_seconds, NULL::bigint, NULL::timestamptz, NULL::text,
                            policy.id, policy.subject, policy.vps_id, required, policy.ttl;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'proceed'::text, NULL::uuid, NULL::double precision, NULL::bigint, NULL::timestamptz, NULL::text,
                        policy.id, policy.subject, policy.vps_id, required, policy.ttl;
END
$$;
GRANT EXECUTE ON FUNCTION vpsgate_command_decision(text, bigint, text, text, interval, boolean, boolean) TO vpsgate_app;

-- MARK: The start of a command, with change control

-- As 0007's, and: a frozen VPS answers frozen (the key is freed, like busy); a command
-- that needs approval is recorded awaiting_approval, with its Hostinger request (body
-- sealed) kept for dispatch, and proceeds no further. p_request: {name, method, path,
-- repeat_safe}; p_sealed_body and p_key_id: the sealed body (NULL: no body).
CREATE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprints text[], p_vps_id bigint, p_command text,
    p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_audit jsonb, p_answers jsonb,
    p_permission text, p_emergency_reason text, p_request jsonb, p_sealed_body bytea, p_key_id text
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
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'begin_command needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;

    -- The grant, before anything is taken.
    answer := vpsgate_grant_decision(p_principal, p_vps_id, p_permission);
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

    -- One operation per VPS at a time, across instances: serialise on the VPS id, then decide
    -- the rest (the grant was checked above).
    PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || p_vps_id, 0));
    SELECT * INTO verdict FROM vpsgate_command_decision(p_principal, p_vps_id, p_command, p_permission, p_busy_bound,
                                                        p_emergency_reason IS NOT NULL, true);
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
        INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, created_at, updated_at,
                                approvals_required, approval_expires_at, emergency_reason)
        VALUES (p_operation_id, p_vps_id, p_command, 'awaiting_approval', p_principal, p_correlation_id, p_key, created, created,
                verdict.approvals_required, created + verdict.approval_ttl, p_emergency_reason);
        INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint)
        VALUES (p_operation_id, p_request ->> 'name', p_request ->> 'method', p_request ->> 'path',
                (p_request ->> 'repeat_safe')::boolean, p_sealed_body, p_key_id, p_fingerprints[1]);
    ELSE
        INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, created_at, updated_at,
                                dispatched_at)
        VALUES (p_operation_id, p_vps_id, p_command, 'accepted', p_principal, p_correlation_id, p_key, created, created, created);
    END IF;
    UPDATE idempotency_keys k SET operation_id = p_operation_id WHERE k.principal = p_principal AND k.key = p_key;
    PERFORM audit_request_row('received', 'received', NULL, NULL, p_operation_id, p_principal, p_key, p_command, p_vps_id,
                              p_correlation_id, NULL, NULL, p_audit);
    RETURN QUERY SELECT CASE WHEN verdict.decision = 'needs_approval' THEN 'awaiting_approval' ELSE 'proceed' END,
                        p_operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid, NULL::double precision,
                        (extract(epoch FROM created) * 1000000)::bigint, NULL::bigint, verdict.approvals_required;
END
$$;
GRANT EXECUTE ON FUNCTION begin_command(text, text, text[], bigint, text, uuid, text, interval, jsonb, jsonb, text, text, jsonb,
                                        bytea, text) TO vpsgate_app;

-- 0007's begin_command, for the version still running during a rolling upgrade: without
-- change control's inputs it cannot ask for an approval, so it answers through the one
-- above with none (a command needing approval is then recorded awaiting_approval with no
-- request kept, and can only be cancelled or expire).
CREATE OR REPLACE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprints text[], p_vps_id bigint, p_command text,
    p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_audit jsonb, p_answers jsonb,
    p_permission text
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision, created_us bigint
) LANGUAGE sql AS $$
    SELECT b.decision, b.operation_id, b.response_status, b.response_location, b.response_body, b.blocking_operation,
           b.blocking_age_seconds, b.created_us
    FROM begin_command(p_principal, p_key, p_fingerprints, p_vps_id, p_command, p_operation_id, p_correlation_id, p_busy_bound,
                       p_audit, p_answers, p_permission, NULL, '{}'::jsonb, NULL, NULL) AS b
$$;

-- MARK: Approve, deny, cancel

-- One decision on an operation, under its row lock, with its audit row (kind 'approval').
-- p_action: approve, deny or cancel (the caller checked the permission: vps:approve on the
-- VPS, or for cancel the requester or vps:approve). Results: approved (the count is
-- reached: the operation is approved and waits for its turn), recorded (counted, more
-- needed; approving twice counts once), denied, withdrawn (cancelled), self_approval
-- (the requester approving or denying their own), not_awaiting (no longer awaiting
-- approval: terminal, cancelled, or for approve/deny already approved), not_found.
-- p_answers: what each result means for the audit row ({"approved": {"outcome": …,
-- "http_status": …, "problem_type": …}, …}), declared once in vpsgate.
CREATE FUNCTION decide_operation(
    p_operation_id uuid, p_principal text, p_action text, p_reason text, p_correlation_id text, p_audit jsonb, p_answers jsonb
) RETURNS TABLE (result text, state text, approvals integer, approvals_required integer)
LANGUAGE plpgsql AS $$
DECLARE
    op operations%ROWTYPE;
    bound text;
    counted integer := 0;
    outcome text;
    meaning jsonb;
BEGIN
    IF p_action NOT IN ('approve', 'deny', 'cancel') THEN
        RAISE EXCEPTION 'decide_operation: unknown action %', p_action;
    END IF;
    SELECT * INTO op FROM operations o WHERE o.id = p_operation_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text, NULL::integer, NULL::integer;
        RETURN;
    END IF;
    SELECT count(*) INTO counted FROM approvals a WHERE a.operation_id = op.id AND a.decision = 'approve';

    IF NOT (op.state = 'awaiting_approval' OR (p_action = 'cancel' AND op.state = 'approved')) THEN
        outcome := 'not_awaiting';
    ELSIF p_action <> 'cancel' AND p_principal = op.requested_by THEN
        outcome := 'self_approval';
    ELSIF p_action = 'cancel' THEN
        outcome := 'withdrawn';
    ELSE
        SELECT r.fingerprint INTO bound FROM operation_requests r WHERE r.operation_id = op.id;
        INSERT INTO approvals (operation_id, principal, decision, reason, fingerprint)
        VALUES (op.id, p_principal, p_action, p_reason, coalesce(bound, '-'))
        ON CONFLICT (operation_id, principal) DO UPDATE SET decision = EXCLUDED.decision, reason = EXCLUDED.reason
            WHERE p_action = 'deny';
        SELECT count(*) INTO counted FROM approvals a WHERE a.operation_id = op.id AND a.decision = 'approve';
        outcome := CASE WHEN p_action = 'deny' THEN 'denied'
                        WHEN counted >= op.approvals_required THEN 'approved'
                        ELSE 'recorded' END;
    END IF;

    IF outcome IN ('denied', 'withdrawn') THEN
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = jsonb_build_object('reason', outcome, 'by', p_principal, 'message', p_reason)
        WHERE o.id = op.id;
        DELETE FROM operation_requests r WHERE r.operation_id = op.id;
        op.state := 'cancelled';
    ELSIF outcome = 'approved' THEN
        UPDATE operations o SET state = 'approved', approved_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE o.id = op.id;
        op.state := 'approved';
    END IF;

    meaning := p_answers -> outcome;
    PERFORM audit_request_row('approval', meaning ->> 'outcome', (meaning ->> 'http_status')::integer,
                              meaning ->> 'problem_type', op.id, p_principal, op.idempotency_key, op.command, op.vps_id,
                              p_correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', jsonb_build_object(
                                  'action', p_action, 'reason', p_reason, 'approvals', counted,
                                  'approvals_required', op.approvals_required, 'requested_by', op.requested_by)));
    RETURN QUERY SELECT outcome, op.state, counted, op.approvals_required;
END
$$;
GRANT EXECUTE ON FUNCTION decide_operation(uuid, text, text, text, text, jsonb, jsonb) TO vpsgate_app;

-- MARK: Dispatch of approved operations, exactly once

-- Takes up to p_limit approved operations, each the oldest approved one on its VPS (FIFO
-- per VPS), whose VPS has nothing in flight and no freeze (unless it is an emergency
-- override), and moves each to accepted with dispatched_at: from then on it is an ordinary
-- sent command (the reconciler settles it if its dispatcher dies), and no one else can
-- take it. Returns them with their request; the sealed body is deleted here, so the secret
-- is gone from the database once the request is on its way.
CREATE FUNCTION claim_approved(p_limit integer, p_busy_bound interval)
RETURNS TABLE (
    id uuid, vps_id bigint, command text, requested_by text, correlation_id text, idempotency_key text, created_us bigint,
    dispatched_us bigint, emergency_reason text, name text, method text, path text, repeat_safe boolean, sealed_body bytea,
    key_id text
) LANGUAGE plpgsql AS $$
DECLARE
    candidate record;
    taken integer := 0;
    now_ts timestamptz;
    request record;
BEGIN
    FOR candidate IN
        SELECT DISTINCT ON (o.vps_id) o.id, o.vps_id, o.emergency_reason, o.approved_at
        FROM operations o WHERE o.state = 'approved'
        ORDER BY o.vps_id, o.approved_at, o.created_at
    LOOP
        EXIT WHEN taken >= p_limit;
        PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || candidate.vps_id, 0));
        CONTINUE WHEN EXISTS (
            SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state IN ('accepted', 'dispatched', 'running', 'unknown')
              AND coalesce(o.dispatched_at, o.created_at) > clock_timestamp() - p_busy_bound);
        CONTINUE WHEN candidate.emergency_reason IS NULL AND EXISTS (SELECT FROM vpsgate_active_freeze(candidate.vps_id));
        -- Still the first in line, and still approved (another instance may have taken it).
        CONTINUE WHEN EXISTS (
            SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state = 'approved'
              AND (o.approved_at, o.created_at) < (SELECT a.approved_at, a.created_at FROM operations a WHERE a.id = candidate.id));
        now_ts := clock_timestamp();
        UPDATE operations o SET state = 'accepted', dispatched_at = now_ts, updated_at = now_ts,
            next_check_at = now_ts + interval '1 second'
        WHERE o.id = candidate.id AND o.state = 'approved';
        CONTINUE WHEN NOT FOUND;
        DELETE FROM operation_requests r WHERE r.operation_id = candidate.id
        RETURNING r.name, r.method, r.path, r.repeat_safe, r.sealed_body, r.key_id INTO request;
        taken := taken + 1;
        RETURN QUERY SELECT o.id, o.vps_id, o.command, o.requested_by, o.correlation_id, o.idempotency_key,
                            (extract(epoch FROM o.created_at) * 1000000)::bigint, (extract(epoch FROM now_ts) * 1000000)::bigint,
                            o.emergency_reason, request.name, request.method, request.path, request.repeat_safe,
                            request.sealed_body, request.key_id
                     FROM operations o WHERE o.id = candidate.id;
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION claim_approved(integer, interval) TO vpsgate_app;

-- Operations whose approval time ran out: cancelled with reason expired, their request
-- (and its sealed secrets) deleted, an audit row each. Returns how many.
CREATE FUNCTION expire_approvals() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    expired integer;
BEGIN
    WITH gone AS (
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = jsonb_build_object('reason', 'expired')
        WHERE o.state = 'awaiting_approval' AND o.approval_expires_at <= clock_timestamp()
        RETURNING o.id, o.requested_by, o.idempotency_key, o.command, o.vps_id, o.correlation_id, o.approvals_required
    ), dropped AS (
        DELETE FROM operation_requests r USING gone WHERE r.operation_id = gone.id
    ), audited AS (
        INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, command, vps_id, correlation_id, auth_type,
                                  outcome, request_params)
        SELECT 'approval', g.id, g.requested_by, g.idempotency_key, g.command, g.vps_id, g.correlation_id, 'housekeeper',
               'expired', jsonb_build_object('approvals_required', g.approvals_required)
        FROM gone g
        RETURNING 1
    )
    SELECT count(*) INTO expired FROM audited;
    RETURN expired;
END
$$;
GRANT EXECUTE ON FUNCTION expire_approvals() TO vpsgate_app;

-- MARK: Views

CREATE OR REPLACE VIEW operations_open AS
SELECT id, vps_id, command, state, stale, requested_by, correlation_id, hostinger_action_id, created_at,
       clock_timestamp() - created_at AS age
FROM operations
WHERE state IN ('accepted', 'dispatched', 'running', 'unknown', 'awaiting_approval', 'approved');

-- Who approved, denied or cancelled what, and when.
CREATE VIEW audit_approvals AS
SELECT a.id, a.occurred_at, a.principal AS decided_by, a.request_params ->> 'action' AS action, a.outcome,
       a.request_params ->> 'reason' AS reason, a.operation_id, o.command, o.vps_id, o.requested_by, o.state AS operation_state,
       a.correlation_id
FROM audit_events a LEFT JOIN operations o ON o.id = a.operation_id
WHERE a.kind = 'approval';

-- Operations that ran during a freeze, by emergency override, with who approved them.
CREATE VIEW audit_freeze_overrides AS
SELECT o.id AS operation_id, o.command, o.vps_id, o.requested_by, o.emergency_reason, o.created_at, o.dispatched_at, o.state,
       (SELECT array_agg(p.principal ORDER BY p.decided_at) FROM approvals p
        WHERE p.operation_id = o.id AND p.decision = 'approve') AS approved_by
FROM operations o
WHERE o.emergency_reason IS NOT NULL;

GRANT SELECT ON audit_approvals, audit_freeze_overrides TO vpsgate_auditor;
