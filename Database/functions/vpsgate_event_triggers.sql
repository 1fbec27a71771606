-- The two triggers an event function gets on its table, made one way for every such table:
-- `p_created` after each insert, `p_changed` after an update that changes `p_column`. The
-- function itself is kept from PUBLIC (it runs as its owner). Run by the trigger files as
-- `vpsgate migrate` applies them.
CREATE OR REPLACE FUNCTION vpsgate_event_triggers(p_table regclass, p_column name, p_function regproc, p_created name, p_changed name)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s() FROM PUBLIC', p_function);
    EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION %s()',
                   p_created, p_table, p_function);
    EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER UPDATE OF %I ON %s FOR EACH ROW WHEN (OLD.%I IS DISTINCT FROM NEW.%I) '
                   'EXECUTE FUNCTION %s()', p_changed, p_column, p_table, p_column, p_column, p_function);
END
$$;

REVOKE EXECUTE ON FUNCTION vpsgate_event_triggers(regclass, name, regproc, name, name) FROM PUBLIC;
