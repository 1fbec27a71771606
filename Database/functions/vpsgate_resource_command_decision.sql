-- Whether a command on a resource is refused (not_found, forbidden), frozen, held for
-- approval, busy or goes ahead: the one decision the plan and the command share.
-- p_reaches: the VPS the command changes besides p_vps_id (a firewall
-- change reaches every VPS that has the firewall active: a delete deactivates it there, a
-- rule change leaves them out of sync), as the caller read them from Hostinger; NULL when
-- they could not be read, and then a freeze on any VPS holds the command. A freeze on one
-- of them holds the command as a freeze on its own VPS would (an emergency override needs
-- an approval).
-- In order: the grant (unless p_grant_checked), the freeze (an emergency goes on to an
-- approval), the approvals required (the policy's, p_min_approvals, one for an emergency),
-- the operation blocking the VPS. One SQL SELECT over the helpers, not STRICT, not
-- VOLATILE: PostgreSQL inlines it, and them, into the query that names it in its FROM
-- (begin_command keeps that plan for the session) instead of a PL/pgSQL call with a
-- statement for each helper and a tuplestore for its row.
CREATE OR REPLACE FUNCTION vpsgate_resource_command_decision(
    p_principal text, p_resource_type text, p_resource_id bigint, p_vps_id bigint, p_command text, p_permission text,
    p_busy_bound interval, p_emergency boolean, p_min_approvals integer, p_grant_checked boolean, p_reaches bigint[]
) RETURNS TABLE (
    decision text, blocking_operation uuid, blocking_age_seconds double precision, freeze_id bigint, frozen_until timestamptz,
    freeze_reason text, policy_id bigint, policy_subject text, policy_vps_id bigint, approvals_required integer,
    approval_ttl interval
) LANGUAGE sql STABLE AS $$
    SELECT x.decision,
           CASE WHEN x.decision = 'busy' THEN x.blocker_id END,
           CASE WHEN x.decision = 'busy' THEN x.blocker_age END,
           CASE WHEN x.decision IN ('frozen', 'needs_approval') THEN x.freeze_id END,
           CASE WHEN x.decision IN ('frozen', 'needs_approval') THEN x.freeze_ends END,
           CASE WHEN x.decision IN ('frozen', 'needs_approval') THEN x.freeze_reason END,
           x.policy_id, x.policy_subject, x.policy_vps_id,
           CASE WHEN x.refusal IS NULL THEN x.required END,
           CASE WHEN x.decision = 'needs_approval' THEN coalesce(x.ttl, interval '24 hours') ELSE x.ttl END
    FROM (
        SELECT CASE WHEN g.refusal IS NOT NULL THEN g.refusal
                    WHEN f.id IS NOT NULL AND NOT p_emergency THEN 'frozen'
                    WHEN r.required > 0 THEN 'needs_approval'
                    WHEN b.id IS NOT NULL THEN 'busy'
                    ELSE 'proceed' END AS decision,
               g.refusal, r.required, b.id AS blocker_id, b.age_seconds AS blocker_age,
               f.id AS freeze_id, f.ends_at AS freeze_ends, f.reason AS freeze_reason,
               p.id AS policy_id, p.subject AS policy_subject, p.vps_id AS policy_vps_id, p.ttl
        FROM (SELECT CASE WHEN p_grant_checked THEN NULL
                          ELSE vpsgate_resource_decision(p_principal, p_resource_type, coalesce(p_vps_id, p_resource_id),
                                                         p_permission) END AS refusal) g
        LEFT JOIN LATERAL vpsgate_active_freeze_on_any(
            CASE WHEN p_reaches IS NULL THEN NULL ELSE array_remove(p_reaches || p_vps_id, NULL) END) f ON g.refusal IS NULL
        LEFT JOIN LATERAL vpsgate_policy(p_command, p_permission, p_vps_id) p ON g.refusal IS NULL
        CROSS JOIN LATERAL (SELECT greatest(coalesce(p.approvals, 0), coalesce(p_min_approvals, 0),
                                            CASE WHEN p_emergency THEN 1 ELSE 0 END) AS required) r
        LEFT JOIN LATERAL vpsgate_blocking_operation(p_vps_id, p_busy_bound) b
            ON g.refusal IS NULL AND p_vps_id IS NOT NULL AND r.required = 0 AND NOT (f.id IS NOT NULL AND NOT p_emergency)
    ) x
$$;

GRANT EXECUTE ON FUNCTION vpsgate_resource_command_decision(text,text,bigint,bigint,text,text,interval,boolean,integer,boolean,bigint[]) TO vpsgate_app;
