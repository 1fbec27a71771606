-- replaces: 0001-0016
-- The baseline: the tables, indexes, grants and data of migrations 0001 to 0016, in their
-- order and with their comments, squashed into one file. Functions, triggers and views are
-- not here: each lives in its own file under Database/, which `vpsgate migrate` applies
-- after the migrations.
--
-- A database that applied 0001..0016 (with an earlier release) holds all of this already:
-- the migrator records this file as applied there without running it (the first line says
-- which versions it replaces), and applies the Database/ files, which replace the
-- functions, triggers and views those migrations made and drop the overloads none defines.
-- A fresh database runs this file. Both end with the same schema (MigratorTests and
-- Tests/e2e/test_schema.py compare them). The original files are kept, for that test only,
-- in Tests/fixtures/migrations-0016/.
--
-- Later changes to tables go into new migrations; never edit this file.

-- MARK: - From 0001_create_roles.sql
-- Permissions and the roles that bundle them. Roles are rows: operators may
-- add their own or change what a role holds; the six permissions are fixed by the code.
CREATE TABLE permissions (
    name        text PRIMARY KEY,
    description text NOT NULL
);

INSERT INTO permissions (name, description) VALUES
    ('vps:read',        'read VPS, their actions and operations'),
    ('vps:power',       'start, stop, restart'),
    ('vps:configure',   'hostname, nameservers, PTR, firewall, SSH keys, Monarx'),
    ('vps:credentials', 'root and panel passwords, recovery mode'),
    ('vps:snapshot',    'create and delete snapshots'),
    ('vps:destroy',     'restore snapshots and backups, reinstall the OS');

CREATE TABLE roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    description text NOT NULL DEFAULT ''
);

CREATE TABLE role_permissions (
    role       text NOT NULL REFERENCES roles (name) ON UPDATE CASCADE ON DELETE CASCADE,
    permission text NOT NULL REFERENCES permissions (name),
    PRIMARY KEY (role, permission)
);

INSERT INTO roles (name, description) VALUES
    ('viewer',   'read only'),
    ('operator', 'day-to-day changes, nothing destructive and no credentials'),
    ('admin',    'everything');

INSERT INTO role_permissions (role, permission) VALUES
    ('viewer',   'vps:read'),
    ('operator', 'vps:read'), ('operator', 'vps:power'), ('operator', 'vps:configure'), ('operator', 'vps:snapshot'),
    ('admin',    'vps:read'), ('admin', 'vps:power'), ('admin', 'vps:configure'),
    ('admin',    'vps:credentials'), ('admin', 'vps:snapshot'), ('admin', 'vps:destroy');

-- MARK: - From 0002_create_pipeline.sql
-- Principals, grants, API tokens, idempotency keys, operations and the audit trail
--. The application connects as vpsgate_app, which may append
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
    -- The reconciler's lease, schedule and flag.
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

GRANT SELECT ON permissions, roles, role_permissions, schema_migrations TO vpsgate_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON principals, grants, api_tokens, operations, idempotency_keys TO vpsgate_app;

GRANT SELECT, INSERT ON audit_events TO vpsgate_app;

-- MARK: - From 0003_create_reconciler.sql
-- The reconciler: its index, one adopted action per operation, drift
-- records, and scan leases. (Its lease and schedule columns are in 0002.)
CREATE INDEX operations_reconcile ON operations (next_check_at)
    WHERE state IN ('accepted', 'dispatched', 'running', 'unknown');

-- A Hostinger action belongs to at most one operation (adoption cannot take it twice).
CREATE UNIQUE INDEX operations_hostinger_action ON operations (hostinger_action_id)
    WHERE hostinger_action_id IS NOT NULL;

ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;

ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check
    CHECK (kind IN ('received', 'final', 'completion', 'admin', 'reconciler'));

-- Every disagreement between vpsgate's records and Hostinger's; Hostinger's answer wins.
CREATE TABLE drift_events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    detected_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    instance            text NOT NULL,
    vps_id              bigint NOT NULL,
    operation_id        uuid,
    hostinger_action_id bigint,
    kind                text NOT NULL CHECK (kind IN ('action_unknown', 'state_mismatch', 'unclaimed_action')),
    vpsgate_view        jsonb,
    hostinger_view      jsonb
);

CREATE UNIQUE INDEX drift_events_once ON drift_events (kind, hostinger_action_id) WHERE hostinger_action_id IS NOT NULL;

CREATE INDEX drift_events_vps_time ON drift_events (vps_id, detected_at);

-- Periodic scans done by one instance at a time.
CREATE TABLE reconciler_scans (
    name        text PRIMARY KEY,
    lease_owner text,
    lease_until timestamptz,
    watermark   timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO reconciler_scans (name) VALUES ('unclaimed_actions');

GRANT SELECT, INSERT ON drift_events TO vpsgate_app;

GRANT SELECT, UPDATE ON reconciler_scans TO vpsgate_app;

-- MARK: - From 0004_create_audit_views.sql
-- Audit for SQL users: documented views, a read-only auditor role,
-- indexes for the documented queries, and the tamper-evident seal chain.
CREATE INDEX audit_events_time ON audit_events (occurred_at);

CREATE INDEX audit_events_command_time ON audit_events (command, occurred_at);

CREATE INDEX operations_command_created ON operations (command, created_at);

-- The auditor reads the views and nothing else (no login until a DBA grants one).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vpsgate_auditor') THEN
        CREATE ROLE vpsgate_auditor NOLOGIN;
    END IF;
END
$$;

-- The seal chain: seal(n) = SHA-256(seal(n-1) || canonical(row)), in sealing order.
CREATE TABLE audit_seals (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    audit_id  bigint NOT NULL UNIQUE,
    seal      text NOT NULL CHECK (seal ~ '^[0-9a-f]{64}$'),
    sealed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

GRANT SELECT, INSERT ON audit_seals TO vpsgate_app;

-- MARK: - From 0005_record_every_outcome.sql
-- No outcome is lost: the schema for it. Each command request's answer is recorded
-- exactly once (answered_at), by the instance that got it from Hostinger or, when that
-- instance vanished, by the reconciler; a Hostinger action claimed by two operations is
-- kept by both (Hostinger's word for each) with a drift row, instead of failing the write.

-- When the request's final answer was recorded (its 'final' audit row written).
ALTER TABLE operations ADD COLUMN answered_at timestamptz;

UPDATE operations o SET answered_at = o.updated_at
WHERE EXISTS (SELECT 1 FROM audit_events a
              WHERE a.operation_id = o.id AND a.kind = 'final' AND a.outcome NOT IN ('replayed', 'conflict'));

-- Hostinger may answer a repeated request with the action it already has: two operations
-- can then truthfully name one action. The reconciler still adopts only actions no
-- operation holds.
DROP INDEX operations_hostinger_action;

CREATE INDEX operations_hostinger_action ON operations (hostinger_action_id) WHERE hostinger_action_id IS NOT NULL;

ALTER TABLE drift_events DROP CONSTRAINT drift_events_kind_check;

ALTER TABLE drift_events ADD CONSTRAINT drift_events_kind_check
    CHECK (kind IN ('action_unknown', 'state_mismatch', 'unclaimed_action', 'action_shared', 'vps_not_found'));

DROP INDEX drift_events_once;

CREATE UNIQUE INDEX drift_events_once ON drift_events (kind, hostinger_action_id, coalesce(operation_id, '00000000-0000-0000-0000-000000000000'::uuid))
    WHERE hostinger_action_id IS NOT NULL;

-- MARK: - From 0006_trust_boundaries.sql
-- Trust boundaries in the database.
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

-- MARK: - From 0007_one_home_per_decision.sql

-- MARK: - From 0008_change_control.sql
-- Change control: approval policies and the two-person rule, freeze
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

-- MARK: - From 0009_completion_push.sql
-- Completion push: an event row in the same transaction as every
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

-- MARK: Privileges
GRANT SELECT ON events, events_horizon TO vpsgate_app;

GRANT DELETE ON events TO vpsgate_app;

GRANT UPDATE ON events_horizon TO vpsgate_app;

GRANT SELECT ON webhook_endpoints TO vpsgate_app;

GRANT UPDATE (state, disabled_at, disabled_reason) ON webhook_endpoints TO vpsgate_app;

GRANT SELECT, UPDATE ON webhook_deliveries TO vpsgate_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO vpsgate_admin;

GRANT SELECT ON webhook_deliveries, events TO vpsgate_admin;

GRANT SELECT ON principals TO vpsgate_admin;

GRANT SELECT ON events TO vpsgate_auditor;

-- MARK: - From 0010_docker_projects.sql
-- Docker Manager projects: the permissions to read and to change a
-- VPS's Docker Compose projects, and the roles that hold them.
INSERT INTO permissions (name, description) VALUES
    ('docker:read',  'read a VPS''s Docker Manager projects'),
    ('docker:write', 'create, start, stop, restart, update and take down Docker Manager projects');

INSERT INTO role_permissions (role, permission) VALUES
    ('viewer', 'docker:read'), ('approver', 'docker:read'),
    ('operator', 'docker:read'), ('operator', 'docker:write'),
    ('admin', 'docker:read'), ('admin', 'docker:write');

-- MARK: - From 0011_synchronous_answers.sql
-- Commands Hostinger answers synchronously with a resource rather than an action:
-- their operation is terminal at once and keeps the resource in `result`.
-- First of them: VM setup, under the new permission vps:setup.
INSERT INTO permissions (name, description) VALUES
    ('vps:setup', 'set up a purchased VM still in state initial (its OS, password and hostname)');

INSERT INTO role_permissions (role, permission) VALUES ('admin', 'vps:setup');

ALTER TABLE operations ADD COLUMN result jsonb;

-- MARK: - From 0012_account_resources.sql
-- Account-level resources: grants on a resource type and id, operations
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

-- MARK: What a command on a resource meets

-- Policies may name any permission or command (firewall:write, billing:purchase, firewall.rule.create).
ALTER TABLE approval_policies DROP CONSTRAINT approval_policies_subject_check;

ALTER TABLE approval_policies ADD CONSTRAINT approval_policies_subject_check
    CHECK (subject ~ '^([a-z_]+:[a-z_]+|[a-z_]+(\.[a-z_]+)+)$');

-- MARK: - From 0013_fleets.sql
-- Fleets: one Hostinger budget shared by every instance, and batches of
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

-- MARK: - From 0014_sealed_dispatch.sql
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

-- MARK: Approvals

-- 0008's decide_operation, and: an approval carries p_mac (vpsgate's HMAC of the operation,
-- principal, decision and request digest); a decision after the approval window is
-- 'expired' (the operation is cancelled now, whatever the housekeeper did).

-- MARK: Dispatch

-- Takes up to p_limit approved operations whose turn has come and moves each to accepted
-- (one transaction: no one else can take it). Per VPS, first in line among those that may
-- go now: under a freeze only emergency overrides may, and an emergency does not wait
-- behind an ordinary operation the freeze holds. Nothing in flight on the VPS. Each claim
-- adds a ledger row for its kept request (nonce: the envelope's digest, and a batch
-- child's attempt) and returns the request (deleted here: the secret leaves the
-- database with it), the nonce and the claim's number. vpsgate verifies everything
-- before sending, and releases the claim (release_dispatch) when it knows it sent nothing.

-- MARK: Batches

-- 0013's create_batch, and p_seal: the random id every child's envelope names.

-- 0013's decide_batch, and: approvals carry p_mac and count in the current round; cancel
-- stops the children waiting for dispatch and records who cancelled; the requester's
-- resume of a batch an approver cancelled starts a new round that needs a new approval.

-- MARK: - From 0015_feed_budget_freeze.sql

-- A pause written before the cap holds no longer than the default.
UPDATE upstream_budgets SET paused_until = clock_timestamp() + interval '15 minutes'
WHERE paused_until > clock_timestamp() + interval '15 minutes';

-- `vpsgate budget show` and `vpsgate budget resume` (as vpsgate_admin): read the budgets,
-- lift a pause. Shortening or lifting a pause is an admin change only (pause_budget never
-- shortens one), audited by the trigger every admin change has.
GRANT SELECT ON upstream_budgets TO vpsgate_admin;

GRANT UPDATE (paused_until) ON upstream_budgets TO vpsgate_admin;

-- MARK: - From 0016_definers_and_key_lifetime.sql
-- SECURITY DEFINER functions, and the audit rows only they write.
--
-- * A SECURITY DEFINER function runs as the schema owner, whoever calls it. Each may now be
--   executed only by the roles that need it: 0012's vpsgate_emit was PUBLIC's (a new
--   function's default), so any login could write events, and through them signed webhook
--   deliveries. The trigger functions need no grantee: a trigger fires whatever the
--   privileges of the role whose change fires it.
-- * Each searches the schema, then pg_temp. Until now they searched "$user", public (set
--   FROM CURRENT), and pg_temp, not named, came first: a session's temporary table named
--   like one of ours (events, webhook_endpoints, audit_events) would have been what the
--   function wrote, or read, as the owner.
-- * Audit rows of the database's own kinds, kind 'admin' or an auth_type 'database:…', are
--   written only by those functions (audit_admin_change, redeliver_webhooks), inside which
--   current_user is the owner. Anyone else's is refused: vpsgate_app could otherwise add
--   rows that read as the database's record of an admin change.
--
-- Idempotency keys now live at least as long as their operation or batch is not terminal;
-- that is the housekeeper's purge (one statement over the existing indexes), nothing here.

-- MARK: Who may execute them
