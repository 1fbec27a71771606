-- SECURITY DEFINER functions, and the audit rows only they write.
--
-- * A SECURITY DEFINER function runs as the schema owner, whoever calls it. Each may now be
--   executed only by the roles that need it: 0012's vpsgate_emit was PUBLIC's (a new
--   function's default), so any login could write events, and through them signed webhook
--   deliveries. The trigger functions need no grantee: a trigger fires whatever the
--   privileges of the role whose change fires it.
-- * Each searches the schema, then pg_temp. Until now they searched "$user", public (set
--   FROM CURRENT), and pg_temp, not named, came first: a session's temporary table named
--   like one of ours (events, webhook_endpoints, audit_events) would have been what the
--   function wrote, or read, as the owner.
-- * Audit rows of the database's own kinds, kind 'admin' or an auth_type 'database:…', are
--   written only by those functions (audit_admin_change, redeliver_webhooks), inside which
--   current_user is the owner. Anyone else's is refused: vpsgate_app could otherwise add
--   rows that read as the database's record of an admin change.
--
-- Idempotency keys now live at least as long as their operation or batch is not terminal;
-- that is the housekeeper's purge (one statement over the existing indexes), nothing here.

-- MARK: Who may execute them

REVOKE EXECUTE ON FUNCTION vpsgate_emit(text, text, bigint, bigint, uuid, jsonb, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_seals_stay_keyed(), audit_admin_change(), operation_event(), approval_event(), batch_event()
    FROM PUBLIC;

-- MARK: Where they look

-- The schema the migrations created everything in (audit_events's), then pg_temp, for every
-- SECURITY DEFINER function in it; one that a later migration replaces must say the same
-- (`SET search_path = public, pg_temp` where the schema is public).
DO $$
DECLARE
    home text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = 'audit_events'::regclass);
    definer regprocedure;
BEGIN
    FOR definer IN
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname = home
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', definer, home);
    END LOOP;
END
$$;

-- MARK: Audit rows only the database writes

-- Fires only for such rows (the WHEN clause): the command path's rows never call it.
-- Not SECURITY DEFINER itself, so current_user is whoever inserts: the owner inside the
-- definer functions, the inserting role otherwise. It runs in the inserting session, so it
-- names pg_catalog's pg_class and searches pg_temp last: a temporary pg_class naming the
-- session's role as the table's owner would otherwise answer the question.
CREATE FUNCTION audit_events_database_kinds() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_user <> (SELECT pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID) THEN
        RAISE EXCEPTION 'audit rows of kind admin or with an auth_type database:… are written by the database itself, not by %',
            current_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_database_kinds BEFORE INSERT ON audit_events
    FOR EACH ROW WHEN (NEW.kind = 'admin' OR NEW.auth_type LIKE 'database:%')
    EXECUTE FUNCTION audit_events_database_kinds();
