-- Commands that destroy data (vps:destroy).
CREATE OR REPLACE VIEW audit_destructive AS
SELECT * FROM audit_mutations
WHERE command IN ('vps.recreate', 'vps.snapshot.restore', 'vps.backup.restore');

GRANT SELECT ON audit_destructive TO vpsgate_auditor;
