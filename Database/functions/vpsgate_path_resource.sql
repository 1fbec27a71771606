-- MARK: The audit views name the resource

-- The resource a request path names, as grants write it: vps:1001, firewall:4001,
-- public_key:5001, post_install_script:6001, account (creations, purchases); NULL for
-- paths that name none (approvals of an operation: see its operation).
CREATE OR REPLACE FUNCTION vpsgate_path_resource(p_path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_path ~ '^/v1/vps/[0-9]+(/|$)' THEN 'vps:' || substring(p_path FROM '^/v1/vps/([0-9]+)')
        WHEN p_path ~ '^/v1/firewalls/[0-9]+(/|$)' THEN 'firewall:' || substring(p_path FROM '^/v1/firewalls/([0-9]+)')
        WHEN p_path ~ '^/v1/public-keys/[0-9]+$' THEN 'public_key:' || substring(p_path FROM '^/v1/public-keys/([0-9]+)')
        WHEN p_path ~ '^/v1/post-install-scripts/[0-9]+$'
            THEN 'post_install_script:' || substring(p_path FROM '^/v1/post-install-scripts/([0-9]+)')
        WHEN p_path IN ('/v1/vps', '/v1/firewalls', '/v1/public-keys', '/v1/post-install-scripts') THEN 'account'
    END
$$;
