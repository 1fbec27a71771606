import Testing
import VpsgateCore

/// The operation lifecycle, row by row: state × event ⇒ state + effects.
@Suite struct OperationLifecycleTests {
    static let sent = HostingerAction(id: 9001, name: "ct_restart", state: "sent", createdAt: nil)
    static let success = HostingerAction(id: 9001, name: "ct_restart", state: "success", createdAt: nil)
    static let error = HostingerAction(id: 9001, name: "ct_restart", state: "error", createdAt: nil)

    static func operation(_ state: OperationState, error: JSONValue? = nil) -> OperationRecord {
        OperationRecord(id: "op", target: .vps(1001), command: "vps.restart", state: state, actionID: state == .running ? 9001 : nil,
                        error: error, requestedBy: "alice", correlationID: "c", idempotencyKey: "k", createdAt: 0, updatedAt: 0)
    }

    static let events: [OperationEvent] = [
        .dispatched(DispatchResult(outcome: .succeeded, status: 200, action: sent)), .actionObserved(success), .adopted(sent),
        .notApplied, .ambiguous(candidates: [], listCoversWindow: true), .actionUnknown(message: nil), .vpsGone(message: nil),
    ]

    @Test(arguments: [OperationState.succeeded, .failed, .cancelled])
    func aTerminalOperationNeverChanges(state: OperationState) {
        for event in Self.events { #expect(OperationLifecycle.next(Self.operation(state), on: event) == nil) }
    }

    @Test(arguments: [
        // state, event, ⇒ state, outcome, error reason, key effect, drift
        (OperationState.running, OperationEvent.actionObserved(success), OperationState.succeeded, AuditOutcome.succeeded, nil as String?,
         KeyEffect.completeIfInFlight, nil as Drift.Kind?),
        (.running, .actionObserved(error), .failed, .failed, "action_error", .completeIfInFlight, nil),
        (.unknown, .adopted(sent), .running, .adopted, nil, .completeIfInFlight, nil),
        (.accepted, .adopted(success), .succeeded, .adopted, nil, .completeIfInFlight, nil),
        (.unknown, .adopted(error), .failed, .adopted, "action_error", .completeIfInFlight, nil),
        (.unknown, .notApplied, .failed, .notApplied, "not_applied", .completeIfInFlight, nil),
        (.accepted, .ambiguous(candidates: [sent], listCoversWindow: true), .unknown, .ambiguous, "ambiguous", .completeIfInFlight, nil),
        (.running, .actionUnknown(message: "gone"), .failed, .actionUnknown, "action_unknown", .completeIfInFlight, .actionUnknown),
        (.running, .vpsGone(message: nil), .failed, .vpsNotFound, "vps_not_found", .completeIfInFlight, .vpsNotFound),
        (.accepted, .dispatched(DispatchResult(outcome: .succeeded, status: 200, action: sent)), .running, .accepted, nil, .store, nil),
        (.accepted, .dispatched(DispatchResult(outcome: .notSent)), .failed, .unavailable, "not_sent", .release, nil),
    ])
    func eachEventMovesTheOperationAsDeclared(from: OperationState, event: OperationEvent, to: OperationState, outcome: AuditOutcome,
                                              reason: String?, key: KeyEffect, drift: Drift.Kind?) throws {
        let transition = try #require(OperationLifecycle.next(Self.operation(from), on: event))
        #expect(transition.state == to)
        #expect(transition.outcome == outcome)
        #expect(transition.error?["reason"]?.stringValue == reason)
        #expect(transition.key == key)
        #expect(transition.drift?.kind == drift)
    }

    @Test func anActionStillRunningIsNotATransition() {
        #expect(OperationLifecycle.next(Self.operation(.running), on: .actionObserved(Self.sent)) == nil)
    }

    @Test func anOperationAlreadyInDoubtForTheSameReasonStaysAsItIs() {
        let inDoubt = Self.operation(.unknown, error: .object([("reason", .string("ambiguous"))]))
        #expect(OperationLifecycle.next(inDoubt, on: .ambiguous(candidates: [], listCoversWindow: false)) == nil)
        #expect(OperationLifecycle.next(inDoubt, on: .notApplied)?.state == .failed)
    }

    @Test func aTransitionKeepsWhatItDoesNotChange() {
        var operation = Self.operation(.running)
        operation.actionName = "ct_restart"
        operation.actionState = "sent"
        let applied = OperationTransition(.failed, outcome: .failed).applied(to: operation)
        #expect(applied.actionID == 9001 && applied.actionState == "sent")
        #expect(applied.state == .failed)
    }

    @Test func inFlightStatesAreThoseThatMayHaveReachedHostinger() {
        #expect(OperationState.inFlight == [.accepted, .dispatched, .running, .unknown])
        #expect(OperationState.allCases.filter(\.isTerminal) == [.succeeded, .failed, .cancelled])
    }

    @Test(arguments: [OperationState.awaitingApproval, .approved])
    func nothingHostingerSaysMovesAnOperationNotSentYet(state: OperationState) {
        for event in Self.events { #expect(OperationLifecycle.next(Self.operation(state), on: event) == nil) }
    }
}

/// What a command's own Hostinger answer means: the operation's state, the client's answer,
/// the audit outcome and the key.
@Suite struct DispatchAnswerTests {
    @Test(arguments: [
        // outcome, status, auth, action state ⇒ state, outcome, key, reply status, retry-after
        (CallOutcome.succeeded, 200 as Int?, false, "sent" as String?, OperationState.running, AuditOutcome.accepted, KeyEffect.store, 202, nil as Int?),
        (.succeeded, 200, false, "success", .succeeded, .accepted, .store, 202, nil),
        (.succeeded, 200, false, nil, .unknown, .unknown, .store, 202, nil),
        (.unknown, nil, false, nil, .unknown, .unknown, .store, 202, nil),
        (.notSent, nil, false, nil, .failed, .unavailable, .release, 503, 2),
        (.rejected, 401, true, nil, .failed, .upstreamError, .store, 502, nil),
        (.rejected, 422, false, nil, .failed, .upstreamRejected, .store, 422, nil),
        (.rejected, 404, false, nil, .failed, .upstreamRejected, .store, 404, nil),
        (.rejected, 409, false, nil, .failed, .upstreamError, .store, 502, nil),
        (.failed, 503, false, nil, .failed, .upstreamError, .store, 502, nil),
    ])
    func row(outcome: CallOutcome, status: Int?, auth: Bool, actionState: String?, state: OperationState, audit: AuditOutcome, key: KeyEffect,
             replyStatus: Int, retryAfter: Int?) {
        let action = actionState.map { HostingerAction(id: 1, name: "ct_restart", state: $0, createdAt: nil) }
        let answer = DispatchAnswer(DispatchResult(outcome: outcome, status: status, action: action, isAuthenticationProblem: auth))
        #expect(answer.transition.state == state)
        #expect(answer.transition.outcome == audit)
        #expect(answer.transition.key == key)
        switch answer.reply {
        case .operation: #expect(replyStatus == 202)
        case .problem(_, let status, _, _, _, let seconds):
            #expect(status == replyStatus)
            #expect(seconds == retryAfter)
        }
    }

    @Test func aSynchronousAnswerEndsTheOperationWithTheResource() {
        let vm: JSONValue = .object([("id", .number("1004")), ("state", .string("creating"))])
        let answer = DispatchAnswer(DispatchResult(outcome: .succeeded, status: 200, resource: vm))
        #expect(answer.transition.state == .succeeded && answer.transition.outcome == .succeeded && answer.transition.key == .store)
        #expect(answer.transition.result == vm && answer.reply == .operation)
        let applied = answer.transition.applied(to: OperationRecord(
            id: "0b7c1f7e-2f6a-4f7e-9a59-5f1d7c1e2a10", target: .vps(1004), command: "vps.setup", state: .accepted, requestedBy: "a",
            correlationID: "c", idempotencyKey: "k", createdAt: 1, updatedAt: 1))
        #expect(applied.result == vm && applied.state == .succeeded)
        // A refusal of a synchronous command is a refusal like any other: no resource.
        let refused = DispatchAnswer(DispatchResult(outcome: .rejected, status: 422))
        #expect(refused.transition.state == .failed && refused.transition.result == nil)
    }

    @Test func retryAfterIsAtLeastOneSecondAndTwoWhenUnknown() {
        #expect(RetryAfter.seconds(milliseconds: nil) == 2)
        #expect(RetryAfter.seconds(milliseconds: 300) == 1)
        #expect(RetryAfter.seconds(milliseconds: 7999) == 7)
    }
}

/// What each of `begin_command`'s decisions means, declared once.
@Suite struct BeginDecisionTests {
    @Test func everyDecisionBeginAnswersItselfIsDeclaredWithItsAuditOutcome() {
        let answers = BeginDecision.Kind.auditAnswers
        #expect(answers["replay"]?["outcome"]?.stringValue == "replayed")
        #expect(answers["replay"]?["http_status"] == nil, "a replay's status is the stored answer's")
        #expect(answers["in_use"]?["http_status"]?.intValue == 409)
        #expect(answers["in_use"]?["problem_type"]?.stringValue == "urn:vpsgate:problem:idempotency-key-in-use")
        #expect(answers["reused"]?["http_status"]?.intValue == 422)
        #expect(answers["reused"]?["outcome"]?.stringValue == "conflict")
        #expect(answers["busy"]?["outcome"]?.stringValue == "busy")
        #expect(answers["busy"]?["problem_type"]?.stringValue == "urn:vpsgate:problem:vps-busy")
        #expect(answers["proceed"] == nil)
        #expect(answers["not_found"]?["http_status"]?.intValue == 404)
        #expect(answers["not_found"]?["outcome"]?.stringValue == "not_found")
        #expect(answers["forbidden"]?["http_status"]?.intValue == 403)
        #expect(answers["forbidden"]?["outcome"]?.stringValue == "denied")
    }

    @Test func busyNamesTheBlockingOperation() throws {
        let (problem, retryAfter) = try #require(BeginDecision.Kind.busy.problem(.vps(7), blocking: "b-1", permission: nil, instance: "/v1/vps/7/stop"))
        #expect(problem.status == 409 && retryAfter == 5)
        #expect(problem.extensions.map(\.value) == ["b-1", "/v1/operations/b-1"])
    }
}

/// The read routes' one table.
@Suite struct ReadRouteTests {
    @Test(arguments: [
        ("/v1/vps", ReadRoute.listVPS, nil as String?), ("/v1/vps/12", .getVPS, "12"), ("/v1/vps/12/actions", .vpsActions, "12"),
        ("/v1/operations", .listOperations, nil), ("/v1/operations/abc", .getOperation, "abc"), ("/healthz", .healthz, nil),
        ("/v1/vps/12/snapshot", .snapshot, "12"), ("/v1/vps/12/metrics", .vpsMetrics, "12"),
    ])
    func matches(path: String, route: ReadRoute, id: String?) throws {
        let match = try #require(ReadRoute.match(path))
        #expect(match.route == route)
        #expect(match.id.map(String.init) == id)
    }

    @Test(arguments: [
        ("/v1/vps/12/docker/web", ReadRoute.dockerProject, "web"), ("/v1/vps/12/docker/web/containers", .dockerContainers, "web"),
        ("/v1/vps/12/docker/web/logs", .dockerLogs, "web"), ("/v1/vps/12/actions/77", .vpsAction, "77"),
    ])
    func matchesTwoParameters(path: String, route: ReadRoute, parameter: String) throws {
        let match = try #require(ReadRoute.match(path))
        #expect(match.route == route)
        #expect(match.id == "12" && match.parameter.map(String.init) == parameter)
        #expect(route.filled("12", parameter) == path)
    }

    @Test func eachReadOfAVPSCallsItsOwnHostingerPath() throws {
        let arguments = ReadRoute.ReadArguments(id: 7, page: 2, parameter: "web",
                                                query: ["date_from": "2025-05-01T00:00:00+02:00", "date_to": "2025-05-02T00:00:00Z"])
        let vm = "/api/vps/v1/virtual-machines/7"
        let expected: [(ReadRoute, String)] = [
            (.dockerProject, "\(vm)/docker/web"), (.dockerContainers, "\(vm)/docker/web/containers"), (.dockerLogs, "\(vm)/docker/web/logs"),
            (.attachedKeys, "\(vm)/public-keys?page=2"), (.backups, "\(vm)/backups?page=2"), (.monarx, "\(vm)/monarx"),
            (.snapshot, "\(vm)/snapshot"), (.vpsMetrics, "\(vm)/metrics?date_from=2025-05-01T00:00:00%2B02:00&date_to=2025-05-02T00:00:00Z"),
        ]
        for (route, path) in expected {
            let request = try #require(route.hostinger?(arguments))
            #expect(request.method == "GET" && request.path == path && request.repeatSafe, "\(route)")
        }
        var action = arguments
        action.parameter = "77"
        #expect(ReadRoute.vpsAction.hostinger?(action).path == "\(vm)/actions/77")
        #expect(ReadRoute.vpsMetrics.required == ["date_from", "date_to"])
    }

    @Test(arguments: ["/v1/vps/", "/v1/vps/12/stop", "/v1", "/", "/v1/operations/a/b", "/v1/vps//actions"])
    func doesNotMatch(path: String) {
        #expect(ReadRoute.match(path) == nil)
    }

    @Test func theDocumentListsEveryReadRoute() {
        #expect(OpenAPIDocument.reads.map(\.path) == ReadRoute.allCases.map(\.path))
    }
}
