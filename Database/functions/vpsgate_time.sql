-- An operation as GET /v1/operations/{id} shows it (OperationRecord.write), for event data.
CREATE OR REPLACE FUNCTION vpsgate_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
