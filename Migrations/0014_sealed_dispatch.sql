-- Nothing leads to a Hostinger call without the secret key.
--
-- A database login alone (the serving role's, say) could insert an approved operation
-- with a request of its choosing, or approve one by writing rows. From here on:
-- * a kept request (operation_requests, batch_children) is an envelope sealed by vpsgate
--   under the secret key (AES-GCM), whose associated data names the operation (or the
--   batch and VPS), the command, the resource, the requester and the emergency flag;
--   it holds the command's input, from which dispatch re-derives the Hostinger call
--   through the command catalogue: no stored method or path is trusted;
-- * every approval carries an HMAC under the secret key of (operation or batch, round,
--   principal, decision, the request's digest);
-- * dispatch_ledger, to which the serving role may only add rows, records each claim of
--   a kept request: a request is sent again only when every earlier claim was released
--   by an instance that knew it had not been sent (a release row with its own HMAC).
-- Dispatch (in vpsgate, which holds the key) verifies all of it, and the grants of the
-- requester and the approvers as they are now, and refuses what fails without sending it
-- (cancelled, an audit row; a drift row when a row was forged).
--
-- Rows made before this change hold no envelope: their operations are refused at
-- dispatch (cancelled, reason unsealed) and their requesters ask again. Instances of the
-- previous version fail closed during a rolling upgrade: their claim_approved query names
-- a column (sealed_body) the function no longer returns, and decide_operation has a new
-- signature, so they neither dispatch nor record approvals.

-- MARK: What is kept, and the ledger

ALTER TABLE approvals ADD COLUMN mac text;

ALTER TABLE batches
    ADD COLUMN seal uuid,
    -- Approvals count for the current round; a round ends when a requester resumes a batch
    -- an approver cancelled.
    ADD COLUMN round integer NOT NULL DEFAULT 0,
    ADD COLUMN cancelled_by text;
ALTER TABLE batch_approvals ADD COLUMN round integer NOT NULL DEFAULT 0, ADD COLUMN mac text;
ALTER TABLE batch_approvals DROP CONSTRAINT batch_approvals_pkey;
ALTER TABLE batch_approvals ADD PRIMARY KEY (batch_id, round, principal);

-- nonce: the kept request's digest (and a batch child's attempt); claim: 1, 2, … One
-- 'claimed' row per claim, written in the claim's transaction; a 'released' row when the
-- claim's instance knew the request was not sent (mac: HMAC under the secret key).
CREATE TABLE dispatch_ledger (
    nonce        text NOT NULL,
    claim        integer NOT NULL CHECK (claim > 0),
    kind         text NOT NULL CHECK (kind IN ('claimed', 'released')),
    operation_id uuid NOT NULL,
    mac          text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (nonce, claim, kind)
);
GRANT SELECT, INSERT ON dispatch_ledger TO vpsgate_app;

ALTER TABLE drift_events DROP CONSTRAINT drift_events_kind_check;
ALTER TABLE drift_events ADD CONSTRAINT drift_events_kind_check
    CHECK (kind IN ('action_unknown', 'state_mismatch', 'unclaimed_action', 'action_shared', 'vps_not_found', 'request_refused'));
-- A refused request may be on no VPS (a purchase).
ALTER TABLE drift_events ALTER COLUMN vps_id DROP NOT NULL;

-- The digest an approval binds: the kept request's envelope.
CREATE FUNCTION vpsgate_request_digest(p_sealed bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(encode(sha256(p_sealed), 'hex'), '-')
$$;

-- MARK: Approvals

-- 0008's decide_operation, and: an approval carries p_mac (vpsgate's HMAC of the operation,
-- principal, decision and request digest); a decision after the approval window is
-- 'expired' (the operation is cancelled now, whatever the housekeeper did).
DROP FUNCTION decide_operation(uuid, text, text, text, text, jsonb, jsonb);
CREATE FUNCTION decide_operation(
    p_operation_id uuid, p_principal text, p_action text, p_reason text, p_correlation_id text, p_audit jsonb, p_answers jsonb,
    p_mac text
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
    ELSIF op.approval_expires_at <= clock_timestamp() THEN
        outcome := 'expired';
    ELSIF p_action <> 'cancel' AND p_principal = op.requested_by THEN
        outcome := 'self_approval';
    ELSIF p_action = 'cancel' THEN
        outcome := 'withdrawn';
    ELSE
        SELECT vpsgate_request_digest(r.sealed_body) INTO bound FROM operation_requests r WHERE r.operation_id = op.id;
        INSERT INTO approvals (operation_id, principal, decision, reason, fingerprint, mac)
        VALUES (op.id, p_principal, p_action, p_reason, coalesce(bound, '-'), p_mac)
        ON CONFLICT (operation_id, principal) DO UPDATE SET decision = EXCLUDED.decision, reason = EXCLUDED.reason,
            fingerprint = EXCLUDED.fingerprint, mac = EXCLUDED.mac
            WHERE p_action = 'deny';
        SELECT count(*) INTO counted FROM approvals a WHERE a.operation_id = op.id AND a.decision = 'approve';
        outcome := CASE WHEN p_action = 'deny' THEN 'denied'
                        WHEN counted >= op.approvals_required THEN 'approved'
                        ELSE 'recorded' END;
    END IF;

    IF outcome IN ('denied', 'withdrawn', 'expired') THEN
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = CASE WHEN outcome = 'expired' THEN jsonb_build_object('reason', 'expired')
                         ELSE jsonb_build_object('reason', outcome, 'by', p_principal, 'message', p_reason) END
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
GRANT EXECUTE ON FUNCTION decide_operation(uuid, text, text, text, text, jsonb, jsonb, text) TO vpsgate_app;

-- The digest of an operation's kept request, which an approval binds ('-': none kept).
CREATE FUNCTION kept_request_digest(p_operation_id uuid) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT vpsgate_request_digest(r.sealed_body) FROM operation_requests r WHERE r.operation_id = p_operation_id), '-')
$$;
GRANT EXECUTE ON FUNCTION kept_request_digest(uuid) TO vpsgate_app;

-- Approved operations wait as long as their approval lives (an outage included); past it,
-- as unapproved ones, they are cancelled with reason expired.
CREATE OR REPLACE FUNCTION expire_approvals() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    expired integer;
BEGIN
    WITH gone AS (
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = jsonb_build_object('reason', 'expired')
        WHERE o.state IN ('awaiting_approval', 'approved') AND o.approval_expires_at <= clock_timestamp()
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

-- MARK: Dispatch

-- Takes up to p_limit approved operations whose turn has come and moves each to accepted
-- (one transaction: no one else can take it). Per VPS, first in line among those that may
-- go now: under a freeze only emergency overrides may, and an emergency does not wait
-- behind an ordinary operation the freeze holds. Nothing in flight on the VPS. Each claim
-- adds a ledger row for its kept request (nonce: the envelope's digest, and a batch
-- child's attempt) and returns the request (deleted here: the secret leaves the
-- database with it), the nonce and the claim's number. vpsgate verifies everything
-- before sending, and releases the claim (release_dispatch) when it knows it sent nothing.
DROP FUNCTION claim_approved(integer, interval);
CREATE FUNCTION claim_approved(p_limit integer, p_busy_bound interval)
RETURNS TABLE (
    id uuid, vps_id bigint, command text, requested_by text, correlation_id text, idempotency_key text, created_us bigint,
    dispatched_us bigint, emergency boolean, name text, method text, path text, repeat_safe boolean, envelope bytea,
    key_id text, fingerprint text, nonce text, claim integer
) LANGUAGE plpgsql AS $$
DECLARE
    candidate record;
    taken integer := 0;
    frozen boolean;
    now_ts timestamptz;
    request record;
    attempt integer;
    v_nonce text;
    v_claim integer;
BEGIN
    FOR candidate IN
        SELECT o.id, o.vps_id, o.emergency_reason IS NOT NULL AS emergency, o.approved_at, o.created_at
        FROM operations o
        WHERE o.state = 'approved' AND (o.approval_expires_at IS NULL OR o.approval_expires_at > clock_timestamp())
        ORDER BY o.approved_at, o.created_at
    LOOP
        EXIT WHEN taken >= p_limit;
        frozen := EXISTS (SELECT FROM vpsgate_active_freeze(candidate.vps_id));
        CONTINUE WHEN frozen AND NOT candidate.emergency;
        IF candidate.vps_id IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || candidate.vps_id, 0));
            CONTINUE WHEN EXISTS (
                SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state IN ('accepted', 'dispatched', 'running', 'unknown')
                  AND coalesce(o.dispatched_at, o.created_at) > clock_timestamp() - p_busy_bound);
            -- An earlier one that may go now goes first (FIFO per VPS).
            CONTINUE WHEN EXISTS (
                SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state = 'approved' AND o.id <> candidate.id
                  AND (o.approved_at, o.created_at) < (candidate.approved_at, candidate.created_at)
                  AND (o.approval_expires_at IS NULL OR o.approval_expires_at > clock_timestamp())
                  AND (NOT frozen OR o.emergency_reason IS NOT NULL));
        END IF;
        now_ts := clock_timestamp();
        UPDATE operations o SET state = 'accepted', dispatched_at = now_ts, updated_at = now_ts,
            next_check_at = now_ts + interval '1 second'
        WHERE o.id = candidate.id AND o.state = 'approved';
        CONTINUE WHEN NOT FOUND;
        request := NULL;
        DELETE FROM operation_requests r WHERE r.operation_id = candidate.id
        RETURNING r.name, r.method, r.path, r.repeat_safe, r.sealed_body, r.key_id, r.fingerprint INTO request;
        SELECT c.attempts INTO attempt FROM batch_children c WHERE c.operation_id = candidate.id;
        v_nonce := NULL;
        v_claim := NULL;
        IF request.sealed_body IS NOT NULL THEN
            v_nonce := vpsgate_request_digest(request.sealed_body) || coalesce(':' || attempt, '');
            SELECT coalesce(max(l.claim), 0) + 1 INTO v_claim FROM dispatch_ledger l WHERE l.nonce = v_nonce AND l.kind = 'claimed';
            INSERT INTO dispatch_ledger (nonce, claim, kind, operation_id) VALUES (v_nonce, v_claim, 'claimed', candidate.id);
        END IF;
        taken := taken + 1;
        RETURN QUERY SELECT o.id, o.vps_id, o.command, o.requested_by, o.correlation_id, o.idempotency_key,
                            (extract(epoch FROM o.created_at) * 1000000)::bigint, (extract(epoch FROM now_ts) * 1000000)::bigint,
                            o.emergency_reason IS NOT NULL, request.name, request.method, request.path, request.repeat_safe,
                            request.sealed_body, request.key_id, request.fingerprint, v_nonce, v_claim
                     FROM operations o WHERE o.id = candidate.id;
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION claim_approved(integer, interval) TO vpsgate_app;

-- What dispatch checks a claimed operation against, as it is now: whether its requester
-- still holds p_permission on its resource, the policy's approvals, the approvals given
-- (the batch's of the current round for a batch child) with whether each approver still
-- holds vps:approve there, the batch's seal, state and the child's attempt, and the
-- ledger's release rows for p_nonce.
CREATE FUNCTION dispatch_context(p_operation_id uuid, p_permission text, p_nonce text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    op operations%ROWTYPE;
    resource_id bigint;
    child batch_children%ROWTYPE;
    b batches%ROWTYPE;
    policy record;
    given jsonb;
BEGIN
    SELECT * INTO op FROM operations o WHERE o.id = p_operation_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    resource_id := coalesce(op.vps_id, op.resource_id);
    SELECT * INTO policy FROM vpsgate_policy(op.command, p_permission, op.vps_id);
    SELECT * INTO child FROM batch_children c WHERE c.operation_id = op.id;
    IF child.batch_id IS NOT NULL THEN
        SELECT * INTO b FROM batches x WHERE x.id = child.batch_id;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'principal', a.principal, 'decision', a.decision, 'mac', a.mac,
                   'holds', vpsgate_resource_decision(a.principal, op.resource_type, resource_id, 'vps:approve') IS NULL)), '[]')
        INTO given FROM batch_approvals a WHERE a.batch_id = b.id AND a.round = b.round;
    ELSE
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'principal', a.principal, 'decision', a.decision, 'mac', a.mac,
                   'holds', vpsgate_resource_decision(a.principal, op.resource_type, resource_id, 'vps:approve') IS NULL)), '[]')
        INTO given FROM approvals a WHERE a.operation_id = op.id;
    END IF;
    RETURN jsonb_build_object(
        'resource_type', op.resource_type, 'resource_id', resource_id,
        'requester_holds', vpsgate_resource_decision(op.requested_by, op.resource_type, resource_id, p_permission) IS NULL,
        'policy_approvals', coalesce(policy.approvals, 0),
        'approvals', given,
        'batch', CASE WHEN child.batch_id IS NULL THEN NULL ELSE jsonb_build_object(
                     'id', b.id, 'seal', b.seal, 'round', b.round, 'state', b.state, 'attempt', child.attempts) END,
        'released', (SELECT coalesce(jsonb_agg(jsonb_build_object('claim', l.claim, 'mac', l.mac)), '[]')
                     FROM dispatch_ledger l WHERE l.nonce = p_nonce AND l.kind = 'released'));
END
$$;
GRANT EXECUTE ON FUNCTION dispatch_context(uuid, text, text) TO vpsgate_app;

-- A claimed operation dispatch refused without sending it: cancelled with p_reason
-- (grant_revoked, batch_stopped, unsealed, integrity), an audit row (kind dispatch,
-- outcome refused) and, when a row was forged or altered (p_drift), a drift row.
CREATE FUNCTION refuse_dispatch(p_operation_id uuid, p_reason text, p_message text, p_drift boolean, p_audit jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    op operations%ROWTYPE;
BEGIN
    UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
        error = jsonb_build_object('reason', p_reason, 'message', p_message)
    WHERE o.id = p_operation_id AND o.state = 'accepted'
    RETURNING * INTO op;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_drift THEN
        INSERT INTO drift_events (instance, vps_id, operation_id, kind, vpsgate_view)
        VALUES (vpsgate_session_instance(), op.vps_id, op.id, 'request_refused',
                jsonb_build_object('reason', p_reason, 'message', p_message, 'command', op.command,
                                   'resource', op.resource_type || coalesce(':' || coalesce(op.vps_id, op.resource_id), '')));
    END IF;
    PERFORM audit_request_row('dispatch', 'refused', NULL, NULL, op.id, op.requested_by, op.idempotency_key, op.command, op.vps_id,
                              op.correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', jsonb_build_object('reason', p_reason, 'message', p_message)));
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION refuse_dispatch(uuid, text, text, boolean, jsonb) TO vpsgate_app;

-- A claimed operation whose request certainly did not leave (the breaker was open, the
-- budget refused, no connection): approved again, its request kept again, and the claim
-- released in the ledger with vpsgate's HMAC (p_mac), so it may be claimed once more.
CREATE FUNCTION release_dispatch(p_operation_id uuid, p_name text, p_method text, p_path text, p_repeat_safe boolean,
                                 p_sealed_body bytea, p_key_id text, p_fingerprint text, p_nonce text, p_claim integer, p_mac text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE operations o SET state = 'approved', dispatched_at = NULL, updated_at = clock_timestamp(), next_check_at = clock_timestamp()
    WHERE o.id = p_operation_id AND o.state = 'accepted';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint)
    VALUES (p_operation_id, p_name, p_method, p_path, p_repeat_safe, p_sealed_body, p_key_id, p_fingerprint);
    INSERT INTO dispatch_ledger (nonce, claim, kind, operation_id, mac) VALUES (p_nonce, p_claim, 'released', p_operation_id, p_mac);
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION release_dispatch(uuid, text, text, text, boolean, bytea, text, text, text, integer, text) TO vpsgate_app;

-- MARK: Batches

-- 0013's create_batch, and p_seal: the random id every child's envelope names.
DROP FUNCTION create_batch(text, text, text[], text, text, jsonb, integer, integer, integer, jsonb, text, jsonb);
CREATE FUNCTION create_batch(
    p_principal text, p_key text, p_fingerprints text[], p_command text, p_permission text, p_request jsonb,
    p_max_in_flight integer, p_max_failures integer, p_pause_seconds integer, p_children jsonb, p_correlation_id text,
    p_audit jsonb, p_seal uuid
) RETURNS TABLE (decision text, batch_id bigint, response_status integer, response_location text, response_body bytea)
LANGUAGE plpgsql AS $$
DECLARE
    existing idempotency_keys%ROWTYPE;
    created batches%ROWTYPE;
    required integer;
    ttl interval;
    body bytea;
BEGIN
    INSERT INTO idempotency_keys (principal, key, fingerprint, state) VALUES (p_principal, p_key, p_fingerprints[1], 'in_flight')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        IF NOT existing.fingerprint = ANY (p_fingerprints) THEN
            PERFORM audit_request_row('final', 'conflict', 422, 'urn:vpsgate:problem:idempotency-key-reused', NULL, p_principal,
                                      p_key, 'batch.create', NULL, p_correlation_id, NULL, NULL, p_audit);
            RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::integer, NULL::text, NULL::bytea;
        ELSE
            PERFORM audit_request_row('final', 'replayed', existing.response_status, NULL, NULL, p_principal, p_key, 'batch.create',
                                      NULL, p_correlation_id, NULL, NULL, p_audit);
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, existing.response_status, existing.response_location,
                                existing.response_body;
        END IF;
        RETURN;
    END IF;

    SELECT coalesce(max(p.approvals), 0), min(p.ttl) INTO required, ttl
    FROM jsonb_array_elements(p_children) AS c, LATERAL vpsgate_policy(p_command, p_permission, (c ->> 'vps_id')::bigint) AS p;
    INSERT INTO batches (principal, command, permission, request, idempotency_key, correlation_id, max_in_flight, max_failures,
                         pause_seconds, state, approvals_required, approval_expires_at, seal)
    VALUES (p_principal, p_command, p_permission, p_request, p_key, p_correlation_id, p_max_in_flight, p_max_failures,
            p_pause_seconds, CASE WHEN required > 0 THEN 'awaiting_approval' ELSE 'running' END, required,
            CASE WHEN required > 0 THEN clock_timestamp() + coalesce(ttl, interval '24 hours') END, p_seal)
    RETURNING * INTO created;
    INSERT INTO batch_children (batch_id, position, vps_id, name, method, path, repeat_safe, sealed_body, key_id)
    SELECT created.id, c.ordinality, (c.value ->> 'vps_id')::bigint, c.value ->> 'name', c.value ->> 'method', c.value ->> 'path',
           (c.value ->> 'repeat_safe')::boolean, decode(c.value ->> 'sealed_body', 'hex'), c.value ->> 'key_id'
    FROM jsonb_array_elements(p_children) WITH ORDINALITY AS c;
    body := convert_to(batch_json(created, true)::text, 'UTF8');
    UPDATE idempotency_keys k SET state = 'completed', response_status = 202, response_location = '/v1/batches/' || created.id,
        response_body = body, completed_at = now()
    WHERE k.principal = p_principal AND k.key = p_key;
    PERFORM audit_request_row('final', CASE WHEN required > 0 THEN 'awaiting_approval' ELSE 'accepted' END, 202, NULL, NULL,
                              p_principal, p_key, 'batch.create', NULL, p_correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', p_request || jsonb_build_object('batch_id', created.id)));
    RETURN QUERY SELECT 'created'::text, created.id, 202, '/v1/batches/' || created.id, body;
END
$$;
GRANT EXECUTE ON FUNCTION create_batch(text, text, text[], text, text, jsonb, integer, integer, integer, jsonb, text, jsonb, uuid)
    TO vpsgate_app;

-- The seal and round a batch approval binds.
CREATE FUNCTION batch_seal(p_batch bigint) RETURNS TABLE (seal uuid, round integer) LANGUAGE sql STABLE AS $$
    SELECT b.seal, b.round FROM batches b WHERE b.id = p_batch
$$;
GRANT EXECUTE ON FUNCTION batch_seal(bigint) TO vpsgate_app;

-- The batch's children waiting for dispatch are cancelled with it (a stopped batch sends
-- nothing more).
CREATE FUNCTION cancel_waiting_children(p_batch bigint, p_reason text, p_by text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        UPDATE operations o SET state = 'cancelled', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
            error = jsonb_build_object('reason', p_reason, 'by', p_by, 'message', 'the batch was stopped')
        FROM batch_children c
        WHERE c.batch_id = p_batch AND c.operation_id = o.id AND o.state = 'approved'
        RETURNING o.id
    ), dropped AS (
        DELETE FROM operation_requests r USING gone WHERE r.operation_id = gone.id
    )
    UPDATE batch_children c SET state = 'cancelled' FROM gone WHERE c.operation_id = gone.id;
END
$$;

-- 0013's decide_batch, and: approvals carry p_mac and count in the current round; cancel
-- stops the children waiting for dispatch and records who cancelled; the requester's
-- resume of a batch an approver cancelled starts a new round that needs a new approval.
DROP FUNCTION decide_batch(bigint, text, text, text, text, jsonb);
CREATE FUNCTION decide_batch(p_batch bigint, p_principal text, p_action text, p_reason text, p_correlation_id text, p_audit jsonb,
                             p_mac text)
RETURNS TABLE (result text, state text) LANGUAGE plpgsql AS $$
DECLARE
    b batches%ROWTYPE;
    outcome text;
    counted integer;
BEGIN
    SELECT * INTO b FROM batches WHERE id = p_batch FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text;
        RETURN;
    END IF;
    IF p_action IN ('approve', 'deny') THEN
        IF b.state <> 'awaiting_approval' THEN
            outcome := 'not_allowed';
        ELSIF b.approval_expires_at <= clock_timestamp() THEN
            outcome := 'not_allowed';
        ELSIF p_principal = b.principal THEN
            outcome := 'self_approval';
        ELSE
            INSERT INTO batch_approvals (batch_id, round, principal, decision, reason, mac)
            VALUES (b.id, b.round, p_principal, p_action, p_reason, p_mac)
            ON CONFLICT (batch_id, round, principal) DO UPDATE SET decision = EXCLUDED.decision, reason = EXCLUDED.reason,
                mac = EXCLUDED.mac
                WHERE p_action = 'deny';
            SELECT count(*) INTO counted FROM batch_approvals a WHERE a.batch_id = b.id AND a.round = b.round AND a.decision = 'approve';
            IF p_action = 'deny' THEN
                outcome := 'denied';
                UPDATE batches SET state = 'denied', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
                    halt_reason = 'denied by ' || p_principal WHERE id = b.id;
                UPDATE batch_children SET state = 'cancelled' WHERE batch_id = b.id AND batch_children.state = 'pending';
            ELSIF counted >= b.approvals_required THEN
                outcome := 'approved';
                UPDATE batches SET state = 'running', next_start_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = b.id;
            ELSE
                outcome := 'recorded';
            END IF;
        END IF;
    ELSIF p_action = 'cancel' THEN
        IF b.state NOT IN ('awaiting_approval', 'running', 'halted') THEN
            outcome := 'not_allowed';
        ELSE
            outcome := 'cancelled';
            PERFORM cancel_waiting_children(b.id, 'withdrawn', p_principal);
            UPDATE batches SET state = 'cancelled', updated_at = clock_timestamp(), cancelled_by = p_principal,
                completed_at = CASE WHEN NOT EXISTS (SELECT FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'started')
                                    THEN clock_timestamp() END,
                halt_reason = coalesce(p_reason, 'cancelled by ' || p_principal) WHERE id = b.id;
            UPDATE batch_children SET state = 'cancelled' WHERE batch_id = b.id AND batch_children.state IN ('pending', 'skipped');
        END IF;
    ELSIF p_action = 'resume' THEN
        IF b.state NOT IN ('halted', 'cancelled') OR b.approvals_required > (
               SELECT count(*) FROM batch_approvals a WHERE a.batch_id = b.id AND a.round = b.round AND a.decision = 'approve') THEN
            outcome := 'not_allowed';
        ELSIF b.state = 'cancelled' AND b.cancelled_by IS DISTINCT FROM b.principal AND p_principal = b.principal THEN
            -- The requester alone cannot undo an approver's cancel: a new round, a new approval.
            outcome := 'awaiting_approval';
            UPDATE batch_children SET state = 'pending' WHERE batch_id = b.id AND batch_children.state IN ('skipped', 'cancelled');
            UPDATE batches SET state = 'awaiting_approval', round = b.round + 1, approvals_required = greatest(b.approvals_required, 1),
                approval_expires_at = clock_timestamp() + interval '24 hours', completed_at = NULL, halt_reason = NULL,
                cancelled_by = NULL, updated_at = clock_timestamp(),
                failure_base = (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'failed')
            WHERE id = b.id;
        ELSE
            outcome := 'resumed';
            UPDATE batch_children SET state = 'pending' WHERE batch_id = b.id AND batch_children.state IN ('skipped', 'cancelled');
            UPDATE batches SET state = 'running', completed_at = NULL, halt_reason = NULL, next_start_at = clock_timestamp(),
                cancelled_by = NULL, updated_at = clock_timestamp(),
                failure_base = (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'failed')
            WHERE id = b.id;
        END IF;
    ELSE
        RAISE EXCEPTION 'decide_batch: unknown action %', p_action;
    END IF;
    PERFORM audit_request_row('approval', outcome, NULL, NULL, NULL, p_principal, b.idempotency_key, 'batch.' || p_action, NULL,
                              p_correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', jsonb_build_object(
                                  'batch_id', b.id, 'action', p_action, 'reason', p_reason, 'command', b.command)));
    RETURN QUERY SELECT outcome, (SELECT x.state FROM batches x WHERE x.id = b.id);
END
$$;
GRANT EXECUTE ON FUNCTION decide_batch(bigint, text, text, text, text, jsonb, text) TO vpsgate_app;

-- 0013's advance_batch, and:
-- * a child stopped with its batch (cancelled: withdrawn) is cancelled, not failed;
-- * the halt stops the children waiting for dispatch;
-- * children's keys live where no client key can: `batch <id> vps <vps>[ attempt <n>]`
--   (client keys have no space), one per batch id, whatever the batch's own key;
-- * a child's approval lives 24 hours: it waits that long through an outage.
CREATE OR REPLACE FUNCTION advance_batch(p_owner text, p_lease interval) RETURNS bigint LANGUAGE plpgsql AS $$
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
      AND NOT (o.state = 'failed' AND o.error ->> 'reason' IN ('not_applied', 'upstream_budget', 'not_sent') AND c.attempts < 3);
    UPDATE batch_children c SET state = 'pending', operation_id = NULL, attempts = c.attempts + 1
    FROM operations o
    WHERE c.batch_id = b.id AND c.state = 'started' AND o.id = c.operation_id AND o.state = 'failed'
      AND o.error ->> 'reason' IN ('not_applied', 'upstream_budget', 'not_sent') AND c.attempts < 3;

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
                                created_at, updated_at, approved_at, approval_expires_at)
        VALUES (op_id, child.vps_id, 'vps', b.command, 'approved', b.principal, b.correlation_id, key, clock_timestamp(),
                clock_timestamp(), clock_timestamp(), clock_timestamp() + interval '24 hours');
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
