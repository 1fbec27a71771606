-- The grant decision on a resource: not_found (no grant on it: its existence is not
-- revealed), forbidden (a grant without the permission), NULL (allowed). The account is
-- no secret: no grant on it is forbidden, not not_found.
CREATE OR REPLACE FUNCTION vpsgate_resource_decision(p_principal text, p_type text, p_id bigint, p_permission text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    held text[];
BEGIN
    IF p_permission IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(DISTINCT rp.permission) INTO held
    FROM grants g JOIN role_permissions rp ON rp.role = g.role
    WHERE g.principal = p_principal AND g.resource_type = p_type AND (g.resource_id IS NULL OR g.resource_id = p_id)
      AND (g.expires_at IS NULL OR g.expires_at > now());
    RETURN CASE WHEN held IS NULL THEN (CASE WHEN p_type = 'account' THEN 'forbidden' ELSE 'not_found' END)
                WHEN NOT p_permission = ANY (held) THEN 'forbidden' END;
END
$$;

GRANT EXECUTE ON FUNCTION vpsgate_resource_decision(text,text,bigint,text) TO vpsgate_app;
