-- MARK: Events of any resource
CREATE OR REPLACE FUNCTION vpsgate_emit(p_type text, p_resource_type text, p_resource_id bigint, p_vps_id bigint, p_operation_id uuid,
                             p_data jsonb, p_wake boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    event_id bigint;
    owed integer;
BEGIN
    INSERT INTO events (type, vps_id, resource_type, resource_id, operation_id, data)
    VALUES (p_type, p_vps_id, p_resource_type, p_resource_id, p_operation_id, p_data)
    RETURNING id INTO event_id;
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT w.id, event_id FROM webhook_endpoints w
    WHERE w.state = 'active' AND (w.vps_id IS NULL OR w.vps_id = p_vps_id) AND vpsgate_subscribes(w.events, p_type)
      AND vpsgate_may_read(w.principal, p_resource_type, coalesce(p_vps_id, p_resource_id));
    GET DIAGNOSTICS owed = ROW_COUNT;
    IF p_wake OR owed > 0 THEN
        PERFORM pg_notify('vpsgate_events', coalesce(p_operation_id::text, '-') || ' ' || p_type
                                            || CASE WHEN owed > 0 THEN ' deliveries' ELSE '' END);
    END IF;
END
$$;

REVOKE EXECUTE ON FUNCTION vpsgate_emit(text,text,bigint,bigint,uuid,jsonb,boolean) FROM PUBLIC;
