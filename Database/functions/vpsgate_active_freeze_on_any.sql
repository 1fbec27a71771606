-- MARK: A freeze holds what reaches a frozen VPS

-- The freeze covering now any VPS of p_vps_ids (NULL: any VPS at all), the one ending last;
-- a freeze over every VPS covers any list, the empty one included. (One SQL SELECT: inlined
-- where it is named in a FROM, see vpsgate_blocking_operation.)
CREATE OR REPLACE FUNCTION vpsgate_active_freeze_on_any(p_vps_ids bigint[])
RETURNS TABLE (id bigint, ends_at timestamptz, reason text) LANGUAGE sql STABLE AS $$
    SELECT f.id, f.ends_at, f.reason FROM freeze_windows f
    WHERE (f.vps_id IS NULL OR p_vps_ids IS NULL OR f.vps_id = ANY (p_vps_ids))
      AND f.starts_at <= clock_timestamp() AND f.ends_at > clock_timestamp()
    ORDER BY f.ends_at DESC LIMIT 1
$$;
