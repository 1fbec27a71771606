-- Trust boundaries in the database (SPEC section 17).
--
-- Roles: the schema owner (whoever runs `vpsgate migrate`, from a deploy step) owns
-- everything; vpsgate_app (serving instances) reads grants, tokens and roles but cannot
-- change them, and adds audit rows whose time, ids and instance the database sets;
-- vpsgate_admin (the admin CLI) changes grants and tokens, and every such change is an
-- audit row written here, by a trigger, whoever makes it; vpsgate_auditor reads.
--
-- One clock: operations are stamped by the database. Keyed fingerprints: begin_command
-- matches a stored fingerprint against every key's (and, for keys stored before, the
-- unkeyed one). READ COMMITTED is asserted where the busy check depends on it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vpsgate_admin') THEN
        CREATE ROLE vpsgate_admin LOGIN;
    END IF;
END
$$;

-- MARK: The application role reads grants and tokens, never changes them.

REVOKE INSERT, UPDATE, DELETE ON principals, grants, api_tokens FROM vpsgate_app;
GRANT SELECT ON principals, grants, api_tokens TO vpsgate_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON principals, grants, api_tokens TO vpsgate_admin;
GRANT SELECT ON permissions, roles, role_permissions TO vpsgate_admin;

-- MARK: Audit rows: the database sets their time, ids and instance.

-- The instance a session belongs to: the last word of its application_name, which every
-- vpsgate connection sets ("vpsgate vpsgate-1", "vpsgate reconciler vpsgate-1").
CREATE FUNCTION vpsgate_session_instance() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(substring(current_setting('application_name') FROM '([^ ]+)$'), ''), session_user::text)
$$;

CREATE FUNCTION audit_events_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.occurred_at := clock_timestamp();
    NEW.event_id := gen_random_uuid();
    NEW.instance := vpsgate_session_instance();
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_stamp BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_stamp();

-- No id, event id or time can be chosen. `instance` may still be named (the version before
-- this one does, during a rolling upgrade), but the stamp trigger overwrites it.
REVOKE INSERT ON audit_events FROM vpsgate_app;
GRANT INSERT (kind, instance, correlation_id, trace_id, principal, auth_type, client_address, user_agent, method, path,
              command, vps_id, request_params, idempotency_key, operation_id, outcome, http_status, problem_type,
              hostinger_status, hostinger_correlation_id, hostinger_action_id, duration_ms)
    ON audit_events TO vpsgate_app;

-- Seals name the key that made them (NULL: the unkeyed SHA-256 seals of before). Once the
-- chain is keyed it stays keyed: an unkeyed seal can only continue an unkeyed chain that
-- exists already (instances of the previous version, during a rolling upgrade).
ALTER TABLE audit_seals ADD COLUMN key_id text CHECK (key_id ~ '^[A-Za-z0-9_-]{1,32}$');
REVOKE INSERT ON audit_seals FROM vpsgate_app;
GRANT INSERT (audit_id, seal, key_id) ON audit_seals TO vpsgate_app;

CREATE FUNCTION audit_seals_stay_keyed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    latest audit_seals%ROWTYPE;
BEGIN
    IF NEW.key_id IS NULL THEN
        SELECT * INTO latest FROM audit_seals ORDER BY seq DESC LIMIT 1;
        IF NOT FOUND OR latest.key_id IS NOT NULL THEN
            RAISE EXCEPTION 'audit seals are keyed: a seal without a key id is refused' USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_seals_stay_keyed BEFORE INSERT ON audit_seals FOR EACH ROW EXECUTE FUNCTION audit_seals_stay_keyed();

-- MARK: Admin changes are audited by the database itself.

-- The CLI says who is at the keyboard with `SET LOCAL vpsgate.actor`; that claim is kept
-- beside the database role that really made the change.
CREATE FUNCTION audit_admin_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    row_data jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END) - 'token_hash';
    change text;
    actor text := nullif(current_setting('vpsgate.actor', true), '');
BEGIN
    change := CASE
        WHEN TG_TABLE_NAME = 'grants' AND TG_OP = 'DELETE' THEN 'admin.grant.revoke'
        WHEN TG_TABLE_NAME = 'grants' THEN 'admin.grant.add'
        WHEN TG_TABLE_NAME = 'api_tokens' AND TG_OP = 'INSERT' THEN 'admin.token.create'
        WHEN TG_TABLE_NAME = 'api_tokens' AND TG_OP = 'UPDATE' AND row_data ->> 'revoked_at' IS NOT NULL
             AND to_jsonb(OLD) ->> 'revoked_at' IS NULL THEN 'admin.token.revoke'
        ELSE 'admin.' || TG_TABLE_NAME || '.' || lower(TG_OP)
    END;
    IF TG_OP = 'UPDATE' THEN
        row_data := row_data || jsonb_build_object('before', to_jsonb(OLD) - 'token_hash');
    END IF;
    INSERT INTO audit_events (kind, principal, auth_type, command, vps_id, request_params, outcome)
    VALUES ('admin', coalesce(actor, session_user::text), 'database:' || session_user, change,
            (row_data ->> 'vps_id')::bigint,
            row_data || jsonb_build_object('database_role', session_user::text, 'claimed_actor', actor), 'applied');
    RETURN NULL;
END
$$;
CREATE TRIGGER grants_audited AFTER INSERT OR UPDATE OR DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION audit_admin_change();
CREATE TRIGGER api_tokens_audited AFTER INSERT OR UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION audit_admin_change();
CREATE TRIGGER role_permissions_audited AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION audit_admin_change();

-- MARK: The start of a command, made again: one clock, keyed fingerprints, no lost key row.
-- (A new signature: the previous one stays, below, for the version still running.)


-- The start of every command, in one round trip: reserve the key (or find it taken), take
-- the VPS's busy slot, create the operation and write the 'received' audit row. Returns
-- the decision: proceed, replay, in_use, reused or busy; and, to proceed, the operation's
-- creation time by the database's clock (microseconds since the epoch). Answers decided
-- here get their final audit row in the same transaction.
-- p_fingerprints: the request's fingerprint under every key, the current key's first, and
-- the unkeyed one last (keys stored before fingerprints were keyed).
CREATE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprints text[], p_vps_id bigint, p_command text,
    p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_audit jsonb
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision, created_us bigint
) LANGUAGE plpgsql AS $$
DECLARE
    existing idempotency_keys%ROWTYPE;
    blocker record;
    answer text;
    answer_status integer;
    answer_problem text;
    created timestamptz;
BEGIN
    -- The busy check below reads operations committed after this transaction started: only
    -- READ COMMITTED gives each statement a fresh snapshot after the lock is taken.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'begin_command needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;

    LOOP
        INSERT INTO idempotency_keys (principal, key, fingerprint, state)
        VALUES (p_principal, p_key, p_fingerprints[1], 'in_flight')
        ON CONFLICT DO NOTHING;
        EXIT WHEN FOUND;
        SELECT * INTO existing FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        -- Deleted in between (released by its request, or purged): take the key afresh.
        CONTINUE WHEN NOT FOUND;

        IF NOT existing.fingerprint = ANY (p_fingerprints) THEN
            answer := 'reused'; answer_status := 422; answer_problem := 'urn:vpsgate:problem:idempotency-key-reused';
        ELSIF existing.state = 'in_flight' THEN
            answer := 'in_use'; answer_status := 409; answer_problem := 'urn:vpsgate:problem:idempotency-key-in-use';
        ELSE
            answer := 'replay'; answer_status := existing.response_status; answer_problem := NULL;
        END IF;
        INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, correlation_id, trace_id,
                                  principal, auth_type, client_address, user_agent, method, path, command, vps_id,
                                  request_params, idempotency_key, duration_ms)
        SELECT 'final', CASE WHEN answer = 'reused' THEN NULL ELSE existing.operation_id END,
               CASE answer WHEN 'replay' THEN 'replayed' ELSE 'conflict' END, answer_status, answer_problem,
               p_correlation_id, a.trace_id, p_principal, a.auth_type, a.client_address, a.user_agent, a.method, a.path,
               p_command, p_vps_id, a.request_params, p_key, a.elapsed_ms
        FROM jsonb_to_record(p_audit) AS a(trace_id text, auth_type text, client_address text, user_agent text,
                                           method text, path text, request_params jsonb, elapsed_ms double precision);
        IF answer = 'replay' THEN
            RETURN QUERY SELECT answer, existing.operation_id, existing.response_status, existing.response_location,
                                existing.response_body, NULL::uuid, NULL::double precision, NULL::bigint;
        ELSE
            RETURN QUERY SELECT answer, existing.operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid,
                                NULL::double precision, NULL::bigint;
        END IF;
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
        INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, correlation_id, trace_id,
                                  principal, auth_type, client_address, user_agent, method, path, command, vps_id,
                                  request_params, idempotency_key, duration_ms)
        SELECT 'final', NULL::uuid, 'busy', 409, 'urn:vpsgate:problem:vps-busy', p_correlation_id, a.trace_id, p_principal,
               a.auth_type, a.client_address, a.user_agent, a.method, a.path, p_command, p_vps_id, a.request_params, p_key,
               a.elapsed_ms
        FROM jsonb_to_record(p_audit) AS a(trace_id text, auth_type text, client_address text, user_agent text,
                                           method text, path text, request_params jsonb, elapsed_ms double precision);
        RETURN QUERY SELECT 'busy'::text, NULL::uuid, NULL::integer, NULL::text, NULL::bytea, blocker.id,
                            blocker.age::double precision, NULL::bigint;
        RETURN;
    END IF;

    created := clock_timestamp();
    INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key, created_at, updated_at)
    VALUES (p_operation_id, p_vps_id, p_command, 'accepted', p_principal, p_correlation_id, p_key, created, created);
    UPDATE idempotency_keys k SET operation_id = p_operation_id WHERE k.principal = p_principal AND k.key = p_key;
    INSERT INTO audit_events (kind, operation_id, outcome, correlation_id, trace_id, principal, auth_type,
                              client_address, user_agent, method, path, command, vps_id, request_params, idempotency_key)
    SELECT 'received', p_operation_id, 'received', p_correlation_id, a.trace_id, p_principal, a.auth_type,
           a.client_address, a.user_agent, a.method, a.path, p_command, p_vps_id, a.request_params, p_key
    FROM jsonb_to_record(p_audit) AS a(trace_id text, auth_type text, client_address text, user_agent text,
                                       method text, path text, request_params jsonb);
    RETURN QUERY SELECT 'proceed'::text, p_operation_id, NULL::integer, NULL::text, NULL::bytea, NULL::uuid,
                        NULL::double precision, (extract(epoch FROM created) * 1000000)::bigint;
END
$$;
GRANT EXECUTE ON FUNCTION begin_command(text, text, text[], bigint, text, uuid, text, interval, jsonb) TO vpsgate_app;

-- The previous version's begin_command, kept for instances still running it during a
-- rolling upgrade (expand, then contract): the same decisions, made by the function above.
-- Its caller's clock (p_now_us) is no longer used; the database stamps the operation.
CREATE OR REPLACE FUNCTION begin_command(
    p_principal text, p_key text, p_fingerprint text, p_vps_id bigint, p_command text,
    p_operation_id uuid, p_correlation_id text, p_busy_bound interval, p_now_us bigint, p_audit jsonb
) RETURNS TABLE (
    decision text, operation_id uuid, response_status integer, response_location text,
    response_body bytea, blocking_operation uuid, blocking_age_seconds double precision
) LANGUAGE sql AS $$
    SELECT b.decision, b.operation_id, b.response_status, b.response_location, b.response_body, b.blocking_operation,
           b.blocking_age_seconds
    FROM begin_command(p_principal, p_key, ARRAY[p_fingerprint], p_vps_id, p_command, p_operation_id, p_correlation_id,
                       p_busy_bound,
                       p_audit || jsonb_build_object('elapsed_ms', extract(epoch FROM clock_timestamp()
                           - ('epoch'::timestamptz + (p_audit ->> 'started_us')::bigint * interval '1 microsecond')) * 1000)) AS b
$$;

-- The end of a dispatched command, in one round trip: the operation's new state, the stored
-- answer for the key (or the key released when Hostinger provably never got the request)
-- and the final audit row. Safe to call again with the same arguments (a write retried
-- after a lost connection): the answer and its audit row are recorded once (answered_at).
-- It never overwrites what the reconciler already settled, but a late answer still gives
-- an unsettled operation the action Hostinger named; an action another operation holds is
-- kept by both, with a drift row. p_now_us: the operation's creation time by the
-- database's clock plus the monotonic time the instance spent since, so the stored answer
-- and the row agree. The audit row's instance is the session's (the stamp trigger).
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
    INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, correlation_id, trace_id,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              outcome, http_status, problem_type, hostinger_status, hostinger_correlation_id,
                              hostinger_action_id, duration_ms)
    SELECT 'final', p_operation_id, p_principal, p_key, a.correlation_id, a.trace_id, a.auth_type,
           a.client_address, a.user_agent, a.method, a.path, a.command, a.vps_id, a.request_params, a.outcome,
           a.http_status, a.problem_type, a.hostinger_status, a.hostinger_correlation_id, p_action_id, a.duration_ms
    FROM jsonb_to_record(p_audit) AS a(correlation_id text, trace_id text, auth_type text,
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
CREATE FUNCTION answer_abandoned_request(p_operation_id uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE operations SET answered_at = clock_timestamp() WHERE id = p_operation_id AND answered_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO audit_events (kind, operation_id, principal, idempotency_key, correlation_id, trace_id,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              outcome, hostinger_action_id)
    SELECT 'final', r.operation_id, r.principal, r.idempotency_key, r.correlation_id, r.trace_id, r.auth_type,
           r.client_address, r.user_agent, r.method, r.path, r.command, r.vps_id, r.request_params, 'unknown',
           o.hostinger_action_id
    FROM audit_events r JOIN operations o ON o.id = r.operation_id
    WHERE r.operation_id = p_operation_id AND r.kind = 'received'
    ORDER BY r.id LIMIT 1;
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION answer_abandoned_request(uuid) TO vpsgate_app;
