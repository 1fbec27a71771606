import Crypto

/// One numbered SQL migration: `Migrations/0001_create_roles.sql`.
public struct Migration: Sendable, Equatable {
    /// The number before the first underscore; migrations apply in this order.
    public var version: Int
    /// The file name, e.g. `0001_create_roles.sql`.
    public var fileName: String
    /// The SQL text, applied in one transaction.
    public var sql: String
    /// SHA-256 of the SQL text: an applied migration must never change.
    public var checksum: String

    /// Parses a migration file; throws when its name is not `NNNN_name.sql`.
    public init(fileName: String, sql: String) throws(MigrationError) {
        guard fileName.hasSuffix(".sql"), let underscore = fileName.firstIndex(of: "_"),
            let version = Int(fileName[..<underscore]), version > 0,
            fileName[..<underscore].count == 4
        else {
            throw MigrationError("\(fileName): migration files are named NNNN_description.sql (four digits, from 0001)")
        }
        self.version = version
        self.fileName = fileName
        self.sql = sql
        self.checksum = Hex.encode(Array(SHA256.hash(data: Array(sql.utf8))))
    }
}

/// A migration record found in `schema_migrations`.
public struct AppliedMigration: Sendable, Equatable {
    public var version: Int
    public var fileName: String
    public var checksum: String

    public init(version: Int, fileName: String, checksum: String) {
        self.version = version
        self.fileName = fileName
        self.checksum = checksum
    }
}

/// Why migrating cannot go on, in words an operator can act on.
public struct MigrationError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Decides which migrations to apply. Pure: no database, no files.
public enum MigrationPlan {
    /// The migrations of `available` not yet in `applied`, in version order.
    ///
    /// Throws when two files share a version, or when an applied migration's file changed
    /// since it was applied (its checksum differs): released migrations are never edited;
    /// a change goes into a new migration.
    public static func pending(available: [Migration], applied: [AppliedMigration]) throws(MigrationError) -> [Migration] {
        let sorted = available.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw MigrationError("\(previous.fileName) and \(next.fileName) have the same number \(next.version)")
        }
        let appliedByVersion = Dictionary(applied.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
        var pending: [Migration] = []
        for migration in sorted {
            guard let record = appliedByVersion[migration.version] else {
                pending.append(migration)
                continue
            }
            guard record.checksum == migration.checksum else {
                throw MigrationError(
                    "\(migration.fileName) was edited after it was applied as \(record.fileName) "
                        + "(checksum \(record.checksum.prefix(12))… in the database, \(migration.checksum.prefix(12))… on disk); "
                        + "restore the file and put the change in a new migration"
                )
            }
        }
        return pending
    }

    /// Whether a database holding `applied` has every migration this build knows.
    public static func isCurrent(available: [Migration], applied: [AppliedMigration]) -> Bool {
        let versions = Set(applied.map(\.version))
        return available.allSatisfy { versions.contains($0.version) }
    }
}
