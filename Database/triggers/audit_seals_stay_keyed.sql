CREATE OR REPLACE FUNCTION audit_seals_stay_keyed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    latest audit_seals%ROWTYPE;
BEGIN
    IF NEW.key_id IS NULL THEN
        SELECT * INTO latest FROM audit_seals ORDER BY seq DESC LIMIT 1;
        IF NOT FOUND OR latest.key_id IS NOT NULL THEN
            RAISE EXCEPTION 'audit seals are keyed: a seal without a key id is refused' USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

REVOKE EXECUTE ON FUNCTION audit_seals_stay_keyed() FROM PUBLIC;

CREATE OR REPLACE TRIGGER audit_seals_stay_keyed BEFORE INSERT ON audit_seals FOR EACH ROW EXECUTE FUNCTION audit_seals_stay_keyed();
