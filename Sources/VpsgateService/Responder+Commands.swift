import FastCGI
import Hostinger
import Platform
import Postgres
import VpsgateCore

/// The path every command takes (SPEC sections 3, 5, 6, 8, 9):
/// parse and validate ⇒ authorize ⇒ idempotency key ⇒ one durable transaction (key, busy
/// slot, operation, `received` audit row) ⇒ Hostinger ⇒ one transaction (operation state,
/// stored answer, final audit row) ⇒ answer.
extension Responder {
    func runCommand(_ command: Command, vps: Int, parameters: [String: Int], request: FastCGIRequest,
                    principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var audit = AuditRecord(outcome: "invalid", command: command.name, vpsID: vps)
        /// Ends a request that never reaches Hostinger: its one final audit row, then the answer.
        func finish(_ response: FastCGIResponse, _ outcome: String, _ code: Problem.Code? = nil) -> FastCGIResponse {
            logCommand(command, vps: vps, operationID: audit.operationID, outcome: outcome, status: response.status, requestContext)
            audit.outcome = outcome
            audit.httpStatus = response.status
            audit.problemType = code.map { Problem.typePrefix + $0.rawValue }
            do {
                try audit.insert(requestContext, into: database)
            } catch {
                requestContext.logger.error("audit row not written", metadata: ["error": "\(error)", "outcome": "\(outcome)"])
            }
            return response
        }
        func fail(_ code: Problem.Code, _ status: Int, _ title: String, _ detail: String, outcome: String,
                  errors: [(field: String, messages: [String])] = []) -> FastCGIResponse {
            finish(problem(Problem(code, status: status, title: title, detail: detail, instance: requestContext.path, errors: errors),
                           requestContext), outcome, code)
        }

        // Parse and validate before anything is spent. A command's query takes one
        // parameter, `validate_only=true|false`, at most once: anything else could turn a
        // dry run meant by the client into a real one.
        let validateOnly: Bool
        switch CommandQuery.parse(requestContext.query) {
        case .success(let parsed): validateOnly = parsed.validateOnly
        case .failure(let error):
            return fail(.malformedRequest, 400, "Invalid query", error.message, outcome: "invalid")
        }
        var body: JSONValue?
        if !request.body.isEmpty {
            do {
                body = try JSONValue.parse(request.body)
            } catch {
                return fail(.malformedRequest, 400, "Malformed JSON", "The body is not valid JSON: \(error).", outcome: "invalid")
            }
        }
        audit.requestParameters = body.map {
            Redaction.auditable($0, declared: Set(command.fields.map(\.name)), secrets: command.secretFields)
        }
        let hostingerRequest: HostingerRequest
        switch command.prepare(vps: vps, parameters: parameters, body: body) {
        case .success(let prepared): hostingerRequest = prepared
        case .failure(let errors):
            let code: Problem.Code = errors.fields.contains { $0.field == "confirm" } ? .confirmationRequired : .validationFailed
            return fail(code, 422, "Invalid request", "Some fields are not valid.", outcome: "invalid", errors: errors.fields)
        }

        do {
            if let (response, outcome) = try authorize(principal, vps: vps, needs: command.permission, requestContext) {
                return finish(response, outcome, outcome == "denied" ? .forbidden : .notFound)
            }
        } catch {
            return finish(unavailable(requestContext, error), "unavailable", .unavailable)
        }

        if validateOnly {
            return dryRun(command, vps: vps, hostingerRequest, requestContext, finish: finish)
        }

        let key: String
        switch IdempotencyKey.parse(request.header("Idempotency-Key")) {
        case .success(let parsed): key = parsed
        case .failure(.missing):
            return fail(.idempotencyKeyMissing, 400, "Idempotency-Key required", "Every command needs an Idempotency-Key header.", outcome: "invalid")
        case .failure(.invalid):
            return fail(.idempotencyKeyInvalid, 400, "Invalid Idempotency-Key", "Use 8 to 255 visible ASCII characters.", outcome: "invalid")
        }
        audit.idempotencyKey = key

        // One round trip, committed before Hostinger is called.
        let operationID = UUIDv4.generate()
        let begin: PostgresRow
        do {
            let requestJSON = AuditRecord.requestJSON(requestContext, instance: context.instance, extra: [
                ("request_params", audit.requestParameters ?? .null),
                ("elapsed_ms", .number(String(requestContext.elapsedMilliseconds))),
            ]).text()
            var fingerprints = context.keys.fingerprints(method: requestContext.method, path: requestContext.path, body: body)
            fingerprints.append(IdempotencyKey.legacyFingerprint(method: requestContext.method, path: requestContext.path, body: body))
            let query: PostgresQuery = """
                SELECT * FROM begin_command(\(principal), \(key), \(Self.textArray(fingerprints))::text[], \(vps), \(command.name),
                    \(operationID)::uuid, \(requestContext.correlationID.value),
                    make_interval(secs => \(context.configuration.busyBoundSeconds)), \(requestJSON)::jsonb)
                """
            let started = Clock.monotonicMicroseconds()
            let rows = try database.query(query.preparedOnce())
            context.metrics.observe("vpsgate_database_duration_seconds", [("statement", "begin_command")],
                                    seconds: Double(Clock.monotonicMicroseconds() - started) / 1_000_000)
            guard let row = rows.first else {
                return finish(unavailable(requestContext, PostgresError(.server, "begin_command returned nothing")), "unavailable", .unavailable)
            }
            begin = row
        } catch {
            return finish(unavailable(requestContext, error), "unavailable", .unavailable)
        }
        // Stored times come from the database's clock: the creation time it stamped, plus
        // what the monotonic clock measures from then on.
        let begunAt = Clock.monotonicMicroseconds()
        let stampedAt = (try? begin.decode(Int64?.self, "created_us")) ?? nil

        let decision = (try? begin.decode(String.self, "decision")) ?? ""
        audit.operationID = try? begin.decode(String?.self, "operation_id")
        /// Ends a request whose final audit row `begin_command` already wrote.
        func answered(_ response: FastCGIResponse, _ outcome: String) -> FastCGIResponse {
            logCommand(command, vps: vps, operationID: audit.operationID, outcome: outcome, status: response.status, requestContext)
            return response
        }
        switch decision {
        case "proceed" where stampedAt != nil: break
        case "replay":
            guard let status = try? begin.decode(Int.self, "response_status"),
                let stored = try? begin.decode(String.self, "response_body")
            else { return finish(unavailable(requestContext, PostgresError(.decoding, "stored response")), "unavailable", .unavailable) }
            var headers: [FastCGIResponse.Header] = [
                .init("Content-Type", (200..<300).contains(status) ? "application/json" : "application/problem+json"),
                .init("Idempotent-Replayed", "true"),
            ]
            if let location = try? begin.decode(String?.self, "response_location") { headers.append(.init("Location", location)) }
            return answered(FastCGIResponse(status: status, headers: headers, body: Self.bytes(fromByteaHex: stored)), "replayed")
        case "in_use":
            var response = problem(Problem(.idempotencyKeyInUse, status: 409, title: "Idempotency-Key in use",
                                           detail: "A request with this key is still being processed.", instance: requestContext.path),
                                   requestContext)
            response.headers.append(.init("Retry-After", "1"))
            return answered(response, "conflict")
        case "reused":
            return answered(problem(Problem(.idempotencyKeyReused, status: 422, title: "Idempotency-Key reused",
                                            detail: "This key was used for a different request (method, path or body).",
                                            instance: requestContext.path), requestContext), "conflict")
        case "busy":
            let blocking = (try? begin.decode(String.self, "blocking_operation")) ?? ""
            return answered(busy(vps: vps, blocking: blocking, requestContext), "busy")
        default:
            return finish(unavailable(requestContext, PostgresError(.decoding, "unexpected decision \(decision)")), "unavailable", .unavailable)
        }

        // Hostinger, with the retry rules; then one round trip to record the outcome.
        let result = hostinger.call(hostingerRequest, correlationID: requestContext.correlationID, trace: requestContext.trace)
        let createdAt = stampedAt ?? 0
        let finishedAt = createdAt + (Clock.monotonicMicroseconds() - begunAt)
        let state = OperationState.after(result.outcome, actionState: result.action?.state)
        var operation = OperationRecord(
            id: operationID, vpsID: vps, command: command.name, state: state, actionID: result.action?.id,
            actionName: result.action?.name, actionState: result.action?.state, requestedBy: principal,
            correlationID: requestContext.correlationID.value, idempotencyKey: key, createdAt: createdAt, updatedAt: finishedAt,
            completedAt: state.isTerminal ? finishedAt : nil)
        let (response, outcome, store, error) = answer(for: result, operation: &operation, requestContext)
        audit.outcome = outcome
        audit.httpStatus = response.status
        audit.problemType = response.status >= 400 ? problemType(of: response) : nil
        audit.hostingerStatus = result.status
        audit.hostingerCorrelationID = result.hostingerCorrelationID
        do {
            let auditJSON = AuditRecord.requestJSON(requestContext, instance: context.instance, extra: [
                ("command", .string(command.name)), ("vps_id", .number(String(vps))),
                ("request_params", audit.requestParameters ?? .null), ("outcome", .string(outcome)),
                ("http_status", .number(String(response.status))), ("problem_type", audit.problemType.map { .string($0) } ?? .null),
                ("hostinger_status", result.status.map { .number(String($0)) } ?? .null),
                ("hostinger_correlation_id", result.hostingerCorrelationID.map { .string($0) } ?? .null),
                ("duration_ms", .number(String(requestContext.elapsedMilliseconds))),
            ]).text()
            let location = response.status == 202 ? operation.location : nil
            let query: PostgresQuery = """
                SELECT finish_command(\(principal), \(key), \(operationID)::uuid, \(operation.state.rawValue), \(operation.actionID),
                    \(operation.actionName), \(operation.actionState), \(error?.text())::jsonb, \(finishedAt), \(store),
                    \(response.status), \(location), \(Self.byteaHex(response.body))::bytea, \(auditJSON)::jsonb)
                """
            let started = Clock.monotonicMicroseconds()
            do {
                try database.queryRetrying(query.preparedOnce())
            } catch {
                // Hostinger has acted and the client gets its answer; the record of it waits
                // in memory and is written as soon as the database takes writes again.
                context.pendingOutcomes.add(query, operationID: operationID, logger: requestContext.logger)
                context.metrics.increment("vpsgate_outcome_writes_deferred_total")
                requestContext.logger.error("outcome not recorded yet; kept to retry", metadata: [
                    "error": "\(error)", "operation_id": "\(operationID)", "outcome": "\(result.outcome.rawValue)",
                ])
            }
            context.metrics.observe("vpsgate_database_duration_seconds", [("statement", "finish_command")],
                                    seconds: Double(Clock.monotonicMicroseconds() - started) / 1_000_000)
            context.pendingOutcomes.drain(on: database, logger: requestContext.logger)
        }
        logCommand(command, vps: vps, operationID: operationID, outcome: outcome, status: response.status, requestContext)
        return response
    }

    /// One line per command request: what, on which VPS, how it ended, how long it took.
    private func logCommand(_ command: Command, vps: Int, operationID: String?, outcome: String, status: Int,
                            _ requestContext: RequestContext) {
        context.metrics.increment("vpsgate_command_outcomes_total", [("command", command.name), ("outcome", outcome)])
        if outcome == "replayed" { context.metrics.increment("vpsgate_idempotent_replays_total") }
        if outcome == "busy" { context.metrics.increment("vpsgate_busy_rejections_total") }
        requestContext.logger.info("command", metadata: [
            "command": "\(command.name)", "vps_id": "\(vps)", "operation_id": "\(operationID ?? "-")",
            "outcome": "\(outcome)", "http_status": "\(status)",
            "duration_ms": "\((requestContext.elapsedMilliseconds * 1000).rounded() / 1000)",
        ])
    }

    /// The answer for a dispatched command, what the audit calls it, whether the key keeps
    /// it, and the operation's error.
    private func answer(for result: HostingerResult, operation: inout OperationRecord, _ requestContext: RequestContext)
        -> (FastCGIResponse, String, Bool, JSONValue?)
    {
        func upstreamProblem(_ code: Problem.Code, _ status: Int, _ title: String, _ detail: String) -> FastCGIResponse {
            var problem = Problem(code, status: status, title: title, detail: detail, instance: requestContext.path,
                                  errors: result.fieldErrors)
            problem.upstream = (result.message, result.hostingerCorrelationID)
            return self.problem(problem, requestContext)
        }
        func error(_ reason: String) -> JSONValue {
            .object([("reason", .string(reason)), ("hostinger_status", result.status.map { .number(String($0)) } ?? .null),
                     ("message", result.message.map { .string($0) } ?? .null)])
        }
        switch result.outcome {
        case .succeeded, .unknown:
            let response = json(202, operation.json(), headers: [.init("Location", operation.location)])
            return (response, operation.state == .unknown ? "unknown" : "accepted", true, nil)
        case .notSent:
            operation.error = error("not_sent")
            var response = problem(Problem(.unavailable, status: 503, title: "Hostinger unavailable",
                                           detail: "Hostinger could not be reached; nothing was sent. Try again later.",
                                           instance: requestContext.path), requestContext)
            response.headers.append(.init("Retry-After", String(max((result.retryAfterMilliseconds ?? 2000) / 1000, 1))))
            return (response, "unavailable", false, operation.error)
        case .rejected where result.isAuthenticationProblem:
            operation.error = error("upstream_auth")
            requestContext.logger.critical("Hostinger refused vpsgate's token", metadata: ["status": "\(result.status ?? 0)"])
            return (upstreamProblem(.upstreamAuth, 502, "Upstream authentication failed", "Hostinger refused vpsgate's credentials."),
                    "upstream_error", true, operation.error)
        case .rejected where result.status == 422:
            operation.error = error("upstream_rejected")
            return (upstreamProblem(.upstreamRejected, 422, "Rejected by Hostinger", "Hostinger refused the request."),
                    "upstream_rejected", true, operation.error)
        case .rejected where result.status == 404:
            operation.error = error("upstream_not_found")
            return (upstreamProblem(.notFound, 404, "Not found", "Hostinger does not know this resource."),
                    "upstream_rejected", true, operation.error)
        case .rejected, .failed:
            operation.error = error("upstream_error")
            return (upstreamProblem(.upstreamError, 502, "Hostinger failed", "Hostinger could not complete the request."),
                    "upstream_error", true, operation.error)
        }
    }

    private func dryRun(_ command: Command, vps: Int, _ hostingerRequest: HostingerRequest, _ requestContext: RequestContext,
                              finish: (FastCGIResponse, String, Problem.Code?) -> FastCGIResponse) -> FastCGIResponse {
        do {
            if let blocking = try activeOperation(vps: vps) {
                return finish(busy(vps: vps, blocking: blocking, requestContext), "busy", .vpsBusy)
            }
        } catch {
            return finish(unavailable(requestContext, error), "unavailable", .unavailable)
        }
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("validate_only", true)
        writer.member("command", command.name)
        writer.member("vps_id", vps)
        writer.key("hostinger")
        writer.beginObject()
        writer.member("method", hostingerRequest.method)
        writer.member("path", hostingerRequest.path)
        writer.key("body")
        if let body = hostingerRequest.body { Redaction.redact(body, secrets: command.secretFields).write(to: &writer) } else { writer.null() }
        writer.endObject()
        writer.endObject()
        return finish(json(200, writer.bytes), "validated", nil)
    }

    /// The operation blocking `vps`, if any (non-terminal and younger than the busy bound).
    func activeOperation(vps: Int) throws(PostgresError) -> String? {
        let query: PostgresQuery = """
            SELECT id::text AS id FROM operations
            WHERE vps_id = \(vps) AND state IN ('accepted', 'dispatched', 'running', 'unknown')
              AND created_at > clock_timestamp() - make_interval(secs => \(context.configuration.busyBoundSeconds))
            ORDER BY created_at DESC LIMIT 1
            """
        return try database.query(query.preparedOnce(), retryOnStaleConnection: true).first?.decode(String.self, "id")
    }

    private func busy(vps: Int, blocking: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var problem = Problem(.vpsBusy, status: 409, title: "VPS busy",
                              detail: "Operation \(blocking) on VPS \(vps) is not finished yet.", instance: requestContext.path)
        problem.extensions = [("operation_id", blocking), ("operation", "/v1/operations/\(blocking)")]
        var response = self.problem(problem, requestContext)
        response.headers.append(.init("Retry-After", "5"))
        return response
    }

    private func problemType(of response: FastCGIResponse) -> String? {
        (try? JSONValue.parse(response.body))?["type"]?.stringValue
    }

    /// A PostgreSQL array literal of plain tokens (hex digests and key ids: no quoting needed).
    static func textArray(_ items: [String]) -> String { "{" + items.joined(separator: ",") + "}" }

    // MARK: - bytea in text format

    static func byteaHex(_ bytes: [UInt8]) -> String { "\\x" + Hex.encode(bytes) }

    static func bytes(fromByteaHex text: String) -> [UInt8] {
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
}
