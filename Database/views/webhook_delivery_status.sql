-- MARK: For operators: the deliveries, readable with SQL

-- Every delivery with its endpoint and event; the README lists queries over it.
CREATE OR REPLACE VIEW webhook_delivery_status AS
SELECT d.id, 'evt_' || d.event_id AS webhook_id, d.endpoint_id, w.url, w.principal, e.type AS event_type, e.vps_id,
       e.operation_id, e.occurred_at, d.state, d.attempts, d.last_status, d.last_error, d.last_attempt_at, d.next_attempt_at,
       d.delivered_at, d.delivered_at - e.occurred_at AS lag, d.lease_owner, d.lease_until
FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN events e ON e.id = d.event_id;

GRANT SELECT ON webhook_delivery_status TO vpsgate_admin;

GRANT SELECT ON webhook_delivery_status TO vpsgate_auditor;
