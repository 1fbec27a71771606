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

struct Policy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Approval policies: how many other principals must approve a command (the two-person rule).",
        discussion: "The most specific row applies: a command's own over its permission's, a VPS's own over every VPS's ('*'). "
            + "Shipped default: every vps:destroy command needs 1 approval.",
        subcommands: [Set.self, Remove.self, List.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the approvals a permission or a command needs.")
        @Option(help: "A permission (vps:destroy) or a command name (vps.recreate).") var subject: String
        @Option(help: "A VPS id, or '*' for every VPS.") var vps: String = "*"
        @Option(help: "Approvals required, 0 to 5 (0: none).") var approvals: Int
        @Option(help: "How long a request may wait for its approvals, e.g. 24h (default 24h).") var ttl: String = "24h"
        @Flag(help: "Refuse a command it covers without a reason (the Vpsgate-Reason header): 422 reason-required.")
        var requireReason = false
        @OptionGroup var admin: AdminOptions
        func run() throws {
            guard let seconds = DurationText.seconds(ttl) else { throw ValidationError("--ttl takes a duration such as 90m, 24h or 7d") }
            try adminSession(admin.actor).setPolicy(subject: subject, vps: try Grant.vps(vps), approvals: approvals, ttlSeconds: seconds,
                                                    requireReason: requireReason)
            print("\(subject) on \(vps) needs \(approvals) approval(s)\(requireReason ? " and a reason" : "")")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a policy row (the next most specific applies).")
        @Option var subject: String
        @Option(help: "A VPS id, or '*'.") var vps: String = "*"
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).removePolicy(subject: subject, vps: try Grant.vps(vps))
            print("removed the policy for \(subject) on \(vps)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List approval policies.")
        func run() throws {
            printTable(["ID", "SUBJECT", "VPS", "APPROVALS", "TTL", "REASON", "CREATED BY"], try adminSession(nil).listPolicies())
        }
    }
}
