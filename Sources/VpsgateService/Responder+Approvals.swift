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

    func listApprovals(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            return json(200, Self.page(try store.awaitingApproval(approver: principal, limit: 200), nextBefore: nil))
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
