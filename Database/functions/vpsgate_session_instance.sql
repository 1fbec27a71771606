-- MARK: Audit rows: the database sets their time, ids and instance.

-- The instance a session belongs to: the last word of its application_name, which every
-- vpsgate connection sets ("vpsgate vpsgate-1", "vpsgate reconciler vpsgate-1").
CREATE OR REPLACE FUNCTION vpsgate_session_instance() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(substring(current_setting('application_name') FROM '([^ ]+)$'), ''), session_user::text)
$$;
