import FastCGI
import Hostinger
import Testing
import VpsgateCore
@testable import VpsgateService

/// Every branch of the command path, against in-memory stores and a scripted Hostinger: no
/// database, no network. Each test says what the client gets, what the audit trail gets,
/// and what was (not) spent: a key, an operation, a Hostinger call.
@Suite struct ResponderCommandTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()
    let responder: Responder<MemoryStore, ScriptedHostinger>

    init() throws {
        store.grants = [Fixture.principal: [1001: [.read, .power, .configure, .credentials, .destroy]]]
        responder = Responder(context: try Fixture.context(), store: store, hostinger: hostinger)
    }

    func send(_ request: FastCGIRequest) -> FastCGIResponse {
        var responder = self.responder
        return responder.respond(to: request)
    }

    func problemType(_ response: FastCGIResponse) -> String? { response.json?["type"]?.stringValue }

    /// Nothing spent: no key taken, no Hostinger call, and one final audit row with `outcome`.
    func expectRefusedBeforeAnythingIsSpent(_ outcome: AuditOutcome, status: Int) {
        #expect(store.begun.isEmpty)
        #expect(hostinger.calls.isEmpty)
        #expect(store.audits.map(\.outcome) == [outcome])
        #expect(store.audits.first?.httpStatus == status)
        #expect(store.audits.first?.kind == .final)
    }

    // MARK: - Parse and validate

    @Test func anUnknownQueryParameterIsRefusedBeforeAnythingIsSpent() {
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart", query: "validate_only=maybe"))
        #expect(response.status == 400)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#malformed-request")
        expectRefusedBeforeAnythingIsSpent(.invalid, status: 400)
    }

    @Test func malformedJSONIsRefused() {
        let response = send(Fixture.request("PUT", "/v1/vps/1001/hostname", body: "{\"hostname\":"))
        #expect(response.status == 400)
        expectRefusedBeforeAnythingIsSpent(.invalid, status: 400)
    }

    @Test func anInvalidFieldIs422WithTheFieldAndTheAuditKeepsTheRedactedBody() {
        let response = send(Fixture.request("PUT", "/v1/vps/1001/root-password", body: #"{"password":"short"}"#))
        #expect(response.status == 422)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#validation-failed")
        #expect(response.json?["errors"]?["password"] != nil)
        expectRefusedBeforeAnythingIsSpent(.invalid, status: 422)
        #expect(store.audits.first?.requestParameters?["password"]?.stringValue == Redaction.marker)
    }

    @Test func aDestructiveCommandWithoutConfirmationIsConfirmationRequired() {
        let response = send(Fixture.request("POST", "/v1/vps/1001/snapshot/restore", body: "{}"))
        #expect(response.status == 422)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#confirmation-required")
        expectRefusedBeforeAnythingIsSpent(.invalid, status: 422)
    }

    // MARK: - Authorize

    /// With a valid key, `begin_command` checks the grant (below); without one, the
    /// responder does, so that the key's absence reveals nothing either.
    @Test func aVPSOutsideTheGrantsIsNotFoundAndNotRevealed() {
        let response = send(Fixture.request("POST", "/v1/vps/2002/restart", key: nil))
        #expect(response.status == 404)
        expectRefusedBeforeAnythingIsSpent(.notFound, status: 404)
    }

    @Test func aMissingPermissionIsForbidden() {
        store.grants = [Fixture.principal: [1001: [.read]]]
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart", key: "bad"))
        #expect(response.status == 403)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#forbidden")
        expectRefusedBeforeAnythingIsSpent(.denied, status: 403)
    }

    @Test func noPrincipalIsUnauthenticatedAndAudited() {
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart", principal: nil))
        #expect(response.status == 401)
        #expect(response.header("WWW-Authenticate") == "Bearer")
        expectRefusedBeforeAnythingIsSpent(.denied, status: 401)
    }

    @Test func aDatabaseThatIsDownIs503() {
        store.failure = StoreError(unavailable: true, "connection refused")
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 503)
        #expect(response.header("Retry-After") == "2")
        #expect(hostinger.calls.isEmpty)
    }

    // MARK: - Plan (validate_only)

    @Test func aDryRunShowsTheCallWithSecretsRedactedAndSpendsNothing() {
        let response = send(Fixture.request("PUT", "/v1/vps/1001/root-password", body: #"{"password":"Str0ngEnough!pass"}"#, key: nil,
                                            query: "validate_only=true"))
        #expect(response.status == 200)
        #expect(response.json?["decision"]?.stringValue == "proceed")
        #expect(response.json?["would_send"]?["body"]?["password"]?.stringValue == Redaction.marker)
        #expect(hostinger.calls.map(\.name) == ["get_vm"], "the plan reads the VPS, sends nothing")
        hostinger.calls = []
        #expect(!String(decoding: response.body, as: UTF8.self).contains("Str0ngEnough"))
        expectRefusedBeforeAnythingIsSpent(.validated, status: 200)
    }

    @Test(arguments: [
        (PlanVerdict.Decision.busy(blockingOperation: "7d1d3c52-8a3b-4c55-9b8e-0c2c6f1f4e01"), "busy"),
        (.frozen(until: 1_780_000_000_000_000, reason: "release"), "frozen"), (.needsApproval, "needs_approval"), (.proceed, "proceed"),
    ])
    func aPlanSaysWhatTheCommandWouldMeet(decision: PlanVerdict.Decision, name: String) {
        store.planAnswer = PlanVerdict(decision: decision, policy: ApprovalPolicy(subject: "vps:destroy", vpsID: nil, approvals: 1,
                                                                                   ttlSeconds: 86_400), approvalsRequired: 1)
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart", key: nil, query: "validate_only=true"))
        #expect(response.status == 200)
        #expect(response.json?["decision"]?.stringValue == name)
        #expect(response.json?["policy"]?["subject"]?.stringValue == "vps:destroy")
        #expect(response.json?["effects"]?.arrayValue?.isEmpty == false)
        #expect(store.begun.isEmpty)
        #expect(hostinger.calls.allSatisfy { $0.method == "GET" })
        #expect(store.audits.map(\.outcome) == [.validated])
    }

    @Test(arguments: [(PlanVerdict.Decision.notFound, 404), (.forbidden, 403)])
    func aPlanIsRefusedAsTheCommandWouldBe(decision: PlanVerdict.Decision, status: Int) {
        store.planAnswer = PlanVerdict(decision: decision, policy: nil, approvalsRequired: 0)
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart", key: nil, query: "validate_only=true"))
        #expect(response.status == status)
        expectRefusedBeforeAnythingIsSpent(status == 404 ? .notFound : .denied, status: status)
    }

    // MARK: - Key

    @Test func aMissingKeyIs400() {
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart", key: nil))
        #expect(response.status == 400)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#idempotency-key-missing")
        expectRefusedBeforeAnythingIsSpent(.invalid, status: 400)
    }

    @Test func anInvalidKeyIs400() {
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart", key: "short"))
        #expect(response.status == 400)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#idempotency-key-invalid")
        expectRefusedBeforeAnythingIsSpent(.invalid, status: 400)
    }

    // MARK: - Begin: what begin_command decided

    @Test func beginIsGivenTheKeyTheFingerprintsAndTheRequestsAuditMembers() throws {
        hostinger.answer("restart", Fixture.accepted(Fixture.action(9001, "ct_restart", "sent")))
        _ = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        let begun = try #require(store.begun.first)
        #expect(begun.key == "key-0001-abcd")
        #expect(begun.principal == Fixture.principal)
        #expect(begun.target == .vps(1001) && begun.command == "vps.restart" && begun.permission == .power)
        #expect(begun.fingerprints.count == 2)
        #expect(begun.fingerprints[0].hasPrefix("k1:"))
        #expect(begun.audit.identity.correlationID == "0123456789abcdef0123456789abcdef")
    }

    @Test func aReplayAnswersTheStoredAnswerAndNothingElse() {
        store.beginAnswer = .replay(StoredAnswer(status: 202, location: "/v1/operations/x", body: Array(#"{"id":"x"}"#.utf8)))
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 202)
        #expect(response.header("Idempotent-Replayed") == "true")
        #expect(response.header("Location") == "/v1/operations/x")
        #expect(response.body == Array(#"{"id":"x"}"#.utf8))
        #expect(hostinger.calls.isEmpty)
        #expect(store.audits.isEmpty, "begin_command wrote the row")
        #expect(store.finished.isEmpty)
    }

    @Test func aReplayedProblemKeepsItsProblemContentType() {
        store.beginAnswer = .replay(StoredAnswer(status: 502, location: nil, body: Array("{}".utf8)))
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 502)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.header("Location") == nil)
    }

    @Test(arguments: [
        (BeginDecision.notFound, 404, "not-found", nil),
        (BeginDecision.forbidden, 403, "forbidden", nil),
        (BeginDecision.inUse, 409, "idempotency-key-in-use", "1"),
        (BeginDecision.reused, 422, "idempotency-key-reused", nil),
        (BeginDecision.busy(blockingOperation: "5a0f5e0e-1111-4222-8333-944455556666"), 409, "vps-busy", "5"),
        (BeginDecision.frozen(until: 1_780_000_000_000_000), 423, "change-frozen", nil),
    ])
    func aRefusalBeginDecidedIsAnsweredAsDeclaredOnce(decision: BeginDecision, status: Int, type: String, retryAfter: String?) {
        store.beginAnswer = decision
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == status)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#" + type)
        #expect(response.header("Retry-After") == retryAfter)
        #expect(hostinger.calls.isEmpty)
        #expect(store.audits.isEmpty, "begin_command wrote the row")
        // What begin_command was told this decision means is what the client got.
        let declared = BeginDecision.Kind.auditAnswers[decision.kind.rawValue]
        #expect(declared?["http_status"]?.intValue == status)
        // The audit row names the problem by its stable URN; the answer by its URL: one code.
        #expect(declared?["problem_type"]?.stringValue.flatMap(Problem.code(ofType:)) == problemType(response).flatMap(Problem.code(ofType:)))
        #expect(declared?["problem_type"]?.stringValue == Problem.typePrefix + type)
    }

    @Test func aBeginThatCannotReachTheDatabaseIs503AndAudited() {
        store.beginFailure = StoreError(unavailable: true, "connection lost")
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 503)
        #expect(hostinger.calls.isEmpty)
        #expect(store.audits.map(\.outcome) == [.unavailable])
    }

    @Test func aCommandThatNeedsApprovalIs202AwaitingAndSendsNothing() throws {
        store.beginAnswer = .awaitingApproval(createdAt: 1_780_000_000_000_000, approvalsRequired: 1)
        let response = send(Fixture.request("POST", "/v1/vps/1001/recreate",
                                            body: #"{"template_id": 1130, "password": "Str0ngEnough!pass", "confirm": 1001}"#))
        #expect(response.status == 202)
        #expect(response.json?["state"]?.stringValue == "awaiting_approval")
        #expect(response.json?["approval"]?["required"]?.intValue == 1)
        #expect(hostinger.calls.isEmpty)
        let kept = try #require(store.begun.first?.request)
        #expect(kept.path.hasSuffix("/1001/recreate"))
        let sealed = try #require(kept.sealedBody)
        #expect(!String(decoding: sealed, as: UTF8.self).contains("Str0ngEnough"), "the body is kept sealed")
        let keyID = try #require(kept.keyID)
        // The envelope opens for this operation, its command, VPS and requester only.
        let begun = try #require(store.begun.first)
        let envelope = KeptRequest(origin: .operation(id: begun.operationID), command: "vps.recreate", target: .vps(1001),
                                   requestedBy: begun.principal, emergency: false)
        let opened = try #require(envelope.open(sealed, keyID: keyID, keys: responder.context.keys))
        #expect(opened.body?["password"]?.stringValue == "Str0ngEnough!pass")
        var elsewhere = envelope
        elsewhere.origin = .operation(id: UUIDv4.generate())
        #expect(elsewhere.open(sealed, keyID: keyID, keys: responder.context.keys) == nil)
        let record = try #require(store.finished.first)
        #expect(record.audit.outcome == .awaitingApproval)
        #expect(record.keyEffect == .store)
    }

    @Test func anEmergencyOverrideGoesToBeginWithItsReason() throws {
        _ = send(Fixture.request("POST", "/v1/vps/1001/restart", query: "emergency=true&reason=outage%20INC-42"))
        #expect(store.begun.first?.emergencyReason == "outage INC-42")
    }

    // MARK: - Call and finish

    @Test func anAcceptedCommandIs202WithTheOperationAndItsAnswerIsKept() throws {
        hostinger.answer("restart", Fixture.accepted(Fixture.action(9001, "ct_restart", "sent")))
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 202)
        let record = try #require(store.finished.first)
        #expect(response.header("Location") == record.operation.location)
        #expect(response.json?["state"]?.stringValue == "running")
        #expect(response.json?["hostinger_action"]?["id"]?.intValue == 9001)
        #expect(record.keyEffect == .store)
        #expect(record.answer.status == 202 && record.answer.body == response.body)
        #expect(record.audit.outcome == .accepted)
        #expect(record.audit.operationID == record.operation.id)
        #expect(record.operation.createdAt == 1_780_000_000_000_000, "times stay on the database's clock")
        #expect(store.audits.isEmpty, "finish_command writes the row")
    }

    @Test func aCallNeverSentFreesTheKeyAndSaysWhenToRetry() throws {
        hostinger.answer("restart", HostingerResult(outcome: .notSent, retryAfterMilliseconds: 7000))
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 503)
        #expect(response.header("Retry-After") == "7")
        let record = try #require(store.finished.first)
        #expect(record.keyEffect == .release)
        #expect(record.operation.state == .failed)
        #expect(record.operation.error?["reason"]?.stringValue == "not_sent")
        #expect(record.audit.outcome == .unavailable)
    }

    @Test func aLostAnswerIs202Unknown() throws {
        hostinger.answer("restart", HostingerResult(outcome: .unknown, attempts: 1))
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 202)
        #expect(response.json?["state"]?.stringValue == "unknown")
        #expect(try #require(store.finished.first).audit.outcome == .unknown)
        #expect(try #require(store.finished.first).keyEffect == .store)
    }

    @Test(arguments: [
        (422, CallOutcome.rejected, 422, "upstream-rejected", AuditOutcome.upstreamRejected, "upstream_rejected"),
        (404, CallOutcome.rejected, 404, "not-found", AuditOutcome.upstreamRejected, "upstream_not_found"),
        (401, CallOutcome.rejected, 502, "upstream-auth", AuditOutcome.upstreamError, "upstream_auth"),
        (400, CallOutcome.rejected, 502, "upstream-error", AuditOutcome.upstreamError, "upstream_error"),
        (500, CallOutcome.failed, 502, "upstream-error", AuditOutcome.upstreamError, "upstream_error"),
    ])
    func aRefusalByHostingerIsKeptAndAnsweredWithHostingersWords(hostingerStatus: Int, outcome: CallOutcome, status: Int, type: String,
                                                                 audit: AuditOutcome, reason: String) throws {
        hostinger.answer("restart", HostingerResult(outcome: outcome, status: hostingerStatus, message: "nope", hostingerCorrelationID: "h-1",
                                                    fieldErrors: [("name", ["bad"])], attempts: 1))
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == status)
        #expect(problemType(response) == "https://vpsgate.dev/docs/problems#" + type)
        #expect(response.json?["upstream"]?["message"]?.stringValue == "nope")
        let record = try #require(store.finished.first)
        #expect(record.keyEffect == .store)
        #expect(record.audit.outcome == audit)
        #expect(record.audit.problemType == "urn:vpsgate:problem:" + type)
        #expect(record.audit.hostingerStatus == hostingerStatus)
        #expect(record.operation.state == .failed)
        #expect(record.operation.error?["reason"]?.stringValue == reason)
    }

    @Test func anOutcomeTheDatabaseCannotTakeNowIsStillAnswered() throws {
        hostinger.answer("restart", Fixture.accepted(Fixture.action(9001, "ct_restart", "sent")))
        store.finishWrite = .deferred(reason: "connection lost")
        let response = send(Fixture.request("POST", "/v1/vps/1001/restart"))
        #expect(response.status == 202)
        let metrics = responder.context.metrics.render(gauges: [])
        #expect(metrics.contains("vpsgate_outcome_writes_deferred_total 1"))
    }
}
