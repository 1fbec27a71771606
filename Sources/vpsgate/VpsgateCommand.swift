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

@main
struct VpsgateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpsgate",
        abstract: "The control plane for Hostinger VPS mutations.",
        version: BuildInfo.versionLine(program: "vpsgate"),
        subcommands: [Serve.self, Migrate.self, Token.self, Grant.self, Policy.self, Freeze.self, Webhook.self, Budget.self, Audit.self,
                      Key.self, OpenAPI.self]
    )
}

/// The configuration from the environment, without starting logging (admin commands).
func readConfiguration() throws -> Configuration {
    do {
        return try Configuration(environment: Environment.current)
    } catch {
        throw ValidationError("configuration: \(error)")
    }
}

/// Reads the environment once; a bad setting ends the program with a message naming it.
func loadConfiguration() throws -> (Configuration, Logger) {
    let configuration = try readConfiguration()
    if let problem = PostgresConnection.validate(url: configuration.databaseURL) {
        throw ValidationError("configuration: VPSGATE_DATABASE_URL is not a valid PostgreSQL connection URI: \(problem)")
    }
    let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
    let json = configuration.logFormat == "json"
    LoggingSystem.bootstrap { label in
        if json { return JSONLogHandler(label: label, level: level) }
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "vpsgate")
    logger.logLevel = level
    return (configuration, logger)
}

/// The secret keys of `VPSGATE_SECRET_KEY_FILE` (docs/design.md#trust-boundaries).
func loadSecretKeys(_ configuration: Configuration) throws -> SecretKeyRing {
    guard let path = configuration.secretKeyFile else {
        throw ValidationError("configuration: set VPSGATE_SECRET_KEY_FILE to a file made by `vpsgate key generate` (kept outside the database)")
    }
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("configuration: VPSGATE_SECRET_KEY_FILE=\(path) cannot be read")
    }
    switch SecretKeyRing.parse(text) {
    case .success(let keys): return keys
    case .failure(let problem): throw ValidationError("configuration: VPSGATE_SECRET_KEY_FILE=\(path) \(problem.message)")
    }
}

func loadMigrations(_ configuration: Configuration) throws -> [Migration] {
    do {
        return try Migrator.load(directory: configuration.migrationsDirectory)
    } catch let error as MigrationError {
        throw ValidationError(error.message)
    }
}

func loadSchemaObjects(_ configuration: Configuration) throws -> [SchemaObject] {
    do {
        return try Migrator.loadObjects(directory: configuration.databaseDirectory)
    } catch let error as MigrationError {
        throw ValidationError(error.message)
    }
}
