import Logging
import Postgres
import Testing
import VpsgateCore
import VpsgateStore

/// `begin_command` and `finish_command` against PostgreSQL, through the store: the one place
/// that decides proceed, replay, in use, reused and busy, and the audit row it writes with
/// what vpsgate declared each decision means.
@Suite(.serialized) struct CommandStoreTests {
    let url: String
    let store: PostgresStore
    let database: PostgresConnection

    init() throws {
        url = try TestDatabase.makeFresh()
        let migrations = try Migrator.load(directory: Self.migrationsDirectory)
        database = PostgresConnection(url: url)
        _ = try Migrator(migrations: migrations, objects: TestDatabase.objects()).upgrade(on: database)
        try database.execute(script: """
            INSERT INTO principals (name) VALUES ('alice'), ('vera');
            INSERT INTO grants (principal, resource_id, role, created_by) VALUES ('alice', 1001, 'operator', 'test'), ('vera', 1001, 'viewer', 'test');
            """)
        store = PostgresStore(url: url, applicationName: "vpsgate store-test", migrations: migrations, pending: PendingOutcomes(),
                              logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    static var migrationsDirectory: String {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/Migrations"
    }

    func begin(key: String = "key-0001-abcd", fingerprint: String = "fp-a", vps: Int = 1001, principal: String = "alice") throws -> BeginDecision {
        var audit = AuditEntry(outcome: .received, identity: RequestIdentity(correlationID: "corr-\(key)", principal: "alice",
                                                                             method: "POST", path: "/v1/vps/\(vps)/restart"))
        audit.durationMilliseconds = 1.5
        return try store.begin(BeginRequest(principal: principal, key: key, fingerprints: [fingerprint], target: .vps(vps), command: "vps.restart",
                                            permission: .power, operationID: UUIDv4.generate(), busyBoundSeconds: 3600, audit: audit))
    }

    /// The final audit rows written so far: (outcome, status, problem type).
    func finalRows() throws -> [[String]] {
        try database.query("""
            SELECT outcome, coalesce(http_status::text, '-') AS status, coalesce(problem_type, '-') AS problem
            FROM audit_events WHERE kind = 'final' ORDER BY id
            """).map { row in try ["outcome", "status", "problem"].map { try row.decode(String.self, $0) } }
    }

    func finish(_ decision: BeginDecision, key: String = "key-0001-abcd", effect: KeyEffect = .store,
                strays: [StrayAttempt] = []) throws -> FinishWrite {
        guard case .proceed(let createdAt) = decision else { throw PostgresError(.decoding, "not proceed") }
        let id = try #require(try database.query("SELECT id::text AS id FROM operations WHERE idempotency_key = \(key)").first)
            .decode(String.self, "id")
        let operation = OperationRecord(id: id, target: .vps(1001), command: "vps.restart", state: effect == .release ? .failed : .running,
                                        actionID: 9001, actionName: "ct_restart", actionState: "sent", requestedBy: "alice",
                                        correlationID: "corr", idempotencyKey: key, createdAt: createdAt, updatedAt: createdAt + 1000)
        var audit = AuditEntry(outcome: .accepted, identity: RequestIdentity(correlationID: "corr", principal: "alice"),
                               command: "vps.restart", vpsID: 1001)
        audit.httpStatus = 202
        return store.finish(FinishRecord(principal: "alice", key: key, operation: operation, keyEffect: effect,
                                         answer: StoredAnswer(status: 202, location: operation.location, body: operation.json()), audit: audit,
                                         strayAttempts: strays))
    }

    @Test func aNewKeyProceedsAndRecordsTheOperationAndItsReceivedRow() throws {
        guard case .proceed(let createdAt) = try begin() else { Issue.record("expected proceed"); return }
        #expect(createdAt > 1_700_000_000_000_000)
        let received = try database.query("SELECT count(*) AS n FROM audit_events WHERE kind = 'received'").first?.decode(Int.self, "n")
        #expect(received == 1)
        #expect(try finalRows().isEmpty)
    }

    @Test func aVPSOutsideTheGrantsIsNotFoundAndNothingIsTaken() throws {
        #expect(try begin(vps: 2002) == .notFound)
        #expect(try begin(principal: "mallory") == .notFound)
        #expect(try finalRows() == [["not_found", "404", "urn:vpsgate:problem:not-found"], ["not_found", "404", "urn:vpsgate:problem:not-found"]])
        let taken = try database.query("SELECT (SELECT count(*) FROM idempotency_keys) + (SELECT count(*) FROM operations) AS n").first
        #expect(try taken?.decode(Int.self, "n") == 0)
    }

    @Test func aGrantWithoutThePermissionIsForbidden() throws {
        #expect(try begin(principal: "vera") == .forbidden)
        #expect(try finalRows() == [["denied", "403", "urn:vpsgate:problem:forbidden"]])
    }

    @Test func theSameKeyWhileInFlightIsInUseAndAudited() throws {
        _ = try begin()
        #expect(try begin() == .inUse)
        #expect(try finalRows() == [["conflict", "409", "urn:vpsgate:problem:idempotency-key-in-use"]])
    }

    @Test func theSameKeyForAnotherRequestIsReused() throws {
        _ = try begin()
        #expect(try begin(fingerprint: "fp-b") == .reused)
        #expect(try finalRows() == [["conflict", "422", "urn:vpsgate:problem:idempotency-key-reused"]])
    }

    @Test func aFinishedKeyReplaysItsStoredAnswerWithItsStatus() throws {
        let first = try begin()
        #expect(try finish(first) == .recorded)
        guard case .replay(let stored) = try begin() else { Issue.record("expected replay"); return }
        #expect(stored.status == 202)
        #expect(stored.location?.hasPrefix("/v1/operations/") == true)
        #expect(try finalRows().map { $0[0] } == ["accepted", "replayed"])
        #expect(try finalRows().last?[1] == "202")
    }

    @Test func anotherKeyOnABusyVPSIsBusyAndTheKeyIsNotKept() throws {
        _ = try begin()
        guard case .busy(let blocking) = try begin(key: "key-0002-abcd") else { Issue.record("expected busy"); return }
        #expect(UUIDv4.isValid(blocking))
        #expect(try finalRows() == [["busy", "409", "urn:vpsgate:problem:vps-busy"]])
        let kept = try database.query("SELECT count(*) AS n FROM idempotency_keys WHERE key = 'key-0002-abcd'").first?.decode(Int.self, "n")
        #expect(kept == 0)
    }

    @Test func finishingTwiceRecordsTheAnswerOnce() throws {
        let first = try begin()
        #expect(try finish(first) == .recorded)
        #expect(try finish(first) == .recorded)
        #expect(try finalRows().count == 1)
    }

    @Test func theFirstLookAtAnAcceptedActionIsDueAQuarterSecondAfterTheAnswer() throws {
        #expect(try store.nextCheckDue(graceMilliseconds: 60_000) == nil, "nothing open")
        let first = try begin()
        // Accepted, its answer not recorded yet: the reconciler leaves it to its instance for the grace period.
        let accepted = try #require(try store.nextCheckDue(graceMilliseconds: 60_000))
        #expect(accepted > 55_000 && accepted <= 60_000)
        #expect(try finish(first) == .recorded)
        let running = try #require(try store.nextCheckDue(graceMilliseconds: 60_000))
        #expect(running > -1_000 && running <= 250, "first look 250 ms after Hostinger accepted")
        try database.query("UPDATE operations SET next_check_at = clock_timestamp() - interval '1 second'")
        #expect(try #require(try store.nextCheckDue(graceMilliseconds: 60_000)) < 0, "due now")
        #expect(try store.claim(owner: "test", leaseSeconds: 30, graceMilliseconds: 60_000, limit: 10).operations.count == 1)
        // Leased: due for another instance when the lease runs out.
        #expect(try #require(try store.nextCheckDue(graceMilliseconds: 60_000)) > 25_000)
    }

    /// The reconciler answered the request first (its instance looked dead), the operation
    /// still accepted: the late answer moves the operation, once (one event), and writes
    /// neither a second final row nor the key's answer over the reconciler's.
    @Test func anAnswerAfterTheReconcilersMovesTheOperationButIsNotASecondAnswer() throws {
        let first = try begin()
        let id = try #require(try database.query("SELECT id::text AS id FROM operations WHERE idempotency_key = 'key-0001-abcd'").first)
            .decode(String.self, "id")
        let abandoned = try database.query("SELECT answer_abandoned_request(\(id)::uuid)::text AS done").first?.decode(String.self, "done")
        #expect(abandoned == "true")
        #expect(try finish(first) == .recorded)
        let row = try #require(try database.query("""
            SELECT state, (SELECT count(*) FROM events e WHERE e.operation_id = o.id AND e.type = 'operation.running')::text AS events,
                   (SELECT k.state FROM idempotency_keys k WHERE k.key = 'key-0001-abcd') AS key_state
            FROM operations o WHERE o.id = \(id)::uuid
            """).first)
        #expect(try row.decode(String.self, "state") == "running")
        #expect(try row.decode(String.self, "events") == "1")
        #expect(try row.decode(String.self, "key_state") == "in_flight")
        #expect(try finalRows().map { $0[0] } == ["unknown"])
    }

    @Test func strayAttemptsAreRecordedWithTheOutcomeOnceAndTiedToOneActionEach() throws {
        let decision = try begin()
        guard case .proceed(let createdAt) = decision else { Issue.record("expected proceed"); return }
        let strays = [StrayAttempt(number: 1, startedAt: createdAt + 1000, endedAt: createdAt + 90_000),
                      StrayAttempt(number: 2, startedAt: createdAt + 300_000, endedAt: createdAt + 400_000)]
        #expect(try finish(decision, strays: strays) == .recorded)
        // A replay of the same write (an outcome kept while the database was away) adds nothing.
        #expect(try finish(decision, strays: strays) == .recorded)
        let id = try #require(try database.query("SELECT id::text AS id FROM operations").first).decode(String.self, "id")
        let other = "00000000-0000-4000-8000-000000000001"
        let read = try store.strayAttempts(vps: 1001, excluding: other, from: createdAt, through: createdAt + 1_000_000, actionIDs: [])
        #expect(read == strays.map { StrayWindow(operationID: id, attempt: $0, names: ["ct_restart", "restart"]) })
        // Never the settling operation's own, another VPS's, or outside the window.
        #expect(try store.strayAttempts(vps: 1001, excluding: id, from: createdAt, through: createdAt + 1_000_000, actionIDs: []).isEmpty)
        #expect(try store.strayAttempts(vps: 1002, excluding: other, from: createdAt, through: createdAt + 1_000_000, actionIDs: []).isEmpty)
        #expect(try store.strayAttempts(vps: 1001, excluding: other, from: createdAt + 500_000, through: createdAt + 600_000, actionIDs: []).isEmpty)
        // An action is tied to one attempt, an attempt to one action.
        let tie = StrayAttribution(actionID: 77, operationID: id, attempt: 1)
        #expect(try store.attribute([tie]) == [tie])
        #expect(try store.attribute([StrayAttribution(actionID: 77, operationID: id, attempt: 2)]).isEmpty)
        #expect(try store.attribute([StrayAttribution(actionID: 78, operationID: id, attempt: 1)]).isEmpty)
        // A tied attempt is read back by its action, wherever its window lies.
        let tied = try store.strayAttempts(vps: 1001, excluding: other, from: 0, through: 1, actionIDs: [77])
        #expect(tied.map(\.actionID) == [77])
    }

    @Test func aReleasedKeyStartsAFreshCommand() throws {
        let first = try begin()
        #expect(try finish(first, effect: .release) == .recorded)
        guard case .proceed = try begin() else { Issue.record("a released key proceeds again"); return }
    }
}
