import Logging
#if canImport(Glibc)
import Glibc
#endif
import Postgres
import Testing
import VpsgateCore
import VpsgateStore

/// The outbox and the feed against PostgreSQL: an event in the transaction of every state
/// change, and a feed that never steps over an event committed late with a smaller id.
@Suite(.serialized) struct EventStoreTests {
    let url: String
    let store: PostgresStore
    let database: PostgresConnection

    init() throws {
        url = try TestDatabase.makeFresh()
        let migrations = try Migrator.load(directory: CommandStoreTests.migrationsDirectory)
        database = PostgresConnection(url: url)
        _ = try Migrator(migrations: migrations, objects: TestDatabase.objects()).upgrade(on: database)
        store = PostgresStore(url: url, applicationName: "vpsgate event-test", migrations: migrations, pending: PendingOutcomes(),
                              logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    @discardableResult
    func insertOperation(on connection: PostgresConnection, vps: Int = 1001) throws -> String {
        let id = UUIDv4.generate()
        try connection.query("""
            INSERT INTO operations (id, vps_id, command, state, requested_by, correlation_id, idempotency_key)
            VALUES (\(id)::uuid, \(vps), 'vps.restart', 'accepted', 'alice', 'corr', \(id))
            """)
        return id
    }

    /// The feed from `cursor`, once no transaction older than its events is running: other
    /// suites' transactions, in other databases of the cluster, hold the feed back too.
    func settled(after cursor: EventCursor? = nil, scope: ReadScope = ReadScope(all: true, ids: [])) throws -> EventPage {
        var page = try store.events(after: cursor, principal: "alice", scope: scope, limit: 500)
        for _ in 0..<100 where page.heldBack {
            usleep(30_000)
            page = try store.events(after: cursor, principal: "alice", scope: scope, limit: 500)
        }
        return page
    }

    func everything() throws -> EventPage { try settled() }

    @Test func everyStateChangeIsAnEventInItsTransaction() throws {
        let id = try insertOperation(on: database)
        try database.query("UPDATE operations SET state = 'running' WHERE id = \(id)::uuid")
        try database.query("UPDATE operations SET error = '{}'::jsonb WHERE id = \(id)::uuid")  // no state change: no event
        try database.query("UPDATE operations SET state = 'succeeded', completed_at = now() WHERE id = \(id)::uuid")
        // A change rolled back leaves no event.
        try? database.transaction { connection in
            try connection.query("UPDATE operations SET state = 'failed' WHERE id = \(id)::uuid")
            throw PostgresError(.decoding, "roll back")
        }
        let page = try everything()
        #expect(page.events.map(\.type) == ["operation.accepted", "operation.running", "operation.succeeded"])
        #expect(page.events.allSatisfy { $0.operationID == id && $0.vpsID == 1001 })
        let last = try JSONValue.parse(try #require(page.events.last).data)
        #expect(last["operation"]?["state"]?.stringValue == "succeeded")
        #expect(last["previous_state"]?.stringValue == "running")
        #expect(last["operation"]?["completed_at"]?.stringValue?.hasSuffix("Z") == true)
    }

    @Test func aLateCommitWithASmallerIdIsNotSteppedOver() throws {
        let early = PostgresConnection(url: url)
        // The first transaction takes its event id first and commits last.
        try early.query("BEGIN")
        let slow = try insertOperation(on: early)
        let fast = try insertOperation(on: database)
        let held = try everything()
        #expect(held.events.isEmpty, "an event of a transaction younger than one still running was shown")
        #expect(held.heldBack)
        try early.query("COMMIT")
        let page = try everything()
        #expect(page.events.compactMap(\.operationID) == [slow, fast])
        // Read from the cursor of the first: the second is still there.
        let cursor = EventCursor(transaction: UInt64(try database.query("SELECT xid::text AS x FROM events WHERE id = \(Int(page.events[0].id))")
            .first!.decode(String.self, "x"))!, id: page.events[0].id)
        #expect(try settled(after: cursor).events.map(\.operationID) == [fast])
    }

    @Test func aReaderSeesOnlyItsVPSAndThePageMovesPastTheRest() throws {
        try insertOperation(on: database, vps: 1001)
        try insertOperation(on: database, vps: 2002)
        let page = try settled(scope: ReadScope(all: false, ids: [2002]))
        #expect(page.events.map(\.vpsID) == [2002])
        let none = try settled(scope: ReadScope(all: false, ids: [3003]))
        #expect(none.events.isEmpty)
        #expect(none.next != nil, "a page that looked at events moves its cursor past them")
    }

    @Test func prunedEventsExpireTheCursorsBeforeThem() throws {
        try insertOperation(on: database)
        try insertOperation(on: database)
        let all = try everything()
        #expect(all.events.count == 2)
        let first = try #require(all.events.first)
        let firstCursor = EventCursor(transaction: UInt64(try database.query("SELECT xid::text AS x FROM events WHERE id = \(Int(first.id))")
            .first!.decode(String.self, "x"))!, id: first.id)
        let lastCursor = try #require(all.next)
        try database.query("UPDATE events SET occurred_at = now() - interval '8 days'")
        try insertOperation(on: database)
        #expect(try store.pruneEvents(keepSeconds: 7 * 86_400) == 2)
        // After the first: the second is gone, so that reader missed it.
        #expect(try store.events(after: firstCursor, principal: "alice", scope: ReadScope(all: true, ids: []), limit: 10).expired)
        // After the last pruned one: nothing was missed.
        let caughtUp = try settled(after: lastCursor)
        #expect(!caughtUp.expired && caughtUp.events.count == 1)
        let fresh = try everything()
        #expect(!fresh.expired && fresh.events.count == 1)
    }

    @Test func anApprovalDecisionIsAnEvent() throws {
        let id = try insertOperation(on: database)
        try database.query("INSERT INTO approvals (operation_id, principal, decision, fingerprint) VALUES (\(id)::uuid, 'bob', 'approve', 'fp')")
        let page = try everything()
        #expect(page.events.map(\.type) == ["operation.accepted", "approval.granted"])
        #expect(try JSONValue.parse(page.events[1].data)["approval"]?["by"]?.stringValue == "bob")
    }

    // MARK: Deliveries

    /// An endpoint of `hooky` (a viewer of VPS 1001) for every event type; returns its id.
    @discardableResult
    func endpoint() throws -> Int {
        try database.execute(script: """
            INSERT INTO principals (name) VALUES ('hooky') ON CONFLICT DO NOTHING;
            INSERT INTO grants (principal, resource_id, role, created_by) VALUES ('hooky', 1001, 'viewer', 'test') ON CONFLICT DO NOTHING;
            """)
        return try #require(try database.query("""
            INSERT INTO webhook_endpoints (principal, url, sealed_secret, key_id, created_by)
            VALUES ('hooky', 'https://hooks.example.com/x', '\\x00'::bytea, 'k1', 'test') RETURNING id
            """).first).decode(Int.self, "id")
    }

    @Test func anEventOwesADeliveryOnlyToEndpointsWhosePrincipalMayReadItsVPS() throws {
        let id = try endpoint()
        try insertOperation(on: database, vps: 1001)
        try insertOperation(on: database, vps: 2002)
        let owed = try database.query("SELECT e.vps_id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE d.endpoint_id = \(id)")
            .map { try $0.decode(Int.self, "vps_id") }
        #expect(owed == [1001])
    }

    @Test func aLeaseIsOneOwnersAndAFailureIsRetriedThenFailedPastTheGiveUpTime() throws {
        try endpoint()
        try insertOperation(on: database)
        let leased = try store.leaseDeliveries(owner: "a", limit: 5, leaseSeconds: 30)
        #expect(leased.count == 1 && leased[0].attempts == 1 && leased[0].readable)
        #expect(try store.leaseDeliveries(owner: "b", limit: 5, leaseSeconds: 30).isEmpty, "a leased delivery was leased twice")
        // Someone else's late failure changes nothing.
        #expect(try store.completeDelivery(leased[0].id, owner: "b", outcome: .retry, status: 500, error: "x", retryInSeconds: 0,
                                           giveUpSeconds: 86_400) == "pending")
        #expect(try store.completeDelivery(leased[0].id, owner: "a", outcome: .retry, status: 500, error: "the receiver answered 500",
                                           retryInSeconds: 0, giveUpSeconds: 86_400) == "pending")
        let again = try store.leaseDeliveries(owner: "b", limit: 5, leaseSeconds: 30)
        #expect(again.map(\.attempts) == [2] && again.first?.event.id == leased[0].event.id)
        try database.query("UPDATE webhook_deliveries SET window_start = now() - interval '25 hours'")
        #expect(try store.completeDelivery(again[0].id, owner: "b", outcome: .retry, status: nil, error: "timeout", retryInSeconds: 5,
                                           giveUpSeconds: 86_400) == "failed")
        #expect(try store.leaseDeliveries(owner: "c", limit: 5, leaseSeconds: 30).isEmpty)
    }

    @Test func anExpiredLeaseIsTakenOverAndALateSuccessStillCounts() throws {
        try endpoint()
        try insertOperation(on: database)
        let first = try #require(try store.leaseDeliveries(owner: "a", limit: 1, leaseSeconds: 30).first)
        try database.query("UPDATE webhook_deliveries SET lease_until = now() - interval '1 second'")
        let second = try #require(try store.leaseDeliveries(owner: "b", limit: 1, leaseSeconds: 30).first)
        #expect(second.id == first.id && second.attempts == 2)
        #expect(try store.completeDelivery(first.id, owner: "a", outcome: .delivered, status: 200, error: nil, retryInSeconds: 0,
                                           giveUpSeconds: 86_400) == "delivered")
        #expect(try store.completeDelivery(second.id, owner: "b", outcome: .retry, status: 500, error: "x", retryInSeconds: 0,
                                           giveUpSeconds: 86_400) == "delivered")
    }

    @Test func goneDisablesTheEndpointAndFailsItsPendingDeliveries() throws {
        let id = try endpoint()
        try insertOperation(on: database)
        try insertOperation(on: database)
        let leased = try #require(try store.leaseDeliveries(owner: "a", limit: 1, leaseSeconds: 30).first)
        #expect(try store.completeDelivery(leased.id, owner: "a", outcome: .gone, status: 410, error: "gone", retryInSeconds: 0,
                                           giveUpSeconds: 86_400) == "failed")
        #expect(try database.query("SELECT state FROM webhook_endpoints WHERE id = \(id)").first?.decode(String.self, "state") == "disabled")
        #expect(try database.query("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'").first?.decode(Int.self, "n") == 0)
        #expect(try store.leaseDeliveries(owner: "a", limit: 5, leaseSeconds: 30).isEmpty)
        // The change is an admin audit row written by the database.
        #expect(try database.query("SELECT count(*) AS n FROM audit_events WHERE command = 'admin.webhook.disable'").first?.decode(Int.self, "n") == 1)
    }

    @Test func aRevokedGrantDropsTheDeliveryAtSending() throws {
        try endpoint()
        try insertOperation(on: database)
        try database.query("DELETE FROM grants WHERE principal = 'hooky'")
        let leased = try #require(try store.leaseDeliveries(owner: "a", limit: 1, leaseSeconds: 30).first)
        #expect(!leased.readable)
    }
}
