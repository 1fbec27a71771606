-- The database-wide gauges (operations and batches by state, the shared budget, the
-- reconciler's and the audit's backlog, the event feed's lag) are exported by one instance
-- only, so that a sum over instances counts each row once: the instance holding this lease.
-- Its housekeeper renews it every second and it passes to another instance once it has not
-- been renewed for its time to live. A row rather than a session advisory lock: behind a
-- transaction-mode pooler a session lock belongs to whichever client last used that server
-- connection.
CREATE TABLE metrics_lease (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON metrics_lease TO vpsgate_app;

-- Operations by state without counting the table at each scrape: the totals as of the last
-- fold, plus the changes since, one row per statement that changed operations' states
-- (written by the triggers in Database/triggers/operation_state_counts.sql; appended, never
-- updated, so concurrent commands do not wait on one counter row). The metrics lease's
-- holder folds the changes into the totals.
CREATE TABLE operation_state_counts (
    state text PRIMARY KEY,
    n     bigint NOT NULL
);
CREATE TABLE operation_state_changes (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state text NOT NULL,
    delta bigint NOT NULL
);
INSERT INTO operation_state_counts (state, n) SELECT state, count(*) FROM operations GROUP BY state;
GRANT SELECT, INSERT, UPDATE ON operation_state_counts TO vpsgate_app;
GRANT SELECT, DELETE ON operation_state_changes TO vpsgate_app;
