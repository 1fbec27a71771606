-- MARK: The decision a command (or its plan) meets

-- The operation blocking p_vps_id: one sent and not settled (younger than the busy bound),
-- or an approved one waiting for its turn.
-- (These helpers are plpgsql, not sql: a plpgsql function keeps its statements' plans for
-- the session, a sql function called from plpgsql is planned again on every call.)
CREATE OR REPLACE FUNCTION vpsgate_blocking_operation(p_vps_id bigint, p_busy_bound interval)
RETURNS TABLE (id uuid, age_seconds double precision) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT o.id, extract(epoch FROM clock_timestamp() - o.created_at)::double precision
    FROM operations o
    WHERE o.vps_id = p_vps_id
      AND ((o.state = ANY(vpsgate_in_flight_states())
            AND coalesce(o.dispatched_at, o.created_at) > clock_timestamp() - p_busy_bound)
           OR o.state = 'approved')
    ORDER BY o.created_at DESC LIMIT 1;
END
$$;
