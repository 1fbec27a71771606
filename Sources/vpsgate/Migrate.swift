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
        abstract: "Apply pending database migrations, then the changed functions, triggers and views (safe to run from several instances at once)."
    )

    func run() throws {
        let (configuration, logger) = try loadConfiguration()
        // The migrator holds a session advisory lock across statements, which a
        // transaction-mode pooler would hand to other sessions: migrations run direct.
        if configuration.databasePoolMode == .transaction && configuration.migrationDatabaseURL == configuration.databaseURL {
            throw ValidationError("configuration: VPSGATE_DATABASE_POOL_MODE=transaction: set VPSGATE_MIGRATION_DATABASE_URL to a direct connection to PostgreSQL (migrations hold a session lock a transaction-mode pooler cannot keep)")
        }
        let migrator = Migrator(migrations: try loadMigrations(configuration), objects: try loadSchemaObjects(configuration))
        let database = PostgresConnection(url: configuration.migrationDatabaseURL, applicationName: "vpsgate migrate")
        do {
            let report = try migrator.upgrade(on: database)
            if report.isEmpty {
                print("schema is current (\(migrator.migrations.count) migrations, \(migrator.objects.count) Database files)")
                return
            }
            for migration in report.adopted {
                let replaced = migration.replaces.map { " (replaces \($0.lowerBound)-\($0.upperBound), all applied before)" } ?? ""
                print("recorded \(migration.fileName)\(replaced)")
            }
            for migration in report.applied { print("applied \(migration.fileName)") }
            for object in report.changedObjects { print("applied Database/\(object.fileName) (new or changed)") }
            for name in report.removedObjects { print("removed Database/\(name) (no longer shipped)") }
            for signature in report.droppedFunctions { print("dropped function \(signature) (no Database file defines it)") }
            if report.objectsApplied > 0 {
                print("applied all \(report.objectsApplied) Database files again in one transaction (Database/ORDER)")
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
