CREATE OR REPLACE FUNCTION audit_events_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.occurred_at := clock_timestamp();
    NEW.event_id := gen_random_uuid();
    NEW.instance := vpsgate_session_instance();
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER audit_events_stamp BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_stamp();
