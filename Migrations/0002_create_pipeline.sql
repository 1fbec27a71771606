-- Principals, grants, API tokens, idempotency keys, operations and the audit trail
-- (SPEC sections 4-6 and 9). The application connects as vpsgate_app, which may append
-- to the audit trail and read it, never change it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vpsgate_app') THEN
        CREATE ROLE vpsgate_app LOGIN;
    END IF;
END
$$;

CREATE TABLE principals (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@:=,/+-]{1,200}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- vps_id NULL means every VPS ('*').
CREATE TABLE grants (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal  text NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    vps_id     bigint CHECK (vps_id > 0),
    role       text NOT NULL REFERENCES roles (name) ON UPDATE CASCADE,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);
CREATE UNIQUE INDEX grants_principal_vps_role ON grants (principal, coalesce(vps_id, 0), role);

-- Only a SHA-256 of each token is kept; the token itself is shown once, at creation.
CREATE TABLE api_tokens (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal  text NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    hint       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE operations (
    id                    uuid PRIMARY KEY,
    vps_id                bigint NOT NULL,
    command               text NOT NULL,
    state                 text NOT NULL CHECK (state IN ('accepted', 'dispatched', 'running', 'succeeded', 'failed', 'unknown')),
    hostinger_action_id   bigint,
    hostinger_action_name text,
    hostinger_action_state text,
    error                 jsonb,
    requested_by          text NOT NULL,
    correlation_id        text NOT NULL,
    idempotency_key       text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at          timestamptz,
    refreshed_at          timestamptz,
    -- The reconciler's lease, schedule and flag (SPEC section 5).
    lease_owner           text,
    lease_until           timestamptz,
    next_check_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    checks                integer NOT NULL DEFAULT 0,
    stale                 boolean NOT NULL DEFAULT false
);
CREATE INDEX operations_active ON operations (vps_id, created_at DESC)
    WHERE state IN ('accepted', 'dispatched', 'running', 'unknown');
CREATE INDEX operations_vps_created ON operations (vps_id, created_at DESC, id);
CREATE INDEX operations_created ON operations (created_at DESC, id);

-- One row per (principal, key): in flight while the command runs, then the stored answer.
CREATE TABLE idempotency_keys (
    principal      text NOT NULL,
    key            text NOT NULL,
    fingerprint    text NOT NULL,
    state          text NOT NULL CHECK (state IN ('in_flight', 'completed')),
    operation_id   uuid REFERENCES operations (id),
    response_status integer,
    response_location text,
    response_body  bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_completed ON idempotency_keys (completed_at) WHERE state = 'completed';

CREATE TABLE audit_events (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id                 uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    occurred_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind                     text NOT NULL CHECK (kind IN ('received', 'final', 'completion', 'admin')),
    instance                 text NOT NULL,
    correlation_id           text,
    trace_id                 text,
    principal                text,
    auth_type                text,
    client_address           text,
    user_agent               text,
    method                   text,
    path                     text,
    command                  text,
    vps_id                   bigint,
    request_params           jsonb,
    idempotency_key          text,
    operation_id             uuid,
    outcome                  text NOT NULL,
    http_status              integer,
    problem_type             text,
    hostinger_status         integer,
    hostinger_correlation_id text,
    hostinger_action_id      bigint,
    duration_ms              double precision
);
CREATE INDEX audit_events_vps_time ON audit_events (vps_id, occurred_at);
CREATE INDEX audit_events_principal_time ON audit_events (principal, occurred_at);
CREATE INDEX audit_events_correlation ON audit_events (correlation_id);
CREATE INDEX audit_events_operation ON audit_events (operation_id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- The start of every command, in one round trip: reserve the key (or find it taken),
-- take the VPS's busy slot, create the operation and write the 'received' audit row.
-- Returns what to do: proceed, replay, in_use, reused or busy. p_audit carries the
-- request's identity and started_us, its start, for the duration of the audit rows.
CREATE FUNCTION begin_command(
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

-- The end of a dispatched command, in one round trip: the operation's new state, the
-- stored answer for the key (or the key released when Hostinger provably never got the
-- request) and the final audit row. It never overwrites what the reconciler already
-- settled from Hostinger (an instance that finishes after the reconciler stopped waiting).
CREATE FUNCTION finish_command(
    p_principal text, p_key text, p_operation_id uuid, p_state text, p_action_id bigint, p_action_name text,
    p_action_state text, p_error jsonb, p_now_us bigint, p_store boolean, p_status integer, p_location text,
    p_body bytea, p_audit jsonb
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := 'epoch'::timestamptz + p_now_us * interval '1 microsecond';
BEGIN
    UPDATE operations SET
        state = p_state, hostinger_action_id = p_action_id, hostinger_action_name = p_action_name,
        hostinger_action_state = p_action_state, error = p_error, updated_at = now_ts, refreshed_at = now_ts,
        completed_at = CASE WHEN p_state IN ('succeeded', 'failed') THEN now_ts END,
        next_check_at = now_ts + interval '1 second'
    WHERE id = p_operation_id AND state = 'accepted';
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

GRANT SELECT ON permissions, roles, role_permissions, schema_migrations TO vpsgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON principals, grants, api_tokens, operations, idempotency_keys TO vpsgate_app;
GRANT SELECT, INSERT ON audit_events TO vpsgate_app;
GRANT EXECUTE ON FUNCTION begin_command(text, text, text, bigint, text, uuid, text, interval, bigint, jsonb) TO vpsgate_app;
GRANT EXECUTE ON FUNCTION finish_command(text, text, uuid, text, bigint, text, text, jsonb, bigint, boolean, integer, text, bytea, jsonb) TO vpsgate_app;
