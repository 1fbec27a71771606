import Crypto

/// One numbered SQL migration: `Migrations/0017_baseline.sql`.
public struct Migration: Sendable, Equatable {
    /// The number before the first underscore; migrations apply in this order.
    public var version: Int
    /// The file name, e.g. `0001_create_roles.sql`.
    public var fileName: String
    /// The SQL text, applied in one transaction.
    public var sql: String
    /// SHA-256 of the SQL text: an applied migration must never change.
    public var checksum: String
    /// The versions this migration stands for, from a first line `-- replaces: 0001-0016`: a
    /// baseline that squashes them. A database holding all of them has its content already,
    /// so it is recorded as applied there without running.
    public var replaces: ClosedRange<Int>?

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
        let firstLine = sql.prefix { $0 != "\n" }
        if firstLine.hasPrefix("-- replaces:") {
            let bounds = firstLine.dropFirst("-- replaces:".count).split(separator: "-").map { Int(trimmed($0)) }
            guard bounds.count == 2, let low = bounds[0], let high = bounds[1], 0 < low, low <= high, high < version else {
                throw MigrationError("\(fileName): the first line reads `-- replaces: NNNN-NNNN`, versions before its own")
            }
            replaces = low...high
        }
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
                if try !isReplaced(migration, applied: appliedByVersion) { pending.append(migration) }
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

    /// The baselines of `available` not recorded in `applied` whose every replaced version
    /// is: their content is there already, they are only to be recorded.
    public static func adopted(available: [Migration], applied: [AppliedMigration]) throws(MigrationError) -> [Migration] {
        let appliedByVersion = Dictionary(applied.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
        var adopted: [Migration] = []
        for migration in available.sorted(by: { $0.version < $1.version }) where appliedByVersion[migration.version] == nil {
            if try isReplaced(migration, applied: appliedByVersion) { adopted.append(migration) }
        }
        return adopted
    }

    /// Whether a database holding `applied` has every migration this build knows.
    public static func isCurrent(available: [Migration], applied: [AppliedMigration]) -> Bool {
        let versions = Set(applied.map(\.version))
        return available.allSatisfy { versions.contains($0.version) }
    }

    /// Whether the database holds all the versions `migration` replaces. Throws when it holds
    /// only some: a database migrated part of the way by a release before the baseline is
    /// finished by that release's `vpsgate migrate` first.
    static func isReplaced(_ migration: Migration, applied: [Int: AppliedMigration]) throws(MigrationError) -> Bool {
        guard let replaces = migration.replaces else { return false }
        let held = replaces.filter { applied[$0] != nil }
        if held.isEmpty { return false }
        if held.count == replaces.count { return true }
        throw MigrationError(
            "\(migration.fileName) replaces migrations \(replaces.lowerBound) to \(replaces.upperBound); this database holds only "
                + "\(held.count) of them: run `vpsgate migrate` of the release before it first"
        )
    }
}

/// One file of `Database/`: the current definition of one function, trigger or view, with its
/// grants. Unlike a migration it is edited in place; the migrator applies it again when its
/// checksum changes.
public struct SchemaObject: Sendable, Equatable {
    /// The path below `Database/`, e.g. `functions/begin_command.sql`, as `Database/ORDER` lists it.
    public var fileName: String
    public var sql: String
    public var checksum: String

    public init(fileName: String, sql: String) {
        self.fileName = fileName
        self.sql = sql
        self.checksum = Hex.encode(Array(SHA256.hash(data: Array(sql.utf8))))
    }

    /// The functions the file defines (`CREATE OR REPLACE FUNCTION name(`), lower-cased.
    public var functionNames: Set<String> {
        var names = Set<String>()
        for line in sql.split(separator: "\n") where line.hasPrefix("CREATE OR REPLACE FUNCTION ") {
            let rest = line.dropFirst("CREATE OR REPLACE FUNCTION ".count)
            names.insert(String(rest.prefix { $0 != "(" && $0 != " " }).lowercased())
        }
        return names
    }
}

/// A `Database/` file record found in `schema_objects`: a version of a file applied once.
public struct AppliedSchemaObject: Sendable, Equatable {
    public var fileName: String
    public var checksum: String
    /// Whether it is the version the database holds now (the others were replaced since).
    public var current: Bool

    public init(fileName: String, checksum: String, current: Bool = true) {
        self.fileName = fileName
        self.checksum = checksum
        self.current = current
    }
}

/// Decides whether the `Database/` files are to be applied again. Pure.
public enum SchemaObjectPlan {
    /// The files of `available` that differ from the version the database holds (new or
    /// changed), in order: `vpsgate migrate` applies the files when there are any.
    public static func changed(available: [SchemaObject], applied: [AppliedSchemaObject]) -> [SchemaObject] {
        let held = Dictionary(applied.filter(\.current).map { ($0.fileName, $0.checksum) }, uniquingKeysWith: { first, _ in first })
        return available.filter { held[$0.fileName] != $0.checksum }
    }

    /// The files the database holds that are no longer among `available`.
    public static func removed(available: [SchemaObject], applied: [AppliedSchemaObject]) -> [String] {
        let names = Set(available.map(\.fileName))
        return applied.filter(\.current).map(\.fileName).filter { !names.contains($0) }.sorted()
    }

    /// Whether a database holding `applied` can serve a build with `available` (for readiness):
    /// every one of its files was applied as it is, now or before a later release replaced it.
    /// So an instance of the previous release keeps serving once the next one migrated (its
    /// signatures are kept by `Database/compatibility.sql`), while one whose files the database
    /// never held refuses, as it does for a migration it lacks.
    public static func isCurrent(available: [SchemaObject], applied: [AppliedSchemaObject]) -> Bool {
        let seen = Set(applied.map { $0.fileName + "\u{0}" + $0.checksum })
        return available.allSatisfy { seen.contains($0.fileName + "\u{0}" + $0.checksum) }
    }

    /// The files `Database/ORDER` lists, in its order: one relative path a line, `#` comments
    /// and blank lines skipped. Throws when a listed file is not among `files`, a file is listed
    /// twice, or one of `files` is not listed (so none is skipped by mistake).
    public static func order(_ text: String, files: Set<String>) throws(MigrationError) -> [String] {
        var listed: [String] = []
        for raw in text.split(separator: "\n") {
            let line = trimmed(raw)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard files.contains(line) else { throw MigrationError("Database/ORDER lists \(line), which is not there") }
            guard !listed.contains(line) else { throw MigrationError("Database/ORDER lists \(line) twice") }
            listed.append(line)
        }
        if let missing = files.subtracting(listed).sorted().first {
            throw MigrationError("Database/\(missing) is not listed in Database/ORDER")
        }
        return listed
    }
}

/// `text` without the spaces and tabs at either end.
func trimmed(_ text: Substring) -> String {
    String(text.drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
}
