-- The resource as operations, events and plans show it: {"type": "firewall", "id": 4001}.
-- STABLE, as jsonb_build_object is: an IMMUTABLE SQL function calling a STABLE one is never
-- inlined, and then each call is a function call of its own, planned again each transaction.
CREATE OR REPLACE FUNCTION vpsgate_resource_json(p_type text, p_id bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('type', p_type, 'id', p_id)
$$;
