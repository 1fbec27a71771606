import Testing

@testable import VpsgateCore

/// Dispatch's check of an approved operation, row by row: a database login without the
/// secret key can neither make a request, change one, move one, replay one nor count an
/// approval; a revoked grant or a stopped batch refuses too.
@Suite struct DispatchCheckTests {
    let keys = try! SecretKeyRing.parse("k1 " + String(repeating: "ab", count: 32)).get()
    /// The same key file's owner would not have this one: an attacker's guess.
    let otherKeys = try! SecretKeyRing.parse("k1 " + String(repeating: "cd", count: 32)).get()
    static let operationID = "0b6f1f0e-7a43-4c1b-9a55-7d2a4c4b9d01"
    static let recreate: JSONValue = .object([("template_id", .number("1130")), ("confirm", .number("1001"))])

    func operation(_ id: String = operationID, requestedBy: String = "rita", command: String = "vps.recreate") -> OperationRecord {
        OperationRecord(id: id, target: .vps(1001), command: command, state: .accepted, requestedBy: requestedBy, correlationID: "c",
                        idempotencyKey: "key-00000001", createdAt: 1, updatedAt: 2)
    }

    /// A kept request as vpsgate seals it, claimed for the `claim`th time.
    func claimed(_ origin: KeptRequest.Origin? = nil, operation: OperationRecord? = nil, emergency: Bool = false, body: JSONValue? = recreate,
                 sealWith: SecretKeyRing? = nil, claim: Int = 1) -> ApprovedDispatch {
        let operation = operation ?? self.operation()
        let kept = KeptRequest(origin: origin ?? .operation(id: operation.id), command: operation.command, target: operation.target,
                               requestedBy: operation.requestedBy, emergency: emergency)
        let sealed = try! kept.seal(parameters: [:], body: body, keys: sealWith ?? keys)
        return ApprovedDispatch(operation: operation, emergency: emergency,
                                request: SealedRequest(name: "x", method: "GET", path: "/anything", repeatSafe: true,
                                                       sealedBody: sealed.envelope, keyID: sealed.keyID),
                                nonce: KeptRequest.digest(sealed.envelope), claim: claim)
    }

    func approval(_ principal: String, for claimed: ApprovedDispatch, origin: String? = nil, holds: Bool = true,
                  signer: SecretKeyRing? = nil) -> DispatchFacts.Approval {
        let parts = KeptRequest.approvalParts(origin: origin ?? claimed.operation.id, principal: principal, decision: "approve",
                                              digest: origin == nil ? KeptRequest.digest(claimed.request.sealedBody) : "-")
        return DispatchFacts.Approval(principal: principal, decision: "approve", mac: (signer ?? keys).mac(parts), holds: holds)
    }

    func facts(_ approvals: [DispatchFacts.Approval], requesterHolds: Bool = true, policy: Int = 1, batch: DispatchFacts.Batch? = nil,
               released: [Int: String] = [:]) -> DispatchFacts {
        DispatchFacts(requesterHolds: requesterHolds, policyApprovals: policy, approvals: approvals, batch: batch, released: released)
    }

    func reason(_ verdict: DispatchVerdict) -> DispatchRefusal.Reason? {
        if case .refuse(let refusal) = verdict { return refusal.reason }
        return nil
    }

    @Test func aRequestSealedForItsOperationAndApprovedIsSentAsTheCatalogueDerivesIt() {
        let request = claimed()
        let verdict = DispatchCheck.verify(request, facts: facts([approval("bob", for: request)]), keys: keys)
        guard case .send(let call) = verdict else { Issue.record("refused: \(verdict)"); return }
        #expect(call.method == "POST")
        #expect(call.path == "/api/vps/v1/virtual-machines/1001/recreate")
        #expect(call.body?["template_id"]?.intValue == 1130)
    }

    @Test func rowsWrittenWithoutTheKeyAreRefused() {
        let good = claimed()
        let approved = [approval("bob", for: good)]
        var unsealed = good
        unsealed.request.sealedBody = nil
        #expect(reason(DispatchCheck.verify(unsealed, facts: facts(approved), keys: keys)) == .unsealed)

        // Sealed by someone holding another key.
        let forged = claimed(sealWith: otherKeys)
        #expect(reason(DispatchCheck.verify(forged, facts: facts([approval("bob", for: forged)]), keys: keys)) == .integrity)

        // A genuine envelope moved to another operation.
        var moved = good
        moved.operation = operation("5c1d2a7e-0000-4000-8000-000000000002")
        #expect(reason(DispatchCheck.verify(moved, facts: facts([approval("bob", for: moved)]), keys: keys)) == .integrity)

        // The operation's command, requester or emergency flag changed under it.
        var renamed = good
        renamed.operation.command = "vps.stop"
        #expect(reason(DispatchCheck.verify(renamed, facts: facts(approved), keys: keys)) == .integrity)
        var otherRequester = good
        otherRequester.operation.requestedBy = "mallory"
        #expect(reason(DispatchCheck.verify(otherRequester, facts: facts(approved), keys: keys)) == .integrity)
        var emergency = good
        emergency.emergency = true
        #expect(reason(DispatchCheck.verify(emergency, facts: facts(approved), keys: keys)) == .integrity)

        // Another key id.
        var otherKeyID = good
        otherKeyID.request.keyID = "k9"
        #expect(reason(DispatchCheck.verify(otherKeyID, facts: facts(approved), keys: keys)) == .integrity)
    }

    @Test func noApprovalCountsThatTheKeyDidNotSign() {
        let request = claimed()
        // No approval at all, although the policy asks for none now: kept, so it needed one.
        #expect(reason(DispatchCheck.verify(request, facts: facts([], policy: 0), keys: keys)) == .integrity)
        // An approval row written by hand, or signed with another key.
        let handWritten = DispatchFacts.Approval(principal: "bob", decision: "approve", mac: nil, holds: true)
        #expect(reason(DispatchCheck.verify(request, facts: facts([handWritten]), keys: keys)) == .integrity)
        #expect(reason(DispatchCheck.verify(request, facts: facts([approval("bob", for: request, signer: otherKeys)]), keys: keys))
                == .integrity)
        // A genuine approval of another operation, copied.
        let other = claimed(operation: operation("5c1d2a7e-0000-4000-8000-000000000003"))
        let copied = approval("bob", for: other)
        #expect(reason(DispatchCheck.verify(request, facts: facts([copied]), keys: keys)) == .integrity)
        // The requester's own approval, however signed.
        #expect(reason(DispatchCheck.verify(request, facts: facts([approval("rita", for: request)]), keys: keys)) == .integrity)
        // Two required, one given.
        #expect(reason(DispatchCheck.verify(request, facts: facts([approval("bob", for: request)], policy: 2), keys: keys)) == .integrity)
        #expect(reason(DispatchCheck.verify(request, facts: facts([approval("bob", for: request), approval("ann", for: request)], policy: 2),
                                            keys: keys)) == nil)
    }

    @Test func aClaimedRequestIsSentAgainOnlyAfterEachEarlierClaimWasReleasedUnderTheKey() {
        let second = claimed(claim: 2)
        let approved = [approval("bob", for: second)]
        #expect(reason(DispatchCheck.verify(second, facts: facts(approved), keys: keys)) == .integrity, "replayed")
        let nonce = second.nonce ?? ""
        let forgedRelease = otherKeys.mac(KeptRequest.releaseParts(nonce: nonce, claim: 1))
        #expect(reason(DispatchCheck.verify(second, facts: facts(approved, released: [1: forgedRelease]), keys: keys)) == .integrity)
        let release = keys.mac(KeptRequest.releaseParts(nonce: nonce, claim: 1))
        #expect(reason(DispatchCheck.verify(second, facts: facts(approved, released: [1: release]), keys: keys)) == nil)
        let third = claimed(claim: 3)
        #expect(reason(DispatchCheck.verify(third, facts: facts(approved, released: [1: release]), keys: keys)) == .integrity,
                "claim 2 was never released")
    }

    @Test func grantsAreThoseOfNow() {
        let request = claimed()
        #expect(reason(DispatchCheck.verify(request, facts: facts([approval("bob", for: request)], requesterHolds: false), keys: keys))
                == .grantRevoked)
        #expect(reason(DispatchCheck.verify(request, facts: facts([approval("bob", for: request, holds: false)]), keys: keys))
                == .grantRevoked)
    }

    @Test func aBatchChildIsBoundToItsBatchItsRoundAndItsVPS() {
        let seal = "7f0c2a7e-0000-4000-8000-00000000000a"
        let child = claimed(.batch(seal: seal, vps: 1001), operation: operation(command: "vps.restart"), body: nil)
        func batch(_ state: String = "running", seal: String = seal, round: Int = 0, attempt: Int = 0) -> DispatchFacts.Batch {
            DispatchFacts.Batch(id: 7, seal: seal, round: round, state: state, attempt: attempt)
        }
        let signed = approval("bob", for: child, origin: KeptRequest.batchOrigin(seal: seal, round: 0))
        // No approval needed by policy.
        #expect(reason(DispatchCheck.verify(child, facts: facts([], policy: 0, batch: batch()), keys: keys)) == nil)
        #expect(reason(DispatchCheck.verify(child, facts: facts([], policy: 0, batch: batch("cancelled")), keys: keys)) == .batchStopped)
        #expect(reason(DispatchCheck.verify(child, facts: facts([], policy: 0, batch: batch("halted")), keys: keys)) == .batchStopped)
        #expect(reason(DispatchCheck.verify(child, facts: facts([], policy: 0, batch: batch(attempt: 4)), keys: keys)) == .integrity)
        // Copied into another batch, or unlinked from its batch.
        #expect(reason(DispatchCheck.verify(child, facts: facts([], policy: 0, batch: batch(seal: "other")), keys: keys)) == .integrity)
        #expect(reason(DispatchCheck.verify(child, facts: facts([], policy: 0), keys: keys)) == .integrity)
        // Approved in its round; an approval of an earlier round does not count.
        #expect(reason(DispatchCheck.verify(child, facts: facts([signed], batch: batch()), keys: keys)) == nil)
        #expect(reason(DispatchCheck.verify(child, facts: facts([signed], batch: batch(round: 1)), keys: keys)) == .integrity)
    }

    @Test func storedPathsAndMethodsAreNeverUsed() {
        var request = claimed()
        request.request.path = "@evil.example/api"
        request.request.method = "DELETE"
        guard case .send(let call) = DispatchCheck.verify(request, facts: facts([approval("bob", for: request)]), keys: keys) else {
            Issue.record("refused")
            return
        }
        #expect(call.path == "/api/vps/v1/virtual-machines/1001/recreate")
        #expect(call.method == "POST")
    }
}
