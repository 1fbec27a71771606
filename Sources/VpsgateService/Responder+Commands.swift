import FastCGI
import Hostinger
import Platform
import VpsgateCore

/// The path every command takes (docs/architecture.md#the-pipeline-and-its-database-round-trips), in named stages:
/// parse ⇒ validate ⇒ (plan) ⇒ key ⇒ begin (grant, freeze, approval, busy) ⇒ call ⇒ finish ⇒ answer.
///
/// A stage that ends the request throws a `CommandEnd` (its answer and audit outcome); the
/// decisions themselves live in the core: `BeginDecision` (replay, conflict, busy — made by
/// `begin_command`), `DispatchAnswer` (what Hostinger's answer means), `OperationLifecycle`.
extension Responder {
    func runCommand(_ command: Command, target: Target, parameters: [String: String], request: FastCGIRequest,
                    principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var audit = requestContext.audit(.invalid, command: command.name, vps: target.vpsID)
        do {
            let query = try parseQuery(requestContext)
            let body = try parseBody(request, requestContext)
            audit.reason = try reason(request, requestContext)
            audit.requestParameters = body.map {
                Redaction.auditable($0, declared: Set(command.fields.map(\.name)), secrets: command.secretFields,
                                    hashed: command.hashedFields)
            }
            let call = try Tracing.span("validate") { _ throws(CommandEnd) in
                try validate(command, target: target, parameters: parameters, body: body, requestContext)
            }
            if query.validateOnly {
                try plan(command, target: target, call, principal: principal, query: query,
                         reach: try reach(command, target: target, principal: principal, requestContext), requestContext)
            }
            audit.idempotencyKey = try idempotencyKey(request, requestContext) { () throws(CommandEnd) in
                try authorize(principal, target, needs: command.permission, requestContext)
            }
            let reach = try reach(command, target: target, principal: principal, requestContext)
            // Decides the grant, a freeze, the approval policy and a busy VPS, in one transaction.
            let begun = try Tracing.span("begin") { _ throws(CommandEnd) in
                try begin(command, target: target, parameters: parameters, body: body, call: call, principal: principal, query: query,
                          reach: reach, audit: audit, requestContext)
            }
            let result = Tracing.span("hostinger") { span in
                span?.set("vpsgate.hostinger.operation", call.name)
                return hostinger.call(call, correlationID: requestContext.correlationID, trace: requestContext.trace)
            }
            return Tracing.span("finish") { _ in finish(begun, result, audit: audit, principal: principal, requestContext) }
        } catch {
            return end(error, audit: audit, requestContext)
        }
    }

    // MARK: - Stages

    /// `validate_only=true|false` (and `emergency=true&reason=…`), each at most once:
    /// anything else could turn a dry run into a real one.
    private func parseQuery(_ requestContext: RequestContext) throws(CommandEnd) -> CommandQuery {
        switch CommandQuery.parse(requestContext.query) {
        case .success(let parsed): return parsed
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

    /// The `Vpsgate-Reason` header (`CommandReason`), checked like a field of the body: a
    /// request with an unusable one changes nothing.
    func reason(_ request: FastCGIRequest, _ requestContext: RequestContext) throws(CommandEnd) -> String? {
        switch CommandReason.parse(request.header(CommandReason.header)) {
        case .success(let reason): return reason
        case .failure(let error):
            throw invalid(.validationFailed, 422, "Invalid request", "Some fields are not valid.", requestContext,
                          errors: [(CommandReason.header, [CommandReason.message(error)])])
        }
    }

    /// The body checked against the command's fields, as the Hostinger call it makes.
    private func validate(_ command: Command, target: Target, parameters: [String: String], body: JSONValue?,
                          _ requestContext: RequestContext) throws(CommandEnd) -> HostingerRequest {
        switch command.prepare(target, parameters: parameters, body: body) {
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

    /// The VPS a firewall change reaches (those with the firewall active), for the freeze
    /// decision: asked of Hostinger only while a freeze covers some VPS, and only for a caller
    /// the grant allows (no call to Hostinger for a stranger). Hostinger's list unreadable:
    /// not known, and then a freeze on any VPS holds the change.
    private func reach(_ command: Command, target: Target, principal: String,
                       _ requestContext: RequestContext) throws(CommandEnd) -> VPSReach {
        guard command.changesFirewallVPS, target.kind == .firewall, let firewall = target.id else { return .none }
        do {
            guard try store.anyVPSFrozen() else { return .none }
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        try authorize(principal, target, needs: command.permission, requestContext)
        var read = HostingerRequest.listVirtualMachines()
        read.forCommand = true
        let vms = hostinger.call(read, correlationID: requestContext.correlationID, trace: requestContext.trace)
        guard vms.outcome == .succeeded, let list = vms.body?.arrayValue else {
            requestContext.logger.warning("the VPS a firewall change reaches are not known; a freeze on any VPS holds it",
                                          metadata: ["firewall": "\(firewall)"])
            return .unknown
        }
        return .vps(list.compactMap { vm in vm["firewall_group_id"]?.intValue == firewall ? vm["id"]?.intValue : nil }.sorted())
    }

    /// The plan (`validate_only=true`, docs/design.md#change-control): the decision the command would meet
    /// now (made by the same function as the command's), what would be sent (secrets
    /// redacted), the policy, the VPS as Hostinger shows it, and the call's side effects.
    private func plan(_ command: Command, target: Target, _ call: HostingerRequest, principal: String, query: CommandQuery,
                      reach: VPSReach, _ requestContext: RequestContext) throws(CommandEnd) -> Never {
        let verdict: PlanVerdict
        do {
            verdict = try store.plan(principal: principal, target: target, command: command.name, permission: command.permission,
                                     minimumApprovals: command.minimumApprovals, busyBoundSeconds: context.configuration.busyBoundSeconds,
                                     emergency: query.emergencyReason != nil, reach: reach)
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        switch verdict.decision {
        case .notFound, .forbidden:
            let kind: BeginDecision.Kind = verdict.decision == .notFound ? .notFound : .forbidden
            throw refusal(kind, target, blocking: nil, permission: command.permission, audited: false, requestContext)
        default: break
        }
        // The resource as Hostinger shows it now (a key has no read of its own; the account none).
        let current = target.hostingerRead.map {
            hostinger.call($0, correlationID: requestContext.correlationID, trace: requestContext.trace)
        }
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("validate_only", true)
        writer.member("command", command.name)
        writer.member("vps_id", target.vpsID)
        writer.key("resource")
        target.write(to: &writer)
        writer.member("decision", verdict.decision.name)
        for name in ["would_send", "hostinger"] {  // `hostinger`: the name before plans had more
            writer.key(name)
            writer.beginObject()
            writer.member("method", call.method)
            writer.member("path", call.path)
            writer.key("body")
            if let body = Self.shownBody(call, command) { body.write(to: &writer) } else { writer.null() }
            writer.endObject()
        }
        switch verdict.decision {
        case .busy(let blocking):
            writer.member("blocking_operation", blocking)
        case .frozen(let until, let reason):
            writer.key("freeze")
            writer.beginObject()
            writer.member("until", Timestamp.rfc3339(microseconds: until))
            writer.member("reason", reason)
            writer.endObject()
        default: break
        }
        writer.member("approvals_required", verdict.approvalsRequired)
        writer.key("policy")
        if let policy = verdict.policy {
            writer.beginObject()
            writer.member("subject", policy.subject)
            writer.member("vps_id", policy.vpsID.map(String.init) ?? "*")
            writer.member("ttl_seconds", policy.ttlSeconds)
            writer.endObject()
        } else {
            writer.null()
        }
        // `vps` for a VPS command (its name before plans covered other resources), `current` for every one.
        for name in target.kind == .vps ? ["vps", "current"] : ["current"] {
            writer.key(name)
            if let current, current.outcome == .succeeded, let body = current.body {
                Redaction.hashing(body, fields: command.hashedFields).write(to: &writer)
            } else {
                writer.null()
            }
        }
        writer.key("effects")
        writer.beginArray()
        for effect in command.effects { writer.string(effect) }
        writer.endArray()
        writer.endObject()
        throw CommandEnd(json(200, writer.bytes), .validated, nil)
    }

    /// A call's body as a plan shows it: secrets redacted, hashed fields hashed.
    static func shownBody(_ call: HostingerRequest, _ command: Command) -> JSONValue? {
        call.body.map { Redaction.hashing(Redaction.redact($0, secrets: command.secretFields), fields: command.hashedFields) }
    }

    /// An operation `begin_command` recorded: its id and creation time (database clock), and
    /// the monotonic time it was read at, so that stored times stay on the database's clock.
    struct Begun {
        var operation: OperationRecord
        var begunAt: Int64
        var principal: String
    }

    /// One durable transaction before Hostinger is called; replays, refusals and commands
    /// that wait for approval end here.
    private func begin(_ command: Command, target: Target, parameters: [String: String], body: JSONValue?, call: HostingerRequest,
                       principal: String, query: CommandQuery, reach: VPSReach, audit: AuditEntry,
                       _ requestContext: RequestContext) throws(CommandEnd) -> Begun {
        let key = audit.idempotencyKey ?? ""
        var fingerprints = context.keys.fingerprints(method: requestContext.method, path: requestContext.path, body: body)
        fingerprints.append(IdempotencyKey.legacyFingerprint(method: requestContext.method, path: requestContext.path, body: body))
        var audit = audit
        audit.durationMilliseconds = requestContext.elapsedMilliseconds
        let operationID = UUIDv4.generate()
        let decision: BeginDecision
        do {
            var request = BeginRequest(principal: principal, key: key, fingerprints: fingerprints, target: target, command: command.name,
                                       permission: command.permission, minimumApprovals: command.minimumApprovals,
                                       operationID: operationID,
                                       busyBoundSeconds: context.configuration.busyBoundSeconds, audit: audit,
                                       emergencyReason: query.emergencyReason,
                                       request: try kept(KeptRequest(origin: .operation(id: operationID), command: command.name,
                                                                     target: target, requestedBy: principal,
                                                                     emergency: query.emergencyReason != nil),
                                                         parameters: parameters, body: body, call: call))
            request.reach = reach
            decision = try timed("begin_command") { () throws(StoreError) in try store.begin(request) }
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        switch decision {
        case .proceed(let createdAt):
            var operation = OperationRecord(id: operationID, target: target, command: command.name, state: .accepted, requestedBy: principal,
                                            correlationID: requestContext.correlationID.value, idempotencyKey: key,
                                            createdAt: createdAt, updatedAt: createdAt)
            operation.reason = audit.reason
            return Begun(operation: operation, begunAt: Clock.monotonicMicroseconds(), principal: principal)
        case .replay(let stored):
            var headers: [FastCGIResponse.Header] = [
                .init("Content-Type", (200..<300).contains(stored.status) ? "application/json" : "application/problem+json"),
                .init("Idempotent-Replayed", "true"),
            ]
            if let location = stored.location { headers.append(.init("Location", location)) }
            throw CommandEnd(FastCGIResponse(status: stored.status, headers: headers, body: stored.body), .replayed, nil, audited: true)
        case .notFound, .forbidden, .inUse, .reused:
            throw refusal(decision.kind, target, blocking: nil, permission: command.permission, audited: true, requestContext)
        case .busy(let blocking):
            throw refusal(.busy, target, blocking: blocking, audited: true, requestContext)
        case .reasonRequired:
            throw refusal(.reasonRequired, target, blocking: nil, audited: true, requestContext)
        case .frozen(let until):
            throw refusal(.frozen, target, blocking: nil, audited: true, frozenUntil: until, requestContext)
        case .awaitingApproval(let createdAt, let required):
            var operation = OperationRecord(id: operationID, target: target, command: command.name, state: .awaitingApproval,
                                            requestedBy: principal, correlationID: requestContext.correlationID.value,
                                            idempotencyKey: key, createdAt: createdAt, updatedAt: createdAt)
            operation.approvalsRequired = required
            operation.approvalExpiresAt = nil
            operation.reason = audit.reason
            throw awaitingApproval(operation, principal: principal, audit: audit, requestContext)
        }
    }

    /// The request as it is kept for later (approval, a batch's dispatch): the command's
    /// input sealed for `kept` under the secret key, and the call it makes now (to show).
    func kept(_ kept: KeptRequest, parameters: [String: String], body: JSONValue?, call: HostingerRequest) throws(StoreError) -> SealedRequest {
        let sealed: (keyID: String, envelope: [UInt8])
        do {
            sealed = try kept.seal(parameters: parameters, body: body, keys: context.keys)
        } catch {
            throw StoreError(unavailable: false, "sealing the request failed: \(error)")
        }
        return SealedRequest(name: call.name, method: call.method, path: call.path, repeatSafe: call.repeatSafe,
                             sealedBody: sealed.envelope, keyID: sealed.keyID)
    }

    /// 202 with the operation awaiting approval, kept under the key like any answer.
    private func awaitingApproval(_ operation: OperationRecord, principal: String, audit: AuditEntry,
                                  _ requestContext: RequestContext) -> CommandEnd {
        let response = json(202, operation.json(), headers: [.init("Location", operation.location)])
        var audit = audit
        audit.operationID = operation.id
        audit.outcome = .awaitingApproval
        audit.httpStatus = 202
        audit.durationMilliseconds = requestContext.elapsedMilliseconds
        let write = store.finish(FinishRecord(principal: principal, key: operation.idempotencyKey, operation: operation, keyEffect: .store,
                                              answer: StoredAnswer(status: 202, location: operation.location, body: response.body),
                                              audit: audit))
        if case .deferred(let reason) = write {
            metrics.increment(Metrics.outcomeWritesDeferred)
            requestContext.logger.error("answer not recorded yet; kept to retry", metadata: ["error": "\(reason)", "operation_id": "\(operation.id)"])
        }
        return CommandEnd(response, .awaitingApproval, nil, audited: true)
    }

    /// Records what Hostinger's answer did to the operation and answers the client.
    private func finish(_ begun: Begun, _ result: HostingerResult, audit: AuditEntry, principal: String,
                        _ requestContext: RequestContext) -> FastCGIResponse {
        let command = Command.named(begun.operation.command)
        var dispatch = result.dispatch(answersResource: command?.answersResource ?? false)
        if let command, let resource = dispatch.resource {
            dispatch.resource = shownResult(resource, of: command, on: begun.operation.target, principal: principal, requestContext)
        }
        let answer = DispatchAnswer(dispatch)
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
                                  audit: audit,
                                  strayAttempts: result.strayAttempts(databaseClock: (begun.operation.createdAt, begun.begunAt)))
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

    /// What an operation keeps and shows of a synchronous answer: hashed fields by their
    /// hash (a script's content), and for a firewall rule change, the VPS it left out of sync.
    private func shownResult(_ resource: JSONValue, of command: Command, on target: Target, principal: String,
                             _ requestContext: RequestContext) -> JSONValue {
        let kept = Redaction.hashing(resource, fields: command.hashedFields)
        guard command.unsyncsFirewall, let firewall = target.id else { return kept }
        var members: [(key: String, value: JSONValue)] = [("answer", kept)]
        let vms = hostinger.call(.listVirtualMachines(), correlationID: requestContext.correlationID, trace: requestContext.trace)
        if vms.outcome == .succeeded, let list = vms.body?.arrayValue {
            let using = list.compactMap { vm in vm["firewall_group_id"]?.intValue == firewall ? vm["id"]?.intValue : nil }.sorted()
            // Only the VPS the caller may read are named; the others are counted.
            let scope = try? store.readableScope(principal, of: .vps)
            let named = using.filter { scope?.contains($0) ?? false }
            members.append(("out_of_sync_vps", .array(named.map { .number(String($0)) })))
            members.append(("out_of_sync_other_vps", .number(String(using.count - named.count))))
        } else {
            members.append(("out_of_sync_vps", .null))
            members.append(("out_of_sync_note", .string("Hostinger's VM list could not be read: every VPS using firewall \(firewall) is out of sync until synced.")))
        }
        return .object(members)
    }

    /// The answer to a decision that refuses the command (key in use or reused, VPS busy).
    func refusal(_ kind: BeginDecision.Kind, _ target: Target, blocking: String?, permission: Permission? = nil, audited: Bool,
                 frozenUntil: Int64? = nil, _ requestContext: RequestContext) -> CommandEnd {
        guard let (problem, retryAfter) = kind.problem(target, blocking: blocking, permission: permission, instance: requestContext.path,
                                                       frozenUntil: frozenUntil),
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
            "command": "\(audit.command ?? "-")", "vps_id": "\(audit.vpsID ?? 0)", "path": "\(requestContext.path)", "operation_id": "\(audit.operationID ?? "-")",
            "outcome": "\(audit.outcome.rawValue)", "http_status": "\(status)",
            "duration_ms": "\((requestContext.elapsedMilliseconds * 1000).rounded() / 1000)",
        ])
    }
}
