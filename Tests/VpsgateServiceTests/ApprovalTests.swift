import FastCGI
import Hostinger
import Logging
import Synchronization
import Testing
import VpsgateCore
@testable import VpsgateService

/// Approve, deny, cancel and the list of what a principal may approve; the dispatch of an
/// approved operation by the background work. The decisions themselves are the store's
/// (`decide_operation`, `claim_approved`, tested against PostgreSQL end to end).
@Suite struct ApprovalTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()
    let responder: Responder<MemoryStore, ScriptedHostinger>
    let waiting: OperationRecord

    init() throws {
        store.grants = ["bob": [1001: [.read, .approve]], Fixture.principal: [1001: [.read, .destroy]], "vera": [1001: [.read]]]
        responder = Responder(context: try Fixture.context(), store: store, hostinger: hostinger)
        var operation = Fixture.operation(.awaitingApproval, command: "vps.recreate")
        operation.approvalsRequired = 1
        waiting = operation
        store.records[operation.id] = operation
    }

    func post(_ action: String, as principal: String, body: String? = nil) -> FastCGIResponse {
        var responder = self.responder
        return responder.respond(to: Fixture.request("POST", "\(waiting.location)/\(action)", body: body, key: nil, principal: principal))
    }

    @Test func anApproverApprovesAndGetsTheOperation() {
        let response = post("approve", as: "bob")
        #expect(response.status == 200)
        #expect(response.json?["state"]?.stringValue == "approved")
        #expect(store.decided.map(\.action) == [.approve])
        #expect(store.decided.first?.principal == "bob")
        #expect(hostinger.calls.isEmpty, "nothing is sent by the request: the background work dispatches")
    }

    @Test(arguments: [
        (ApprovalResult.selfApproval, 403, "self-approval"), (.notAwaiting, 409, "not-awaiting-approval"), (.notFound, 404, "not-found"),
    ])
    func aRefusedDecisionIsAnsweredAsDeclared(result: ApprovalResult, status: Int, type: String) {
        store.decideAnswer = ApprovalOutcome(result: result, state: nil, approvals: 0, approvalsRequired: 1)
        let response = post("approve", as: "bob")
        #expect(response.status == status)
        #expect(response.json?["type"]?.stringValue == "https://vpsgate.dev/docs/problems#" + type)
        #expect(ApprovalResult.auditAnswers[result.rawValue]?["http_status"]?.intValue == status)
    }

    @Test func approvingNeedsVpsApprove() {
        #expect(post("approve", as: "vera").status == 403)
        #expect(post("approve", as: "mallory").status == 404)
        #expect(store.decided.isEmpty)
    }

    @Test func denyingNeedsAReason() {
        let response = post("deny", as: "bob", body: "{}")
        #expect(response.status == 422)
        #expect(response.json?["errors"]?["reason"] != nil)
        store.decideAnswer = ApprovalOutcome(result: .denied, state: .cancelled, approvals: 0, approvalsRequired: 1)
        #expect(post("deny", as: "bob", body: #"{"reason": "not during the sale"}"#).status == 200)
        #expect(store.decided.first?.reason == "not during the sale")
    }

    @Test func theRequesterMayCancelButNotApprove() {
        store.decideAnswer = ApprovalOutcome(result: .withdrawn, state: .cancelled, approvals: 0, approvalsRequired: 1)
        #expect(post("cancel", as: Fixture.principal).status == 200)
        #expect(post("cancel", as: "vera").status == 403, "neither the requester nor an approver")
    }

    @Test func theApprovalsListIsTheStoresForTheCaller() {
        store.approvable = [waiting]
        var responder = self.responder
        let response = responder.respond(to: Fixture.request("GET", "/v1/approvals", key: nil, principal: "bob"))
        #expect(response.status == 200)
        #expect(response.json?["data"]?.arrayValue?.count == 1)
    }
}

/// The background work that sends approved operations.
@Suite struct DispatchTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()
    let context: ServiceContext

    init() throws {
        context = try Fixture.context()
    }

    /// An approved recreate as the store hands it over: its input sealed for it, approved by
    /// `approvers` (each approval signed under the key), its first claim.
    func approved(body: JSONValue?, approvers: [String] = ["bob"]) throws -> ApprovedDispatch {
        var operation = Fixture.operation(.accepted, command: "vps.recreate")
        operation.dispatchedAt = operation.createdAt
        let kept = KeptRequest(origin: .operation(id: operation.id), command: operation.command, target: operation.target,
                               requestedBy: operation.requestedBy, emergency: false)
        let sealed = try kept.seal(parameters: [:], body: body, keys: context.keys)
        let digest = KeptRequest.digest(sealed.envelope)
        store.facts = DispatchFacts(requesterHolds: true, policyApprovals: 1, approvals: approvers.map { approver in
            DispatchFacts.Approval(principal: approver, decision: "approve", mac: context.keys.mac(
                KeptRequest.approvalParts(origin: operation.id, principal: approver, decision: "approve", digest: digest)), holds: true)
        }, batch: nil, released: [:])
        return ApprovedDispatch(operation: operation, request: SealedRequest(
            name: "recreate", method: "POST", path: "/api/vps/v1/virtual-machines/1001/recreate", repeatSafe: false,
            sealedBody: sealed.envelope, keyID: sealed.keyID), nonce: digest, claim: 1)
    }

    func worker() -> Worker<MemoryStore, ScriptedHostinger> {
        Worker(context: context, store: store, hostinger: hostinger, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static let recreate: JSONValue = .object([("template_id", .number("1130")), ("password", .string("Str0ngEnough!pass")),
                                              ("confirm", .number("1001"))])

    @Test func anApprovedOperationIsSentOnceWithItsOpenedBody() throws {
        var worker = worker()
        store.approvedQueue = [try approved(body: Self.recreate)]
        hostinger.answer("recreate", Fixture.accepted(Fixture.action(9100, "recreate", "sent")))
        let stopping = Atomic<Bool>(false)
        #expect(try worker.dispatchApproved(stopping: stopping) == 1)
        #expect(hostinger.calls.count == 1)
        #expect(hostinger.calls.first?.body?["password"]?.stringValue == "Str0ngEnough!pass")
        #expect(hostinger.calls.first?.path == "/api/vps/v1/virtual-machines/1001/recreate", "derived from the catalogue")
        let record = try #require(store.finished.first)
        #expect(record.operation.state == .running)
        #expect(store.audits.map(\.kind) == [.dispatch])
        #expect(try worker.dispatchApproved(stopping: stopping) == 0, "claimed once")
        #expect(hostinger.calls.count == 1)
    }

    @Test func aBodyThatCannotBeOpenedIsNeverSent() throws {
        var worker = worker()
        var tampered = try approved(body: Self.recreate)
        tampered.request.sealedBody?[20] ^= 0xff
        store.approvedQueue = [tampered]
        let stopping = Atomic<Bool>(false)
        _ = try worker.dispatchApproved(stopping: stopping)
        #expect(hostinger.calls.isEmpty)
        #expect(store.finished.isEmpty)
        #expect(store.refused.first?.refusal.reason == .integrity)
    }

    @Test func aStoredPathIsNeverSentOnlyTheCataloguesOne() throws {
        var worker = worker()
        var forged = try approved(body: Self.recreate)
        forged.request.path = "@attacker.example/steal"
        forged.request.method = "DELETE"
        store.approvedQueue = [forged]
        hostinger.answer("recreate", Fixture.accepted(Fixture.action(9101, "recreate", "sent")))
        _ = try worker.dispatchApproved(stopping: Atomic<Bool>(false))
        #expect(hostinger.calls.map(\.path) == ["/api/vps/v1/virtual-machines/1001/recreate"])
        #expect(hostinger.calls.map(\.method) == ["POST"])
    }

    @Test func anOperationThatWasNotSentWaitsAndIsReleasedUnderTheKey() throws {
        var worker = worker()
        let claimed = try approved(body: Self.recreate)
        store.approvedQueue = [claimed]
        // No answer scripted: the scripted Hostinger answers "not sent", as an open breaker does.
        let stopping = Atomic<Bool>(false)
        #expect(try worker.dispatchApproved(stopping: stopping) == 1)
        #expect(store.finished.isEmpty, "not failed: it waits for Hostinger")
        let released = try #require(store.releasedDispatches.first)
        #expect(context.keys.verify(mac: released.mac, KeptRequest.releaseParts(nonce: claimed.nonce ?? "", claim: 1)))
        store.approvedQueue = [try approved(body: Self.recreate)]
        #expect(try worker.dispatchApproved(stopping: stopping) == 0, "dispatch rests a while after Hostinger was out of reach")
    }

    @Test func aRequesterWithoutTheGrantIsRefusedNotSent() throws {
        var worker = worker()
        store.approvedQueue = [try approved(body: Self.recreate)]
        store.facts?.requesterHolds = false
        _ = try worker.dispatchApproved(stopping: Atomic<Bool>(false))
        #expect(hostinger.calls.isEmpty)
        #expect(store.refused.first?.refusal.reason == .grantRevoked)
    }
}
