import Postgres
import VpsgateCore

/// The shared Hostinger budget and batches (migration 0013).
extension PostgresStore: FleetStore, BatchStore {
    public func takeBudget(name: String, intervalMicroseconds: Int, priority: String, maxWaitMilliseconds: Int) throws(StoreError)
        -> (granted: Bool, waitMilliseconds: Int) {
        let query: PostgresQuery = """
            SELECT granted, wait_ms FROM take_budget(\(name), make_interval(secs => \(Double(intervalMicroseconds) / 1_000_000)),
                                                     \(priority), make_interval(secs => \(Double(maxWaitMilliseconds) / 1000)))
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first else {
                throw PostgresError(.decoding, "take_budget returned nothing")
            }
            return (try row.decode(Bool.self, "granted"), try row.decode(Int.self, "wait_ms"))
        }
    }

    public func pauseBudget(name: String, milliseconds: Int, maxMilliseconds: Int) throws(StoreError) {
        let query: PostgresQuery = """
            SELECT pause_budget(\(name), clock_timestamp() + make_interval(secs => \(Double(milliseconds) / 1000)),
                                make_interval(secs => \(Double(maxMilliseconds) / 1000)))
            """
        try run { () throws(PostgresError) in _ = try database.query(query.preparedOnce(), retryOnStaleConnection: true) }
    }

    public func budgetState(name: String) throws(StoreError) -> (aheadSeconds: Double, pausedSeconds: Double) {
        let query: PostgresQuery = """
            SELECT greatest(extract(epoch FROM next_at - clock_timestamp()), 0)::float8 AS ahead,
                   greatest(coalesce(extract(epoch FROM paused_until - clock_timestamp()), 0), 0)::float8 AS paused
            FROM upstream_budgets WHERE name = \(name)
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first else { return (0, 0) }
            return (try row.decode(Double.self, "ahead"), try row.decode(Double.self, "paused"))
        }
    }

    public func createBatch(_ batch: NewBatch) throws(StoreError) -> BatchCreation {
        let children: JSONValue = .array(batch.children.map { child in
            .object([("vps_id", .number(String(child.vpsID))), ("name", .string(child.request.name)),
                     ("method", .string(child.request.method)), ("path", .string(child.request.path)),
                     ("repeat_safe", .bool(child.request.repeatSafe)),
                     ("sealed_body", child.request.sealedBody.map { .string(Hex.encode($0)) } ?? .null),
                     ("key_id", child.request.keyID.map { .string($0) } ?? .null)])
        })
        let request = batch.request
        let query: PostgresQuery = """
            SELECT decision, response_status, response_location, response_body
            FROM create_batch(\(batch.principal), \(batch.key), \(SQLText.array(batch.fingerprints))::text[], \(request.command.name),
                              \(request.command.permission.rawValue), \(batch.shown.text())::jsonb, \(request.maxInFlight)::int,
                              \(request.maxFailures)::int, \(request.pauseSeconds)::int, \(children.text())::jsonb,
                              \(batch.audit.identity.correlationID), \(batch.audit.requestJSON().text())::jsonb, \(batch.seal)::uuid)
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce()).first else { throw PostgresError(.decoding, "create_batch returned nothing") }
            let decision = try row.decode(String.self, "decision")
            if decision == "reused" { return .reused }
            if decision == "reason_required" { return .reasonRequired }
            let answer = StoredAnswer(status: try row.decode(Int.self, "response_status"),
                                      location: try row.decode(String?.self, "response_location"),
                                      body: SQLText.bytes(fromBytea: try row.decode(String.self, "response_body")))
            return decision == "created" ? .created(answer) : .replay(answer)
        }
    }

    public func batchJSON(id: Int) throws(StoreError) -> [UInt8]? {
        let query: PostgresQuery = "SELECT batch_json(b, true)::text AS body FROM batches b WHERE b.id = \(id)"
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).first.map { row throws(PostgresError) in
                Array(try row.decode(String.self, "body").utf8)
            }
        }
    }

    public func batchesJSON(principal: String, limit: Int, before: Int?) throws(StoreError) -> [UInt8] {
        let query: PostgresQuery = """
            SELECT jsonb_build_object('data', coalesce(jsonb_agg(batch_json(b, false) ORDER BY b.id DESC), '[]'::jsonb),
                                      'next_before', CASE WHEN count(*) = \(limit) THEN min(b.id) END)::text AS body
            FROM (SELECT * FROM batches x WHERE x.principal = \(principal) AND (\(before)::bigint IS NULL OR x.id < \(before)::bigint)
                  ORDER BY x.id DESC LIMIT \(limit)) b
            """
        return try run { () throws(PostgresError) in
            Array(try database.query(query.preparedOnce(), retryOnStaleConnection: true).first?.decode(String.self, "body").utf8 ?? "{}".utf8)
        }
    }

    public func batchAccess(id: Int, principal: String) throws(StoreError) -> BatchAccess {
        let query: PostgresQuery = """
            SELECT b.principal = \(principal) AS requester,
                   bool_and(vpsgate_grant_decision(\(principal), c.vps_id, 'vps:read') IS NULL) AS reads,
                   bool_and(vpsgate_grant_decision(\(principal), c.vps_id, 'vps:approve') IS NULL) AS approves
            FROM batches b JOIN batch_children c ON c.batch_id = b.id WHERE b.id = \(id) GROUP BY b.principal
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first else {
                return BatchAccess(exists: false, isRequester: false, readsAll: false, approvesAll: false)
            }
            return BatchAccess(exists: true, isRequester: try row.decode(Bool.self, "requester"),
                               readsAll: try row.decode(Bool?.self, "reads") ?? false, approvesAll: try row.decode(Bool?.self, "approves") ?? false)
        }
    }

    public func refusedTargets(principal: String, vps: [Int], permission: Permission) throws(StoreError) -> [Int] {
        let query: PostgresQuery = """
            SELECT v.id FROM unnest(\(SQLText.array(vps))::bigint[]) WITH ORDINALITY AS v(id, n)
            WHERE vpsgate_grant_decision(\(principal), v.id, \(permission.rawValue)) IS NOT NULL ORDER BY v.n
            """
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).map { row throws(PostgresError) in try row.decode(Int.self, "id") }
        }
    }

    public func batchSeal(id: Int) throws(StoreError) -> (seal: String?, round: Int)? {
        let query: PostgresQuery = "SELECT seal::text AS seal, round FROM batch_seal(\(id)::bigint)"
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce()).first else { return nil }
            return (try row.decode(String?.self, "seal"), try row.decode(Int.self, "round"))
        }
    }

    public func decideBatch(id: Int, principal: String, action: BatchAction, reason: String?, mac: String?, audit: AuditEntry) throws(StoreError)
        -> (result: String, state: String?) {
        let query: PostgresQuery = """
            SELECT result, state FROM decide_batch(\(id)::bigint, \(principal), \(action.rawValue), \(reason),
                                                   \(audit.identity.correlationID), \(audit.requestJSON().text())::jsonb, \(mac))
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce()).first else { throw PostgresError(.decoding, "decide_batch returned nothing") }
            return (try row.decode(String.self, "result"), try row.decode(String?.self, "state"))
        }
    }

    public func advanceBatch(owner: String, leaseSeconds: Int) throws(StoreError) -> Int? {
        let query: PostgresQuery = """
            SELECT advance_batch(\(owner), make_interval(secs => \(leaseSeconds)), \(DispatchCheck.maximumBatchAttempts),
                                 \(SQLText.array(DispatchCheck.batchRetryReasons))::text[]) AS id
            """
        return try run { () throws(PostgresError) in try database.query(query.preparedOnce()).first?.decode(Int?.self, "id") }
    }

    public func expireBatches() throws(StoreError) -> Int {
        let query: PostgresQuery = "SELECT expire_batches() AS n"
        return try run { () throws(PostgresError) in try database.query(query.preparedOnce()).first?.decode(Int.self, "n") ?? 0 }
    }

    public func batchCounts() throws(StoreError) -> [(state: String, count: Int)] {
        let query: PostgresQuery = "SELECT state, count(*) AS n FROM batches GROUP BY state ORDER BY state"
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).map { row throws(PostgresError) in
                (try row.decode(String.self, "state"), try row.decode(Int.self, "n"))
            }
        }
    }
}
