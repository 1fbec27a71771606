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

struct Budget: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The Hostinger budget every instance shares (HOSTINGER_RATE_LIMIT and 429 pauses).",
        discussion: "A 429 from Hostinger pauses every instance for its Retry-After, at most VPSGATE_BUDGET_MAX_PAUSE.",
        subcommands: [Show.self, Resume.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each budget: its next slot, its pause, its counters.")
        func run() throws {
            printTable(["BUDGET", "NEXT-SLOT", "PAUSED-UNTIL", "GRANTED", "REFUSED", "PAUSES"], try adminSession(nil).listBudgets())
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift a 429's pause now (audited); every instance calls Hostinger again within a second.")
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let lifted = try adminSession(admin.actor).resumeBudgets()
            print(lifted.isEmpty ? "no budget is paused" : "resumed \(lifted.count) budget\(lifted.count == 1 ? "" : "s"): \(lifted.joined(separator: ", "))")
        }
    }
}
