-- Batch events: visible to the batch's principal (a batch is not one resource).
CREATE OR REPLACE FUNCTION vpsgate_may_read(p_principal text, p_type text, p_id bigint) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_type = 'account' THEN
        RETURN EXISTS (SELECT FROM grants g WHERE g.principal = p_principal AND g.resource_type = 'account'
                         AND (g.expires_at IS NULL OR g.expires_at > now()));
    ELSIF p_type = 'batch' THEN
        RETURN EXISTS (SELECT FROM batches b WHERE b.id = p_id AND b.principal = p_principal);
    ELSIF vpsgate_read_permission(p_type) IS NULL THEN
        RETURN false;
    END IF;
    RETURN vpsgate_resource_decision(p_principal, p_type, p_id, vpsgate_read_permission(p_type)) IS NULL;
END
$$;

GRANT EXECUTE ON FUNCTION vpsgate_may_read(text,text,bigint) TO vpsgate_app;
