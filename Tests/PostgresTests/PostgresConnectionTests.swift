import Postgres
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct PostgresConnectionTests {
    @Test(arguments: ["plain", "'; DROP TABLE schema_migrations; --", "$1", "quote ' and \" and \\", "é ✓ 🚀", ""])
    func interpolatedValuesAreBoundNotSpliced(_ value: String) throws {
        let database = PostgresConnection(url: try TestDatabase.url())
        let rows = try database.query("SELECT \(value)::text AS echoed, \(42) + 1 AS sum")
        #expect(try rows.first?.decode(String.self, "echoed") == value)
        #expect(try rows.first?.decode(Int.self, "sum") == 43)
    }

    @Test func nullBindsAndDecodesAsNil() throws {
        let database = PostgresConnection(url: try TestDatabase.url())
        let missing: String? = nil
        let row = try #require(try database.query("SELECT \(missing)::text AS value").first)
        #expect(try row.decode(String?.self, "value") == nil)
        #expect(throws: PostgresError.self) { try row.decode(String.self, "value") }
    }

    @Test func decodingErrorsNameTheColumn() throws {
        let database = PostgresConnection(url: try TestDatabase.url())
        let row = try #require(try database.query("SELECT 'abc'::text AS version").first)
        do {
            _ = try row.decode(Int.self, "version")
            Issue.record("expected a decoding error")
        } catch {
            #expect(error.code == .decoding)
            #expect(error.message.contains("version"))
        }
    }

    @Test func transactionsCommitOrRollBack() throws {
        let database = PostgresConnection(url: try TestDatabase.url())
        let table = "t_\(UInt32.random(in: 0...UInt32.max))"
        try database.execute(script: "CREATE TABLE \(table) (id int PRIMARY KEY)")
        defer { try? database.execute(script: "DROP TABLE \(table)") }
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try database.transaction { database in
                try database.query(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES ($1)", binds: ["1"]))
                throw Abort()
            }
        }
        _ = try database.transaction { database in
            try database.query(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES ($1)", binds: ["2"]))
        }
        let rows = try database.query(PostgresQuery(unsafeSQL: "SELECT id FROM \(table)"))
        #expect(try rows.map { try $0.decode(Int.self, "id") } == [2])
    }

    @Test func uniqueViolationsCarryTheirSQLState() throws {
        let database = PostgresConnection(url: try TestDatabase.url())
        let table = "t_\(UInt32.random(in: 0...UInt32.max))"
        try database.execute(script: "CREATE TEMP TABLE \(table) (id int PRIMARY KEY); INSERT INTO \(table) VALUES (1)")
        do {
            try database.query(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES (1)"))
            Issue.record("expected a unique violation")
        } catch {
            #expect(error.sqlState == .uniqueViolation)
            #expect(!error.isUnavailable)
        }
    }

    @Test func anUnreachableServerIsUnavailable() {
        let database = PostgresConnection(url: "postgresql://vpsgate@127.0.0.1:1/vpsgate?connect_timeout=2")
        do {
            try database.query("SELECT 1")
            Issue.record("expected a connection failure")
        } catch {
            #expect(error.code == .connectionFailed)
            #expect(error.isUnavailable)
        }
    }

    @Test func aBrokenConnectionIsReopenedAndStatementsReprepared() throws {
        let database = PostgresConnection(url: try TestDatabase.url())
        let admin = PostgresConnection(url: try TestDatabase.adminURL())
        let query: PostgresQuery = "SELECT pg_backend_pid() AS pid"
        let firstPID = try #require(try database.query(query.preparedOnce()).first).decode(Int.self, "pid")

        // The server side of the connection goes away, as in a PostgreSQL restart. Once the
        // server's notice has arrived, the next call sees the dead connection before sending
        // anything, reconnects and prepares the statement again on the new session.
        try admin.query("SELECT pg_terminate_backend(\(firstPID))")
        usleep(300_000)
        let secondPID = try #require(try database.query(query.preparedOnce()).first).decode(Int.self, "pid")
        #expect(secondPID != firstPID)

        // A statement safe to repeat can ask for one transparent retry on a stale connection.
        try admin.query("SELECT pg_terminate_backend(\(secondPID))")
        let thirdPID = try #require(try database.query(query.preparedOnce(), retryOnStaleConnection: true).first).decode(Int.self, "pid")
        #expect(thirdPID != secondPID)
    }

    @Test func invalidConnectionStringsAreExplained() {
        #expect(PostgresConnection.validate(url: "postgresql://u@h:5432/db") == nil)
        #expect(PostgresConnection.validate(url: "postgresql://%zz@h/db") != nil)
        #expect(PostgresConnection.validate(url: "postgresql://u@[::1/db") != nil)
        #expect(PostgresConnection.validate(url: "postgresql://u@h/db?nosuchoption=1") != nil)
    }

    @Test func behindATransactionPoolerNoStatementIsNamed() throws {
        // A named statement exists in one server session only; a transaction-mode pooler
        // runs the next call on any session, so a pooled connection must not create one.
        let query: PostgresQuery = "SELECT count(*) AS named FROM pg_prepared_statements"
        let direct = PostgresConnection(url: try TestDatabase.url())
        _ = try direct.query(query.preparedOnce())
        #expect(try #require(try direct.query(query.preparedOnce()).first).decode(Int.self, "named") == 1)

        let pooled = PostgresConnection(url: try TestDatabase.url(), pooled: true)
        _ = try pooled.query(query.preparedOnce())
        #expect(try #require(try pooled.query(query.preparedOnce()).first).decode(Int.self, "named") == 0)
        // Transactions still work: BEGIN and COMMIT pin one server session for their span.
        let sumQuery: PostgresQuery = "SELECT \(1)::int + \(2)::int AS sum"
        let sum = try pooled.transaction { database in
            try #require(try database.query(sumQuery.preparedOnce()).first).decode(Int.self, "sum")
        }
        #expect(sum == 3)
    }

    @Test func aWriteOnAReadOnlyServerIsUnavailableAndDropsTheSession() throws {
        // After a failover or switchover, a session left on a demoted primary (a standby now)
        // gets 25006 on its next write: 503 for the request, and a new connection (which
        // `target_session_attrs=read-write` sends to the new primary) for the next one.
        let database = PostgresConnection(url: try TestDatabase.url())
        let firstPID = try #require(try database.query("SELECT pg_backend_pid() AS pid").first).decode(Int.self, "pid")
        do {
            try database.transaction { database in
                try database.query("SET TRANSACTION READ ONLY")
                try database.query("CREATE TEMP TABLE refused (id int)")
            }
            Issue.record("expected a read-only refusal")
        } catch let error as PostgresError {
            #expect(error.sqlState == .readOnlySQLTransaction)
            #expect(error.isUnavailable)
        }
        let secondPID = try #require(try database.query("SELECT pg_backend_pid() AS pid").first).decode(Int.self, "pid")
        #expect(secondPID != firstPID)
    }
}
