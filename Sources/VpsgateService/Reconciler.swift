import Hostinger
import Logging
import Platform
import Postgres
import Synchronization
import VpsgateCore

/// Settles operations from Hostinger's own records (SPEC section 5), in every instance.
///
/// Work is shared through PostgreSQL: a batch of operations is leased with
/// `FOR UPDATE SKIP LOCKED` and an expiry, so each is worked by one instance at a time and
/// a dead instance's leases simply run out. `running` operations follow their action;
/// `unknown` ones, and `accepted` ones whose instance went quiet past the grace period, are
/// matched against the VPS's action list: found ⇒ adopted and followed; absent after the
/// settling window ⇒ `failed` with `not_applied`. The reconciler never sends a mutation.
public final class Reconciler: Sendable {
    private let context: ServiceContext
    private let loop = BackgroundLoop()

    static let batchSize = 10
    static let leaseSeconds = 30

    public init(context: ServiceContext) {
        self.context = context
    }

    struct State {
        var worker: Worker
        var lastScan = 0
    }

    /// Starts the loop on a thread of its own; it owns its database connection and curl handle.
    public func start() {
        let context = self.context
        loop.start(setUp: { State(worker: Worker(context: context)) }, pass: { state, stopping in
            var worked = 0
            do {
                worked = try state.worker.tick(stopping: stopping)
                let now = MonotonicClock.milliseconds()
                if now - state.lastScan >= context.configuration.driftScanIntervalMilliseconds {
                    state.lastScan = now
                    try state.worker.scanForUnclaimedActions()
                }
            } catch {
                state.worker.logger.warning("reconciler: pass failed", metadata: ["error": "\(error)"])
            }
            return worked < Self.batchSize ? context.configuration.reconcileIntervalMilliseconds : 0
        })
    }

    /// Asks the loop to stop and waits (bounded) for it to finish its current item.
    public func stop(timeoutMilliseconds: Int = 5000) {
        loop.stop(timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// The reconciler's thread-confined state and its steps.
struct Worker {
    let context: ServiceContext
    let database: PostgresConnection
    let hostinger: HostingerClient
    var logger: Logger
    /// The database's clock, read with each claim, and the monotonic time it was read at:
    /// every time the reconciler compares or stores is the database's (SPEC section 17).
    private var databaseClock: (microseconds: Int64, readAt: Int64) = (0, Clock.monotonicMicroseconds())

    /// Now, by the database's clock (microseconds since the epoch).
    func databaseNow() -> Int64 { databaseClock.microseconds + (Clock.monotonicMicroseconds() - databaseClock.readAt) }

    private mutating func readDatabaseClock(_ microseconds: Int64) {
        databaseClock = (microseconds, Clock.monotonicMicroseconds())
    }

    init(context: ServiceContext) {
        self.context = context
        database = PostgresConnection(url: context.configuration.databaseURL, applicationName: "vpsgate reconciler \(context.instance)")
        hostinger = context.makeHostingerClient(logger: context.logger)
        logger = context.logger
        logger[metadataKey: "component"] = "reconciler"
    }

    // MARK: - One pass

    /// Flags stale operations, then leases and settles a batch; returns how many it looked at.
    mutating func tick(stopping: borrowing Atomic<Bool>) throws -> Int {
        try flagStale()
        let configuration = context.configuration
        let claim = PostgresQuery(unsafeSQL: """
            UPDATE operations SET lease_owner = $1, lease_until = clock_timestamp() + make_interval(secs => $2), checks = checks + 1
            WHERE id IN (
                SELECT id FROM operations
                WHERE state IN ('accepted', 'dispatched', 'running', 'unknown')
                  AND next_check_at <= clock_timestamp()
                  AND (lease_until IS NULL OR lease_until < clock_timestamp())
                  AND (state <> 'accepted' OR created_at < clock_timestamp() - make_interval(secs => $3))
                ORDER BY next_check_at LIMIT $4
                FOR UPDATE SKIP LOCKED)
            RETURNING \(Responder.operationColumns), checks, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us
            """, binds: [context.instance, String(Reconciler.leaseSeconds), String(Double(configuration.reconcileGraceMilliseconds) / 1000),
                         String(Reconciler.batchSize)])
        let rows = try database.query(claim.preparedOnce())
        if let now = try rows.first?.decode(Int64.self, "now_us") { readDatabaseClock(now) }
        for row in rows {
            if stopping.load(ordering: .acquiring) { break }
            let operation = try Responder.operation(from: row)
            let checks = try row.decode(Int.self, "checks")
            do {
                try settle(operation, checks: checks)
            } catch {
                logger.warning("reconciler: could not settle", metadata: ["operation_id": "\(operation.id)", "error": "\(error)"])
            }
        }
        return rows.count
    }

    private mutating func settle(_ operation: OperationRecord, checks: Int) throws {
        let correlation = CorrelationID(validating: operation.correlationID)
        let trace = TraceContext(continuing: nil)
        if let actionID = operation.actionID {
            let result = hostinger.call(.action(vm: operation.vpsID, id: actionID), correlationID: correlation, trace: trace)
            if result.outcome == .rejected && result.status == 404 {
                if try settleIfVirtualMachineIsGone(operation, correlation: correlation, trace: trace) { return }
                // vpsgate believed this action exists; Hostinger does not know it. Hostinger wins.
                try drift(.actionUnknown, operation, actionID: actionID, vpsgate: .object([
                    ("state", .string(operation.state.rawValue)), ("action_state", operation.actionState.map { .string($0) } ?? .null),
                ]), hostinger: .object([("status", .number("404")), ("message", result.message.map { .string($0) } ?? .null)]))
                try transition(operation, to: .failed, action: nil, error: .object([("reason", .string("action_unknown"))]), outcome: "action_unknown")
                return
            }
            guard result.outcome == .succeeded, let action = result.body.flatMap(HostingerActionRecord.init(json:)) else {
                return try reschedule(operation, checks: checks, reason: "action read failed: \(result.outcome.rawValue)")
            }
            let state = OperationState.following(actionState: action.state)
            if state.isTerminal {
                let error: JSONValue? = state == .failed
                    ? .object([("reason", .string("action_error")), ("action", action.json)])
                    : nil
                try transition(operation, to: state, action: action, error: error, outcome: state.rawValue)
            } else {
                try reschedule(operation, checks: checks, reason: nil, actionState: action.state)
            }
            return
        }

        // No action known: the answer was lost. Read Hostinger's list back over the window.
        let latestDispatch = operation.createdAt + Int64(context.configuration.hostingerDeadlineMilliseconds) * 1000
        let windowStart = operation.createdAt / 1_000_000 - 2
        var actions: [HostingerActionRecord] = []
        var coversWindow = false
        for page in 1...Self.maximumActionPages {
            let result = hostinger.call(.actions(vm: operation.vpsID, page: page), correlationID: correlation, trace: trace)
            if result.outcome == .rejected && result.status == 404 && page == 1 {
                if try settleIfVirtualMachineIsGone(operation, correlation: correlation, trace: trace) { return }
            }
            guard result.outcome == .succeeded, let list = result.body.flatMap(HostingerActionPage.init(json:)) else {
                return try reschedule(operation, checks: checks, reason: "action list read failed: \(result.outcome.rawValue)")
            }
            actions += list.actions
            if list.isLast || list.reachesBack(to: windowStart) {
                coversWindow = true
                break
            }
        }
        let windowClosesAt = latestDispatch + Int64(context.configuration.settleWindowMilliseconds) * 1000
        let decision = ActionMatcher.decide(
            command: operation.command, createdAt: operation.createdAt, latestDispatch: latestDispatch, actions: actions,
            adopted: try adoptedIDs(actions.map(\.id)), windowClosed: databaseNow() >= windowClosesAt,
            listCoversWindow: coversWindow)
        switch decision {
        case .adopt(let action):
            let state = OperationState.following(actionState: action.state)
            try transition(operation, to: state, action: action, error: state == .failed ? .object([("reason", .string("action_error"))]) : nil,
                           outcome: "adopted")
        case .wait:
            try reschedule(operation, checks: checks, reason: nil)
        case .notApplied:
            try transition(operation, to: .failed, action: nil, error: .object([("reason", .string("not_applied"))]), outcome: "not_applied")
        case .ambiguous(let candidates):
            // It may have happened: vpsgate cannot tell, so it says so and keeps looking
            // (an action may still be adopted by name), never declaring it not applied.
            if operation.state == .unknown, operation.error?["reason"]?.stringValue == "ambiguous" {
                return try reschedule(operation, checks: checks, reason: nil, delayMilliseconds: Self.ambiguousRecheckMilliseconds)
            }
            try transition(operation, to: .unknown, action: nil, error: .object([
                ("reason", .string("ambiguous")),
                ("detail", .string(coversWindow
                    ? "Hostinger shows actions in the operation's window that vpsgate cannot tie to it; check them."
                    : "Hostinger's action list could not be read back far enough to rule it out.")),
                ("candidates", .array(candidates.map(\.json))),
            ]), outcome: "ambiguous", nextCheckMilliseconds: Self.ambiguousRecheckMilliseconds)
        }
    }

    static let maximumActionPages = 5
    static let ambiguousRecheckMilliseconds = 60_000

    /// Hostinger is the source of truth: when it no longer knows the operation's VM (a 404
    /// for the VM itself), the operation failed for that reason. Returns whether it settled.
    private mutating func settleIfVirtualMachineIsGone(_ operation: OperationRecord, correlation: CorrelationID,
                                                       trace: TraceContext) throws -> Bool {
        let vm = hostinger.call(.virtualMachine(operation.vpsID), correlationID: correlation, trace: trace)
        guard vm.outcome == .rejected, vm.status == 404 else { return false }
        try drift(.vpsNotFound, operation, actionID: operation.actionID, vpsgate: .object([("state", .string(operation.state.rawValue))]),
                  hostinger: .object([("status", .number("404")), ("message", vm.message.map { .string($0) } ?? .null)]))
        try transition(operation, to: .failed, action: nil, error: .object([
            ("reason", .string("vps_not_found")), ("detail", .string("Hostinger no longer knows VPS \(operation.vpsID).")),
        ]), outcome: "vps_not_found")
        return true
    }

    // MARK: - Writes

    /// Moves an operation to `state` (only if nobody else moved it), completes a key left in
    /// flight by a vanished instance, and writes the reconciler's audit row.
    private func transition(_ operation: OperationRecord, to state: OperationState, action: HostingerActionRecord?, error: JSONValue?,
                            outcome: String, nextCheckMilliseconds: Int = 1000) throws {
        let now = databaseNow()
        var updated = operation
        updated.state = state
        if let action {
            updated.actionID = action.id
            updated.actionName = action.name
            updated.actionState = action.state
        }
        updated.error = error ?? operation.error
        updated.updatedAt = now
        updated.completedAt = state.isTerminal ? now : nil
        try database.transaction { database in
            let query: PostgresQuery = """
                UPDATE operations SET state = \(state.rawValue), hostinger_action_id = \(updated.actionID),
                    hostinger_action_name = \(updated.actionName), hostinger_action_state = \(updated.actionState),
                    error = \(updated.error?.text())::jsonb,
                    updated_at = 'epoch'::timestamptz + \(now) * interval '1 microsecond',
                    completed_at = CASE WHEN \(state.isTerminal) THEN 'epoch'::timestamptz + \(now) * interval '1 microsecond' END,
                    lease_owner = NULL, lease_until = NULL,
                    next_check_at = clock_timestamp() + make_interval(secs => \(Double(nextCheckMilliseconds) / 1000))
                WHERE id = \(operation.id)::uuid AND state = \(operation.state.rawValue) AND lease_owner = \(context.instance)
                RETURNING id
                """
            guard try !database.query(query.preparedOnce()).isEmpty else { return }
            // A key still in flight belongs to an instance that never finished: answer its
            // retries with the operation, as it would have.
            let key: PostgresQuery = """
                UPDATE idempotency_keys SET state = 'completed', response_status = 202, response_location = \(updated.location),
                    response_body = \(Responder.byteaHex(updated.json()))::bytea, completed_at = now()
                WHERE operation_id = \(operation.id)::uuid AND state = 'in_flight'
                """
            try database.query(key.preparedOnce())
            // A request whose instance never recorded its answer gets its final row now.
            let abandoned: PostgresQuery = "SELECT answer_abandoned_request(\(operation.id)::uuid) AS written"
            try database.query(abandoned.preparedOnce())
            try audit(updated, outcome: outcome, on: database)
        }
        logger.info("reconciler: settled", metadata: [
            "operation_id": "\(operation.id)", "vps_id": "\(operation.vpsID)", "command": "\(operation.command)",
            "from": "\(operation.state.rawValue)", "to": "\(state.rawValue)", "outcome": "\(outcome)",
            "hostinger_action_id": "\(updated.actionID.map(String.init) ?? "-")",
            "age_ms": "\((now - operation.createdAt) / 1000)",
        ])
    }

    private func reschedule(_ operation: OperationRecord, checks: Int, reason: String?, actionState: String? = nil,
                            delayMilliseconds: Int? = nil) throws {
        let delay = delayMilliseconds ?? min(1000 << min(max(checks - 1, 0), 4), 10_000)
        let query: PostgresQuery = """
            UPDATE operations SET lease_owner = NULL, lease_until = NULL,
                next_check_at = clock_timestamp() + make_interval(secs => \(Double(delay) / 1000)),
                hostinger_action_state = coalesce(\(actionState), hostinger_action_state)
            WHERE id = \(operation.id)::uuid AND lease_owner = \(context.instance)
            """
        try database.query(query.preparedOnce())
        if let reason {
            logger.warning("reconciler: not settled yet", metadata: ["operation_id": "\(operation.id)", "reason": "\(reason)", "retry_ms": "\(delay)"])
        }
    }

    private func audit(_ operation: OperationRecord, outcome: String, on database: PostgresConnection) throws {
        let query: PostgresQuery = """
            INSERT INTO audit_events (kind, correlation_id, principal, auth_type, command, vps_id, idempotency_key,
                                      operation_id, outcome, hostinger_action_id)
            VALUES ('reconciler', \(operation.correlationID), \(operation.requestedBy), 'reconciler',
                    \(operation.command), \(operation.vpsID), \(operation.idempotencyKey), \(operation.id)::uuid, \(outcome),
                    \(operation.actionID))
            """
        try database.query(query.preparedOnce())
    }

    private func adoptedIDs(_ ids: [Int]) throws -> Set<Int> {
        guard !ids.isEmpty else { return [] }
        let list = "{" + ids.map(String.init).joined(separator: ",") + "}"
        let query: PostgresQuery = "SELECT hostinger_action_id AS id FROM operations WHERE hostinger_action_id = ANY(\(list)::bigint[])"
        return Set(try database.query(query.preparedOnce()).map { try $0.decode(Int.self, "id") })
    }

    enum DriftKind: String {
        case actionUnknown = "action_unknown"
        case stateMismatch = "state_mismatch"
        case unclaimedAction = "unclaimed_action"
        case vpsNotFound = "vps_not_found"
    }

    private func drift(_ kind: DriftKind, _ operation: OperationRecord?, vps: Int? = nil, actionID: Int?, vpsgate: JSONValue?,
                       hostinger: JSONValue?) throws {
        let query: PostgresQuery = """
            INSERT INTO drift_events (instance, vps_id, operation_id, hostinger_action_id, kind, vpsgate_view, hostinger_view)
            VALUES (\(context.instance), \(operation?.vpsID ?? vps ?? 0), \(operation?.id)::uuid, \(actionID), \(kind.rawValue),
                    \(vpsgate?.text())::jsonb, \(hostinger?.text())::jsonb)
            ON CONFLICT DO NOTHING
            """
        try database.query(query.preparedOnce())
        logger.warning("reconciler: drift", metadata: [
            "kind": "\(kind.rawValue)", "operation_id": "\(operation?.id ?? "-")", "hostinger_action_id": "\(actionID.map(String.init) ?? "-")",
        ])
    }

    private func flagStale() throws {
        let query = PostgresQuery(unsafeSQL: """
            UPDATE operations SET stale = true
            WHERE state IN ('accepted', 'dispatched', 'running', 'unknown') AND NOT stale
              AND created_at < clock_timestamp() - make_interval(secs => $1)
            RETURNING \(Responder.operationColumns)
            """, binds: [String(context.configuration.busyBoundSeconds)])
        for row in try database.query(query.preparedOnce()) {
            let operation = try Responder.operation(from: row)
            try audit(operation, outcome: "stale", on: database)
            logger.error("reconciler: operation stale, no longer blocks its VPS", metadata: ["operation_id": "\(operation.id)"])
        }
    }

    // MARK: - Drift scan

    /// Reads the action lists of VPS with recent operations and records actions no
    /// operation caused, and terminal states Hostinger contradicts. One instance at a time.
    mutating func scanForUnclaimedActions() throws {
        let lease: PostgresQuery = """
            UPDATE reconciler_scans SET lease_owner = \(context.instance), lease_until = clock_timestamp() + interval '60 seconds'
            WHERE name = 'unclaimed_actions' AND (lease_until IS NULL OR lease_until < clock_timestamp())
            RETURNING (extract(epoch FROM watermark))::bigint AS watermark, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now_us
            """
        guard let leased = try database.query(lease.preparedOnce()).first else { return }
        let watermark = try leased.decode(Int.self, "watermark")
        let scanStarted = try leased.decode(Int64.self, "now_us")
        // Actions younger than this may still be recorded by the instance that caused them.
        let youngest = scanStarted / 1_000_000 - Int64(context.configuration.hostingerDeadlineMilliseconds + context.configuration.settleWindowMilliseconds) / 1000
        let vpsQuery: PostgresQuery = "SELECT DISTINCT vps_id FROM operations WHERE created_at > clock_timestamp() - interval '1 hour'"
        let vpsIDs = try database.query(vpsQuery.preparedOnce()).map { try $0.decode(Int.self, "vps_id") }
        var complete = true
        for vps in vpsIDs {
            let result = hostinger.call(.actions(vm: vps, page: 1), correlationID: CorrelationID(validating: nil), trace: TraceContext(continuing: nil))
            guard result.outcome == .succeeded, let list = result.body?["data"]?.arrayValue else {
                complete = false
                continue
            }
            let actions = list.compactMap(HostingerActionRecord.init(json:))
            let linked = try linkedOperations(actions.map(\.id))
            for action in actions {
                guard let created = action.createdAtSeconds, created >= Int64(watermark) - 60, created <= youngest else { continue }
                if let operation = linked[action.id] {
                    let expected = OperationState.following(actionState: action.state)
                    if operation.state.isTerminal && action.isTerminal && expected != operation.state {
                        try drift(.stateMismatch, operation, actionID: action.id,
                                  vpsgate: .object([("state", .string(operation.state.rawValue))]),
                                  hostinger: .object([("action_state", .string(action.state))]))
                    }
                } else {
                    try drift(.unclaimedAction, nil, vps: vps, actionID: action.id, vpsgate: nil, hostinger: .object([
                        ("id", .number(String(action.id))), ("name", .string(action.name)), ("state", .string(action.state)),
                    ]))
                }
            }
        }
        let release: PostgresQuery = """
            UPDATE reconciler_scans SET lease_owner = NULL, lease_until = NULL,
                watermark = CASE WHEN \(complete) THEN 'epoch'::timestamptz + \(youngest) * interval '1 second' ELSE watermark END
            WHERE name = 'unclaimed_actions' AND lease_owner = \(context.instance)
            """
        try database.query(release.preparedOnce())
    }

    private func linkedOperations(_ ids: [Int]) throws -> [Int: OperationRecord] {
        guard !ids.isEmpty else { return [:] }
        let list = "{" + ids.map(String.init).joined(separator: ",") + "}"
        let query = PostgresQuery(unsafeSQL: "SELECT \(Responder.operationColumns) FROM operations WHERE hostinger_action_id = ANY($1::bigint[])",
                                  binds: [list])
        var result: [Int: OperationRecord] = [:]
        for row in try database.query(query.preparedOnce()) {
            let operation = try Responder.operation(from: row)
            if let id = operation.actionID { result[id] = operation }
        }
        return result
    }
}
