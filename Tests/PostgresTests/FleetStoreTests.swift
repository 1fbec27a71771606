import Logging
import Platform
import Postgres
import Synchronization
import Testing
import VpsgateCore
import VpsgateStore

#if canImport(Glibc)
import Glibc
#endif

/// The shared budget and batches against PostgreSQL (migration 0013): slots spaced evenly,
/// commands before reads, a pause that holds everyone; a batch that starts its children as
/// approved operations, halts past its failures and ends.
@Suite(.serialized) struct FleetStoreTests {
    let store: PostgresStore
    let database: PostgresConnection

    init() throws {
        let url = try TestDatabase.makeFresh()
        let migrations = try Migrator.load(directory: CommandStoreTests.migrationsDirectory)
        database = PostgresConnection(url: url)
        _ = try Migrator(migrations: migrations, objects: TestDatabase.objects()).upgrade(on: database)
        try database.execute(script: """
            INSERT INTO principals (name) VALUES ('fleet'), ('other');
            INSERT INTO grants (principal, resource_id, role, created_by) VALUES ('fleet', NULL, 'operator', 'test');
            """)
        store = PostgresStore(url: url, applicationName: "vpsgate fleet-test", migrations: migrations, pending: PendingOutcomes(),
                              logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// A read that waited for another call's row lock compares the budget with the time after
    /// the wait. Here the first read holds the row 600 ms, six slots: when the second gets it
    /// the budget has been idle for more than two slots, so the read goes now. Timed from
    /// before its wait, it saw the first read's slot still ahead and one read in the last ten
    /// slots, and was refused.
    static var lockedRead: PostgresQuery {
        "SELECT granted, wait_ms FROM take_budget('locked', interval '100 milliseconds', 'read', interval '5 seconds')"
    }

    @Test func aReadThatWaitedForTheRowLockIsTimedAfterTheWait() throws {
        let url = try #require(try database.query("SELECT current_database() AS name").first).decode(String.self, "name")
        let base = try TestDatabase.url()
        let databaseURL = String(base[..<base.lastIndex(of: "/")!]) + "/" + url
        let holder = PostgresConnection(url: databaseURL)
        try holder.execute(script: "BEGIN")
        let first = try #require(try holder.query(Self.lockedRead).first)
        #expect(try first.decode(Bool.self, "granted"))
        let second = Mutex<(granted: Bool, waitMilliseconds: Int)?>(nil)
        let failure = Mutex<String?>(nil)
        let waiter = try OSThread.spawn(name: "budget-waiter") {
            do {
                if let row = try PostgresConnection(url: databaseURL).query(Self.lockedRead).first {
                    let answer = (granted: try row.decode(Bool.self, "granted"), waitMilliseconds: try row.decode(Int.self, "wait_ms"))
                    second.withLock { $0 = answer }
                }
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
        }
        usleep(600_000)
        try holder.execute(script: "COMMIT")
        waiter.join()
        #expect(failure.withLock { $0 } == nil)
        let answer = try #require(second.withLock { $0 })
        #expect(answer.granted && answer.waitMilliseconds == 0, "the waiting read: \(answer)")
    }

    @Test func slotsAreSpacedEvenlyAndCommandsQueueWhileReadsDoNot() throws {
        // One slot per second: the first goes now, the next ones wait a second more each
        // (less the time the calls themselves took, up to half a second on a loaded machine).
        let first = try store.takeBudget(name: "t", intervalMicroseconds: 1_000_000, priority: "command", maxWaitMilliseconds: 5000)
        #expect(first.granted && first.waitMilliseconds == 0)
        let second = try store.takeBudget(name: "t", intervalMicroseconds: 1_000_000, priority: "command", maxWaitMilliseconds: 5000)
        #expect(second.granted && (400...1000).contains(second.waitMilliseconds))
        let third = try store.takeBudget(name: "t", intervalMicroseconds: 1_000_000, priority: "command", maxWaitMilliseconds: 5000)
        #expect(third.granted && (1400...2000).contains(third.waitMilliseconds))
        // A read never queues behind them: refused, told when to ask again.
        let read = try store.takeBudget(name: "t", intervalMicroseconds: 1_000_000, priority: "read", maxWaitMilliseconds: 5000)
        #expect(!read.granted && read.waitMilliseconds >= 2400)
        // A command past its bound is refused too, and takes no slot.
        let late = try store.takeBudget(name: "t", intervalMicroseconds: 1_000_000, priority: "command", maxWaitMilliseconds: 1000)
        #expect(!late.granted)
        let after = try store.takeBudget(name: "t", intervalMicroseconds: 1_000_000, priority: "command", maxWaitMilliseconds: 5000)
        #expect(after.granted && (2400...3000).contains(after.waitMilliseconds))
        // Another token's budget is its own.
        #expect(try store.takeBudget(name: "u", intervalMicroseconds: 1_000_000, priority: "read", maxWaitMilliseconds: 0).granted)
    }

    @Test func whileCommandsWaitReadsHaveOneSlotInTenAtMost() throws {
        // Commands keep the budget busy; a read may take the next slot (one slot's wait),
        // then no read has one for the next ten slots. Slots of a second, so that the loop
        // (a few milliseconds an iteration) ends well inside those ten on a loaded machine.
        var reads = 0
        for _ in 0..<30 {
            #expect(try store.takeBudget(name: "share", intervalMicroseconds: 1_000_000, priority: "command", maxWaitMilliseconds: 60_000).granted)
            try database.query("UPDATE upstream_budgets SET next_at = clock_timestamp() + interval '500 milliseconds' WHERE name = 'share'")
            let read = try store.takeBudget(name: "share", intervalMicroseconds: 1_000_000, priority: "read", maxWaitMilliseconds: 0)
            if read.granted {
                reads += 1
                #expect(read.waitMilliseconds <= 1000)
                // As if its slot and ten more had gone by only after the next read asks.
            }
        }
        #expect(reads == 1)
        try database.query("UPDATE upstream_budgets SET last_read_at = clock_timestamp() - interval '20 seconds' WHERE name = 'share'")
        #expect(try store.takeBudget(name: "share", intervalMicroseconds: 1_000_000, priority: "read", maxWaitMilliseconds: 0).granted)
    }

    @Test func aReadWaitsForTheBudgetToBeIdleTwoMoreSlots() throws {
        #expect(try store.takeBudget(name: "r", intervalMicroseconds: 200_000, priority: "command", maxWaitMilliseconds: 0).granted)
        // (A read had its share of a busy budget just now.)
        try database.query("UPDATE upstream_budgets SET last_read_at = clock_timestamp() WHERE name = 'r'")
        // The command's slot is over, but not two more: the read is refused.
        #expect(try !store.takeBudget(name: "r", intervalMicroseconds: 200_000, priority: "read", maxWaitMilliseconds: 0).granted)
        try database.query("UPDATE upstream_budgets SET next_at = clock_timestamp() - interval '1 second' WHERE name = 'r'")
        #expect(try store.takeBudget(name: "r", intervalMicroseconds: 200_000, priority: "read", maxWaitMilliseconds: 0).granted)
    }

    @Test func aPauseHoldsEveryCallWithOrWithoutALimit() throws {
        try store.pauseBudget(name: "p", milliseconds: 3000, maxMilliseconds: 900_000)
        for interval in [0, 1_000_000] {
            let read = try store.takeBudget(name: "p", intervalMicroseconds: interval, priority: "read", maxWaitMilliseconds: 0)
            #expect(!read.granted && (2000...3000).contains(read.waitMilliseconds))
            let command = try store.takeBudget(name: "p", intervalMicroseconds: interval, priority: "command", maxWaitMilliseconds: 1000)
            #expect(!command.granted)
        }
        let waited = try store.takeBudget(name: "p", intervalMicroseconds: 0, priority: "command", maxWaitMilliseconds: 5000)
        #expect(waited.granted && (2000...3000).contains(waited.waitMilliseconds))
        // A shorter pause never shortens a longer one.
        try store.pauseBudget(name: "p", milliseconds: 10, maxMilliseconds: 900_000)
        #expect(try store.budgetState(name: "p").pausedSeconds > 1.5)
    }

    @Test func aPauseIsCappedWhateverItsRetryAfterAndWhoeverWritesIt() throws {
        // A day's Retry-After pauses for the instance's cap.
        try store.pauseBudget(name: "day", milliseconds: 86_400_000, maxMilliseconds: 900_000)
        #expect((899...900).contains(try store.budgetState(name: "day").pausedSeconds))
        // An instance asking for more than the database allows gets its hour.
        try store.pauseBudget(name: "greedy", milliseconds: 86_400_000, maxMilliseconds: 86_400_000)
        #expect((3599...3600).contains(try store.budgetState(name: "greedy").pausedSeconds))
    }

    func newBatch(vps: [Int], maxInFlight: Int, maxFailures: Int, key: String = UUIDv4.generate()) throws -> Int {
        let request = try BatchRequest.parse(.object([
            ("command", .string("vps.restart")), ("vps", .array(vps.map { .number(String($0)) })),
            ("max_in_flight", .number(String(maxInFlight))), ("max_failures", .number(String(maxFailures))),
        ])).get()
        let children = vps.map { id in
            BatchChild(vpsID: id, request: SealedRequest(name: "restart", method: "POST", path: "/api/vps/v1/virtual-machines/\(id)/restart",
                                                         repeatSafe: true, sealedBody: nil, keyID: nil))
        }
        let audit = AuditEntry(outcome: .received, identity: RequestIdentity(correlationID: "corr-batch", principal: "fleet",
                                                                             method: "POST", path: "/v1/batches"))
        guard case .created(let answer) = try store.createBatch(NewBatch(principal: "fleet", key: key, fingerprints: ["fp"], request: request,
                                                                          shown: request.shown(targets: vps), children: children,
                                                                          audit: audit)),
            let id = try JSONValue.parse(answer.body)["id"]?.intValue
        else { throw StoreError(unavailable: false, "not created") }
        return id
    }

    func childStates(_ batch: Int) throws -> [String] {
        try database.query("SELECT state FROM batch_children WHERE batch_id = \(batch) ORDER BY position").map { try $0.decode(String.self, "state") }
    }

    func end(_ batch: Int, position: Int, as state: String, reason: String? = nil) throws {
        try database.query("""
            UPDATE operations o SET state = \(state), completed_at = now(),
                error = CASE WHEN \(reason)::text IS NULL THEN NULL ELSE jsonb_build_object('reason', \(reason)::text) END
            FROM batch_children c WHERE c.batch_id = \(batch) AND c.position = \(position) AND o.id = c.operation_id
            """)
        try database.query("UPDATE batches SET next_start_at = now() WHERE id = \(batch)")
    }

    @Test func aBatchStartsAtMostMaxInFlightHaltsPastMaxFailuresAndSkipsTheRest() throws {
        let batch = try newBatch(vps: [1, 2, 3, 4, 5, 6], maxInFlight: 2, maxFailures: 1)
        #expect(try store.advanceBatch(owner: "i1", leaseSeconds: 30) == batch)
        #expect(try childStates(batch) == ["started", "started", "pending", "pending", "pending", "pending"])
        // Children are approved operations with keys of their own space (a space no client key
        // holds: `batch <id> vps <vps>`), and their request kept.
        let keys = try database.query("""
            SELECT o.idempotency_key, o.state, r.path FROM batch_children c JOIN operations o ON o.id = c.operation_id
            JOIN operation_requests r ON r.operation_id = o.id WHERE c.batch_id = \(batch) ORDER BY c.position
            """).map { try ($0.decode(String.self, "idempotency_key"), $0.decode(String.self, "state"), $0.decode(String.self, "path")) }
        #expect(keys.map(\.1) == ["approved", "approved"])
        #expect(keys.map(\.0) == ["batch \(batch) vps 1", "batch \(batch) vps 2"])
        #expect(keys.map(\.2) == ["/api/vps/v1/virtual-machines/1/restart", "/api/vps/v1/virtual-machines/2/restart"])
        // Nothing more starts while two run.
        try database.query("UPDATE batches SET next_start_at = now() WHERE id = \(batch)")
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        #expect(try childStates(batch).filter { $0 == "started" }.count == 2)
        // One failure is tolerated; the next child starts.
        try end(batch, position: 1, as: "failed", reason: "action_error")
        _ = try store.advanceBatch(owner: "i2", leaseSeconds: 30)
        #expect(try childStates(batch) == ["failed", "started", "started", "pending", "pending", "pending"])
        // A second failure halts it: the rest is skipped, nothing more starts; the third child,
        // already sent, is followed to its end.
        try database.query("""
            UPDATE operations o SET state = 'running', dispatched_at = now() FROM batch_children c
            WHERE c.operation_id = o.id AND c.batch_id = \(batch) AND c.position = 3
            """)
        try end(batch, position: 2, as: "failed", reason: "action_error")
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        #expect(try childStates(batch) == ["failed", "failed", "started", "skipped", "skipped", "skipped"])
        #expect(try database.query("SELECT state FROM batches WHERE id = \(batch)").first?.decode(String.self, "state") == "halted")
        // The child still running is followed to its end.
        try end(batch, position: 3, as: "succeeded")
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        #expect(try childStates(batch) == ["failed", "failed", "succeeded", "skipped", "skipped", "skipped"])
        #expect(try database.query("SELECT completed_at IS NOT NULL AS done FROM batches WHERE id = \(batch)").first?.decode(Bool.self, "done") == true)
    }

    @Test func aHaltedBatchCancelsTheChildrenStillWaitingForDispatch() throws {
        let batch = try newBatch(vps: [11, 12, 13], maxInFlight: 2, maxFailures: 0)
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        try end(batch, position: 1, as: "failed", reason: "action_error")
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        // The second child was approved, not yet sent: it is cancelled, never to be sent.
        #expect(try childStates(batch) == ["failed", "cancelled", "skipped"])
        let waiting = try database.query("""
            SELECT count(*) AS n FROM batch_children c JOIN operations o ON o.id = c.operation_id
            WHERE c.batch_id = \(batch) AND o.state = 'approved'
            """).first?.decode(Int.self, "n")
        #expect(waiting == 0)
        #expect(try store.claimApproved(limit: 10, busyBoundSeconds: 3600).isEmpty)
    }

    @Test func aChildThatNeverReachedHostingerStartsAgainWithANewKey() throws {
        let batch = try newBatch(vps: [7], maxInFlight: 1, maxFailures: 0)
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        try end(batch, position: 1, as: "failed", reason: "not_applied")
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        #expect(try childStates(batch) == ["started"])
        let keys = try database.query("SELECT idempotency_key FROM operations WHERE command = 'vps.restart' AND vps_id = 7 ORDER BY created_at")
            .map { try $0.decode(String.self, "idempotency_key") }
        #expect(keys == ["batch \(batch) vps 7", "batch \(batch) vps 7 attempt 1"])
        try end(batch, position: 1, as: "succeeded")
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        #expect(try database.query("SELECT state FROM batches WHERE id = \(batch)").first?.decode(String.self, "state") == "succeeded")
    }

    /// The retry rule is Swift's (DispatchCheck), passed to advance_batch: a child that never
    /// reaches Hostinger gets maximumBatchAttempts attempts in all, and fails after the last.
    @Test func aChildGetsTheAttemptsDispatchCheckDeclaresAndNoMore() throws {
        let batch = try newBatch(vps: [17], maxInFlight: 1, maxFailures: 5)
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        for reason in DispatchCheck.batchRetryReasons + ["not_sent", "not_sent", "not_sent"] {
            try end(batch, position: 1, as: "failed", reason: reason)
            _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        }
        let attempts = try database.query("SELECT count(*) AS n FROM operations WHERE command = 'vps.restart' AND vps_id = 17")
            .first?.decode(Int.self, "n")
        #expect(attempts == DispatchCheck.maximumBatchAttempts)
        #expect(try childStates(batch) == ["failed"])
    }

    /// advance_batch holds no retry rule of its own: the bound and the reasons are the caller's.
    @Test func theRetryBoundAndReasonsAreTheCallersArguments() throws {
        let advance: PostgresQuery = "SELECT advance_batch('i1', interval '30 seconds', 2, ARRAY['not_sent']) AS id"
        let twice = try newBatch(vps: [19], maxInFlight: 1, maxFailures: 5)
        _ = try database.query(advance)
        try end(twice, position: 1, as: "failed", reason: "not_sent")
        _ = try database.query(advance)
        #expect(try childStates(twice) == ["started"])
        try end(twice, position: 1, as: "failed", reason: "not_sent")
        _ = try database.query(advance)
        #expect(try childStates(twice) == ["failed"])
        let other = try newBatch(vps: [20], maxInFlight: 1, maxFailures: 5)
        _ = try database.query(advance)
        try end(other, position: 1, as: "failed", reason: "not_applied")
        _ = try database.query(advance)
        #expect(try childStates(other) == ["failed"])
    }

    /// The previous release's two-argument call (Database/compatibility.sql) keeps its rule.
    @Test func thePreviousReleasesCallOfAdvanceBatchStillWorks() throws {
        let batch = try newBatch(vps: [18], maxInFlight: 1, maxFailures: 0)
        let advanced = try database.query("SELECT advance_batch('i1', interval '30 seconds') AS id").first?.decode(Int?.self, "id")
        #expect(advanced == batch)
        try end(batch, position: 1, as: "failed", reason: "not_sent")
        _ = try database.query("SELECT advance_batch('i1', interval '30 seconds') AS id")
        #expect(try childStates(batch) == ["started"])
    }

    @Test func aRevokedGrantFailsTheChildUnstarted() throws {
        let batch = try newBatch(vps: [8, 9], maxInFlight: 2, maxFailures: 5)
        try database.query("DELETE FROM grants WHERE principal = 'fleet'")
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        #expect(try childStates(batch) == ["failed", "failed"])
        #expect(try database.query("SELECT count(*) AS n FROM operations WHERE vps_id IN (8, 9)").first?.decode(Int.self, "n") == 0)
    }

    @Test func theKeyReplaysTheBatchAndTwoAdvancesNeverStartAChildTwice() throws {
        let key = UUIDv4.generate()
        let batch = try newBatch(vps: [10, 11], maxInFlight: 2, maxFailures: 0, key: key)
        let request = try BatchRequest.parse(.object([("command", .string("vps.restart")), ("vps", .array([.number("10"), .number("11")]))])).get()
        let audit = AuditEntry(outcome: .received, identity: RequestIdentity(correlationID: "c", principal: "fleet", method: "POST", path: "/v1/batches"))
        guard case .replay(let answer) = try store.createBatch(NewBatch(principal: "fleet", key: key, fingerprints: ["fp"], request: request,
                                                                         shown: request.shown(targets: [10, 11]), children: [], audit: audit))
        else { Issue.record("not replayed"); return }
        #expect(try JSONValue.parse(answer.body)["id"]?.intValue == batch)
        #expect(try store.createBatch(NewBatch(principal: "fleet", key: key, fingerprints: ["other"], request: request,
                                               shown: request.shown(targets: [10]), children: [], audit: audit)) == .reused)
        _ = try store.advanceBatch(owner: "i1", leaseSeconds: 30)
        try database.query("UPDATE batches SET next_start_at = now() WHERE id = \(batch)")
        _ = try store.advanceBatch(owner: "i2", leaseSeconds: 30)
        #expect(try database.query("SELECT count(*) AS n FROM operations WHERE vps_id IN (10, 11)").first?.decode(Int.self, "n") == 2)
    }
}
