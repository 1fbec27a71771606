import Foundation
import Postgres
import VpsgateCore

/// Applies the numbered SQL migrations, safely from any number of instances at once.
///
/// Work happens under a PostgreSQL session advisory lock: a second `vpsgate migrate`
/// waits, then finds everything applied and does nothing. Each migration runs in its own
/// transaction together with its `schema_migrations` row, so it is applied exactly once
/// or not at all. Migration files hold no BEGIN/COMMIT of their own.
public struct Migrator {
    /// The advisory lock key: the bytes of "vpsgate" as a number.
    static let lockKey = 0x0076_7073_6761_7465

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations
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
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8) else {
                throw MigrationError("cannot read \(path) as UTF-8 text")
            }
            return try Migration(fileName: name, sql: sql)
        }
    }

    /// Applies what is pending; returns the migrations it applied (empty when current).
    public func migrate(on database: PostgresConnection) throws -> [Migration] {
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
        let pending = try MigrationPlan.pending(available: migrations, applied: Self.applied(on: database))
        for migration in pending {
            try database.transaction { database in
                try database.execute(script: migration.sql)
                try database.query(
                    """
                    INSERT INTO schema_migrations (version, file_name, checksum)
                    VALUES (\(migration.version), \(migration.fileName), \(migration.checksum))
                    """
                )
            }
        }
        return pending
    }

    /// Whether the database holds every migration this build knows (for readiness).
    public func isCurrent(on database: PostgresConnection) throws(PostgresError) -> Bool {
        MigrationPlan.isCurrent(available: migrations, applied: try Self.applied(on: database, retry: true))
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
}
