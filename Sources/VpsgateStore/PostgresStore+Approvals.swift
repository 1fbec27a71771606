import Postgres
import VpsgateCore

/// Approvals and the dispatch of approved operations (SPEC section 12).
extension PostgresStore: ApprovalStore {
    static let approvalAnswers = ApprovalResult.auditAnswers.text()

    public func decide(operationID: String, principal: String, action: ApprovalAction, reason: String?,
                       audit: AuditEntry) throws(StoreError) -> ApprovalOutcome {
        let query: PostgresQuery = """
            SELECT result, state, approvals, approvals_required
            FROM decide_operation(\(operationID)::uuid, \(principal), \(action.rawValue), \(reason), \(audit.identity.correlationID),
                                  \(audit.requestJSON().text())::jsonb, \(Self.approvalAnswers)::jsonb)
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce()).first,
                let result = ApprovalResult(rawValue: try row.decode(String.self, "result"))
            else { throw PostgresError(.decoding, "decide_operation answered nothing known") }
            return ApprovalOutcome(result: result, state: try row.decode(String?.self, "state").flatMap(OperationState.init(rawValue:)),
                                   approvals: try row.decode(Int?.self, "approvals") ?? 0,
                                   approvalsRequired: try row.decode(Int?.self, "approvals_required") ?? 0)
        }
    }

    public func awaitingApproval(approver principal: String, limit: Int) throws(StoreError) -> [OperationRecord] {
        let query = PostgresQuery(unsafeSQL: """
            SELECT \(OperationRow.columns) FROM operations o
            WHERE o.state = 'awaiting_approval' AND o.requested_by <> $1
              AND vpsgate_resource_decision($1, o.resource_type, coalesce(o.vps_id, o.resource_id), $2) IS NULL
            ORDER BY o.created_at, o.id LIMIT $3::int
            """, binds: [principal, Permission.approve.rawValue, String(limit)])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).map(OperationRow.decode)
        }
    }

    public func claimApproved(limit: Int, busyBoundSeconds: Int) throws(StoreError) -> [ApprovedDispatch] {
        let query: PostgresQuery = """
            SELECT c.id::text AS id, c.vps_id, o.resource_type, o.resource_id, c.command, c.requested_by, c.correlation_id,
                   c.idempotency_key, c.created_us, c.dispatched_us, c.name, c.method, c.path, c.repeat_safe, c.sealed_body, c.key_id
            FROM claim_approved(\(limit), make_interval(secs => \(busyBoundSeconds))) c JOIN operations o ON o.id = c.id
            """
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce()).map { row throws(PostgresError) in
                let created = Int64(try row.decode(Int.self, "created_us"))
                var operation = OperationRecord(
                    id: try row.decode(String.self, "id"), target: try OperationRow.target(row),
                    command: try row.decode(String.self, "command"), state: .accepted,
                    requestedBy: try row.decode(String.self, "requested_by"), correlationID: try row.decode(String.self, "correlation_id"),
                    idempotencyKey: try row.decode(String.self, "idempotency_key"), createdAt: created,
                    updatedAt: Int64(try row.decode(Int.self, "dispatched_us")))
                operation.dispatchedAt = operation.updatedAt
                return ApprovedDispatch(operation: operation, request: SealedRequest(
                    name: try row.decode(String?.self, "name") ?? "", method: try row.decode(String?.self, "method") ?? "",
                    path: try row.decode(String?.self, "path") ?? "", repeatSafe: try row.decode(Bool?.self, "repeat_safe") ?? false,
                    sealedBody: try row.decode(String?.self, "sealed_body").map(SQLText.bytes(fromBytea:)),
                    keyID: try row.decode(String?.self, "key_id")))
            }
        }
    }

    /// Cancels the operations whose approval time ran out; returns how many.
    public func expireApprovals() throws(StoreError) -> Int {
        let query: PostgresQuery = "SELECT expire_approvals() AS n"
        return try run { () throws(PostgresError) in try database.query(query.preparedOnce()).first?.decode(Int.self, "n") ?? 0 }
    }
}
