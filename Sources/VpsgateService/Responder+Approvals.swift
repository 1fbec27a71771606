import FastCGI
import VpsgateCore

/// The two-person rule (docs/design.md#change-control): approve, deny and cancel an operation awaiting
/// approval, and the list of what the caller may approve. The decision is made by the
/// store, atomically with the operation's row; what it means is `ApprovalResult`'s.
extension Responder {
    func decide(_ action: ApprovalAction, operationID: String, request: FastCGIRequest, principal: String,
                _ requestContext: RequestContext) -> FastCGIResponse {
        let reason: String?
        switch Self.reason(in: request.body, required: action == .deny) {
        case .success(let parsed): reason = parsed
        case .failure(let errors):
            return problem(Problem(.validationFailed, status: 422, title: "Invalid request", detail: "Some fields are not valid.",
                                   instance: requestContext.path, errors: errors.fields), requestContext)
        }
        do {
            guard let operation = try store.operation(id: operationID) else { return notFound(requestContext) }
            let mayApprove = try store.access(principal, to: operation.target, for: .approve) == .allowed
            guard try mayApprove || store.mayRead(principal, operation.target) else { return notFound(requestContext) }
            let mayDecide = mayApprove || (action == .cancel && operation.requestedBy == principal)
            guard mayDecide else {
                return problem(Problem(.forbidden, status: 403, title: "Forbidden",
                                       detail: action == .cancel
                                           ? "Only the requester or a holder of vps:approve on \(operation.target) can cancel it."
                                           : "This needs the vps:approve permission on \(operation.target).",
                                       instance: requestContext.path), requestContext)
            }
            // An approve or deny carries vpsgate's HMAC over the operation, the decision and the
            // kept request's digest: dispatch counts no approval the key did not sign.
            var mac: String?
            if action != .cancel {
                let digest = try store.keptRequestDigest(operationID: operation.id)
                mac = context.keys.mac(KeptRequest.approvalParts(origin: operation.id, principal: principal, decision: action.rawValue,
                                                                 digest: digest))
            }
            let outcome = try store.decide(operationID: operationID, principal: principal, action: action, reason: reason, mac: mac,
                                           audit: requestContext.audit(.approved, .approval, command: operation.command, vps: operation.vpsID))
            requestContext.logger.info("approval", metadata: [
                "operation_id": "\(operationID)", "action": "\(action.rawValue)", "result": "\(outcome.result.rawValue)",
                "approvals": "\(outcome.approvals)/\(outcome.approvalsRequired)",
            ])
            if let problem = outcome.result.problem(instance: requestContext.path, state: outcome.state) {
                return self.problem(problem, requestContext)
            }
            guard let updated = try store.operation(id: operationID) else { return notFound(requestContext) }
            return json(200, updated.json())
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// What the caller may approve, each operation with what a person deciding needs: the
    /// requester, the approvals given and required, when it expires, and the plan of its
    /// kept request (what would be sent, secrets redacted; the decision it meets now; the
    /// command's effects), made as `validate_only` makes it.
    func listApprovals(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            let operations = try store.awaitingApproval(approver: principal, limit: 200)
            let pending = try store.pendingApprovals(operationIDs: operations.map(\.id))
            var items: [JSONValue] = []
            for operation in operations {
                items.append(try approvalRequest(operation, pending[operation.id] ?? PendingApproval()))
            }
            return json(200, JSONValue.object([("data", .array(items)), ("next_before", .null)]).serialized())
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// The operation as `GET /v1/operations/{id}` shows it, with `requester`, `approvals`
    /// ({given, required, expires_at, decisions}) and `plan`.
    private func approvalRequest(_ operation: OperationRecord, _ pending: PendingApproval) throws(StoreError) -> JSONValue {
        guard case .object(var members) = (try? JSONValue.parse(operation.json())) ?? .null else { return .null }
        let decisions: [JSONValue] = pending.decisions.map { decision in
            .object([("principal", .string(decision.principal)), ("decision", .string(decision.decision)),
                     ("reason", decision.reason.map(JSONValue.string) ?? .null),
                     ("decided_at", .string(Timestamp.rfc3339(microseconds: decision.decidedAt)))])
        }
        members.append(("requester", .string(operation.requestedBy)))
        members.append(("approvals", .object([
            ("given", .number(String(pending.decisions.filter { $0.decision == ApprovalAction.approve.rawValue }.count))),
            ("required", .number(String(operation.approvalsRequired))),
            ("expires_at", operation.approvalExpiresAt.map { .string(Timestamp.rfc3339(microseconds: $0)) } ?? .null),
            ("decisions", .array(decisions)),
        ])))
        members.append(("plan", try keptPlan(operation, pending)))
        return .object(members)
    }

    /// The plan of a kept request: its envelope opened and prepared again through the
    /// command catalogue, as dispatch will, and shown as `validate_only` shows a call.
    private func keptPlan(_ operation: OperationRecord, _ pending: PendingApproval) throws(StoreError) -> JSONValue {
        guard let command = Command.named(operation.command) else { return .null }
        var wouldSend: JSONValue = .null
        if let request = pending.request {
            var body: JSONValue = .null
            if let envelope = request.sealedBody, let keyID = request.keyID,
                let input = KeptRequest(origin: .operation(id: operation.id), command: command.name, target: operation.target,
                                        requestedBy: operation.requestedBy, emergency: pending.emergency)
                    .open(envelope, keyID: keyID, keys: context.keys),
                case .success(let call) = command.prepare(operation.target, parameters: input.parameters, body: input.body) {
                body = Self.shownBody(call, command) ?? .null
            }
            wouldSend = .object([("method", .string(request.method)), ("path", .string(request.path)), ("body", body)])
        }
        let verdict = try store.plan(principal: operation.requestedBy, target: operation.target, command: command.name,
                                     permission: command.permission, minimumApprovals: command.minimumApprovals,
                                     busyBoundSeconds: context.configuration.busyBoundSeconds, emergency: pending.emergency, reach: .none)
        return .object([
            ("command", .string(command.name)),
            ("decision", .string(verdict.decision.name)),
            ("would_send", wouldSend),
            ("approvals_required", .number(String(max(verdict.approvalsRequired, operation.approvalsRequired)))),
            ("effects", .array(command.effects.map(JSONValue.string))),
        ])
    }

    /// `GET /v1/operations/{id}/timeline`: the operation (as GET shows it) and its audit rows,
    /// events and approval decisions in order, for whoever may read the operation.
    func operationTimeline(_ id: String, _ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            guard let operation = try store.operation(id: id) else { return notFound(requestContext) }
            if try !store.mayRead(principal, operation.target) { return notFound(requestContext) }
            let entries = try store.timeline(operationID: id)
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("operation")
            operation.write(to: &writer)
            writer.key("data")
            writer.beginArray()
            for entry in entries { entry.write(to: &writer) }
            writer.endArray()
            writer.endObject()
            return json(200, writer.bytes)
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// `{"reason": "…"}` (1 to 500 characters), required to deny; an empty body otherwise.
    static func reason(in body: [UInt8], required: Bool) -> Result<String?, FieldErrors> {
        var errors = FieldErrors()
        guard !body.isEmpty else {
            if required { errors.add("reason", "is required to deny") }
            return errors.isEmpty ? .success(nil) : .failure(errors)
        }
        guard let json = try? JSONValue.parse(body), case .object(let members) = json else {
            errors.add("body", "must be a JSON object")
            return .failure(errors)
        }
        for (name, _) in members where name != "reason" { errors.add(name, "unknown field") }
        let reason = json["reason"]
        if let reason, !reason.isNull {
            if let text = reason.stringValue, (1...500).contains(text.count) {
                if errors.isEmpty { return .success(text) }
            } else {
                errors.add("reason", "must be a string of 1 to 500 characters")
            }
        } else if required {
            errors.add("reason", "is required to deny")
        }
        return errors.isEmpty ? .success(nil) : .failure(errors)
    }
}
