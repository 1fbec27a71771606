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
        _ = try Migrator(migrations: migrations).migrate(on: database)
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
        var page = try store.events(after: cursor, scope: scope, limit: 500)
        for _ in 0..<100 where page.heldBack {
            usleep(30_000)
            page = try store.events(after: cursor, scope: scope, limit: 500)
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
        #expect(try store.events(after: firstCursor, scope: ReadScope(all: true, ids: []), limit: 10).expired)
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
}
