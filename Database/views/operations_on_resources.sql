-- Operations on what is not a VPS: firewalls, keys, scripts, the account (creations, purchases).
CREATE OR REPLACE VIEW operations_on_resources AS
SELECT o.id, o.resource_type, o.resource_id, o.command, o.state, o.requested_by, o.created_at, o.completed_at,
       o.result, o.error, o.correlation_id
FROM operations o
WHERE o.resource_type <> 'vps';

GRANT SELECT ON operations_on_resources TO vpsgate_auditor;
