import VpsgateCore

/// Calls Hostinger: the client, or a stand-in in unit tests.
public protocol HostingerCalling {
    /// One logical call, with the retry rules; never throws: the result says how it ended.
    func call(_ request: HostingerRequest, correlationID: CorrelationID, trace: TraceContext) -> HostingerResult
}

/// How one call to Hostinger ended, with everything the pipeline and the audit need.
public struct HostingerResult: Sendable {
    public var outcome: CallOutcome
    /// The last HTTP status, when there was a response.
    public var status: Int?
    /// The last response body when it was JSON.
    public var body: JSONValue?
    /// Hostinger's `message`, for errors.
    public var message: String?
    /// Hostinger's own `correlation_id`, for its support.
    public var hostingerCorrelationID: String?
    /// Laravel-style field errors of a 422.
    public var fieldErrors: [(field: String, messages: [String])]
    /// The action a mutation returned.
    public var action: HostingerAction?
    /// Requests actually sent.
    public var attempts: Int
    /// When it is worth trying again (throttled or breaker open), in milliseconds.
    public var retryAfterMilliseconds: Int?
    /// Not sent because the shared budget had no slot within the bound (docs/design.md#the-shared-budget).
    public var budgetExhausted = false
    /// What went wrong on the wire, for the log (never shown to clients).
    public var transportError: String?
    /// The attempts of a repeat-safe request whose answer may hide a mutation Hostinger
    /// performed and that the outcome does not account for (`StrayAttempt`), times on the
    /// monotonic clock (`strayAttempts(databaseClock:)` moves them to the database's).
    public var strayAttempts: [StrayAttempt] = []

    public init(outcome: CallOutcome, status: Int? = nil, body: JSONValue? = nil, message: String? = nil,
                hostingerCorrelationID: String? = nil, fieldErrors: [(field: String, messages: [String])] = [],
                action: HostingerAction? = nil, attempts: Int = 0, retryAfterMilliseconds: Int? = nil) {
        self.outcome = outcome
        self.status = status
        self.body = body
        self.message = message
        self.hostingerCorrelationID = hostingerCorrelationID
        self.fieldErrors = fieldErrors
        self.action = action
        self.attempts = attempts
        self.retryAfterMilliseconds = retryAfterMilliseconds
    }

    /// Hostinger refused our credentials (401, or 403 for a token without scope).
    public var isAuthenticationProblem: Bool { outcome == .rejected && (status == 401 || status == 403) }

    /// What the operation's lifecycle needs of a command's call.
    public var dispatch: DispatchResult { dispatch(answersResource: false) }

    /// What the call's end means to the operation; a command Hostinger answers with a resource
    /// (`answersResource`) carries the answer's body as that resource when it succeeded.
    public func dispatch(answersResource: Bool) -> DispatchResult {
        DispatchResult(outcome: outcome, status: status, message: message, action: answersResource ? nil : action,
                       isAuthenticationProblem: isAuthenticationProblem, retryAfterMilliseconds: retryAfterMilliseconds,
                       resource: answersResource && outcome == .succeeded ? body : nil, budgetExhausted: budgetExhausted)
    }
}

extension HostingerResult {
    /// The stray attempts by the database's clock, given one reading of it and the
    /// monotonic time (microseconds) of that reading.
    public func strayAttempts(databaseClock: (microseconds: Int64, monotonic: Int64)) -> [StrayAttempt] {
        strayAttempts.map {
            StrayAttempt(number: $0.number, startedAt: databaseClock.microseconds + ($0.startedAt - databaseClock.monotonic),
                         endedAt: databaseClock.microseconds + ($0.endedAt - databaseClock.monotonic))
        }
    }
}
