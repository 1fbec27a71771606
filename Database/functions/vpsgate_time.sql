-- A time as the API shows it (OperationRecord.write), for event data.
-- STABLE, as to_char is: an IMMUTABLE SQL function calling a STABLE one is never inlined,
-- and then each call is a function call of its own, planned again each transaction.
CREATE OR REPLACE FUNCTION vpsgate_time(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
