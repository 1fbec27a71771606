CREATE OR REPLACE VIEW audit_batches AS
SELECT b.id, b.principal, b.command, b.state, b.request, b.max_in_flight, b.max_failures, b.halt_reason, b.created_at,
       b.completed_at, (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id) AS children,
       (SELECT count(*) FROM batch_children c WHERE c.batch_id = b.id AND c.state = 'failed') AS failed
FROM batches b;

GRANT SELECT ON audit_batches TO vpsgate_auditor;
