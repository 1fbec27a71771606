-- The digest an approval binds: the kept request's envelope.
CREATE OR REPLACE FUNCTION vpsgate_request_digest(p_sealed bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(encode(sha256(p_sealed), 'hex'), '-')
$$;
