-- Fleets (SPEC section 15): one Hostinger budget shared by every instance, and batches of
-- one command over many VPS that run in the instances' background work.
--
-- Decisions, each in one function: take_budget (whether a call to Hostinger may go now,
-- or when), pause_budget (a 429 stops every instance), create_batch (a batch and its
-- key), decide_batch (approve, deny, cancel, resume), advance_batch (the next step of a
-- running batch: its children's ends, the halt, the next children).

-- MARK: The upstream budget

-- One row per Hostinger token (named by a hash of it, never the token). Calls are spaced
-- evenly: `next_at` is when the next call may go (a theoretical arrival time, GCRA with no
-- burst), so no 60 s window ever holds more than the limit. `paused_until`: a 429's
-- Retry-After, which holds every instance.
CREATE TABLE upstream_budgets (
    name         text PRIMARY KEY,
    next_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    paused_until timestamptz,
    -- The last slot a client's read took: reads have one slot in ten while commands wait.
    last_read_at timestamptz,
    granted      bigint NOT NULL DEFAULT 0,
    refused      bigint NOT NULL DEFAULT 0,
    paused       bigint NOT NULL DEFAULT 0
);
GRANT SELECT, INSERT, UPDATE ON upstream_budgets TO vpsgate_app;

-- A slot for one call. p_interval: the spacing (the period over the limit; 0: no limit,
-- only pauses). p_priority: 'command' (and the reconciler's reads that settle commands)
-- may take the next slot however far ahead, up to p_max_wait. 'read' takes a slot free now
-- when the budget has been idle for two more slots; when it is busy, a read may take the
-- next slot (one slot's wait at most) if no read had one in the last ten: commands waiting
-- lose one slot in ten at most to reads, and readers still see Hostinger now and then.
-- Returns whether it is granted and the milliseconds to wait: before sending when
-- granted, before asking again when not.
CREATE FUNCTION take_budget(p_name text, p_interval interval, p_priority text, p_max_wait interval)
RETURNS TABLE (granted boolean, wait_ms integer) LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
    budget upstream_budgets%ROWTYPE;
    slot timestamptz;
BEGIN
    -- A budget never used is idle.
    INSERT INTO upstream_budgets (name, next_at) VALUES (p_name, now_ts - interval '1 hour') ON CONFLICT (name) DO NOTHING;
    SELECT * INTO budget FROM upstream_budgets b WHERE b.name = p_name FOR UPDATE;
    slot := greatest(now_ts, budget.next_at, coalesce(budget.paused_until, now_ts));
    IF p_priority = 'read' THEN
        IF NOT ((slot = now_ts AND budget.next_at <= now_ts - 2 * p_interval)
                OR (slot - now_ts <= p_interval AND coalesce(budget.paused_until, now_ts) <= now_ts
                    AND coalesce(budget.last_read_at, '-infinity') < now_ts - 10 * p_interval)) THEN
            UPDATE upstream_budgets b SET refused = b.refused + 1 WHERE b.name = p_name;
            RETURN QUERY SELECT false, greatest(ceil(extract(epoch FROM slot - now_ts) * 1000), 1)::integer;
            RETURN;
        END IF;
    ELSIF slot - now_ts > p_max_wait THEN
        UPDATE upstream_budgets b SET refused = b.refused + 1 WHERE b.name = p_name;
        RETURN QUERY SELECT false, greatest(ceil(extract(epoch FROM slot - now_ts) * 1000), 1)::integer;
        RETURN;
    END IF;
    UPDATE upstream_budgets b SET next_at = slot + p_interval, granted = b.granted + 1,
        last_read_at = CASE WHEN p_priority = 'read' THEN slot ELSE b.last_read_at END
    WHERE b.name = p_name;
    RETURN QUERY SELECT true, ceil(extract(epoch FROM slot - now_ts) * 1000)::integer;
END
$$;
GRANT EXECUTE ON FUNCTION take_budget(text, interval, text, interval) TO vpsgate_app;

-- Hostinger answered 429: nothing goes before p_until, from any instance.
CREATE FUNCTION pause_budget(p_name text, p_until timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO upstream_budgets AS b (name, next_at, paused_until, paused) VALUES (p_name, clock_timestamp() - interval '1 hour', p_until, 1)
    ON CONFLICT (name) DO UPDATE SET paused_until = greatest(b.paused_until, EXCLUDED.paused_until), paused = b.paused + 1
$$;
GRANT EXECUTE ON FUNCTION pause_budget(text, timestamptz) TO vpsgate_app;

-- MARK: Batches

CREATE TABLE batches (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal          text NOT NULL,
    command            text NOT NULL,
    permission         text NOT NULL,
    -- The request as given, without secrets (what GET shows and the audit keeps).
    request            jsonb NOT NULL,
    idempotency_key    text NOT NULL,
    correlation_id     text NOT NULL,
    max_in_flight      integer NOT NULL CHECK (max_in_flight BETWEEN 1 AND 50),
    max_failures       integer NOT NULL CHECK (max_failures >= 0),
    pause_seconds      integer NOT NULL CHECK (pause_seconds BETWEEN 0 AND 3600),
    state              text NOT NULL CHECK (state IN ('awaiting_approval', 'running', 'halted', 'cancelled', 'succeeded',
                                                      'completed_with_failures', 'denied', 'expired')),
    approvals_required integer NOT NULL DEFAULT 0,
    approval_expires_at timestamptz,
    -- Failures before the last resume: the halt counts those after it.
    failure_base       integer NOT NULL DEFAULT 0,
    next_start_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_owner        text,
    lease_until        timestamptz,
    halt_reason        text,
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at       timestamptz
);
CREATE INDEX batches_running ON batches (next_start_at) WHERE state = 'running';
CREATE INDEX batches_principal ON batches (principal, id DESC);

-- One row per VPS of a batch, with the Hostinger request its operation will send (the
-- body sealed like an approval's). operation_id: the child operation once started.
CREATE TABLE batch_children (
    batch_id     bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    position     integer NOT NULL,
    vps_id       bigint NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'started', 'succeeded', 'failed', 'skipped', 'cancelled')),
    operation_id uuid REFERENCES operations (id),
    -- Earlier operations of this child that never reached Hostinger (not_applied): it was
    -- started again.
    attempts     integer NOT NULL DEFAULT 0,
    name         text NOT NULL,
    method       text NOT NULL,
    path         text NOT NULL,
    repeat_safe  boolean NOT NULL,
    sealed_body  bytea,
    key_id       text,
    PRIMARY KEY (batch_id, position),
    UNIQUE (batch_id, vps_id)
);
CREATE INDEX batch_children_operation ON batch_children (operation_id);

CREATE TABLE batch_approvals (
    batch_id   bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    principal  text NOT NULL,
    decision   text NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason     text,
    decided_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (batch_id, principal)
);

GRANT SELECT, INSERT, UPDATE ON batches, batch_children, batch_approvals TO vpsgate_app;

-- The batch as GET /v1/batches/{id} shows it (children with p_children).
CREATE FUNCTION batch_json(b batches, p_children boolean) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    counts jsonb;
    children jsonb;
BEGIN
    SELECT jsonb_build_object(
        'total', count(*), 'pending', count(*) FILTER (WHERE c.state = 'pending'),
        'started', count(*) FILTER (WHERE c.state = 'started'), 'succeeded', count(*) FILTER (WHERE c.state = 'succeeded'),
        'failed', count(*) FILTER (WHERE c.state = 'failed'), 'skipped', count(*) FILTER (WHERE c.state = 'skipped'),
        'cancelled', count(*) FILTER (WHERE c.state = 'cancelled'))
    INTO counts FROM batch_children c WHERE c.batch_id = b.id;
    IF p_children THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'vps_id', c.vps_id, 'state', c.state, 'operation_id', c.operation_id,
            'operation', CASE WHEN c.operation_id IS NULL THEN NULL ELSE '/v1/operations/' || c.operation_id END,
            'attempts', c.attempts) ORDER BY c.position), '[]'::jsonb)
        INTO children FROM batch_children c WHERE c.batch_id = b.id;
    END IF;
    RETURN jsonb_build_object(
        'id', b.id, 'command', b.command, 'state', b.state, 'requested_by', b.principal, 'request', b.request,
        'max_in_flight', b.max_in_flight, 'max_failures', b.max_failures, 'pause_seconds', b.pause_seconds,
        'counts', counts, 'halt_reason', b.halt_reason, 'idempotency_key', b.idempotency_key, 'correlation_id', b.correlation_id,
        'approval', CASE WHEN b.approvals_required > 0 THEN jsonb_build_object(
            'required', b.approvals_required, 'expires_at', vpsgate_time(b.approval_expires_at),
            'approvals', (SELECT count(*) FROM batch_approvals a WHERE a.batch_id = b.id AND a.decision = 'approve')) END,
        'created_at', vpsgate_time(b.created_at), 'updated_at', vpsgate_time(b.updated_at),
        'completed_at', vpsgate_time(b.completed_at))
        || CASE WHEN p_children THEN jsonb_build_object('children', children) ELSE '{}'::jsonb END;
END
$$;

-- Batch events: visible to the batch's principal (a batch is not one resource).
CREATE OR REPLACE FUNCTION vpsgate_may_read(p_principal text, p_type text, p_id bigint) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_type = 'account' THEN
        RETURN EXISTS (SELECT FROM grants g WHERE g.principal = p_principal AND g.resource_type = 'account'
                         AND (g.expires_at IS NULL OR g.expires_at > now()));
    ELSIF p_type = 'batch' THEN
        RETURN EXISTS (SELECT FROM batches b WHERE b.id = p_id AND b.principal = p_principal);
    ELSIF vpsgate_read_permission(p_type) IS NULL THEN
        RETURN false;
    END IF;
    RETURN vpsgate_resource_decision(p_principal, p_type, p_id, vpsgate_read_permission(p_type)) IS NULL;
END
$$;

CREATE FUNCTION batch_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM vpsgate_emit('batch.' || NEW.state, 'batch', NEW.id, NULL, NULL,
                         jsonb_build_object('batch', batch_json(NEW, false),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('halted', 'cancelled', 'succeeded', 'completed_with_failures', 'denied', 'expired'));
    RETURN NULL;
END
$$;
CREATE TRIGGER batches_created_event AFTER INSERT ON batches FOR EACH ROW EXECUTE FUNCTION batch_event();
CREATE TRIGGER batches_state_event AFTER UPDATE OF state ON batches
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION batch_event();

-- MARK: Creating a batch

-- Creates the batch and its children under the key, or answers from the key: created,
-- replay (the stored answer), reused (the key was used for another request). The caller
-- checked every target's grant; p_children: [{vps_id, name, method, path, repeat_safe,
-- sealed_body (hex), key_id}], in order. The approvals it needs: the most any target's
-- policy asks for the command. Audited like a command (command batch.create).
CREATE FUNCTION create_batch(
    p_principal text, p_key text, p_fingerprints text[], p_command text, p_permission text, p_request jsonb,
    p_max_in_flight integer, p_max_failures integer, p_pause_seconds integer, p_children jsonb, p_correlation_id text,
    p_audit jsonb
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
                         pause_seconds, state, approvals_required, approval_expires_at)
    VALUES (p_principal, p_command, p_permission, p_request, p_key, p_correlation_id, p_max_in_flight, p_max_failures,
            p_pause_seconds, CASE WHEN required > 0 THEN 'awaiting_approval' ELSE 'running' END, required,
            CASE WHEN required > 0 THEN clock_timestamp() + coalesce(ttl, interval '24 hours') END)
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
GRANT EXECUTE ON FUNCTION create_batch(text, text, text[], text, text, jsonb, integer, integer, integer, jsonb, text, jsonb)
    TO vpsgate_app;

-- MARK: Approve, deny, cancel, resume

-- One decision on a batch, under its row lock, audited (kind approval, command batch.<action>).
-- The caller checked the permission: vps:approve on every target for approve and deny;
-- the requester or vps:approve for cancel and resume. Results: approved, recorded (more
-- approvals needed), denied, cancelled, resumed, self_approval, not_allowed (the batch's
-- state does not allow it), not_found.
CREATE FUNCTION decide_batch(p_batch bigint, p_principal text, p_action text, p_reason text, p_correlation_id text, p_audit jsonb)
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
        ELSIF p_principal = b.principal THEN
            outcome := 'self_approval';
        ELSE
            INSERT INTO batch_approvals (batch_id, principal, decision, reason) VALUES (b.id, p_principal, p_action, p_reason)
            ON CONFLICT (batch_id, principal) DO UPDATE SET decision = EXCLUDED.decision, reason = EXCLUDED.reason
                WHERE p_action = 'deny';
            SELECT count(*) INTO counted FROM batch_approvals a WHERE a.batch_id = b.id AND a.decision = 'approve';
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
            UPDATE batches SET state = 'cancelled', updated_at = clock_timestamp(),
                completed_at = CASE WHEN NOT EXISTS (SELECT FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'started')
                                    THEN clock_timestamp() END,
                halt_reason = coalesce(p_reason, 'cancelled by ' || p_principal) WHERE id = b.id;
            UPDATE batch_children SET state = 'cancelled' WHERE batch_id = b.id AND batch_children.state IN ('pending', 'skipped');
        END IF;
    ELSIF p_action = 'resume' THEN
        IF b.state NOT IN ('halted', 'cancelled') OR b.approvals_required > (
               SELECT count(*) FROM batch_approvals a WHERE a.batch_id = b.id AND a.decision = 'approve') THEN
            outcome := 'not_allowed';
        ELSE
            outcome := 'resumed';
            UPDATE batch_children SET state = 'pending' WHERE batch_id = b.id AND batch_children.state IN ('skipped', 'cancelled');
            UPDATE batches SET state = 'running', completed_at = NULL, halt_reason = NULL, next_start_at = clock_timestamp(),
                updated_at = clock_timestamp(),
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
GRANT EXECUTE ON FUNCTION decide_batch(bigint, text, text, text, text, jsonb) TO vpsgate_app;

-- MARK: Running a batch

-- Leases one running batch whose next step is due (FOR UPDATE SKIP LOCKED; an expired
-- lease is anyone's) and advances it, in one transaction:
-- 1. each started child whose operation ended takes its state; one whose operation never
--    reached Hostinger (failed: not_applied, not_sent, upstream_budget) is pending again, to
--    be started once more (three times at most);
-- 2. failures since the last resume beyond max_failures halt it: pending children are
--    skipped, nothing more starts;
-- 3. otherwise up to max_in_flight children run: new ones start as operations already
--    approved (the batch was approved once, or needed no approval), which the instances'
--    dispatch sends exactly once when their VPS is free; pause_seconds between starts;
-- 4. when nothing is pending or running it ends: succeeded, or completed_with_failures.
-- A child whose grant was revoked meanwhile fails (forbidden) without being started.
-- Returns the batch advanced (NULL: none was due).
CREATE FUNCTION advance_batch(p_owner text, p_lease interval) RETURNS bigint LANGUAGE plpgsql AS $$
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
    -- Running batches, and halted or cancelled ones whose started children are still to be seen to their end.
    SELECT * INTO b FROM batches x
    WHERE (x.state = 'running' OR (x.state IN ('halted', 'cancelled') AND x.completed_at IS NULL))
      AND x.next_start_at <= now_ts AND (x.lease_until IS NULL OR x.lease_until < now_ts OR x.lease_owner = p_owner)
    ORDER BY x.next_start_at, x.id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE batches SET lease_owner = p_owner, lease_until = now_ts + p_lease WHERE id = b.id;

    -- 1. Children whose operation ended.
    UPDATE batch_children c SET state = CASE WHEN o.state = 'succeeded' THEN 'succeeded' ELSE 'failed' END
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
        -- Halted or cancelled: nothing starts; it is complete once its started children ended.
        UPDATE batches SET completed_at = CASE WHEN running = 0 THEN now_ts END, updated_at = now_ts,
            next_start_at = now_ts + interval '500 milliseconds', lease_owner = NULL, lease_until = NULL
        WHERE id = b.id;
        RETURN b.id;
    END IF;

    -- 2. The halt.
    IF failures - b.failure_base > b.max_failures THEN
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
        key := left(b.idempotency_key, 200) || '#' || child.vps_id || CASE WHEN child.attempts > 0 THEN '.' || child.attempts ELSE '' END;
        INSERT INTO operations (id, vps_id, resource_type, command, state, requested_by, correlation_id, idempotency_key,
                                created_at, updated_at, approved_at)
        VALUES (op_id, child.vps_id, 'vps', b.command, 'approved', b.principal, b.correlation_id, key, clock_timestamp(),
                clock_timestamp(), clock_timestamp());
        INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint)
        VALUES (op_id, child.name, child.method, child.path, child.repeat_safe, child.sealed_body, child.key_id, 'batch:' || b.id);
        UPDATE batch_children SET state = 'started', operation_id = op_id WHERE batch_id = b.id AND position = child.position;
        PERFORM audit_request_row('received', 'received', NULL, NULL, op_id, b.principal, key, b.command, child.vps_id,
                                  b.correlation_id, NULL, NULL,
                                  jsonb_build_object('auth_type', 'batch', 'request_params',
                                                     b.request -> 'body' || jsonb_build_object('batch_id', b.id)));
        -- One start per pause.
        EXIT WHEN b.pause_seconds > 0;
    END LOOP;
    UPDATE batches SET next_start_at = CASE WHEN b.pause_seconds > 0 THEN clock_timestamp() + make_interval(secs => b.pause_seconds)
                                            ELSE clock_timestamp() + interval '200 milliseconds' END,
        updated_at = clock_timestamp(), lease_owner = NULL, lease_until = NULL
    WHERE id = b.id;
    RETURN b.id;
END
$$;
GRANT EXECUTE ON FUNCTION advance_batch(text, interval) TO vpsgate_app;

-- Batches whose approval time ran out: expired, their pending children cancelled.
CREATE FUNCTION expire_batches() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH gone AS (
        UPDATE batches SET state = 'expired', completed_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE state = 'awaiting_approval' AND approval_expires_at <= clock_timestamp() RETURNING id
    )
    UPDATE batch_children c SET state = 'cancelled' FROM gone WHERE c.batch_id = gone.id AND c.state = 'pending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
GRANT EXECUTE ON FUNCTION expire_batches() TO vpsgate_app;

CREATE VIEW audit_batches AS
SELECT b.id, b.principal, b.command, b.state, b.request, b.max_in_flight, b.max_failures, b.halt_reason, b.created_at,
       b.completed_at, (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id) AS children,
       (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'failed') AS failed
FROM batches b;
GRANT SELECT ON audit_batches TO vpsgate_auditor;
