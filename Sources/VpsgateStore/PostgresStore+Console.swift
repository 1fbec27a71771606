import Postgres
import VpsgateCore

/// Reads for the console: approval decisions, kept requests and an operation's history.
extension PostgresStore: ConsoleStore {
    public func pendingApprovals(operationIDs: [String]) throws(StoreError) -> [String: PendingApproval] {
        guard !operationIDs.isEmpty else { return [:] }
        let ids = SQLText.array(operationIDs)
        let decisions = PostgresQuery(unsafeSQL: """
            SELECT operation_id::text AS id, principal, decision, reason,
                   (extract(epoch FROM decided_at) * 1000000)::bigint AS decided_us
            FROM approvals WHERE operation_id = ANY($1::uuid[]) ORDER BY decided_at, principal
            """, binds: [ids])
        let kept = PostgresQuery(unsafeSQL: """
            SELECT o.id::text AS id, o.emergency_reason IS NOT NULL AS emergency, r.name, r.method, r.path, r.repeat_safe,
                   r.sealed_body, r.key_id, r.fingerprint
            FROM operations o LEFT JOIN operation_requests r ON r.operation_id = o.id
            WHERE o.id = ANY($1::uuid[])
            """, binds: [ids])
        return try run { () throws(PostgresError) in
            var pending: [String: PendingApproval] = [:]
            for row in try database.query(kept.preparedOnce(), retryOnStaleConnection: true) {
                var entry = PendingApproval(emergency: try row.decode(Bool.self, "emergency"))
                if let method = try row.decode(String?.self, "method") {
                    entry.request = SealedRequest(
                        name: try row.decode(String?.self, "name") ?? "", method: method, path: try row.decode(String?.self, "path") ?? "",
                        repeatSafe: try row.decode(Bool?.self, "repeat_safe") ?? false,
                        sealedBody: try row.decode(String?.self, "sealed_body").map(SQLText.bytes(fromBytea:)),
                        keyID: try row.decode(String?.self, "key_id"), fingerprint: try row.decode(String?.self, "fingerprint") ?? "-")
                }
                pending[try row.decode(String.self, "id")] = entry
            }
            for row in try database.query(decisions.preparedOnce(), retryOnStaleConnection: true) {
                let id = try row.decode(String.self, "id")
                pending[id, default: PendingApproval()].decisions.append(ApprovalDecision(
                    principal: try row.decode(String.self, "principal"), decision: try row.decode(String.self, "decision"),
                    reason: try row.decode(String?.self, "reason"), decidedAt: Int64(try row.decode(Int.self, "decided_us"))))
            }
            return pending
        }
    }

    public func timeline(operationID: String) throws(StoreError) -> [TimelineEntry] {
        // Audit rows carry no request parameters here: the timeline says what happened, the
        // audit trail keeps what was asked.
        let query = PostgresQuery(unsafeSQL: """
            SELECT source, kind, (extract(epoch FROM at) * 1000000)::bigint AS at_us, principal, outcome, detail FROM (
                SELECT 'audit' AS source, a.kind, a.occurred_at AS at, a.principal, a.outcome, a.id AS seq,
                       jsonb_strip_nulls(jsonb_build_object('http_status', a.http_status, 'problem_type', a.problem_type,
                           'hostinger_status', a.hostinger_status, 'hostinger_action_id', a.hostinger_action_id,
                           'command', a.command, 'correlation_id', a.correlation_id))::text AS detail
                FROM audit_events a WHERE a.operation_id = $1::uuid
                UNION ALL
                SELECT 'event', e.type, e.occurred_at, NULL, NULL, e.id, e.data::text
                FROM events e WHERE e.operation_id = $1::uuid
                UNION ALL
                SELECT 'approval', d.decision, d.decided_at, d.principal, NULL, 0,
                       jsonb_strip_nulls(jsonb_build_object('reason', d.reason))::text
                FROM approvals d WHERE d.operation_id = $1::uuid
            ) t ORDER BY at, seq
            """, binds: [operationID])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).map { row throws(PostgresError) in
                TimelineEntry(source: try row.decode(String.self, "source"), kind: try row.decode(String.self, "kind"),
                              at: Int64(try row.decode(Int.self, "at_us")), principal: try row.decode(String?.self, "principal"),
                              outcome: try row.decode(String?.self, "outcome"),
                              detail: try row.decode(String?.self, "detail").flatMap { try? JSONValue.parse($0) })
            }
        }
    }

    public func freezeWindows() throws(StoreError) -> [FreezeWindow] {
        let query = PostgresQuery(unsafeSQL: """
            SELECT id, vps_id, (extract(epoch FROM starts_at) * 1000000)::bigint AS starts_us,
                   (extract(epoch FROM ends_at) * 1000000)::bigint AS ends_us, reason, starts_at <= now() AS active
            FROM freeze_windows WHERE ends_at > now() ORDER BY starts_at, id
            """, binds: [])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).map { row throws(PostgresError) in
                FreezeWindow(id: try row.decode(Int.self, "id"), vpsID: try row.decode(Int?.self, "vps_id"),
                             startsAt: Int64(try row.decode(Int.self, "starts_us")), endsAt: Int64(try row.decode(Int.self, "ends_us")),
                             reason: try row.decode(String.self, "reason"), active: try row.decode(Bool.self, "active"))
            }
        }
    }
}
