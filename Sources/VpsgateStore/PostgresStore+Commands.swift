import Postgres
import VpsgateCore

/// The command path's two round trips: `begin_command` and `finish_command` (docs/design.md#idempotency).
extension PostgresStore: CommandStore {
    /// What each decision `begin_command` answers itself means, as it is passed to it.
    static let auditAnswers = BeginDecision.Kind.auditAnswers.text()

    public func begin(_ request: BeginRequest) throws(StoreError) -> BeginDecision {
        let elapsed = request.audit.durationMilliseconds ?? 0
        let audit = request.audit.requestJSON(extra: [("elapsed_ms", .number(String(elapsed)))]).text()
        let kept = request.request
        var members: [(key: String, value: JSONValue)] = kept.map { kept in
            [("name", .string(kept.name)), ("method", .string(kept.method)), ("path", .string(kept.path)),
             ("repeat_safe", .bool(kept.repeatSafe))]
        } ?? []
        // What the call reaches besides its target, for the freeze decision (absent: nothing).
        switch request.reach {
        case .none: break
        case .vps(let ids): members.append(("reaches_vps", .array(ids.map { .number(String($0)) })))
        case .unknown: members.append(("reaches_vps", .null))
        }
        let keptRequest = JSONValue.object(members)
        let query: PostgresQuery = """
            SELECT * FROM begin_command(\(request.principal), \(request.key), \(SQLText.array(request.fingerprints))::text[],
                \(request.target.kind.rawValue), \(request.target.ownID)::bigint, \(request.target.vpsID)::bigint, \(request.command),
                \(request.operationID)::uuid, \(request.audit.identity.correlationID),
                make_interval(secs => \(request.busyBoundSeconds)), \(audit)::jsonb, \(Self.auditAnswers)::jsonb,
                \(request.permission.rawValue), \(request.emergencyReason), \(keptRequest.text())::jsonb,
                \(kept?.sealedBody.map(SQLText.bytea))::bytea, \(kept?.keyID), \(request.minimumApprovals)::int)
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce()).first else {
                throw PostgresError(.decoding, "begin_command returned nothing")
            }
            let decision = try row.decode(String.self, "decision")
            switch BeginDecision.Kind(rawValue: decision) {
            case .proceed?:
                return .proceed(createdAt: Int64(try row.decode(Int.self, "created_us")))
            case .replay?:
                return .replay(StoredAnswer(status: try row.decode(Int.self, "response_status"),
                                            location: try row.decode(String?.self, "response_location"),
                                            body: SQLText.bytes(fromBytea: try row.decode(String.self, "response_body"))))
            case .notFound?:
                return .notFound
            case .forbidden?:
                return .forbidden
            case .inUse?:
                return .inUse
            case .reused?:
                return .reused
            case .busy?:
                return .busy(blockingOperation: try row.decode(String.self, "blocking_operation"))
            case .frozen?:
                return .frozen(until: Int64(try row.decode(Int.self, "frozen_until_us")))
            case .awaitingApproval?:
                return .awaitingApproval(createdAt: Int64(try row.decode(Int.self, "created_us")),
                                         approvalsRequired: try row.decode(Int.self, "approvals_required"))
            case .reasonRequired?:
                return .reasonRequired
            case nil:
                throw PostgresError(.decoding, "begin_command decided \(decision)")
            }
        }
    }

    public func finish(_ record: FinishRecord) -> FinishWrite {
        let operation = record.operation
        let audit = record.audit.requestJSON(extra: [
            ("outcome", .string(record.audit.outcome.rawValue)),
            ("http_status", record.audit.httpStatus.map { .number(String($0)) } ?? .null),
            ("problem_type", record.audit.problemType.map { .string($0) } ?? .null),
            ("duration_ms", record.audit.durationMilliseconds.map { .number(String($0)) } ?? .null),
        ]).text()
        var query: PostgresQuery = """
            SELECT finish_command(\(record.principal), \(record.key), \(operation.id)::uuid, \(operation.state.rawValue),
                \(operation.actionID), \(operation.actionName), \(operation.actionState), \(operation.error?.text())::jsonb,
                \(operation.updatedAt), \(record.keyEffect == .store), \(record.answer.status), \(record.answer.location),
                \(SQLText.bytea(record.answer.body))::bytea, \(audit)::jsonb, \(operation.result?.text())::jsonb)
            """
        let strays = record.strayAttempts
        if !strays.isEmpty, let vps = operation.vpsID, let names = ActionMatcher.expectedNames[operation.command] {
            // Rare (a repeat-safe attempt answered 5xx or lost): its windows go in the same
            // statement, so still one round trip and one transaction; again when replayed.
            let n = query.binds.count
            query = PostgresQuery(unsafeSQL: """
                WITH stray AS (
                    INSERT INTO operation_stray_attempts (operation_id, attempt, vps_id, started_at, ended_at, action_names)
                    SELECT $\(n + 1)::uuid, a.number, $\(n + 2)::bigint, 'epoch'::timestamptz + a.started_us * interval '1 microsecond',
                           'epoch'::timestamptz + a.ended_us * interval '1 microsecond', $\(n + 3)::text[]
                    FROM unnest($\(n + 4)::int[], $\(n + 5)::bigint[], $\(n + 6)::bigint[]) AS a(number, started_us, ended_us)
                    ON CONFLICT DO NOTHING)
                """ + query.sql,
                binds: query.binds + [operation.id, String(vps), SQLText.array(names.sorted()), SQLText.array(strays.map(\.number)),
                                      SQLText.array(strays.map(\.startedAt)), SQLText.array(strays.map(\.endedAt))])
        }
        var write = FinishWrite.recorded
        do {
            try database.queryRetrying(query.preparedOnce())
        } catch {
            // Hostinger has acted and the client gets its answer; the record of it waits in
            // memory and is written as soon as the database takes writes again.
            pending.add(query, operationID: operation.id, logger: logger)
            write = .deferred(reason: error.description)
        }
        pending.drain(on: database, logger: logger)
        return write
    }

    public func plan(principal: String, target: Target, command: String, permission: Permission, minimumApprovals: Int,
                     busyBoundSeconds: Int, emergency: Bool, reach: VPSReach) throws(StoreError) -> PlanVerdict {
        let query: PostgresQuery = """
            SELECT decision, blocking_operation::text AS blocking, (extract(epoch FROM frozen_until) * 1000000)::bigint AS frozen_us,
                   freeze_reason, policy_subject, policy_vps_id, approvals_required,
                   extract(epoch FROM approval_ttl)::bigint AS ttl_s
            FROM vpsgate_resource_command_decision(\(principal), \(target.kind.rawValue), \(target.ownID)::bigint,
                                                   \(target.vpsID)::bigint, \(command), \(permission.rawValue),
                                                   make_interval(secs => \(busyBoundSeconds)), \(emergency), \(minimumApprovals)::int, false,
                                                   \(Self.reachArray(reach))::bigint[])
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first else {
                throw PostgresError(.decoding, "vpsgate_resource_command_decision returned nothing")
            }
            let decision: PlanVerdict.Decision
            switch try row.decode(String.self, "decision") {
            case "not_found": decision = .notFound
            case "forbidden": decision = .forbidden
            case "frozen": decision = .frozen(until: Int64(try row.decode(Int.self, "frozen_us")),
                                              reason: try row.decode(String.self, "freeze_reason"))
            case "needs_approval": decision = .needsApproval
            case "busy": decision = .busy(blockingOperation: try row.decode(String.self, "blocking"))
            case "proceed": decision = .proceed
            case let other: throw PostgresError(.decoding, "vpsgate_resource_command_decision decided \(other)")
            }
            let policy = try row.decode(String?.self, "policy_subject").map { subject throws(PostgresError) in
                ApprovalPolicy(subject: subject, vpsID: try row.decode(Int?.self, "policy_vps_id"),
                               approvals: try row.decode(Int?.self, "approvals_required") ?? 0,
                               ttlSeconds: try row.decode(Int?.self, "ttl_s") ?? 0)
            }
            return PlanVerdict(decision: decision, policy: policy, approvalsRequired: try row.decode(Int?.self, "approvals_required") ?? 0)
        }
    }

    /// A reach as the decision takes it: the VPS ids, `{}` for none, NULL when not known.
    static func reachArray(_ reach: VPSReach) -> String? {
        switch reach {
        case .none: SQLText.array([String]())
        case .vps(let ids): SQLText.array(ids.map(String.init))
        case .unknown: nil
        }
    }

    public func anyVPSFrozen() throws(StoreError) -> Bool {
        // A freeze over everything holds every command already, whatever it reaches.
        let query: PostgresQuery = """
            SELECT EXISTS (SELECT FROM freeze_windows
                           WHERE vps_id IS NOT NULL AND starts_at <= clock_timestamp() AND ends_at > clock_timestamp()) AS frozen
            """
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).first?.decode(Bool.self, "frozen") ?? false
        }
    }
}

/// Tokens and grants.
extension PostgresStore: AuthorizationStore {
    public func principal(tokenHash: String) throws(StoreError) -> (principal: String, validForMilliseconds: Int?)? {
        let query: PostgresQuery = """
            SELECT principal, (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint AS valid_ms FROM api_tokens
            WHERE token_hash = \(tokenHash) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            """
        return try run { () throws(PostgresError) in
            guard let row = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first else { return nil }
            return (try row.decode(String.self, "principal"), try row.decode(Int?.self, "valid_ms"))
        }
    }

    public func access(_ principal: String, to target: Target, for permission: Permission) throws(StoreError) -> Access {
        let query: PostgresQuery = """
            SELECT vpsgate_resource_decision(\(principal), \(target.kind.rawValue), \(target.id)::bigint, \(permission.rawValue)) AS decision
            """
        return try run { () throws(PostgresError) in
            let decision = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first?.decode(String?.self, "decision")
            guard let access = Access(decision: decision) else {
                throw PostgresError(.decoding, "vpsgate_resource_decision answered \(decision ?? "NULL")")
            }
            return access
        }
    }

    public func mayRead(_ principal: String, _ target: Target) throws(StoreError) -> Bool {
        let query: PostgresQuery = """
            SELECT vpsgate_may_read(\(principal), \(target.kind.rawValue), \(target.id)::bigint) AS may_read
            """
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).first?.decode(Bool.self, "may_read") ?? false
        }
    }

    public func grants(of principal: String) throws(StoreError) -> [(resource: Target, role: String, permissions: [String])] {
        let query: PostgresQuery = """
            SELECT g.resource_type, g.resource_id, g.role, array_to_string(array_agg(rp.permission ORDER BY rp.permission), ',') AS permissions
            FROM grants g JOIN role_permissions rp ON rp.role = g.role
            WHERE g.principal = \(principal) AND (g.expires_at IS NULL OR g.expires_at > now())
            GROUP BY g.id, g.resource_type, g.resource_id, g.role ORDER BY g.id
            """
        return try run { () throws(PostgresError) in
            var grants: [(resource: Target, role: String, permissions: [String])] = []
            for row in try database.query(query.preparedOnce(), retryOnStaleConnection: true) {
                guard let kind = ResourceKind(rawValue: try row.decode(String.self, "resource_type")) else { continue }
                grants.append((Target(kind, try row.decode(Int?.self, "resource_id")), try row.decode(String.self, "role"),
                               try row.decode(String.self, "permissions").split(separator: ",").map(String.init)))
            }
            return grants
        }
    }

    public func readableScope(_ principal: String, of kind: ResourceKind) throws(StoreError) -> ReadScope {
        let query: PostgresQuery = """
            SELECT DISTINCT g.resource_id FROM grants g JOIN role_permissions rp ON rp.role = g.role
            WHERE g.principal = \(principal) AND g.resource_type = \(kind.rawValue)
              AND rp.permission = \(kind.readPermission?.rawValue ?? "-")
              AND (g.expires_at IS NULL OR g.expires_at > now())
            """
        return try run { () throws(PostgresError) in
            var ids = Set<Int>()
            for row in try database.query(query.preparedOnce(), retryOnStaleConnection: true) {
                guard let id = try row.decode(Int?.self, "resource_id") else { return ReadScope(all: true, ids: []) }
                ids.insert(id)
            }
            return ReadScope(all: false, ids: ids)
        }
    }
}

extension PostgresStore: AuditStore {
    public func record(_ entry: AuditEntry) throws(StoreError) {
        try run { () throws(PostgresError) in _ = try database.query(entry.query.preparedOnce()) }
    }
}

extension PostgresStore: HealthStore {
    public func schema() throws(StoreError) -> SchemaState {
        do {
            return try Migrator(migrations: migrations, objects: objects).isCurrent(on: database) ? .current : .behind
        } catch where error.sqlState == .undefinedTable {
            return .absent
        } catch {
            throw StoreError(error)
        }
    }

    public func gauges() throws(StoreError) -> DatabaseGauges {
        // The counts as of the last fold plus the changes appended since: no scan of operations.
        let byState: PostgresQuery = """
            SELECT s.state, (coalesce((SELECT sum(c.n) FROM operation_state_counts c WHERE c.state = s.state), 0)
                             + coalesce((SELECT sum(d.delta) FROM operation_state_changes d WHERE d.state = s.state), 0))::bigint AS n
            FROM unnest(\(SQLText.array(OperationState.allCases.map(\.rawValue)))::text[]) AS s(state)
            """
        let lag: PostgresQuery = """
            SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 AS lag,
                   count(*) FILTER (WHERE stale) AS stale
            FROM operations WHERE state = ANY(vpsgate_in_flight_states())
            """
        let unsealed: PostgresQuery = """
            SELECT count(*) AS n FROM audit_events WHERE id > coalesce((SELECT max(audit_id) FROM audit_seals), 0)
            """
        // Events this snapshot sees that the feed holds back (read_events shows only those
        // below pg_snapshot_xmin): committed, but after a transaction still open started.
        let feedLag: PostgresQuery = """
            SELECT coalesce(extract(epoch FROM clock_timestamp() - min(occurred_at)), 0)::float8 AS lag
            FROM events WHERE xid >= pg_snapshot_xmin(pg_current_snapshot())
            """
        return try run { () throws(PostgresError) in
            var states: [(state: OperationState, count: Int)] = []
            for row in try database.query(byState.preparedOnce(), retryOnStaleConnection: true) {
                if let state = OperationState(rawValue: try row.decode(String.self, "state")) {
                    states.append((state, try row.decode(Int.self, "n")))
                }
            }
            let open = try database.query(lag.preparedOnce()).first
            let sealed = try database.query(unsealed.preparedOnce()).first
            let feed = try database.query(feedLag.preparedOnce()).first
            return DatabaseGauges(operationsByState: states, oldestOpenSeconds: try open?.decode(Double.self, "lag") ?? 0,
                                  stale: try open?.decode(Int.self, "stale") ?? 0, unsealedAuditRows: try sealed?.decode(Int.self, "n") ?? 0,
                                  eventFeedLagSeconds: max(try feed?.decode(Double.self, "lag") ?? 0, 0))
        }
    }

    public func insertBenchmarkRow() throws(StoreError) {
        try run { () throws(PostgresError) in
            _ = try database.query(PostgresQuery(stringLiteral: "INSERT INTO bench_floor DEFAULT VALUES").preparedOnce())
        }
    }
}
