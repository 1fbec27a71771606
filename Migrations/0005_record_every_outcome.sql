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

-- finish_command and the reconciler's answer for an abandoned request, which use these,
-- are (re)defined in 0006.
