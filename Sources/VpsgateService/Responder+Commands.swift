import FastCGI
import Hostinger
import Platform
import VpsgateCore

/// The path every command takes (SPEC sections 3, 5, 6, 8, 9), in named stages:
/// parse ⇒ authorize ⇒ (plan) ⇒ key ⇒ begin ⇒ call ⇒ finish ⇒ answer.
///
/// A stage that ends the request throws a `CommandEnd` (its answer and audit outcome); the
/// decisions themselves live in the core: `BeginDecision` (replay, conflict, busy — made by
/// `begin_command`), `DispatchAnswer` (what Hostinger's answer means), `OperationLifecycle`.
extension Responder {
    func runCommand(_ command: Command, vps: Int, parameters: [String: Int], request: FastCGIRequest,
                    principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var audit = requestContext.audit(.invalid, command: command.name, vps: vps)
        do {
            let validateOnly = try parseQuery(requestContext)
            let body = try parseBody(request, requestContext)
            audit.requestParameters = body.map {
                Redaction.auditable($0, declared: Set(command.fields.map(\.name)), secrets: command.secretFields)
            }
            let call = try validate(command, vps: vps, parameters: parameters, body: body, requestContext)
            if validateOnly {
                try authorize(principal, vps: vps, needs: command.permission, requestContext)
                try plan(command, vps: vps, call, requestContext)
            }
            audit.idempotencyKey = try idempotencyKey(request, requestContext) { () throws(CommandEnd) in
                try authorize(principal, vps: vps, needs: command.permission, requestContext)
            }
            // Authorizes too: begin_command checks the grant before it takes anything.
            let begun = try begin(command, vps: vps, body: body, principal: principal, audit: audit, requestContext)
            let result = hostinger.call(call, correlationID: requestContext.correlationID, trace: requestContext.trace)
            return finish(begun, result, audit: audit, requestContext)
        } catch {
            return end(error, audit: audit, requestContext)
        }
    }

    // MARK: - Stages

    /// `validate_only=true|false`, at most once: anything else could turn a dry run into a real one.
    private func parseQuery(_ requestContext: RequestContext) throws(CommandEnd) -> Bool {
        switch CommandQuery.parse(requestContext.query) {
        case .success(let parsed): return parsed.validateOnly
        case .failure(let error): throw invalid(.malformedRequest, 400, "Invalid query", error.message, requestContext)
        }
    }

    private func parseBody(_ request: FastCGIRequest, _ requestContext: RequestContext) throws(CommandEnd) -> JSONValue? {
        guard !request.body.isEmpty else { return nil }
        do {
            return try JSONValue.parse(request.body)
        } catch {
            throw invalid(.malformedRequest, 400, "Malformed JSON", "The body is not valid JSON: \(error).", requestContext)
        }
    }

    /// The body checked against the command's fields, as the Hostinger call it makes.
    private func validate(_ command: Command, vps: Int, parameters: [String: Int], body: JSONValue?,
                          _ requestContext: RequestContext) throws(CommandEnd) -> HostingerRequest {
        switch command.prepare(vps: vps, parameters: parameters, body: body) {
        case .success(let call): return call
        case .failure(let errors):
            let code: Problem.Code = errors.fields.contains { $0.field == "confirm" } ? .confirmationRequired : .validationFailed
            throw invalid(code, 422, "Invalid request", "Some fields are not valid.", requestContext, errors: errors.fields)
        }
    }

    /// The key; a request without a valid one is first authorized (`authorize`), so that a
    /// principal without a grant learns nothing more than 404 or 403.
    private func idempotencyKey(_ request: FastCGIRequest, _ requestContext: RequestContext,
                                authorize: () throws(CommandEnd) -> Void) throws(CommandEnd) -> String {
        let parsed = IdempotencyKey.parse(request.header("Idempotency-Key"))
        if case .success(let key) = parsed { return key }
        try authorize()
        switch parsed {
        case .success(let key): return key
        case .failure(.missing):
            throw invalid(.idempotencyKeyMissing, 400, "Idempotency-Key required", "Every command needs an Idempotency-Key header.",
                          requestContext)
        case .failure(.invalid):
            throw invalid(.idempotencyKeyInvalid, 400, "Invalid Idempotency-Key", "Use 8 to 255 visible ASCII characters.",
                          requestContext)
        }
    }

    /// A dry run (`validate_only=true`): the decision and what would be sent, secrets redacted.
    private func plan(_ command: Command, vps: Int, _ call: HostingerRequest, _ requestContext: RequestContext) throws(CommandEnd) -> Never {
        let blocking: String?
        do {
            blocking = try store.activeOperation(vps: vps, busyBoundSeconds: context.configuration.busyBoundSeconds)
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        if let blocking { throw refusal(.busy, vps: vps, blocking: blocking, audited: false, requestContext) }
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("validate_only", true)
        writer.member("command", command.name)
        writer.member("vps_id", vps)
        writer.key("hostinger")
        writer.beginObject()
        writer.member("method", call.method)
        writer.member("path", call.path)
        writer.key("body")
        if let body = call.body { Redaction.redact(body, secrets: command.secretFields).write(to: &writer) } else { writer.null() }
        writer.endObject()
        writer.endObject()
        throw CommandEnd(json(200, writer.bytes), .validated, nil)
    }

    /// An operation `begin_command` recorded: its id and creation time (database clock), and
    /// the monotonic time it was read at, so that stored times stay on the database's clock.
    struct Begun {
        var operation: OperationRecord
        var begunAt: Int64
        var principal: String
    }

    /// One durable transaction before Hostinger is called; replays and refusals end here.
    private func begin(_ command: Command, vps: Int, body: JSONValue?, principal: String, audit: AuditEntry,
                       _ requestContext: RequestContext) throws(CommandEnd) -> Begun {
        let key = audit.idempotencyKey ?? ""
        var fingerprints = context.keys.fingerprints(method: requestContext.method, path: requestContext.path, body: body)
        fingerprints.append(IdempotencyKey.legacyFingerprint(method: requestContext.method, path: requestContext.path, body: body))
        var audit = audit
        audit.durationMilliseconds = requestContext.elapsedMilliseconds
        let operationID = UUIDv4.generate()
        let decision: BeginDecision
        do {
            decision = try timed("begin_command") { () throws(StoreError) in
                try store.begin(BeginRequest(principal: principal, key: key, fingerprints: fingerprints, vpsID: vps, command: command.name,
                                             permission: command.permission, operationID: operationID,
                                             busyBoundSeconds: context.configuration.busyBoundSeconds, audit: audit))
            }
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        switch decision {
        case .proceed(let createdAt):
            let operation = OperationRecord(id: operationID, vpsID: vps, command: command.name, state: .accepted, requestedBy: principal,
                                            correlationID: requestContext.correlationID.value, idempotencyKey: key,
                                            createdAt: createdAt, updatedAt: createdAt)
            return Begun(operation: operation, begunAt: Clock.monotonicMicroseconds(), principal: principal)
        case .replay(let stored):
            var headers: [FastCGIResponse.Header] = [
                .init("Content-Type", (200..<300).contains(stored.status) ? "application/json" : "application/problem+json"),
                .init("Idempotent-Replayed", "true"),
            ]
            if let location = stored.location { headers.append(.init("Location", location)) }
            throw CommandEnd(FastCGIResponse(status: stored.status, headers: headers, body: stored.body), .replayed, nil, audited: true)
        case .notFound, .forbidden, .inUse, .reused:
            throw refusal(decision.kind, vps: vps, blocking: nil, permission: command.permission, audited: true, requestContext)
        case .busy(let blocking):
            throw refusal(.busy, vps: vps, blocking: blocking, audited: true, requestContext)
        }
    }

    /// Records what Hostinger's answer did to the operation and answers the client.
    private func finish(_ begun: Begun, _ result: HostingerResult, audit: AuditEntry, _ requestContext: RequestContext) -> FastCGIResponse {
        let answer = DispatchAnswer(result.dispatch)
        let finishedAt = begun.operation.createdAt + (Clock.monotonicMicroseconds() - begun.begunAt)
        var operation = answer.transition.applied(to: begun.operation)
        operation.updatedAt = finishedAt
        operation.completedAt = operation.state.isTerminal ? finishedAt : nil
        let response = reply(answer.reply, operation: operation, result: result, requestContext)
        var audit = audit
        audit.operationID = operation.id
        audit.outcome = answer.transition.outcome
        audit.httpStatus = response.status
        if case .problem(let code, _, _, _, _, _) = answer.reply { audit.problemType = Problem.typePrefix + code.rawValue }
        audit.hostingerStatus = result.status
        audit.hostingerCorrelationID = result.hostingerCorrelationID
        audit.durationMilliseconds = requestContext.elapsedMilliseconds
        let record = FinishRecord(principal: begun.principal, key: operation.idempotencyKey, operation: operation,
                                  keyEffect: answer.transition.key,
                                  answer: StoredAnswer(status: response.status, location: response.status == 202 ? operation.location : nil,
                                                       body: response.body),
                                  audit: audit)
        let write = timed("finish_command") { store.finish(record) }
        if case .deferred(let reason) = write {
            metrics.increment(Metrics.outcomeWritesDeferred)
            requestContext.logger.error("outcome not recorded yet; kept to retry", metadata: [
                "error": "\(reason)", "operation_id": "\(operation.id)", "outcome": "\(result.outcome.rawValue)",
            ])
        }
        logCommand(audit, status: response.status, requestContext)
        return response
    }

    /// Ends a request that never reached Hostinger: its one final audit row (unless
    /// `begin_command` wrote it), then the answer.
    private func end(_ end: CommandEnd, audit: AuditEntry, _ requestContext: RequestContext) -> FastCGIResponse {
        var audit = audit
        audit.outcome = end.outcome
        audit.httpStatus = end.response.status
        audit.problemType = end.problem.map { Problem.typePrefix + $0.rawValue }
        audit.durationMilliseconds = requestContext.elapsedMilliseconds
        if !end.audited { record(audit, requestContext) }
        logCommand(audit, status: end.response.status, requestContext)
        return end.response
    }

    // MARK: - Answers

    private func reply(_ reply: DispatchAnswer.Reply, operation: OperationRecord, result: HostingerResult,
                       _ requestContext: RequestContext) -> FastCGIResponse {
        switch reply {
        case .operation:
            return json(202, operation.json(), headers: [.init("Location", operation.location)])
        case .problem(let code, let status, let title, let detail, let upstream, let retryAfter):
            var problem = Problem(code, status: status, title: title, detail: detail, instance: requestContext.path,
                                  errors: upstream ? result.fieldErrors : [])
            if upstream { problem.upstream = (result.message, result.hostingerCorrelationID) }
            if code == .upstreamAuth {
                requestContext.logger.critical("Hostinger refused vpsgate's token", metadata: ["status": "\(result.status ?? 0)"])
            }
            var response = self.problem(problem, requestContext)
            if let retryAfter { response.headers.append(.init("Retry-After", String(retryAfter))) }
            return response
        }
    }

    /// The answer to a decision that refuses the command (key in use or reused, VPS busy).
    func refusal(_ kind: BeginDecision.Kind, vps: Int, blocking: String?, permission: Permission? = nil, audited: Bool,
                         _ requestContext: RequestContext) -> CommandEnd {
        guard let (problem, retryAfter) = kind.problem(vps: vps, blocking: blocking, permission: permission, instance: requestContext.path),
            let outcome = kind.auditOutcome
        else { return CommandEnd(unavailable(requestContext, StoreError(unavailable: false, "no refusal for \(kind)")), .unavailable, .unavailable) }
        var response = self.problem(problem, requestContext)
        if let retryAfter { response.headers.append(.init("Retry-After", String(retryAfter))) }
        return CommandEnd(response, outcome, problem.code, audited: audited)
    }

    private func invalid(_ code: Problem.Code, _ status: Int, _ title: String, _ detail: String, _ requestContext: RequestContext,
                         errors: [(field: String, messages: [String])] = []) -> CommandEnd {
        CommandEnd(problem(Problem(code, status: status, title: title, detail: detail, instance: requestContext.path, errors: errors),
                           requestContext), .invalid, code)
    }

    /// Times a database round trip of the pipeline.
    private func timed<T, E: Error>(_ statement: String, _ body: () throws(E) -> T) throws(E) -> T {
        let started = Clock.monotonicMicroseconds()
        defer {
            metrics.observe(Metrics.databaseDuration, [("statement", statement)],
                                    seconds: Double(Clock.monotonicMicroseconds() - started) / 1_000_000)
        }
        return try body()
    }

    /// One line per command request: what, on which VPS, how it ended, how long it took.
    private func logCommand(_ audit: AuditEntry, status: Int, _ requestContext: RequestContext) {
        metrics.increment(Metrics.commandOutcomes, [("command", audit.command ?? "-"), ("outcome", audit.outcome.rawValue)])
        if audit.outcome == .replayed { metrics.increment(Metrics.replays) }
        if audit.outcome == .busy { metrics.increment(Metrics.busyRejections) }
        requestContext.logger.info("command", metadata: [
            "command": "\(audit.command ?? "-")", "vps_id": "\(audit.vpsID ?? 0)", "operation_id": "\(audit.operationID ?? "-")",
            "outcome": "\(audit.outcome.rawValue)", "http_status": "\(status)",
            "duration_ms": "\((requestContext.elapsedMilliseconds * 1000).rounded() / 1000)",
        ])
    }
}
