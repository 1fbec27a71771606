import FastCGI
import Hostinger
import Postgres
import VpsgateCore

/// Reads: VPS and their actions from Hostinger (the source of truth), operations from the database.
extension Responder {
    func listVPS(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        let scope: (all: Bool, ids: Set<Int>)
        do { scope = try readableScope(principal) } catch { return unavailable(requestContext, error) }
        return fromHostinger(.listVirtualMachines(), requestContext) { body in
            guard case .array(let vms) = body else { return body }
            return .array(vms.filter { vm in scope.all || vm["id"]?.intValue.map(scope.ids.contains) == true })
        }
    }

    func getVPS(_ vps: Int, _ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            if let (response, _) = try authorize(principal, vps: vps, needs: .read, requestContext) { return response }
        } catch { return unavailable(requestContext, error) }
        return fromHostinger(.virtualMachine(vps), requestContext) { $0 }
    }

    func vpsActions(_ vps: Int, _ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            if let (response, _) = try authorize(principal, vps: vps, needs: .read, requestContext) { return response }
        } catch { return unavailable(requestContext, error) }
        let page = requestContext.queryValue("page").flatMap { PathID.parse(Substring($0)) } ?? 1
        return fromHostinger(.actions(vm: vps, page: page), requestContext) { $0 }
    }

    /// Hostinger's answer to a read, passed on (after `transform`) or turned into a problem.
    private func fromHostinger(_ request: HostingerRequest, _ requestContext: RequestContext,
                               _ transform: (JSONValue) -> JSONValue) -> FastCGIResponse {
        let result = hostinger.call(request, correlationID: requestContext.correlationID, trace: requestContext.trace)
        switch result.outcome {
        case .succeeded:
            guard let body = result.body else { break }
            return json(200, transform(body).serialized())
        case .rejected where result.status == 404:
            return notFound(requestContext)
        case .notSent:
            var response = problem(Problem(.unavailable, status: 503, title: "Hostinger unavailable",
                                           detail: "Hostinger could not be reached.", instance: requestContext.path), requestContext)
            response.headers.append(.init("Retry-After", String(max((result.retryAfterMilliseconds ?? 2000) / 1000, 1))))
            return response
        default: break
        }
        var problem = Problem(result.isAuthenticationProblem ? .upstreamAuth : .upstreamError, status: 502, title: "Hostinger failed",
                              detail: "Hostinger could not answer the read.", instance: requestContext.path)
        problem.upstream = (result.message, result.hostingerCorrelationID)
        return self.problem(problem, requestContext)
    }

    // MARK: - Operations

    static let operationColumns = """
        id::text AS id, vps_id, command, state, hostinger_action_id, hostinger_action_name, hostinger_action_state,
        error::text AS error, requested_by, correlation_id, idempotency_key,
        (extract(epoch FROM created_at) * 1000000)::bigint AS created_us,
        (extract(epoch FROM updated_at) * 1000000)::bigint AS updated_us,
        (extract(epoch FROM completed_at) * 1000000)::bigint AS completed_us
        """

    static func operation(from row: PostgresRow) throws(PostgresError) -> OperationRecord {
        OperationRecord(
            id: try row.decode(String.self, "id"), vpsID: try row.decode(Int.self, "vps_id"),
            command: try row.decode(String.self, "command"),
            state: OperationState(rawValue: try row.decode(String.self, "state")) ?? .unknown,
            actionID: try row.decode(Int?.self, "hostinger_action_id"), actionName: try row.decode(String?.self, "hostinger_action_name"),
            actionState: try row.decode(String?.self, "hostinger_action_state"),
            error: try row.decode(String?.self, "error").flatMap { try? JSONValue.parse($0) },
            requestedBy: try row.decode(String.self, "requested_by"), correlationID: try row.decode(String.self, "correlation_id"),
            idempotencyKey: try row.decode(String.self, "idempotency_key"),
            createdAt: Int64(try row.decode(Int.self, "created_us")), updatedAt: Int64(try row.decode(Int.self, "updated_us")),
            completedAt: try row.decode(Int?.self, "completed_us").map(Int64.init))
    }

    func getOperation(_ id: String, _ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            let query = PostgresQuery(unsafeSQL: "SELECT \(Self.operationColumns) FROM operations WHERE id = $1::uuid", binds: [id])
            guard let row = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first else { return notFound(requestContext) }
            var operation = try Self.operation(from: row)
            if try !permissions(principal, vps: operation.vpsID).contains(.read) { return notFound(requestContext) }
            if !operation.state.isTerminal, operation.actionID != nil {
                operation = try refresh(operation, requestContext)
            }
            return json(200, operation.json())
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// Follows Hostinger's action for a non-terminal operation, at most once per refresh
    /// interval across all instances (the conditional UPDATE claims the refresh).
    private func refresh(_ operation: OperationRecord, _ requestContext: RequestContext) throws -> OperationRecord {
        let claim: PostgresQuery = """
            UPDATE operations SET refreshed_at = clock_timestamp()
            WHERE id = \(operation.id)::uuid AND state IN ('accepted', 'dispatched', 'running', 'unknown')
              AND (refreshed_at IS NULL OR refreshed_at < clock_timestamp() - make_interval(secs => \(Double(context.configuration.refreshIntervalMilliseconds) / 1000)))
            RETURNING id
            """
        guard let actionID = operation.actionID, try !database.query(claim.preparedOnce()).isEmpty else { return operation }
        let result = hostinger.call(.action(vm: operation.vpsID, id: actionID), correlationID: requestContext.correlationID,
                                    trace: requestContext.trace)
        guard result.outcome == .succeeded, let action = result.body.flatMap(HostingerAction.init(json:)) else { return operation }
        var updated = operation
        updated.actionState = action.state
        updated.state = OperationState.following(actionState: action.state)
        guard updated.actionState != operation.actionState || updated.state != operation.state else { return operation }
        if updated.state.isTerminal, updated.state == .failed { updated.error = .object([("reason", .string("action_error"))]) }
        updated = try database.transaction { database in
            // Stamped by the database's clock.
            let update: PostgresQuery = """
                UPDATE operations SET state = \(updated.state.rawValue), hostinger_action_state = \(action.state),
                    error = \(updated.error?.text())::jsonb, updated_at = clock_timestamp(),
                    completed_at = CASE WHEN \(updated.state.isTerminal) THEN clock_timestamp() END
                WHERE id = \(operation.id)::uuid AND state NOT IN ('succeeded', 'failed')
                RETURNING (extract(epoch FROM updated_at) * 1000000)::bigint AS now_us
                """
            guard let now = try database.query(update.preparedOnce()).first?.decode(Int64.self, "now_us") else { return operation }
            updated.updatedAt = now
            updated.completedAt = updated.state.isTerminal ? now : nil
            guard updated.state.isTerminal else { return updated }
            var completion = AuditRecord(kind: "completion", outcome: updated.state.rawValue, command: operation.command, vpsID: operation.vpsID)
            completion.operationID = operation.id
            completion.idempotencyKey = operation.idempotencyKey
            completion.hostingerStatus = result.status
            completion.hostingerActionID = actionID
            try completion.insert(requestContext, into: database)
            return updated
        }
        return updated
    }

    func listOperations(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var filters = FieldErrors()
        let vps = requestContext.queryValue("vps").map { PathID.parse(Substring($0)) }
        if case .some(nil) = vps { filters.add("vps", "must be a positive integer") }
        let state = requestContext.queryValue("state").map { OperationState(rawValue: $0) }
        if case .some(nil) = state { filters.add("state", "must be one of \(OperationState.allCases.map(\.rawValue).joined(separator: ", "))") }
        let limit = requestContext.queryValue("limit").map { Int($0) } ?? 50
        if limit == nil || !(1...200).contains(limit!) { filters.add("limit", "must be a whole number from 1 to 200") }
        let before = requestContext.queryValue("before")
        if let before, !UUIDv4.isValid(before) { filters.add("before", "must be an operation id") }
        guard filters.isEmpty else {
            return problem(Problem(.validationFailed, status: 422, title: "Invalid query", detail: "Some parameters are not valid.",
                                   instance: requestContext.path, errors: filters.fields), requestContext)
        }
        do {
            let scope = try readableScope(principal)
            let ids = scope.all ? nil : "{" + scope.ids.sorted().map(String.init).joined(separator: ",") + "}"
            let query = PostgresQuery(unsafeSQL: """
                SELECT \(Self.operationColumns) FROM operations o
                WHERE ($1::bigint[] IS NULL OR o.vps_id = ANY($1::bigint[]))
                  AND ($2::bigint IS NULL OR o.vps_id = $2::bigint)
                  AND ($3::text IS NULL OR o.state = $3::text)
                  AND ($4::uuid IS NULL OR (o.created_at, o.id) < (SELECT created_at, id FROM operations WHERE id = $4::uuid))
                ORDER BY o.created_at DESC, o.id DESC LIMIT $5::int
                """, binds: [ids, (vps ?? nil).map(String.init), (state ?? nil)?.rawValue, before, String(limit!)])
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("data")
            writer.beginArray()
            var last: String?
            var count = 0
            for row in try database.query(query.preparedOnce(), retryOnStaleConnection: true) {
                let operation = try Self.operation(from: row)
                operation.write(to: &writer)
                last = operation.id
                count += 1
            }
            writer.endArray()
            writer.member("next_before", count == limit! ? last : nil)
            writer.endObject()
            return json(200, writer.bytes)
        } catch {
            return unavailable(requestContext, error)
        }
    }
}
