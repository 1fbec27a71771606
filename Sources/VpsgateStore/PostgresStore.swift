import Logging
import Postgres
import VpsgateCore

/// vpsgate's records over PostgreSQL: every SQL statement of the service lives in this
/// module (and the schema in `Migrations/`).
///
/// One store per thread, like the connection it owns: a FastCGI worker, the reconciler
/// and the housekeeper each make their own. Statements on the request path are prepared
/// once per connection.
public final class PostgresStore {
    let database: PostgresConnection
    let migrations: [Migration]
    /// The `Database/` files this build knows: readiness wants them applied as they are.
    let objects: [SchemaObject]
    /// Outcome writes waiting for the database, shared by every store of the instance.
    let pending: PendingOutcomes
    let logger: Logger

    /// A store over `url`; `pooled` when `url` names a transaction-mode pooler.
    public init(url: String, applicationName: String, migrations: [Migration], objects: [SchemaObject] = [], pending: PendingOutcomes,
                logger: Logger, pooled: Bool = false) {
        database = PostgresConnection(url: url, applicationName: applicationName, pooled: pooled)
        self.migrations = migrations
        self.objects = objects
        self.pending = pending
        self.logger = logger
        // One span per statement while a request is traced; named, never valued. The names
        // are kept per SQL text (the connection's statements are few and their texts fixed):
        // reading one from its text costs more than the rest of the span.
        let names = StatementNames()
        database.statementObserver = { sql in
            guard let parent = Tracing.current else { return nil }
            let name = names.name(of: sql)
            let span = parent.child(name, kind: .client)
            span.set("db.system.name", "postgresql")
            if name.contains(" ") || name == name.uppercased() {
                span.set("db.operation.name", String(name.prefix { $0 != " " }))
            } else {
                span.set("db.operation.name", "SELECT")
                span.set("db.stored_procedure.name", name)
            }
            return { error in
                if let error { span.fail("\(error.code)") }
                span.end()
            }
        }
    }

    /// Runs database work, reporting failures as the core's `StoreError`.
    func run<T>(_ body: () throws(PostgresError) -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch {
            throw StoreError(error)
        }
    }

    /// Runs `body` in a transaction.
    func transaction<T>(_ body: (PostgresConnection) throws -> T) throws(StoreError) -> T {
        do {
            return try database.transaction(body)
        } catch let error as PostgresError {
            throw StoreError(error)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(unavailable: false, "\(error)")
        }
    }
}

extension StoreError {
    init(_ error: PostgresError) {
        self.init(unavailable: error.isUnavailable, error.description)
    }
}

// MARK: - Row codecs

/// The columns every operation read selects, and their decoding.
enum OperationRow {
    static let columns = """
        id::text AS id, vps_id, resource_type, resource_id, command, state, hostinger_action_id, hostinger_action_name, hostinger_action_state,
        error::text AS error, requested_by, correlation_id, idempotency_key,
        (extract(epoch FROM created_at) * 1000000)::bigint AS created_us,
        (extract(epoch FROM updated_at) * 1000000)::bigint AS updated_us,
        (extract(epoch FROM completed_at) * 1000000)::bigint AS completed_us,
        (extract(epoch FROM dispatched_at) * 1000000)::bigint AS dispatched_us,
        approvals_required, (extract(epoch FROM approval_expires_at) * 1000000)::bigint AS approval_expires_us,
        result::text AS result, reason, traceparent
        """

    /// The terminal states as a SQL array literal.
    static let terminalStates = "{" + OperationState.allCases.filter(\.isTerminal).map(\.rawValue).joined(separator: ",") + "}"

    /// The operation's resource, from `vps_id`, `resource_type` and `resource_id`.
    static func target(_ row: PostgresRow) throws(PostgresError) -> Target {
        let type = try row.decode(String.self, "resource_type")
        guard let kind = ResourceKind(rawValue: type) else { throw PostgresError(.decoding, "unknown resource type \(type)") }
        if let vps = try row.decode(Int?.self, "vps_id") { return Target(kind, vps) }
        return Target(kind, try row.decode(Int?.self, "resource_id"))
    }

    static func decode(_ row: PostgresRow) throws(PostgresError) -> OperationRecord {
        var operation = OperationRecord(
            id: try row.decode(String.self, "id"), target: try target(row),
            command: try row.decode(String.self, "command"),
            state: OperationState(rawValue: try row.decode(String.self, "state")) ?? .unknown,
            actionID: try row.decode(Int?.self, "hostinger_action_id"), actionName: try row.decode(String?.self, "hostinger_action_name"),
            actionState: try row.decode(String?.self, "hostinger_action_state"),
            error: try row.decode(String?.self, "error").flatMap { try? JSONValue.parse($0) },
            requestedBy: try row.decode(String.self, "requested_by"), correlationID: try row.decode(String.self, "correlation_id"),
            idempotencyKey: try row.decode(String.self, "idempotency_key"),
            createdAt: Int64(try row.decode(Int.self, "created_us")), updatedAt: Int64(try row.decode(Int.self, "updated_us")),
            completedAt: try row.decode(Int?.self, "completed_us").map(Int64.init))
        operation.dispatchedAt = try row.decode(Int?.self, "dispatched_us").map(Int64.init)
        operation.approvalsRequired = try row.decode(Int.self, "approvals_required")
        operation.approvalExpiresAt = try row.decode(Int?.self, "approval_expires_us").map(Int64.init)
        operation.result = try row.decode(String?.self, "result").flatMap { try? JSONValue.parse($0) }
        operation.reason = try row.decode(String?.self, "reason")
        operation.traceparent = try row.decode(String?.self, "traceparent")
        return operation
    }
}

/// Statement names (`SQLStatementName`) by SQL text, for one connection's thread: up to 512
/// texts are kept, and a text past that is named anew each time.
final class StatementNames {
    private var names: [String: String] = [:]

    func name(of sql: String) -> String {
        if let name = names[sql] { return name }
        let name = SQLStatementName.of(sql)
        if names.count < 512 { names[sql] = name }
        return name
    }
}

/// bytea and array parameters in PostgreSQL's text format.
enum SQLText {
    static func bytea(_ bytes: [UInt8]) -> String { "\\x" + Hex.encode(bytes) }

    static func bytes(fromBytea text: String) -> [UInt8] {
        var result: [UInt8] = []
        let digits = Array(text.utf8.dropFirst(2))
        result.reserveCapacity(digits.count / 2)
        func value(_ d: UInt8) -> UInt8 { d >= 97 ? d - 87 : (d >= 65 ? d - 55 : d - 48) }
        var index = 0
        while index + 1 < digits.count {
            result.append(value(digits[index]) << 4 | value(digits[index + 1]))
            index += 2
        }
        return result
    }

    /// An array literal of plain tokens (ids, hex digests, key ids: no quoting needed).
    static func array(_ items: some Sequence<some CustomStringConvertible>) -> String {
        "{" + items.map(\.description).joined(separator: ",") + "}"
    }
}

extension AuditEntry {
    /// The request members of `audit_request_row`'s `p_audit`.
    func requestJSON(extra: [(key: String, value: JSONValue)] = []) -> JSONValue {
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        return .object([
            ("correlation_id", .string(identity.correlationID)), ("trace_id", text(identity.traceID)),
            ("auth_type", text(identity.authType)), ("client_address", text(identity.clientAddress)),
            ("user_agent", text(identity.userAgent)), ("method", text(identity.method)), ("path", text(identity.path)),
            ("command", text(command)), ("vps_id", vpsID.map { .number(String($0)) } ?? .null),
            ("request_params", requestParameters ?? .null),
            ("hostinger_status", hostingerStatus.map { .number(String($0)) } ?? .null),
            ("hostinger_correlation_id", text(hostingerCorrelationID)), ("reason", text(reason)),
            ("traceparent", text(identity.traceparent)),
        ] + extra)
    }

    /// The one statement that writes a row (`audit_request_row`).
    var query: PostgresQuery {
        """
        SELECT audit_request_row(\(kind.rawValue), \(outcome.rawValue), \(httpStatus), \(problemType), \(operationID)::uuid,
            \(identity.principal), \(idempotencyKey), \(command), \(vpsID), \(identity.correlationID), \(hostingerActionID),
            \(durationMilliseconds), \(requestJSON().text())::jsonb)
        """
    }
}
