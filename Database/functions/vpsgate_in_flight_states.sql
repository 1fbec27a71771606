-- The states of an operation whose request may have reached Hostinger and is not settled:
-- they block their VPS (within the busy bound) and the reconciler follows them. The one
-- statement of the rule: every SQL place names this function, and the migrator (and
-- readiness) refuse a build whose `OperationState.inFlight` says otherwise.
-- IMMUTABLE and a plain SELECT, so PostgreSQL inlines it to the constant array at planning:
-- `state = ANY(vpsgate_in_flight_states())` still matches the operations_active index.
CREATE OR REPLACE FUNCTION vpsgate_in_flight_states() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['accepted', 'dispatched', 'running', 'unknown']::text[]
$$;
