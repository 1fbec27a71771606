CREATE OR REPLACE FUNCTION claim_approved(p_limit integer, p_busy_bound interval)
RETURNS TABLE (
    id uuid, vps_id bigint, command text, requested_by text, correlation_id text, idempotency_key text, created_us bigint,
    dispatched_us bigint, emergency boolean, name text, method text, path text, repeat_safe boolean, envelope bytea,
    key_id text, fingerprint text, nonce text, claim integer
) LANGUAGE plpgsql AS $$
DECLARE
    candidate record;
    taken integer := 0;
    frozen boolean;
    now_ts timestamptz;
    request record;
    attempt integer;
    v_nonce text;
    v_claim integer;
BEGIN
    FOR candidate IN
        SELECT o.id, o.vps_id, o.emergency_reason IS NOT NULL AS emergency, o.approved_at, o.created_at
        FROM operations o
        WHERE o.state = 'approved' AND (o.approval_expires_at IS NULL OR o.approval_expires_at > clock_timestamp())
        ORDER BY o.approved_at, o.created_at
    LOOP
        EXIT WHEN taken >= p_limit;
        frozen := EXISTS (SELECT FROM vpsgate_active_freeze(candidate.vps_id));
        CONTINUE WHEN frozen AND NOT candidate.emergency;
        IF candidate.vps_id IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('vpsgate.vps:' || candidate.vps_id, 0));
            CONTINUE WHEN EXISTS (
                SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state = ANY(vpsgate_in_flight_states())
                  AND coalesce(o.dispatched_at, o.created_at) > clock_timestamp() - p_busy_bound);
            -- An earlier one that may go now goes first (FIFO per VPS).
            CONTINUE WHEN EXISTS (
                SELECT FROM operations o WHERE o.vps_id = candidate.vps_id AND o.state = 'approved' AND o.id <> candidate.id
                  AND (o.approved_at, o.created_at) < (candidate.approved_at, candidate.created_at)
                  AND (o.approval_expires_at IS NULL OR o.approval_expires_at > clock_timestamp())
                  AND (NOT frozen OR o.emergency_reason IS NOT NULL));
        END IF;
        now_ts := clock_timestamp();
        UPDATE operations o SET state = 'accepted', dispatched_at = now_ts, updated_at = now_ts,
            next_check_at = now_ts + interval '250 milliseconds'
        WHERE o.id = candidate.id AND o.state = 'approved';
        CONTINUE WHEN NOT FOUND;
        request := NULL;
        DELETE FROM operation_requests r WHERE r.operation_id = candidate.id
        RETURNING r.name, r.method, r.path, r.repeat_safe, r.sealed_body, r.key_id, r.fingerprint INTO request;
        SELECT c.attempts INTO attempt FROM batch_children c WHERE c.operation_id = candidate.id;
        v_nonce := NULL;
        v_claim := NULL;
        IF request.sealed_body IS NOT NULL THEN
            v_nonce := vpsgate_request_digest(request.sealed_body) || coalesce(':' || attempt, '');
            SELECT coalesce(max(l.claim), 0) + 1 INTO v_claim FROM dispatch_ledger l WHERE l.nonce = v_nonce AND l.kind = 'claimed';
            INSERT INTO dispatch_ledger (nonce, claim, kind, operation_id) VALUES (v_nonce, v_claim, 'claimed', candidate.id);
        END IF;
        taken := taken + 1;
        RETURN QUERY SELECT o.id, o.vps_id, o.command, o.requested_by, o.correlation_id, o.idempotency_key,
                            (extract(epoch FROM o.created_at) * 1000000)::bigint, (extract(epoch FROM now_ts) * 1000000)::bigint,
                            o.emergency_reason IS NOT NULL, request.name, request.method, request.path, request.repeat_safe,
                            request.sealed_body, request.key_id, request.fingerprint, v_nonce, v_claim
                     FROM operations o WHERE o.id = candidate.id;
    END LOOP;
END
$$;

GRANT EXECUTE ON FUNCTION claim_approved(integer,interval) TO vpsgate_app;
