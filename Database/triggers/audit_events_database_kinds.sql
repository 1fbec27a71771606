-- MARK: Audit rows only the database writes

-- Fires only for such rows (the WHEN clause): the command path's rows never call it.
-- Not SECURITY DEFINER itself, so current_user is whoever inserts: the owner inside the
-- definer functions, the inserting role otherwise. It runs in the inserting session, so it
-- names pg_catalog's pg_class and searches pg_temp last: a temporary pg_class naming the
-- session's role as the table's owner would otherwise answer the question.
CREATE OR REPLACE FUNCTION audit_events_database_kinds() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_user <> (SELECT pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID) THEN
        RAISE EXCEPTION 'audit rows of kind admin or with an auth_type database:… are written by the database itself, not by %',
            current_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER audit_events_database_kinds BEFORE INSERT ON audit_events
    FOR EACH ROW WHEN (NEW.kind = 'admin' OR NEW.auth_type LIKE 'database:%')
    EXECUTE FUNCTION audit_events_database_kinds();
