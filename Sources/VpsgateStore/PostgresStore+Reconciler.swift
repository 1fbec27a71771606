import Postgres
import VpsgateCore

/// The reconciler's leases, drift rows and scan watermark (docs/design.md#operations-follow-hostinger).
extension PostgresStore: ReconcilerStore {
    public func flagStale(busyBoundSeconds: Int) throws(StoreError) -> [OperationRecord] {
        let query = PostgresQuery(unsafeSQL: """
            UPDATE operations SET stale = true
            WHERE state = ANY(vpsgate_in_flight_states()) AND NOT stale
              AND coalesce(dispatched_at, created_at) < clock_timestamp() - make_interval(secs => $1)
            RETURNING \(OperationRow.columns)
            """, binds: [String(busyBoundSeconds)])
        return try transaction { database in
            let stale = try database.query(query.preparedOnce()).map(OperationRow.decode)
            for operation in stale {
                try database.query(AuditEntry.reconciler(operation, outcome: .stale).query.preparedOnce())
            }
            return stale
        }
    }

    public func claim(owner: String, leaseSeconds: Int, graceMilliseconds: Int, limit: Int) throws(StoreError) -> Claim {
        let claim = PostgresQuery(unsafeSQL: """
            UPDATE operations SET lease_owner = $1, lease_until = clock_timestamp() + make_interval(secs => $2), checks = checks + 1
            WHERE id IN (
                SELECT id FROM operations
                WHERE state = ANY(vpsgate_in_flight_states())
                  AND next_check_at <= clock_timestamp()
                  AND (lease_until IS NULL OR lease_until < clock_timestamp())
                  AND (state <> 'accepted' OR coalesce(dispatched_at, created_at) < clock_timestamp() - make_interval(secs => $3))
                ORDER BY next_check_at LIMIT $4
                FOR UPDATE SKIP LOCKED)
            RETURNING \(OperationRow.columns), checks, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us
            """, binds: [owner, String(leaseSeconds), String(Double(graceMilliseconds) / 1000), String(limit)])
        return try run { () throws(PostgresError) in
            let rows = try database.query(claim.preparedOnce())
            return Claim(operations: try rows.map { row throws(PostgresError) in (try OperationRow.decode(row), try row.decode(Int.self, "checks")) },
                         now: try rows.first?.decode(Int64.self, "now_us"))
        }
    }

    public func reschedule(_ operation: OperationRecord, owner: String, delayMilliseconds: Int, actionState: String?) throws(StoreError) {
        let query: PostgresQuery = """
            UPDATE operations SET lease_owner = NULL, lease_until = NULL,
                next_check_at = clock_timestamp() + make_interval(secs => \(Double(delayMilliseconds) / 1000)),
                hostinger_action_state = coalesce(\(actionState), hostinger_action_state)
            WHERE id = \(operation.id)::uuid AND lease_owner = \(owner)
            """
        try run { () throws(PostgresError) in _ = try database.query(query.preparedOnce()) }
    }

    /// Milliseconds until the earliest open operation is due for a look, as `claim` would
    /// take it (its lease run out; an `accepted` one past the grace period); nil when none is
    /// open. Negative when one is due now. Reads the `operations_reconcile` index's rows only.
    public func nextCheckDue(graceMilliseconds: Int) throws(StoreError) -> Int? {
        let query = PostgresQuery(unsafeSQL: """
            SELECT floor(extract(epoch FROM min(greatest(next_check_at, lease_until,
                       CASE WHEN state = 'accepted' THEN coalesce(dispatched_at, created_at) + make_interval(secs => $1) END))
                   - clock_timestamp()) * 1000)::bigint AS due_ms
            FROM operations WHERE state = ANY(vpsgate_in_flight_states())
            """, binds: [String(Double(graceMilliseconds) / 1000)])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce()).first?.decode(Int?.self, "due_ms") ?? nil
        }
    }

    public func recordDrift(_ drift: Drift, vps: Int, operationID: String?) throws(StoreError) {
        try run { () throws(PostgresError) in _ = try database.query(Self.driftQuery(drift, vps: vps, operationID: operationID).preparedOnce()) }
    }

    public func operations(holdingActions ids: [Int]) throws(StoreError) -> [Int: OperationRecord] {
        guard !ids.isEmpty else { return [:] }
        let query = PostgresQuery(unsafeSQL: "SELECT \(OperationRow.columns) FROM operations WHERE hostinger_action_id = ANY($1::bigint[])",
                                  binds: [SQLText.array(ids)])
        return try run { () throws(PostgresError) in
            var result: [Int: OperationRecord] = [:]
            for row in try database.query(query.preparedOnce()) {
                let operation = try OperationRow.decode(row)
                if let id = operation.actionID { result[id] = operation }
            }
            return result
        }
    }

    public func strayAttempts(vps: Int, excluding operationID: String, from: Int64, through: Int64,
                              actionIDs: [Int]) throws(StoreError) -> [StrayWindow] {
        let query = PostgresQuery(unsafeSQL: """
            SELECT operation_id::text AS operation_id, attempt, array_to_string(action_names, ',') AS names, hostinger_action_id,
                   (extract(epoch FROM started_at) * 1000000)::bigint AS started_us, (extract(epoch FROM ended_at) * 1000000)::bigint AS ended_us
            FROM operation_stray_attempts
            WHERE vps_id = $1 AND operation_id <> $2::uuid
              AND ((ended_at >= 'epoch'::timestamptz + $3 * interval '1 microsecond'
                    AND started_at <= 'epoch'::timestamptz + $4 * interval '1 microsecond')
                   OR hostinger_action_id = ANY($5::bigint[]))
            """, binds: [String(vps), operationID, String(from), String(through), SQLText.array(actionIDs)])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce()).map { row throws(PostgresError) in
                StrayWindow(operationID: try row.decode(String.self, "operation_id"),
                            attempt: StrayAttempt(number: try row.decode(Int.self, "attempt"), startedAt: Int64(try row.decode(Int.self, "started_us")),
                                                  endedAt: Int64(try row.decode(Int.self, "ended_us"))),
                            names: Set(try row.decode(String.self, "names").split(separator: ",").map(String.init)),
                            actionID: try row.decode(Int?.self, "hostinger_action_id"))
            }
        }
    }

    public func attribute(_ attributions: [StrayAttribution]) throws(StoreError) -> [StrayAttribution] {
        guard !attributions.isEmpty else { return [] }
        // One statement; an attempt already tied, or an action tied elsewhere meanwhile (by
        // another instance), is skipped rather than overwritten.
        let query = PostgresQuery(unsafeSQL: """
            UPDATE operation_stray_attempts s SET hostinger_action_id = t.action_id, attributed_at = clock_timestamp()
            FROM unnest($1::bigint[], $2::uuid[], $3::int[]) AS t(action_id, operation_id, attempt)
            WHERE s.operation_id = t.operation_id AND s.attempt = t.attempt AND s.hostinger_action_id IS NULL
              AND NOT EXISTS (SELECT FROM operation_stray_attempts o WHERE o.hostinger_action_id = t.action_id)
            RETURNING s.hostinger_action_id, s.operation_id::text AS operation_id, s.attempt
            """, binds: [SQLText.array(attributions.map(\.actionID)), SQLText.array(attributions.map(\.operationID)),
                         SQLText.array(attributions.map(\.attempt))])
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce()).map { row throws(PostgresError) in
                StrayAttribution(actionID: try row.decode(Int.self, "hostinger_action_id"), operationID: try row.decode(String.self, "operation_id"),
                                 attempt: try row.decode(Int.self, "attempt"))
            }
        }
    }

    public func leaseScan(owner: String) throws(StoreError) -> ScanLease? {
        let lease: PostgresQuery = """
            UPDATE reconciler_scans SET lease_owner = \(owner), lease_until = clock_timestamp() + interval '60 seconds'
            WHERE name = 'unclaimed_actions' AND (lease_until IS NULL OR lease_until < clock_timestamp())
            RETURNING (extract(epoch FROM watermark))::bigint AS watermark, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(lease.preparedOnce()).first else { return nil }
            return ScanLease(watermarkSeconds: try row.decode(Int64.self, "watermark"), now: try row.decode(Int64.self, "now_us"))
        }
    }

    public func recentlyChangedVPS() throws(StoreError) -> [Int] {
        let query: PostgresQuery = "SELECT DISTINCT vps_id FROM operations WHERE created_at > clock_timestamp() - interval '1 hour' AND vps_id IS NOT NULL"
        return try run { () throws(PostgresError) in try database.query(query.preparedOnce()).map { row throws(PostgresError) in try row.decode(Int.self, "vps_id") } }
    }

    public func releaseScan(owner: String, watermarkSeconds: Int64?) throws(StoreError) {
        let release: PostgresQuery = """
            UPDATE reconciler_scans SET lease_owner = NULL, lease_until = NULL,
                watermark = coalesce('epoch'::timestamptz + \(watermarkSeconds) * interval '1 second', watermark)
            WHERE name = 'unclaimed_actions' AND lease_owner = \(owner)
            """
        try run { () throws(PostgresError) in _ = try database.query(release.preparedOnce()) }
    }
}

/// The housekeeper's statements.
extension PostgresStore {
    /// Deletes idempotency keys past their time to live; returns how many. A key lives at
    /// least as long as its operation (or batch) is not terminal, and its `ttlSeconds` count
    /// from when that became terminal: an operation may await approval for up to 30 days,
    /// and a retry with its key must replay it, never create a second one. A key of neither
    /// goes `ttlSeconds` after its answer was stored.
    public func purgeExpiredKeys(ttlSeconds: Int) throws(StoreError) -> Int {
        try run { () throws(PostgresError) in
            try database.query(Self.purgeExpiredKeys(ttlSeconds: ttlSeconds).preparedOnce()).affectedRows
        }
    }

    /// One statement, as cheap with a million operations as with ten: the keys come from
    /// their `completed_at` index, and each key's operation, and batch (named by the key's
    /// `/v1/batches/{id}` location), by its primary key. "Terminal" is listed (not "open"),
    /// so a state added later keeps its keys until it is listed here. A terminal row without
    /// a completion time keeps its key (a batch cancelled while children still run).
    static func purgeExpiredKeys(ttlSeconds: Int) -> PostgresQuery {
        PostgresQuery(unsafeSQL: """
            DELETE FROM idempotency_keys k
            WHERE k.state = 'completed' AND k.completed_at < now() - make_interval(secs => $1)
              AND NOT EXISTS (
                  SELECT FROM operations o WHERE o.id = k.operation_id
                    AND (o.state <> ALL($2::text[]) OR o.completed_at IS NULL OR o.completed_at >= now() - make_interval(secs => $1)))
              AND NOT EXISTS (
                  SELECT FROM batches b WHERE b.id = substring(k.response_location FROM '^/v1/batches/([0-9]{1,18})$')::bigint
                    AND (b.state <> ALL($3::text[]) OR b.completed_at IS NULL OR b.completed_at >= now() - make_interval(secs => $1)))
            """, binds: [String(ttlSeconds), OperationRow.terminalStates, Self.terminalBatchStates])
    }

    /// A batch's terminal states (migration 0013). Halted is not one: it waits for a resume
    /// (or a cancel). A cancelled batch is, once its started children ended (completed_at).
    static let terminalBatchStates = "{cancelled,succeeded,completed_with_failures,denied,expired}"

    /// Writes the outcome writes that waited for the database.
    public func drainPendingOutcomes() {
        pending.drain(on: database, logger: logger)
    }

    /// Seals pending audit rows into the chain; returns how many.
    public func sealAudit(keys: SecretKeyRing, horizonSeconds: Double) throws -> Int {
        try AuditSealer(database: database, keys: keys).sealPending(horizonSeconds: horizonSeconds)
    }
}
