-- A claimed operation whose request certainly did not leave (the breaker was open, the
-- budget refused, no connection): approved again, its request kept again, and the claim
-- released in the ledger with vpsgate's HMAC (p_mac), so it may be claimed once more.
CREATE OR REPLACE FUNCTION release_dispatch(p_operation_id uuid, p_name text, p_method text, p_path text, p_repeat_safe boolean,
                                 p_sealed_body bytea, p_key_id text, p_fingerprint text, p_nonce text, p_claim integer, p_mac text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE operations o SET state = 'approved', dispatched_at = NULL, updated_at = clock_timestamp(), next_check_at = clock_timestamp()
    WHERE o.id = p_operation_id AND o.state = 'accepted';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO operation_requests (operation_id, name, method, path, repeat_safe, sealed_body, key_id, fingerprint)
    VALUES (p_operation_id, p_name, p_method, p_path, p_repeat_safe, p_sealed_body, p_key_id, p_fingerprint);
    INSERT INTO dispatch_ledger (nonce, claim, kind, operation_id, mac) VALUES (p_nonce, p_claim, 'released', p_operation_id, p_mac);
    RETURN true;
END
$$;

GRANT EXECUTE ON FUNCTION release_dispatch(uuid,text,text,text,boolean,bytea,text,text,text,integer,text) TO vpsgate_app;
