import Postgres
import Testing
import VpsgateCore
import VpsgateStore

/// The PostgreSQL that `scripts/test` starts for these tests (see scripts/vpsgate_stack.py with-database).
enum TestDatabase {
    static func url() throws -> String {
        try #require(
            ProcessInfoLite.environment("VPSGATE_TEST_DATABASE_URL"),
            "VPSGATE_TEST_DATABASE_URL is not set: run these tests with scripts/test, which starts PostgreSQL"
        )
    }

    static func adminURL() throws -> String {
        try #require(
            ProcessInfoLite.environment("VPSGATE_TEST_ADMIN_DATABASE_URL"),
            "VPSGATE_TEST_ADMIN_DATABASE_URL is not set: run these tests with scripts/test"
        )
    }

    /// The repository's directory.
    static var repository: String {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    /// The repository's `Database/` files, in their order.
    static func objects() throws -> [SchemaObject] {
        try Migrator.loadObjects(directory: repository + "/Database")
    }

    /// A fresh database migrated with the repository's migrations and `Database/` files.
    static func makeMigrated() throws -> (url: String, migrations: [Migration]) {
        let url = try makeFresh()
        let migrations = try Migrator.load(directory: repository + "/Migrations")
        _ = try Migrator(migrations: migrations, objects: objects()).upgrade(on: PostgresConnection(url: url))
        return (url, migrations)
    }

    /// A fresh, empty database owned by the test role; its URL.
    static func makeFresh() throws -> String {
        let admin = PostgresConnection(url: try adminURL())
        let name = "vpsgate_test_\(UInt32.random(in: 0...UInt32.max))"
        try admin.execute(script: "CREATE DATABASE \(name) OWNER vpsgate")
        let base = try url()
        return String(base[..<base.lastIndex(of: "/")!]) + "/" + name
    }
}

#if canImport(Glibc)
import Glibc
#endif

enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
