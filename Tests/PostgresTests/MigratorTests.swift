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

    // MARK: - A baseline that replaces migrations

    @Test func aBaselineRunsOnAFreshDatabaseAndIsOnlyRecordedWhereItsVersionsAreApplied() throws {
        let baseline = try Migration(fileName: "0003_baseline.sql", sql: """
            -- replaces: 0001-0002
            CREATE TABLE a (id int); INSERT INTO a VALUES (1); CREATE TABLE b (id int);
            """)
        #expect(baseline.replaces == 1...2)
        let fresh = PostgresConnection(url: try TestDatabase.makeFresh())
        let report = try Migrator(migrations: [baseline]).upgrade(on: fresh)
        #expect(report.applied.map(\.version) == [3] && report.adopted.isEmpty)

        // Where 0001 and 0002 were applied, running it would fail (the tables exist): it is recorded.
        let old = PostgresConnection(url: try TestDatabase.makeFresh())
        _ = try Migrator(migrations: migrations).migrate(on: old)
        let upgraded = try Migrator(migrations: [baseline]).upgrade(on: old)
        #expect(upgraded.applied.isEmpty && upgraded.adopted.map(\.version) == [3])
        #expect(try Migrator(migrations: [baseline]).isCurrent(on: old))
        #expect(try Migrator(migrations: [baseline]).upgrade(on: old).isEmpty)

        // Only some of them: neither run nor recorded, and said so.
        let partial = PostgresConnection(url: try TestDatabase.makeFresh())
        _ = try Migrator(migrations: [migrations[0]]).migrate(on: partial)
        #expect(throws: MigrationError.self) { try Migrator(migrations: [baseline]).upgrade(on: partial) }
    }

    // MARK: - Database/ files

    @Test func databaseFilesApplyWhenOneChangesAndNoFunctionTheyDoNotDefineStays() throws {
        let database = PostgresConnection(url: try TestDatabase.makeFresh())
        let first = [
            SchemaObject(fileName: "functions/twice.sql", sql: """
                CREATE OR REPLACE FUNCTION twice(n int) RETURNS int LANGUAGE sql AS $$ SELECT n * 2 $$;
                CREATE OR REPLACE FUNCTION twice(n int, m int) RETURNS int LANGUAGE sql AS $$ SELECT (n + m) * 2 $$;
                """),
            SchemaObject(fileName: "views/doubled.sql", sql: "CREATE OR REPLACE VIEW doubled AS SELECT twice(id) AS d FROM a;"),
        ]
        let report = try Migrator(migrations: migrations, objects: first).upgrade(on: database)
        #expect(report.applied.count == 2 && report.changedObjects.map(\.fileName) == ["functions/twice.sql", "views/doubled.sql"])
        #expect(try Migrator(migrations: migrations, objects: first).isCurrent(on: database))
        #expect(try Migrator(migrations: migrations, objects: first).upgrade(on: database).isEmpty)

        // One overload goes from the file, another function's file is removed: both are dropped.
        try database.execute(script: "CREATE FUNCTION leftover() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$")
        let second = [
            SchemaObject(fileName: "functions/twice.sql", sql: """
                CREATE OR REPLACE FUNCTION twice(n int) RETURNS int LANGUAGE sql AS $$ SELECT n + n $$;
                """),
            first[1],
        ]
        #expect(try !Migrator(migrations: migrations, objects: second).isCurrent(on: database))
        let changed = try Migrator(migrations: migrations, objects: second).upgrade(on: database)
        #expect(changed.changedObjects.map(\.fileName) == ["functions/twice.sql"] && changed.objectsApplied == 2)
        #expect(changed.droppedFunctions == ["leftover()", "twice(integer,integer)"])
        // The release before still finds its files there (it keeps serving during the rollout).
        #expect(try Migrator(migrations: migrations, objects: first).isCurrent(on: database))
        let live = try database.query("SELECT p.oid::regprocedure::text AS f FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace")
        #expect(try live.map { try $0.decode(String.self, "f") } == ["twice(integer)"])
        let rows = try database.query("SELECT file_name FROM schema_objects WHERE current ORDER BY file_name")
        #expect(try rows.map { try $0.decode(String.self, "file_name") } == ["functions/twice.sql", "views/doubled.sql"])
    }

    @Test func aFailingDatabaseFileLeavesTheFunctionsAsTheyWere() throws {
        let database = PostgresConnection(url: try TestDatabase.makeFresh())
        let good = [SchemaObject(fileName: "functions/one.sql", sql: "CREATE OR REPLACE FUNCTION one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;")]
        _ = try Migrator(migrations: migrations, objects: good).upgrade(on: database)
        let broken = [
            SchemaObject(fileName: "functions/one.sql", sql: "CREATE OR REPLACE FUNCTION one() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;"),
            SchemaObject(fileName: "functions/two.sql", sql: "CREATE OR REPLACE FUNCTION two() RETURNS int LANGUAGE sql AS $$ SELECT no_such() $$;"),
        ]
        #expect(throws: MigrationError.self) { try Migrator(migrations: migrations, objects: broken).upgrade(on: database) }
        let value = try #require(try database.query("SELECT one() AS v").first).decode(Int.self, "v")
        #expect(value == 1)
        #expect(try Migrator(migrations: migrations, objects: good).isCurrent(on: database))
    }

    @Test func databaseOrderListsEveryFileOnce() throws {
        #expect(try SchemaObjectPlan.order("# comment\nb.sql\n\na.sql\n", files: ["a.sql", "b.sql"]) == ["b.sql", "a.sql"])
        #expect(throws: MigrationError.self) { try SchemaObjectPlan.order("a.sql\n", files: ["a.sql", "b.sql"]) }
        #expect(throws: MigrationError.self) { try SchemaObjectPlan.order("a.sql\na.sql\n", files: ["a.sql"]) }
        #expect(throws: MigrationError.self) { try SchemaObjectPlan.order("c.sql\n", files: [] as Set<String>) }
    }

    /// The repository's own files: the functions a migrated database holds are exactly those
    /// its Database/ files define, one definition a name.
    @Test func theRepositorysFunctionsAreExactlyThoseOfItsDatabaseFiles() throws {
        let (url, _) = try TestDatabase.makeMigrated()
        let objects = try TestDatabase.objects()
        var defined: [String: Int] = [:]
        for object in objects {
            for line in object.sql.split(separator: "\n") where line.hasPrefix("CREATE OR REPLACE FUNCTION ") {
                let name = line.dropFirst("CREATE OR REPLACE FUNCTION ".count).prefix { $0 != "(" && $0 != " " }
                defined[String(name), default: 0] += 1
            }
        }
        let rows = try PostgresConnection(url: url).query("""
            SELECT p.proname::text AS name, count(*) AS n FROM pg_proc p
            WHERE p.pronamespace = current_schema()::regnamespace
              AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
            GROUP BY p.proname
            """)
        var live: [String: Int] = [:]
        for row in rows { live[try row.decode(String.self, "name")] = try row.decode(Int.self, "n") }
        #expect(!live.isEmpty && live == defined)
    }
    /// The in-flight states are stated once in SQL, `vpsgate_in_flight_states()`: a Database/
    /// file or a database that says otherwise than this build's `OperationState.inFlight` is
    /// refused by the migrator (the files rolled back) and is not current (readiness).
    @Test func inFlightStatesThatDisagreeWithTheBuildAreRefused() throws {
        let (url, migrations) = try TestDatabase.makeMigrated()
        let database = PostgresConnection(url: url)
        let objects = try TestDatabase.objects()
        let file = "functions/vpsgate_in_flight_states.sql"
        #expect(objects.contains { $0.fileName == file })
        let migrator = Migrator(migrations: migrations, objects: objects)
        #expect(try migrator.isCurrent(on: database))
        #expect(try migrator.upgrade(on: database).isEmpty)
        let edited = objects.map { $0.fileName == file ? SchemaObject(fileName: file, sql: $0.sql.replacing("'dispatched', ", with: "")) : $0 }
        #expect(edited != objects)
        #expect(throws: MigrationError.self) { try Migrator(migrations: migrations, objects: edited).upgrade(on: database) }
        let count = try #require(try database.query("SELECT cardinality(vpsgate_in_flight_states()) AS n").first).decode(Int.self, "n")
        #expect(count == OperationState.inFlight.count, "rolled back")
        #expect(try migrator.isCurrent(on: database))
        try database.execute(script: """
            CREATE OR REPLACE FUNCTION vpsgate_in_flight_states() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
                SELECT ARRAY['accepted', 'running', 'unknown']::text[] $$
            """)
        #expect(try !migrator.isCurrent(on: database))
        #expect(throws: MigrationError.self) { try migrator.upgrade(on: database) }
    }

    /// `state = ANY(vpsgate_in_flight_states())` is folded to the constant array at planning,
    /// so the partial index over the in-flight states (operations_active) still serves it.
    @Test func theInFlightStatesFunctionKeepsThePartialIndexUsable() throws {
        let (url, _) = try TestDatabase.makeMigrated()
        let database = PostgresConnection(url: url)
        let plan = try database.transaction { database in
            try database.execute(script: "SET LOCAL enable_seqscan = off")
            return try database.query("EXPLAIN SELECT id FROM operations WHERE vps_id = 1001 AND state = ANY(vpsgate_in_flight_states())")
                .map { try $0.decode(String.self, "QUERY PLAN") }.joined(separator: "\n")
        }
        #expect(plan.contains("operations_active"), "\(plan)")
    }
}
