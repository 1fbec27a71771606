-- MARK: Writing an event: the row, the deliveries it owes, the wake-up

-- Whether an endpoint subscribes to an event type.
CREATE OR REPLACE FUNCTION vpsgate_subscribes(p_events text[], p_type text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT p_events IS NULL OR p_type = ANY (p_events) OR split_part(p_type, '.', 1) || '.*' = ANY (p_events)
$$;
