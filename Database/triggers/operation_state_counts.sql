-- Keeps operation_state_counts true, one appended row per state a statement changed (see
-- Migrations/0020_metrics_lease.sql): statement-level, from the transition tables, so a
-- statement touching many operations writes one row per state, not one per operation.
CREATE OR REPLACE FUNCTION operation_state_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO operation_state_changes (state, delta) SELECT state, count(*) FROM new_rows GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO operation_state_changes (state, delta) SELECT state, -count(*) FROM old_rows GROUP BY state;
    ELSE
        INSERT INTO operation_state_changes (state, delta)
        SELECT state, sum(delta) FROM (
            SELECT state, 1 AS delta FROM new_rows
            UNION ALL
            SELECT state, -1 FROM old_rows
        ) AS moved GROUP BY state HAVING sum(delta) <> 0;
    END IF;
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION operation_state_change() FROM PUBLIC;

CREATE OR REPLACE TRIGGER operations_counted_insert AFTER INSERT ON operations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_state_change();
CREATE OR REPLACE TRIGGER operations_counted_update AFTER UPDATE ON operations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_state_change();
CREATE OR REPLACE TRIGGER operations_counted_delete AFTER DELETE ON operations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_state_change();
