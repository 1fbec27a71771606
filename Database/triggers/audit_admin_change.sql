-- Every change of grants, tokens, role permissions, policies, freezes, webhooks and budget
-- pauses is an admin audit row, whoever makes it. A grant's VPS is its resource id when the
-- resource is a VPS (the row itself, with its resource, is in request_params).
CREATE OR REPLACE FUNCTION audit_admin_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    row_data jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END) - 'token_hash' - 'sealed_secret';
    change text;
    actor text := nullif(current_setting('vpsgate.actor', true), '');
BEGIN
    change := CASE
        WHEN TG_TABLE_NAME = 'grants' AND TG_OP = 'DELETE' THEN 'admin.grant.revoke'
        WHEN TG_TABLE_NAME = 'grants' THEN 'admin.grant.add'
        WHEN TG_TABLE_NAME = 'api_tokens' AND TG_OP = 'INSERT' THEN 'admin.token.create'
        WHEN TG_TABLE_NAME = 'api_tokens' AND TG_OP = 'UPDATE' AND row_data ->> 'revoked_at' IS NOT NULL
             AND to_jsonb(OLD) ->> 'revoked_at' IS NULL THEN 'admin.token.revoke'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'INSERT' THEN 'admin.webhook.add'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'DELETE' THEN 'admin.webhook.remove'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'UPDATE' AND row_data ->> 'state' = 'disabled'
             AND to_jsonb(OLD) ->> 'state' = 'active' THEN 'admin.webhook.disable'
        WHEN TG_TABLE_NAME = 'webhook_endpoints' AND TG_OP = 'UPDATE' AND row_data ->> 'state' = 'active'
             AND to_jsonb(OLD) ->> 'state' = 'disabled' THEN 'admin.webhook.enable'
        ELSE 'admin.' || TG_TABLE_NAME || '.' || lower(TG_OP)
    END;
    IF TG_OP = 'UPDATE' THEN
        row_data := row_data || jsonb_build_object('before', to_jsonb(OLD) - 'token_hash' - 'sealed_secret');
    END IF;
    INSERT INTO audit_events (kind, principal, auth_type, command, vps_id, request_params, outcome)
    VALUES ('admin', coalesce(actor, session_user::text), 'database:' || session_user, change,
            CASE WHEN row_data ? 'resource_type' THEN CASE WHEN row_data ->> 'resource_type' = 'vps' THEN (row_data ->> 'resource_id')::bigint END
                 ELSE (row_data ->> 'vps_id')::bigint END,
            row_data || jsonb_build_object('database_role', session_user::text, 'claimed_actor', actor), 'applied');
    RETURN NULL;
END
$$;

REVOKE EXECUTE ON FUNCTION audit_admin_change() FROM PUBLIC;

-- One trigger `<table>_audited` a table, made alike for each.
DO $$
DECLARE
    audited text;
BEGIN
    FOREACH audited IN ARRAY ARRAY['grants', 'api_tokens', 'role_permissions', 'approval_policies', 'freeze_windows', 'webhook_endpoints'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION audit_admin_change()',
                       audited || '_audited', audited);
    END LOOP;
END
$$;
CREATE OR REPLACE TRIGGER upstream_budgets_resumed AFTER UPDATE OF paused_until ON upstream_budgets
    FOR EACH ROW WHEN (OLD.paused_until IS NOT NULL AND (NEW.paused_until IS NULL OR NEW.paused_until < OLD.paused_until))
    EXECUTE FUNCTION audit_admin_change();
