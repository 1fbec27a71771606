-- MARK: The decision a command (or its plan) meets

-- The operation blocking p_vps_id: one sent and not settled (younger than the busy bound),
-- or an approved one waiting for its turn.
-- (These helpers are one SQL SELECT each, not STRICT, not VOLATILE: PostgreSQL inlines
-- them into the query that names them in its FROM, whose plan a PL/pgSQL caller keeps for
-- the session. A PL/pgSQL helper cost a call, a query of its own and a tuplestore each time.)
CREATE OR REPLACE FUNCTION vpsgate_blocking_operation(p_vps_id bigint, p_busy_bound interval)
RETURNS TABLE (id uuid, age_seconds double precision) LANGUAGE sql STABLE AS $$
    SELECT o.id, extract(epoch FROM clock_timestamp() - o.created_at)::double precision
    FROM operations o
    WHERE o.vps_id = p_vps_id
      AND ((o.state = ANY(vpsgate_in_flight_states())
            AND coalesce(o.dispatched_at, o.created_at) > clock_timestamp() - p_busy_bound)
           OR o.state = 'approved')
    ORDER BY o.created_at DESC LIMIT 1
$$;
