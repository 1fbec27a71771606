-- Completion push (SPEC section 13): an event row in the same transaction as every
-- operation state change and approval decision (a transactional outbox), the feed that
-- reads them in order, and webhook endpoints with their deliveries.
--
-- Events are written by triggers, so no code path that changes an operation can forget
-- one: begin_command, finish_command, settle, decide_operation, claim_approved and
-- expire_approvals all go through them. pg_notify is only a wake-up, sent when a waiting
-- read or a webhook sender needs one (vpsgate_emit); the rows are the truth.

-- MARK: Events

CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. The feed orders by (xid, id) and shows only events of
    -- transactions older than every transaction still running (pg_snapshot_xmin), so an
    -- event committed late with a smaller id can never be skipped by a reader already past it.
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    vps_id       bigint,
    operation_id uuid,
    data         jsonb NOT NULL
);
CREATE INDEX events_position ON events (xid, id);
CREATE INDEX events_time ON events (occurred_at);

-- Where the pruned part of the feed ends: a cursor before it has expired (410).
CREATE TABLE events_horizon (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    xid      xid8 NOT NULL DEFAULT '0',
    id       bigint NOT NULL DEFAULT 0
);
INSERT INTO events_horizon DEFAULT VALUES;

-- An operation as GET /v1/operations/{id} shows it (OperationRecord.write), for event data.
CREATE FUNCTION vpsgate_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION operation_json(o operations) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    shown jsonb;
BEGIN
    shown := jsonb_build_object(
        'id', o.id, 'vps_id', o.vps_id, 'command', o.command, 'state', o.state,
        'hostinger_action', CASE WHEN o.hostinger_action_id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', o.hostinger_action_id, 'name', o.hostinger_action_name, 'state', o.hostinger_action_state) END,
        'error', o.error, 'requested_by', o.requested_by, 'correlation_id', o.correlation_id,
        'idempotency_key', o.idempotency_key, 'created_at', vpsgate_time(o.created_at),
        'updated_at', vpsgate_time(o.updated_at), 'completed_at', vpsgate_time(o.completed_at));
    IF o.approvals_required > 0 THEN
        shown := shown || jsonb_build_object('approval', jsonb_build_object(
            'required', o.approvals_required, 'expires_at', vpsgate_time(o.approval_expires_at),
            'dispatched_at', vpsgate_time(o.dispatched_at)));
    END IF;
    RETURN shown;
END
$$;

-- MARK: Webhook endpoints and deliveries (changed by the admin CLI, audited by the database)

CREATE TABLE webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal       text NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    url             text NOT NULL CHECK (url ~ '^https://' AND length(url) <= 2000),
    -- Event types (or 'operation.*', 'approval.*'); NULL: every type.
    events          text[],
    -- One VPS; NULL: every VPS the principal may read.
    vps_id          bigint CHECK (vps_id > 0),
    -- The signing secret, sealed (AES-GCM) under the secret key; never in clear.
    sealed_secret   bytea NOT NULL,
    key_id          text NOT NULL,
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    disabled_reason text,
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- Events with a pending delivery are never pruned; a delivered one goes with its event.
    event_id        bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed', 'dropped')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The instance sending it now, and until when; an expired lease is anyone's to take.
    lease_owner     text,
    lease_until     timestamptz,
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    -- Retries stop 24 hours (VPSGATE_WEBHOOK_GIVE_UP_SECONDS) after this; a redelivery restarts it.
    window_start    timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id) WHERE state = 'pending';

-- The admin audit trigger, now also keeping sealed secrets out of audit rows and naming
-- webhook changes.
CREATE OR REPLACE FUNCTION audit_admin_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    row_data jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END) - 'token_hash' - 'sealed_secret';
    change text;
    actor text := nullif(current_setting('vpsgate.actor', true), '');
BEGIN
    change := CASE
        WHEN TG_TABLE_NAME = 'grants' AND TG_OP = 'DELETE' THEN 'admin.grant.revoke'
        WHEN TG_TABLE_NAME = 'grants' THEN 'admin.grant.add'
        WHEN TG_TABLE_NAME = 'api_tokens' AND TG_OP = 'INSERT' THEN 'admin.token.create'
        WHEN TG_TABLE_NAME = 'api_tokens' AND TG_OP = 'UPDATE' AND row_data ->> 'revoked_at' IS NOT NULL
             AND to_jsonb(OLD) ->> 'revoked_at' IS NULL THEN 'admin.token.revoke'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'INSERT' THEN 'admin.webhook.add'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'DELETE' THEN 'admin.webhook.remove'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'UPDATE' AND row_data ->> 'state' = 'disabled'
             AND to_jsonb(OLD) ->> 'state' = 'active' THEN 'admin.webhook.disable'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'UPDATE' AND row_data ->> 'state' = 'active'
             AND to_jsonb(OLD) ->> 'state' = 'disabled' THEN 'admin.webhook.enable'
        ELSE 'admin.' || TG_TABLE_NAME || '.' || lower(TG_OP)
    END;
    IF TG_OP = 'UPDATE' THEN
        row_data := row_data || jsonb_build_object('before', to_jsonb(OLD) - 'token_hash' - 'sealed_secret');
    END IF;
    INSERT INTO audit_events (kind, principal, auth_type, command, vps_id, request_params, outcome)
    VALUES ('admin', coalesce(actor, session_user::text), 'database:' || session_user, change,
            (row_data ->> 'vps_id')::bigint,
            row_data || jsonb_build_object('database_role', session_user::text, 'claimed_actor', actor), 'applied');
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_audited AFTER INSERT OR UPDATE OR DELETE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION audit_admin_change();

-- MARK: Writing an event: the row, the deliveries it owes, the wake-up

-- Whether an endpoint subscribes to an event type.
CREATE FUNCTION vpsgate_subscribes(p_events text[], p_type text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT p_events IS NULL OR p_type = ANY (p_events) OR split_part(p_type, '.', 1) || '.*' = ANY (p_events)
$$;

-- Appends one event and the deliveries owed to every active endpoint subscribed to it whose
-- principal may read its VPS, and, when someone is known to wait for it (p_wake: a waiting
-- read ends on it) or a webhook is owed, a notification (delivered at commit, or never).
-- Not every event notifies: a notifying transaction holds a cluster-wide lock from its
-- pre-commit to the end of its commit (WAL flush included), so notifying commits are
-- serialized; the command path's own transactions (accepted, running) notify only when a
-- webhook is owed. Waiting feed readers look again every second besides.
CREATE FUNCTION vpsgate_emit(p_type text, p_vps_id bigint, p_operation_id uuid, p_data jsonb, p_wake boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    event_id bigint;
    owed integer;
BEGIN
    INSERT INTO events (type, vps_id, operation_id, data) VALUES (p_type, p_vps_id, p_operation_id, p_data)
    RETURNING id INTO event_id;
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT w.id, event_id FROM webhook_endpoints w
    WHERE w.state = 'active' AND (w.vps_id IS NULL OR w.vps_id = p_vps_id) AND vpsgate_subscribes(w.events, p_type)
      AND vpsgate_grant_decision(w.principal, p_vps_id, 'vps:read') IS NULL;
    GET DIAGNOSTICS owed = ROW_COUNT;
    IF p_wake OR owed > 0 THEN
        PERFORM pg_notify('vpsgate_events', coalesce(p_operation_id::text, '-') || ' ' || p_type
                                            || CASE WHEN owed > 0 THEN ' deliveries' ELSE '' END);
    END IF;
END
$$;

CREATE FUNCTION operation_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM vpsgate_emit('operation.' || NEW.state, NEW.vps_id, NEW.id,
                         jsonb_build_object('operation', operation_json(NEW),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('succeeded', 'failed', 'cancelled'));
    RETURN NULL;
END
$$;
CREATE TRIGGER operations_created_event AFTER INSERT ON operations
    FOR EACH ROW EXECUTE FUNCTION operation_event();
CREATE TRIGGER operations_state_event AFTER UPDATE OF state ON operations
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION operation_event();

CREATE FUNCTION approval_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    op operations%ROWTYPE;
BEGIN
    SELECT * INTO op FROM operations WHERE id = NEW.operation_id;
    PERFORM vpsgate_emit(CASE NEW.decision WHEN 'approve' THEN 'approval.granted' ELSE 'approval.denied' END, op.vps_id, op.id,
                         jsonb_build_object('approval', jsonb_build_object(
                             'operation_id', op.id, 'command', op.command, 'by', NEW.principal, 'decision', NEW.decision,
                             'reason', NEW.reason, 'requested_by', op.requested_by,
                             'approvals_required', op.approvals_required,
                             'decided_at', vpsgate_time(NEW.decided_at))), true);
    RETURN NULL;
END
$$;
CREATE TRIGGER approvals_event AFTER INSERT ON approvals
    FOR EACH ROW EXECUTE FUNCTION approval_event();
CREATE TRIGGER approvals_changed_event AFTER UPDATE OF decision ON approvals
    FOR EACH ROW WHEN (OLD.decision IS DISTINCT FROM NEW.decision) EXECUTE FUNCTION approval_event();

-- MARK: The feed

-- One page of the feed for a reader who may read every VPS (p_all) or those in p_ids:
-- events after (p_after_xid, p_after_id) in (xid, id) order, of transactions that can no
-- longer commit anything before them. At most p_scan rows are looked at, so a reader who
-- may read little cannot make one page scan the whole table; `position_*` of the last row
-- returned says how far the page looked (a row with type NULL carries only that).
-- `expired` is true when the cursor is before the pruned horizon (events after it are gone).
CREATE FUNCTION read_events(p_after_xid xid8, p_after_id bigint, p_all boolean, p_ids bigint[], p_limit integer,
                            p_scan integer)
RETURNS TABLE (id bigint, position_xid xid8, type text, occurred_at_us bigint, vps_id bigint, operation_id uuid, data jsonb,
               expired boolean, held_back boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    horizon events_horizon%ROWTYPE;
    after_xid xid8 := p_after_xid;
    after_id bigint := p_after_id;
    visible_below xid8 := pg_snapshot_xmin(pg_current_snapshot());
    e record;
    returned integer := 0;
    scanned integer := 0;
    last_xid xid8;
    last_id bigint;
BEGIN
    SELECT * INTO horizon FROM events_horizon;
    IF after_xid IS NULL THEN
        after_xid := horizon.xid;
        after_id := horizon.id;
    ELSIF (after_xid, after_id) < (horizon.xid, horizon.id) THEN
        RETURN QUERY SELECT NULL::bigint, NULL::xid8, NULL::text, NULL::bigint, NULL::bigint, NULL::uuid, NULL::jsonb, true, false;
        RETURN;
    END IF;
    FOR e IN
        SELECT v.id, v.xid, v.type, v.occurred_at, v.vps_id, v.operation_id, v.data FROM events v
        WHERE (v.xid, v.id) > (after_xid, after_id) AND v.xid < visible_below
        ORDER BY v.xid, v.id LIMIT p_scan
    LOOP
        scanned := scanned + 1;
        last_xid := e.xid;
        last_id := e.id;
        IF p_all OR e.vps_id = ANY (p_ids) THEN
            returned := returned + 1;
            RETURN QUERY SELECT e.id, e.xid, e.type, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.vps_id,
                                e.operation_id, e.data, false, false;
            EXIT WHEN returned >= p_limit;
        END IF;
    END LOOP;
    -- Nothing more for this reader in what was looked at: a row carrying how far it looked,
    -- and whether events past it are still held back by transactions running now.
    IF returned < p_limit THEN
        RETURN QUERY SELECT last_id, last_xid, NULL::text, NULL::bigint, NULL::bigint, NULL::uuid, NULL::jsonb, false,
            EXISTS (SELECT FROM events v WHERE v.xid >= visible_below AND (v.xid, v.id) > (after_xid, after_id));
    END IF;
END
$$;

-- Deletes events older than p_keep (but those still owed to a webhook) and moves the
-- horizon past them. Returns how many it deleted.
CREATE FUNCTION prune_events(p_keep interval) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    cut record;
    deleted integer;
BEGIN
    SELECT e.xid, e.id INTO cut FROM events e WHERE e.occurred_at < clock_timestamp() - p_keep
    ORDER BY e.occurred_at DESC, e.xid DESC, e.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE events_horizon h SET xid = cut.xid, id = cut.id WHERE (h.xid, h.id) < (cut.xid, cut.id);
    DELETE FROM events e WHERE (e.xid, e.id) <= (cut.xid, cut.id)
      AND NOT EXISTS (SELECT FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending');
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

-- MARK: Delivering

-- Leases up to p_limit due deliveries of active endpoints to p_owner for p_lease, counting
-- the attempt; SKIP LOCKED lets every instance lease at once without taking the same row.
CREATE FUNCTION lease_deliveries(p_owner text, p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, attempts integer, endpoint_id bigint, url text, principal text, sealed_secret bytea, key_id text,
               event_id bigint, type text, occurred_at_us bigint, vps_id bigint, operation_id uuid, data jsonb, readable boolean)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
        WHERE d.state = 'pending' AND d.next_attempt_at <= clock_timestamp() AND w.state = 'active'
          AND (d.lease_until IS NULL OR d.lease_until < clock_timestamp())
        ORDER BY d.next_attempt_at, d.id LIMIT p_limit
        FOR UPDATE OF d SKIP LOCKED
    ), leased AS (
        UPDATE webhook_deliveries d SET lease_owner = p_owner, lease_until = clock_timestamp() + p_lease,
            attempts = d.attempts + 1, last_attempt_at = clock_timestamp()
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.attempts, d.endpoint_id, d.event_id
    )
    SELECT l.id, l.attempts, w.id, w.url, w.principal, w.sealed_secret, w.key_id, e.id, e.type,
           (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.vps_id, e.operation_id, e.data,
           -- The principal's grants are checked again when sending: a revoked grant stops deliveries.
           (w.vps_id IS NULL OR w.vps_id = e.vps_id) AND vpsgate_grant_decision(w.principal, e.vps_id, 'vps:read') IS NULL
    FROM leased l JOIN webhook_endpoints w ON w.id = l.endpoint_id JOIN events e ON e.id = l.event_id;
END
$$;

-- Records one attempt's end. p_outcome: 'delivered' (2xx), 'retry' (anything else; retried
-- after p_retry_in unless that passes the give-up time, then 'failed'), 'gone' (410: the
-- endpoint is disabled, its pending deliveries failed), 'dropped' (the principal may no
-- longer read the event). A late answer from an instance whose lease was taken over
-- changes nothing but a success. Returns the delivery's state after it.
CREATE FUNCTION complete_delivery(p_id bigint, p_owner text, p_outcome text, p_status integer, p_error text,
                                  p_retry_in interval, p_give_up interval)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d webhook_deliveries%ROWTYPE;
    next_state text;
BEGIN
    SELECT * INTO d FROM webhook_deliveries w WHERE w.id = p_id FOR UPDATE;
    IF NOT FOUND OR d.state <> 'pending' OR (d.lease_owner IS DISTINCT FROM p_owner AND p_outcome <> 'delivered') THEN
        RETURN coalesce(d.state, 'missing');
    END IF;
    next_state := CASE
        WHEN p_outcome = 'delivered' THEN 'delivered'
        WHEN p_outcome = 'dropped' THEN 'dropped'
        WHEN p_outcome = 'gone' THEN 'failed'
        WHEN clock_timestamp() + p_retry_in > d.window_start + p_give_up THEN 'failed'
        ELSE 'pending' END;
    UPDATE webhook_deliveries w SET state = next_state, lease_owner = NULL, lease_until = NULL, last_status = p_status,
        last_error = left(p_error, 500),
        next_attempt_at = CASE WHEN next_state = 'pending' THEN clock_timestamp() + p_retry_in ELSE w.next_attempt_at END,
        delivered_at = CASE WHEN next_state = 'delivered' THEN clock_timestamp() END
    WHERE w.id = p_id;
    IF p_outcome = 'gone' THEN
        UPDATE webhook_endpoints e SET state = 'disabled', disabled_at = now(),
            disabled_reason = 'the receiver answered 410 Gone'
        WHERE e.id = d.endpoint_id AND e.state = 'active';
        UPDATE webhook_deliveries w SET state = 'failed', last_error = 'endpoint disabled', lease_owner = NULL, lease_until = NULL
        WHERE w.endpoint_id = d.endpoint_id AND w.state = 'pending';
    END IF;
    RETURN next_state;
END
$$;

-- Sends again: one delivery (p_delivery_id), or every failed one of an endpoint
-- (p_endpoint_id), from now, with a new give-up window and the same webhook-id. Audited.
CREATE FUNCTION redeliver_webhooks(p_delivery_id bigint, p_endpoint_id bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    moved integer;
    actor text := nullif(current_setting('vpsgate.actor', true), '');
BEGIN
    UPDATE webhook_deliveries d SET state = 'pending', next_attempt_at = clock_timestamp(), window_start = clock_timestamp(),
        lease_owner = NULL, lease_until = NULL, delivered_at = NULL
    WHERE (d.id = p_delivery_id OR (p_delivery_id IS NULL AND d.endpoint_id = p_endpoint_id AND d.state = 'failed'))
      AND d.state <> 'pending';
    GET DIAGNOSTICS moved = ROW_COUNT;
    INSERT INTO audit_events (kind, principal, auth_type, command, request_params, outcome)
    VALUES ('admin', coalesce(actor, session_user::text), 'database:' || session_user, 'admin.webhook.redeliver',
            jsonb_build_object('delivery_id', p_delivery_id, 'endpoint_id', p_endpoint_id, 'deliveries', moved,
                               'database_role', session_user::text, 'claimed_actor', actor), 'applied');
    RETURN moved;
END
$$;

-- MARK: For operators: the deliveries, readable with SQL

-- Every delivery with its endpoint and event; the README lists queries over it.
CREATE VIEW webhook_delivery_status AS
SELECT d.id, 'evt_' || d.event_id AS webhook_id, d.endpoint_id, w.url, w.principal, e.type AS event_type, e.vps_id,
       e.operation_id, e.occurred_at, d.state, d.attempts, d.last_status, d.last_error, d.last_attempt_at, d.next_attempt_at,
       d.delivered_at, d.delivered_at - e.occurred_at AS lag, d.lease_owner, d.lease_until
FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN events e ON e.id = d.event_id;

-- MARK: Privileges

GRANT SELECT ON events, events_horizon TO vpsgate_app;
GRANT DELETE ON events TO vpsgate_app;
GRANT UPDATE ON events_horizon TO vpsgate_app;
GRANT SELECT ON webhook_endpoints TO vpsgate_app;
GRANT UPDATE (state, disabled_at, disabled_reason) ON webhook_endpoints TO vpsgate_app;
GRANT SELECT, UPDATE ON webhook_deliveries TO vpsgate_app;
GRANT EXECUTE ON FUNCTION read_events(xid8, bigint, boolean, bigint[], integer, integer), prune_events(interval),
    lease_deliveries(text, integer, interval), complete_delivery(bigint, text, text, integer, text, interval, interval)
    TO vpsgate_app;
REVOKE EXECUTE ON FUNCTION vpsgate_emit(text, bigint, uuid, jsonb, boolean), redeliver_webhooks(bigint, bigint) FROM PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO vpsgate_admin;
GRANT SELECT ON webhook_deliveries, events, webhook_delivery_status TO vpsgate_admin;
GRANT SELECT ON principals TO vpsgate_admin;
GRANT EXECUTE ON FUNCTION redeliver_webhooks(bigint, bigint) TO vpsgate_admin;

GRANT SELECT ON events, webhook_delivery_status TO vpsgate_auditor;
