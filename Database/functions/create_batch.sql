CREATE OR REPLACE FUNCTION create_batch(
    p_principal text, p_key text, p_fingerprints text[], p_command text, p_permission text, p_request jsonb,
    p_max_in_flight integer, p_max_failures integer, p_pause_seconds integer, p_children jsonb, p_correlation_id text,
    p_audit jsonb, p_seal uuid
) RETURNS TABLE (decision text, batch_id bigint, response_status integer, response_location text, response_body bytea)
LANGUAGE plpgsql AS $$
DECLARE
    existing idempotency_keys%ROWTYPE;
    created batches%ROWTYPE;
    required integer;
    ttl interval;
    reason_required boolean;
    body bytea;
BEGIN
    INSERT INTO idempotency_keys (principal, key, fingerprint, state) VALUES (p_principal, p_key, p_fingerprints[1], 'in_flight')
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        IF NOT existing.fingerprint = ANY (p_fingerprints) THEN
            PERFORM audit_request_row('final', 'conflict', 422, 'urn:vpsgate:problem:idempotency-key-reused', NULL, p_principal,
                                      p_key, 'batch.create', NULL, p_correlation_id, NULL, NULL, p_audit);
            RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::integer, NULL::text, NULL::bytea;
        ELSE
            PERFORM audit_request_row('final', 'replayed', existing.response_status, NULL, NULL, p_principal, p_key, 'batch.create',
                                      NULL, p_correlation_id, NULL, NULL, p_audit);
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, existing.response_status, existing.response_location,
                                existing.response_body;
        END IF;
        RETURN;
    END IF;

    SELECT coalesce(max(p.approvals), 0), min(p.ttl), coalesce(bool_or(a.require_reason), false) INTO required, ttl, reason_required
    FROM jsonb_array_elements(p_children) AS c
         CROSS JOIN LATERAL vpsgate_policy(p_command, p_permission, (c ->> 'vps_id')::bigint) AS p
         JOIN approval_policies a ON a.id = p.id;
    -- p_audit's `reason`: the Vpsgate-Reason header. A policy of any child that requires one
    -- refuses the batch without it, before anything is kept (the key is freed).
    IF reason_required AND p_audit ->> 'reason' IS NULL THEN
        DELETE FROM idempotency_keys k WHERE k.principal = p_principal AND k.key = p_key;
        PERFORM audit_request_row('final', 'invalid', 422, 'urn:vpsgate:problem:reason-required', NULL, p_principal,
                                  p_key, 'batch.create', NULL, p_correlation_id, NULL, NULL, p_audit);
        RETURN QUERY SELECT 'reason_required'::text, NULL::bigint, NULL::integer, NULL::text, NULL::bytea;
        RETURN;
    END IF;
    INSERT INTO batches (principal, command, permission, request, idempotency_key, correlation_id, max_in_flight, max_failures,
                         pause_seconds, state, approvals_required, approval_expires_at, seal, reason, traceparent)
    VALUES (p_principal, p_command, p_permission, p_request, p_key, p_correlation_id, p_max_in_flight, p_max_failures,
            p_pause_seconds, CASE WHEN required > 0 THEN 'awaiting_approval' ELSE 'running' END, required,
            CASE WHEN required > 0 THEN clock_timestamp() + coalesce(ttl, interval '24 hours') END, p_seal, p_audit ->> 'reason',
            p_audit ->> 'traceparent')
    RETURNING * INTO created;
    INSERT INTO batch_children (batch_id, position, vps_id, name, method, path, repeat_safe, sealed_body, key_id)
    SELECT created.id, c.ordinality, (c.value ->> 'vps_id')::bigint, c.value ->> 'name', c.value ->> 'method', c.value ->> 'path',
           (c.value ->> 'repeat_safe')::boolean, decode(c.value ->> 'sealed_body', 'hex'), c.value ->> 'key_id'
    FROM jsonb_array_elements(p_children) WITH ORDINALITY AS c;
    body := convert_to(batch_json(created, true)::text, 'UTF8');
    UPDATE idempotency_keys k SET state = 'completed', response_status = 202, response_location = '/v1/batches/' || created.id,
        response_body = body, completed_at = now()
    WHERE k.principal = p_principal AND k.key = p_key;
    PERFORM audit_request_row('final', CASE WHEN required > 0 THEN 'awaiting_approval' ELSE 'accepted' END, 202, NULL, NULL,
                              p_principal, p_key, 'batch.create', NULL, p_correlation_id, NULL, NULL,
                              p_audit || jsonb_build_object('request_params', p_request || jsonb_build_object('batch_id', created.id)));
    RETURN QUERY SELECT 'created'::text, created.id, 202, '/v1/batches/' || created.id, body;
END
$$;

GRANT EXECUTE ON FUNCTION create_batch(text,text,text[],text,text,jsonb,integer,integer,integer,jsonb,text,jsonb,uuid) TO vpsgate_app;
