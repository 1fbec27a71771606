-- The resource as operations, events and plans show it: {"type": "firewall", "id": 4001}.
CREATE OR REPLACE FUNCTION vpsgate_resource_json(p_type text, p_id bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('type', p_type, 'id', p_id)
$$;
