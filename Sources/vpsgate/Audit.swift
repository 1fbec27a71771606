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

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the audit trail.", subcommands: [Verify.self, Seal.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the seal chain; exit 1 naming the first row that does not match.")
        func run() throws {
            let (configuration, _) = try loadConfiguration()
            let report = try AuditSealer(database: PostgresConnection(url: configuration.databaseURL, applicationName: "vpsgate audit", pooled: configuration.databasePoolMode == .transaction),
                                         keys: try loadSecretKeys(configuration)).verify()
            print("sealed rows: \(report.sealed)")
            print("rows not sealed yet: \(report.unsealed)")
            if let failure = report.failure {
                print("FAILED: \(failure)")
                throw ExitCode(1)
            }
            print("chain intact")
        }
    }

    struct Seal: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal rows older than the horizon now (instances also do it in the background).")
        @Option(help: "Seconds a row must be old to be sealed.") var horizon: Double = 15
        func run() throws {
            let (configuration, _) = try loadConfiguration()
            let sealer = AuditSealer(database: PostgresConnection(url: configuration.databaseURL, applicationName: "vpsgate audit", pooled: configuration.databasePoolMode == .transaction),
                                     keys: try loadSecretKeys(configuration))
            var total = 0
            while case let sealed = try sealer.sealPending(horizonSeconds: horizon), sealed > 0 { total += sealed }
            print("sealed \(total) rows")
        }
    }
}
