CREATE OR REPLACE FUNCTION batch_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM vpsgate_emit('batch.' || NEW.state, 'batch', NEW.id, NULL, NULL,
                         jsonb_build_object('batch', batch_json(NEW, false),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('halted', 'cancelled', 'succeeded', 'completed_with_failures', 'denied', 'expired'));
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION batch_event() FROM PUBLIC;

CREATE OR REPLACE TRIGGER batches_created_event AFTER INSERT ON batches FOR EACH ROW EXECUTE FUNCTION batch_event();
CREATE OR REPLACE TRIGGER batches_state_event AFTER UPDATE OF state ON batches
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION batch_event();
