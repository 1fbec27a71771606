import Foundation
import Postgres
import VpsgateCore

/// Applies the numbered SQL migrations, then the `Database/` files, safely from any number of
/// instances at once.
///
/// Work happens under a PostgreSQL session advisory lock: a second `vpsgate migrate`
/// waits, then finds everything applied and does nothing. Each migration runs in its own
/// transaction together with its `schema_migrations` row, so it is applied exactly once
/// or not at all. Migration files hold no BEGIN/COMMIT of their own.
///
/// Tables, indexes, grants and data are migrations. Functions, triggers and views are the
/// `Database/` files, one object a file, edited in place. When any of them differs from the
/// version `schema_objects` records as current (a file changed, was added or removed), all
/// of them are applied again in `Database/ORDER`'s order in one transaction, which then
/// drops every function of the schema that no file defined in it (a stale overload, a
/// function whose file is gone), and records each file's checksum. So the functions live in
/// a migrated database are exactly those of the files, and a change never leaves half of
/// them new.
public struct Migrator {
    /// The advisory lock key: the bytes of "vpsgate" as a number.
    static let lockKey = 0x0076_7073_6761_7465

    public let migrations: [Migration]
    public let objects: [SchemaObject]

    public init(migrations: [Migration], objects: [SchemaObject] = []) {
        self.migrations = migrations
        self.objects = objects
    }

    /// What one run did.
    public struct Report: Sendable {
        /// Migrations run, in order.
        public var applied: [Migration] = []
        /// Baselines recorded without running: the database held every version they replace.
        public var adopted: [Migration] = []
        /// The `Database/` files new or changed since the last run (empty: none applied).
        public var changedObjects: [SchemaObject] = []
        /// How many `Database/` files were applied (all of them, or none).
        public var objectsApplied = 0
        /// Recorded files no longer there.
        public var removedObjects: [String] = []
        /// Functions dropped because no file defines them, as `name(argument types)`.
        public var droppedFunctions: [String] = []

        public var isEmpty: Bool { applied.isEmpty && adopted.isEmpty && objectsApplied == 0 }
    }

    /// Reads every `NNNN_name.sql` file in `directory`.
    public static func load(directory: String) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError("cannot read the migrations directory \(directory) (set VPSGATE_MIGRATIONS_DIR)")
        }
        return try names.filter { $0.hasSuffix(".sql") }.sorted().map { name in
            try Migration(fileName: name, sql: read(directory + "/" + name))
        }
    }

    /// Reads the files `directory/ORDER` lists (every `.sql` file below `directory`), in that order.
    public static func loadObjects(directory: String) throws -> [SchemaObject] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory),
            FileManager.default.fileExists(atPath: directory + "/ORDER")
        else {
            throw MigrationError("cannot read \(directory)/ORDER, the functions, triggers and views (set VPSGATE_DATABASE_DIR)")
        }
        var files = Set<String>()
        while let path = enumerator.nextObject() as? String {
            if path.hasSuffix(".sql") { files.insert(path) }
        }
        let order = try SchemaObjectPlan.order(try read(directory + "/ORDER"), files: files)
        return try order.map { SchemaObject(fileName: $0, sql: try read(directory + "/" + $0)) }
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw MigrationError("cannot read \(path) as UTF-8 text")
        }
        return text
    }

    /// Applies what is pending; returns the migrations it applied (empty when current).
    public func migrate(on database: PostgresConnection) throws -> [Migration] {
        try upgrade(on: database).applied
    }

    /// Applies the pending migrations, then the `Database/` files when any changed.
    public func upgrade(on database: PostgresConnection) throws -> Report {
        try database.query("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? database.query("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try database.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                file_name  text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        try database.query(
            """
            CREATE TABLE IF NOT EXISTS schema_objects (
                file_name  text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                current    boolean NOT NULL DEFAULT true,
                PRIMARY KEY (file_name, checksum)
            )
            """
        )
        var report = Report()
        let applied = try Self.applied(on: database)
        report.adopted = try MigrationPlan.adopted(available: migrations, applied: applied)
        report.applied = try MigrationPlan.pending(available: migrations, applied: applied)
        for migration in report.adopted {
            try Self.record(migration, on: database)
        }
        for migration in report.applied {
            try database.transaction { database in
                try database.execute(script: migration.sql)
                try Self.record(migration, on: database)
            }
        }
        let recorded = try Self.appliedObjects(on: database)
        report.changedObjects = SchemaObjectPlan.changed(available: objects, applied: recorded)
        report.removedObjects = SchemaObjectPlan.removed(available: objects, applied: recorded)
        guard !report.changedObjects.isEmpty || !report.removedObjects.isEmpty else {
            if let mismatch = try rulesMismatch(on: database) { throw MigrationError(mismatch) }
            return report
        }
        report.droppedFunctions = try database.transaction { database in try applyObjects(on: database) }
        report.objectsApplied = objects.count
        return report
    }

    /// Applies every `Database/` file, drops the functions none defined, records the files.
    func applyObjects(on database: PostgresConnection) throws -> [String] {
        for object in objects {
            do {
                try database.execute(script: object.sql)
            } catch {
                throw MigrationError("Database/\(object.fileName): \(error)")
            }
        }
        // Before anything is recorded: a disagreement rolls the files back.
        if let mismatch = try rulesMismatch(on: database) { throw MigrationError(mismatch) }
        // A function none of the files created or replaced in this transaction: its pg_proc
        // row was not written by it. Functions of extensions are not the files' to keep.
        let stale: PostgresQuery = """
            SELECT p.oid::regprocedure::text AS signature
            FROM pg_proc p
            WHERE p.pronamespace = current_schema()::regnamespace
              AND NOT (p.xmin = pg_current_xact_id()::xid)
              AND NOT EXISTS (SELECT FROM pg_depend d
                              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
            ORDER BY 1
            """
        let dropped = try database.query(stale).map { try $0.decode(String.self, "signature") }
        for signature in dropped {
            // The signature comes from the catalog (regprocedure output), quoted as it must be.
            try database.execute(script: "DROP FUNCTION \(signature)")
        }
        // Versions replaced stay recorded (not current): an instance of the release before,
        // whose files they are, still finds its schema there.
        let held = objects.map { $0.fileName + ":" + $0.checksum }
        try database.query(
            "UPDATE schema_objects SET current = false WHERE current AND NOT (file_name || ':' || checksum = ANY(\(SQLText.array(held))::text[]))"
        )
        for object in objects {
            try database.query(
                """
                INSERT INTO schema_objects AS o (file_name, checksum) VALUES (\(object.fileName), \(object.checksum))
                ON CONFLICT (file_name, checksum) DO UPDATE SET current = true,
                    applied_at = CASE WHEN o.current THEN o.applied_at ELSE now() END
                """
            )
        }
        return dropped
    }

    /// The file that states the in-flight states in SQL (`vpsgate_in_flight_states()`).
    static let inFlightStatesFile = "functions/vpsgate_in_flight_states.sql"

    /// Why the database's rules disagree with this build's (nil: they agree): the in-flight
    /// states `vpsgate_in_flight_states()` returns against `OperationState.inFlight`, as sets.
    /// Checked whenever the build ships the file (every real build: `Database/ORDER` must list
    /// every file), so a build and a schema that disagree never run together.
    func rulesMismatch(on database: PostgresConnection, retry: Bool = false) throws(PostgresError) -> String? {
        guard objects.contains(where: { $0.fileName == Self.inFlightStatesFile }) else { return nil }
        let query: PostgresQuery = "SELECT array_to_string(vpsgate_in_flight_states(), ',') AS states"
        let text = try database.query(query.preparedOnce(), retryOnStaleConnection: retry).first?.decode(String.self, "states") ?? ""
        let sql = Set(text.split(separator: ",").map(String.init))
        let swift = Set(OperationState.inFlight.map(\.rawValue))
        guard sql != swift else { return nil }
        return "vpsgate_in_flight_states() returns {\(sql.sorted().joined(separator: ","))} but this build's OperationState.inFlight is "
            + "{\(swift.sorted().joined(separator: ","))}: the in-flight states must agree (Database/\(Self.inFlightStatesFile))"
    }

    static func record(_ migration: Migration, on database: PostgresConnection) throws(PostgresError) {
        try database.query(
            """
            INSERT INTO schema_migrations (version, file_name, checksum)
            VALUES (\(migration.version), \(migration.fileName), \(migration.checksum))
            """
        )
    }

    /// Whether the database holds every migration and `Database/` file this build knows, as
    /// they are (for readiness).
    public func isCurrent(on database: PostgresConnection) throws(PostgresError) -> Bool {
        guard MigrationPlan.isCurrent(available: migrations, applied: try Self.applied(on: database, retry: true)) else { return false }
        guard SchemaObjectPlan.isCurrent(available: objects, applied: try Self.appliedObjects(on: database, retry: true)) else { return false }
        return try rulesMismatch(on: database, retry: true) == nil
    }

    static func applied(on database: PostgresConnection, retry: Bool = false) throws(PostgresError) -> [AppliedMigration] {
        let query: PostgresQuery = "SELECT version, file_name, checksum FROM schema_migrations"
        let rows = try database.query(query.preparedOnce(), retryOnStaleConnection: retry)
        var applied: [AppliedMigration] = []
        for row in rows {
            applied.append(
                AppliedMigration(
                    version: try row.decode(Int.self, "version"),
                    fileName: try row.decode(String.self, "file_name"),
                    checksum: try row.decode(String.self, "checksum")
                )
            )
        }
        return applied
    }

    /// The recorded `Database/` files; none where `schema_objects` does not exist yet (a
    /// database migrated by a release before it).
    static func appliedObjects(on database: PostgresConnection, retry: Bool = false) throws(PostgresError) -> [AppliedSchemaObject] {
        let exists: PostgresQuery = "SELECT to_regclass('schema_objects') IS NOT NULL AS present"
        guard let row = try database.query(exists.preparedOnce(), retryOnStaleConnection: retry).first,
            try row.decode(Bool.self, "present")
        else { return [] }
        let select: PostgresQuery = "SELECT file_name, checksum, current FROM schema_objects"
        var applied: [AppliedSchemaObject] = []
        for row in try database.query(select.preparedOnce(), retryOnStaleConnection: retry) {
            applied.append(AppliedSchemaObject(fileName: try row.decode(String.self, "file_name"),
                                               checksum: try row.decode(String.self, "checksum"), current: try row.decode(Bool.self, "current")))
        }
        return applied
    }
}
