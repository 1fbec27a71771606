/// A circuit breaker for one upstream, as a value: the caller keeps it behind a lock.
///
/// Closed, it counts consecutive failures; at `failureThreshold` it opens and refuses
/// calls for `coolDownMilliseconds`; then it lets exactly one probe through (half-open),
/// which closes it on success and reopens it on failure.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed(consecutiveFailures: Int)
        case open(untilMilliseconds: Int)
        case halfOpen
    }

    public private(set) var state: State = .closed(consecutiveFailures: 0)
    public var failureThreshold: Int
    public var coolDownMilliseconds: Int

    public init(failureThreshold: Int = 5, coolDownMilliseconds: Int = 10_000) {
        self.failureThreshold = failureThreshold
        self.coolDownMilliseconds = coolDownMilliseconds
    }

    /// Whether a call may go out now (`now` on a monotonic clock, in milliseconds).
    /// After the cool-down the first caller gets the probe; others wait for its result.
    public mutating func allowsCall(now: Int) -> Bool {
        switch state {
        case .closed: return true
        case .halfOpen: return false
        case .open(let until):
            guard now >= until else { return false }
            state = .halfOpen
            return true
        }
    }

    /// Milliseconds until a call may be tried again (for `Retry-After`); 0 when closed.
    public func retryAfterMilliseconds(now: Int) -> Int {
        switch state {
        case .closed: 0
        case .halfOpen: 1000
        case .open(let until): max(until - now, 0)
        }
    }

    /// Records how a call that was allowed went.
    public mutating func record(success: Bool, now: Int) {
        if success {
            state = .closed(consecutiveFailures: 0)
            return
        }
        switch state {
        case .closed(let failures) where failures + 1 < failureThreshold:
            state = .closed(consecutiveFailures: failures + 1)
        default:
            state = .open(untilMilliseconds: now + coolDownMilliseconds)
        }
    }
}
