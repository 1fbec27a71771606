-- Docker Manager projects (SPEC section 14): the permissions to read and to change a
-- VPS's Docker Compose projects, and the roles that hold them.

INSERT INTO permissions (name, description) VALUES
    ('docker:read',  'read a VPS''s Docker Manager projects'),
    ('docker:write', 'create, start, stop, restart, update and take down Docker Manager projects');

INSERT INTO role_permissions (role, permission) VALUES
    ('viewer', 'docker:read'), ('approver', 'docker:read'),
    ('operator', 'docker:read'), ('operator', 'docker:write'),
    ('admin', 'docker:read'), ('admin', 'docker:write');
