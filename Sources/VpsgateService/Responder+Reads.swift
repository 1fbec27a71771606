import FastCGI
import Platform
import Hostinger
import VpsgateCore

/// Reads: VPS and their actions from Hostinger (the source of truth), operations from the database.
extension Responder {
    /// A read the catalogue answers from Hostinger (`ReadRoute.hostinger`): its permission on
    /// the resource the path names when it needs one, then its second path parameter and the
    /// query values it requires checked, then Hostinger's answer as it is. Bad input is a 422
    /// naming the parameter, and nothing is sent. `?page=` is read leniently (anything but a
    /// page number is page 1), as Hostinger does.
    func readFromHostinger(_ route: ReadRoute, _ id: Int, parameter: Substring?, _ principal: String,
                           _ requestContext: RequestContext) -> FastCGIResponse {
        guard let hostinger = route.hostinger else { return notFound(requestContext) }
        if let permission = route.permission, let kind = route.on {
            do { try authorize(principal, Target(kind, id), needs: permission, requestContext) } catch { return error.response }
        }
        let page = requestContext.queryValue("page").flatMap { PathID.parse(Substring($0)) } ?? 1
        var arguments = ReadRoute.ReadArguments(id: id, page: page)
        if let name = route.parameter {
            let value = parameter ?? ""
            guard PathParameter.accepts(name, value) else {
                let kind = PathParameter.names.contains(name) ? "3 to 64 letters, digits, dashes or underscores" : "a positive whole number"
                var errors = FieldErrors()
                errors.add(name, "must be \(kind)")
                return problem(Problem(.validationFailed, status: 422, title: "Invalid path parameter", detail: "A path parameter is not valid.",
                                       instance: requestContext.path, errors: errors.fields), requestContext)
            }
            arguments.parameter = String(value)
        }
        var filters = FieldErrors()
        var times: [String: Int64] = [:]
        for name in route.required {
            guard let raw = requestContext.queryValue(name), !raw.isEmpty else {
                filters.add(name, "is required: an RFC 3339 time (2025-05-01T00:00:00Z)")
                continue
            }
            // A `+` is an offset's sign here, not a space.
            guard let text = PercentDecoding.decode(Substring(raw.replacing("+", with: "%2B"))), let time = Self.timestamp(text) else {
                filters.add(name, "must be an RFC 3339 time (2025-05-01T00:00:00Z)")
                continue
            }
            arguments.query[name] = text
            times[name] = time
        }
        // Hostinger refuses a range that ends before it starts; it is the caller's mistake, not a 502.
        if let from = times["date_from"], let to = times["date_to"], to <= from { filters.add("date_to", "must be after date_from") }
        guard filters.isEmpty else { return invalidQuery(filters, requestContext) }
        return fromHostinger(hostinger(arguments), requestContext) { $0 }
    }

    func listVPS(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        let scope: ReadScope
        do { scope = try store.readableScope(principal, of: .vps) } catch { return unavailable(requestContext, error) }
        return fromHostinger(.listVirtualMachines(), requestContext) { body in
            guard case .array(let vms) = body else { return body }
            return .array(vms.filter { vm in vm["id"]?.intValue.map(scope.contains) == true })
        }
    }

    /// `{"principal": …, "grants": [{"resource": "vps:*", "role": …, "permissions": […]}]}`.
    func me(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            var writer = JSONWriter()
            writer.beginObject()
            writer.member("principal", principal)
            writer.key("grants")
            writer.beginArray()
            for grant in try store.grants(of: principal) {
                writer.beginObject()
                writer.member("resource", grant.resource.text)
                writer.member("role", grant.role)
                writer.key("permissions")
                writer.beginArray()
                for permission in grant.permissions { writer.string(permission) }
                writer.endArray()
                writer.endObject()
            }
            writer.endArray()
            writer.endObject()
            return json(200, writer.bytes)
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// `{"data": [freeze…]}`: the windows in force and to come that the caller may see
    /// (`FreezeWindow.visible(in:)`), so a client can say why a command would wait.
    func listFreezes(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        do {
            let scope = try store.readableScope(principal, of: .vps)
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("data")
            writer.beginArray()
            for window in try store.freezeWindows() where window.visible(in: scope) { window.write(to: &writer) }
            writer.endArray()
            writer.endObject()
            return json(200, writer.bytes)
        } catch {
            return unavailable(requestContext, error)
        }
    }

    // MARK: - Account-level resources (docs/design.md#resources-and-grants)

    /// A page of the account's firewalls, keys or scripts, filtered to those the caller may
    /// read (`?page=`, from 1). With a grant on only some, `meta.total` is left out: it
    /// would count the others.
    func listResources(_ route: ReadRoute, _ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        guard let kind = route.on, let hostinger = route.hostinger else { return notFound(requestContext) }
        guard let page = requestContext.queryValue("page").map({ PathID.parse(Substring($0)) }) ?? 1 else {
            var filters = FieldErrors()
            filters.add("page", "must be a positive integer")
            return invalidQuery(filters, requestContext)
        }
        let scope: ReadScope
        do { scope = try store.readableScope(principal, of: kind) } catch { return unavailable(requestContext, error) }
        let request = hostinger(ReadRoute.ReadArguments(id: 0, page: page))
        return fromHostinger(request, requestContext) { body in
            guard !scope.all else { return body }
            let items = (body["data"]?.arrayValue ?? []).filter { item in item["id"]?.intValue.map(scope.contains) == true }
            var meta = body["meta"] ?? .object([])
            if case .object(let members) = meta { meta = .object(members.filter { $0.key != "total" }) }
            return .object([("data", .array(items)), ("meta", meta)])
        }
    }

    /// Hostinger's answer to a read, passed on (after `transform`) or turned into a problem.
    /// Identical reads at the same moment are one call, and an answer is served again for
    /// `VPSGATE_READ_CACHE_MS` with its `Age` (docs/design.md#the-shared-budget); a read the budget refuses gets
    /// the last good answer if there is one, else 503 upstream-budget.
    private func fromHostinger(_ request: HostingerRequest, _ requestContext: RequestContext,
                               _ transform: (JSONValue) -> JSONValue) -> FastCGIResponse {
        let (result, age) = context.readCache.read(request.path, ttlMilliseconds: context.configuration.readCacheMilliseconds) {
            hostinger.call(request, correlationID: requestContext.correlationID, trace: requestContext.trace)
        }
        if age != nil { metrics.increment(Metrics.readCacheHits) }
        switch result.outcome {
        case .succeeded:
            guard let body = result.body else { break }
            return json(200, transform(body).serialized(), headers: age.map { [.init("Age", String($0 / 1000))] } ?? [])
        case .notSent where result.budgetExhausted:
            var response = problem(Problem(.upstreamBudget, status: 503, title: "Hostinger budget exhausted",
                                           detail: "Commands come first in the Hostinger budget and have taken it; nothing was sent.",
                                           instance: requestContext.path), requestContext)
            response.headers.append(.init("Retry-After", String(RetryAfter.seconds(milliseconds: result.retryAfterMilliseconds))))
            return response
        case .rejected where result.status == 404:
            return notFound(requestContext)
        case .rejected where result.status == 422 && !result.isAuthenticationProblem:
            // Hostinger's refusal of this read (Monarx not installed, …): its reasons, passed on.
            var problem = Problem(.upstreamRejected, status: 422, title: "Rejected by Hostinger", detail: "Hostinger refused the read.",
                                  instance: requestContext.path, errors: result.fieldErrors)
            problem.upstream = (result.message, result.hostingerCorrelationID)
            return self.problem(problem, requestContext)
        case .notSent:
            var response = problem(Problem(.unavailable, status: 503, title: "Hostinger unavailable",
                                           detail: "Hostinger could not be reached.", instance: requestContext.path), requestContext)
            response.headers.append(.init("Retry-After", String(RetryAfter.seconds(milliseconds: result.retryAfterMilliseconds))))
            return response
        default: break
        }
        var problem = Problem(result.isAuthenticationProblem ? .upstreamAuth : .upstreamError, status: 502, title: "Hostinger failed",
                              detail: "Hostinger could not answer the read.", instance: requestContext.path)
        problem.upstream = (result.message, result.hostingerCorrelationID)
        return self.problem(problem, requestContext)
    }

    // MARK: - Operations

    /// One operation; with `?wait=S` (S ≤ 50), answered as soon as it is terminal or after S
    /// seconds, woken by the outbox's notifications (docs/design.md#completion-push).
    func getOperation(_ id: String, _ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var filters = FieldErrors()
        let wait = waitSeconds(requestContext, &filters)
        guard filters.isEmpty else { return invalidQuery(filters, requestContext) }
        do {
            guard var operation = try store.operation(id: id) else { return notFound(requestContext) }
            if try !store.mayRead(principal, operation.target) { return notFound(requestContext) }
            if !operation.state.isTerminal, operation.actionID != nil {
                operation = try refresh(operation, requestContext)
            }
            guard wait > 0, !operation.state.isTerminal else { return json(200, operation.json()) }
            guard context.push.enter() else {
                // Every waiting place is taken: the state now, and when to ask again.
                return json(200, operation.json(), headers: [.init("Retry-After", "1")])
            }
            defer { context.push.leave() }
            let deadline = requestContext.waitDeadline(seconds: wait)
            var seen = context.push.watch(id)
            defer { context.push.unwatch(id) }
            // Read again now that changes wake this request: one may have come in between.
            operation = try store.operation(id: id) ?? operation
            while !operation.state.isTerminal {
                let now = context.push.wait(for: id, after: seen, until: deadline)
                if now == seen { break }
                seen = now
                operation = try store.operation(id: id) ?? operation
            }
            return json(200, operation.json())
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// `wait`: absent or 0 to 50 seconds.
    func waitSeconds(_ requestContext: RequestContext, _ filters: inout FieldErrors) -> Int {
        guard let text = requestContext.queryValue("wait") else { return 0 }
        guard let seconds = Int(text), (0...50).contains(seconds), text.count <= 2 else {
            filters.add("wait", "must be a whole number of seconds from 0 to 50")
            return 0
        }
        return seconds
    }

    func invalidQuery(_ filters: FieldErrors, _ requestContext: RequestContext) -> FastCGIResponse {
        problem(Problem(.validationFailed, status: 422, title: "Invalid query", detail: "Some parameters are not valid.",
                        instance: requestContext.path, errors: filters.fields), requestContext)
    }

    /// Follows Hostinger's action for an open operation, at most once per refresh interval
    /// across all instances (the store claims the refresh). The lifecycle says what the
    /// action's state means; the store applies it as the reconciler's moves are applied.
    private func refresh(_ operation: OperationRecord, _ requestContext: RequestContext) throws(StoreError) -> OperationRecord {
        guard let actionID = operation.actionID, let vps = operation.vpsID,
            try store.claimRefresh(id: operation.id, intervalMilliseconds: context.configuration.refreshIntervalMilliseconds)
        else { return operation }
        let result = hostinger.call(.action(vm: vps, id: actionID), correlationID: requestContext.correlationID,
                                    trace: requestContext.trace)
        guard result.outcome == .succeeded, let action = result.body.flatMap(HostingerAction.init(json:)) else { return operation }
        guard let transition = OperationLifecycle.next(operation, on: .actionObserved(action)) else {
            guard action.state != operation.actionState else { return operation }
            try store.recordProgress(operation, actionState: action.state)
            var updated = operation
            updated.state = OperationState.following(actionState: action.state)
            updated.actionState = action.state
            return updated
        }
        var completion = requestContext.audit(transition.outcome, .completion, command: operation.command, vps: operation.vpsID)
        completion.operationID = operation.id
        completion.idempotencyKey = operation.idempotencyKey
        completion.hostingerStatus = result.status
        completion.hostingerActionID = actionID
        return try store.settle(operation, transition, audit: completion, leaseOwner: nil) ?? operation
    }

    func listOperations(_ principal: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var filters = FieldErrors()
        let vps = requestContext.queryValue("vps").map { PathID.parse(Substring($0)) }
        if case .some(nil) = vps { filters.add("vps", "must be a positive integer") }
        let state = requestContext.queryValue("state").map { OperationState(rawValue: $0) }
        if case .some(nil) = state { filters.add("state", "must be one of \(OperationState.allCases.map(\.rawValue).joined(separator: ", "))") }
        let limit = requestContext.queryValue("limit").map { Int($0) } ?? 50
        if !(limit.map { (1...200).contains($0) } ?? false) { filters.add("limit", "must be a whole number from 1 to 200") }
        let before = requestContext.queryValue("before")
        if let before, !UUIDv4.isValid(before) { filters.add("before", "must be an operation id") }
        let requester = requestContext.queryValue("requester").map { PercentDecoding.decode(Substring($0)) ?? "" }
        if let requester, !(1...200).contains(requester.count) {
            filters.add("requester", "must be a principal name of 1 to 200 characters, percent-encoded")
        }
        let command = requestContext.queryValue("command")
        if let command, Command.named(command) == nil { filters.add("command", "must be a command of the catalogue (vps.restart, …)") }
        let resource = requestContext.queryValue("resource").map { Target.parse($0) }
        if case .some(nil) = resource { filters.add("resource", "must be a resource: vps:1001, firewall:12, firewall:* or account") }
        let since = requestContext.queryValue("since").map(Self.timestamp)
        if case .some(nil) = since { filters.add("since", "must be an RFC 3339 time (2026-01-02T03:04:05Z)") }
        let until = requestContext.queryValue("until").map(Self.timestamp)
        if case .some(nil) = until { filters.add("until", "must be an RFC 3339 time (2026-01-02T03:04:05Z)") }
        guard filters.isEmpty, let limit else { return invalidQuery(filters, requestContext) }
        do {
            let scope = try store.readableScope(principal, of: .vps)
            var filter = OperationFilter(readable: scope.all ? nil : scope.ids, principal: principal, vpsID: vps ?? nil,
                                         state: state ?? nil, before: before, limit: limit)
            filter.requester = requester
            filter.command = command
            filter.resource = resource ?? nil
            filter.since = since ?? nil
            filter.until = until ?? nil
            let operations = try store.operations(filter)
            return json(200, Self.page(operations, nextBefore: operations.count == limit ? operations.last?.id : nil))
        } catch {
            return unavailable(requestContext, error)
        }
    }

    /// Microseconds since the epoch for `2026-01-02T03:04:05Z`, with up to 6 fraction digits
    /// and `Z` or an offset (`+02:00`); nil for anything else, a day the month lacks included.
    static func timestamp(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= bytes.count, range.allSatisfy({ (48...57).contains(bytes[$0]) }) else { return nil }
            return range.reduce(0) { $0 * 10 + Int64(bytes[$1] - 48) }
        }
        guard bytes.count >= 20, bytes.count <= 32, let year = number(0..<4), bytes[4] == 45, let month = number(5..<7), bytes[7] == 45,
              let day = number(8..<10), bytes[10] == 84, let hour = number(11..<13), bytes[13] == 58, let minute = number(14..<16),
              bytes[16] == 58, let second = number(17..<19), (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[Int(month) - 1]).contains(day) else { return nil }
        var index = 19
        var fraction: Int64 = 0
        if bytes[index] == 46 {
            let start = index + 1
            index = start
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
            guard (1...6).contains(index - start), let digits = number(start..<index) else { return nil }
            fraction = digits * [1, 100_000, 10_000, 1000, 100, 10, 1][index - start]
        }
        guard index < bytes.count else { return nil }
        var offset: Int64 = 0
        if bytes[index] != 90 || index + 1 != bytes.count {
            guard bytes[index] == 43 || bytes[index] == 45, bytes.count == index + 6, let hours = number(index + 1..<index + 3),
                  bytes[index + 3] == 58, let minutes = number(index + 4..<index + 6), hours < 24, minutes < 60
            else { return nil }
            offset = (hours * 60 + minutes) * 60 * (bytes[index] == 43 ? 1 : -1)
        }
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let days = era * 146_097 + (yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear) - 719_468
        return ((days * 86_400 + hour * 3600 + minute * 60 + second) - offset) * 1_000_000 + fraction
    }

    /// `{"data": [operations…], "next_before": id or null}`.
    static func page(_ operations: [OperationRecord], nextBefore: String?) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("data")
        writer.beginArray()
        for operation in operations { operation.write(to: &writer) }
        writer.endArray()
        writer.member("next_before", nextBefore)
        writer.endObject()
        return writer.bytes
    }
}
