import Synchronization
import VpsgateCore

/// One HTTP request as the simulator sees it.
public struct SimRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String
    /// Header names in lower case.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, path: String, query: String, headers: [(name: String, value: String)], body: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
}

/// The simulator's answer, and how long to hold it back (a fault's `delay_ms`).
public struct SimResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [SimHeader]
    public var body: [UInt8]
    public var delayMilliseconds: Int

    public struct SimHeader: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    static func json(_ status: Int, _ value: JSONValue, delay: Int = 0) -> SimResponse {
        SimResponse(status: status, headers: [SimHeader(name: "Content-Type", value: "application/json")],
                     body: value.serialized(), delayMilliseconds: delay)
    }
}

/// A faithful stand-in for Hostinger's VPS API (docs/simulator.md), with a control API under `/__sim/`.
///
/// All state lives behind one lock; actions advance with time, evaluated whenever a
/// request looks at them, so no background thread is needed. Answers are computed under
/// the lock and delayed (for `delay_ms` faults) by the caller, outside it.
public final class Simulator: Sendable {
    private let token: String
    private let defaultActionDelay: Int
    private let clock: @Sendable () -> Int64
    private let state: Mutex<SimState>

    /// A simulator accepting `token`; `clock` gives microseconds since the epoch.
    public init(token: String, actionDelayMilliseconds: Int = 1000, clock: @escaping @Sendable () -> Int64) {
        self.token = token
        self.defaultActionDelay = actionDelayMilliseconds
        self.clock = clock
        var initial = SimState.fixtures(now: clock(), actionDelayMilliseconds: actionDelayMilliseconds)
        // Hostinger never reuses an action id, and vpsgate keeps the ids it has seen: a
        // restarted simulator must not hand out an earlier run's ids, so it counts on from
        // the clock (microseconds: no run creates an action per microsecond).
        initial.nextActionID = max(initial.nextActionID, Int(clock()))
        self.state = Mutex(initial)
    }

    public func handle(_ request: SimRequest) -> SimResponse {
        let now = clock()
        if request.path.hasPrefix("/__sim/") {
            return state.withLock { control(request, state: &$0, now: now) }
        }
        return state.withLock { state in
            state.log.append(LoggedRequest(
                method: request.method, path: request.path, query: request.query, headers: request.headers,
                body: request.body.isEmpty ? .null : ((try? JSONValue.parse(request.body)) ?? .string(String(decoding: request.body, as: UTF8.self))),
                at: now))
            if state.log.count > SimState.maximumLogEntries { state.log.removeFirst(state.log.count - SimState.maximumLogEntries) }
            let entry = state.log.count - 1
            advance(&state, now: now)
            if let refusal = throttle(request, state: &state, now: now) {
                state.log[entry].status = refusal.status
                state.log[entry].rateLimited = true
                return refusal
            }
            let firstNewAction = state.nextActionID
            let (response, applied) = answer(request, state: &state, now: now)
            state.log[entry].status = response.status
            state.log[entry].applied = applied && request.method != "GET"
            state.log[entry].actionIDs = Array(firstNewAction..<state.nextActionID)
            return response
        }
    }

    /// The rate limit's 429, when it refuses the request. It stands in front of the API and
    /// of the faults (which play the API's part), behind the CDN: a request the CDN blocks
    /// for want of a User-Agent never reaches it, and is not counted.
    private func throttle(_ request: SimRequest, state: inout SimState, now: Int64) -> SimResponse? {
        guard let agent = request.header("user-agent"), !agent.isEmpty,
              let retryAfter = state.rateLimit.admit(at: now) else { return nil }
        var response = Self.error(429, Self.message(for: 429))
        response.headers.append(.init(name: "Retry-After", value: String(retryAfter)))
        return response
    }

    /// The answer to an API request, faults included, and whether it was processed successfully.
    private func answer(_ request: SimRequest, state: inout SimState, now: Int64) -> (SimResponse, Bool) {
        guard let index = state.faults.firstIndex(where: { $0.matches(request) }) else {
            let response = api(request, state: &state, now: now, overrides: ActionOverrides())
            return (response, response.status == 200)
        }
        let rule = state.faults[index]
        if state.faults[index].times > 0 {
            state.faults[index].times -= 1
            if state.faults[index].times == 0 { state.faults.remove(at: index) }
        }
        if rule.answerWithLastAction, let action = Self.lastAction(for: request, in: state) {
            // Hostinger answering a repeated request with the action it already has.
            var response = SimResponse.json(200, action.json(now: now))
            response.delayMilliseconds = rule.delayMilliseconds
            return (response, false)
        }
        guard let status = rule.status else {
            var response = api(request, state: &state, now: now, overrides: rule.overrides)
            response.delayMilliseconds = rule.delayMilliseconds
            return (response, response.status == 200)
        }
        var applied = false
        if rule.apply {
            applied = api(request, state: &state, now: now, overrides: rule.overrides).status == 200
        }
        var response = rule.html ? Self.html(status) : Self.error(status, Self.message(for: status))
        if let retryAfter = rule.retryAfter { response.headers.append(.init(name: "Retry-After", value: String(retryAfter))) }
        response.delayMilliseconds = rule.delayMilliseconds
        return (response, applied)
    }

    // MARK: - Hostinger's API

    private func api(_ request: SimRequest, state: inout SimState, now: Int64, overrides: ActionOverrides) -> SimResponse {
        // Hostinger's CDN blocks requests without a User-Agent before the API sees them.
        guard let agent = request.header("user-agent"), !agent.isEmpty else { return Self.html(403) }
        guard request.header("authorization") == "Bearer \(token)" else { return Self.error(401, "Unauthenticated") }
        let prefix = "/api/vps/v1"
        guard request.path.hasPrefix(prefix + "/") else { return Self.routeNotFound() }
        let path = String(request.path.dropFirst(prefix.count))
        let body: JSONValue = request.body.isEmpty ? .object([]) : ((try? JSONValue.parse(request.body)) ?? .object([]))
        var context = Context(state: state, now: now, body: body, overrides: overrides, query: request.query)
        let response = context.route(request.method, path)
        state = context.state
        return response
    }

    /// Settles every action whose time has come, oldest first (so that two actions on one
    /// VM leave it as the later one says).
    private func advance(_ state: inout SimState, now: Int64) {
        for id in state.unsettled.sorted() {
            guard let action = state.actions[id], now >= action.completesAt else { continue }
            state.settle(id)
        }
    }

    // MARK: - Control API

    private func control(_ request: SimRequest, state: inout SimState, now: Int64) -> SimResponse {
        let body = (try? JSONValue.parse(request.body.isEmpty ? Array("{}".utf8) : request.body)) ?? .null
        switch (request.method, request.path) {
        case ("POST", "/__sim/reset"):
            // Action and resource ids keep counting: Hostinger never reuses one, and vpsgate relies on that.
            let (nextActionID, ids) = (state.nextActionID, state.ids)
            state = SimState.fixtures(now: now, actionDelayMilliseconds: defaultActionDelay)
            (state.nextActionID, state.ids) = (nextActionID, ids)
            return .json(200, .object([("reset", .bool(true))]))
        case ("POST", "/__sim/faults"):
            guard let pattern = body["path"]?.stringValue, (try? Regex(pattern)) != nil else {
                return .json(400, .object([("message", .string("path must be a regular expression"))]))
            }
            let rule = FaultRule(
                id: state.nextFaultID, method: body["method"]?.stringValue?.uppercased(), pathPattern: pattern,
                status: body["status"]?.intValue, retryAfter: body["retry_after"]?.intValue,
                delayMilliseconds: body["delay_ms"]?.intValue ?? 0, apply: body["apply"]?.boolValue ?? false,
                times: body["times"]?.intValue ?? 1, actionError: body["action_error"]?.boolValue ?? false,
                html: body["html"]?.boolValue ?? false, answerWithLastAction: body["answer_with_last_action"]?.boolValue ?? false,
                actionName: body["action_name"]?.stringValue, actionState: body["action_state"]?.stringValue)
            state.nextFaultID += 1
            state.faults.append(rule)
            return .json(200, rule.json())
        case ("GET", "/__sim/faults"):
            return .json(200, .array(state.faults.map { $0.json() }))
        case ("DELETE", "/__sim/faults"):
            state.faults.removeAll()
            return .json(200, .object([("cleared", .bool(true))]))
        case ("DELETE", "/__sim/requests"):
            state.log.removeAll()
            return .json(200, .object([("cleared", .bool(true))]))
        case ("GET", "/__sim/requests"):
            return .json(200, .array(state.log.map { entry in
                .object([
                    ("method", .string(entry.method)), ("path", .string(entry.path)), ("query", .string(entry.query)),
                    ("headers", .object(entry.headers.map { ($0.0, .string($0.1)) })), ("body", entry.body),
                    ("at", .string(Timestamp.rfc3339(microseconds: entry.at))),
                    ("status", entry.status.map { .number(String($0)) } ?? .null), ("applied", .bool(entry.applied)),
                    ("action_ids", .array(entry.actionIDs.map { .number(String($0)) })),
                    ("rate_limited", .bool(entry.rateLimited)),
                ])
            }))
        case ("POST", "/__sim/config"):
            return configure(body, state: &state)
        case ("POST", "/__sim/vms"):
            guard let id = body["id"]?.intValue, id > 0, state.vms[id] == nil else {
                return .json(400, .object([("message", .string("id must be a new positive integer"))]))
            }
            let vmState = body["state"]?.stringValue ?? "running"
            let vm = VirtualMachine.fixture(id: id, state: vmState, now: now)
            state.vms[id] = vm
            return .json(200, Context(state: state, now: now).vmJSON(vm))
        default:
            return .json(404, .object([("message", .string("unknown control endpoint"))]))
        }
    }

    /// `POST /__sim/config`: each setting given changes; the others stay as they are.
    private func configure(_ body: JSONValue, state: inout SimState) -> SimResponse {
        if let delay = body["action_delay_ms"]?.intValue, delay >= 0 { state.actionDelayMilliseconds = delay }
        if let extra = body["extra_states"]?.boolValue { state.extraStates = extra }
        let limit = body["rate_limit_per_minute"], window = body["rate_limit_window_ms"]
        if limit != nil || window != nil {
            guard limit.map({ $0.isNull || ($0.intValue ?? -1) >= 0 }) ?? true,
                  window.map({ $0.isNull || ($0.intValue ?? 0) > 0 }) ?? true else {
                return .json(400, .object([("message", .string(
                    "rate_limit_per_minute must be a whole number, 0 or more; rate_limit_window_ms a positive one"))]))
            }
            // A new limit starts a new window.
            state.rateLimit = RateLimit(
                perMinute: limit == nil ? state.rateLimit.perMinute : (limit?.intValue ?? 0),
                windowMicroseconds: window == nil ? state.rateLimit.windowMicroseconds : Int64(window?.intValue ?? 60_000) * 1000)
        }
        return .json(200, .object([
            ("action_delay_ms", .number(String(state.actionDelayMilliseconds))), ("extra_states", .bool(state.extraStates)),
            ("rate_limit_per_minute", .number(String(state.rateLimit.perMinute))),
            ("rate_limit_window_ms", .number(String(state.rateLimit.windowMicroseconds / 1000))),
        ]))
    }

    // MARK: - Response shapes

    static func error(_ status: Int, _ message: String, errors: [(String, [String])]? = nil) -> SimResponse {
        var members: [(key: String, value: JSONValue)] = [("message", .string(message))]
        if let errors { members.append(("errors", .object(errors.map { ($0.0, .array($0.1.map { .string($0) })) }))) }
        members.append(("correlation_id", .string(UUIDv4.generate())))
        return .json(status, .object(members))
    }

    static func routeNotFound() -> SimResponse { error(404, "[VPS:2002] Route is not found.") }

    static func html(_ status: Int) -> SimResponse {
        SimResponse(status: status, headers: [.init(name: "Content-Type", value: "text/html; charset=UTF-8")],
                    body: Array("<!DOCTYPE html><html><head><title>\(status)</title></head><body><h1>Error \(status)</h1></body></html>".utf8),
                    delayMilliseconds: 0)
    }

    static func message(for status: Int) -> String {
        switch status {
        case 401: "Unauthenticated"
        case 403: "[VPS:2000] Unauthorized"
        case 404: "[VPS:2002] Route is not found."
        case 422: "The given data was invalid."
        case 429: "Too Many Attempts."
        default: "Server Error"
        }
    }

    /// The newest action of the VM a mutation's path names, if it has one.
    static func lastAction(for request: SimRequest, in state: SimState) -> Action? {
        let parts = request.path.split(separator: "/").map(String.init)
        let vmID = parts.last.flatMap { Int($0) }.flatMap { state.vms[$0] != nil ? $0 : nil }
            ?? parts.firstIndex(of: "virtual-machines").flatMap { parts.indices.contains($0 + 1) ? Int(parts[$0 + 1]) : nil }
        guard let vmID, let id = state.actionsByVM[vmID]?.last else { return nil }
        return state.actions[id]
    }
}

extension FaultRule {
    func matches(_ request: SimRequest) -> Bool {
        guard times != 0 else { return false }
        if let method, method != request.method { return false }
        guard let regex = try? Regex(pathPattern) else { return false }
        return request.path.firstMatch(of: regex) != nil
    }
}
