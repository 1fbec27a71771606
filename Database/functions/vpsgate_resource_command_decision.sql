-- Whether a command on a resource is refused (not_found, forbidden), frozen, held for
-- approval, busy or goes ahead: the one decision the plan and the command share.
-- p_reaches: the VPS the command changes besides p_vps_id (a firewall
-- change reaches every VPS that has the firewall active: a delete deactivates it there, a
-- rule change leaves them out of sync), as the caller read them from Hostinger; NULL when
-- they could not be read, and then a freeze on any VPS holds the command. A freeze on one
-- of them holds the command as a freeze on its own VPS would (an emergency override needs
-- an approval).
CREATE OR REPLACE FUNCTION vpsgate_resource_command_decision(
    p_principal text, p_resource_type text, p_resource_id bigint, p_vps_id bigint, p_command text, p_permission text,
    p_busy_bound interval, p_emergency boolean, p_min_approvals integer, p_grant_checked boolean, p_reaches bigint[]
) RETURNS TABLE (
    decision text, blocking_operation uuid, blocking_age_seconds double precision, freeze_id bigint, frozen_until timestamptz,
    freeze_reason text, policy_id bigint, policy_subject text, policy_vps_id bigint, approvals_required integer,
    approval_ttl interval
) LANGUAGE plpgsql STABLE AS $$
DECLARE
    refusal text := CASE WHEN p_grant_checked THEN NULL
                         ELSE vpsgate_resource_decision(p_principal, p_resource_type, coalesce(p_vps_id, p_resource_id), p_permission) END;
    frozen record;
    policy record;
    blocker record;
    required integer;
BEGIN
    IF refusal IS NOT NULL THEN
        RETURN QUERY SELECT refusal, NULL::uuid, NULL::double precision, NULL::bigint, NULL::timestamptz, NULL::text,
                            NULL::bigint, NULL::text, NULL::bigint, NULL::integer, NULL::interval;
        RETURN;
    END IF;

    SELECT * INTO frozen FROM vpsgate_active_freeze_on_any(
        CASE WHEN p_reaches IS NULL THEN NULL ELSE array_remove(p_reaches || p_vps_id, NULL) END);
    SELECT * INTO policy FROM vpsgate_policy(p_command, p_permission, p_vps_id);
    required := greatest(coalesce(policy.approvals, 0), coalesce(p_min_approvals, 0));
    IF frozen.id IS NOT NULL AND NOT p_emergency THEN
        RETURN QUERY SELECT 'frozen'::text, NULL::uuid, NULL::double precision, frozen.id, frozen.ends_at, frozen.reason,
                            policy.id, policy.subject, policy.vps_id, required, policy.ttl;
        RETURN;
    END IF;
    IF p_emergency THEN
        required := greatest(required, 1);
    END IF;
    IF required > 0 THEN
        RETURN QUERY SELECT 'needs_approval'::text, NULL::uuid, NULL::double precision, frozen.id, frozen.ends_at, frozen.reason,
                            policy.id, policy.subject, policy.vps_id, required, coalesce(policy.ttl, interval '24 hours');
        RETURN;
    END IF;
    IF p_vps_id IS NOT NULL THEN
        SELECT * INTO blocker FROM vpsgate_blocking_operation(p_vps_id, p_busy_bound);
        IF blocker.id IS NOT NULL THEN
            RETURN QUERY SELECT 'busy'::text, blocker.id, blocker.age_seconds, NULL::bigint, NULL::timestamptz, NULL::text,
                                policy.id, policy.subject, policy.vps_id, required, policy.ttl;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT 'proceed'::text, NULL::uuid, NULL::double precision, NULL::bigint, NULL::timestamptz, NULL::text,
                        policy.id, policy.subject, policy.vps_id, required, policy.ttl;
END
$$;

GRANT EXECUTE ON FUNCTION vpsgate_resource_command_decision(text,text,bigint,bigint,text,text,interval,boolean,integer,boolean,bigint[]) TO vpsgate_app;
