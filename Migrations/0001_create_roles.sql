-- Permissions and the roles that bundle them (SPEC section 4). Roles are rows: operators may
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
