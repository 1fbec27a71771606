import Postgres
import VpsgateCore

/// One row of `audit_events` (SPEC section 9), filled as the request goes.
struct AuditRecord {
    var kind = "final"
    var outcome: String
    var command: String?
    var vpsID: Int?
    var requestParameters: JSONValue?
    var idempotencyKey: String?
    var operationID: String?
    var httpStatus: Int?
    var problemType: String?
    var hostingerStatus: Int?
    var hostingerCorrelationID: String?
    var hostingerActionID: Int?

    /// The request's identity members as JSON, for the SQL functions that write audit rows.
    static func requestJSON(_ context: RequestContext, instance: String, extra: [(key: String, value: JSONValue)] = []) -> JSONValue {
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        return .object([
            ("instance", .string(instance)), ("correlation_id", .string(context.correlationID.value)),
            ("trace_id", .string(context.trace.traceID)), ("auth_type", text(context.authType)),
            ("client_address", text(context.clientAddress)), ("user_agent", text(context.userAgent)),
            ("method", .string(context.method)), ("path", .string(context.path)),
        ] + extra)
    }

    /// Writes the row. Used for requests that end before or without the SQL functions. The
    /// database stamps its time, ids and instance (from the connection's application name).
    func insert(_ context: RequestContext, into database: PostgresConnection) throws(PostgresError) {
        let params = requestParameters.map { $0.text() }
        let duration = context.elapsedMilliseconds
        let query: PostgresQuery = """
            INSERT INTO audit_events (kind, correlation_id, trace_id, principal, auth_type, client_address,
                user_agent, method, path, command, vps_id, request_params, idempotency_key, operation_id, outcome,
                http_status, problem_type, hostinger_status, hostinger_correlation_id, hostinger_action_id, duration_ms)
            VALUES (\(kind), \(context.correlationID.value), \(context.trace.traceID), \(context.principal),
                \(context.authType), \(context.clientAddress), \(context.userAgent), \(context.method), \(context.path),
                \(command), \(vpsID), \(params)::jsonb, \(idempotencyKey), \(operationID)::uuid,
                \(outcome), \(httpStatus), \(problemType), \(hostingerStatus),
                \(hostingerCorrelationID), \(hostingerActionID), \(duration))
            """
        try database.query(query.preparedOnce())
    }
}
