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

struct Freeze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Freeze windows: no command runs on a frozen VPS (423), but an emergency override through an approval.",
        subcommands: [Add.self, Remove.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a freeze window.")
        @Option(help: "A VPS id, or '*' for every VPS.") var vps: String
        @Option(help: "When it starts, from now, e.g. 0, 2h (default: now).") var starts: String?
        @Option(name: .customLong("for"), help: "How long it lasts, e.g. 4h, 2d.") var duration: String
        @Option(help: "Why, for the audit trail and the 423 answers.") var reason: String
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let start = try starts.map { text in
                guard text == "0" || text == "now" else {
                    guard let seconds = DurationText.seconds(text) else { throw ValidationError("--starts takes a duration such as 2h") }
                    return seconds
                }
                return 0
            } ?? 0
            guard let length = DurationText.seconds(duration) else { throw ValidationError("--for takes a duration such as 4h or 2d") }
            let id = try adminSession(admin.actor).addFreeze(vps: try Grant.vps(vps), startsInSeconds: start, durationSeconds: length,
                                                             reason: reason)
            print("freeze \(id) on \(vps)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a freeze window by its id.")
        @Argument(help: "The freeze id (see freeze list).") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).removeFreeze(id: id)
            print("removed freeze \(id)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List freeze windows.")
        func run() throws {
            printTable(["ID", "VPS", "STARTS", "ENDS", "STATUS", "REASON", "CREATED BY"], try adminSession(nil).listFreezes())
        }
    }
}
