-- Account-level resources (SPEC section 14): grants on a resource type and id, operations
-- on something other than a VPS (a firewall, an SSH key, a post-install script, the
-- account itself), and the permissions and roles for them.
--
-- A resource is (type, id): ('vps', 1001), ('firewall', 4001), ('public_key', 7),
-- ('post_install_script', 6001), or ('account', NULL) for what creates new resources
-- (a firewall, a key, a script, a VM). A grant names a type and an id, or every id (NULL).
-- Decisions, each in one function: vpsgate_resource_decision (the grant),
-- vpsgate_may_read (who sees an operation or an event), vpsgate_resource_command_decision
-- (what a command meets: grant, freeze, approvals, busy), begin_command (its start).

-- MARK: Permissions and roles

INSERT INTO permissions (name, description) VALUES
    ('firewall:read', 'read a firewall and its rules'),
    ('firewall:write', 'change a firewall''s rules, delete it; on the account: create firewalls'),
    ('public_key:read', 'read an SSH public key of the account'),
    ('public_key:write', 'delete an SSH public key; on the account: add keys'),
    ('script:read', 'read a post-install script'),
    ('script:write', 'change or delete a post-install script; on the account: create scripts'),
    ('billing:purchase', 'buy a new VM (charged to the account; always needs an approval)');

-- Scripts run as root on the VMs they install, like a credential: admin only. Keys and
-- firewall rules are the operator's day-to-day work. Buying is admin only.
INSERT INTO role_permissions (role, permission) VALUES
    ('viewer', 'firewall:read'), ('viewer', 'public_key:read'), ('viewer', 'script:read'),
    ('approver', 'firewall:read'), ('approver', 'public_key:read'), ('approver', 'script:read'),
    ('operator', 'firewall:read'), ('operator', 'public_key:read'), ('operator', 'script:read'),
    ('operator', 'firewall:write'), ('operator', 'public_key:write'),
    ('admin', 'firewall:read'), ('admin', 'public_key:read'), ('admin', 'script:read'),
    ('admin', 'firewall:write'), ('admin', 'public_key:write'), ('admin', 'script:write'), ('admin', 'billing:purchase');

-- MARK: Grants on a resource

-- vps_id gives way to (resource_type, resource_id). It is dropped, not kept beside them: a
-- binary of the previous version reading `vps_id IS NULL` as "every VPS" would take a
-- firewall grant for a grant on every VPS. Dropped, such a binary fails closed (its grant
-- queries error, its commands answer 503) until it is upgraded.
ALTER TABLE grants
    ADD COLUMN resource_type text NOT NULL DEFAULT 'vps'
        CHECK (resource_type IN ('vps', 'firewall', 'public_key', 'post_install_script', 'account')),
    ADD COLUMN resource_id bigint CHECK (resource_id > 0);
UPDATE grants SET resource_id = vps_id;
ALTER TABLE grants ADD CONSTRAINT grants_account_has_no_id CHECK (resource_type <> 'account' OR resource_id IS NULL);
DROP INDEX grants_principal_vps_role;
ALTER TABLE grants DROP COLUMN vps_id;
CREATE UNIQUE INDEX grants_principal_resource_role ON grants (principal, resource_type, coalesce(resource_id, 0), role);

-- 0009's admin audit trigger; a grant's VPS is now its resource id when the resource is a VPS
-- (the row itself, with its resource, is in request_params).
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
            CASE WHEN row_data ? 'resource_type' THEN CASE WHEN row_data ->> 'resource_type' = 'vps' THEN (row_data ->> 'resource_id')::bigint END
                 ELSE (row_data ->> 'vps_id')::bigint END,
            row_data || jsonb_build_object('database_role', session_user::text, 'claimed_actor', actor), 'applied');
    RETURN NULL;
END
$$;

-- The grant decision on a resource: not_found (no grant on it: its existence is not
-- revealed), forbidden (a grant without the permission), NULL (allowed). The account is
-- no secret: no grant on it is forbidden, not not_found.
CREATE FUNCTION vpsgate_resource_decision(p_principal text, p_type text, p_id bigint, p_permission text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    held text[];
BEGIN
    IF p_permission IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(DISTINCT rp.permission) INTO held
    FROM grants g JOIN role_permissions rp ON rp.role = g.role
    WHERE g.principal = p_principal AND g.resource_type = p_type AND (g.resource_id IS NULL OR g.resource_id = p_id)
      AND (g.expires_at IS NULL OR g.expires_at > now());
    RETURN CASE WHEN held IS NULL THEN (CASE WHEN p_type = 'account' THEN 'forbidden' ELSE 'not_found' END)
                WHEN NOT p_permission = ANY (held) THEN 'forbidden' END;
END
$$;
GRANT EXECUTE ON FUNCTION vpsgate_resource_decision(text, text, bigint, text) TO vpsgate_app;

-- Every earlier caller asks about a VPS.
CREATE OR REPLACE FUNCTION vpsgate_grant_decision(p_principal text, p_vps_id bigint, p_permission text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN vpsgate_resource_decision(p_principal, 'vps', p_vps_id, p_permission);
END
$$;

-- The permission that lets a principal see a resource's operations and events; the
-- account's are seen by whoever holds any grant on the account.
CREATE FUNCTION vpsgate_read_permission(p_type text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type WHEN 'vps' THEN 'vps:read' WHEN 'firewall' THEN 'firewall:read' WHEN 'public_key' THEN 'public_key:read'
                       WHEN 'post_install_script' THEN 'script:read' END
$$;

CREATE FUNCTION vpsgate_may_read(p_principal text, p_type text, p_id bigint) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_type = 'account' THEN
        RETURN EXISTS (SELECT FROM grants g WHERE g.principal = p_principal AND g.resource_type = 'account'
                         AND (g.expires_at IS NULL OR g.expires_at > now()));
    END IF;
    RETURN vpsgate_resource_decision(p_principal, p_type, p_id, vpsgate_read_permission(p_type)) IS NULL;
END
$$;
GRANT EXECUTE ON FUNCTION vpsgate_may_read(text, text, bigint) TO vpsgate_app;

-- MARK: Operations on a resource

-- vps_id stays the VPS of a VPS operation (every earlier query and index reads it);
-- resource_id is the id of a firewall, key or script; an account operation has neither.
ALTER TABLE operations
    ADD COLUMN resource_type text NOT NULL DEFAULT 'vps'
        CHECK (resource_type IN ('vps', 'firewall', 'public_key', 'post_install_script', 'account')),
    ADD COLUMN resource_id bigint CHECK (resource_id > 0);
ALTER TABLE operations ALTER COLUMN vps_id DROP NOT NULL;
ALTER TABLE operations ADD CONSTRAINT operations_resource CHECK (
    (resource_type = 'vps') = (vps_id IS NOT NULL)
    AND (resource_type IN ('vps', 'account')) = (resource_id IS NULL));

ALTER TABLE events
    ADD COLUMN resource_type text NOT NULL DEFAULT 'vps',
    ADD COLUMN resource_id bigint;

-- The resource as operations, events and plans show it: {"type": "firewall", "id": 4001}.
CREATE FUNCTION vpsgate_resource_json(p_type text, p_id bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('type', p_type, 'id', p_id)
$$;

CREATE OR REPLACE FUNCTION operation_json(o operations) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    shown jsonb;
BEGIN
    shown := jsonb_build_object(
        'id', o.id, 'vps_id', o.vps_id, 'resource', vpsgate_resource_json(o.resource_type, coalesce(o.vps_id, o.resource_id)),
        'command', o.command, 'state', o.state,
        'hostinger_action', CASE WHEN o.hostinger_action_id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', o.hostinger_action_id, 'name', o.hostinger_action_name, 'state', o.hostinger_action_state) END,
        'error', o.error, 'requested_by', o.requested_by, 'correlation_id', o.correlation_id,
        'idempotency_key', o.idempotency_key, 'created_at', vpsgate_time(o.created_at),
        'updated_at', vpsgate_time(o.updated_at), 'completed_at', vpsgate_time(o.completed_at));
    IF o.result IS NOT NULL THEN
        shown := shown || jsonb_build_object('result', o.result);
    END IF;
    IF o.approvals_required > 0 THEN
        shown := shown || jsonb_build_object('approval', jsonb_build_object(
            'required', o.approvals_required, 'expires_at', vpsgate_time(o.approval_expires_at),
            'dispatched_at', vpsgate_time(o.dispatched_at)));
    END IF;
    RETURN shown;
END
$$;

-- MARK: Events of any resource

CREATE FUNCTION vpsgate_emit(p_type text, p_resource_type text, p_resource_id bigint, p_vps_id bigint, p_operation_id uuid,
                             p_data jsonb, p_wake boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    event_id bigint;
    owed integer;
BEGIN
    INSERT INTO events (type, vps_id, resource_type, resource_id, operation_id, data)
    VALUES (p_type, p_vps_id, p_resource_type, p_resource_id, p_operation_id, p_data)
    RETURNING id INTO event_id;
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT w.id, event_id FROM webhook_endpoints w
    WHERE w.state = 'active' AND (w.vps_id IS NULL OR w.vps_id = p_vps_id) AND vpsgate_subscribes(w.events, p_type)
      AND vpsgate_may_read(w.principal, p_resource_type, coalesce(p_vps_id, p_resource_id));
    GET DIAGNOSTICS owed = ROW_COUNT;
    IF p_wake OR owed > 0 THEN
        PERFORM pg_notify('vpsgate_events', coalesce(p_operation_id::text, '-') || ' ' || p_type
                                            || CASE WHEN owed > 0 THEN ' deliveries' ELSE '' END);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION operation_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM vpsgate_emit('operation.' || NEW.state, NEW.resource_type, NEW.resource_id, NEW.vps_id, NEW.id,
                         jsonb_build_object('operation', operation_json(NEW),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('succeeded', 'failed', 'cancelled'));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION approval_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    op operations%ROWTYPE;
BEGIN
    SELECT * INTO op FROM operations WHERE id = NEW.operation_id;
    PERFORM vpsgate_emit(CASE NEW.decision WHEN 'approve' THEN 'approval.granted' ELSE 'approval.denied' END,
                         op.resource_type, op.resource_id, op.vps_id, op.id,
                         jsonb_build_object('approval', jsonb_build_object(
                             'operation_id', op.id, 'command', op.command,
                             'resource', vpsgate_resource_json(op.resource_type, coalesce(op.vps_id, op.resource_id)),
                             'by', NEW.principal, 'decision', NEW.decision,
                             'reason', NEW.reason, 'requested_by', op.requested_by,
                             'approvals_required', op.approvals_required,
                             'decided_at', vpsgate_time(NEW.decided_at))), true);
    RETURN NULL;
END
$$;

-- 0009's feed, and: events of other resources than a VPS, shown to p_principal when it may
-- read them (vpsgate_may_read). p_all and p_ids still decide VPS events.
CREATE FUNCTION read_events(p_principal text, p_after_xid xid8, p_after_id bigint, p_all boolean, p_ids bigint[],
                            p_limit integer, p_scan integer)
RETURNS TABLE (id bigint, position_xid xid8, type text, occurred_at_us bigint, vps_id bigint, resource_type text,
               resource_id bigint, operation_id uuid, data jsonb, expired boolean, held_back boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    horizon events_horizon%ROWTYPE;
    after_xid xid8 := p_after_xid;
    after_id bigint := p_after_id;
    visible_below xid8 := pg_snapshot_xmin(pg_current_snapshot());
    e record;
    returned integer := 0;
    last_xid xid8;
    last_id bigint;
BEGIN
    SELECT * INTO horizon FROM events_horizon;
    IF after_xid IS NULL THEN
        after_xid := horizon.xid;
        after_id := horizon.id;
    ELSIF (after_xid, after_id) < (horizon.xid, horizon.id) THEN
        RETURN QUERY SELECT NULL::bigint, NULL::xid8, NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid,
                            NULL::jsonb, true, false;
        RETURN;
    END IF;
    FOR e IN
        SELECT v.id, v.xid, v.type, v.occurred_at, v.vps_id, v.resource_type, v.resource_id, v.operation_id, v.data FROM events v
        WHERE (v.xid, v.id) > (after_xid, after_id) AND v.xid < visible_below
        ORDER BY v.xid, v.id LIMIT p_scan
    LOOP
        last_xid := e.xid;
        last_id := e.id;
        IF (e.vps_id IS NOT NULL AND (p_all OR e.vps_id = ANY (p_ids)))
           OR (e.vps_id IS NULL AND vpsgate_may_read(p_principal, e.resource_type, e.resource_id)) THEN
            returned := returned + 1;
            RETURN QUERY SELECT e.id, e.xid, e.type, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.vps_id,
                                e.resource_type, e.resource_id, e.operation_id, e.data, false, false;
            EXIT WHEN returned >= p_limit;
        END IF;
    END LOOP;
    IF returned < p_limit THEN
        RETURN QUERY SELECT last_id, last_xid, NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid,
            NULL::jsonb, false,
            EXISTS (SELECT FROM events v WHERE v.xid >= visible_below AND (v.xid, v.id) > (after_xid, after_id));
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION read_events(text, xid8, bigint, boolean, bigint[], integer, integer) TO vpsgate_app;

-- 0009's lease, with the read check of any resource.
CREATE OR REPLACE FUNCTION lease_deliveries(p_owner text, p_limit integer, p_lease interval)
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
           (w.vps_id IS NULL OR w.vps_id = e.vps_id) AND vpsgate_may_read(w.principal, e.resource_type, coalesce(e.vps_id, e.resource_id))
    FROM leased l JOIN webhook_endpoints w ON w.id = l.endpoint_id JOIN events e ON e.id = l.event_id;
END
$$;

-- MARK: What a command on a resource meets

-- Policies may name any permission or command (firewall:write, billing:purchase, firewall.rule.create).
ALTER TABLE approval_policies DROP CONSTRAINT approval_policies_subject_check;
ALTER TABLE approval_policies ADD CONSTRAINT approval_policies_subject_check
    CHECK (subject ~ '^([a-z_]+:[a-z_]+|[a-z_]+(\.[a-z_]+)+)$');

-- 0008's decision, for any resource: the grant on it; a freeze (a VPS's own, or one over
-- everything: a freeze with no VPS also stops firewall, key, script and account changes);
-- the approval policy (a VPS's own or a global one), never fewer than p_min_approvals (a
-- purchase needs one whatever the policy says); a busy VPS (other resources have no busy
-- slot: Hostinger answers their changes at once); else proceed.
CREATE FUNCTION vpsgate_resource_command_decision(
    p_principal text, p_resource_type text, p_resource_id bigint, p_vps_id bigint, p_command text, p_permission text,
    p_busy_bound interval, p_emergency boolean, p_min_approvals integer, p_grant_checked boolean
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

    SELECT * INTO frozen FROM vpsgate_active_freeze(p_vps_id);
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
GRANT EXECUTE ON FUNCTION vpsgate_resource_command_decision(text, text, bigint, bigint, text, text, interval, boolean, integer, boolean)
    TO vpsgate_app;

-- The VPS-only decision of 0008, for its callers (the previous version's plan).
CREATE OR REPLACE FUNCTION vpsgate_command_decision(
    p_principal text, p_vps_id bigint, p_command text, p_permission text, p_busy_bound interval, p_emergency boolean,
    p_grant_checked boolean DEFAULT false
) RETURNS TABLE (
    decision text, blocking_operation uuid, blocking_age_seconds double precision, freeze_id bigint, frozen_until timestamptz,
    freeze_reason text, policy_id bigint, policy_subject text, policy_vps_id bigint, approvals_required integer,
    approval_ttl interval
) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT * FROM vpsgate_resource_command_decision(p_principal, 'vps', NULL, p_vps_id, p_command, p_permission,
                                                                 p_busy_bound, p_emergency, 0, p_grant_checked);
END
$$;

-- MARK: The start of a command on any resource

-- 0008's begin_command for a resource (p_resource_type, p_resource_id; p_vps_id for a VPS,
-- NULL otherwise) and a floor of approvals (p_min_approvals). Only a VPS command takes the
-- VPS's lock and busy slot.
CREATE FUNCTION begin_command(
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
                                                                 p_min_approvals, true);
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
GRANT EXECUTE ON FUNCTION begin_command(text, text, text[], text, bigint, bigint, text, uuid, text, interval, jsonb, jsonb, text, text,
                                        jsonb, bytea, text, integer) TO vpsgate_app;

-- MARK: Dispatch of approved operations of any resource

-- 0008's claim_approved, and: an approved operation that is not a VPS's (a purchase) has no
-- line to wait in and no busy slot; only a freeze over everything holds it.
CREATE OR REPLACE FUNCTION claim_approved(p_limit integer, p_busy_bound interval)
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
        SELECT c.id, c.vps_id, c.emergency_reason, c.approved_at FROM (
            SELECT DISTINCT ON (o.vps_id) o.id, o.vps_id, o.emergency_reason, o.approved_at, o.created_at
            FROM operations o WHERE o.state = 'approved' AND o.vps_id IS NOT NULL
            ORDER BY o.vps_id, o.approved_at, o.created_at) c
        UNION ALL
        SELECT o.id, o.vps_id, o.emergency_reason, o.approved_at FROM operations o
        WHERE o.state = 'approved' AND o.vps_id IS NULL
    LOOP
        EXIT WHEN taken >= p_limit;
        IF candidate.vps_id IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || candidate.vps_id, 0));
            CONTINUE WHEN EXISTS (
                SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state IN ('accepted', 'dispatched', 'running', 'unknown')
                  AND coalesce(o.dispatched_at, o.created_at) > clock_timestamp() - p_busy_bound);
            CONTINUE WHEN EXISTS (
                SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state = 'approved'
                  AND (o.approved_at, o.created_at) < (SELECT a.approved_at, a.created_at FROM operations a WHERE a.id = candidate.id));
        END IF;
        CONTINUE WHEN candidate.emergency_reason IS NULL AND EXISTS (SELECT FROM vpsgate_active_freeze(candidate.vps_id));
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

-- MARK: Views

CREATE OR REPLACE VIEW operations_open AS
SELECT id, vps_id, command, state, stale, requested_by, correlation_id, hostinger_action_id, created_at,
       clock_timestamp() - created_at AS age, resource_type, resource_id
FROM operations
WHERE state IN ('accepted', 'dispatched', 'running', 'unknown', 'awaiting_approval', 'approved');

-- Operations on what is not a VPS: firewalls, keys, scripts, the account (creations, purchases).
CREATE VIEW operations_on_resources AS
SELECT o.id, o.resource_type, o.resource_id, o.command, o.state, o.requested_by, o.created_at, o.completed_at,
       o.result, o.error, o.correlation_id
FROM operations o
WHERE o.resource_type <> 'vps';
GRANT SELECT ON operations_on_resources TO vpsgate_auditor;

-- MARK: The audit views name the resource

-- The resource a request path names, as grants write it: vps:1001, firewall:4001,
-- public_key:5001, post_install_script:6001, account (creations, purchases); NULL for
-- paths that name none (approvals of an operation: see its operation).
CREATE FUNCTION vpsgate_path_resource(p_path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_path ~ '^/v1/vps/[0-9]+(/|$)' THEN 'vps:' || substring(p_path FROM '^/v1/vps/([0-9]+)')
        WHEN p_path ~ '^/v1/firewalls/[0-9]+(/|$)' THEN 'firewall:' || substring(p_path FROM '^/v1/firewalls/([0-9]+)')
        WHEN p_path ~ '^/v1/public-keys/[0-9]+$' THEN 'public_key:' || substring(p_path FROM '^/v1/public-keys/([0-9]+)')
        WHEN p_path ~ '^/v1/post-install-scripts/[0-9]+$'
            THEN 'post_install_script:' || substring(p_path FROM '^/v1/post-install-scripts/([0-9]+)')
        WHEN p_path IN ('/v1/vps', '/v1/firewalls', '/v1/public-keys', '/v1/post-install-scripts') THEN 'account'
    END
$$;

CREATE OR REPLACE VIEW audit_mutations AS
SELECT a.id, a.occurred_at, a.principal, a.auth_type, a.client_address, a.command, a.vps_id, a.outcome,
       a.http_status, a.problem_type, a.operation_id, o.state AS operation_state, a.correlation_id,
       a.idempotency_key, a.request_params, a.hostinger_status, a.hostinger_action_id, a.duration_ms, a.instance,
       a.path, vpsgate_path_resource(a.path) AS resource
FROM audit_events a LEFT JOIN operations o ON o.id = a.operation_id
WHERE a.kind = 'final';

CREATE OR REPLACE VIEW audit_denials AS
SELECT id, occurred_at, principal, auth_type, client_address, method, path, command, vps_id, outcome, http_status,
       problem_type, correlation_id, vpsgate_path_resource(path) AS resource
FROM audit_events
WHERE kind = 'final' AND outcome IN ('denied', 'not_found', 'invalid', 'conflict', 'busy');
