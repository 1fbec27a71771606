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

// MARK: - Admin

/// The operator running an admin command, for the audit trail.
func adminActor(_ explicit: String?) -> String {
    if let explicit, !explicit.isEmpty { return explicit }
    for name in ["SUDO_USER", "USER", "LOGNAME"] {
        if let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty { return "cli:" + value }
    }
    return "cli"
}

func adminSession(_ actor: String?) throws -> Admin {
    let configuration = try readConfiguration()
    guard let url = configuration.adminDatabaseURL else {
        throw ValidationError("configuration: set VPSGATE_ADMIN_DATABASE_URL to a connection as the vpsgate_admin role (the only role that may change grants and tokens)")
    }
    if let problem = PostgresConnection.validate(url: url) {
        throw ValidationError("configuration: VPSGATE_ADMIN_DATABASE_URL is not a valid PostgreSQL connection URI: \(problem)")
    }
    return Admin(database: PostgresConnection(url: url, applicationName: "vpsgate admin"), actor: adminActor(actor))
}

/// A serving instance connects as vpsgate_app: refuse a role that could change grants,
/// tokens or the audit trail's protections (a superuser, the schema owner, the admin role).
/// A database that cannot be reached now is no reason not to start (readiness says so).
func refusePrivilegedDatabaseRole(_ configuration: Configuration, logger: Logger) throws {
    let database = PostgresConnection(url: configuration.databaseURL, applicationName: "vpsgate start-up",
                                      pooled: configuration.databasePoolMode == .transaction)
    defer { database.close() }
    do {
        guard let problem = try DatabaseRoleCheck.problem(on: database) else { return }
        logger.critical("refusing to serve", metadata: ["reason": "\(problem)"])
        throw ValidationError("configuration: VPSGATE_DATABASE_URL \(problem); serving instances connect as vpsgate_app")
    } catch let error as PostgresError {
        logger.warning("database role not checked at start-up", metadata: ["error": "\(error)"])
    }
}

func parseExpiry(_ text: String?) throws -> Int? {
    guard let text else { return nil }
    guard let seconds = DurationText.seconds(text) else {
        throw ValidationError("--expires takes a duration such as 90m, 12h, 30d or 2w")
    }
    return seconds
}

func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

struct AdminOptions: ParsableArguments {
    @Option(help: "Who is making the change, for the audit trail (default: cli:$USER).")
    var actor: String?
}
