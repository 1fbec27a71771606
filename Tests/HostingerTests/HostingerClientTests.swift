import Hostinger
import Logging
import Platform
import Testing
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// The Hostinger client against the running hostinger-sim, through its fault API.
@Suite(.serialized) struct HostingerClientTests {
    let sim: Sim
    let logs = CapturedLogs()

    init() throws {
        sim = try Sim()
        try sim.reset()
    }

    func client(_ settings: HostingerSettings? = nil, circuit: HostingerCircuit = HostingerCircuit()) -> HostingerClient {
        HostingerClient(settings: settings ?? sim.settings(), circuit: circuit, logger: logs.logger())
    }

    func call(_ client: HostingerClient, _ request: HostingerRequest, id: String = "corr-test") -> HostingerResult {
        client.call(request, correlationID: CorrelationID(validating: id), trace: TraceContext(continuing: nil))
    }

    @Test func twoServiceUnavailablesThenSuccessTakesExactlyThreeRequests() throws {
        try sim.fault(#"{"method": "POST", "path": "/1002/start$", "status": 503, "times": 2}"#)
        let result = call(client(), .start(vm: 1002))
        #expect(result.outcome == .succeeded)
        #expect(result.attempts == 3)
        #expect(result.action?.state == "sent")
        #expect(try sim.requests("POST", endingWith: "/1002/start").count == 3)
        // Each 503 may hide a start Hostinger performed: the two attempts are stray, in order.
        #expect(result.strayAttempts.map(\.number) == [1, 2])
        #expect(result.strayAttempts.allSatisfy { $0.endedAt >= $0.startedAt })
    }

    @Test func fiveServiceUnavailablesFailAfterExactlyThree() throws {
        try sim.fault(#"{"method": "POST", "path": "/1002/start$", "status": 503, "times": 5}"#)
        let result = call(client(), .start(vm: 1002))
        #expect(result.outcome == .failed)
        #expect(result.status == 503)
        #expect(result.hostingerCorrelationID != nil)
        #expect(try sim.requests("POST", endingWith: "/1002/start").count == 3)
        // Recorded failed: no attempt is accounted for, all three are stray.
        #expect(result.strayAttempts.map(\.number) == [1, 2, 3])
    }

    @Test func retryAfterIsWaitedFor() throws {
        try sim.fault(#"{"method": "POST", "path": "/1001/stop$", "status": 429, "retry_after": 1}"#)
        let result = call(client(), .stop(vm: 1001))
        #expect(result.outcome == .succeeded)
        let requests = try sim.requests("POST", endingWith: "/1001/stop")
        try #require(requests.count == 2)
        var gap = secondsOfDay(requests[1]) - secondsOfDay(requests[0])
        if gap < 0 { gap += 86_400 }
        #expect(gap >= 1.0, "the second attempt came \(gap)s after the first")
    }

    @Test func retryAfterBeyondTheDeadlineGivesUpAtOnce() throws {
        try sim.fault(#"{"method": "POST", "path": "/1001/stop$", "status": 429, "retry_after": 60}"#)
        let started = MonotonicClock.milliseconds()
        let result = call(client(sim.settings(deadline: 5000)), .stop(vm: 1001))
        #expect(MonotonicClock.milliseconds() - started < 1000)
        #expect(result.outcome == .notSent)
        #expect(result.retryAfterMilliseconds == 60_000)
        #expect(try sim.requests("POST", endingWith: "/1001/stop").count == 1)
    }

    @Test func aLostRecreateIsNeverRepeatedAndIsUnknown() throws {
        try sim.reset(actionDelayMilliseconds: 5000)
        try sim.fault(#"{"method": "POST", "path": "/1003/recreate$", "status": 503, "apply": true}"#)
        let result = call(client(), .recreate(vm: 1003, templateID: 1130, password: nil, panelPassword: nil, postInstallScriptID: nil))
        #expect(result.outcome == .unknown)
        #expect(result.attempts == 1)
        #expect(try sim.requests("POST", endingWith: "/1003/recreate").count == 1)
        #expect(try sim.vmState(1003) == "recreating")
        // Not repeat-safe: its outcome is unknown and settled from the list, never stray.
        #expect(result.strayAttempts.isEmpty)
    }

    @Test func aRecreateWhoseAnswerTimesOutIsNeverRepeatedAndIsUnknown() throws {
        try sim.reset(actionDelayMilliseconds: 5000)
        try sim.fault(#"{"method": "POST", "path": "/1003/recreate$", "delay_ms": 2500, "apply": true}"#)
        let result = call(client(sim.settings(attemptTimeout: 1000)),
                          .recreate(vm: 1003, templateID: 1130, password: Secret("Correct-Horse7Battery"), panelPassword: nil, postInstallScriptID: nil))
        #expect(result.outcome == .unknown)
        #expect(result.attempts == 1)
        #expect(result.transportError != nil)
        #expect(try sim.requests("POST", endingWith: "/1003/recreate").count == 1)
        #expect(try sim.vmState(1003) == "recreating")
    }

    @Test func aCallThatMayHaveBeenReceivedNeverEndsNotSent() throws {
        // Attempt 1 is performed but its answer is late (lost); attempts 2 and 3 are throttled.
        try sim.fault(#"{"method": "POST", "path": "/1001/start$", "delay_ms": 2500, "apply": true, "times": 1}"#)
        try sim.fault(#"{"method": "POST", "path": "/1001/start$", "status": 429, "times": 2}"#)
        let result = call(client(sim.settings(attemptTimeout: 1000)), .start(vm: 1001))
        #expect(result.attempts == 3)
        #expect(result.outcome == .unknown, "attempt 1 may have been performed: not_sent would let the key run again")
        // The unknown outcome is settled from the list over the whole window: not stray.
        #expect(result.strayAttempts.isEmpty)
    }

    @Test func aRepeatSafeCallWhoseEveryAnswerIsLostLeavesAllButTheFirstAttemptStray() throws {
        try sim.fault(#"{"method": "POST", "path": "/1001/restart$", "delay_ms": 1500, "apply": true, "times": 3}"#)
        let result = call(client(sim.settings(attemptTimeout: 500)), .restart(vm: 1001))
        #expect(result.attempts == 3)
        #expect(result.outcome == .unknown)
        // The operation adopts the earliest action in its window (attempt 1's): the others are stray.
        #expect(result.strayAttempts.map(\.number) == [2, 3])
    }

    @Test func refusedConnectionsOpenTheBreakerWhichFailsFastThenRecovers() throws {
        let circuit = HostingerCircuit(failureThreshold: 3, coolDownMilliseconds: 1500)
        let dead = client(sim.settings(baseURL: "https://127.0.0.1:\(closedPort())"), circuit: circuit)
        let refused = call(dead, .start(vm: 1001))
        #expect(refused.outcome == .notSent)
        #expect(refused.attempts == 3)
        #expect(circuit.state == .open(untilMilliseconds: { if case .open(let until) = circuit.state { return until } else { return -1 } }()))

        // Open: a call to a healthy upstream through the same breaker makes no connection at all.
        let live = client(circuit: circuit)
        let started = MonotonicClock.milliseconds()
        let blocked = call(live, .start(vm: 1001))
        #expect(MonotonicClock.milliseconds() - started < 50)
        #expect(blocked.outcome == .notSent)
        #expect(blocked.attempts == 0)
        #expect((blocked.retryAfterMilliseconds ?? 0) > 0)
        #expect(try sim.requests().isEmpty)

        // After the cool-down one probe goes through, succeeds, and closes the breaker.
        usleep(1_600_000)
        let probe = call(live, .start(vm: 1001))
        #expect(probe.outcome == .succeeded)
        #expect(circuit.state == .closed(consecutiveFailures: 0))
        #expect(try sim.requests("POST", endingWith: "/1001/start").count == 1)
    }

    @Test func validationRefusalsKeepHostingersFieldErrorsAndCorrelationID() throws {
        let result = call(client(), .setHostname(vm: 1001, hostname: "not a hostname"))
        #expect(result.outcome == .rejected)
        #expect(result.status == 422)
        #expect(result.attempts == 1)
        #expect(result.fieldErrors.map(\.field) == ["hostname"])
        #expect(result.message?.contains("VPS:2004") == true)
        #expect(result.hostingerCorrelationID?.count == 36)
    }

    @Test func aWrongTokenIsAnAuthenticationProblemOfOurs() throws {
        let result = call(client(sim.settings(token: "not-the-token")), .start(vm: 1001))
        #expect(result.outcome == .rejected)
        #expect(result.isAuthenticationProblem)
        #expect(result.attempts == 1)
        #expect(result.message == "Unauthenticated")
    }

    @Test func htmlErrorPagesAreHandled() throws {
        try sim.fault(#"{"method": "POST", "path": "/1001/restart$", "status": 502, "html": true, "times": -1}"#)
        let result = call(client(), .restart(vm: 1001))
        #expect(result.outcome == .failed)
        #expect(result.status == 502)
        #expect(result.body == nil)
        #expect(result.attempts == 3)
    }

    @Test func everyRequestCarriesIdentityCorrelationAndTraceButTheTokenIsNeverLogged() throws {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let client = client()
        let trace = TraceContext(continuing: incoming)
        _ = client.call(.start(vm: 1001), correlationID: CorrelationID(validating: "corr-headers-1"), trace: trace)
        _ = client.call(.setNameservers(vm: 1001, ns1: "9.9.9.9", ns2: nil, ns3: nil), correlationID: CorrelationID(validating: "corr-headers-2"), trace: trace)
        _ = client.call(.virtualMachine(1001), correlationID: CorrelationID(validating: "corr-headers-3"), trace: trace)
        let requests = try sim.requests()
        try #require(requests.count == 3)
        for (index, request) in requests.enumerated() {
            let headers = try #require(request["headers"])
            #expect(headers["authorization"]?.stringValue == "Bearer \(sim.token)")
            #expect(headers["user-agent"]?.stringValue == "vpsgate/test")
            #expect(headers["x-correlation-id"]?.stringValue == "corr-headers-\(index + 1)")
            let traceparent = try #require(headers["traceparent"]?.stringValue)
            let parsed = try #require(TraceContext.parse(traceparent))
            #expect(parsed.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
            #expect(parsed.parentID != "00f067aa0ba902b7")
        }
        #expect(requests[1]["body"] == .object([("ns1", .string("9.9.9.9"))]))
        #expect(!logs.text.isEmpty)
        #expect(!logs.text.contains(sim.token))
    }
}
