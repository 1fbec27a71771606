CREATE OR REPLACE FUNCTION operation_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM vpsgate_emit('operation.' || NEW.state, NEW.resource_type, NEW.resource_id, NEW.vps_id, NEW.id,
                         jsonb_build_object('operation', operation_json(NEW),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('succeeded', 'failed', 'cancelled'));
    RETURN NULL;
END
$$;

SELECT vpsgate_event_triggers('operations', 'state', 'operation_event', 'operations_created_event', 'operations_state_event');
