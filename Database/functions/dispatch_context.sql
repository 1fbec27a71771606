-- What dispatch checks a claimed operation against, as it is now: whether its requester
-- still holds p_permission on its resource, the policy's approvals, the approvals given
-- (the batch's of the current round for a batch child) with whether each approver still
-- holds vps:approve there, the batch's seal, state and the child's attempt, and the
-- ledger's release rows for p_nonce.
CREATE OR REPLACE FUNCTION dispatch_context(p_operation_id uuid, p_permission text, p_nonce text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    op operations%ROWTYPE;
    resource_id bigint;
    child batch_children%ROWTYPE;
    b batches%ROWTYPE;
    policy record;
    given jsonb;
BEGIN
    SELECT * INTO op FROM operations o WHERE o.id = p_operation_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    resource_id := coalesce(op.vps_id, op.resource_id);
    SELECT * INTO policy FROM vpsgate_policy(op.command, p_permission, op.vps_id);
    SELECT * INTO child FROM batch_children c WHERE c.operation_id = op.id;
    IF child.batch_id IS NOT NULL THEN
        SELECT * INTO b FROM batches x WHERE x.id = child.batch_id;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'principal', a.principal, 'decision', a.decision, 'mac', a.mac,
                   'holds', vpsgate_resource_decision(a.principal, op.resource_type, resource_id, 'vps:approve') IS NULL)), '[]')
        INTO given FROM batch_approvals a WHERE a.batch_id = b.id AND a.round = b.round;
    ELSE
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'principal', a.principal, 'decision', a.decision, 'mac', a.mac,
                   'holds', vpsgate_resource_decision(a.principal, op.resource_type, resource_id, 'vps:approve') IS NULL)), '[]')
        INTO given FROM approvals a WHERE a.operation_id = op.id;
    END IF;
    RETURN jsonb_build_object(
        'resource_type', op.resource_type, 'resource_id', resource_id,
        'requester_holds', vpsgate_resource_decision(op.requested_by, op.resource_type, resource_id, p_permission) IS NULL,
        'policy_approvals', coalesce(policy.approvals, 0),
        'approvals', given,
        'batch', CASE WHEN child.batch_id IS NULL THEN NULL ELSE jsonb_build_object(
                     'id', b.id, 'seal', b.seal, 'round', b.round, 'state', b.state, 'attempt', child.attempts) END,
        'released', (SELECT coalesce(jsonb_agg(jsonb_build_object('claim', l.claim, 'mac', l.mac)), '[]')
                     FROM dispatch_ledger l WHERE l.nonce = p_nonce AND l.kind = 'released'));
END
$$;

GRANT EXECUTE ON FUNCTION dispatch_context(uuid,text,text) TO vpsgate_app;
