import Platform
import Postgres
import Synchronization
import Testing
import VpsgateCore
import VpsgateStore

@Suite struct MigratorTests {
    let migrations = [
        try! Migration(fileName: "0001_a.sql", sql: "CREATE TABLE a (id int); INSERT INTO a VALUES (1);"),
        try! Migration(fileName: "0002_b.sql", sql: "CREATE TABLE b (id int);"),
    ]

    @Test func appliesPendingMigrationsOnceAndReportsCurrent() throws {
        let database = PostgresConnection(url: try TestDatabase.makeFresh())
        let migrator = Migrator(migrations: migrations)
        #expect(try migrator.migrate(on: database).map(\.version) == [1, 2])
        #expect(try migrator.migrate(on: database).isEmpty)
        #expect(try migrator.isCurrent(on: database))
        let count = try #require(try database.query("SELECT count(*) AS n FROM a").first).decode(Int.self, "n")
        #expect(count == 1)

        let newer = Migrator(migrations: migrations + [try Migration(fileName: "0003_c.sql", sql: "CREATE TABLE c ();")])
        #expect(try !newer.isCurrent(on: database))
    }

    @Test func aFailingMigrationLeavesNothingBehind() throws {
        let database = PostgresConnection(url: try TestDatabase.makeFresh())
        let broken = try Migration(fileName: "0003_broken.sql", sql: "CREATE TABLE c (id int); SELECT no_such_function();")
        #expect(throws: PostgresError.self) { try Migrator(migrations: migrations + [broken]).migrate(on: database) }
        let rows = try database.query("SELECT version FROM schema_migrations ORDER BY version")
        #expect(try rows.map { try $0.decode(Int.self, "version") } == [1, 2])
        let table = try #require(try database.query("SELECT to_regclass('c')::text AS name").first)
        #expect(try table.decode(String?.self, "name") == nil)
    }

    @Test func anEditedAppliedMigrationIsRefused() throws {
        let database = PostgresConnection(url: try TestDatabase.makeFresh())
        _ = try Migrator(migrations: migrations).migrate(on: database)
        let edited = [migrations[0], try Migration(fileName: "0002_b.sql", sql: "CREATE TABLE b (id bigint);")]
        #expect(throws: MigrationError.self) { try Migrator(migrations: edited).migrate(on: database) }
    }

    @Test func concurrentMigratorsApplyEachMigrationExactlyOnce() throws {
        let url = try TestDatabase.makeFresh()
        let migrations = self.migrations
        let applied = Mutex<[[Int]]>([])
        let failures = Mutex<[String]>([])
        let threads = try (0..<4).map { index in
            try OSThread.spawn(name: "migrator-\(index)") {
                do {
                    let versions = try Migrator(migrations: migrations).migrate(on: PostgresConnection(url: url)).map(\.version)
                    applied.withLock { $0.append(versions) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(applied.withLock { $0.flatMap { $0 }.sorted() } == [1, 2])
        let database = PostgresConnection(url: url)
        let count = try #require(try database.query("SELECT count(*) AS n FROM schema_migrations").first).decode(Int.self, "n")
        #expect(count == 2)
    }
}
