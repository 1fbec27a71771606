-- The freeze covering p_vps_id now (the one ending last), if any.
CREATE OR REPLACE FUNCTION vpsgate_active_freeze(p_vps_id bigint)
RETURNS TABLE (id bigint, ends_at timestamptz, reason text) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT f.id, f.ends_at, f.reason FROM freeze_windows f
    WHERE (f.vps_id IS NULL OR f.vps_id = p_vps_id) AND f.starts_at <= clock_timestamp() AND f.ends_at > clock_timestamp()
    ORDER BY f.ends_at DESC LIMIT 1;
END
$$;
