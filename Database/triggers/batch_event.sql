CREATE OR REPLACE FUNCTION batch_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM vpsgate_emit('batch.' || NEW.state, 'batch', NEW.id, NULL, NULL,
                         jsonb_build_object('batch', batch_json(NEW, false),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('halted', 'cancelled', 'succeeded', 'completed_with_failures', 'denied', 'expired'));
    RETURN NULL;
END
$$;

SELECT vpsgate_event_triggers('batches', 'state', 'batch_event', 'batches_created_event', 'batches_state_event');
