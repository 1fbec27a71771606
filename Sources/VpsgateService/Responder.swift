import FastCGI
import Hostinger
import Logging
import VpsgateCore
import VpsgateStore

#if canImport(Glibc)
import Glibc
#endif

/// Answers vpsgate's HTTP API on one worker thread, with that thread's store (its database
/// connection) and Hostinger client. Generic over both so that unit tests run it against
/// in-memory stand-ins.
public struct Responder<Store: ResponderStore, Upstream: HostingerCalling>: FastCGIResponder {
    let context: ServiceContext
    let store: Store
    let hostinger: Upstream
    /// This worker's own metrics shard: recording takes no lock another worker holds.
    let metrics: Metrics.Shard
    /// This worker's recent positive token checks.
    let tokens = TokenCache()

    public init(context: ServiceContext, store: Store, hostinger: Upstream) {
        self.context = context
        self.store = store
        self.hostinger = hostinger
        self.metrics = context.metrics.shard()
    }
}

extension Responder where Store == PostgresStore, Upstream == HostingerClient {
    /// A worker's responder: its own database connection and curl handle.
    public init(context: ServiceContext) {
        let store = context.makeStore(role: nil)
        self.init(context: context, store: store, hostinger: context.makeHostingerClient(logger: context.logger, budgetStore: store))
    }
}

extension Responder {

    public mutating func respond(to request: FastCGIRequest) -> FastCGIResponse {
        let requestContext = RequestContext(request, logger: context.logger, tracing: context.tracer != nil)
        let internalCheck = request.parameters["VPSGATE_INTERNAL"] != nil
        let routeLabel = internalCheck ? "token-check" : Self.routeLabel(method: request.method, path: request.path)
        let span = context.tracer?.serverSpan(routeLabel.hasPrefix(request.method + " ") ? routeLabel : "\(request.method) \(routeLabel)",
                                              continuing: requestContext.trace)
        span?.set("http.request.method", request.method)
        span?.set("http.route", routeLabel)
        span?.set("vpsgate.correlation_id", requestContext.correlationID.value)
        // The request's trace names every line logged while it is answered, exported or not.
        var response: FastCGIResponse = Tracing.within(requestContext.trace, span) {
            if request.bodyExceededLimit {
                let response = problem(Problem(.payloadTooLarge, status: 413, title: "Request body too large",
                                               detail: "The body exceeds \(context.configuration.maxBodyBytes) bytes.", instance: request.path),
                                       requestContext)
                auditRefusedCommand(request, response, outcome: .invalid, problem: .payloadTooLarge, requestContext)
                return response
            }
            return route(request, requestContext)
        }
        if let span {
            span.set("http.response.status_code", response.status)
            if response.status >= 500 { span.fail("\(response.status)") }
            span.end()
        }
        response.headers.append(.init("X-Request-ID", requestContext.correlationID.value))
        if !internalCheck {
            metrics.increment(Metrics.requests, [("route", routeLabel), ("status", String(response.status))])
            metrics.observe(Metrics.requestDuration, [("route", routeLabel)], seconds: requestContext.elapsedMilliseconds / 1000)
        } else {
            metrics.increment(Metrics.requests, [("route", "token-check"), ("status", String(response.status))])
        }
        return response
    }

    /// A bounded label for a path: the read's template, or the command's name.
    static func routeLabel(method: String, path: String) -> String {
        if path == "/mcp" { return "\(method == "POST" ? "POST" : "other") /mcp" }
        if let route = ReadRoute.match(path)?.route, method == "GET" || method == "HEAD" || route.isService {
            return route.label
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if method == "POST", parts.count == 5, parts[1] == "v1", parts[2] == "operations", let action = ApprovalAction(rawValue: String(parts[4])) {
            return "POST /v1/operations/{id}/\(action.rawValue)"
        }
        if method == "POST", parts.count >= 3, parts[1] == "v1", parts[2] == "batches" {
            if parts.count == 3 { return "POST /v1/batches" }
            if parts.count == 5, let action = BatchAction(rawValue: String(parts[4])) { return "POST /v1/batches/{id}/\(action.rawValue)" }
        }
        return Command.match(method: method, path: path)?.0.name ?? "other"
    }

    /// What nginx sent, for the tests that check what reaches vpsgate (debug routes only);
    /// credentials are shown by presence, never by value.
    static func receivedParameters(_ request: FastCGIRequest) -> JSONValue {
        let secret: Set<String> = ["HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_PROXY_AUTHORIZATION"]
        return .object(request.parameters.sorted { $0.key < $1.key }.map { name, value in
            (name, .string(secret.contains(name) ? "<redacted, \(value.utf8.count) bytes>" : value))
        })
    }

    // MARK: - Routing

    /// An API request made inside this worker (a tool call of `/mcp`), routed as one from nginx.
    func routed(_ request: FastCGIRequest) -> FastCGIResponse {
        route(request, RequestContext(request, logger: context.logger, tracing: context.tracer != nil))
    }

    private func route(_ request: FastCGIRequest, _ requestContext: RequestContext) -> FastCGIResponse {
        if request.parameters["VPSGATE_INTERNAL"] == "token-check" {
            return tokenCheck(request, requestContext)
        }
        switch (request.method, request.path) {
        case ("GET", "/healthz"), ("HEAD", "/healthz"):
            return json(200, Array(#"{"status":"ok","version":"\#(BuildInfo.version)"}"#.utf8))
        case ("GET", "/readyz"), ("HEAD", "/readyz"):
            return readiness(requestContext)
        case ("GET", "/openapi.json"):
            return json(200, context.openAPIDocument)
        case ("GET", "/metrics"):
            return FastCGIResponse(status: 200, headers: [.init("Content-Type", "text/plain; version=0.0.4")],
                                   body: Array(context.metrics.render(gauges: scrapeGauges(requestContext)).utf8))
        case ("GET", "/__debug/sleep") where context.configuration.debugRoutes:
            let milliseconds = min(max(requestContext.queryValue("ms").flatMap { Int($0) } ?? 1000, 0), 60_000)
            requestContext.logger.info("debug sleep", metadata: ["ms": "\(milliseconds)"])
            usleep(useconds_t(milliseconds) * 1000)
            return json(200, Array(#"{"slept_ms":\#(milliseconds)}"#.utf8))
        case ("GET", "/__debug/insert") where context.configuration.debugRoutes:
            // The benchmark's floor: one durable single-row insert through the same connection.
            do {
                try store.insertBenchmarkRow()
                return json(200, Array(#"{"inserted":1}"#.utf8))
            } catch {
                return unavailable(requestContext, error)
            }
        case (_, "/mcp"):
            return mcp(request, requestContext)
        case ("GET", "/v1/__debug/params") where context.configuration.debugRoutes:
            return json(200, Self.receivedParameters(request).serialized(sortedKeys: true))
        case (_, "/healthz"), (_, "/readyz"):
            var response = problem(Problem(.methodNotAllowed, status: 405, title: "Method not allowed", detail: "Use GET.",
                                           instance: request.path), requestContext)
            response.headers.append(.init("Allow", "GET, HEAD"))
            return response
        default:
            break
        }
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard segments.first == "v1" else { return notFound(requestContext) }
        return api(request, Array(segments.dropFirst()), requestContext)
    }

    private func api(_ request: FastCGIRequest, _ segments: [Substring], _ requestContext: RequestContext) -> FastCGIResponse {
        if request.method == "GET", let (route, id, parameter) = ReadRoute.match(request.path) {
            return read(route, id: id, parameter: parameter, requestContext)
        }
        if request.method == "POST", segments.count == 3, segments[0] == "operations", let action = ApprovalAction(rawValue: String(segments[2])) {
            let id = String(segments[1])
            guard UUIDv4.isValid(id) else { return notFound(requestContext) }
            return authenticated(requestContext) { decide(action, operationID: id, request: request, principal: $0, $1) }
        }
        if request.method == "POST", segments.first == "batches" {
            if segments.count == 1 {
                return authenticated(requestContext) { createBatch(request, principal: $0, $1) }
            }
            if segments.count == 3, let id = PathID.parse(segments[1]), let action = BatchAction(rawValue: String(segments[2])) {
                return authenticated(requestContext) { decideBatch(action, id: id, request: request, principal: $0, $1) }
            }
            return notFound(requestContext)
        }
        guard let (command, target, parameters) = Command.match(method: request.method, segments: segments) else {
            return notFound(requestContext)
        }
        guard let principal = requestContext.principal else {
            let response = unauthenticated(requestContext)
            auditRefusedCommand(request, response, outcome: .denied, problem: .unauthenticated, requestContext)
            return response
        }
        return runCommand(command, target: target, parameters: parameters, request: request, principal: principal, requestContext)
    }

    /// A `/v1` read: ids checked, then only for an authenticated principal. A read the
    /// catalogue answers from Hostinger needs no case of its own (`readFromHostinger`).
    private func read(_ route: ReadRoute, id: Substring?, parameter: Substring?, _ requestContext: RequestContext) -> FastCGIResponse {
        switch route {
        case .listVPS: return authenticated(requestContext) { listVPS($0, $1) }
        case .listOperations: return authenticated(requestContext) { listOperations($0, $1) }
        case .approvals: return authenticated(requestContext) { listApprovals($0, $1) }
        case .events: return authenticated(requestContext) { listEvents($0, $1) }
        case .me: return authenticated(requestContext) { me($0, $1) }
        case .batches: return authenticated(requestContext) { listBatches(principal: $0, $1) }
        case .freezes: return authenticated(requestContext) { listFreezes($0, $1) }
        case .batch:
            guard let batch = id.flatMap(PathID.parse) else { return notFound(requestContext) }
            return authenticated(requestContext) { getBatch(batch, principal: $0, $1) }
        case .firewalls, .publicKeys, .scripts: return authenticated(requestContext) { listResources(route, $0, $1) }
        case .getOperation:
            guard let id = id.map(String.init), UUIDv4.isValid(id) else { return notFound(requestContext) }
            return authenticated(requestContext) { getOperation(id, $0, $1) }
        case .operationTimeline:
            guard let id = id.map(String.init), UUIDv4.isValid(id) else { return notFound(requestContext) }
            return authenticated(requestContext) { operationTimeline(id, $0, $1) }
        default:
            guard !route.isService, route.hostinger != nil else { return notFound(requestContext) }
            var resource = 0
            if route.namesOne {
                guard let parsed = id.flatMap(PathID.parse) else { return notFound(requestContext) }
                resource = parsed
            }
            return authenticated(requestContext) { readFromHostinger(route, resource, parameter: parameter, $0, $1) }
        }
    }

    /// Identity comes only from `REMOTE_USER`, set by nginx; without it, nothing is served.
    private func authenticated(_ requestContext: RequestContext, _ body: (String, RequestContext) -> FastCGIResponse) -> FastCGIResponse {
        guard let principal = requestContext.principal else { return unauthenticated(requestContext) }
        return body(principal, requestContext)
    }

    private func unauthenticated(_ requestContext: RequestContext) -> FastCGIResponse {
        var response = problem(Problem(.unauthenticated, status: 401, title: "Authentication required",
                                       detail: "No authenticated principal.", instance: requestContext.path), requestContext)
        response.headers.append(.init("WWW-Authenticate", "Bearer"))
        return response
    }

    /// The one final audit row of a request to a command path that ends before the command
    /// pipeline starts (a body over the limit, no principal): docs/design.md#audit asks one for
    /// every such request. Nothing of the body is kept.
    private func auditRefusedCommand(_ request: FastCGIRequest, _ response: FastCGIResponse, outcome: AuditOutcome, problem: Problem.Code,
                                     _ requestContext: RequestContext) {
        guard let (command, target, _) = Command.match(method: request.method, path: request.path) else { return }
        var audit = requestContext.audit(outcome, command: command.name, vps: target.vpsID)
        audit.httpStatus = response.status
        audit.problemType = Problem.typePrefix + problem.rawValue
        record(audit, requestContext)
    }

    /// Writes an audit row that is not part of another record's transaction; a failure is logged.
    func record(_ audit: AuditEntry, _ requestContext: RequestContext) {
        do {
            try store.record(audit)
        } catch {
            requestContext.logger.error("audit row not written", metadata: ["error": "\(error)", "outcome": "\(audit.outcome.rawValue)"])
        }
    }

    // MARK: - Metrics

    /// Gauges read at scrape time: the breaker, and from the database the operations by
    /// state, the oldest open operation (reconciler lag) and the audit rows not sealed yet.
    private func scrapeGauges(_ requestContext: RequestContext) -> [(name: String, help: String, labels: [(String, String)], value: Double)] {
        let breaker: Double =
            switch context.circuit.state {
            case .closed: 0
            case .halfOpen: 0.5
            case .open: 1
            }
        var gauges: [(name: String, help: String, labels: [(String, String)], value: Double)] = [
            ("vpsgate_hostinger_breaker_open", "1 open, 0.5 half-open (probing), 0 closed.", [], breaker),
            ("vpsgate_outcome_writes_waiting", "Command outcomes this instance holds until the database takes them.", [],
             Double(context.pendingOutcomes.waiting)),
            ("vpsgate_waiting_requests", "Requests waiting (?wait=) for an operation or an event on this instance.", [],
             Double(context.push.waitingRequests)),
            ("vpsgate_waiting_requests_max", "VPSGATE_MAX_WAITERS: waiting places on this instance.", [], Double(context.push.maxWaiters)),
            ("vpsgate_build_info", "The build this instance runs: always 1, its labels say which.",
             [("version", BuildInfo.version), ("commit", BuildInfo.commit)], 1),
        ]
        // The database-wide gauges come from the metrics lease's holder alone, so that sums
        // over instances count each row once; the others only say whether they reach the database.
        let exporter = context.metricsLease.isHeld
        gauges.append(("vpsgate_metrics_lease_held", "1 on the instance that exports the database-wide gauges.", [], exporter ? 1 : 0))
        guard exporter else {
            do {
                _ = try store.budgetState(name: SharedBudget<Store>.name(context))
                gauges.append(("vpsgate_database_up", "Whether the scrape could read the database.", [], 1))
            } catch {
                requestContext.logger.warning("metrics: database unavailable", metadata: ["error": "\(error)"])
                gauges.append(("vpsgate_database_up", "Whether the scrape could read the database.", [], 0))
            }
            return gauges
        }
        do {
            let database = try store.gauges()
            for (state, count) in database.operationsByState {
                gauges.append(("vpsgate_operations", "Operations by state.", [("state", state.rawValue)], Double(count)))
            }
            for (state, count) in try store.batchCounts() {
                gauges.append(("vpsgate_batches", "Batches by state.", [("state", state)], Double(count)))
            }
            let budget = try store.budgetState(name: SharedBudget<Store>.name(context))
            gauges.append(("vpsgate_budget_next_slot_seconds",
                           "How far ahead of now the shared Hostinger budget's next free slot is (0: a call may go now).", [], budget.aheadSeconds))
            gauges.append(("vpsgate_budget_paused_seconds", "How long a Hostinger 429 still holds every instance.", [], budget.pausedSeconds))
            gauges.append(("vpsgate_budget_limit_per_minute", "HOSTINGER_RATE_LIMIT as calls per minute (0: no limit).", [],
                           context.configuration.hostingerRateLimit.map { Double($0.requests) * 60 / Double($0.perSeconds) } ?? 0))
            gauges.append(("vpsgate_reconciler_oldest_open_operation_seconds", "Age of the oldest operation not terminal yet.", [],
                           database.oldestOpenSeconds))
            gauges.append(("vpsgate_operations_stale", "Operations flagged stale.", [], Double(database.stale)))
            gauges.append(("vpsgate_audit_rows_unsealed", "Audit rows not sealed into the chain yet.", [], Double(database.unsealedAuditRows)))
            gauges.append(("vpsgate_event_feed_lag_seconds",
                           "Age of the oldest committed event the feed holds back: a transaction open since before it was written (0: none).",
                           [], database.eventFeedLagSeconds))
            gauges.append(("vpsgate_database_up", "Whether the scrape could read the database.", [], 1))
        } catch {
            requestContext.logger.warning("metrics: database gauges unavailable", metadata: ["error": "\(error)"])
            gauges.append(("vpsgate_database_up", "Whether the scrape could read the database.", [], 0))
        }
        return gauges
    }

    // MARK: - Health

    private func readiness(_ requestContext: RequestContext) -> FastCGIResponse {
        do {
            switch try store.schema() {
            case .current: return json(200, Array(#"{"status":"ready"}"#.utf8))
            case .behind: return notReady("The database schema is not current; run vpsgate migrate.", requestContext)
            case .absent: return notReady("The database has no schema yet; run vpsgate migrate.", requestContext)
            }
        } catch {
            requestContext.logger.warning("readiness: database check failed", metadata: ["error": "\(error)"])
            return notReady("The database is not reachable.", requestContext)
        }
    }

    private func notReady(_ detail: String, _ requestContext: RequestContext) -> FastCGIResponse {
        var response = problem(Problem(.notReady, status: 503, title: "Not ready", detail: detail, instance: requestContext.path), requestContext)
        response.headers.append(.init("Retry-After", "5"))
        return response
    }

    // MARK: - Responses

    func json(_ status: Int, _ body: [UInt8], headers: [FastCGIResponse.Header] = []) -> FastCGIResponse {
        FastCGIResponse(status: status, headers: [.init("Content-Type", "application/json")] + headers, body: body)
    }

    func problem(_ problem: Problem, _ requestContext: RequestContext) -> FastCGIResponse {
        FastCGIResponse(status: problem.status,
                        headers: [.init("Content-Type", "application/problem+json"), .init("Cache-Control", "no-store")],
                        body: problem.json(correlationID: requestContext.correlationID, base: context.configuration.problemBaseURL))
    }

    func notFound(_ requestContext: RequestContext) -> FastCGIResponse {
        problem(Problem(.notFound, status: 404, title: "Not found", detail: "No such resource.", instance: requestContext.path), requestContext)
    }

    /// 503 when the database (or another dependency) cannot be reached; 500 for anything
    /// else, which is a bug: the details go to the log, never to the client.
    func unavailable(_ requestContext: RequestContext, _ error: any Error, retryAfter: Int = 2) -> FastCGIResponse {
        guard (error as? StoreError)?.isUnavailable ?? false else {
            requestContext.logger.error("internal error", metadata: ["error": "\(error)"])
            return problem(Problem(.internalError, status: 500, title: "Internal error",
                                   detail: "vpsgate failed; the correlation id identifies the failure in its logs.",
                                   instance: requestContext.path), requestContext)
        }
        requestContext.logger.error("unavailable", metadata: ["error": "\(error)"])
        var response = problem(Problem(.unavailable, status: 503, title: "Temporarily unavailable",
                                       detail: "A dependency is unavailable; try again later.", instance: requestContext.path), requestContext)
        response.headers.append(.init("Retry-After", String(retryAfter)))
        return response
    }
}
