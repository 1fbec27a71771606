import ArgumentParser
import FastCGI
import Foundation
import HTTPClient
import Hostinger
import Logging
import Platform
import Postgres
import VpsgateCore
import VpsgateService
import VpsgateStore

#if canImport(Glibc)
import Glibc
#endif

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run from several instances at once)."
    )

    func run() throws {
        let (configuration, logger) = try loadConfiguration()
        // The migrator holds a session advisory lock across statements, which a
        // transaction-mode pooler would hand to other sessions: migrations run direct.
        if configuration.databasePoolMode == .transaction && configuration.migrationDatabaseURL == configuration.databaseURL {
            throw ValidationError("configuration: VPSGATE_DATABASE_POOL_MODE=transaction: set VPSGATE_MIGRATION_DATABASE_URL to a direct connection to PostgreSQL (migrations hold a session lock a transaction-mode pooler cannot keep)")
        }
        let migrator = Migrator(migrations: try loadMigrations(configuration))
        let database = PostgresConnection(url: configuration.migrationDatabaseURL, applicationName: "vpsgate migrate")
        do {
            let applied = try migrator.migrate(on: database)
            if applied.isEmpty {
                print("schema is current (\(migrator.migrations.count) migrations)")
            } else {
                for migration in applied { print("applied \(migration.fileName)") }
            }
        } catch let error as MigrationError {
            logger.error("migration refused", metadata: ["reason": "\(error.message)"])
            throw ValidationError(error.message)
        } catch let error as PostgresError {
            logger.error("migration failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
