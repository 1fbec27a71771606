import FastCGI
import Platform
import VpsgateCore

/// Batches (docs/design.md#the-shared-budget): one command over many VPS, every target authorized first,
/// children run by the instances' background work as ordinary operations.
extension Responder {
    func createBatch(_ request: FastCGIRequest, principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var audit = requestContext.audit(.invalid, command: "batch.create")
        do throws(CommandEnd) {
            let body: JSONValue?
            do {
                body = request.body.isEmpty ? nil : try JSONValue.parse(request.body)
            } catch {
                throw CommandEnd(batchProblem(.malformedRequest, 400, "Malformed JSON", "The body is not valid JSON.", requestContext), .invalid,
                                 .malformedRequest)
            }
            let batch: BatchRequest
            switch BatchRequest.parse(body) {
            case .success(let parsed): batch = parsed
            case .failure(let errors):
                throw CommandEnd(batchProblem(.validationFailed, 422, "Invalid request", "Some fields are not valid.", requestContext,
                                              errors: errors.fields), .invalid, .validationFailed)
            }
            switch CommandReason.parse(request.header(CommandReason.header)) {
            case .success(let reason): audit.reason = reason
            case .failure(let error):
                throw CommandEnd(batchProblem(.validationFailed, 422, "Invalid request", "Some fields are not valid.", requestContext,
                                              errors: [(CommandReason.header, [CommandReason.message(error)])]), .invalid, .validationFailed)
            }
            let key: String
            switch IdempotencyKey.parse(request.header("Idempotency-Key")) {
            case .success(let parsed): key = parsed
            case .failure:
                throw CommandEnd(batchProblem(.idempotencyKeyMissing, 400, "Idempotency-Key required",
                                              "A batch needs an Idempotency-Key header (8 to 255 visible ASCII characters).", requestContext),
                                 .invalid, .idempotencyKeyMissing)
            }
            audit.idempotencyKey = key
            let targets = try resolve(batch, principal: principal, requestContext)
            audit.requestParameters = batch.shown(targets: targets)
            var children: [BatchChild] = []
            let seal = UUIDv4.generate()
            for vps in targets {
                switch batch.command.prepare(.vps(vps), parameters: batch.parameters, body: batch.body) {
                case .success(let call):
                    do {
                        let child = KeptRequest(origin: .batch(seal: seal, vps: vps), command: batch.command.name, target: .vps(vps),
                                                requestedBy: principal, emergency: false)
                        children.append(BatchChild(vpsID: vps, request: try kept(child, parameters: batch.parameters, body: batch.body,
                                                                                 call: call)))
                    } catch {
                        throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
                    }
                case .failure(let errors):
                    throw CommandEnd(batchProblem(.validationFailed, 422, "Invalid request",
                                                  "The body is not valid for \(batch.command.name) on VPS \(vps).", requestContext,
                                                  errors: errors.fields.map { ("body.\($0.field)", $0.messages) }), .invalid, .validationFailed)
                }
            }
            var fingerprints = context.keys.fingerprints(method: "POST", path: requestContext.path, body: body)
            fingerprints.append(IdempotencyKey.legacyFingerprint(method: "POST", path: requestContext.path, body: body))
            audit.durationMilliseconds = requestContext.elapsedMilliseconds
            let creation: BatchCreation
            do {
                creation = try store.createBatch(NewBatch(principal: principal, key: key, fingerprints: fingerprints, request: batch,
                                                          shown: batch.shown(targets: targets), children: children, audit: audit,
                                                          seal: seal))
            } catch {
                throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
            }
            switch creation {
            case .created(let answer), .replay(let answer):
                var headers: [FastCGIResponse.Header] = [.init("Content-Type", "application/json")]
                if let location = answer.location { headers.append(.init("Location", location)) }
                if case .replay = creation { headers.append(.init("Idempotent-Replayed", "true")) }
                requestContext.logger.info("batch", metadata: ["command": "\(batch.command.name)", "targets": "\(targets.count)",
                                                               "replayed": "\(creation != .created(answer))"])
                return FastCGIResponse(status: answer.status, headers: headers, body: answer.body)
            case .reused:
                return problem(Problem(.idempotencyKeyReused, status: 422, title: "Idempotency-Key reused",
                                       detail: "This key was used for a different request (method, path or body).", instance: requestContext.path),
                               requestContext)
            case .reasonRequired:
                return problem(CommandReason.requiredProblem(instance: requestContext.path), requestContext)
            }
        } catch {
            audit.outcome = error.outcome
            audit.httpStatus = error.response.status
            audit.problemType = error.problem.map { Problem.typePrefix + $0.rawValue }
            audit.durationMilliseconds = requestContext.elapsedMilliseconds
            record(audit, requestContext)
            return error.response
        }
    }

    /// The batch's VPS, every one authorized for the command's permission before anything
    /// is recorded: 403 naming those refused. `*`: every VPS Hostinger lists that the
    /// caller holds the permission on.
    private func resolve(_ batch: BatchRequest, principal: String, _ requestContext: RequestContext) throws(CommandEnd) -> [Int] {
        let permission = batch.command.permission
        var ids: [Int]
        switch batch.targets {
        case .ids(let given): ids = given
        case .all:
            var read = HostingerRequest.listVirtualMachines()
            read.forCommand = true
            let list = hostinger.call(read, correlationID: requestContext.correlationID, trace: requestContext.trace)
            if list.budgetExhausted {
                var response = batchProblem(.upstreamBudget, 503, "Hostinger budget exhausted",
                                            "No slot of the Hostinger budget came in time to resolve \"*\"; nothing was recorded.", requestContext)
                response.headers.append(.init("Retry-After", String(RetryAfter.seconds(milliseconds: list.retryAfterMilliseconds))))
                throw CommandEnd(response, .unavailable, .upstreamBudget)
            }
            guard list.outcome == .succeeded, let vms = list.body?.arrayValue else {
                throw CommandEnd(batchProblem(.upstreamError, 502, "Hostinger failed", "Hostinger's VPS list could not be read to resolve \"*\".",
                                              requestContext), .upstreamError, .upstreamError)
            }
            ids = vms.compactMap { $0["id"]?.intValue }
        }
        let refused: [Int]
        do {
            refused = try store.refusedTargets(principal: principal, vps: ids, permission: permission)
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        if case .all = batch.targets {
            ids.removeAll { refused.contains($0) }
            guard !ids.isEmpty else {
                throw CommandEnd(batchProblem(.validationFailed, 422, "Invalid request", "No VPS you hold \(permission.rawValue) on.", requestContext,
                                              errors: [("vps", ["\"*\" names no VPS you hold \(permission.rawValue) on"])]), .invalid, .validationFailed)
            }
            guard ids.count <= BatchRequest.maximumTargets else {
                throw CommandEnd(batchProblem(.validationFailed, 422, "Invalid request", "Too many VPS.", requestContext,
                                              errors: [("vps", ["\"*\" names \(ids.count) VPS, more than \(BatchRequest.maximumTargets)"])]),
                                 .invalid, .validationFailed)
            }
            return ids
        }
        guard refused.isEmpty else {
            var problem = Problem(.forbidden, status: 403, title: "Forbidden",
                                  detail: "This needs \(permission.rawValue) on every VPS of the batch; nothing was started.",
                                  instance: requestContext.path)
            problem.extensions = [("refused_vps", refused.map(String.init).joined(separator: ","))]
            throw CommandEnd(self.problem(problem, requestContext), .denied, .forbidden)
        }
        return ids
    }

    private func batchProblem(_ code: Problem.Code, _ status: Int, _ title: String, _ detail: String, _ requestContext: RequestContext,
                              errors: [(field: String, messages: [String])] = []) -> FastCGIResponse {
        problem(Problem(code, status: status, title: title, detail: detail, instance: requestContext.path, errors: errors), requestContext)
    }

    func getBatch(_ id: Int, principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            guard try store.batchAccess(id: id, principal: principal).maySee, let body = try store.batchJSON(id: id) else {
                return notFound(requestContext)
            }
            return json(200, body)
        } catch {
            return unavailable(requestContext, error)
        }
    }

    func listBatches(principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var filters = FieldErrors()
        let limit = requestContext.queryValue("limit").map { Int($0) } ?? 50
        if !(limit.map { (1...200).contains($0) } ?? false) { filters.add("limit", "must be a whole number from 1 to 200") }
        let before = requestContext.queryValue("before").map { PathID.parse(Substring($0)) }
        if case .some(nil) = before { filters.add("before", "must be a batch id") }
        guard filters.isEmpty, let limit else { return invalidQuery(filters, requestContext) }
        do {
            return json(200, try store.batchesJSON(principal: principal, limit: limit, before: before ?? nil))
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// approve and deny need `vps:approve` on every VPS of the batch (and not to be its
    /// requester); cancel and resume, the requester or such an approver.
    func decideBatch(_ action: BatchAction, id: Int, request: FastCGIRequest, principal: String,
                     _ requestContext: RequestContext) -> FastCGIResponse {
        let reason: String?
        switch Self.reason(in: request.body, required: action == .deny) {
        case .success(let parsed): reason = parsed
        case .failure(let errors):
            return batchProblem(.validationFailed, 422, "Invalid request", "Some fields are not valid.", requestContext, errors: errors.fields)
        }
        do {
            let access = try store.batchAccess(id: id, principal: principal)
            guard access.maySee else { return notFound(requestContext) }
            let allowed = action == .approve || action == .deny ? access.approvesAll : access.isRequester || access.approvesAll
            guard allowed else {
                return batchProblem(.forbidden, 403, "Forbidden", action == .approve || action == .deny
                                        ? "This needs vps:approve on every VPS of the batch."
                                        : "Only the requester or a holder of vps:approve on every VPS of the batch can \(action.rawValue) it.",
                                    requestContext)
            }
            // An approve or deny carries vpsgate's HMAC over the batch's seal and round.
            var mac: String?
            if action == .approve || action == .deny, let bound = try store.batchSeal(id: id), let seal = bound.seal {
                mac = context.keys.mac(KeptRequest.approvalParts(origin: KeptRequest.batchOrigin(seal: seal, round: bound.round),
                                                                 principal: principal, decision: action.rawValue, digest: "-"))
            }
            let (result, state) = try store.decideBatch(id: id, principal: principal, action: action, reason: reason, mac: mac,
                                                        audit: requestContext.audit(.approved, .approval, command: "batch.\(action.rawValue)"))
            requestContext.logger.info("batch decision", metadata: ["batch_id": "\(id)", "action": "\(action.rawValue)", "result": "\(result)"])
            switch result {
            case "self_approval":
                return batchProblem(.selfApproval, 403, "Self-approval", "The requester of a batch cannot approve or deny it.", requestContext)
            case "not_allowed":
                return batchProblem(.batchState, 409, "Not allowed in this state",
                                    "A batch that is \(state ?? "gone") cannot be \(action.rawValue)d.", requestContext)
            case "not_found":
                return notFound(requestContext)
            default:
                guard let body = try store.batchJSON(id: id) else { return notFound(requestContext) }
                return json(200, body)
            }
        } catch {
            return unavailable(requestContext, error)
        }
    }
}
