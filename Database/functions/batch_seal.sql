-- The seal and round a batch approval binds.
CREATE OR REPLACE FUNCTION batch_seal(p_batch bigint) RETURNS TABLE (seal uuid, round integer) LANGUAGE sql STABLE AS $$
    SELECT b.seal, b.round FROM batches b WHERE b.id = p_batch
$$;

GRANT EXECUTE ON FUNCTION batch_seal(bigint) TO vpsgate_app;
