-- The policy that applies to a command on a VPS (none: no approval needed). (One SQL
-- SELECT: inlined where it is named in a FROM, see vpsgate_blocking_operation.)
CREATE OR REPLACE FUNCTION vpsgate_policy(p_command text, p_permission text, p_vps_id bigint)
RETURNS TABLE (id bigint, subject text, vps_id bigint, approvals integer, ttl interval) LANGUAGE sql STABLE AS $$
    SELECT p.id, p.subject, p.vps_id, p.approvals, p.ttl FROM approval_policies p
    WHERE p.subject IN (p_command, p_permission) AND (p.vps_id IS NULL OR p.vps_id = p_vps_id)
    ORDER BY (p.subject = p_command) DESC, (p.vps_id IS NOT NULL) DESC LIMIT 1
$$;
