-- One home for each decision of the command path.
--
-- * audit_request_row: the one INSERT of a request's audit row, used by begin_command,
--   finish_command and vpsgate's own rows (requests that end before begin_command, reads
--   that see an action end, the reconciler). The database stamps time, ids and instance.
-- * begin_command takes p_answers: what each decision it answers itself means (the audit
--   outcome, HTTP status and problem type), declared once in vpsgate
--   (BeginDecision.Kind.auditAnswers) and passed with every call. The function decides
--   only which decision applies, atomically with the key's row and the VPS's busy slot.
-- * begin_command also checks the grant (p_permission on p_vps_id), first, before anything
--   is taken: one round trip less per command. No grant on the VPS answers not_found (its
--   existence is not revealed), a grant without the permission answers forbidden.
-- * finish_command writes its row through audit_request_row; its decisions are unchanged.
CREATE OR REPLACE FUNCTION audit_request_row(
    p_kind text, p_outcome text, p_http_status integer, p_problem_type text, p_operation_id uuid, p_principal text,
    p_key text, p_command text, p_vps_id bigint, p_correlation_id text, p_hostinger_action_id bigint,
    p_duration_ms double precision, p_audit jsonb
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- plpgsql, not sql: its plan is kept for the session (a sql function called from the
    -- command functions would be planned again on every row).
    INSERT INTO audit_events (kind, operation_id, outcome, http_status, problem_type, correlation_id, trace_id, principal,
                              auth_type, client_address, user_agent, method, path, command, vps_id, request_params,
                              idempotency_key, hostinger_status, hostinger_correlation_id, hostinger_action_id, duration_ms,
                              reason)
    SELECT p_kind, p_operation_id, p_outcome, p_http_status, p_problem_type, coalesce(p_correlation_id, a.correlation_id),
           a.trace_id, p_principal, a.auth_type, a.client_address, a.user_agent, a.method, a.path,
           coalesce(p_command, a.command), coalesce(p_vps_id, a.vps_id), a.request_params, p_key, a.hostinger_status,
           a.hostinger_correlation_id, p_hostinger_action_id, p_duration_ms, a.reason
    FROM jsonb_to_record(p_audit) AS a(correlation_id text, trace_id text, auth_type text, client_address text,
                                       user_agent text, method text, path text, command text, vps_id bigint,
                                       request_params jsonb, hostinger_status integer, hostinger_correlation_id text,
                                       reason text);
END
$$;

GRANT EXECUTE ON FUNCTION audit_request_row(text,text,integer,text,uuid,text,text,text,bigint,text,bigint,double precision,jsonb) TO vpsgate_app;
