import Postgres
import VpsgateCore

/// Approvals and the dispatch of approved operations (docs/design.md#change-control).
extension PostgresStore: ApprovalStore {
    static let approvalAnswers = ApprovalResult.auditAnswers.text()

    public func decide(operationID: String, principal: String, action: ApprovalAction, reason: String?, mac: String?,
                       audit: AuditEntry) throws(StoreError) -> ApprovalOutcome {
        let query: PostgresQuery = """
            SELECT result, state, approvals, approvals_required
            FROM decide_operation(\(operationID)::uuid, \(principal), \(action.rawValue), \(reason), \(audit.identity.correlationID),
                                  \(audit.requestJSON().text())::jsonb, \(Self.approvalAnswers)::jsonb, \(mac))
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

    public func keptRequestDigest(operationID: String) throws(StoreError) -> String {
        let query: PostgresQuery = "SELECT kept_request_digest(\(operationID)::uuid) AS digest"
        return try run { () throws(PostgresError) in try database.query(query.preparedOnce()).first?.decode(String.self, "digest") ?? "-" }
    }

    public func claimApproved(limit: Int, busyBoundSeconds: Int) throws(StoreError) -> [ApprovedDispatch] {
        let query: PostgresQuery = """
            SELECT c.id::text AS id, c.vps_id, o.resource_type, o.resource_id, c.command, c.requested_by, c.correlation_id,
                   c.idempotency_key, c.created_us, c.dispatched_us, c.emergency, c.name, c.method, c.path, c.repeat_safe, c.envelope,
                   c.key_id, c.fingerprint, c.nonce, c.claim, o.reason, o.traceparent
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
                operation.reason = try row.decode(String?.self, "reason")
                operation.traceparent = try row.decode(String?.self, "traceparent")
                return ApprovedDispatch(
                    operation: operation, emergency: try row.decode(Bool.self, "emergency"),
                    request: SealedRequest(
                        name: try row.decode(String?.self, "name") ?? "", method: try row.decode(String?.self, "method") ?? "",
                        path: try row.decode(String?.self, "path") ?? "", repeatSafe: try row.decode(Bool?.self, "repeat_safe") ?? false,
                        sealedBody: try row.decode(String?.self, "envelope").map(SQLText.bytes(fromBytea:)),
                        keyID: try row.decode(String?.self, "key_id"), fingerprint: try row.decode(String?.self, "fingerprint") ?? "-"),
                    nonce: try row.decode(String?.self, "nonce"), claim: try row.decode(Int?.self, "claim"))
            }
        }
    }

    public func dispatchFacts(operationID: String, permission: Permission, nonce: String?) throws(StoreError) -> DispatchFacts? {
        let query: PostgresQuery = """
            SELECT dispatch_context(\(operationID)::uuid, \(permission.rawValue), \(nonce))::text AS facts
            """
        return try run { () throws(PostgresError) in
            guard let text = try database.query(query.preparedOnce()).first?.decode(String?.self, "facts"),
                let json = try? JSONValue.parse(text)
            else { return nil }
            return Self.dispatchFacts(json)
        }
    }

    /// `dispatch_context`'s answer; a member missing or of another type reads as what refuses.
    static func dispatchFacts(_ json: JSONValue) -> DispatchFacts {
        let approvals = (json["approvals"]?.arrayValue ?? []).map { approval in
            DispatchFacts.Approval(principal: approval["principal"]?.stringValue ?? "", decision: approval["decision"]?.stringValue ?? "",
                                   mac: approval["mac"]?.stringValue, holds: approval["holds"]?.boolValue ?? false)
        }
        var released: [Int: String] = [:]
        for release in json["released"]?.arrayValue ?? [] {
            if let claim = release["claim"]?.intValue, let mac = release["mac"]?.stringValue { released[claim] = mac }
        }
        let batch = json["batch"].flatMap { batch -> DispatchFacts.Batch? in
            guard let id = batch["id"]?.intValue else { return nil }
            return DispatchFacts.Batch(id: id, seal: batch["seal"]?.stringValue, round: batch["round"]?.intValue ?? 0,
                                       state: batch["state"]?.stringValue ?? "", attempt: batch["attempt"]?.intValue ?? Int.max)
        }
        return DispatchFacts(requesterHolds: json["requester_holds"]?.boolValue ?? false,
                             policyApprovals: json["policy_approvals"]?.intValue ?? 0, approvals: approvals, batch: batch,
                             released: released)
    }

    public func refuseDispatch(_ operation: OperationRecord, _ refusal: DispatchRefusal, audit: AuditEntry) throws(StoreError) {
        let query: PostgresQuery = """
            SELECT refuse_dispatch(\(operation.id)::uuid, \(refusal.reason.rawValue), \(refusal.message), \(refusal.isDrift),
                                   \(audit.requestJSON().text())::jsonb)
            """
        try run { () throws(PostgresError) in _ = try database.query(query.preparedOnce()) }
    }

    public func releaseDispatch(_ claimed: ApprovedDispatch, mac: String) throws(StoreError) {
        let kept = claimed.request
        let query: PostgresQuery = """
            SELECT release_dispatch(\(claimed.operation.id)::uuid, \(kept.name), \(kept.method), \(kept.path), \(kept.repeatSafe),
                                    \(kept.sealedBody.map(SQLText.bytea))::bytea, \(kept.keyID), \(kept.fingerprint), \(claimed.nonce),
                                    \(claimed.claim)::int, \(mac))
            """
        try run { () throws(PostgresError) in _ = try database.query(query.preparedOnce()) }
    }

    /// Cancels the operations whose approval time ran out; returns how many.
    public func expireApprovals() throws(StoreError) -> Int {
        let query: PostgresQuery = "SELECT expire_approvals() AS n"
        return try run { () throws(PostgresError) in try database.query(query.preparedOnce()).first?.decode(Int.self, "n") ?? 0 }
    }
}
