import Testing
import VpsgateCore

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 3, baseDelayMilliseconds: 200, maxDelayMilliseconds: 2000)

    func decide(_ result: AttemptResult, attempt: Int = 1, repeatSafe: Bool, elapsed: Int = 0, deadline: Int = 20_000,
                retryAfter: Int? = nil) -> RetryDecision {
        var random = SystemRandomNumberGenerator()
        return policy.decide(after: .init(number: attempt, result: result, repeatSafe: repeatSafe, elapsedMilliseconds: elapsed,
                                          deadlineMilliseconds: deadline, retryAfterMilliseconds: retryAfter), random: &random)
    }

    func isRetry(_ decision: RetryDecision) -> Bool {
        if case .retry = decision { return true }
        return false
    }

    // docs/hostinger.md#calling-hostinger, row by row.

    @Test(arguments: [true, false])
    func successIsFinal(repeatSafe: Bool) {
        #expect(decide(.status(200), repeatSafe: repeatSafe) == .giveUp(.succeeded))
    }

    @Test(arguments: [true, false])
    func connectionFailuresAreAlwaysRetriedThenNotSent(repeatSafe: Bool) {
        #expect(isRetry(decide(.notSent, attempt: 1, repeatSafe: repeatSafe)))
        #expect(isRetry(decide(.notSent, attempt: 2, repeatSafe: repeatSafe)))
        #expect(decide(.notSent, attempt: 3, repeatSafe: repeatSafe) == .giveUp(.notSent))
    }

    @Test(arguments: [true, false])
    func throttlingIsAlwaysRetriedAndNeverApplied(repeatSafe: Bool) {
        #expect(decide(.status(429), attempt: 1, repeatSafe: repeatSafe, retryAfter: 1000) == .retry(afterMilliseconds: 1000))
        #expect(decide(.status(429), attempt: 3, repeatSafe: repeatSafe) == .giveUp(.notSent))
    }

    @Test(arguments: [502, 503, 504])
    func gatewayErrorsAreRetriedOnlyWhenRepeatSafe(status: Int) {
        #expect(isRetry(decide(.status(status), attempt: 1, repeatSafe: true)))
        #expect(decide(.status(status), attempt: 3, repeatSafe: true) == .giveUp(.failed))
        #expect(decide(.status(status), attempt: 1, repeatSafe: false) == .giveUp(.unknown))
    }

    @Test func internalErrorsAreNeverRetried() {
        #expect(decide(.status(500), repeatSafe: true) == .giveUp(.failed))
        #expect(decide(.status(500), repeatSafe: false) == .giveUp(.unknown))
    }

    @Test func lostAnswersAreRetriedOnlyWhenRepeatSafe() {
        #expect(isRetry(decide(.lost, attempt: 1, repeatSafe: true)))
        #expect(decide(.lost, attempt: 3, repeatSafe: true) == .giveUp(.unknown))
        #expect(decide(.lost, attempt: 1, repeatSafe: false) == .giveUp(.unknown))
    }

    @Test(arguments: [400, 401, 403, 404, 409, 422])
    func refusalsAreFinal(status: Int) {
        #expect(decide(.status(status), repeatSafe: true) == .giveUp(.rejected))
        #expect(decide(.status(status), repeatSafe: false) == .giveUp(.rejected))
    }

    @Test func retryAfterIsHonouredWhenItFitsTheDeadline() {
        #expect(decide(.status(503), repeatSafe: true, elapsed: 1000, deadline: 5000, retryAfter: 3000) == .retry(afterMilliseconds: 3000))
        #expect(decide(.status(503), repeatSafe: true, elapsed: 1000, deadline: 5000, retryAfter: 4000) == .giveUp(.failed))
        #expect(decide(.status(429), repeatSafe: false, elapsed: 0, deadline: 5000, retryAfter: 60_000) == .giveUp(.notSent))
    }

    @Test func jitteredDelaysNeverPassTheDeadline() {
        for _ in 0..<200 {
            if case .retry(let delay) = decide(.notSent, attempt: 2, repeatSafe: true, elapsed: 19_900, deadline: 20_000) {
                #expect(19_900 + delay < 20_000)
            }
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 8])
    func fullJitterStaysWithinTheExponentialCeiling(attempt: Int) {
        let policy = RetryPolicy(maxAttempts: 10, baseDelayMilliseconds: 200, maxDelayMilliseconds: 2000)
        let ceiling = min(2000, 200 << (attempt - 1))
        #expect(policy.jitterCeiling(afterAttempt: attempt) == ceiling)
        var random = SystemRandomNumberGenerator()
        var delays: [Int] = []
        for _ in 0..<500 {
            guard case .retry(let delay) = policy.decide(
                after: .init(number: attempt, result: .notSent, repeatSafe: true, elapsedMilliseconds: 0, deadlineMilliseconds: 1_000_000),
                random: &random) else {
                Issue.record("expected a retry")
                return
            }
            delays.append(delay)
        }
        #expect(delays.allSatisfy { (0...ceiling).contains($0) })
        // Full jitter spreads over the whole range, not just near the ceiling.
        #expect(delays.min()! < ceiling / 4)
        #expect(delays.max()! > ceiling * 3 / 4)
    }
}

@Suite struct CircuitBreakerTests {
    @Test func opensAfterConsecutiveFailuresAndLetsOneProbeThroughAfterTheCoolDown() {
        var breaker = CircuitBreaker(failureThreshold: 3, coolDownMilliseconds: 1000)
        for _ in 0..<2 {
            do { let allowed = breaker.allowsCall(now: 0); #expect(allowed) }
            breaker.record(success: false, now: 0)
        }
        breaker.record(success: true, now: 0)  // a success resets the count
        for _ in 0..<3 {
            do { let allowed = breaker.allowsCall(now: 10); #expect(allowed) }
            breaker.record(success: false, now: 10)
        }
        #expect(breaker.state == .open(untilMilliseconds: 1010))
        do { let allowed = breaker.allowsCall(now: 500); #expect(!allowed) }
        #expect(breaker.retryAfterMilliseconds(now: 500) == 510)
        do { let allowed = breaker.allowsCall(now: 1010); #expect(allowed) }   // the probe
        do { let allowed = breaker.allowsCall(now: 1011); #expect(!allowed) }  // only one
        breaker.record(success: false, now: 1100)
        #expect(breaker.state == .open(untilMilliseconds: 2100))
        do { let allowed = breaker.allowsCall(now: 2100); #expect(allowed) }
        breaker.record(success: true, now: 2150)
        #expect(breaker.state == .closed(consecutiveFailures: 0))
        do { let allowed = breaker.allowsCall(now: 2151); #expect(allowed) }
    }
}

@Suite struct TraceContextTests {
    @Test func continuesAValidTraceWithANewSpan() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let context = TraceContext(continuing: incoming)
        #expect(context.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.spanID != "00f067aa0ba902b7")
        #expect(context.traceparent.hasSuffix("-01"))
        #expect(TraceContext.parse(context.traceparent) != nil)
    }

    @Test(arguments: [nil, "", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
    func startsANewTraceOtherwise(_ incoming: String?) {
        let context = TraceContext(continuing: incoming)
        #expect(context.traceID.count == 32 && context.spanID.count == 16)
        #expect(TraceContext.parse(context.traceparent)?.traceID == context.traceID)
        if let incoming { #expect(!incoming.contains(context.traceID)) }
    }
}

@Suite struct RetryAfterTests {
    @Test func readsSecondsAndHTTPDates() {
        #expect(RetryAfter.milliseconds("1", nowSeconds: 0) == 1000)
        #expect(RetryAfter.milliseconds(" 120 ", nowSeconds: 0) == 120_000)
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        #expect(RetryAfter.milliseconds("Sun, 06 Nov 1994 08:49:37 GMT", nowSeconds: 784_111_770) == 7000)
        #expect(RetryAfter.milliseconds("Sun, 06 Nov 1994 08:49:37 GMT", nowSeconds: 784_111_800) == 0)
        #expect(RetryAfter.milliseconds("-1", nowSeconds: 0) == nil)
        #expect(RetryAfter.milliseconds("soon", nowSeconds: 0) == nil)
    }
}
