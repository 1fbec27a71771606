/// How a call to Hostinger ended, as the pipeline sees it.
public enum CallOutcome: String, Sendable, Equatable {
    /// Hostinger answered 2xx.
    case succeeded
    /// Hostinger answered with a definite refusal (4xx other than 429): nothing happened.
    case rejected
    /// Hostinger answered 5xx for a repeat-safe operation, after the allowed retries.
    case failed
    /// The request may have reached Hostinger and its answer is lost (or was a 5xx for an
    /// operation that must not be repeated): only Hostinger's action list can settle it.
    case unknown
    /// Provably never received by Hostinger (no connection, breaker open, throttled away).
    case notSent = "not_sent"
}

/// What one attempt produced.
public enum AttemptResult: Sendable, Equatable {
    /// An HTTP response with this status.
    case status(Int)
    /// No connection was made: the request was certainly not received.
    case notSent
    /// The request may have been received, and no response came (timeout, reset).
    case lost
}

/// What to do after an attempt.
public enum RetryDecision: Sendable, Equatable {
    case retry(afterMilliseconds: Int)
    case giveUp(CallOutcome)
}

/// The retry rules of docs/hostinger.md#calling-hostinger, as a pure function.
///
/// At most `maxAttempts` attempts; a delay with full jitter, uniform in
/// `[0, min(cap, base·2^(n-1))]` after attempt n, or `Retry-After` when Hostinger sent
/// one; never a wait that would end past the deadline. Connection failures and 429 are
/// always retried (nothing was done); 502/503/504 and lost answers only for repeat-safe
/// operations. An operation that is not repeat-safe is never sent again once it may have
/// been received.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var baseDelayMilliseconds: Int
    public var maxDelayMilliseconds: Int

    public init(maxAttempts: Int = 3, baseDelayMilliseconds: Int = 200, maxDelayMilliseconds: Int = 2000) {
        self.maxAttempts = maxAttempts
        self.baseDelayMilliseconds = baseDelayMilliseconds
        self.maxDelayMilliseconds = maxDelayMilliseconds
    }

    /// One finished attempt and its circumstances.
    public struct Attempt: Sendable, Equatable {
        /// 1 for the first attempt.
        public var number: Int
        public var result: AttemptResult
        public var repeatSafe: Bool
        /// Milliseconds since the first attempt started.
        public var elapsedMilliseconds: Int
        /// Milliseconds the whole call may take.
        public var deadlineMilliseconds: Int
        /// Hostinger's `Retry-After`, in milliseconds, when it sent one.
        public var retryAfterMilliseconds: Int?

        public init(number: Int, result: AttemptResult, repeatSafe: Bool, elapsedMilliseconds: Int,
                    deadlineMilliseconds: Int, retryAfterMilliseconds: Int? = nil) {
            self.number = number
            self.result = result
            self.repeatSafe = repeatSafe
            self.elapsedMilliseconds = elapsedMilliseconds
            self.deadlineMilliseconds = deadlineMilliseconds
            self.retryAfterMilliseconds = retryAfterMilliseconds
        }
    }

    /// Retry (after how long) or give up (with which outcome).
    public func decide(after attempt: Attempt, random: inout some RandomNumberGenerator) -> RetryDecision {
        let (retryable, outcomeIfNot): (Bool, CallOutcome) =
            switch attempt.result {
            case .status(let status) where (200..<300).contains(status): (false, .succeeded)
            case .status(429): (true, .notSent)
            case .status(502), .status(503), .status(504): (attempt.repeatSafe, attempt.repeatSafe ? .failed : .unknown)
            case .status(let status) where status >= 500: (false, attempt.repeatSafe ? .failed : .unknown)
            case .status: (false, .rejected)
            case .notSent: (true, .notSent)
            case .lost: (attempt.repeatSafe, .unknown)
            }
        guard retryable, attempt.number < maxAttempts else { return .giveUp(outcomeIfNot) }
        let delay: Int
        if let retryAfter = attempt.retryAfterMilliseconds {
            delay = retryAfter
        } else {
            delay = Int.random(in: 0...jitterCeiling(afterAttempt: attempt.number), using: &random)
        }
        guard attempt.elapsedMilliseconds + delay < attempt.deadlineMilliseconds else { return .giveUp(outcomeIfNot) }
        return .retry(afterMilliseconds: delay)
    }

    /// `min(cap, base·2^(n-1))`: the largest delay full jitter may choose after attempt n.
    public func jitterCeiling(afterAttempt number: Int) -> Int {
        let exponent = min(max(number - 1, 0), 20)
        return min(maxDelayMilliseconds, baseDelayMilliseconds << exponent)
    }
}
