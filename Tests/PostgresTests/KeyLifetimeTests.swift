import Logging
import Postgres
import Testing
import VpsgateCore
@testable import VpsgateStore

/// How long an idempotency key lives: at least as long as its operation or batch is not
/// terminal (an approval may take 30 days), and its time to live counts from when that
/// became terminal. A retry with the key in between replays; it never makes a second one.
@Suite(.serialized) struct KeyLifetimeTests {
    static let ttl = 86_400
    let store: PostgresStore
    let database: PostgresConnection

    init() throws {
        let url = try TestDatabase.makeFresh()
        let migrations = try Migrator.load(directory: CommandStoreTests.migrationsDirectory)
        database = PostgresConnection(url: url)
        _ = try Migrator(migrations: migrations, objects: TestDatabase.objects()).upgrade(on: database)
        try database.execute(script: """
            INSERT INTO principals (name) VALUES ('alice');
            INSERT INTO grants (principal, resource_id, role, created_by) VALUES ('alice', NULL, 'operator', 'test');
            """)
        store = PostgresStore(url: url, applicationName: "vpsgate key-test", migrations: migrations, pending: PendingOutcomes(),
                              logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// A restart of VPS 1001 that needs one approval, under `key`.
    func begin(key: String) throws -> BeginDecision {
        let audit = AuditEntry(outcome: .received, identity: RequestIdentity(correlationID: "corr-\(key)", principal: "alice",
                                                                             method: "POST", path: "/v1/vps/1001/restart"))
        return try store.begin(BeginRequest(principal: "alice", key: key, fingerprints: ["fp"], target: .vps(1001), command: "vps.restart",
                                            permission: .power, minimumApprovals: 1, operationID: UUIDv4.generate(),
                                            busyBoundSeconds: 3600, audit: audit,
                                            request: SealedRequest(name: "restart", method: "POST",
                                                                   path: "/api/vps/v1/virtual-machines/1001/restart", repeatSafe: true,
                                                                   sealedBody: nil, keyID: nil)))
    }

    /// The restart awaiting approval, its 202 kept under `key` as the command path keeps it;
    /// the operation's id.
    func awaitingApproval(key: String) throws -> String {
        guard case .awaitingApproval(let createdAt, _) = try begin(key: key) else { throw PostgresError(.decoding, "not awaiting approval") }
        let id = try #require(try database.query("SELECT id::text AS id FROM operations WHERE idempotency_key = \(key)").first)
            .decode(String.self, "id")
        let operation = OperationRecord(id: id, target: .vps(1001), command: "vps.restart", state: .awaitingApproval, requestedBy: "alice",
                                        correlationID: "corr-\(key)", idempotencyKey: key, createdAt: createdAt, updatedAt: createdAt)
        var audit = AuditEntry(outcome: .awaitingApproval, identity: RequestIdentity(correlationID: "corr-\(key)", principal: "alice"))
        audit.httpStatus = 202
        #expect(store.finish(FinishRecord(principal: "alice", key: key, operation: operation, keyEffect: .store,
                                          answer: StoredAnswer(status: 202, location: operation.location, body: operation.json()),
                                          audit: audit)) == .recorded)
        return id
    }

    /// Makes the key's answer `hours` old.
    func age(key: String, hours: Int) throws {
        try database.query("UPDATE idempotency_keys SET completed_at = now() - make_interval(hours => \(hours)) WHERE key = \(key)")
    }

    func purge() throws -> Int { try store.purgeExpiredKeys(ttlSeconds: Self.ttl) }

    func kept(_ key: String) throws -> Bool {
        try database.query("SELECT count(*) AS n FROM idempotency_keys WHERE key = \(key)").first?.decode(Int.self, "n") == 1
    }

    @Test func aKeyOutlivesItsOperationUntilItHasBeenTerminalForTheTimeToLive() throws {
        let id = try awaitingApproval(key: "key-awaiting-0001")
        try age(key: "key-awaiting-0001", hours: 48)
        #expect(try purge() == 0)
        // A retry days later replays the operation; no second one is made.
        guard case .replay(let answer) = try begin(key: "key-awaiting-0001") else { Issue.record("expected a replay"); return }
        #expect(answer.location == "/v1/operations/\(id)")
        #expect(try database.query("SELECT count(*) AS n FROM operations").first?.decode(Int.self, "n") == 1)
        // Approved, sent, followed: kept all along.
        for state in ["approved", "accepted", "dispatched", "running", "unknown"] {
            try database.query("UPDATE operations SET state = \(state) WHERE id = \(id)::uuid")
            #expect(try purge() == 0, "purged while \(state)")
        }
        // Terminal now: its time to live starts now, not when the answer was stored.
        try database.query("UPDATE operations SET state = 'succeeded', completed_at = now() - interval '23 hours' WHERE id = \(id)::uuid")
        #expect(try purge() == 0)
        #expect(try kept("key-awaiting-0001"))
        try database.query("UPDATE operations SET completed_at = now() - interval '25 hours' WHERE id = \(id)::uuid")
        #expect(try purge() == 1)
        #expect(try !kept("key-awaiting-0001"))
    }

    @Test func aCancelledOperationsKeyGoesItsTimeToLiveAfterTheCancel() throws {
        let id = try awaitingApproval(key: "key-cancelled-0001")
        try age(key: "key-cancelled-0001", hours: 48)
        let audit = AuditEntry(outcome: .received, identity: RequestIdentity(correlationID: "corr-cancel", principal: "alice"))
        #expect(try store.decide(operationID: id, principal: "alice", action: .cancel, reason: nil, mac: nil, audit: audit).result == .withdrawn)
        #expect(try purge() == 0)
        try database.query("UPDATE operations SET completed_at = now() - interval '25 hours' WHERE id = \(id)::uuid")
        #expect(try purge() == 1)
    }

    @Test func aKeyOfNoOperationGoesItsTimeToLiveAfterItsAnswer() throws {
        try database.execute(script: """
            INSERT INTO idempotency_keys (principal, key, fingerprint, state, response_status, completed_at)
            VALUES ('alice', 'key-old', 'fp', 'completed', 422, now() - interval '25 hours'),
                   ('alice', 'key-new', 'fp', 'completed', 422, now() - interval '23 hours'),
                   ('alice', 'key-in-flight', 'fp', 'in_flight', NULL, NULL);
            """)
        #expect(try purge() == 1)
        #expect(try !kept("key-old") && kept("key-new") && kept("key-in-flight"))
    }

    @Test func aBatchKeyLivesUntilTheBatchIsDoneThenItsTimeToLive() throws {
        // Batches need the approvals their targets' policy asks for.
        try database.query("""
            INSERT INTO approval_policies (subject, approvals, ttl, created_by) VALUES ('vps.restart', 1, interval '30 days', 'test')
            """)
        let key = "key-batch-0001"
        let request = try BatchRequest.parse(.object([("command", .string("vps.restart")), ("vps", .array([.number("1001")]))])).get()
        let children = [BatchChild(vpsID: 1001, request: SealedRequest(name: "restart", method: "POST",
                                                                       path: "/api/vps/v1/virtual-machines/1001/restart", repeatSafe: true,
                                                                       sealedBody: nil, keyID: nil))]
        let audit = AuditEntry(outcome: .received, identity: RequestIdentity(correlationID: "corr-batch", principal: "alice",
                                                                             method: "POST", path: "/v1/batches"))
        let batch = NewBatch(principal: "alice", key: key, fingerprints: ["fp"], request: request, shown: request.shown(targets: [1001]),
                             children: children, audit: audit)
        guard case .created(let created) = try store.createBatch(batch), let id = try JSONValue.parse(created.body)["id"]?.intValue
        else { Issue.record("not created"); return }
        #expect(try database.query("SELECT state FROM batches WHERE id = \(id)").first?.decode(String.self, "state") == "awaiting_approval")
        try age(key: key, hours: 48)
        #expect(try purge() == 0)
        guard case .replay(let replayed) = try store.createBatch(batch) else { Issue.record("expected a replay"); return }
        #expect(replayed.location == "/v1/batches/\(id)")
        #expect(try database.query("SELECT count(*) AS n FROM batches").first?.decode(Int.self, "n") == 1)
        // Running, halted (even complete: it may be resumed), cancelled while children still run: kept.
        for (state, completed) in [("running", "NULL"), ("halted", "now() - interval '48 hours'"), ("cancelled", "NULL")] {
            try database.query(PostgresQuery(unsafeSQL: "UPDATE batches SET state = $1, completed_at = \(completed) WHERE id = $2",
                                             binds: [state, String(id)]))
            #expect(try purge() == 0, "purged while \(state)")
        }
        try database.query("UPDATE batches SET completed_at = now() - interval '23 hours' WHERE id = \(id)")
        #expect(try purge() == 0)
        try database.query("UPDATE batches SET completed_at = now() - interval '25 hours' WHERE id = \(id)")
        #expect(try purge() == 1)
        #expect(try !kept(key))
    }

    /// With sequential scans, bitmaps, hash and merge joins turned off, the planner must still
    /// reach every table through an index condition: the purge's cost follows the keys past
    /// their time, not the size of operations or batches.
    @Test func thePurgeReachesEveryTableThroughAnIndex() throws {
        try database.execute(script: """
            SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off;
            """)
        let purge = PostgresStore.purgeExpiredKeys(ttlSeconds: Self.ttl)
        let plan = try database.query(PostgresQuery(unsafeSQL: "EXPLAIN " + purge.sql, binds: purge.binds))
            .map { try $0.decode(String.self, "QUERY PLAN") }.joined(separator: "\n")
        #expect(!plan.contains("Seq Scan"), "\(plan)")
        #expect(plan.contains("Index Scan using idempotency_keys_completed on idempotency_keys k"), "\(plan)")
        #expect(plan.contains("Index Scan using operations_pkey on operations o"), "\(plan)")
        #expect(plan.contains("Index Scan using batches_pkey on batches b"), "\(plan)")
        #expect(plan.components(separatedBy: "Index Cond: (id = ").count == 3, "\(plan)")
    }
}
