-- The permission that lets a principal see a resource's operations and events; the
-- account's are seen by whoever holds any grant on the account.
CREATE OR REPLACE FUNCTION vpsgate_read_permission(p_type text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type WHEN 'vps' THEN 'vps:read' WHEN 'firewall' THEN 'firewall:read' WHEN 'public_key' THEN 'public_key:read'
                       WHEN 'post_install_script' THEN 'script:read' END
$$;
