-- After an operation is inserted, and after an update that changes its state
-- (vpsgate_event_triggers): its state's count (operation_state_changes, see
-- Migrations/0020_metrics_lease.sql: +1 for the new state, -1 for the one it left) and its
-- event. One row trigger for both: a statement-level trigger with transition tables made
-- every UPDATE of operations, state changed or not, keep a copy of its rows for it.
CREATE OR REPLACE FUNCTION operation_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO operation_state_changes (state, delta) VALUES (NEW.state, 1);
    ELSE
        INSERT INTO operation_state_changes (state, delta) VALUES (NEW.state, 1), (OLD.state, -1);
    END IF;
    PERFORM vpsgate_emit('operation.' || NEW.state, NEW.resource_type, NEW.resource_id, NEW.vps_id, NEW.id,
                         jsonb_build_object('operation', operation_json(NEW),
                                            'previous_state', CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END),
                         NEW.state IN ('succeeded', 'failed', 'cancelled'));
    RETURN NULL;
END
$$;

SELECT vpsgate_event_triggers('operations', 'state', 'operation_event', 'operations_created_event', 'operations_state_event');
