import Logging
import Postgres
import Testing
import VpsgateCore
import VpsgateStore

/// The approval and dispatch functions against PostgreSQL, through the store:
/// `decide_operation`, `claim_approved` (the order it takes operations in, the ledger),
/// `dispatch_context`, `release_dispatch`, `refuse_dispatch` and `expire_approvals`.
@Suite(.serialized) struct ApprovalStoreTests {
    let store: PostgresStore
    let database: PostgresConnection
    let keys = try! SecretKeyRing.parse("k1 " + String(repeating: "5a", count: 32)).get()

    init() throws {
        let url = try TestDatabase.makeFresh()
        let migrations = try Migrator.load(directory: CommandStoreTests.migrationsDirectory)
        database = PostgresConnection(url: url)
        _ = try Migrator(migrations: migrations, objects: TestDatabase.objects()).upgrade(on: database)
        try database.execute(script: """
            INSERT INTO principals (name) VALUES ('rita'), ('ben'), ('cleo');
            INSERT INTO grants (principal, resource_id, role, created_by) VALUES ('rita', NULL, 'admin', 'test'),
                ('ben', NULL, 'approver', 'test'), ('cleo', NULL, 'approver', 'test');
            """)
        store = PostgresStore(url: url, applicationName: "vpsgate approval-test", migrations: migrations, pending: PendingOutcomes(),
                              logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// A recreate of `vps` awaiting approval (the shipped policy asks one), its input sealed
    /// as the command path seals it; its operation id.
    func awaiting(_ vps: Int, emergency: Bool = false) throws -> String {
        let id = UUIDv4.generate()
        let kept = KeptRequest(origin: .operation(id: id), command: "vps.recreate", target: .vps(vps), requestedBy: "rita", emergency: emergency)
        let sealed = try kept.seal(parameters: [:], body: .object([("template_id", .number("1130")), ("confirm", .number(String(vps)))]),
                                   keys: keys)
        let audit = AuditEntry(outcome: .received, identity: RequestIdentity(correlationID: "corr-\(id)", principal: "rita"))
        let decision = try store.begin(BeginRequest(
            principal: "rita", key: "key-\(id)", fingerprints: ["fp-\(id)"], target: .vps(vps), command: "vps.recreate", permission: .destroy,
            operationID: id, busyBoundSeconds: 3600, audit: audit, emergencyReason: emergency ? "INC-1" : nil,
            request: SealedRequest(name: "recreate", method: "POST", path: "/api/vps/v1/virtual-machines/\(vps)/recreate", repeatSafe: false,
                                   sealedBody: sealed.envelope, keyID: sealed.keyID)))
        guard case .awaitingApproval = decision else { throw PostgresError(.decoding, "not awaiting approval: \(decision)") }
        return id
    }

    func approve(_ id: String, by principal: String = "ben") throws -> ApprovalOutcome {
        let digest = try store.keptRequestDigest(operationID: id)
        let mac = keys.mac(KeptRequest.approvalParts(origin: id, principal: principal, decision: "approve", digest: digest))
        return try store.decide(operationID: id, principal: principal, action: .approve, reason: nil, mac: mac,
                                audit: AuditEntry(outcome: .approved, identity: RequestIdentity(correlationID: "c", principal: principal)))
    }

    func state(_ id: String) throws -> String {
        try database.query("SELECT state || coalesce(':' || (error ->> 'reason'), '') AS s FROM operations WHERE id = \(id)::uuid").first?
            .decode(String.self, "s") ?? "gone"
    }

    @Test func anApprovedOperationIsClaimedOnceWithItsEnvelopeAndVerifies() throws {
        let id = try awaiting(2001)
        #expect(try approve(id).result == .approved)
        let claimed = try store.claimApproved(limit: 5, busyBoundSeconds: 3600)
        #expect(claimed.map(\.operation.id) == [id])
        let first = try #require(claimed.first)
        #expect(first.claim == 1 && first.nonce == KeptRequest.digest(first.request.sealedBody))
        #expect(try store.claimApproved(limit: 5, busyBoundSeconds: 3600).isEmpty, "claimed once")
        let facts = try #require(try store.dispatchFacts(operationID: id, permission: .destroy, nonce: first.nonce))
        #expect(facts.requesterHolds && facts.policyApprovals == 1 && facts.approvals.map(\.principal) == ["ben"])
        guard case .send(let call) = DispatchCheck.verify(first, facts: facts, keys: keys) else {
            Issue.record("refused")
            return
        }
        #expect(call.path == "/api/vps/v1/virtual-machines/2001/recreate")
    }

    @Test func aReleasedClaimWaitsAgainAndItsNextClaimVerifies() throws {
        let id = try awaiting(2002)
        _ = try approve(id)
        let first = try #require(try store.claimApproved(limit: 1, busyBoundSeconds: 3600).first)
        try store.releaseDispatch(first, mac: keys.mac(KeptRequest.releaseParts(nonce: first.nonce ?? "", claim: 1)))
        #expect(try state(id) == "approved")
        let second = try #require(try store.claimApproved(limit: 1, busyBoundSeconds: 3600).first)
        #expect(second.claim == 2 && second.nonce == first.nonce && second.request.sealedBody == first.request.sealedBody)
        let facts = try #require(try store.dispatchFacts(operationID: id, permission: .destroy, nonce: second.nonce))
        guard case .send = DispatchCheck.verify(second, facts: facts, keys: keys) else {
            Issue.record("refused after a release")
            return
        }
    }

    @Test func aRefusedClaimIsCancelledWithAnAuditRowAndADriftRow() throws {
        let id = try awaiting(2003)
        _ = try approve(id)
        let claimed = try #require(try store.claimApproved(limit: 1, busyBoundSeconds: 3600).first)
        var audit = AuditEntry.reconciler(claimed.operation, outcome: .refused)
        audit.kind = .dispatch
        try store.refuseDispatch(claimed.operation, DispatchRefusal(.integrity, "test"), audit: audit)
        #expect(try state(id) == "cancelled:integrity")
        let counts = try database.query("""
            SELECT (SELECT count(*) FROM audit_events WHERE operation_id = \(id)::uuid AND kind = 'dispatch' AND outcome = 'refused') AS audited,
                   (SELECT count(*) FROM drift_events WHERE operation_id = \(id)::uuid AND kind = 'request_refused') AS drifted
            """).first
        #expect(try counts?.decode(Int.self, "audited") == 1 && counts?.decode(Int.self, "drifted") == 1)
    }

    @Test func underAFreezeAnEmergencyGoesAndTheOrdinaryOneAheadOfItWaits() throws {
        let ordinary = try awaiting(2004)
        _ = try approve(ordinary)
        // Held by a busy VPS first, then by the freeze: the emergency was approved later.
        try database.execute(script: """
            INSERT INTO freeze_windows (vps_id, starts_at, ends_at, reason, created_by)
            VALUES (2004, now(), now() + interval '1 hour', 'release', 'test');
            """)
        let emergency = try awaiting(2004, emergency: true)
        _ = try approve(emergency)
        let claimed = try store.claimApproved(limit: 5, busyBoundSeconds: 3600)
        #expect(claimed.map(\.operation.id) == [emergency])
        #expect(claimed.first?.emergency == true)
        #expect(try state(ordinary) == "approved")
    }

    func decide(_ id: String, _ action: ApprovalAction, by principal: String, reason: String? = nil) throws -> ApprovalOutcome {
        var mac: String?
        if action != .cancel {
            let digest = try store.keptRequestDigest(operationID: id)
            mac = keys.mac(KeptRequest.approvalParts(origin: id, principal: principal, decision: action.rawValue, digest: digest))
        }
        return try store.decide(operationID: id, principal: principal, action: action, reason: reason, mac: mac,
                                audit: AuditEntry(outcome: .approved, identity: RequestIdentity(correlationID: "c", principal: principal)))
    }

    /// Each answer decide_operation gives: self-approval refused, a vote recorded and counted
    /// once, the count reached, a denial, a withdrawal by the requester, a decision on what no
    /// longer awaits one, and an operation that does not exist.
    @Test func decideOperationAnswersEachCaseAsApprovalResultSays() throws {
        let id = try awaiting(2010)
        try database.query("UPDATE operations SET approvals_required = 2 WHERE id = \(id)::uuid")
        #expect(try decide(id, .approve, by: "rita").result == .selfApproval)
        #expect(try decide(id, .approve, by: "ben").result == .recorded)
        let again = try decide(id, .approve, by: "ben")
        #expect(again.result == .recorded && again.approvals == 1, "approving twice counts once")
        #expect(try decide(id, .approve, by: "cleo").result == .approved)
        #expect(try state(id) == "approved")
        #expect(try decide(id, .deny, by: "ben", reason: "too late").result == .notAwaiting)

        let denied = try awaiting(2011)
        #expect(try decide(denied, .deny, by: "ben", reason: "not now").result == .denied)
        #expect(try state(denied) == "cancelled:denied")
        #expect(try database.query("SELECT count(*) AS n FROM operation_requests WHERE operation_id = \(denied)::uuid").first?
            .decode(Int.self, "n") == 0, "a denied request's kept input goes")

        let withdrawn = try awaiting(2012)
        #expect(try decide(withdrawn, .cancel, by: "rita").result == .withdrawn)
        #expect(try state(withdrawn) == "cancelled:withdrawn")

        #expect(try decide(UUIDv4.generate(), .approve, by: "ben").result == .notFound)
    }

    @Test func aDecisionAfterTheDeadlineExpiresTheOperation() throws {
        let id = try awaiting(2005)
        try database.query("UPDATE operations SET approval_expires_at = now() - interval '1 second' WHERE id = \(id)::uuid")
        #expect(try approve(id).result == .expired)
        #expect(try state(id) == "cancelled:expired")
        #expect(try database.query("SELECT count(*) AS n FROM operation_requests WHERE operation_id = \(id)::uuid").first?
            .decode(Int.self, "n") == 0)
    }

    @Test func aDecisionAfterTheHousekeeperExpiredItIsExpiredToo() throws {
        let id = try awaiting(2008)
        try database.query("UPDATE operations SET approval_expires_at = now() - interval '1 second' WHERE id = \(id)::uuid")
        #expect(try store.expireApprovals() >= 1)
        let events = try database.query("SELECT count(*) AS n FROM events WHERE operation_id = \(id)::uuid").first?.decode(Int.self, "n")
        #expect(try approve(id).result == .expired)
        #expect(try state(id) == "cancelled:expired")
        #expect(try database.query("SELECT count(*) AS n FROM events WHERE operation_id = \(id)::uuid").first?.decode(Int.self, "n") == events,
                "the operation is not changed again")
    }

    @Test func anApprovedOperationPastItsApprovalsTimeIsExpired() throws {
        let id = try awaiting(2006)
        _ = try approve(id)
        try database.query("UPDATE operations SET approval_expires_at = now() - interval '1 second' WHERE id = \(id)::uuid")
        #expect(try store.claimApproved(limit: 5, busyBoundSeconds: 3600).isEmpty, "not claimed past its time")
        #expect(try store.expireApprovals() >= 1)
        #expect(try state(id) == "cancelled:expired")
    }

    @Test func theServingRoleMayOnlyAddLedgerRows() throws {
        let id = try awaiting(2007)
        _ = try approve(id)
        _ = try store.claimApproved(limit: 1, busyBoundSeconds: 3600)
        let grants = try database.query("""
            SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) AS p FROM information_schema.role_table_grants
            WHERE table_name = 'dispatch_ledger' AND grantee = 'vpsgate_app'
            """).first?.decode(String?.self, "p")
        #expect(grants == "INSERT,SELECT")
    }
}
