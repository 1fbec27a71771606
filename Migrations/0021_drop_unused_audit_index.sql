-- audit_events_time (occurred_at alone) served no query: EXPLAIN of every documented audit
-- query on a large table picks audit_events_vps_time, _principal_time, _command_time
-- (audit_destructive's command list and time range), _correlation (audit_story) or
-- _operation (an operation's timeline, answer_abandoned_request), never it. Each audit row
-- written paid for its upkeep. Tests/e2e/test_audit.py checks that every index on the
-- table is used by one of those queries.
DROP INDEX IF EXISTS audit_events_time;
