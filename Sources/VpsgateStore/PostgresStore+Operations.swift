import Postgres
import VpsgateCore

/// Operations: reads, and the one way an operation is settled after its request.
extension PostgresStore: OperationStore {
    public func operation(id: String) throws(StoreError) -> OperationRecord? {
        let query = PostgresQuery(unsafeSQL: "SELECT \(OperationRow.columns) FROM operations WHERE id = $1::uuid", binds: [id])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).first.map(OperationRow.decode)
        }
    }

    public func operations(_ filter: OperationFilter) throws(StoreError) -> [OperationRecord] {
        let query = PostgresQuery(unsafeSQL: """
            SELECT \(OperationRow.columns) FROM operations o
            WHERE CASE WHEN o.vps_id IS NOT NULL THEN $1::bigint[] IS NULL OR o.vps_id = ANY($1::bigint[])
                       ELSE $6::text IS NOT NULL AND vpsgate_may_read($6::text, o.resource_type, o.resource_id) END
              AND ($2::bigint IS NULL OR o.vps_id = $2::bigint)
              AND ($3::text IS NULL OR o.state = $3::text)
              AND ($4::uuid IS NULL OR (o.created_at, o.id) < (SELECT created_at, id FROM operations WHERE id = $4::uuid))
              AND ($7::text IS NULL OR o.requested_by = $7::text)
              AND ($8::text IS NULL OR o.command = $8::text)
              AND ($9::text IS NULL OR (o.resource_type = $9::text AND ($10::bigint IS NULL OR coalesce(o.vps_id, o.resource_id) = $10::bigint)))
              AND ($11::bigint IS NULL OR o.created_at >= to_timestamp($11::bigint / 1000000.0))
              AND ($12::bigint IS NULL OR o.created_at < to_timestamp($12::bigint / 1000000.0))
            ORDER BY o.created_at DESC, o.id DESC LIMIT $5::int
            """, binds: [filter.readable.map { SQLText.array($0.sorted()) }, filter.vpsID.map(String.init), filter.state?.rawValue,
                         filter.before, String(filter.limit), filter.principal, filter.requester, filter.command,
                         filter.resource?.kind.rawValue, filter.resource?.id.map(String.init), filter.since.map(String.init), filter.until.map(String.init)])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).map(OperationRow.decode)
        }
    }

    public func claimRefresh(id: String, intervalMilliseconds: Int) throws(StoreError) -> Bool {
        let claim: PostgresQuery = """
            UPDATE operations SET refreshed_at = clock_timestamp()
            WHERE id = \(id)::uuid AND state = ANY(vpsgate_in_flight_states())
              AND (refreshed_at IS NULL OR refreshed_at < clock_timestamp() - make_interval(secs => \(Double(intervalMilliseconds) / 1000)))
            RETURNING id
            """
        return try run { () throws(PostgresError) in try !database.query(claim.preparedOnce()).isEmpty }
    }

    /// One transaction: the compare-and-set move (times by the database's clock), the key a
    /// vanished instance left in flight, the final row of a request whose instance never
    /// recorded its answer, drift, and the audit row.
    public func settle(_ operation: OperationRecord, _ transition: OperationTransition, audit: AuditEntry,
                       leaseOwner: String?) throws(StoreError) -> OperationRecord? {
        var updated = transition.applied(to: operation)
        let move: PostgresQuery = """
            UPDATE operations SET state = \(updated.state.rawValue), hostinger_action_id = \(updated.actionID),
                hostinger_action_name = \(updated.actionName), hostinger_action_state = \(updated.actionState),
                error = \(updated.error?.text())::jsonb, updated_at = clock_timestamp(),
                completed_at = CASE WHEN \(updated.state.isTerminal) THEN clock_timestamp() END,
                lease_owner = NULL, lease_until = NULL,
                next_check_at = clock_timestamp() + make_interval(secs => \(Double(transition.nextCheckMilliseconds) / 1000))
            WHERE id = \(operation.id)::uuid AND state = \(operation.state.rawValue)
              AND (\(leaseOwner)::text IS NULL OR lease_owner = \(leaseOwner))
            RETURNING (extract(epoch FROM updated_at) * 1000000)::bigint AS now_us
            """
        return try transaction { database -> OperationRecord? in
            guard let now = try database.query(move.preparedOnce()).first?.decode(Int64.self, "now_us") else { return nil }
            updated.updatedAt = now
            updated.completedAt = updated.state.isTerminal ? now : nil
            if transition.key == .completeIfInFlight {
                // A key still in flight belongs to an instance that never finished: answer its
                // retries with the operation, as it would have.
                let key: PostgresQuery = """
                    UPDATE idempotency_keys SET state = 'completed', response_status = 202, response_location = \(updated.location),
                        response_body = \(SQLText.bytea(updated.json()))::bytea, completed_at = now()
                    WHERE operation_id = \(operation.id)::uuid AND state = 'in_flight'
                    """
                try database.query(key.preparedOnce())
                let abandoned: PostgresQuery = "SELECT answer_abandoned_request(\(operation.id)::uuid) AS written"
                try database.query(abandoned.preparedOnce())
            }
            if let drift = transition.drift, let vps = operation.vpsID {
                try database.query(Self.driftQuery(drift, vps: vps, operationID: operation.id).preparedOnce())
            }
            var row = audit
            row.hostingerActionID = updated.actionID ?? audit.hostingerActionID
            try database.query(row.query.preparedOnce())
            return updated
        }
    }

    public func recordProgress(_ operation: OperationRecord, actionState: String) throws(StoreError) {
        let query: PostgresQuery = """
            UPDATE operations SET state = \(OperationState.following(actionState: actionState).rawValue),
                hostinger_action_state = \(actionState), updated_at = clock_timestamp()
            WHERE id = \(operation.id)::uuid AND state = \(operation.state.rawValue)
              AND hostinger_action_state IS DISTINCT FROM \(actionState)
            """
        try run { () throws(PostgresError) in _ = try database.query(query.preparedOnce()) }
    }

    static func driftQuery(_ drift: Drift, vps: Int, operationID: String?) -> PostgresQuery {
        """
        INSERT INTO drift_events (instance, vps_id, operation_id, hostinger_action_id, kind, vpsgate_view, hostinger_view)
        VALUES (vpsgate_session_instance(), \(vps), \(operationID)::uuid, \(drift.actionID), \(drift.kind.rawValue),
                \(drift.vpsgateView?.text())::jsonb, \(drift.hostingerView?.text())::jsonb)
        ON CONFLICT DO NOTHING
        """
    }
}
