import HTTPClient
import Logging
import Platform
import Synchronization
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// Where and how to reach Hostinger.
public struct HostingerSettings: Sendable {
    /// `https://developers.hostinger.com`, or hostinger-sim.
    public var baseURL: String
    public var token: Secret
    /// PEM bundle to verify Hostinger's certificate; the system store when nil.
    public var caFile: String?
    public var connectTimeoutMilliseconds: Int
    /// Per attempt.
    public var attemptTimeoutMilliseconds: Int
    /// For the whole call, retries included; must end well before nginx's fastcgi_read_timeout.
    public var deadlineMilliseconds: Int
    public var userAgent: String
    public var retryPolicy: RetryPolicy
    /// How long a command may wait for a slot of the shared budget (`VPSGATE_BUDGET_WAIT_MS`).
    public var budgetWaitMilliseconds = 5000

    public init(baseURL: String, token: Secret, caFile: String? = nil, connectTimeoutMilliseconds: Int = 2000,
                attemptTimeoutMilliseconds: Int = 8000, deadlineMilliseconds: Int = 20_000,
                userAgent: String = "vpsgate/0.1", retryPolicy: RetryPolicy = RetryPolicy()) {
        self.baseURL = baseURL
        self.token = token
        self.caFile = caFile
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.attemptTimeoutMilliseconds = attemptTimeoutMilliseconds
        self.deadlineMilliseconds = deadlineMilliseconds
        self.userAgent = userAgent
        self.retryPolicy = retryPolicy
    }
}

/// Who calls Hostinger first when the budget is short: commands (and the reads that settle
/// them) before clients' reads.
public enum BudgetPriority: String, Sendable {
    case command
    case read
}

/// The Hostinger budget every instance shares (docs/design.md#the-shared-budget).
public protocol UpstreamBudget {
    /// Blocks until a slot of the budget is this call's (nil), or answers at once with the
    /// milliseconds after which asking again may succeed, when no slot comes within
    /// `maxWaitMilliseconds` (reads never wait).
    func admit(_ priority: BudgetPriority, maxWaitMilliseconds: Int) -> Int?
    /// Hostinger answered 429: nothing goes for `milliseconds`, from any instance.
    func pause(forMilliseconds milliseconds: Int)
}

/// The circuit breaker for Hostinger, shared by every worker thread of the process.
public final class HostingerCircuit: Sendable {
    private let breaker: Mutex<CircuitBreaker>

    public init(failureThreshold: Int = 5, coolDownMilliseconds: Int = 10_000) {
        breaker = Mutex(CircuitBreaker(failureThreshold: failureThreshold, coolDownMilliseconds: coolDownMilliseconds))
    }

    func allowsCall(now: Int) -> Bool { breaker.withLock { $0.allowsCall(now: now) } }
    func record(success: Bool, now: Int) { breaker.withLock { $0.record(success: success, now: now) } }
    func retryAfterMilliseconds(now: Int) -> Int { breaker.withLock { $0.retryAfterMilliseconds(now: now) } }

    /// The breaker's state, for metrics and tests.
    public var state: CircuitBreaker.State { breaker.withLock { $0.state } }
}

/// Calls Hostinger with safe, bounded retries (docs/design.md#calling-hostinger-safely). One per worker thread: it
/// owns a curl handle whose connections stay open between calls.
public final class HostingerClient: HostingerCalling {
    private let settings: HostingerSettings
    private let commandCircuit: HostingerCircuit
    private let readCircuit: HostingerCircuit
    private let http: HTTPClient
    /// One per process: every thread's client resumes the TLS sessions any of them made with
    /// Hostinger, so a mutation's new connection (never a reused one: see
    /// HTTPClient.Request.freshConnection) costs an abbreviated handshake, not a full one.
    private static let share = HTTPShare()
    private let logger: Logger
    private let observe: @Sendable (_ operation: String, _ attempt: Int, _ result: AttemptResult, _ seconds: Double) -> Void
    private var random = SystemRandomNumberGenerator()
    /// The budget every instance shares (docs/design.md#the-shared-budget): asked before each attempt, told of
    /// each 429. Nil: no budget (unit tests).
    public var budget: (any UpstreamBudget)?
    /// The priority of this client's reads: `.read` for clients' reads; the reconciler's
    /// client reads to settle commands, at `.command`.
    public var readPriority: BudgetPriority = .read
    /// How long a call of this client may wait for a slot (nil: the settings').
    public var budgetWaitMilliseconds: Int?

    /// `observe` is told of every attempt (for metrics). Reads (GET) go through
    /// `readCircuit`, mutations through `circuit`: reads that fail, or a loop of them, can
    /// neither trip nor close the breaker commands depend on. Without `readCircuit` both share one.
    public init(settings: HostingerSettings, circuit: HostingerCircuit, readCircuit: HostingerCircuit? = nil, logger: Logger,
                observe: @escaping @Sendable (String, Int, AttemptResult, Double) -> Void = { _, _, _, _ in }) {
        self.settings = settings
        self.commandCircuit = circuit
        self.readCircuit = readCircuit ?? circuit
        self.http = HTTPClient(caFile: settings.caFile, share: Self.share)
        self.logger = logger
        self.observe = observe
    }

    /// Performs `request`, retrying as the policy allows; blocks up to the deadline.
    public func call(_ request: HostingerRequest, correlationID: CorrelationID, trace: TraceContext) -> HostingerResult {
        var result = attempts(request, correlationID: correlationID, trace: trace)
        // An unknown outcome is settled from Hostinger's list over the operation's whole
        // window, where it adopts the earliest action of its attempts (the first's, when
        // that one was performed): one fewer is stray.
        if result.outcome == .unknown, !result.strayAttempts.isEmpty { result.strayAttempts.removeFirst() }
        return result
    }

    private func attempts(_ request: HostingerRequest, correlationID: CorrelationID, trace: TraceContext) -> HostingerResult {
        var logger = self.logger
        logger[metadataKey: "correlation_id"] = "\(correlationID)"
        let circuit = request.method == "GET" ? readCircuit : commandCircuit
        let started = MonotonicClock.milliseconds()
        var result = HostingerResult(outcome: .notSent, fieldErrors: [], attempts: 0)
        var number = 0
        // Once an attempt may have reached Hostinger, the call can no longer end "not sent",
        // whatever later attempts say: that would let the same key run the command again.
        var mayHaveBeenReceived = false
        while true {
            number += 1
            let now = MonotonicClock.milliseconds()
            let remaining = settings.deadlineMilliseconds - (now - started)
            guard remaining > 0, circuit.allowsCall(now: now) else {
                // Nothing more goes out: settle with what the last attempt allows us to say.
                if number == 1 { result.retryAfterMilliseconds = circuit.retryAfterMilliseconds(now: now) }
                logger.warning("hostinger call not sent", metadata: [
                    "operation": "\(request.name)", "reason": "\(remaining > 0 ? "circuit open" : "deadline")",
                ])
                return result
            }
            if let budget {
                let priority = request.method == "GET" && !request.forCommand ? readPriority : .command
                if let retryAfter = budget.admit(priority, maxWaitMilliseconds: min(
                    // A slot must leave the attempt its whole timeout: a cut-short attempt may
                    // have been received, and would leave the operation unknown.
                    max(remaining - settings.attemptTimeoutMilliseconds, 0), budgetWaitMilliseconds ?? settings.budgetWaitMilliseconds)) {
                    // Not sent: no budget within the bound. A later attempt of a call that may
                    // have been received stays unknown, never "not sent".
                    result.outcome = mayHaveBeenReceived ? .unknown : .notSent
                    if !mayHaveBeenReceived { result.budgetExhausted = true }
                    result.retryAfterMilliseconds = retryAfter
                    logger.warning("hostinger call not sent", metadata: ["operation": "\(request.name)", "reason": "budget",
                                                                         "retry_ms": "\(retryAfter)"])
                    return result
                }
            }
            // Durations count from here: a wait for the budget is not the attempt's.
            let sentAt = MonotonicClock.milliseconds()
            let mutatesRepeatSafely = request.repeatSafe && request.method != "GET"
            let sentMicroseconds = mutatesRepeatSafely ? Clock.monotonicMicroseconds() : 0
            // Each attempt is a client span of the request's trace, and the `traceparent`
            // Hostinger receives names it.
            let span = attemptSpan(request, number: number)
            let attempt = send(request, correlationID: correlationID, traceparent: span?.traceparent ?? trace.traceparent,
                               timeout: remaining - (sentAt - now))
            result.attempts = number
            let finished = MonotonicClock.milliseconds()
            let attemptResult: AttemptResult
            switch attempt {
            case .success(let response):
                attemptResult = .status(response.status)
                absorb(response, into: &result)
                // A 429 is Hostinger, alive, asking us to slow down: the retry policy honours
                // its Retry-After, and every instance pauses; it is no sign of an upstream that is down.
                circuit.record(success: response.status < 500, now: finished)
                if response.status == 429 { budget?.pause(forMilliseconds: result.retryAfterMilliseconds ?? 1000) }
            case .failure(let error):
                attemptResult = error.requestMayHaveBeenSent ? .lost : .notSent
                result.status = nil
                result.retryAfterMilliseconds = nil
                result.transportError = error.description
                circuit.record(success: false, now: finished)
            }
            observe(request.name, number, attemptResult, Double(finished - sentAt) / 1000)
            if let span {
                switch attemptResult {
                case .status(let status):
                    span.set("http.response.status_code", status)
                    if status >= 500 { span.fail("\(status)") }
                case .notSent: span.fail("not sent")
                case .lost: span.fail("lost")
                }
                span.end()
            }
            logger.info("hostinger attempt", metadata: [
                "operation": "\(request.name)", "attempt": "\(number)", "result": "\(attemptResult)",
                "duration_ms": "\(finished - sentAt)", "hostinger_correlation_id": "\(result.hostingerCorrelationID ?? "-")",
            ])
            let decision = settings.retryPolicy.decide(
                after: .init(number: number, result: attemptResult, repeatSafe: request.repeatSafe,
                             elapsedMilliseconds: finished - started, deadlineMilliseconds: settings.deadlineMilliseconds,
                             retryAfterMilliseconds: result.retryAfterMilliseconds),
                random: &random)
            // What the caller would be told if no further attempt happens.
            result.outcome = settings.retryPolicy.decide(
                after: .init(number: settings.retryPolicy.maxAttempts, result: attemptResult, repeatSafe: request.repeatSafe,
                             elapsedMilliseconds: 0, deadlineMilliseconds: 1),
                random: &random
            ).outcome
            if case .lost = attemptResult { mayHaveBeenReceived = true }
            if case .status(let status) = attemptResult, status >= 500 { mayHaveBeenReceived = true }
            // A repeat-safe attempt whose answer may hide a performed mutation: Hostinger may
            // hold an action from it that the operation will not (docs/architecture.md).
            if mutatesRepeatSafely, attemptResult == .lost || (attemptResult.status ?? 0) >= 500 {
                result.strayAttempts.append(StrayAttempt(number: number, startedAt: sentMicroseconds, endedAt: Clock.monotonicMicroseconds()))
            }
            if mayHaveBeenReceived && result.outcome == .notSent { result.outcome = .unknown }
            switch decision {
            case .giveUp(let outcome):
                result.outcome = mayHaveBeenReceived && outcome == .notSent ? .unknown : outcome
                return result
            case .retry(let delay):
                usleep(useconds_t(delay) * 1000)
            }
        }
    }

    // MARK: - One attempt

    /// The attempt's span, when the request is traced: its method, its path's template (no
    /// query, numbers as `{id}`), its retry number; never a header or a body.
    private func attemptSpan(_ request: HostingerRequest, number: Int) -> Span? {
        guard let parent = Tracing.current else { return nil }
        let template = Self.template(request.path)
        let span = parent.child("\(request.method) \(template)", kind: .client)
        span.set("http.request.method", request.method)
        span.set("url.template", template)
        span.set("vpsgate.hostinger.operation", request.name)
        if number > 1 { span.set("http.request.resend_count", number - 1) }
        return span
    }

    /// `path` without its query, each all-digit segment as `{id}`.
    static func template(_ path: String) -> String {
        path.prefix { $0 != "?" }.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.allSatisfy(\.isASCIIDigit) && !$0.isEmpty ? "{id}" : String($0) }.joined(separator: "/")
    }

    private func send(_ request: HostingerRequest, correlationID: CorrelationID, traceparent: String, timeout: Int) -> Result<HTTPClient.Response, HTTPClientError> {
        var headers: [(name: String, value: String)] = [
            ("Authorization", "Bearer \(settings.token.value)"),
            ("Accept", "application/json"),
            ("User-Agent", settings.userAgent),
            ("X-Correlation-ID", correlationID.value),
            ("traceparent", traceparent),
        ]
        var body: [UInt8]?
        if let json = request.body {
            headers.append(("Content-Type", "application/json"))
            body = json.serialized()
        } else if request.method != "GET" {
            body = []
        }
        return http.perform(.init(
            method: request.method, url: settings.baseURL + request.path, headers: headers, body: body,
            connectTimeoutMilliseconds: min(settings.connectTimeoutMilliseconds, timeout),
            timeoutMilliseconds: min(settings.attemptTimeoutMilliseconds, timeout), freshConnection: !request.repeatSafe))
    }

    /// Reads what a response says; HTML and empty bodies (Hostinger's CDN) leave only the status.
    private func absorb(_ response: HTTPClient.Response, into result: inout HostingerResult) {
        result.status = response.status
        result.transportError = nil
        let json = try? JSONValue.parse(response.body, maxDepth: 64)
        result.body = json
        result.message = json?["message"]?.stringValue
        result.hostingerCorrelationID = json?["correlation_id"]?.stringValue
        result.fieldErrors = json?["errors"]?.objectValue?.map { member in
            (member.key, member.value.arrayValue?.compactMap(\.stringValue) ?? [])
        } ?? []
        result.action = (200..<300).contains(response.status) ? json.flatMap(HostingerAction.init(json:)) : nil
        result.retryAfterMilliseconds = response.header("retry-after").flatMap {
            RetryAfter.milliseconds($0, nowSeconds: Clock.realtimeMicroseconds() / 1_000_000)
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension AttemptResult {
    fileprivate var status: Int? {
        if case .status(let status) = self { status } else { nil }
    }
}

extension RetryDecision {
    fileprivate var outcome: CallOutcome {
        switch self {
        case .giveUp(let outcome): outcome
        case .retry: .unknown
        }
    }
}
