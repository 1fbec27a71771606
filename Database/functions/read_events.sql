-- The event feed after a cursor (xid, id), below the snapshot's xmin: events of a VPS and of
-- other resources, shown to p_principal when it may read them (vpsgate_may_read). p_all and p_ids still decide VPS events.
CREATE OR REPLACE FUNCTION read_events(p_principal text, p_after_xid xid8, p_after_id bigint, p_all boolean, p_ids bigint[],
                            p_limit integer, p_scan integer)
RETURNS TABLE (id bigint, position_xid xid8, type text, occurred_at_us bigint, vps_id bigint, resource_type text,
               resource_id bigint, operation_id uuid, data jsonb, expired boolean, held_back boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    horizon events_horizon%ROWTYPE;
    after_xid xid8 := p_after_xid;
    after_id bigint := p_after_id;
    visible_below xid8 := pg_snapshot_xmin(pg_current_snapshot());
    e record;
    returned integer := 0;
    last_xid xid8;
    last_id bigint;
BEGIN
    SELECT * INTO horizon FROM events_horizon;
    IF after_xid IS NULL THEN
        after_xid := horizon.xid;
        after_id := horizon.id;
    ELSIF (after_xid, after_id) < (horizon.xid, horizon.id) THEN
        RETURN QUERY SELECT NULL::bigint, NULL::xid8, NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid,
                            NULL::jsonb, true, false;
        RETURN;
    END IF;
    FOR e IN
        SELECT v.id, v.xid, v.type, v.occurred_at, v.vps_id, v.resource_type, v.resource_id, v.operation_id, v.data FROM events v
        WHERE (v.xid, v.id) > (after_xid, after_id) AND v.xid < visible_below
        ORDER BY v.xid, v.id LIMIT p_scan
    LOOP
        last_xid := e.xid;
        last_id := e.id;
        IF (e.vps_id IS NOT NULL AND (p_all OR e.vps_id = ANY (p_ids)))
           OR (e.vps_id IS NULL AND vpsgate_may_read(p_principal, e.resource_type, e.resource_id)) THEN
            returned := returned + 1;
            RETURN QUERY SELECT e.id, e.xid, e.type, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.vps_id,
                                e.resource_type, e.resource_id, e.operation_id, e.data, false, false;
            EXIT WHEN returned >= p_limit;
        END IF;
    END LOOP;
    IF returned < p_limit THEN
        RETURN QUERY SELECT last_id, last_xid, NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::uuid,
            NULL::jsonb, false,
            EXISTS (SELECT FROM events v WHERE v.xid >= visible_below AND (v.xid, v.id) > (after_xid, after_id));
    END IF;
END
$$;

GRANT EXECUTE ON FUNCTION read_events(text,xid8,bigint,boolean,bigint[],integer,integer) TO vpsgate_app;
