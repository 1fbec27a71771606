-- Keeps operation_state_counts true (see Migrations/0020_metrics_lease.sql): an insert or a
-- change of state appends its rows in the operation's event trigger
-- (Database/triggers/operation_event.sql); a delete, here, one row per state a statement
-- removed, from the transition table.
CREATE OR REPLACE FUNCTION operation_state_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO operation_state_changes (state, delta) SELECT state, -count(*) FROM old_rows GROUP BY state;
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION operation_state_change() FROM PUBLIC;

-- Earlier releases counted inserts and updates here too, with transition tables.
DROP TRIGGER IF EXISTS operations_counted_insert ON operations;
DROP TRIGGER IF EXISTS operations_counted_update ON operations;
CREATE OR REPLACE TRIGGER operations_counted_delete AFTER DELETE ON operations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_state_change();
