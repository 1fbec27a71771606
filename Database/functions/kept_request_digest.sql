-- The digest of an operation's kept request, which an approval binds ('-': none kept).
CREATE OR REPLACE FUNCTION kept_request_digest(p_operation_id uuid) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT vpsgate_request_digest(r.sealed_body) FROM operation_requests r WHERE r.operation_id = p_operation_id), '-')
$$;

GRANT EXECUTE ON FUNCTION kept_request_digest(uuid) TO vpsgate_app;
