-- Every earlier caller asks about a VPS.
CREATE OR REPLACE FUNCTION vpsgate_grant_decision(p_principal text, p_vps_id bigint, p_permission text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN vpsgate_resource_decision(p_principal, 'vps', p_vps_id, p_permission);
END
$$;
