CREATE OR REPLACE FUNCTION operation_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM vpsgate_emit('operation.' || NEW.state, NEW.resource_type, NEW.resource_id, NEW.vps_id, NEW.id,
                         jsonb_build_object('operation', operation_json(NEW),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('succeeded', 'failed', 'cancelled'));
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION operation_event() FROM PUBLIC;

CREATE OR REPLACE TRIGGER operations_created_event AFTER INSERT ON operations
    FOR EACH ROW EXECUTE FUNCTION operation_event();
CREATE OR REPLACE TRIGGER operations_state_event AFTER UPDATE OF state ON operations
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION operation_event();
