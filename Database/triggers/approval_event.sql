CREATE OR REPLACE FUNCTION approval_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    op operations%ROWTYPE;
BEGIN
    SELECT * INTO op FROM operations WHERE id = NEW.operation_id;
    PERFORM vpsgate_emit(CASE NEW.decision WHEN 'approve' THEN 'approval.granted' ELSE 'approval.denied' END,
                         op.resource_type, op.resource_id, op.vps_id, op.id,
                         jsonb_build_object('approval', jsonb_build_object(
                             'operation_id', op.id, 'command', op.command,
                             'resource', vpsgate_resource_json(op.resource_type, coalesce(op.vps_id, op.resource_id)),
                             'by', NEW.principal, 'decision', NEW.decision,
                             'reason', NEW.reason, 'requested_by', op.requested_by,
                             'approvals_required', op.approvals_required,
                             'decided_at', vpsgate_time(NEW.decided_at))), true);
    RETURN NULL;
END
$$;

SELECT vpsgate_event_triggers('approvals', 'decision', 'approval_event', 'approvals_event', 'approvals_changed_event');
